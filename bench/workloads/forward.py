"""The forward build: a dot product built with Python operators, per op, on every engine."""
import engines as E
from harness import Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, pair_ratio, table

NAME = "forward"
ORDER = 10


def run(bench):
    m = bench.cfg["dot_terms"]
    bench.log(f"1. forward build: a {m}-term dot product")
    wanted = ["ours", "micrograd", "micrograd-nogc", "torch-scalar", "floats"]
    samplers = {}
    for k in bench.keys(*wanted):
        eng = E.Scalar(k)
        ws, xs = E.dot_leaves(eng, 4 * m + 1)
        samplers[k] = Sampler(lambda ws=ws, xs=xs: E.dot(ws, xs), nogc=eng.nogc, keep=True)
    core_dot = getattr(__import__("autograd._core", fromlist=["dot"]), "dot", None)
    if core_dot is not None:
        # the same nodes from one C call (what nn.Neuron uses); start 0 -> a Value(0)
        from autograd import Value
        eng = E.Scalar("ours")
        ws, xs = E.dot_leaves(eng, 4 * m + 1)
        samplers["ours-dot"] = Sampler(lambda ws=ws, xs=xs: core_dot(ws, xs, Value(0)),
                                       keep=True)
        wanted.insert(1, "ours-dot")
    samples, errors = alternate(samplers, bench.cfg["rounds"], bench.cfg["target"], bench.log)
    ops = 2 * m
    rows = []
    for k in wanted:
        if k not in samples:
            continue
        ns = med(samples[k]) / ops * 1e9
        bench.summary.setdefault(k, {})["build"] = ns
        rows.append([E.LABELS[k], fmt_ns(ns), fmt_time(med(samples[k])),
                     fmt_ratio(pair_ratio(samples, k, "ours"))])
    body = (f"`sum(w * x for w, x in zip(ws, xs))` over {m:,} pre-made leaf pairs: "
            f"{ops:,} binary ops. Building only (the graph is freed outside the timer). "
            "The `_core.dot` row builds the same nodes in one call, as ours' `nn.Neuron` "
            "does.\n\n"
            + table(["engine", "ns / op", "per build", "time / ours"], rows)
            + bench.err_note(errors) + bench.skipped_note(wanted))
    bench.section("1. Forward build", body)
    r = pair_ratio(samples, "micrograd", "ours")
    if "ours" in samples and r == r:
        bench.headline(f"building a graph (`w * x` summed): "
                       f"{fmt_ns(med(samples['ours']) / ops * 1e9)} ns per op, "
                       f"{fmt_ratio(r)} faster than micrograd 0.1.0")
