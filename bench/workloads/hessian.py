"""Full Hessians (issue 17): Rosenbrock in 50 dimensions and a 21-parameter tanh MLP.

Each engine computes the dense Hessian of the same function at a point and hands it
back to Python as a dense float64 matrix:

- ours: ``autograd.functional.hessian(f, x, as_array=True)``, the function built from
  Python each call, then its gradient as a graph and the Hessian by forward over
  reverse (one tangent lane per input, ``method='auto'`` picks it from 3 inputs);
- ours recorded: ``autograd.functional.RecordedHessian(f, x)``, made once (not timed):
  each call sets the inputs, replays the recorded graph of f and its gradient
  (``Graph.forward``) and sweeps it with one tangent lane per input; no Python runs f,
  as JAX and CasADi run a function traced once;
- ours reverse over reverse: the same with ``method='reverse-over-reverse'`` (one
  reverse pass over the gradient's graph per input: the path before issue 17);
- JAX: ``jax.jit(jax.hessian(f))`` in float64, traced and compiled once (the
  compilation is not timed), ``block_until_ready``;
- CasADi: ``casadi.hessian`` of an SX expression, a ``Function`` (its SX virtual
  machine) called on a numpy vector; its result is a sparse ``DM`` (the nonzeros
  only: 148 of Rosenbrock's 2,500 entries), timed as it is (the target's row), and
  again with ``.full()``, the dense numpy matrix the others give;
- PyTorch: ``torch.autograd.functional.hessian`` on a float64 vector (vectorized ops).

The MLP: 2 inputs, 5 tanh units, 1 linear output (10 + 5 + 5 + 1 = 21 parameters); the
function is its squared error summed over 4 fixed points. Engines run alternately
(harness.alternate); ratios are medians of per-round ratios.
"""
import random

import numpy as np

from harness import Sampler, alternate, fmt_ratio, fmt_time, med, pair_ratio, table, verdict

NAME = "hessian"
ORDER = 81           # after hvp
TARGET = 1.0         # faster than jax.jit(jax.hessian) and CasADi (issue 17)

N_ROSEN = 50
MLP_HIDDEN = 5
MLP_POINTS = [(0.5, -1.0, 0.3), (-0.7, 0.2, -0.4), (1.1, 0.8, 0.9), (-0.3, -0.6, -0.1)]


def rosen_point():
    rng = random.Random(17)
    return [rng.uniform(-1.5, 1.5) for _ in range(N_ROSEN)]


def mlp_point():
    rng = random.Random(21)
    return [rng.uniform(-1.0, 1.0) for _ in range(4 * MLP_HIDDEN + 1)]


def rosenbrock(*x):
    """Scalar code: ours (Values) and CasADi (SX) run it alike."""
    s = 0
    for a, b in zip(x, x[1:]):
        s = s + 100 * (b - a ** 2) ** 2 + (1 - a) ** 2
    return s


def mlp_loss(*p, tanh=None):
    """Scalar code: p = W1 (5x2, row-major), b1 (5), W2 (5), b2; squared error over
    MLP_POINTS. `tanh` maps a scalar (None: its .tanh() method)."""
    h = MLP_HIDDEN
    th = tanh or (lambda v: v.tanh())
    loss = 0
    for x0, x1, y in MLP_POINTS:
        out = p[4 * h]
        for j in range(h):
            out = out + p[3 * h + j] * th(p[2 * j] * x0 + p[2 * j + 1] * x1 + p[2 * h + j])
        loss = loss + (out - y) ** 2
    return loss


def rosen_vec(x, xp):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def mlp_vec(p, xp):
    """The same loss vectorized, for JAX and torch (`xp` their numpy)."""
    h = MLP_HIDDEN
    X = xp.asarray([[a, b] for a, b, _ in MLP_POINTS], dtype=p.dtype)
    Y = xp.asarray([y for _, _, y in MLP_POINTS], dtype=p.dtype)
    W1 = p[:2 * h].reshape(h, 2)
    hidden = xp.tanh(X @ W1.T + p[2 * h:3 * h])
    out = hidden @ p[3 * h:4 * h] + p[4 * h]
    return ((out - Y) ** 2).sum()


def engines_for(name, f_scalar, f_vec, point, log):
    from autograd.functional import RecordedHessian, hessian
    calls, notes = {}, []
    calls["ours"] = lambda: hessian(f_scalar, point, as_array=True)
    recorded = RecordedHessian(f_scalar, point)
    xr = np.asarray(point)
    calls["ours-rec"] = lambda: recorded(xr)
    calls["ours-rev"] = lambda: hessian(f_scalar, point, method="reverse-over-reverse",
                                        as_array=True)
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        h = jax.jit(jax.hessian(lambda x: f_vec(x, jnp)))
        xj = jnp.asarray(point, dtype=jnp.float64)
        h(xj).block_until_ready()
        calls["jax"] = lambda: h(xj).block_until_ready()
    except ImportError:
        notes.append("JAX not installed")
    try:
        import casadi
        x = casadi.SX.sym("x", len(point))
        expr = f_scalar(*[x[k] for k in range(len(point))]) if name == "rosen" else \
            mlp_loss(*[x[k] for k in range(len(point))], tanh=casadi.tanh)
        H, _ = casadi.hessian(expr, x)
        F = casadi.Function("H", [x], [H])
        xc = np.asarray(point)
        calls["casadi"] = lambda: F(xc)
        calls["casadi-full"] = lambda: F(xc).full()
    except ImportError:
        notes.append("CasADi not installed")
    try:
        import torch
        xt = torch.tensor(point, dtype=torch.float64)
        calls["torch"] = lambda: torch.autograd.functional.hessian(
            lambda v: f_vec(v, torch), xt)
    except ImportError:
        notes.append("PyTorch not installed")
    return calls, notes


def agreement(calls):
    """The largest difference of each engine's matrix from ours, over ours' largest entry."""
    ref = np.asarray(calls["ours"](), dtype=np.float64)
    scale = np.abs(ref).max()
    out = {}
    for k, c in calls.items():
        m = c()
        m = m.full() if hasattr(m, "full") else m.detach() if hasattr(m, "detach") else m
        m = np.asarray(m, dtype=np.float64)
        out[k] = float(np.abs(m - ref).max() / scale)
    return out


LABELS = {"ours": "ours (`hessian`, forward over reverse)",
          "ours-rec": "ours, recorded once (`RecordedHessian`)",
          "ours-rev": "ours, reverse over reverse",
          "jax": "`jax.jit(jax.hessian)`", "casadi": "CasADi SX `hessian` Function (sparse DM)",
          "casadi-full": "CasADi, `.full()` (dense numpy)",
          "torch": "`torch.autograd.functional.hessian`"}


def chain(depth):
    """A dense function of n inputs: `depth` rounds of s = tanh(s * x_i) + x_i / 2."""
    def f(*x):
        s = x[0]
        for _ in range(depth):
            for xi in x:
                s = (s * xi).tanh() + xi * 0.5
        return s
    return f


def auto_rule(bench, rounds):
    """The measurements behind hessian(method='auto'): reverse over reverse against
    forward over reverse, by the number of inputs and the graph's size."""
    from autograd.functional import AUTO_FORWARD_FROM, hessian
    rows = []
    for n in (1, 2, 3, 5, 10):
        for depth in (2, 50):
            f = chain(depth)
            point = [0.1 * k - 0.3 for k in range(n)]
            samplers = {m: Sampler(lambda m=m: hessian(f, point, method=m, as_array=True))
                        for m in ("forward-over-reverse", "reverse-over-reverse")}
            samples, _ = alternate(samplers, rounds, bench.cfg["target"] / 4)
            ratio = pair_ratio(samples, "reverse-over-reverse", "forward-over-reverse")
            rows.append([str(n), f"{4 * depth * n:,}",
                         fmt_time(med(samples["forward-over-reverse"])),
                         fmt_time(med(samples["reverse-over-reverse"])), fmt_ratio(ratio),
                         "forward" if n >= AUTO_FORWARD_FROM else "reverse"])
    return ("### `method='auto'`: reverse over reverse / forward over reverse\n\n"
            "A dense function (rounds of `s = tanh(s * x_i) + x_i / 2`), built each call; "
            "ratio > 1: forward over reverse is faster.\n\n"
            + table(["inputs", "nodes of f", "forward over reverse", "reverse over reverse",
                     "reverse / forward", "auto picks"], rows))


def run(bench):
    rounds = 3 if bench.quick else min(bench.cfg["rounds"], 7)
    problems = [("rosen", f"Rosenbrock-{N_ROSEN}", rosenbrock, rosen_vec, rosen_point()),
                ("mlp", f"tanh MLP-{4 * MLP_HIDDEN + 1}", mlp_loss, mlp_vec, mlp_point())]
    body = []
    for key, title, f_scalar, f_vec, point in problems:
        bench.log(f"hessian: {title}")
        calls, notes = engines_for(key, f_scalar, f_vec, point, bench.log)
        agree = agreement(calls)
        samplers = {k: Sampler(c) for k, c in calls.items()}
        samples, errors = alternate(samplers, rounds, bench.cfg["target"], bench.log)
        rows = []
        for k in calls:
            if k not in samples:
                continue
            r = pair_ratio(samples, k, "ours")
            rows.append([LABELS[k], fmt_time(med(samples[k])), fmt_ratio(r),
                         f"{agree[k]:.1e}"])
        body.append(f"### {title} ({len(point)} inputs)\n\n"
                    + table(["engine", "per Hessian", "time / ours", "max diff / max |H|"],
                            rows)
                    + "".join(f"\n\n- {k} failed: {v}" for k, v in errors.items())
                    + "".join(f"\n\n- {n}" for n in notes))
        for ours, how in (("ours-rec", "recorded"), ("ours", "built each call")):
            for peer, label in (("jax", "jax.jit(jax.hessian)"),
                                ("casadi", "CasADi's hessian")):
                ratio = pair_ratio(samples, peer, ours)
                bench.targets.append((f"Hessian of {title}, ours {how}, vs {label}",
                                      f"> {TARGET:g}x", fmt_ratio(ratio),
                                      verdict(ratio, TARGET * 1.0000001)))
    bench.log("hessian: the auto rule")
    body.append(auto_rule(bench, 2 if bench.quick else 5))
    bench.section(
        "Full Hessians: Rosenbrock-50 and a tanh MLP-21",
        "The dense Hessian of each function at a point, handed back to Python as a "
        "float64 matrix. JAX and CasADi evaluate a function traced and compiled once; "
        "ours recorded replays a graph recorded once (the like-for-like row), ours "
        "`hessian` builds the function from Python on every call.\n\n"
        + "\n\n".join(body))
