"""Forward + backward per node against graph size (chain and wide shapes); feeds the plot."""
import gc
import math
import sys

import engines as E
from harness import (BIG_RECURSION, BIG_STACK, Sampler, alternate, fmt_n, fmt_ns, fmt_ratio,
                     med, pair_ratio, table)

NAME = "scaling"
ORDER = 60


def run(bench):
    bench.log("4. scaling")
    wanted = ["ours", "ours-replay", "micrograd", "micrograd-nogc", "torch-scalar",
              "floats"]
    present = bench.keys(*wanted)
    rows = []
    notes = []
    stopped = {}
    for shape, (build, count) in E.SHAPES.items():
        for n in bench.cfg["scaling_sizes"]:
            nodes = count(n)
            bench.log(f"  {shape}, {nodes:,} nodes")
            samplers = {}
            keep = []
            for k in present:
                if (shape, k) in stopped:
                    continue
                if k in ("micrograd", "micrograd-nogc") and n > bench.cfg["ref_max"]:
                    continue
                if k == "torch-scalar" and n > bench.cfg["torch_scalar_max"]:
                    continue
                if k == "ours-replay":
                    from autograd import Graph
                    root = build(E.Scalar("ours"), n)
                    g = Graph(root)
                    keep.append((root, g))

                    def replay(g=g):
                        g.forward()
                        g.backward()
                    samplers[k] = Sampler(replay, prime=False)
                    continue
                eng = E.Scalar(k)

                def fwd_bwd(eng=eng, build=build, n=n):
                    root = build(eng, n)
                    eng.backward(root)
                samplers[k] = Sampler(fwd_bwd, nogc=eng.nogc)
            rounds = bench.cfg["rounds"] if n < 10**6 else bench.cfg["big_rounds"]
            if n >= 10**6 and not bench.quick:
                # one priming call per round is a lot at this size: prime only micrograd
                for k, s in samplers.items():
                    s.prime = k == "micrograd"
            samples, errors = alternate(samplers, rounds, bench.cfg["target"], bench.log)
            for k, v in errors.items():
                notes.append(f"{E.LABELS[k]}, {shape} of {nodes:,} nodes: {v}")
                stopped[(shape, k)] = v
            for k in wanted:
                if k not in samples:
                    continue
                ns = med(samples[k]) / nodes * 1e9
                bench.scaling_pts.setdefault((k, shape), {})[nodes] = ns
                rows.append([shape, f"{nodes:,}", E.LABELS[k], fmt_ns(ns),
                             fmt_ratio(pair_ratio(samples, k, "ours"))])
                if samplers.get(k) and samplers[k].single > bench.cfg["slow_limit"]:
                    stopped[(shape, k)] = f"one call took {samplers[k].single:.0f} s"
                    notes.append(f"{E.LABELS[k]}: {shape} stops at {nodes:,} nodes (one call "
                                 f"took {samplers[k].single:.0f} s)")
            del keep, samplers
            gc.collect()
    body = ("Forward + backward per node, building the graph from Python each call (ours "
            "replay: `g.forward(); g.backward()` on a recorded graph; floor: the build on "
            "floats, no backward). **chain**: `y = y * w + b` repeated (depth = size, "
            "micrograd needs its recursion limit raised); **wide**: products of fresh leaf "
            "pairs summed as a balanced tree (depth log2 size). Freeing happens inside the "
            f"timing where the engine frees (ours, torch), outside for micrograd-nogc. "
            f"References run up to {fmt_n(bench.cfg['ref_max'])} nodes; 10^7 is ours only. "
            "Plot: `scaling.svg`.\n\n"
            + table(["shape", "nodes", "engine", "ns / node", "time / ours"], rows)
            + ("\n\n" + "\n".join(f"- {x}" for x in notes) if notes else "")
            + "\n\n" + _recursion_probe(bench)
            + bench.skipped_note(wanted))
    bench.section("4. Scaling", body)

def _recursion_probe(bench):
    """Where micrograd's recursive topological sort fails at the default limit."""
    if not bench.has("micrograd"):
        return ""
    eng = E.Scalar("micrograd")
    results = []
    old = sys.getrecursionlimit()
    default = 1000
    for shape, build in (("chain", lambda n: E.chain(eng, n)),
                         ("dot", lambda n: E.dot(*E.dot_leaves(eng, n)))):
        ok_max, fail_min = None, None
        for n in (250, 500, 10**3, 2 * 10**3, 5 * 10**3, 10**4):
            root = build(n)
            sys.setrecursionlimit(default)
            try:
                eng.backward(root)
                ok_max = n
            except RecursionError:
                fail_min = n
                break
            finally:
                sys.setrecursionlimit(old)
                del root
        if fail_min is None:
            results.append(f"{shape}: works up to {ok_max:,} nodes (the largest tried)")
        elif ok_max is None:
            results.append(f"{shape}: RecursionError already at {fail_min:,} nodes")
        else:
            results.append(f"{shape}: works at {ok_max:,} nodes, RecursionError at "
                           f"{fail_min:,}")
    gc.collect()
    ran = ", ".join(f"{shape} up to {max(bench.scaling_pts[('micrograd', shape)]):,} nodes"
                    for shape in E.SHAPES if ("micrograd", shape) in bench.scaling_pts)
    return (f"micrograd at Python's default recursion limit ({default}): "
            + "; ".join(results) + f". With the limit raised to 10^{int(math.log10(BIG_RECURSION))} "
            f"in a thread with a {BIG_STACK >> 20} MiB stack it ran {ran or 'nothing'} "
            f"(larger sizes were not attempted: {fmt_n(bench.cfg['ref_max'])} is the "
            "references' cap).")
