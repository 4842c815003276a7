"""The physical floor under Graph replay: a plain C loop over an equivalent graph.

The graph's structure is recorded by running the *same* Python builder code on
``Tape`` values (each op appends a node), then laid out the way the core's replay
reads it: ``data`` and ``grad`` arrays of doubles indexed by node, and the
non-leaf nodes, in the order ``Graph`` records (DFS postorder from the root), as
a tape of 16-byte steps (out, lhs, rhs, op). ``floor.c`` (compiled here with the
system C compiler, -O3 as the core is) runs forward and backward over it: one
switch per step, no error checks, no Python. One difference from the core: ours
reuses freed arena slots, so its node indices may be scattered; here they are the
creation order. If no C compiler works, only the numpy reference (one streaming
read of the same bytes) is reported.

Op codes are the core's (src/autograd/_core.pxd): LEAF 0, ADD 1, MUL 3, RELU 8.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

OP_LEAF, OP_ADD, OP_MUL, OP_RELU = 0, 1, 3, 8

STEP = np.dtype([("out", "i4"), ("lhs", "i4"), ("rhs", "i4"), ("op", "u1")], align=True)
assert STEP.itemsize == 16

C_SOURCE = r"""
#include <stdint.h>
typedef struct { int32_t out, lhs, rhs; uint8_t op; } Step;
enum { LEAF = 0, ADD = 1, MUL = 3, RELU = 8 };

void forward(double *d, double *g, const Step *s, long n) {
    for (long k = 0; k < n; k++) {
        const Step *t = &s[k];
        double v;
        switch (t->op) {
        case ADD:  v = d[t->lhs] + d[t->rhs]; break;
        case MUL:  v = d[t->lhs] * d[t->rhs]; break;
        case RELU: v = d[t->lhs] < 0.0 ? 0.0 : d[t->lhs]; break;
        default: continue;
        }
        d[t->out] = v;
        g[t->out] = 0.0;
    }
}

void backward(double *d, double *g, const Step *s, long n, int32_t root) {
    g[root] = 1.0;
    for (long k = n - 1; k >= 0; k--) {
        const Step *t = &s[k];
        double gg = g[t->out];
        switch (t->op) {
        case ADD:  g[t->lhs] += gg; g[t->rhs] += gg; break;
        case MUL:  g[t->lhs] += d[t->rhs] * gg; g[t->rhs] += d[t->lhs] * gg; break;
        case RELU: g[t->lhs] += (d[t->out] > 0.0 ? 1.0 : 0.0) * gg; break;
        default: break;
        }
    }
}
"""


class Tape:
    """A scalar that records the graph it builds: (op, lhs, rhs, data) per node."""
    __slots__ = ("i",)
    ops = [0]
    lhs = [0]
    rhs = [0]
    data = [0.0]

    def __init__(self, x, op=OP_LEAF, a=0, b=0):
        self.i = len(Tape.ops)
        Tape.ops.append(op)
        Tape.lhs.append(a)
        Tape.rhs.append(b)
        Tape.data.append(x)

    @classmethod
    def reset(cls):
        cls.ops, cls.lhs, cls.rhs, cls.data = [0], [0], [0], [0.0]

    @staticmethod
    def _i(v):
        return v.i if isinstance(v, Tape) else Tape(float(v)).i

    def __add__(self, o):
        a, b = self.i, Tape._i(o)
        return Tape(Tape.data[a] + Tape.data[b], OP_ADD, a, b)

    def __radd__(self, o):
        a, b = Tape._i(o), self.i
        return Tape(Tape.data[a] + Tape.data[b], OP_ADD, a, b)

    def __mul__(self, o):
        a, b = self.i, Tape._i(o)
        return Tape(Tape.data[a] * Tape.data[b], OP_MUL, a, b)

    def __rmul__(self, o):
        a, b = Tape._i(o), self.i
        return Tape(Tape.data[a] * Tape.data[b], OP_MUL, a, b)

    def relu(self):
        d = Tape.data[self.i]
        return Tape(0.0 if d < 0 else d, OP_RELU, self.i, 0)


class TapeEngine:
    key = "tape"
    leaf = Tape
    const_leaf = Tape


def postorder(lhs, rhs, root):
    """The order Graph records: iterative DFS from the root, operands first (lhs before
    rhs), each node once -- the same algorithm as the core's Graph.record."""
    seen = bytearray(len(lhs))
    order = []
    stack = [root]
    push, pop, emit = stack.append, stack.pop, order.append
    while stack:
        i = pop()
        if i < 0:
            emit(~i)
            continue
        if seen[i]:
            continue
        seen[i] = 1
        push(~i)
        r, l_ = rhs[i], lhs[i]
        if r and not seen[r]:
            push(r)
        if l_ and not seen[l_]:
            push(l_)
    return order


def arena_of_tape():
    """The recorded graph as (data, grad, steps, root, n_nodes): steps are the non-leaf
    nodes in the order Graph would record for the last node."""
    n = len(Tape.ops)
    data = np.array(Tape.data, dtype=np.float64)
    grad = np.zeros(n, dtype=np.float64)
    order = postorder(Tape.lhs, Tape.rhs, n - 1)
    ops = Tape.ops
    inner = [i for i in order if ops[i] != OP_LEAF]
    steps = np.zeros(len(inner), dtype=STEP)
    idx = np.array(inner, dtype=np.int64)
    steps["out"] = idx
    steps["lhs"] = np.asarray(Tape.lhs, dtype=np.int32)[idx]
    steps["rhs"] = np.asarray(Tape.rhs, dtype=np.int32)[idx]
    steps["op"] = np.asarray(ops, dtype=np.uint8)[idx]
    return data, grad, steps, n - 1, len(order)


_lib = None
_lib_error = None


def compile_shared(source, flags=()):
    """`source` (C) compiled with -O3 into a shared library and loaded: (lib, None), or
    (None, the reason) when there is no C compiler or it fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler"
    d = tempfile.mkdtemp(prefix="agfloor")
    src, so = os.path.join(d, "floor.c"), os.path.join(d, "floor.so")
    with open(src, "w") as f:
        f.write(source)
    try:
        subprocess.run([cc, "-O3", "-shared", "-fPIC", *flags, "-o", so, src], check=True,
                       capture_output=True, timeout=60)
        return ctypes.CDLL(so), None
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"C compiler failed: {e}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def casadi_generated(function):
    """A CasADi Function as C (``Function.generate``) compiled with -O3 (no FMA, as the
    core) and loaded back (``casadi.external``): (function, folder to remove later).
    Raises OSError or subprocess.SubprocessError when there is no working C compiler."""
    import casadi
    name = function.name()                  # the generated C's symbols are named after it
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise OSError("no C compiler")
    folder = tempfile.mkdtemp(prefix="agcasadi")
    cwd = os.getcwd()
    try:
        os.chdir(folder)
        function.generate(f"{name}.c")
        subprocess.run([cc, "-O3", "-shared", "-fPIC", "-ffp-contract=off", "-o",
                        f"{name}.so", f"{name}.c"], check=True, capture_output=True,
                       timeout=600)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        os.chdir(cwd)
    return casadi.external(name, os.path.join(folder, f"{name}.so")), folder


def load():
    """The compiled floor loops, or None (and the reason in `error()`)."""
    global _lib, _lib_error
    if _lib is not None or _lib_error is not None:
        return _lib
    lib, _lib_error = compile_shared(C_SOURCE)
    if lib is None:
        return None
    lib.forward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    lib.backward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long,
                             ctypes.c_int32]
    _lib = lib
    return lib


def error():
    return _lib_error


def best_time(fn, min_time):
    """Best of 5 timed batches of calls (these loops are short and deterministic)."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / 5:
            break
        number *= 2
    best = dt / number
    for _ in range(4):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def forward_backward_ns(forward, backward, n, min_time):
    """ns per node of forward (best of 5 batches) and of backward: each backward call
    timed alone right after an untimed forward (so grads start from a fresh graph's and
    never pile up), the best of as many calls as fit in ~min_time."""
    f = best_time(forward, min_time)
    pc = time.perf_counter
    best = float("inf")
    calls = 0
    t_end = pc() + min_time
    while calls < 5 or (pc() < t_end and calls < 100000):
        forward()
        t0 = pc()
        backward()
        best = min(best, pc() - t0)
        calls += 1
    return f / n * 1e9, best / n * 1e9


def measure(build, min_time=0.2):
    """ns per node of the C forward and backward loops, and of a numpy streaming read of
    the bytes they touch, for the graph that `build(TapeEngine)` makes."""
    Tape.reset()
    build(TapeEngine)
    data, grad, steps, root, n = arena_of_tape()
    Tape.reset()
    out = {"nodes": n}
    words = [data.view(np.uint64), grad.view(np.uint64), steps.view(np.uint64)]

    def stream():
        for w in words:
            np.bitwise_xor.reduce(w)
    out["numpy_stream"] = best_time(stream, min_time) / n * 1e9
    lib = load()
    if lib is not None:
        pd, pg, ps, m = data.ctypes.data, grad.ctypes.data, steps.ctypes.data, len(steps)
        out["c_forward"], out["c_backward"] = forward_backward_ns(
            lambda: lib.forward(pd, pg, ps, m), lambda: lib.backward(pd, pg, ps, m, root),
            n, min_time)
    return out
