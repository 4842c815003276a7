#!/usr/bin/env python
"""The benchmark suite: our engine against micrograd, PyTorch and the floor, in one run.

    python bench/run.py            # full run (~28 min): writes bench/RESULTS.md, bench/scaling.svg
    python bench/run.py --quick    # small version (<1 min), writes to bench/out/ (CI runs this)
    python bench/run.py --only demo,transformer     # a subset, by workload NAME

A run ends with a short summary: one line per headline figure (ours against the engine
it names), then the checks and targets. A quick run grades only what its small sizes
can show (correctness, memory); the full run's speed targets are graded by the full run.

Method: every workload runs its engines alternately in one process (A B C A B C ...),
after a warm-up call; each sample is one call or a calibrated batch of calls; reported
are medians, and ratios are the median of the per-round (pair-by-pair) ratios. Absolute
times are for orientation only: this machine is shared and noisy. See bench/README.md.

Layout: this file runs the workloads and holds the context they report through
(`Bench`); each workload is one module in bench/workloads/ (`discover_workloads`); the
shared timing harness is bench/harness.py, the report (summary, plot, RESULTS.md)
bench/report.py, the engines and the code they run bench/engines.py.

Nothing is installed here: PyTorch rows are skipped ("torch not installed") when
``import torch`` fails, micrograd rows likewise.
"""
import argparse
import gc
import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import engines as E  # noqa: E402
import harness  # noqa: E402
import report  # noqa: E402
from harness import BIG_RECURSION, BIG_STACK  # noqa: E402


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


# --quick's engines: all but the slowest, which the full run times
QUICK_LEAVES_OUT = {
    "torch-scalar": "--quick leaves out PyTorch 0-dim scalars (1.6 s a demo step, the "
                    "slowest engine with micrograd): the full run times them",
}


# =============================================================================
# The context every workload reports through
# =============================================================================

class Bench:
    """What a workload's ``run(bench)`` gets (see `discover_workloads`)."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.cfg = config(args.quick)
        self.avail = E.probe()
        if args.quick:
            os.environ["BENCH_RETAKES"] = "1"       # for worker processes too
            harness.RETAKES = 1
            for k, why in QUICK_LEAVES_OUT.items():
                if self.avail.get(k, (False,))[0]:
                    self.avail[k] = (False, why)
        self.sections = []           # markdown blocks, in order
        self.targets = []            # (name, target text, achieved text, verdict)
        self.notes = []
        self.scaling_pts = {}        # (engine, shape) -> {n: ns per node}, for the plot
        self.summary = {}            # engine -> {column: value}, for the summary table
        self.headlines = []          # one line each: a figure, against the engine it names
        # before/after workloads compile old cores from git (bench/baseline.py): a full
        # run does; a quick run only when asked (--before-after)
        self.before_after = (getattr(args, "before_after", False)
                             or bool(getattr(args, "baseline", None)) or not args.quick)
        # a quick run prints one progress line per workload and its summary; the full
        # run (or --verbose) also every workload's timings as they come, and its tables
        self.verbose = getattr(args, "verbose", False) or not args.quick
        self.t_start = time.perf_counter()

    def log(self, msg):
        """A detail line on stderr (a full run or --verbose only)."""
        if self.verbose:
            print(f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}", file=sys.stderr,
                  flush=True)

    def progress(self, msg, final=False):
        """A progress line on stderr, always shown. On a terminal a quick run rewrites one
        line (``\\r``); anywhere else (a log file, a pipe) every message is a line."""
        text = f"[{time.perf_counter() - self.t_start:6.1f}s] {msg}"
        if not self.verbose and sys.stderr.isatty():
            end = "\n" if final else ""
            print(f"\r\033[K{text}", end=end, file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def headline(self, text):
        """One line of the run's closing summary: a figure, and the engine it compares
        ours against (e.g. "demo step: 3.4 ms, 375x faster than micrograd 0.1.0")."""
        self.headlines.append(text)

    def check(self, name, wanted, achieved, verdict):
        """A target that any run can grade, whatever its sizes (losses agree, memory
        flat, ...). ``bench.targets.append((name, wanted, achieved, verdict))`` is a
        target of the full run's sizes: a quick run reports it without grading it."""
        self.targets.append((name, wanted, achieved, verdict, True))

    def old_core(self, ref):
        """The compiled core of git ref `ref` (bench/baseline.py), announced: compiling
        one takes ~2 minutes the first time; it is cached in bench/.baseline/ after."""
        import baseline
        cached = baseline.cached_path(ref)
        if cached:
            self.progress(f"using the core of {ref} compiled earlier "
                          f"({os.path.relpath(cached)})", final=True)
        else:
            self.progress(f"compiling the core of {ref} from git for a before/after "
                          "comparison (once, ~2 min; cached in bench/.baseline/)", final=True)
        return baseline.load(ref)

    def has(self, key):
        return self.avail[key][0]

    def keys(self, *wanted):
        return [k for k in wanted if self.has(k)]

    def section(self, title, body):
        self.sections.append(f"## {title}\n\n{body}\n")
        if self.verbose:
            print(f"\n## {title}\n\n{body}\n", flush=True)

    def skipped_note(self, wanted):
        miss = sorted({self.avail[k][1] for k in wanted if not self.has(k)})
        return ("\n\nSkipped: " + "; ".join(miss) + ".") if miss else ""

    def err_note(self, errors):
        if not errors:
            return ""
        return "\n\n" + "\n".join(f"- {E.LABELS.get(k, k)} failed: {v}"
                                   for k, v in errors.items())

    def worker(self, *argv):
        """Run bench/memworker.py with `argv` in a fresh process: its last JSON line."""
        cmd = [sys.executable, os.path.join(HERE, "memworker.py"), *argv]
        self.log("  " + " ".join(argv))
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        try:
            return json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1]}


# =============================================================================
# The run
# =============================================================================

def discover_workloads():
    """The workload modules in bench/workloads/, in report order.

    A workload is one file: ``NAME`` (its ``--only`` key), ``run(bench)``, and optionally
    ``ORDER`` (its place in the report: the built-in ones use 10..70; without it, 100,
    then by file name). ``run`` times its engines with the harness (``harness.Sampler``,
    ``alternate``, ``pair_ratio``) and reports through ``bench``:
    ``bench.section(title, markdown)``, ``bench.headline(text)`` (a line of the closing
    summary: a figure and the engine it is compared with),
    ``bench.targets.append((name, wanted, achieved, verdict))`` (a target at the full
    run's sizes: a quick run shows it ungraded), ``bench.check(name, wanted, achieved,
    verdict)`` (a target any run grades: correctness, memory), ``bench.notes``,
    ``bench.summary[engine][column]``, ``bench.log`` (detail lines), ``bench.cfg``,
    ``bench.quick`` and ``bench.before_after`` (whether to compile old cores from git:
    ``bench.old_core(ref)``);
    also ``bench.has(engine)``/``bench.keys(*engines)`` (what is installed),
    ``bench.skipped_note(engines)``, ``bench.err_note(errors)``, ``bench.worker(*argv)``
    (bench/memworker.py in a fresh process) and ``bench.scaling_pts`` (the plot's points).
    """
    folder = os.path.join(HERE, "workloads")
    mods = []
    for fname in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if fname.endswith(".py") and not fname.startswith("_"):
            mods.append(importlib.import_module(f"workloads.{fname[:-3]}"))
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 100))


def run(args, out_dir):
    bench = Bench(args)
    snap0, load0 = report.cpu_snapshot(), os.getloadavg()
    t0 = time.perf_counter()
    mods = discover_workloads()
    only = set(args.only.split(",")) if args.only else None
    if only:
        mods = [m for m in mods if m.NAME in only]
    for i, mod in enumerate(mods, 1):
        name = mod.NAME
        t1 = time.perf_counter()
        bench.progress(f"{i}/{len(mods)} {name}")
        try:
            mod.run(bench)
        except Exception:                   # noqa: BLE001 - keep going, report it
            tb = traceback.format_exc()
            bench.notes.append(f"workload {name} crashed: {tb.strip().splitlines()[-1]}")
            # on a terminal a quick run's progress line has no newline yet
            print(("\n" if not bench.verbose and sys.stderr.isatty() else "") + tb,
                  file=sys.stderr)
        bench.log(f"== {name} done in {time.perf_counter() - t1:.1f}s")
    bench.progress(f"done: {len(mods)} workload{'s' * (len(mods) != 1)}", final=True)
    snap1, load1 = report.cpu_snapshot(), os.getloadavg()
    wall = snap1[0] - snap0[0]
    others = (snap1[1] - snap0[1]) - (snap1[2] - snap0[2])
    bench.load_short = (f"other processes used {others / wall:.1f} of its "
                        f"{os.cpu_count()} CPUs during the run")
    bench.load = (f"other processes used {others / wall:.2f} of the {os.cpu_count()} CPUs on "
                  f"average during the run (this one {(snap1[2] - snap0[2]) / wall:.2f}); "
                  f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end; "
                  f"{harness.RETAKEN} samples retaken because this process got less than "
                  f"{harness.MIN_CPU_SHARE:.0%} of a CPU meanwhile, {harness.DISTURBED} still below that after "
                  f"{harness.RETAKES} retakes (kept: the least disturbed)")
    plot_path = report.plot(bench, os.path.join(out_dir, "scaling.svg")) if bench.scaling_pts else None
    path = report.write(bench, out_dir, plot_path, time.perf_counter() - t0)
    bench.log(f"wrote {path}" + (f" and {plot_path}" if plot_path else ""))
    print(report.plain_summary(bench, path), flush=True)
    if bench.quick and getattr(args, "tables", False):
        print("\n" + "\n".join(bench.sections), flush=True)
    return bench



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions (<1 min)")
    ap.add_argument("--out", help="output folder (default: bench/ for a full run, bench/out/ "
                                  "for --quick)")
    ap.add_argument("--baseline", metavar="REF", help="the git ref whose core the before/after "
                    "workloads (generic) compare with the installed one (default: main)")
    ap.add_argument("--before-after", action="store_true",
                    help="with --quick: also run the before/after comparisons, which "
                         "compile old cores from git (~2 min each the first time, then "
                         "cached in bench/.baseline/); a full run always does")
    ap.add_argument("--tables", action="store_true",
                    help="with --quick: print the detailed tables after the summary (they "
                         "are always in RESULTS.md)")
    ap.add_argument("--verbose", action="store_true",
                    help="with --quick: print every workload's timings and tables as they "
                         "come, as a full run does")
    ap.add_argument("--only", help="comma-separated subset of the workloads: "
                                   + ", ".join(m.NAME for m in discover_workloads()))
    args = ap.parse_args()
    if args.only:
        names = [m.NAME for m in discover_workloads()]
        unknown = set(args.only.split(",")) - set(names)
        if unknown:
            ap.error(f"--only: no workload named {', '.join(sorted(unknown))} "
                     f"(there are: {', '.join(names)})")
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
