"""A Hessian-vector product of micrograd's demo loss with respect to its 337 parameters.

The same scalar program on each engine: build the demo loss (``engines.demo_loss`` on
``MLP(2, [16, 16, 1])``), differentiate it with ``create_graph=True``, then differentiate
the gradient again with ``grad_outputs=v`` (the double-backward HVP):

    g = grad(loss, params, create_graph=True)
    hv = grad(g, params, grad_outputs=v)

ours: ``autograd.grad``; torch-scalar: ``torch.autograd.grad`` on 0-dim float64 tensors
(micrograd's nn code with tensors for weights, as in the demo workload). Also timed
alone: the create-graph pass, per node it builds.
"""
import gc
import random

import engines as E
from harness import Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, pair_ratio, table, \
    verdict

NAME = "hvp"
ORDER = 80           # after the built-in workloads (10..70)
TARGET = 20.0        # >= 20x torch scalars


def _vector(n):
    rng = random.Random(7)
    return [rng.uniform(-1.0, 1.0) for _ in range(n)]


class OursHVP:
    def __init__(self, X, y):
        from autograd import Value, grad
        from autograd.nn import MLP
        random.seed(E.SEED)
        self.model = MLP(2, [16, 16, 1])
        self.params = self.model.parameters()
        self.v = _vector(len(self.params))
        self.X, self.y, self.Value, self.grad = X, y, Value, grad

    def loss(self):
        return E.demo_loss(self.Value, self.model, self.X, self.y)

    def hvp(self):
        g = self.grad(self.loss(), self.params, create_graph=True)
        return [h.data for h in self.grad(g, self.params, grad_outputs=self.v)]


class TorchHVP:
    def __init__(self, X, y):
        import torch
        f64 = torch.float64
        self.torch = torch
        self.model = E.swapped_mlp(lambda x: torch.tensor(x, dtype=f64, requires_grad=True))
        self.params = self.model.parameters()
        self.v = [torch.tensor(x, dtype=f64) for x in _vector(len(self.params))]
        self.X, self.y = X, y
        self.Value = lambda x, torch=torch, f64=f64: torch.tensor(x, dtype=f64)

    def loss(self):
        return E.demo_loss(self.Value, self.model, self.X, self.y)

    def hvp(self):
        grad = self.torch.autograd.grad
        g = grad(self.loss(), self.params, create_graph=True)
        return [h.item() for h in grad(g, self.params, grad_outputs=self.v)]


def run(bench):
    X, y = E.moons()
    if bench.quick:
        X, y = X[:10], y[:10]        # torch scalars take seconds per HVP
    bench.log(f"hvp: Hessian-vector product of the demo loss ({len(X)} points)")
    from autograd import grad
    from autograd._core import arena_stats, graph_size

    ours = OursHVP(X, y)
    engines = {"ours": ours}
    if bench.has("torch-scalar"):
        engines["torch-scalar"] = TorchHVP(X, y)

    # the graphs: sizes, and the create-graph pass alone
    loss = ours.loss()
    first = graph_size(loss)
    live0 = arena_stats()["live"]
    g = grad(loss, ours.params, create_graph=True)
    built = arena_stats()["live"] - live0       # nodes made by the pass, alive in g
    del g
    gc.collect()

    # no cyclic garbage on either engine: no priming call (torch takes seconds a call)
    samplers = {k: Sampler(e.hvp, prime=False) for k, e in engines.items()}
    samplers["ours-pass"] = Sampler(lambda: grad(loss, ours.params, create_graph=True),
                                    keep=True)
    rounds = min(bench.cfg["rounds"], 5) if not bench.quick else 2
    samples, errors = alternate(samplers, rounds, bench.cfg["target"], bench.log)

    results = {k: e.hvp() for k, e in engines.items()}
    agree = "n/a"
    if "torch-scalar" in results:
        a, b = results["ours"], results["torch-scalar"]
        scale = max(abs(x) for x in b)
        agree = f"{max(abs(p - q) for p, q in zip(a, b)) / scale:.1e}"

    ratio = pair_ratio(samples, "torch-scalar", "ours")
    pass_ns = med(samples.get("ours-pass", [])) / built * 1e9
    rows = [["ours (`autograd.grad`)", fmt_time(med(samples.get("ours", []))), "1.00x"]]
    if "torch-scalar" in samples:
        rows.append([E.LABELS["torch-scalar"] + " (`torch.autograd.grad`)",
                     fmt_time(med(samples["torch-scalar"])), fmt_ratio(ratio)])
    body = (
        f"`hv = grad(grad(loss, params, create_graph=True), params, grad_outputs=v)` for "
        f"micrograd's demo loss on {len(X)} points, {len(ours.params)} parameters, "
        "the loss built afresh each call, the same Python code on each engine.\n\n"
        + table(["engine", "per HVP", "time / ours"], rows)
        + f"\n\nThe loss graph has {first:,} nodes; the create-graph pass builds "
        f"{built:,} ({built / first:.2f}x the first-order graph) in "
        f"{fmt_time(med(samples.get('ours-pass', [])))}: {fmt_ns(pass_ns)} ns per node "
        f"built. The two engines' HVPs agree to {agree} (largest difference over the "
        "largest entry)."
        + ("".join(f"\n\n- {k} failed: {v}" for k, v in errors.items()))
        + bench.skipped_note(["torch-scalar"]))
    bench.section("HVP: second derivatives of the demo loss", body)
    if ratio == ratio:
        bench.headline(f"a Hessian-vector product of the demo loss: "
                       f"{fmt_time(med(samples['ours']))}, {fmt_ratio(ratio)} faster than "
                       "PyTorch 0-dim scalars")
    else:
        bench.headline(f"a Hessian-vector product of the demo loss: "
                       f"{fmt_time(med(samples.get('ours', [])))} (PyTorch scalars: "
                       + ("not in a quick run" if bench.quick
                          else bench.avail["torch-scalar"][1]) + ")")
    bench.targets.append(("HVP of the demo loss vs torch scalars", f">= {TARGET:g}x",
                          fmt_ratio(ratio), verdict(ratio, TARGET)))
