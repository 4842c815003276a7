"""Batched replay (issue 17): micrograd's demo step for B points in lanes.

One sample's loss, ``relu(1 - y * score) * (1 / N)`` on ``MLP(2, [16, 16, 1])``, is
recorded once and run for B two-moons points by ``autograd.Lanes`` (forward and backward
in one pass; the parameters' grads summed over lanes; the L2 term a small replayed graph;
zero_grad and SGD through ``ValueVector``), on 1 and 2 threads. Against: our replay of
the whole-batch graph (``Graph`` of the demo loss over the B points: 65,818 nodes at
B = 100), PyTorch vectorized (``nn.Linear`` over the batch, float64), ``jax.jit`` of the
same vectorized step (float64), CasADi (the per-sample loss and its gradient as an SX
Function, ``Function.map`` over the B points with the gradients summed by the map: its
virtual machine, and the same Function as generated C compiled with -O3, mapped), and a
plain C loop over the same tape and blocks (``_C_FLOOR`` below: one ``switch`` per step,
a plain loop over the block's lanes, no error checks, no Python), on one thread and with
its blocks split in two halves on two threads, the second a thread started once and kept
(c-floor-2: what this machine's two cores give for this very work).

Reported: time per step and ns per node-lane (the step's time over nodes per sample x B;
nodes count the per-sample graph's leaves too, as replay's ns per node does).
"""
import ctypes
import random
import shutil

import numpy as np

import cfloor
import engines as E
from harness import Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, pair_ratio, table, \
    verdict

NAME = "lanes"
ORDER = 85

_C_FLOOR = r"""
#include <pthread.h>
#include <stdint.h>
#include <string.h>
typedef struct { int32_t out, lhs, rhs; uint8_t op, ieee; } Step;
enum { ADD = 1, SUB = 2, MUL = 3, NEG = 5, RELU = 8 };

/* forward and backward of blocks [b0, b1) of L lanes (of B): the work Lanes does */
static void run_blocks(const Step *s, long n_steps, long n_rows, long L, long B, long root,
         const long *shared_rows, const double *shared_vals, long n_shared,
         const long *in_rows, double *const *in_vals, long n_in, double *out_vals,
         double *partials, double *scratch, long b0, long b1) {
    double *d = scratch, *g = scratch + n_rows * L;
    long n_blocks = (B + L - 1) / L;
    for (long i = 0; i < n_shared; i++)
        for (long j = 0; j < L; j++) d[shared_rows[i] * L + j] = shared_vals[i];
    for (long blk = b0; blk < b1; blk++) {
        long k0 = blk * L, n = B - k0 < L ? B - k0 : L;
        for (long i = 0; i < n_in; i++) memcpy(d + in_rows[i] * L, in_vals[i] + k0, n * 8);
        for (long k = 0; k < n_steps; k++) {
            const Step *t = &s[k];
            double *o = d + t->out * L;
            const double *a = d + t->lhs * L, *b = d + t->rhs * L;
            switch (t->op) {
            case ADD:  for (long j = 0; j < n; j++) o[j] = a[j] + b[j]; break;
            case SUB:  for (long j = 0; j < n; j++) o[j] = a[j] - b[j]; break;
            case MUL:  for (long j = 0; j < n; j++) o[j] = a[j] * b[j]; break;
            case NEG:  for (long j = 0; j < n; j++) o[j] = -a[j]; break;
            case RELU: for (long j = 0; j < n; j++) o[j] = a[j] < 0.0 ? 0.0 : a[j]; break;
            default: break;
            }
        }
        memcpy(out_vals + k0, d + root * L, n * 8);
        memset(g, 0, n_rows * L * 8);
        for (long j = 0; j < n; j++) g[root * L + j] = 1.0;
        for (long k = n_steps - 1; k >= 0; k--) {
            const Step *t = &s[k];
            const double *o = d + t->out * L, *gg = g + t->out * L;
            const double *a = d + t->lhs * L, *b = d + t->rhs * L;
            double *ga = g + t->lhs * L, *gb = g + t->rhs * L;
            switch (t->op) {
            case ADD:  for (long j = 0; j < n; j++) { ga[j] += gg[j]; gb[j] += gg[j]; } break;
            case SUB:  for (long j = 0; j < n; j++) { ga[j] += gg[j]; gb[j] -= gg[j]; } break;
            case MUL:  for (long j = 0; j < n; j++) { double x = b[j] * gg[j], y = a[j] * gg[j];
                                                      ga[j] += x; gb[j] += y; } break;
            case NEG:  for (long j = 0; j < n; j++) ga[j] -= gg[j]; break;
            case RELU: for (long j = 0; j < n; j++) ga[j] += (o[j] > 0.0 ? 1.0 : 0.0) * gg[j]; break;
            default: break;
            }
        }
        for (long i = 0; i < n_shared; i++) {
            const double *row = g + shared_rows[i] * L;
            double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
            long j = 0;
            for (; j + 4 <= n; j += 4) { p0 += row[j]; p1 += row[j + 1]; p2 += row[j + 2]; p3 += row[j + 3]; }
            for (; j < n; j++) p0 += row[j];
            partials[i * n_blocks + blk] = (p0 + p1) + (p2 + p3);
        }
    }
}

#define ARGS const Step *s, long n_steps, long n_rows, long L, long B, long root, \
         const long *shared_rows, const double *shared_vals, long n_shared, \
         const long *in_rows, double *const *in_vals, long n_in, double *out_vals, \
         double *partials, double *scratch
#define PASS s, n_steps, n_rows, L, B, root, shared_rows, shared_vals, n_shared, in_rows, \
         in_vals, n_in, out_vals, partials

/* every block on this thread */
void run(ARGS) { run_blocks(PASS, scratch, 0, (B + L - 1) / L); }

/* the blocks split in two halves, the second on a thread started once and kept, as
   Lanes' pool: between steps it polls for about a millisecond, then sleeps on a
   condition variable (what this machine's two cores give for this work, with a
   persistent worker; starting a thread per call would cost ~10-50 us a step) */
typedef struct { const Step *s; long n_steps, n_rows, L, B, root; const long *shared_rows;
                 const double *shared_vals; long n_shared; const long *in_rows;
                 double *const *in_vals; long n_in; double *out_vals, *partials, *scratch;
                 long b0, b1; } Half;
static void half(const Half *h) {
    run_blocks(h->s, h->n_steps, h->n_rows, h->L, h->B, h->root, h->shared_rows,
               h->shared_vals, h->n_shared, h->in_rows, h->in_vals, h->n_in, h->out_vals,
               h->partials, h->scratch, h->b0, h->b1);
}
#if defined(__x86_64__) || defined(__i386__)
#define PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("yield")
#else
#define PAUSE() ((void)0)
#endif
static Half job;
static int go = 0, done = 0, started = 0;       /* go, done: job generations */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static void *worker(void *unused) {
    int seen = 0;
    (void)unused;
    for (;;) {
        long k = 0;
        while (__atomic_load_n(&go, __ATOMIC_ACQUIRE) == seen && k++ < 20000) PAUSE();
        pthread_mutex_lock(&mutex);
        while (__atomic_load_n(&go, __ATOMIC_ACQUIRE) == seen) pthread_cond_wait(&wake, &mutex);
        pthread_mutex_unlock(&mutex);
        seen++;
        half(&job);
        __atomic_store_n(&done, seen, __ATOMIC_RELEASE);
    }
    return 0;
}
int run2(ARGS) {
    long n_blocks = (B + L - 1) / L, mid = n_blocks / 2;
    Half h = {s, n_steps, n_rows, L, B, root, shared_rows, shared_vals, n_shared, in_rows,
              in_vals, n_in, out_vals, partials, scratch + 2 * n_rows * L, mid, n_blocks};
    pthread_t t;
    int gen = go + 1;
    if (!started) {
        if (pthread_create(&t, 0, worker, 0)) return -1;
        pthread_detach(t);
        started = 1;
    }
    job = h;
    pthread_mutex_lock(&mutex);
    __atomic_store_n(&go, gen, __ATOMIC_RELEASE);
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mutex);
    run_blocks(PASS, scratch, 0, mid);
    while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) != gen) PAUSE();
    return 0;
}
"""

_floor_lib = None
_floor_error = None


def _load_floor():
    global _floor_lib, _floor_error
    if _floor_lib is None and _floor_error is None:
        _floor_lib, _floor_error = cfloor.compile_shared(_C_FLOOR, ["-ffp-contract=off",
                                                                     "-pthread"])
    return _floor_lib


def moons(n):
    from autograd.datasets import make_moons
    X, y = make_moons(n, noise=0.1, seed=1)
    return X, y


class OursLanes:
    def __init__(self, X, y, threads):
        from autograd import Value
        from autograd.demo import BatchTrainer
        from autograd.nn import MLP
        random.seed(E.SEED)
        self.trainer = BatchTrainer(MLP(2, [16, 16, 1]), X.tolist(), y.tolist(), threads=threads)
        self.n = len(y)
        self.nodes = len(self.trainer.lanes)
        self.k = 0
        del Value

    def step(self):
        # the work the other engines' steps do: loss, gradients, SGD (BatchTrainer.step
        # also computes the accuracy the demo prints: the others do not)
        t = self.trainer
        t.params.zero_grad()
        t.lanes.forward(t.values, backward=True)
        t.reg_graph.forward()
        t.reg_graph.backward()
        loss = t.lanes.sum(t.hinge) * (1.0 / self.n) + t.reg_loss.data  # micrograd's sum
        t.params.sgd_step(E.lr_of(self.k))
        self.k += 1
        return loss


class OursReplay:
    def __init__(self, X, y):
        from autograd import Graph, Value, ValueVector
        from autograd.nn import MLP
        random.seed(E.SEED)
        model = MLP(2, [16, 16, 1])
        self.loss = E.demo_loss(Value, model, X.tolist(), y.tolist())
        self.graph = Graph(self.loss)
        self.params = ValueVector(model.parameters())
        self.k = 0

    def step(self):
        self.graph.forward()
        self.params.zero_grad()
        self.graph.backward()
        self.params.sgd_step(E.lr_of(self.k))
        self.k += 1
        return self.loss.data


def _weights():
    """The MLP's weights after random.seed(SEED), as (W, b) per layer (numpy)."""
    from autograd.nn import MLP
    random.seed(E.SEED)
    model = MLP(2, [16, 16, 1])
    return [(np.array([[w.data for w in n.w] for n in layer.neurons]),
             np.array([n.b.data for n in layer.neurons])) for layer in model.layers]


class JaxVec:
    def __init__(self, X, y):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        n = len(y)

        def loss(params, X, y):
            h = X
            for k, (W, b) in enumerate(params):
                h = h @ W.T + b
                if k < len(params) - 1:
                    h = jax.nn.relu(h)
            data = jnp.sum(jax.nn.relu(1 - y * h[:, 0])) * (1.0 / n)
            return data + E.ALPHA * sum(jnp.sum(W * W) + jnp.sum(b * b) for W, b in params)

        def step(params, X, y, lr):
            value, grads = jax.value_and_grad(loss)(params, X, y)
            return [(W - lr * gW, b - lr * gb) for (W, b), (gW, gb) in zip(params, grads)], value

        self.step_fn = jax.jit(step)
        self.params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in _weights()]
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.k = 0

    def step(self):
        self.params, value = self.step_fn(self.params, self.X, self.y, E.lr_of(self.k))
        self.k += 1
        return float(value)


class CasadiMap:
    """The per-sample loss and its gradient as one SX Function, mapped over the B points
    with both outputs summed by the map; `generated`: that Function as C, -O3."""

    def __init__(self, X, y, generated):
        import casadi as ca
        self.ca = ca
        n = len(y)
        weights = _weights()
        n_p = sum(W.size + b.size for W, b in weights)
        p = ca.SX.sym("p", n_p)
        x = ca.SX.sym("x", 2)
        yy = ca.SX.sym("y")
        h, k = [x[0], x[1]], 0
        for li, (W, b) in enumerate(weights):
            out = []
            for _ in range(W.shape[0]):
                act = 0
                for xi in h:
                    act = act + p[k] * xi
                    k += 1
                act = act + p[k]
                k += 1
                out.append(ca.fmax(act, 0) if li < len(weights) - 1 else act)
            h = out
        loss = ca.fmax(1 - yy * h[0], 0) * (1.0 / n)
        f = ca.Function("lane", [x, yy, p], [loss, ca.gradient(loss, p)])
        self.tmp = None
        if generated:
            f, self.tmp = cfloor.casadi_generated(f)
        self.fm = f.map("lanes", "serial", n, [2], [0, 1])
        self.p = np.concatenate([np.concatenate([np.append(Wr, br) for Wr, br in zip(W, b)])
                                 for W, b in weights])
        self.reg = lambda p: E.ALPHA * float(p @ p)
        self.X, self.y = np.ascontiguousarray(X.T), y.reshape(1, -1)
        self.k = 0

    def step(self):
        loss, g = self.fm(self.X, self.y, self.p)
        value = float(loss) + self.reg(self.p)
        g = np.asarray(g).ravel() + 2 * E.ALPHA * self.p
        self.p = self.p - E.lr_of(self.k) * g
        self.k += 1
        return value

    def __del__(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class CFloor:
    """The plain C loop over the same tape and blocks, on one thread or (`halves`) two."""

    def __init__(self, lanes_obj, values, halves=False):
        lib = _load_floor()
        if lib is None:
            raise RuntimeError(_floor_error)
        steps, n_rows, root, in_rows, shared_rows = lanes_obj._tape()
        ops = {s[3] for s in steps}
        if not ops <= {1, 2, 3, 5, 8}:
            raise RuntimeError(f"the C floor knows add, sub, mul, neg, relu; the graph has {ops}")
        dt = np.dtype([("out", "i4"), ("lhs", "i4"), ("rhs", "i4"), ("op", "u1"),
                       ("ieee", "u1")], align=True)
        self.steps = np.array([tuple(s) for s in steps], dtype=dt)
        lanes_obj.forward(values)          # the block Lanes takes for this B
        self.block = lanes_obj.block
        self.B = len(values[0])
        self.n_rows, self.root = n_rows, root
        self.shared_rows = np.array(shared_rows, dtype=np.int64)
        self.shared_vals = np.random.default_rng(0).uniform(-1, 1, len(shared_rows))
        self.in_rows = np.array(in_rows, dtype=np.int64)
        self.ins = [np.ascontiguousarray(v, dtype=np.float64) for v in values]
        self.in_ptrs = (ctypes.c_void_p * len(self.ins))(*[a.ctypes.data for a in self.ins])
        self.out = np.empty(self.B)
        n_blocks = (self.B + self.block - 1) // self.block
        self.partials = np.empty(max(1, len(shared_rows) * n_blocks))
        self.scratch = np.empty(2 * 2 * n_rows * self.block)
        lib.run.restype = None
        lib.run2.restype = ctypes.c_int
        self.fn = lib.run2 if halves else lib.run
        P = ctypes.c_void_p
        self.args = (P(self.steps.ctypes.data), ctypes.c_long(len(self.steps)),
                     ctypes.c_long(n_rows), ctypes.c_long(self.block), ctypes.c_long(self.B),
                     ctypes.c_long(root), P(self.shared_rows.ctypes.data),
                     P(self.shared_vals.ctypes.data), ctypes.c_long(len(shared_rows)),
                     P(self.in_rows.ctypes.data), self.in_ptrs, ctypes.c_long(len(self.ins)),
                     P(self.out.ctypes.data), P(self.partials.ctypes.data),
                     P(self.scratch.ctypes.data))

    def step(self):
        if self.fn(*self.args):
            raise RuntimeError("pthread_create failed")


def run(bench):
    sizes = [100, 1000] if bench.quick else [100, 1000, 10_000, 100_000]
    bench.log(f"lanes: the demo step for B = {', '.join(map(str, sizes))} points")
    have_jax = have_casadi = True
    try:
        import jax  # noqa: F401
    except ImportError:
        have_jax = False
    try:
        import casadi  # noqa: F401
    except ImportError:
        have_casadi = False
    rows, notes, results, scaling = [], [], {}, {}
    nodes = None
    rounds = 3 if bench.quick else 5
    for B in sizes:
        X, y = moons(B)
        ours = {"lanes-1": OursLanes(X, y, 1), "lanes-2": OursLanes(X, y, 2)}
        nodes = ours["lanes-1"].nodes
        t = ours["lanes-1"].trainer
        # Two groups, each timed in alternation: threads against one thread, and
        # against the peers. JAX's and PyTorch's thread pools keep polling a core for
        # a while after their step, so in a run with them our second thread would
        # share its core with them (as theirs do with ours).
        floors = {}
        try:
            floors["c-floor"] = CFloor(t.lanes, t.values)
            floors["c-floor-2"] = CFloor(t.lanes, t.values, halves=True)
        except RuntimeError as e:
            notes.append(f"C floor: {e}")
        peers = {}
        if B <= (100 if bench.quick else 1000):
            peers["replay"] = OursReplay(X, y)
        if bench.has("torch-vec"):
            peers["torch-vec"] = E.TorchVecDemo(X.tolist(), y.tolist())
        if have_jax:
            peers["jax-jit"] = JaxVec(X, y)
        if have_casadi and B <= (1000 if bench.quick else 10_000):
            try:
                peers["casadi-vm"] = CasadiMap(X, y, False)
                peers["casadi-c"] = CasadiMap(X, y, True)
            except Exception as e:          # noqa: BLE001 - reported
                notes.append(f"CasADi at B = {B}: {type(e).__name__}: {e}")
        for group, engines, store in (("threads", {**ours, **floors}, scaling),
                                      ("peers", {**ours, **peers}, results)):
            samplers = {k: Sampler(e.step, prime=False) for k, e in engines.items()}
            samples, errors = alternate(samplers, rounds, bench.cfg["target"], bench.log)
            for k, v in errors.items():
                notes.append(f"{k} at B = {B} ({group}) failed: {v}")
            store[B] = samples
            for k in engines:
                if k not in samples:
                    continue
                tk = med(samples[k])
                rows.append([f"{B:,}", group, k, fmt_time(tk), fmt_ns(tk / (nodes * B) * 1e9),
                             fmt_ratio(pair_ratio(samples, k, "lanes-1")) if k != "lanes-1"
                             else "1.00x"])
        del ours, floors, peers, samplers
    body = (__doc__.split("\n\n", 1)[1] + "\n\n"
            + f"Nodes per sample: {nodes}. JAX (XLA) and PyTorch use their own thread "
              "pools (all cores); CasADi's maps here are serial.\n\n"
            + table(["B", "timed with", "engine", "per step", "ns per node-lane",
                     "time / lanes-1"], rows)
            + "".join(f"\n\n- {n}" for n in notes))
    bench.section("Lanes: the demo step for B points at once", body)
    s100 = results.get(100, {})
    # Lanes as a user gets it: threads= defaults to the cores (2 here at most)
    from autograd._core import default_threads
    default = "lanes-2" if default_threads() >= 2 else "lanes-1"
    for key, label in (("replay", "our replay of the whole-batch graph"),
                       ("torch-vec", "PyTorch vectorized")):
        r = pair_ratio(s100, key, default)
        r1 = pair_ratio(s100, key, "lanes-1")
        bench.targets.append((f"lanes B=100 ({default}, the default) vs {label}", ">= 5x",
                              f"{fmt_ratio(r)} (1 thread: {fmt_ratio(r1)})", verdict(r, 5.0)))
    for key, label in (("jax-jit", "jax.jit"), ("casadi-c", "CasADi generated C")):
        r = pair_ratio(s100, key, default)
        bench.targets.append((f"lanes B=100 ({default}) vs {label}", "> 1x", fmt_ratio(r),
                              verdict(r, 1.0 + 1e-9)))
    for B, s in scaling.items():
        if B < 1000:
            continue
        ns = med(s.get("lanes-1", [])) / (nodes * B) * 1e9
        bench.targets.append((f"lanes B={B:,}, 1 thread", "<= 1 ns per node-lane",
                              fmt_ns(ns), verdict(ns, 1.0, higher_is_better=False)))
        r = pair_ratio(s, "lanes-1", "lanes-2")
        floor = pair_ratio(s, "c-floor", "c-floor-2")
        bench.targets.append((f"lanes B={B:,}, 2 threads vs 1", ">= 1.7x",
                              f"{fmt_ratio(r)} (the plain C loop split in two: "
                              f"{fmt_ratio(floor)})", verdict(r, 1.7)))
