"""The report of a benchmark run, in one place: the summary table, the scaling plot, the
environment block and the RESULTS.md writer. Workloads feed it through ``bench``
(``bench.summary``, ``bench.targets``, ``bench.notes``, ``bench.sections``,
``bench.scaling_pts``); bench/run.py calls `write` once at the end.
"""
import datetime
import hashlib
import os
import platform
import subprocess
import sys
import time

import engines as E
from harness import fmt_ns, fmt_ratio, fmt_time, table

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def summary_table(bench):
    """One row per engine: the figures a README quotes.

    Known columns (``bench.summary[engine][column]``) are formatted here; a workload may
    add any other column as a ready-made string (or a number), shown after them.
    """
    if not bench.summary:
        return ""
    order = ["ours", "ours-replay", "ours-dot", "micrograd", "micrograd-nogc", "pyvalue",
             "torch-scalar", "torch-vec", "floats"]
    order += sorted(k for k in bench.summary if k not in order)
    known = ("demo", "transformer", "build", "backward", "bytes")
    extra = []
    for d in bench.summary.values():
        extra += [c for c in d if c not in known and c not in extra]
    bsize = max((v["backward"][0] for v in bench.summary.values() if "backward" in v),
                default=None)
    msize = max((v["bytes"][0] for v in bench.summary.values() if "bytes" in v),
                default=None)
    has_tf = any("transformer" in v for v in bench.summary.values())
    rows = []
    for k in order:
        d = bench.summary.get(k)
        if not d:
            continue
        demo = d.get("demo")
        back = d.get("backward")
        tf = d.get("transformer")
        row = [
            E.LABELS.get(k, k),
            fmt_time(demo[0]) if demo else "",
            fmt_ratio(demo[1]) if demo and demo[1] == demo[1] else "",
        ]
        if has_tf:
            row += [fmt_time(tf[0]) if tf else "",
                    fmt_ratio(tf[1]) if tf and tf[1] == tf[1] else ""]
        row += [
            fmt_ns(d["build"]) if "build" in d else "",
            fmt_ns(back[1]) if back and back[0] == bsize else "",
            f"{d['bytes'][1]:,.0f}" if "bytes" in d else "",
        ]
        row += [(fmt_ns(d[c]) if isinstance(d[c], float) else str(d[c])) if c in d else ""
                for c in extra]
        rows.append(row)
    head = ["engine", "demo step", "micrograd / engine"]
    if has_tf:
        head += ["transformer step", "pure-Python Value / engine"]
    head += ["build ns / op",
             f"backward ns / node ({bsize:,} nodes)" if bsize else "backward ns / node",
             f"bytes / node ({msize:,} nodes)" if msize else "bytes / node"]
    return table(head + extra, rows)


def plot(bench, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        bench.notes.append("matplotlib not installed: no plot")
        return None
    plt.rcParams["svg.fonttype"] = "none"      # text as text: a small file
    plt.rcParams["svg.hashsalt"] = "arenagrad"  # stable ids
    fig, ax = plt.subplots(figsize=(10, 5.6))
    colors = {"ours": "C0", "ours-replay": "C9", "micrograd": "C3", "micrograd-nogc": "C1",
              "torch-scalar": "C2", "floats": "C7"}
    order = list(E.LABELS)
    for (k, shape), pts in sorted(bench.scaling_pts.items(),
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


def environment(bench):
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
        engines.append(bench.avail[k][1])
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


def write(bench, out_dir, plot_path, elapsed):
    env = environment(bench)
    head = ["# Benchmark results", "",
            ("Quick run (`--quick`): small sizes, few repetitions; not the figures to quote."
             if bench.quick else "Full run."), ""]
    head += [f"- **{k}**: {v}" for k, v in env]
    head += [f"- **wall time**: {elapsed / 60:.1f} min",
             f"- **machine load**: {getattr(bench, 'load', '?')}", ""]
    head += ["Method: in each workload the engines run alternately in one process (A B C "
             "A B C ...) after a warm-up call; times are medians, ratios are medians of "
             "per-round ratios. A sample during which this process got less than 85% of "
             "a CPU (process time / wall time) is retaken. `gc.freeze()` is called after "
             "the imports so that the "
             "bench's own imports (numpy, torch) don't weigh on micrograd's collections. "
             "Absolute times are orientation only (shared, noisy machine).", ""]
    summ = summary_table(bench)
    tgt = []
    if summ:
        tgt += ["## Summary", "", "Medians of this run (the sections below have the "
                "details; \"micrograd / engine\" is the paired ratio of the demo step).", "",
                summ, ""]
    if bench.headlines:
        tgt += ["## Headlines", "", *[f"- {h}" for h in bench.headlines], ""]
    tgt += ["## Targets", ""]
    if bench.quick:
        tgt += ["A quick run grades what its sizes can show (correctness, memory); the speed "
                "targets are the full run's, at its sizes: shown here ungraded.", ""]
    tgt += [table(["target", "wanted", "achieved", "verdict"],
                  [[*t[:3], graded_verdict(bench, t)] for t in bench.targets])]
    if bench.notes:
        tgt += ["", *[f"- {n}" for n in bench.notes]]
    text = "\n".join(head + tgt) + "\n\n" + "\n".join(bench.sections)
    if plot_path:
        text += f"\n![time per node against graph size]({os.path.basename(plot_path)})\n"
    path = os.path.join(out_dir, "RESULTS.md")
    with open(path, "w") as f:
        f.write(text)
    if bench.verbose:
        print("\n" + "\n".join(tgt), flush=True)
    return path


def graded_verdict(bench, target):
    """A target's verdict, as this run may give it: a quick run does not grade the full
    run's speed targets (``bench.targets`` entries without the any-size flag that
    ``bench.check`` sets)."""
    any_size = len(target) > 4 and target[4]
    if bench.quick and not any_size:
        return "not graded (quick run)"
    return target[3]


def plain_summary(bench, results_path):
    """The run's closing summary for a terminal: what was measured, one line each, the
    checks' and targets' outcome, where the details are. Fits one screen."""
    env = dict(environment(bench))
    kind = ("Quick run: small sizes, a few repetitions each; speed ratios vary with the\n"
            "machine's load. The full run (python bench/run.py, ~28 min) measures the\n"
            "sizes the README quotes." if bench.quick else "Full run.")
    lines = ["", "=" * 78, kind,
             f"Machine: {env['machine']}; {getattr(bench, 'load_short', '?')}."]
    if bench.headlines:
        lines += ["", "What was measured (medians; ours against the engine named):"]
        lines += [f"  - {h}" for h in bench.headlines]
    graded = [(t, graded_verdict(bench, t)) for t in bench.targets]
    passed = [t for t, v in graded if v == "PASS"]
    ungraded = [t for t, v in graded if v == "not graded (quick run)"]
    other = [(t, v) for t, v in graded if v != "PASS" and t not in ungraded]
    lines += ["", f"Checks and targets: {len(passed)} passed"
              + (f", {len(other)} not met" if other else "")
              + (f", {len(ungraded)} speed target{'s' * (len(ungraded) != 1)} left to the "
                 "full run" if ungraded else "")
              + "."]
    lines += [f"  - not met: {t[0]}: wanted {t[1]}, got {t[2]} ({v})" for t, v in other]
    lines += [f"  - {n}" for n in bench.notes]
    rel = os.path.relpath(results_path)
    rel = results_path if rel.startswith("..") else rel
    more = (" (--tables prints them here; --verbose prints them as they come)"
            if bench.quick else "")
    lines += ["", f"Detailed tables: {rel}{more}", "=" * 78]
    return "\n".join(lines)


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
