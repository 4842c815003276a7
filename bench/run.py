#!/usr/bin/env python
"""The benchmark suite: our engine against micrograd, PyTorch and the floor, in one run.

    python bench/run.py            # full run (~10 min): writes bench/RESULTS.md, bench/scaling.svg
    python bench/run.py --quick    # small version (<1 min), writes to bench/out/ (CI runs this)

Method: every workload runs its engines alternately in one process (A B C A B C ...),
after a warm-up call; each sample is one call or a calibrated batch of calls; reported
are medians, and ratios are the median of the per-round (pair-by-pair) ratios. Absolute
times are for orientation only: this machine is shared and noisy. See bench/README.md.

Nothing is installed here: PyTorch rows are skipped ("torch not installed") when
``import torch`` fails, micrograd rows likewise.
"""
import argparse
import datetime
import functools
import importlib
import gc
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import cfloor  # noqa: E402
import engines as E  # noqa: E402
import harness  # noqa: E402
from harness import (Sampler, alternate, fmt_n, fmt_ns, fmt_ratio, fmt_time,  # noqa: E402
                     med, no_setup, pair_ratio, table, verdict, zero_grads_setup)

BIG_RECURSION = 10**8          # micrograd's build_topo recurses once per graph level
BIG_STACK = 1 << 30            # ... so the whole bench runs in a thread with a 1 GiB stack

TARGETS = {
    "demo_vs_micrograd": 150.0,
    "demo_vs_micrograd_nogc": 30.0,
    "backward_vs_micrograd": 50.0,
    "bytes_per_node": 80.0,
    "replay_vs_micrograd": 2000.0,
    "replay_vs_torch_vec": 1.0,
}


# =============================================================================
# Configuration
# =============================================================================

def config(quick):
    if quick:
        return dict(rounds=3, big_rounds=2, target=0.02, dot_terms=2000,
                    backward_sizes=[10**3, 10**4], scaling_sizes=[10**3, 10**4, 10**5],
                    ref_max=10**4, torch_scalar_max=10**4, demo_rounds=2, check_steps=2,
                    mem_nodes=10**5, rss_steps=30, breakdown_reps=5, slow_limit=5.0)
    return dict(rounds=7, big_rounds=3, target=0.2, dot_terms=2000,
                backward_sizes=[10**3, 10**5, 10**6],
                scaling_sizes=[10**3, 10**4, 10**5, 10**6, 10**7],
                ref_max=10**6, torch_scalar_max=10**6, demo_rounds=15, check_steps=5,
                mem_nodes=10**6, rss_steps=200, breakdown_reps=30, slow_limit=30.0)


# =============================================================================
# The run
# =============================================================================

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.cfg = config(args.quick)
        self.avail = E.probe()
        self.sections = []           # markdown blocks, in order
        self.targets = []            # (name, target text, achieved text, verdict)
        self.notes = []
        self.scaling_pts = {}        # (engine, shape) -> {n: ns per node}
        self.summary = {}            # engine -> {column: value}, for the summary table
        self.t_start = time.perf_counter()

    # -- helpers ---------------------------------------------------------------

    def log(self, msg):
        print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def has(self, key):
        return self.avail[key][0]

    def keys(self, *wanted):
        return [k for k in wanted if self.has(k)]

    def section(self, title, body):
        self.sections.append(f"## {title}\n\n{body}\n")
        print(f"\n## {title}\n\n{body}\n", flush=True)

    def skipped_note(self, wanted):
        miss = sorted({self.avail[k][1] for k in wanted if not self.has(k)})
        return ("\n\nSkipped: " + "; ".join(miss) + ".") if miss else ""

    # -- 1. forward build -------------------------------------------------------

    def forward_build(self):
        m = self.cfg["dot_terms"]
        self.log(f"1. forward build: a {m}-term dot product")
        wanted = ["ours", "micrograd", "micrograd-nogc", "torch-scalar", "floats"]
        samplers = {}
        for k in self.keys(*wanted):
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
        samples, errors = alternate(samplers, self.cfg["rounds"], self.cfg["target"], self.log)
        ops = 2 * m
        rows = []
        for k in wanted:
            if k not in samples:
                continue
            ns = med(samples[k]) / ops * 1e9
            self.summary.setdefault(k, {})["build"] = ns
            rows.append([E.LABELS[k], fmt_ns(ns), fmt_time(med(samples[k])),
                         fmt_ratio(pair_ratio(samples, k, "ours"))])
        body = (f"`sum(w * x for w, x in zip(ws, xs))` over {m:,} pre-made leaf pairs: "
                f"{ops:,} binary ops. Building only (the graph is freed outside the timer). "
                "The `_core.dot` row builds the same nodes in one call, as ours' `nn.Neuron` "
                "does.\n\n"
                + table(["engine", "ns / op", "per build", "time / ours"], rows)
                + self.err_note(errors) + self.skipped_note(wanted))
        self.section("1. Forward build", body)
        self.build_samples = samples

    def err_note(self, errors):
        if not errors:
            return ""
        return "\n\n" + "\n".join(f"- {E.LABELS[k]} failed: {v}" for k, v in errors.items())

    # -- 2. backward ---------------------------------------------------------

    def backward(self):
        self.log("2. backward")
        wanted = ["ours", "ours-replay", "micrograd", "micrograd-nogc", "torch-scalar",
                  "torch-vec"]
        rows = []
        ratios = []
        notes = []
        for n in self.cfg["backward_sizes"]:
            nodes = E.dot_nodes(n)
            self.log(f"  dot graph of {nodes:,} nodes")
            samplers = {}
            keep = []
            for k in self.keys(*wanted):
                if k == "torch-scalar" and n > self.cfg["torch_scalar_max"]:
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
                if k == "ours" and self.has("ours-replay"):
                    from autograd import Graph
                    g = Graph(root)
                    keep.append(g)
                    samplers["ours-replay"] = Sampler(g.backward, prime=False, setup=g.forward)
            rounds = self.cfg["rounds"] if n < 10**6 else self.cfg["big_rounds"]
            samples, errors = alternate(samplers, rounds, self.cfg["target"], self.log)
            for k, v in errors.items():
                notes.append(f"{E.LABELS[k]} at {nodes:,} nodes: {v}")
            del keep, samplers
            gc.collect()
            r_mg = pair_ratio(samples, "micrograd", "ours")
            if r_mg == r_mg:
                ratios.append((nodes, r_mg))
            for k, v in samples.items():
                self.summary.setdefault(k, {})["backward"] = (nodes, med(v) / nodes * 1e9)
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
                + self.skipped_note(wanted))
        self.section("2. Backward", body)
        if ratios:
            worst = min(r for _, r in ratios)
            detail = ", ".join(f"{r:,.0f}x at {n:,}" for n, r in ratios)
            self.targets.append(("backward vs micrograd (every size)", ">= 50x",
                                 f"min {worst:,.0f}x ({detail})",
                                 verdict(worst, TARGETS["backward_vs_micrograd"])))
        else:
            self.targets.append(("backward vs micrograd", ">= 50x", "n/a", "not measured"))

    # -- 3. demo step ----------------------------------------------------------

    def demo(self):
        self.log("3. micrograd's demo step")
        X, y = E.moons()
        wanted = ["ours", "ours-replay", "micrograd", "micrograd-nogc", "torch-scalar",
                  "torch-vec", "floats"]
        demos = {k: E.make_demo(k, X, y) for k in self.keys(*wanted)}
        # -- the agreement check: fresh models, same seed, K steps --
        K = self.cfg["check_steps"]
        ref_w = demos["ours"].weights()
        losses = {}
        check_rows = []
        for k, d in demos.items():
            if k == "floats":
                continue
            w = d.weights()
            same_w = max(abs(a - b) for a, b in zip(w, ref_w)) if len(w) == len(ref_w) else None
            gc.collect()
            losses[k] = [d.step() for _ in range(K)]
            check_rows.append((k, same_w))
        ref = losses["ours"]
        worst = 0.0
        rows = []
        for k, same_w in check_rows:
            rel = max(abs(a - b) / abs(b) for a, b in zip(losses[k], ref))
            worst = max(worst, rel)
            rows.append([E.LABELS[k], "identical" if same_w == 0.0 else f"max diff {same_w:.1e}",
                         f"{rel:.1e}", "ok" if rel <= 1e-9 else "DISAGREE"])
        floor_loss = demos["floats"].step()
        rel0 = abs(floor_loss - ref[0]) / abs(ref[0])
        rows.append([E.LABELS["floats"], "identical", f"{rel0:.1e} (forward, step 0)",
                     "ok" if rel0 <= 1e-9 else "DISAGREE"])
        self.demo_check_ok = worst <= 1e-9 and rel0 <= 1e-9
        check = (f"Losses over the first {K} steps from the same `random.seed({E.SEED})` "
                 f"weights (torch: copied), relative to ours; float64 engines must agree to "
                 f"1e-9. Losses of ours: " + ", ".join(f"{x:.12f}" for x in ref) + ".\n\n"
                 + table(["engine", "initial weights vs ours", "max rel. loss diff", ""], rows))
        # -- timing --
        self.log("  timing")
        samplers = {}
        for k, d in demos.items():
            samplers[k] = Sampler(d.step, nogc=(k == "micrograd-nogc"))
        samples, errors = alternate(samplers, self.cfg["demo_rounds"], self.cfg["target"],
                                    self.log)
        self.demo_samples = samples
        for k, v in samples.items():
            self.summary.setdefault(k, {})["demo"] = (med(v), pair_ratio(samples, "micrograd", k))
        rows = []
        for k in wanted:
            if k not in samples:
                continue
            rows.append([E.LABELS[k], fmt_time(med(samples[k])),
                         fmt_ratio(pair_ratio(samples, k, "ours")),
                         fmt_ratio(pair_ratio(samples, k, "ours-replay"))])
        nodes = len(demos["ours-replay"].graph) if "ours-replay" in demos else None
        self.demo_nodes = nodes
        standalone = self.standalone_micrograd()
        body = (f"`MLP(2, [16, 16, 1])` (337 parameters), 100 two-moons points, max-margin loss "
                f"+ 1e-4 L2, zero_grad, backward, SGD ({nodes:,} graph nodes per step): the "
                "notebook's code, on each engine. micrograd as shipped is timed in its steady "
                "state (one untimed step first, so the previous step's garbage is around, as in "
                "its training loop). The floor runs only the forward on floats (no graph, so "
                "nothing to backprop).\n\n"
                + table(["engine", "per step", "time / ours", "time / ours replay"], rows)
                + self.err_note(errors) + self.skipped_note(wanted)
                + standalone + "\n\n" + check)
        self.section("3. micrograd's demo step", body)
        t = [("demo step vs micrograd as shipped", "micrograd", "ours",
              TARGETS["demo_vs_micrograd"], ">= 150x"),
             ("demo step vs micrograd, gc off", "micrograd-nogc", "ours",
              TARGETS["demo_vs_micrograd_nogc"], ">= 30x"),
             ("replay demo step vs micrograd as shipped", "micrograd", "ours-replay",
              TARGETS["replay_vs_micrograd"], ">= 2000x"),
             ("replay demo step vs PyTorch vectorized", "torch-vec", "ours-replay",
              TARGETS["replay_vs_torch_vec"], "faster (> 1x)")]
        for name, num, den, target, text in t:
            r = pair_ratio(samples, num, den)
            achieved = (f"{fmt_ratio(r)} ({fmt_time(med(samples[num]))} vs "
                        f"{fmt_time(med(samples[den]))})") if r == r else "n/a"
            v = verdict(r, target)
            if r == r and target == 1.0 and r <= 1.0:
                v = f"slower by {1 / r:.2f}x"
            if r != r:
                v = "not measured: " + (self.avail[num][1] if not self.has(num) else "error")
            self.targets.append((name, text, achieved, v))
        self.targets.append(("demo losses agree (float64, 1e-9)", "<= 1e-9",
                             f"max rel. diff {max(worst, rel0):.1e}",
                             "PASS" if self.demo_check_ok else "FAIL"))
        self.demos = demos

    def standalone_micrograd(self):
        """micrograd's training loop in a fresh process of its own (no torch, no pairing)."""
        if not self.has("micrograd"):
            return ""
        steps = 3 if self.quick else 6
        r = self.worker("steps", "micrograd", str(steps))
        if "error" in r:
            return f"\n\nmicrograd standalone: failed ({r['error']})."
        later = r["seconds"][1:]
        return (f"\n\nFor orientation (not paired): micrograd's loop in a fresh process that "
                f"imports only it, {steps} steps: first step {fmt_time(r['seconds'][0])}, then "
                f"median {fmt_time(med(later))} (range {fmt_time(min(later))} to "
                f"{fmt_time(max(later))}); its time depends on how big the heap the collector "
                "walks is. The paired rows above freeze the bench's imports out of the "
                "collector's way, and feed every engine Python floats (the notebook feeds numpy "
                "scalars, which slow micrograd further): both choices favour micrograd.")

    # -- 3b. where ours' eager step goes ------------------------------------------

    def breakdown(self):
        """Phase timings of ours' eager demo step, each forward phase against the same
        code on floats, with the number of graph nodes each phase makes."""
        self.log("3b. breakdown of ours' eager step")
        import random

        from autograd import Graph, Value
        from autograd._core import arena_stats
        from autograd.nn import MLP
        X, y = E.moons()
        random.seed(E.SEED)
        model = MLP(2, [16, 16, 1])
        fmodel = E.FloatMLP(E.reference_weights())
        relu = E._relu
        reps = self.cfg["breakdown_reps"]
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
        self.breakdown_m = dict(m, step=step, over_ns=over, **count)
        body = (f"Phase timings of one eager step (median of {reps}); the forward's phases are "
                "timed against the same lines on floats (the floor; micrograd's Neuron code, a "
                "Python `sum` of products). Nodes: graph nodes the phase makes (leaves "
                f"included). On the Python-operator lines ours costs {fmt_ns(over)} ns per node "
                "above plain floats. See bench/PROFILE.md for what a profiler says.\n\n"
                + table(["phase", "time", "share", "nodes", "ns / node", "floor (floats)",
                         "floor ns / node"], rows))
        self.section("3b. Where the eager demo step goes (ours)", body)

    # -- replay ns per node vs the C floor ------------------------------------------

    def replay_floor(self):
        self.log("replay: ns per node vs a plain C loop")
        from autograd import Graph, Value
        X, y = E.moons()
        cases = [("demo step graph",
                  lambda eng: E.demo_loss(eng.leaf, E.swapped_mlp(eng.leaf), X, y)),
                 (f"chain, {fmt_n(self.cfg['mem_nodes'])} nodes",
                  lambda eng: E.chain(eng, self.cfg["mem_nodes"])),
                 (f"dot, {fmt_n(self.cfg['mem_nodes'])} nodes",
                  lambda eng: E.dot(*E.dot_leaves(eng, self.cfg["mem_nodes"])))]
        rows = []
        self.replay_ns = {}
        min_time = 0.05 if self.quick else 0.2
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
                self.notes.append(f"replay floor: {name}: the C replica has {ref['nodes']} "
                                  f"nodes, the Graph {n}")
            self.replay_ns[name] = (f, b)
            cf, cb = ref.get("c_forward", float("nan")), ref.get("c_backward", float("nan"))
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
        self.section("Replay: ns per node against a plain C loop", body)

    # -- 4. scaling ---------------------------------------------------------------

    def scaling(self):
        self.log("4. scaling")
        wanted = ["ours", "ours-replay", "micrograd", "micrograd-nogc", "torch-scalar",
                  "floats"]
        present = self.keys(*wanted)
        rows = []
        notes = []
        stopped = {}
        for shape, (build, count) in E.SHAPES.items():
            for n in self.cfg["scaling_sizes"]:
                nodes = count(n)
                self.log(f"  {shape}, {nodes:,} nodes")
                samplers = {}
                keep = []
                for k in present:
                    if (shape, k) in stopped:
                        continue
                    if k in ("micrograd", "micrograd-nogc") and n > self.cfg["ref_max"]:
                        continue
                    if k == "torch-scalar" and n > self.cfg["torch_scalar_max"]:
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
                rounds = self.cfg["rounds"] if n < 10**6 else self.cfg["big_rounds"]
                if n >= 10**6 and not self.quick:
                    # one priming call per round is a lot at this size: prime only micrograd
                    for k, s in samplers.items():
                        s.prime = k == "micrograd"
                samples, errors = alternate(samplers, rounds, self.cfg["target"], self.log)
                for k, v in errors.items():
                    notes.append(f"{E.LABELS[k]}, {shape} of {nodes:,} nodes: {v}")
                    stopped[(shape, k)] = v
                for k in wanted:
                    if k not in samples:
                        continue
                    ns = med(samples[k]) / nodes * 1e9
                    self.scaling_pts.setdefault((k, shape), {})[nodes] = ns
                    rows.append([shape, f"{nodes:,}", E.LABELS[k], fmt_ns(ns),
                                 fmt_ratio(pair_ratio(samples, k, "ours"))])
                    if samplers.get(k) and samplers[k].single > self.cfg["slow_limit"]:
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
                f"References run up to {fmt_n(self.cfg['ref_max'])} nodes; 10^7 is ours only. "
                "Plot: `scaling.svg`.\n\n"
                + table(["shape", "nodes", "engine", "ns / node", "time / ours"], rows)
                + ("\n\n" + "\n".join(f"- {x}" for x in notes) if notes else "")
                + "\n\n" + self.recursion_probe()
                + self.skipped_note(wanted))
        self.section("4. Scaling", body)

    def recursion_probe(self):
        """Where micrograd's recursive topological sort fails at the default limit."""
        if not self.has("micrograd"):
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
        ran = ", ".join(f"{shape} up to {max(self.scaling_pts[('micrograd', shape)]):,} nodes"
                        for shape in E.SHAPES if ("micrograd", shape) in self.scaling_pts)
        return (f"micrograd at Python's default recursion limit ({default}): "
                + "; ".join(results) + f". With the limit raised to 10^{int(math.log10(BIG_RECURSION))} "
                f"in a thread with a {BIG_STACK >> 20} MiB stack it ran {ran or 'nothing'} "
                f"(larger sizes were not attempted: {fmt_n(self.cfg['ref_max'])} is the "
                "references' cap).")

    # -- 5. memory --------------------------------------------------------------

    def memory(self):
        self.log("5. memory (fresh subprocesses)")
        n = self.cfg["mem_nodes"]
        from autograd._core import arena_stats
        slot_bytes = arena_stats()["node_bytes"]
        rows = []
        self.bytes_per_node = {}
        for k in self.keys("ours", "micrograd", "torch-scalar"):
            for shape in ("chain", "dot"):
                r = self.worker("graph", k, shape, str(n))
                if "error" in r:
                    rows.append([E.LABELS[k], shape, "failed: " + r["error"], "", "", ""])
                    continue
                bpn = r["build_bytes"] / r["nodes"]
                self.bytes_per_node[(k, shape)] = bpn
                if shape == "dot":
                    self.summary.setdefault(k, {})["bytes"] = (r["nodes"], bpn)
                extra = ""
                if k == "ours":
                    extra = (f"arena live {r['arena_live']:,}; Graph(root) adds "
                             f"{r['graph_record_bytes'] / r['nodes']:.1f} B/node")
                rows.append([E.LABELS[k], shape, f"{r['nodes']:,}", f"{bpn:,.1f}",
                             f"{r['after_backward_bytes'] / r['nodes']:,.1f}", extra])
        body = (f"RSS growth per graph node after building a {fmt_n(n)}-node graph, each in a "
                "fresh process (`bench/memworker.py`; /proc/self/statm), and after one backward "
                "(micrograd's grads become float objects then). **chain** holds one Python handle (the root); **dot** keeps its "
                "leaves' handles alive in two lists, as a model's parameters and inputs are. "
                f"Ours' arena takes {slot_bytes} B per slot (`arena_stats()['node_bytes']`), "
                "allocated by doubling.\n\n"
                + table(["engine", "shape", "nodes", "bytes / node", "after backward",
                         "notes"], rows))
        # RSS over training steps
        steps = self.cfg["rss_steps"]
        srows = []
        flat = {}
        for k in self.keys("ours", "ours-replay"):
            r = self.worker("steps", k, str(steps))
            if "error" in r:
                srows.append([E.LABELS[k], "failed: " + r["error"], "", "", "", ""])
                continue
            rss = r["rss"]
            i0 = min(10, len(rss) - 1)
            growth = rss[-1] - rss[i0]
            spread = max(rss[i0:]) - min(rss[i0:])
            lives = sorted(set(r["live"][i0:]))
            flat[k] = growth
            srows.append([E.LABELS[k], f"{rss[0] / 2**20:.1f} MiB", f"{rss[i0] / 2**20:.2f} MiB",
                          f"{rss[-1] / 2**20:.2f} MiB", f"{growth / 1024:+.0f} KiB",
                          ", ".join(f"{x:,}" for x in lives)])
        body += (f"\n\nRSS over {steps} training steps of the demo (fresh process each; the "
                 f"live-node count after each step is the arena's own count: parameters only "
                 f"means nothing leaks).\n\n"
                 + table(["engine", "after step 1", f"after step {i0 + 1}",
                          f"after step {steps}", f"growth {i0 + 1}->{steps}",
                          f"live nodes after steps {i0 + 1}..{steps}"], srows))
        self.section("5. Memory", body)
        bpn = [v for (k, s), v in self.bytes_per_node.items() if k == "ours"]
        if bpn:
            worst = max(bpn)
            detail = ", ".join(f"{s} {v:.1f}" for (k, s), v in self.bytes_per_node.items()
                               if k == "ours")
            self.targets.append((f"bytes per node, {fmt_n(n)}-node graph", "<= 80 B",
                                 f"max {worst:.1f} B ({detail})",
                                 verdict(worst, TARGETS["bytes_per_node"], False)))
        if "ours" in flat:
            g = flat["ours"]
            # flat: less growth than a tenth of one step's graph (65,818 nodes x 48 B)
            limit = 0.1 * 65818 * 48
            self.targets.append((f"flat RSS over {steps} eager steps", "growth < 316 KiB",
                                 f"{g / 1024:+.0f} KiB", "PASS" if g < limit else "FAIL"))

    def worker(self, *argv):
        cmd = [sys.executable, os.path.join(HERE, "memworker.py"), *argv]
        self.log("  " + " ".join(argv))
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        try:
            return json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1]}

    def summary_table(self):
        """One row per engine: the figures a README quotes."""
        if not self.summary:
            return ""
        order = ["ours", "ours-replay", "ours-dot", "micrograd", "micrograd-nogc",
                 "torch-scalar", "torch-vec", "floats"]
        bsize = max((v["backward"][0] for v in self.summary.values() if "backward" in v),
                    default=None)
        msize = max((v["bytes"][0] for v in self.summary.values() if "bytes" in v),
                    default=None)
        rows = []
        for k in order:
            d = self.summary.get(k)
            if not d:
                continue
            demo = d.get("demo")
            back = d.get("backward")
            rows.append([
                E.LABELS[k],
                fmt_time(demo[0]) if demo else "",
                fmt_ratio(demo[1]) if demo and demo[1] == demo[1] else "",
                fmt_ns(d["build"]) if "build" in d else "",
                fmt_ns(back[1]) if back and back[0] == bsize else "",
                f"{d['bytes'][1]:,.0f}" if "bytes" in d else "",
            ])
        return table(["engine", "demo step", "micrograd / engine", "build ns / op",
                      f"backward ns / node ({bsize:,} nodes)" if bsize else "backward ns / node",
                      f"bytes / node ({msize:,} nodes)" if msize else "bytes / node"], rows)

    # -- plot ----------------------------------------------------------------------

    def plot(self, path):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.notes.append("matplotlib not installed: no plot")
            return None
        plt.rcParams["svg.fonttype"] = "none"      # text as text: a small file
        plt.rcParams["svg.hashsalt"] = "arenagrad"  # stable ids
        fig, ax = plt.subplots(figsize=(10, 5.6))
        colors = {"ours": "C0", "ours-replay": "C9", "micrograd": "C3", "micrograd-nogc": "C1",
                  "torch-scalar": "C2", "floats": "C7"}
        order = list(E.LABELS)
        for (k, shape), pts in sorted(self.scaling_pts.items(),
                                      key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
            xs = sorted(pts)
            ax.plot(xs, [pts[x] for x in xs], marker="o" if shape == "chain" else "s",
                    linestyle="-" if shape == "chain" else "--", color=colors.get(k, "k"),
                    label=("plain floats, forward only (floor)" if k == "floats"
                           else E.LABELS[k]) + f", {shape}",
                    markersize=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("graph size (nodes)")
        ax.set_ylabel("forward + backward, ns per node")
        ax.set_title("Time per node against graph size (flat = linear cost)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(path, metadata={"Date": None})
        if os.environ.get("BENCH_PNG"):
            fig.savefig(os.environ["BENCH_PNG"], dpi=90)
        plt.close(fig)
        return path

    # -- report -------------------------------------------------------------------

    def environment(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        try:
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip() or "?"
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True).stdout.strip()
            if dirty:
                rev += " (src/ modified)"
        except OSError:
            rev = "?"
        import autograd._core as core
        import numpy
        with open(core.__file__, "rb") as f:
            so_hash = hashlib.sha256(f.read()).hexdigest()[:12]
        engines = []
        for k in ("ours", "micrograd", "torch-scalar"):
            engines.append(self.avail[k][1])
        return [
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            ("command", "`" + " ".join(["python", "bench/run.py", *sys.argv[1:]]) + "`"),
            ("engines", "; ".join(engines)),
            ("core", f"{os.path.basename(core.__file__)} sha256 {so_hash}, repo {rev}"),
            ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}, "
                       f"numpy {numpy.__version__}"),
            ("machine", f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} "
                        f"{platform.release()}"),
        ]

    def write(self, out_dir, plot_path, elapsed):
        env = self.environment()
        head = ["# Benchmark results", "",
                ("Quick run (`--quick`): small sizes, few repetitions; not the figures to quote."
                 if self.quick else "Full run."), ""]
        head += [f"- **{k}**: {v}" for k, v in env]
        head += [f"- **wall time**: {elapsed / 60:.1f} min",
                 f"- **machine load**: {getattr(self, 'load', '?')}", ""]
        head += ["Method: in each workload the engines run alternately in one process (A B C "
                 "A B C ...) after a warm-up call; times are medians, ratios are medians of "
                 "per-round ratios. A sample during which this process got less than 85% of "
                 "a CPU (process time / wall time) is retaken. `gc.freeze()` is called after "
                 "the imports so that the "
                 "bench's own imports (numpy, torch) don't weigh on micrograd's collections. "
                 "Absolute times are orientation only (shared, noisy machine).", ""]
        summ = self.summary_table()
        tgt = []
        if summ:
            tgt += ["## Summary", "", "Medians of this run (the sections below have the "
                    "details; \"micrograd / engine\" is the paired ratio of the demo step).", "",
                    summ, ""]
        tgt += ["## Targets", "", table(["target", "wanted", "achieved", "verdict"],
                                        [list(t) for t in self.targets])]
        if self.notes:
            tgt += ["", *[f"- {n}" for n in self.notes]]
        text = "\n".join(head + tgt) + "\n\n" + "\n".join(self.sections)
        if plot_path:
            text += f"\n![time per node against graph size]({os.path.basename(plot_path)})\n"
        path = os.path.join(out_dir, "RESULTS.md")
        with open(path, "w") as f:
            f.write(text)
        print("\n" + "\n".join(tgt), flush=True)
        return path


def cpu_snapshot():
    """(wall time, busy CPU seconds of the whole machine, CPU seconds of this process and
    its finished children), to tell how much else ran on the machine meanwhile."""
    busy = float("nan")
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return time.time(), busy, t.user + t.system + t.children_user + t.children_system


def discover_workloads():
    """The workload modules in bench/workloads/, in file-name order.

    A workload is one file: ``NAME`` (its ``--only`` key) and ``run(bench)``, which
    times its engines with the harness (``harness.Sampler``, ``alternate``,
    ``pair_ratio``) and reports through ``bench``: ``bench.section(title, markdown)``,
    ``bench.targets.append((name, wanted, achieved, verdict))``, ``bench.notes``,
    ``bench.summary[engine][column]``, ``bench.log``, ``bench.cfg`` and ``bench.quick``.
    """
    folder = os.path.join(HERE, "workloads")
    mods = []
    for fname in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if fname.endswith(".py") and not fname.startswith("_"):
            mods.append(importlib.import_module(f"workloads.{fname[:-3]}"))
    return mods


def run(args, out_dir):
    bench = Bench(args)
    snap0, load0 = cpu_snapshot(), os.getloadavg()
    t0 = time.perf_counter()
    steps = [("forward", bench.forward_build), ("backward", bench.backward),
             ("demo", bench.demo), ("breakdown", bench.breakdown),
             ("replay", bench.replay_floor), ("scaling", bench.scaling),
             ("memory", bench.memory)]
    steps += [(mod.NAME, functools.partial(mod.run, bench)) for mod in discover_workloads()]
    only = set(args.only.split(",")) if args.only else None
    for name, fn in steps:
        if only and name not in only:
            continue
        try:
            fn()
        except Exception:                   # noqa: BLE001 - keep going, report it
            tb = traceback.format_exc()
            bench.notes.append(f"workload {name} crashed: {tb.strip().splitlines()[-1]}")
            print(tb, file=sys.stderr)
    snap1, load1 = cpu_snapshot(), os.getloadavg()
    wall = snap1[0] - snap0[0]
    others = (snap1[1] - snap0[1]) - (snap1[2] - snap0[2])
    bench.load = (f"other processes used {others / wall:.2f} of the {os.cpu_count()} CPUs on "
                  f"average during the run (this one {(snap1[2] - snap0[2]) / wall:.2f}); "
                  f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end; "
                  f"{harness.RETAKEN} samples retaken because this process got less than "
                  f"{harness.MIN_CPU_SHARE:.0%} of a CPU meanwhile, {harness.DISTURBED} still below that after "
                  f"{harness.RETAKES} retakes (kept: the least disturbed)")
    plot_path = bench.plot(os.path.join(out_dir, "scaling.svg")) if bench.scaling_pts else None
    path = bench.write(out_dir, plot_path, time.perf_counter() - t0)
    bench.log(f"wrote {path}" + (f" and {plot_path}" if plot_path else ""))
    return bench


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions (<1 min)")
    ap.add_argument("--out", help="output folder (default: bench/ for a full run, bench/out/ "
                                  "for --quick)")
    ap.add_argument("--only", help="comma-separated subset of: forward, backward, demo, "
                                   "breakdown, replay, scaling, memory, and the NAMEs of "
                                   "bench/workloads/*.py")
    args = ap.parse_args()
    out_dir = args.out or (os.path.join(HERE, "out") if args.quick else HERE)
    os.makedirs(out_dir, exist_ok=True)

    # import every engine now, then freeze the heap they made: micrograd's collections
    # then see its own objects, not the bench's imports (as in a small script of its own)
    E.probe()
    gc.collect()
    gc.freeze()

    sys.setrecursionlimit(BIG_RECURSION)
    threading.stack_size(BIG_STACK)
    box = {}

    def target():
        try:
            box["bench"] = run(args, out_dir)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e
            traceback.print_exc()

    t = threading.Thread(target=target, name="bench")
    t.start()
    t.join()
    if "error" in box:
        sys.exit(1)
    # a crashed workload is a failure for CI; a missed speed target is not
    if any("crashed" in n for n in box["bench"].notes):
        sys.exit(1)


if __name__ == "__main__":
    main()
