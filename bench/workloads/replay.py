"""Graph replay's ns per node against a plain C loop over the same arrays."""
import gc

import cfloor
import engines as E
from harness import fmt_n, fmt_ns, fmt_ratio, table

NAME = "replay"
ORDER = 50


def run(bench):
    bench.log("replay: ns per node vs a plain C loop")
    from autograd import Graph, Value
    X, y = E.moons()
    cases = [("demo step graph",
              lambda eng: E.demo_loss(eng.leaf, E.swapped_mlp(eng.leaf), X, y)),
             (f"chain, {fmt_n(bench.cfg['mem_nodes'])} nodes",
              lambda eng: E.chain(eng, bench.cfg["mem_nodes"])),
             (f"dot, {fmt_n(bench.cfg['mem_nodes'])} nodes",
              lambda eng: E.dot(*E.dot_leaves(eng, bench.cfg["mem_nodes"])))]
    rows = []
    demo_pair = None
    min_time = 0.05 if bench.quick else 0.2
    for name, build in cases:
        eng = E.Scalar("ours")
        root = build(eng)
        g = Graph(root)
        n = len(g)
        f, b = cfloor.forward_backward_ns(g.forward, g.backward, n, min_time)
        del g, root
        gc.collect()
        ref = cfloor.measure(build, min_time)
        if ref["nodes"] != n:
            bench.notes.append(f"replay floor: {name}: the C replica has {ref['nodes']} "
                              f"nodes, the Graph {n}")
        cf, cb = ref.get("c_forward", float("nan")), ref.get("c_backward", float("nan"))
        if demo_pair is None:
            demo_pair = (name, n, f + b, cf + cb)
        rows.append([name, f"{n:,}", fmt_ns(f), fmt_ns(b), fmt_ns(cf), fmt_ns(cb),
                     fmt_ratio(f / cf) if cf == cf else "n/a",
                     fmt_ratio(b / cb) if cb == cb else "n/a",
                     fmt_ns(ref["numpy_stream"])])
    c_note = ("" if cfloor.load() is not None else
              f"\n\nThe C loop could not be built here ({cfloor.error()}).")
    body = ("ns per node (all nodes, leaves included) of `Graph.forward()` and "
            "`Graph.backward()` (forward: best of 5 batches; backward: best single call, each "
            "right after an untimed forward, so that grads never pile up), against a plain C loop "
            "(`bench/cfloor.py`, compiled with -O3: one `switch` per step, no error checks, "
            "no Python) over an equivalent graph: the same graph recorded from the same "
            "Python code, laid out as the core's replay reads it (data and grad arrays of "
            "doubles, a tape of 16-byte steps for the non-leaf nodes in `Graph`'s order). "
            "The replica's node indices are the creation order; ours reuses freed arena "
            "slots, so its indices may be scattered. The last column is a bandwidth "
            "reference, not a loop: numpy streaming once through the replica's data, grad "
            "and tape bytes, per node.\n\n"
            + table(["graph", "nodes", "replay fwd ns/node", "replay bwd ns/node",
                     "C fwd ns/node", "C bwd ns/node", "fwd / C", "bwd / C",
                     "numpy stream ns/node"], rows) + c_note)
    bench.section("Replay: ns per node against a plain C loop", body)
    if demo_pair:
        name, n, ours, c = demo_pair
        bench.headline(f"replay of the {name}: {fmt_ns(ours)} ns a node (forward + backward)"
                       + (f", {fmt_ratio(ours / c)} the time of a plain C loop" if c == c else ""))
