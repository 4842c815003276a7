"""Forward mode in lanes (issue 17): ``jvp``, ``jacfwd``, the forward-over-reverse Hessian
and ``hvp``.

Differential against PyTorch float64 (``torch.func.jvp``, ``torch.func.jacfwd``,
``torch.autograd.functional.hessian``) and against our reverse mode (``grad``, the
reverse-over-reverse Hessian) on random programs that use every op; every op code of
the table reached by a tangent sweep (generic over ``OP_NAMES``); lanes against single
directions; structural zeros; bad input; no node left behind.
"""
import math
import os
import random
import signal

import numpy as np
import pytest

from autograd import CustomValue, Value, grad, hessian, hvp, jacfwd, jvp
from autograd._core import OP_NAMES, ForwardJacobian, arena_stats
from autograd.functional import AUTO_FORWARD_FROM, RecordedHessian

try:
    import torch
except ImportError:     # the tests against torch are marked requires("torch"): they skip,
    torch = None        # saying why, or fail under ARENAGRAD_REQUIRE_TORCH=1; the rest run

N_TORCH = 120


class TT:
    """A leaf maker for `run_program` on torch: a tensor stays itself (so that
    torch.func's dual tensors flow through), a number becomes a float64 tensor."""
    def __new__(cls, x):
        return x if torch.is_tensor(x) else torch.tensor(float(x), dtype=torch.float64)


def live():
    return arena_stats()["live"]


def assert_close(ours, theirs, what, rel=1e-9):
    """Equal up to rounding: relative `rel` of the largest finite entry (nan == nan)."""
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    theirs = np.asarray(theirs, dtype=np.float64).reshape(-1)
    assert ours.shape == theirs.shape, what
    finite = theirs[np.isfinite(theirs)]
    scale = max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        if math.isnan(t):
            assert math.isnan(o), f"{what}[{k}]: ours {o!r}, expected {t!r}"
        elif math.isinf(t):
            assert o == t, f"{what}[{k}]: ours {o!r}, expected {t!r}"
        else:
            assert abs(o - t) <= rel * scale, f"{what}[{k}]: ours {o!r}, expected {t!r}"


def _program(programs, seed):
    prog = programs.make(seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    return prog, nodes


def _torch_outputs(programs, prog, pick):
    """The program on torch as a function of its leaves, returning the picked nodes."""
    def f(*leaves):
        nodes = programs.run(prog, TT, list(leaves))
        return tuple(nodes[i] for i in pick)
    return f


def _picked(rng, nodes, n_leaves):
    """Some outputs: the program's output and a few inner nodes."""
    inner = list(range(n_leaves, len(nodes) - 1))
    return [len(nodes) - 1] + rng.sample(inner, min(3, len(inner)))


# --- against torch ------------------------------------------------------------------

@pytest.mark.requires("torch")
@pytest.mark.parametrize("seed", range(N_TORCH))
def test_jvp_matches_torch_func_jvp(seed, programs):
    prog, nodes = _program(programs, 80_000 + seed)
    rng = random.Random(seed)
    n = len(prog.leaves)
    pick = _picked(rng, nodes, n)
    tangents = [rng.uniform(-2.0, 2.0) for _ in range(n)]
    ours = jvp([nodes[i] for i in pick], nodes[:n], tangents)
    primals = tuple(torch.tensor(float(x), dtype=torch.float64) for x in prog.leaves)
    tans = tuple(torch.tensor(t, dtype=torch.float64) for t in tangents)
    _, theirs = torch.func.jvp(_torch_outputs(programs, prog, pick), primals, tans)
    assert_close(ours, [float(t) for t in theirs], repr(prog))


@pytest.mark.requires("torch")
@pytest.mark.parametrize("seed", range(N_TORCH))
def test_jacfwd_matches_torch_and_grad(seed, programs):
    prog, nodes = _program(programs, 81_000 + seed)
    rng = random.Random(seed)
    n = len(prog.leaves)
    pick = _picked(rng, nodes, n)
    outs = [nodes[i] for i in pick]
    ours = jacfwd(outs, nodes[:n])
    assert ours.shape == (len(pick), n) and ours.dtype == np.float64
    primals = tuple(torch.tensor(float(x), dtype=torch.float64) for x in prog.leaves)
    theirs = torch.func.jacfwd(_torch_outputs(programs, prog, pick),
                               argnums=tuple(range(n)))(*primals)
    assert_close(ours, [[float(theirs[j][i]) for i in range(n)] for j in range(len(pick))],
                 repr(prog))
    # and our reverse mode, also with inner nodes among the inputs (grad's semantics:
    # an input's derivative counts the paths through the other inputs)
    inputs = nodes[:n] + nodes[n:-1:3]
    ours = jacfwd(outs, inputs)
    for j, y in enumerate(outs):
        rows = grad(y, inputs, allow_unused=True)
        assert_close(ours[j], [0.0 if r is None else r.data for r in rows],
                     f"{prog!r} row {j}")


@pytest.mark.requires("torch")
@pytest.mark.parametrize("seed", range(N_TORCH))
def test_forward_over_reverse_hessian_matches_torch_and_reverse_over_reverse(seed, programs):
    prog = programs.make(82_000 + seed, programs.ALL_OPS)
    n = len(prog.leaves)

    def f(*leaves):
        return programs.run(prog, Value, list(leaves))[-1]

    fwd = hessian(f, [float(x) for x in prog.leaves], method="forward-over-reverse")
    rev = hessian(f, [float(x) for x in prog.leaves], method="reverse-over-reverse")
    theirs = torch.autograd.functional.hessian(
        lambda x: programs.run(prog, TT, [x[i] for i in range(n)])[-1],
        torch.tensor([float(x) for x in prog.leaves], dtype=torch.float64))
    # torch's trigamma (lgamma's second derivative) is off by up to ~5e-10 relative
    # (mpmath; ours is within 1e-15): 1e-8 against torch, 1e-9 between our two paths
    assert_close(fwd, theirs.tolist(), repr(prog), rel=1e-8)
    assert_close(fwd, rev, repr(prog))


def test_random_programs_reach_every_op_code(programs):
    """Every op of the table (those of the programs and those only differentiation
    makes: relu's step, the selects of powers) goes through a tangent sweep above."""
    seen = set()
    for seed in range(N_TORCH):
        for base in (80_000, 82_000):
            prog = programs.make(base + seed, programs.ALL_OPS)
            xs = [Value(float(x)) for x in prog.leaves]
            y = programs.run(prog, Value, xs)[-1]
            graphs = [y] + [g for g in grad(y, xs, create_graph=True, allow_unused=True)
                            if g is not None]
            stack, done = list(graphs), {}
            while stack:
                v = stack.pop()
                if id(v) in done:
                    continue
                done[id(v)] = v                 # held: a freed handle's id is reused
                seen.add(v._op)
                stack.extend(v._prev)
    named = {name for name in OP_NAMES if name}      # '' is a leaf's (and a custom op's)
    seen = {("**" if s.startswith("**") else s) for s in seen}
    assert named <= seen, f"never reached: {sorted(named - seen)}"


# --- lanes, structure ---------------------------------------------------------------

def test_lanes_equal_single_directions(programs):
    for seed in range(30):
        prog, nodes = _program(programs, 83_000 + seed)
        rng = np.random.default_rng(seed)
        n = len(prog.leaves)
        directions = rng.uniform(-1.0, 1.0, size=(n, 7))
        directions[:, 3] = 0.0                      # an all-zero lane
        outs = [nodes[-1], nodes[n]]
        lanes = jvp(outs, nodes[:n], directions)
        assert lanes.shape == (2, 7)
        for k in range(7):
            single = jvp(outs, nodes[:n], directions[:, k].tolist())
            assert lanes[:, k].tolist() == list(single), repr(prog)
        assert lanes[:, 3].tolist() == [0.0, 0.0]


def test_jacfwd_is_jvp_along_each_axis(programs):
    prog, nodes = _program(programs, 84_000)
    n = len(prog.leaves)
    jac = jacfwd(nodes[-1], nodes[:n])
    for i in range(n):
        e = [1.0 if k == i else 0.0 for k in range(n)]
        assert jac[0, i] == jvp(nodes[-1], nodes[:n], e)[0]


def test_structural_zeros_and_inputs_anywhere():
    x, y, z = Value(2.0), Value(3.0), Value(5.0)
    u = x * y
    out = u.tanh() + x
    jac = jacfwd([out, u, x], [x, y, z, u])
    # z is not in the graph: its column is 0; u as an input adds its own direction
    du = 1.0 - math.tanh(6.0) ** 2
    assert jac[:, 2].tolist() == [0.0, 0.0, 0.0]
    assert jac[2].tolist() == [1.0, 0.0, 0.0, 0.0]            # an output that is an input
    assert jac[1].tolist() == [3.0, 2.0, 0.0, 1.0]
    assert_close(jac[0], [du * 3.0 + 1.0, du * 2.0, 0.0, du], "out")
    # a zero tangent is a structural zero: no inf * 0 through x ** 0.5 at 0
    a, b = Value(0.0), Value(4.0)
    w = a ** 0.5 + b * 2
    assert jvp(w, [a, b], [0.0, 1.0]) == (2.0,)
    assert math.isinf(jvp(w, [a, b], [1.0, 1.0])[0])
    # non-finite tangents are allowed and propagate (IEEE, as in PyTorch)
    assert math.isnan(jvp(w, [a, b], [0.0, float("nan")])[0])
    assert jvp(w, [a, b], [0.0, float("inf")]) == (float("inf"),)


def test_a_single_value_and_a_number():
    x = Value(3.0)
    assert jvp(x * x, x, 2.0) == (12.0,)
    assert jvp([x * x], [x], [2.0]) == (12.0,)
    assert jacfwd(x ** 3, x).tolist() == [[27.0]]


def test_data_and_grads_are_untouched_and_nothing_is_left_behind():
    xs = [Value(float(k) + 0.5) for k in range(5)]
    y = sum(((a * b).tanh() for a, b in zip(xs, xs[1:])), Value(0.0))
    before = live()
    datas = [v.data for v in xs] + [y.data]
    for _ in range(3):
        jvp([y, xs[0] * 2], xs, [1.0] * 5)
        jacfwd([y, y * y], xs)
        hessian(lambda *v: sum(((a * b).tanh() for a, b in zip(v, v[1:])), Value(0.0)),
                xs, method="forward-over-reverse")
    assert live() == before
    assert [v.data for v in xs] + [y.data] == datas
    assert all(v.grad == 0.0 for v in xs) and y.grad == 0.0


# --- the Hessian's methods, hvp -------------------------------------------------------

def rosenbrock(*x):
    return sum((100 * (b - a ** 2) ** 2 + (1 - a) ** 2 for a, b in zip(x, x[1:])),
               Value(0.0))


@pytest.mark.requires("torch")
def test_rosenbrock_hessian_both_methods_and_torch():
    rng = random.Random(5)
    point = [rng.uniform(-1.5, 1.5) for _ in range(20)]
    fwd = hessian(rosenbrock, point, method="forward-over-reverse", as_array=True)
    rev = hessian(rosenbrock, point, method="reverse-over-reverse", as_array=True)
    theirs = torch.func.hessian(
        lambda x: (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())(
        torch.tensor(point, dtype=torch.float64))
    assert fwd.shape == (20, 20)
    assert_close(fwd, theirs.numpy(), "rosenbrock")
    assert_close(fwd, rev, "rosenbrock rev")
    assert hessian(rosenbrock, point) == fwd.tolist()    # auto: forward from 3 inputs


def test_auto_picks_by_the_number_of_inputs():
    assert AUTO_FORWARD_FROM == 3
    for n in (1, 2, 3, 4):
        point = [0.3 + 0.1 * k for k in range(n)]
        f = (lambda *v: (sum(v, Value(0.0)) * v[0]).tanh())
        auto = hessian(f, point)
        picked = "forward-over-reverse" if n >= AUTO_FORWARD_FROM else "reverse-over-reverse"
        assert auto == hessian(f, point, method=picked)
        assert_close(auto, hessian(f, point, method="forward-over-reverse"), f"n={n}")


def test_hessian_with_unused_inputs_and_constant_gradients():
    f = lambda x, y, z: x * y + 3.0       # noqa: E731 (z unused, gradient constant in y)
    for method in ("forward-over-reverse", "reverse-over-reverse"):
        assert hessian(f, [1.0, 2.0, 3.0], method=method) == \
            [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert hessian(lambda x, y, z: Value(1.0), [1.0, 2.0, 3.0]) == [[0.0] * 3] * 3


def test_hvp_is_hessian_times_v():
    rng = random.Random(9)
    point = [rng.uniform(-1.0, 1.0) for _ in range(8)]
    v = [rng.uniform(-1.0, 1.0) for _ in range(8)]
    h = hessian(rosenbrock, point, as_array=True)
    assert_close(hvp(rosenbrock, point, v), h @ np.array(v), "hvp")
    assert hvp(lambda x, y: x * x * y, [1.0, 2.0], [1.0, 0.0]) == [4.0, 2.0]
    with pytest.raises(ValueError, match="2 entries for 3 inputs"):
        hvp(rosenbrock, [1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("seed", range(40))
def test_recorded_hessian_equals_fresh_hessians_bit_for_bit(seed, programs):
    prog = programs.make(85_000 + seed, programs.ALL_OPS)
    rng = random.Random(seed)

    def f(*leaves):
        return programs.run(prog, Value, list(leaves))[-1]

    recorded = RecordedHessian(f, [float(x) for x in prog.leaves])
    checked = 0
    for _ in range(3):
        point = [x + rng.uniform(-0.05, 0.05) * abs(x) for x in prog.leaves]
        try:
            fresh = hessian(f, point, method="forward-over-reverse", as_array=True)
        except (ArithmeticError, ValueError):
            continue                          # left the program's domain
        replayed = recorded(point)
        assert np.array_equal(replayed, fresh, equal_nan=True), repr(prog)
        checked += 1
    assert checked, "no perturbed point stayed in the program's domain"


def test_recorded_hessian_of_rosenbrock():
    h = RecordedHessian(rosenbrock, [0.0] * 6)
    for point in ([1.0] * 6, [0.5, -0.3, 1.2, 0.8, -1.0, 0.1]):
        assert np.array_equal(h(point), hessian(rosenbrock, point, as_array=True))
    with pytest.raises(ValueError):
        h([1.0] * 5)


def test_forward_jacobian_follows_the_data_and_keeps_its_nodes():
    x, y = Value(2.0), Value(3.0)
    jac = ForwardJacobian([x * y, (x + y).tanh()], [x, y])   # the outputs' handles dropped
    assert (jac.n_outputs, jac.n_inputs) == (2, 2)
    d = 1.0 - math.tanh(5.0) ** 2
    assert_close(jac(), [[3.0, 2.0], [d, d]], "at (2, 3)")
    x.data = 5.0                          # no replay: the product's node keeps its data,
    assert jac()[0].tolist() == [3.0, 5.0]    # its partials read the operands' new data
    del jac
    before = live()
    with pytest.raises(ValueError, match="not recorded"):
        ForwardJacobian.__new__(ForwardJacobian)()
    jac = ForwardJacobian(x * y, x)
    with pytest.raises(RuntimeError, match="already called"):
        jac.__init__(x * y, x)
    del jac
    assert live() == before


def test_hessian_bad_method():
    with pytest.raises(ValueError, match="method must be one of"):
        hessian(rosenbrock, [1.0, 2.0], method="forward")


# --- bad input ----------------------------------------------------------------------

def test_bad_arguments_raise_clear_errors():
    x, y = Value(1.0), Value(2.0)
    z = x * y
    with pytest.raises(ValueError, match="1 tangents for 2 inputs"):
        jvp(z, [x, y], [1.0])
    with pytest.raises(ValueError, match="tangents has 3 rows for 2 inputs"):
        jvp(z, [x, y], np.ones((3, 2)))
    with pytest.raises(ValueError, match="inputs is empty"):
        jvp(z, [], [])
    with pytest.raises(ValueError, match="outputs is empty"):
        jacfwd([], [x])
    with pytest.raises(TypeError, match="inputs must be Values, not float"):
        jvp(z, [x, 2.0], [1.0, 1.0])
    with pytest.raises(TypeError, match="outputs must be Values, not int"):
        jacfwd([z, 3], [x])
    with pytest.raises(TypeError, match="tangent"):
        jvp(z, [x, y], [1.0, "a"])
    with pytest.raises(TypeError, match="tangent"):
        jvp(z, [x, y], [1.0, 1j])
    with pytest.raises(TypeError, match="sequence of numbers"):
        jvp(z, [x, y], 1.0)
    with pytest.raises(TypeError, match="real numbers"):
        jvp(z, [x, y], np.ones((2, 1), dtype=complex))
    with pytest.raises(TypeError):
        jvp(z, [x, y], None)
    assert jvp(z, [x, y], np.ones((2, 0))).shape == (1, 0)      # no lanes: nothing to do


def test_custom_ops_are_refused():
    x = Value(2.0)
    out = CustomValue(x.data ** 2, (x,), "square")

    def _backward():
        x.grad += 2 * x.data * out.grad
    out._backward = _backward
    before = live()
    for call in (lambda: jvp(out * 3, x, 1.0), lambda: jacfwd([out, x * 2], [x])):
        with pytest.raises(ValueError, match="forward mode cannot differentiate through "
                                             "custom op 'square'"):
            call()
    assert live() == before


def test_memory_error_says_how_many_bytes():
    if not hasattr(os, "sysconf"):
        pytest.skip("the up-front size check reads the machine's memory with os.sysconf "
                    "(POSIX); on Windows the allocation itself fails instead")
    # n lanes x ~2n nodes of 8 bytes: more than this machine has
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    n = max(100_000, int(math.sqrt(memory / 16)) + 1000)
    xs = [Value(1.0) for _ in range(n)]
    s = sum(xs, Value(0.0))
    before = live()
    with pytest.raises(MemoryError, match=rf"forward mode needs [\d,]+ bytes for {n} lanes"):
        jacfwd(s, xs)
    assert live() == before


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no setitimer (Windows)")
def test_keyboard_interrupt_stops_a_long_sweep():
    """Ctrl-C stops a long forward-mode sweep inside it (signals are checked every
    16,384 nodes; the sweep holds the GIL, so the signal is the system's, as Ctrl-C's
    is); the memory is given back and the next sweep is right."""
    import traceback
    x = Value(0.5)
    v = x
    for _ in range(100_000):
        v = (v * 0.999 + 0.001).tanh()
    directions = np.ones((1, 64))         # one sweep: 300,000 nodes x 64 lanes

    def ctrl_c(signum, frame):
        raise KeyboardInterrupt
    before = arena_stats()
    previous = signal.signal(signal.SIGALRM, ctrl_c)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        with pytest.raises(KeyboardInterrupt) as info:
            jvp(v, x, directions)
            signal.pause()              # (the sweep was not stopped: fail below)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # raised inside the sweep, not after it
    assert any(f.filename.endswith("forward.pxi") for f in traceback.extract_tb(info.tb))
    assert arena_stats() == before
    small = jvp(v, x, np.ones((1, 2)))
    assert small.shape == (1, 2) and small[0, 0] == small[0, 1] == jvp(v, x, [1.0])[0]
