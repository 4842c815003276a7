"""Issue 16's scalar programs: a Black-Scholes book's value and Greeks, and a pendulum
integrated for 10,000 steps, differentiated on every engine that can run them.

The programs are written once (as in examples/greeks.py and examples/pendulum.py)
against a math namespace ``M`` (``sin cos exp log sqrt erf``), so the same code runs on
ours (``autograd.math``), on a pure-Python micrograd-style Value (bench/pyvalue.py's,
with those six functions added here as closures in micrograd's style), on PyTorch
0-dim float64 tensors, on CasADi SX symbols (an SX ``Function`` of the value and its
gradient, run by CasADi's virtual machine) and on JAX (``jax.jit(jax.value_and_grad)``).
One call: the program's value and its gradient with respect to every input, from a
list of floats. Eager engines build the graph and run backward on each call; replay
engines (ours ``Graph``, CasADi's VM, JAX's compiled code) record or compile once.
"""
import atexit
import math
import random
import shutil

import cfloor
import engines as E
import pyvalue
from harness import Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, pair_ratio, table, verdict

NAME = "scalar_programs"
ORDER = 47
TARGET_VS_TORCH = 50.0      # eager, PyTorch 0-dim scalars / ours
TARGET_VS_CASADI = 1.2      # replay / CasADi SX VM, at most
SQRT2 = math.sqrt(2.0)
GRAVITY = 9.81

# CasADi's generated C is compiled only up to this many VM instructions
GENERATED_C_MAX = 20_000

LABELS = {
    "ours": "ours (eager)",
    "ours-replay": "ours (Graph replay)",
    "pyvalue": "pure-Python Value (micrograd + sin, cos, exp, log, sqrt, erf)",
    "torch-scalar": "PyTorch 0-dim scalars",
    "casadi": "CasADi SX Function (virtual machine)",
    "casadi-c": "CasADi SX Function as generated C (-O3)",
    "jax": "JAX jit(value_and_grad)",
}


# =============================================================================
# The programs, written once against a math namespace M
# =============================================================================

def normal_cdf(M, x):
    return 0.5 * (1.0 + M.erf(x / SQRT2))


def black_scholes(M, spot, strike, maturity, rate, vol, call):
    vol_sqrt_t = vol * M.sqrt(maturity)
    d1 = (M.log(spot / strike) + (rate + 0.5 * vol * vol) * maturity) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    discounted_strike = strike * M.exp(-rate * maturity)
    if call:
        return spot * normal_cdf(M, d1) - discounted_strike * normal_cdf(M, d2)
    return discounted_strike * normal_cdf(M, -d2) - spot * normal_cdf(M, -d1)


class Greeks:
    """A book of n options on one underlying: inputs spot, rate, then each option's
    volatility and maturity; output the book's value (its gradient: delta, rho, the
    vegas and minus the thetas)."""

    def __init__(self, n_options):
        rng = random.Random(16)
        self.book = [(rng.uniform(70.0, 130.0), rng.random() < 0.5,
                      rng.choice((-1, 1)) * rng.randint(1, 20)) for _ in range(n_options)]
        self.inputs = ([100.0, 0.02] + [rng.uniform(0.1, 0.5) for _ in range(n_options)]
                       + [rng.uniform(0.1, 2.0) for _ in range(n_options)])
        self.name = f"Greeks, a book of {n_options} options"

    def __call__(self, M, x):
        n = len(self.book)
        spot, rate, vols, mats = x[0], x[1], x[2:2 + n], x[2 + n:]
        value = 0.0
        for (strike, call, quantity), vol, mat in zip(self.book, vols, mats):
            value = value + quantity * black_scholes(M, spot, strike, mat, rate, vol, call)
        return value


class Pendulum:
    """theta'' = -(g / L) sin(theta) by symplectic Euler from rest: inputs L and
    theta0, output the final angle."""

    def __init__(self, steps):
        self.steps = steps
        self.dt = 10.0 / steps
        self.inputs = [1.5, 1.0]
        self.name = f"pendulum, {steps:,} steps"

    def __call__(self, M, x):
        length, theta = x
        dt = self.dt
        decay = dt * GRAVITY / length
        omega = 0.0
        for _ in range(self.steps):
            omega = omega - decay * M.sin(theta)
            theta = theta + dt * omega
        return theta


# =============================================================================
# The pure-Python engine's math: micrograd-style nodes with closures
# =============================================================================

class PyMath:
    """sin cos exp log sqrt erf on bench/pyvalue.py's Value, as micrograd writes ops."""

    @staticmethod
    def _unary(x, data, local, op):
        V = pyvalue.Value
        x = x if isinstance(x, V) else V(x)
        out = V(data, (x,), op)

        def _backward():
            x.grad += local(x.data, out.data) * out.grad
        out._backward = _backward
        return out

    @staticmethod
    def sin(x):
        return PyMath._unary(x, math.sin(x.data), lambda a, o: math.cos(a), "sin")

    @staticmethod
    def cos(x):
        return PyMath._unary(x, math.cos(x.data), lambda a, o: -math.sin(a), "cos")

    @staticmethod
    def exp(x):
        return PyMath._unary(x, math.exp(x.data), lambda a, o: o, "exp")

    @staticmethod
    def log(x):
        return PyMath._unary(x, math.log(x.data), lambda a, o: 1.0 / a, "log")

    @staticmethod
    def sqrt(x):
        return PyMath._unary(x, math.sqrt(x.data), lambda a, o: 0.5 / o, "sqrt")

    @staticmethod
    def erf(x):
        return PyMath._unary(x, math.erf(x.data),
                             lambda a, o: 2.0 / math.sqrt(math.pi) * math.exp(-a * a), "erf")


# =============================================================================
# One call per engine: floats in, (value, gradient) out
# =============================================================================

def eager_call(key, program):
    """value and gradient by building the graph and running backward, every call."""
    x0 = list(program.inputs)
    if key == "ours":
        import autograd.math as M
        from autograd import Value

        def call(x0=x0):
            xs = [Value(v) for v in x0]
            y = program(M, xs)
            y.backward()
            return y.data, [v.grad for v in xs]
    elif key == "pyvalue":
        def call(x0=x0):
            xs = [pyvalue.Value(v) for v in x0]
            y = program(PyMath, xs)
            y.backward()
            return y.data, [v.grad for v in xs]
    elif key == "torch-scalar":
        import torch

        def call(x0=x0, torch=torch):
            xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in x0]
            y = program(torch, xs)
            y.backward()
            return y.item(), [v.grad.item() for v in xs]
    else:
        raise ValueError(key)
    return call


def replay_call(key, program):
    """value and gradient from a graph recorded (or compiled) once, at new inputs."""
    x0 = list(program.inputs)
    if key == "ours-replay":
        import numpy as np

        import autograd.math as M
        from autograd import Graph, Value, ValueVector
        leaves = [Value(v) for v in x0]
        xs = ValueVector(leaves)
        y = program(M, leaves)
        g = Graph(y)
        x_new = np.array(x0)

        def call(xs=xs, g=g, y=y, x_new=x_new):
            xs.data = x_new
            g.forward()
            xs.zero_grad()
            g.backward()
            return y.data, xs.grad
    elif key in ("casadi", "casadi-c"):
        import casadi
        import numpy as np
        x = casadi.SX.sym("x", len(x0))
        y = program(casadi, [x[i] for i in range(len(x0))])
        f = casadi.Function("f", [x], [y, casadi.gradient(y, x)])
        x_new = np.array(x0)
        n_instructions = f.n_instructions()
        if key == "casadi-c":
            if n_instructions > GENERATED_C_MAX:
                raise RuntimeError(f"not compiled: {n_instructions:,} instructions of generated "
                                   "C take gcc -O3 many minutes and gigabytes (the 10,000-step "
                                   "pendulum's took over 4 minutes, unfinished)")
            f, folder = cfloor.casadi_generated(f)
            atexit.register(shutil.rmtree, folder, ignore_errors=True)

        def call(f=f, x_new=x_new):
            value, gradient = f(x_new)
            return float(value), gradient.full().ravel()
        call.n_instructions = n_instructions
    elif key == "jax":
        call = jax_call(program)
    else:
        raise ValueError(key)
    return call


def jax_call(program):
    """jit(value_and_grad) of the program. XLA's compile time grows faster than
    linearly with an unrolled scalar program (200 unrolled pendulum steps did not
    compile in 5 minutes here), so JAX runs the same per-step code as JAX users
    write it: the pendulum's loop as ``lax.fori_loop``, the book's options through
    ``vmap`` of the same ``black_scholes``."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x0 = jnp.array(program.inputs, dtype=jnp.float64)
    if isinstance(program, Pendulum):
        dt, steps = program.dt, program.steps

        def f(x):
            decay = dt * GRAVITY / x[0]

            def step(_, state):
                theta, omega = state
                omega = omega - decay * jnp.sin(state[0])
                return theta + dt * omega, omega
            return jax.lax.fori_loop(0, steps, step, (x[1], jnp.float64(0.0)))[0]
    else:
        n = len(program.book)
        strikes = jnp.array([s for s, _, _ in program.book])
        calls = jnp.array([c for _, c, _ in program.book])
        quantities = jnp.array([float(q) for _, _, q in program.book])

        class JaxMath:
            sin, cos, exp, log, sqrt = jnp.sin, jnp.cos, jnp.exp, jnp.log, jnp.sqrt
            erf = staticmethod(jax.scipy.special.erf)

        def one(strike, call, vol, mat, spot, rate):
            c = black_scholes(JaxMath, spot, strike, mat, rate, vol, True)
            p = black_scholes(JaxMath, spot, strike, mat, rate, vol, False)
            return jnp.where(call, c, p)

        def f(x):
            prices = jax.vmap(one, in_axes=(0, 0, 0, 0, None, None))(
                strikes, calls, x[2:2 + n], x[2 + n:], x[0], x[1])
            return jnp.sum(quantities * prices)
    compiled = jax.jit(jax.value_and_grad(f))
    jax.block_until_ready(compiled(x0))

    def call(compiled=compiled, x0=x0):
        value, gradient = compiled(x0)
        return float(value), jax.device_get(gradient)
    return call


def have(module):
    try:
        __import__(module)
        return True, ""
    except ImportError:
        return False, f"{module} not installed"


# =============================================================================
# The workload
# =============================================================================

def run(bench):
    bench.log("scalar_programs: Greeks and pendulum, eager and replay")
    for key in ("casadi", "casadi-c", "jax"):   # the summary table's row names
        E.LABELS.setdefault(key, LABELS[key])
    if bench.quick:
        programs = [Greeks(5), Pendulum(1_000)]
    else:
        programs = [Greeks(50), Pendulum(10_000)]
    missing = []
    peers = {}
    for key, module in (("casadi", "casadi"), ("jax", "jax")):
        ok, why = have(module)
        peers[key] = ok
        if not ok:
            missing.append(why)
    eager_keys = ["ours", "pyvalue"] + (["torch-scalar"] if bench.has("torch-scalar") else [])
    if not bench.has("torch-scalar"):
        missing.append(bench.avail["torch-scalar"][1])
    replay_keys = ["ours-replay"] + [k for k in ("casadi", "casadi-c", "jax")
                                     if peers[k.split("-")[0]]]
    from autograd import Value
    from autograd._core import graph_size
    import autograd.math as M

    sections = []
    for program in programs:
        nodes = graph_size(program(M, [Value(v) for v in program.inputs]))
        calls, errors, agree_rows = {}, {}, []
        for key in eager_keys:
            calls[key] = eager_call(key, program)
        for key in replay_keys:
            try:
                calls[key] = replay_call(key, program)
            except Exception as e:              # noqa: BLE001 - reported in the table
                errors[key] = f"{type(e).__name__}: {e}"
        # agreement: every engine's value and gradient against ours, float64
        ref_value, ref_grad = calls["ours"]()
        worst = 0.0
        scale = max(1.0, max(abs(g) for g in ref_grad))
        for key, call in calls.items():
            value, gradient = call()
            rel = max([abs(value - ref_value) / max(1.0, abs(ref_value))]
                      + [abs(a - b) / scale for a, b in zip(gradient, ref_grad)])
            worst = max(worst, rel)
            agree_rows.append([LABELS[key], f"{value:.12g}", f"{rel:.1e}",
                               "ok" if rel <= 1e-9 else "DISAGREE"])
        samplers = {k: Sampler(c, prime=False) for k, c in calls.items()}
        # the pendulum's eager peers take seconds a call: fewer rounds keep the run short
        rounds = bench.cfg["big_rounds"] if isinstance(program, Pendulum) else bench.cfg["rounds"]
        samples, errs = alternate(samplers, rounds, bench.cfg["target"], bench.log)
        errors.update(errs)
        rows = []
        for key in eager_keys + replay_keys:
            if key not in samples:
                continue
            t = med(samples[key])
            base = "ours" if key in eager_keys else "ours-replay"
            rows.append([LABELS[key], fmt_time(t), fmt_ns(1e9 * t / nodes),
                         fmt_ratio(pair_ratio(samples, key, base)),
                         fmt_ratio(pair_ratio(samples, key, "ours-replay"))])
        cas = getattr(calls.get("casadi"), "n_instructions", None)
        sections.append(
            f"### {program.name}\n\n{nodes:,} nodes on ours (inputs included); "
            + (f"CasADi's Function: {cas:,} VM instructions (value and gradient). "
               if cas else "")
            + "\n\n" + table(["engine", "per call", "ns per node of ours' graph",
                              "time / ours (eager or replay)", "time / ours replay"], rows)
            + bench.err_note(errors)
            + "\n\nValue and gradient against ours (float64; 1e-9 of the largest "
            "derivative):\n\n" + table(["engine", "value", "max rel. diff", ""], agree_rows))
        short = "Greeks" if isinstance(program, Greeks) else "pendulum"
        r = pair_ratio(samples, "torch-scalar", "ours")
        bench.targets.append((f"{short} eager vs PyTorch 0-dim scalars",
                              f">= {TARGET_VS_TORCH:.0f}x", fmt_ratio(r),
                              verdict(r, TARGET_VS_TORCH)))
        r = pair_ratio(samples, "ours-replay", "casadi")
        bench.targets.append((f"{short} replay / CasADi SX VM", f"<= {TARGET_VS_CASADI}x",
                              fmt_ratio(r), verdict(r, TARGET_VS_CASADI, False)))
        r = pair_ratio(samples, "ours-replay", "jax")
        bench.targets.append((f"{short} replay / JAX jit", "<= 1x", fmt_ratio(r),
                              verdict(r, 1.0, False)))
        bench.targets.append((f"{short}: every engine's value and gradient agree", "<= 1e-9",
                              f"max rel. diff {worst:.1e}", "PASS" if worst <= 1e-9 else "FAIL"))
        for key in samples:
            bench.summary.setdefault(key, {})[f"{short} ns / node"] = fmt_ns(
                1e9 * med(samples[key]) / nodes)
    body = ("The same scalar code (`bench/workloads/scalar_programs.py`, as in "
            "`examples/greeks.py` and `examples/pendulum.py`) on each engine; one call: the "
            "value and its gradient with respect to every input, from floats. Eager: build "
            "and backward every call. Replay: ours sets the inputs through a `ValueVector`, "
            "`Graph.forward()`, zeroes the inputs' grads, `Graph.backward()`, reads them; "
            "CasADi calls an SX `Function` returning the value and `gradient(y, x)` (its "
            "virtual machine; numpy in, DM out), and the same Function generated as C, "
            "compiled with -O3 and loaded back (`casadi.external`); JAX calls "
            "`jit(value_and_grad(f))` on a "
            "float64 array. JAX runs the same per-step code but not one unrolled graph: "
            "XLA's compile time of an unrolled scalar program grows faster than linearly "
            "(200 unrolled pendulum steps did not compile in 5 minutes here), so the "
            "pendulum's loop is `lax.fori_loop` and the book's options a `vmap` of the same "
            "`black_scholes`. ns per node: time over the node count of ours' graph, for every "
            "engine. Ratios: medians of per-round ratios, engines alternating. On the small "
            "book, CasADi's and JAX's times are mostly their Python call overhead (numpy "
            "in, DM or device arrays out), not their virtual machine or compiled code."
            + ("\n\nSkipped: " + "; ".join(missing) + "." if missing else "")
            + "\n\n" + "\n\n".join(sections))
    bench.section("Scalar programs: Greeks and a pendulum (issue 16)", body)
