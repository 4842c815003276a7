"""Where ours' eager demo step goes: phase timings against the same lines on floats."""
import gc
import time

import engines as E
from harness import fmt_ns, fmt_time, med, table

NAME = "breakdown"
ORDER = 40


def run(bench):
    """Phase timings of ours' eager demo step, each forward phase against the same
    code on floats, with the number of graph nodes each phase makes."""
    bench.log("3b. breakdown of ours' eager step")
    import random

    from autograd import Graph, Value
    from autograd._core import arena_stats
    from autograd.nn import MLP
    X, y = E.moons()
    random.seed(E.SEED)
    model = MLP(2, [16, 16, 1])
    fmodel = E.FloatMLP(E.reference_weights())
    relu = E._relu
    reps = bench.cfg["breakdown_reps"]
    names = ("inputs", "mlp", "loss", "zero_grad", "backward", "sgd", "free", "sort",
             "chain_rule", "f_inputs", "f_mlp", "f_loss")
    ph = {k: [] for k in names}
    pc = time.perf_counter
    count = {}

    def live():
        return arena_stats()["live"]

    for r in range(reps + 2):
        gc.collect()
        n0 = live()
        t0 = pc()
        inputs = [list(map(Value, xrow)) for xrow in X]
        t1 = pc()
        n1 = live()
        scores = list(map(model, inputs))
        t2 = pc()
        n2 = live()
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = E.ALPHA * sum((p * p for p in model.parameters()))
        total = data_loss + reg_loss
        t3 = pc()
        n3 = live()
        del inputs, scores, losses, data_loss, reg_loss
        t3b = pc()
        model.zero_grad()
        t4 = pc()
        total.backward()
        t5 = pc()
        for p in model.parameters():
            p.data -= 0.01 * p.grad
        t6 = pc()
        g = Graph(total)
        t7 = pc()
        g.backward()
        t8 = pc()
        nodes = len(g)
        del g
        t9 = pc()
        del total
        t10 = pc()
        # the floor: the same lines on floats
        finputs = [list(map(float, xrow)) for xrow in X]
        t11 = pc()
        fscores = list(map(fmodel, finputs))
        t12 = pc()
        flosses = [relu(1 + -yi * scorei) for yi, scorei in zip(y, fscores)]
        fdata = sum(flosses) * (1.0 / len(flosses))
        freg = E.ALPHA * sum((p * p for p in fmodel.parameters()))
        ftotal = fdata + freg
        t13 = pc()
        del finputs, fscores, flosses, ftotal
        if r < 2:
            continue
        for k, v in (("inputs", t1 - t0), ("mlp", t2 - t1), ("loss", t3 - t2),
                     ("zero_grad", t4 - t3b), ("backward", t5 - t4), ("sgd", t6 - t5),
                     ("sort", t7 - t6), ("chain_rule", t8 - t7), ("free", t10 - t9),
                     ("f_inputs", t11 - t10), ("f_mlp", t12 - t11), ("f_loss", t13 - t12)):
            ph[k].append(v)
        count = {"inputs": n1 - n0, "mlp": n2 - n1, "loss": n3 - n2, "nodes": nodes}
    m = {k: med(v) for k, v in ph.items()}
    step = sum(m[k] for k in ("inputs", "mlp", "loss", "zero_grad", "backward", "sgd",
                              "free"))
    nodes = count["nodes"]

    def row(label, k, per=None, floor=None):
        cells = [label, fmt_time(m[k]), f"{m[k] / step * 100:.0f}%",
                 f"{count[per]:,}" if per else "",
                 fmt_ns(m[k] / count[per] * 1e9) if per else ""]
        if floor:
            cells += [fmt_time(m[floor]), fmt_ns(m[floor] / count[per] * 1e9)]
        else:
            cells += ["", ""]
        return cells

    rows = [
        row("inputs: `[list(map(Value, xrow)) ...]`", "inputs", "inputs", floor="f_inputs"),
        row("MLP forward: `list(map(model, inputs))` (nn.Neuron: core `dot` + relu)",
            "mlp", "mlp", floor="f_mlp"),
        row("loss lines: hinge, mean, L2 (Python operators on Values)", "loss", "loss",
            floor="f_loss"),
        row("`model.zero_grad()` (Python loop, 337 params)", "zero_grad"),
        row("`total.backward()` (C: sort + chain rule)", "backward", "nodes"),
        row("SGD loop (Python, 337 params)", "sgd"),
        row("dropping the graph (C: iterative free)", "free", "nodes"),
        ["**sum of the phases**", f"**{fmt_time(step)}**", "100%", f"{nodes:,}", "",
         "", ""],
        row("backward's topological sort alone (`Graph(root)`)", "sort", "nodes"),
        row("backward's chain rule alone (`Graph.backward()`)", "chain_rule", "nodes"),
    ]
    over = (m["loss"] - m["f_loss"]) / count["loss"] * 1e9
    body = (f"Phase timings of one eager step (median of {reps}); the forward's phases are "
            "timed against the same lines on floats (the floor; micrograd's Neuron code, a "
            "Python `sum` of products). Nodes: graph nodes the phase makes (leaves "
            f"included). On the Python-operator lines ours costs {fmt_ns(over)} ns per node "
            "above plain floats. See bench/PROFILE.md for what a profiler says.\n\n"
            + table(["phase", "time", "share", "nodes", "ns / node", "floor (floats)",
                     "floor ns / node"], rows))
    bench.section("3b. Where the eager demo step goes (ours)", body)
