"""The op dispatch, before and after: ns per node of ``Graph.forward()``, ``Graph.backward()``
and ``Value.backward()`` on the installed core and, paired in the same process, on the core
of a git ref (``--baseline REF``, default ``main``; bench/baseline.py).

A change of the op table (a new row, a new column) or of the loops that run it must leave
these within noise: every op of every graph goes through that dispatch.
"""
import os
import sys

import engines as E
from harness import Sampler, alternate, fmt_n, fmt_ns, fmt_ratio, med, pair_ratio, table

NAME = "dispatch"
ORDER = 51


def graphs(bench):
    n = bench.cfg["mem_nodes"]
    X, y = E.moons()
    return [("demo step graph",
             lambda Value: E.demo_loss(Value, E.swapped_mlp(Value), X, y)),
            (f"chain, {fmt_n(n)} nodes", lambda Value: E.chain(Leaf(Value), n)),
            (f"dot, {fmt_n(n)} nodes", lambda Value: E.dot(*E.dot_leaves(Leaf(Value), n)))]


class Leaf:
    """The `eng` argument engines.chain and engines.dot_leaves take, for any Value class."""

    def __init__(self, Value):
        self.leaf = Value


def samplers(core, build):
    """Graph.forward, Graph.backward and Value.backward of one core on one graph."""
    root = build(core.Value)
    g = core.Graph(root)
    g.forward()
    n = len(g)

    def fresh():
        g.forward()             # zeroes the grads: backward never piles them up
    return n, {"forward": Sampler(g.forward, prime=False),
               "backward": Sampler(g.backward, prime=False, setup=fresh),
               "Value.backward": Sampler(root.backward, prime=False, setup=fresh)}


def run(bench):
    import autograd._core as new
    ref = getattr(bench.args, "baseline", None) or "main"
    old, why = None, ""
    if bench.quick:
        why = "--quick: the installed core only (no baseline build)"
    else:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            import baseline
            bench.log(f"dispatch: loading the core of {ref}")
            old = baseline.load(ref)
            label_old = baseline.describe(old)
        except Exception as e:  # noqa: BLE001 - no Cython, no git: say so
            why = f"no baseline ({type(e).__name__}: {e})"
    bench.log("dispatch: replay and backward ns per node" +
              (f", against {label_old}" if old else ""))
    rows = []
    for name, build in graphs(bench):
        n, after = samplers(new, build)
        before = samplers(old, build)[1] if old is not None else {}
        for kind in after:
            pair = {"after": after[kind]}
            if kind in before:
                pair["before"] = before[kind]
            samples, errors = alternate(pair, bench.cfg["rounds"], bench.cfg["target"] / 4)
            a = med(samples.get("after", [])) / n * 1e9
            if "before" in samples:
                b = med(samples["before"]) / n * 1e9
                rows.append([name, kind, fmt_ns(b), fmt_ns(a),
                             fmt_ratio(pair_ratio(samples, "after", "before"))])
            else:
                rows.append([name, kind, fmt_ns(a)])
            for k, e in errors.items():
                bench.notes.append(f"dispatch: {name} {kind} on {k}: {e}")
    if old is not None:
        body = (f"ns per node (leaves included), {label_old} (before) against the installed "
                "core (after), alternating round by round; the ratio is the median of the "
                "per-round after / before ratios (1.00x: unchanged).\n\n" +
                table(["graph", "loop", "before ns/node", "after ns/node", "after / before"],
                      rows))
    else:
        body = f"{why}.\n\n" + table(["graph", "loop", "ns/node"], rows)
    bench.section("Op dispatch: replay and backward per node, before and after", body)
