"""Backward on a dot-product graph at growing sizes, on every engine."""
import gc

import engines as E
from harness import (Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, no_setup,
                     pair_ratio, table, verdict, zero_grads_setup)

NAME = "backward"
ORDER = 20
TARGET = 50.0        # backward vs micrograd, at every size

def run(bench):
    bench.log("2. backward")
    wanted = ["ours", "ours-replay", "micrograd", "micrograd-nogc", "torch-scalar",
              "torch-vec"]
    rows = []
    ratios = []
    notes = []
    for n in bench.cfg["backward_sizes"]:
        nodes = E.dot_nodes(n)
        bench.log(f"  dot graph of {nodes:,} nodes")
        samplers = {}
        keep = []
        for k in bench.keys(*wanted):
            if k == "torch-scalar" and n > bench.cfg["torch_scalar_max"]:
                continue
            if k == "torch-vec":
                import torch
                m = E.dot_terms(n)
                w = torch.rand(m, dtype=torch.float64, requires_grad=True)
                x = torch.rand(m, dtype=torch.float64, requires_grad=True)
                root = torch.dot(w, x)
                keep.append((w, x, root))
                samplers[k] = Sampler(lambda r=root: r.backward(retain_graph=True),
                                      prime=False, setup=no_setup)
                continue
            if k == "ours-replay":
                continue
            eng = E.Scalar(k)
            try:
                ws, xs = E.dot_leaves(eng, n)
                root = E.dot(ws, xs)
            except Exception as e:  # noqa: BLE001
                notes.append(f"{E.LABELS[k]} at {nodes:,} nodes: build failed: {e}")
                continue
            keep.append((ws, xs, root))
            samplers[k] = Sampler(lambda eng=eng, r=root: eng.backward(r), nogc=eng.nogc,
                                  prime=False, setup=zero_grads_setup(k, root))
            if k == "ours" and bench.has("ours-replay"):
                from autograd import Graph
                g = Graph(root)
                keep.append(g)
                samplers["ours-replay"] = Sampler(g.backward, prime=False, setup=g.forward)
        rounds = bench.cfg["rounds"] if n < 10**6 else bench.cfg["big_rounds"]
        samples, errors = alternate(samplers, rounds, bench.cfg["target"], bench.log)
        for k, v in errors.items():
            notes.append(f"{E.LABELS[k]} at {nodes:,} nodes: {v}")
        del keep, samplers
        gc.collect()
        r_mg = pair_ratio(samples, "micrograd", "ours")
        if r_mg == r_mg:
            ratios.append((nodes, r_mg))
        for k, v in samples.items():
            bench.summary.setdefault(k, {})["backward"] = (nodes, med(v) / nodes * 1e9)
        for k in wanted:
            if k not in samples:
                continue
            rows.append([f"{nodes:,}", E.LABELS[k],
                         fmt_ns(med(samples[k]) / nodes * 1e9), fmt_time(med(samples[k])),
                         fmt_ratio(pair_ratio(samples, k, "ours"))])
    body = ("`root.backward()` on a dot-product graph (`sum(w * x ...)`, 4 nodes per term; "
            "leaves included in the node count), repeated on the same graph, each call "
            "timed alone after an untimed reset of the interior grads. Ours (eager) "
            "includes its topological sort; the replay row is `Graph.backward()` on the "
            "recorded graph (sort done once). micrograd runs with a raised recursion limit in "
            "a thread with a 1 GiB stack. PyTorch vectorized is one `torch.dot` of "
            "two n/4-vectors, per equivalent scalar node.\n\n"
            + table(["nodes", "engine", "ns / node", "per backward", "time / ours"], rows)
            + ("\n\n" + "\n".join(f"- {x}" for x in notes) if notes else "")
            + bench.skipped_note(wanted))
    bench.section("2. Backward", body)
    if ratios:
        n, r = ratios[-1]
        bench.headline(f"backward on a {n:,}-node graph: {fmt_ratio(r)} faster than "
                       "micrograd 0.1.0")
        worst = min(r for _, r in ratios)
        detail = ", ".join(f"{r:,.0f}x at {n:,}" for n, r in ratios)
        bench.targets.append(("backward vs micrograd (every size)", ">= 50x",
                             f"min {worst:,.0f}x ({detail})",
                             verdict(worst, TARGET)))
    else:
        bench.targets.append(("backward vs micrograd", ">= 50x", "n/a", "not measured"))
