"""The cost of an extensible Value: Values that can carry attributes (a GC type with a __dict__ slot,
untracked until it has one) and a mutable class, against the core before it.

The core before (git ref BEFORE, or $AUTOGRAD_BENCH_BEFORE) is compiled by
bench/baseline.py into a module of its own and timed alternately with the
installed core in this process; bytes per node are measured in fresh processes.
"""
import gc
import json
import os
import random
import subprocess
import sys

import baseline
from harness import Sampler, alternate, fmt_ns, fmt_ratio, med, pair_ratio, table

NAME = "extension"
BEFORE = os.environ.get("AUTOGRAD_BENCH_BEFORE", "c5c3a69")   # main before issue 9
TITLE = "Extensible Value: cost against the core before"

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One graph in a fresh process: RSS growth and arena nodes, as JSON.
MEMORY_WORKER = r"""
import gc, json, os, sys
sys.path.insert(0, sys.argv[1])
which, shape, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
if which == "installed":
    import autograd._core as core
else:
    import baseline
    core = baseline.load(which)
V = core.Value
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def build(n):
    if shape == "chain":            # one handle: the root
        w, b = V(1.0), V(1e-3)
        y = w
        for _ in range(n // 2):
            y = y * w + b
        return y
    if shape == "dot":              # the leaves' handles held in lists
        m = n // 4
        ws = [V(0.5) for _ in range(m)]
        xs = [V(0.25) for _ in range(m)]
        return ws, xs, sum((w * x for w, x in zip(ws, xs)), 0)
    if shape == "leaves":           # a handle per node
        return [V(float(i)) for i in range(n)]
    raise ValueError(shape)
gc.disable()
warm = build(2000)
del warm
gc.collect()
live0, r0 = core.arena_stats()["live"], rss()
keep = build(n)
print(json.dumps({"bytes": rss() - r0, "nodes": core.arena_stats()["live"] - live0}))
"""


def memory(which, shape, n):
    p = subprocess.run([sys.executable, "-c", MEMORY_WORKER, HERE, which, shape, str(n)],
                       capture_output=True, text=True, timeout=900)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1]}


def run(bench):
    if not bench.before_after:
        bench.section(TITLE, "Not run: it compares the installed core with one compiled "
                      f"from git (`{BEFORE}`, before Values could carry attributes), "
                      "which takes ~2 minutes the first time; `--before-after` runs it.")
        return
    bench.log(f"extensible Value: the core before ({BEFORE}) and the installed one, "
              "alternately")
    try:
        old = bench.old_core(BEFORE)
    except Exception as e:                      # noqa: BLE001 - reported in the section
        bench.section(TITLE, f"Could not build the core of {BEFORE}: {type(e).__name__}: {e}")
        return
    import autograd._core as new
    cores = {"before": old, "after": new}
    m = bench.cfg["dot_terms"]
    rnd = random.Random(1)
    floats = [rnd.uniform(-1, 1) for _ in range(2 * m)]
    leaves = {k: ([c.Value(x) for x in floats[:m]], [c.Value(x) for x in floats[m:]])
              for k, c in cores.items()}

    def binary(k):
        ws, xs = leaves[k]
        return lambda: sum((w * x for w, x in zip(ws, xs)), 0)

    def unary(k):
        ws, _ = leaves[k]
        return lambda: [w.tanh() for w in ws]

    def core_dot(k):
        ws, xs = leaves[k]
        c = cores[k]
        return lambda: c.dot(ws, xs, c.Value(0.0))

    def make_leaves(k):
        V = cores[k].Value
        return lambda: [V(x) for x in floats]

    def walk_prev(k):
        root = binary(k)()          # handles for the inner nodes are made by _prev

        def walk():
            seen, stack = set(), [root]
            while stack:
                v = stack.pop()
                for c in v._prev:
                    if c not in seen:
                        seen.add(c)
                        stack.append(c)
            return seen
        return walk

    holder = {}

    def collect(k):
        def setup():                # only this core's Values are alive while timed
            if holder.get("which") != k:
                holder.clear()
                V = cores[k].Value
                holder["values"] = [V(float(i)) for i in range(100_000)]
                holder["which"] = k
        return setup

    rows_spec = [
        ("binary ops: `sum(w * x ...)`", binary, 2 * m, dict(keep=True)),
        ("unary op: `w.tanh()`", unary, m, dict(keep=True)),
        ("`_core.dot` (one C call), per op", core_dot, 2 * m, dict(keep=True)),
        ("leaf `Value(x)`", make_leaves, 2 * m, dict(keep=True)),
        ("`_prev` walk (a handle per node)", walk_prev, 4 * m, dict(keep=True)),
        ("`gc.collect()` with 10^5 live Values, per Value", lambda k: gc.collect, 100_000,
         dict(setup=None)),
    ]
    rows = []
    ratios = []
    for title, make, per, kw in rows_spec:
        samplers = {}
        for k in cores:
            if title.startswith("`gc.collect()`"):
                samplers[k] = Sampler(gc.collect, setup=collect(k), prime=False)
            else:
                samplers[k] = Sampler(make(k), **kw)
        samples, errors = alternate(samplers, bench.cfg["rounds"], bench.cfg["target"],
                                    bench.log)
        holder.clear()
        r = pair_ratio(samples, "after", "before")
        ratios.append((title, r))
        rows.append([title, fmt_ns(med(samples.get("before", [])) / per * 1e9),
                     fmt_ns(med(samples.get("after", [])) / per * 1e9), fmt_ratio(r)]
                    + ([f"failed: {errors}"] if errors else []))
    body = (f"Before: the core of `{BEFORE}` (before Values could carry attributes), compiled by "
            "`bench/baseline.py`; after: the installed core. Timed alternately in one "
            f"process, {bench.cfg['rounds']} rounds; the ratio is the median of the "
            "per-round ratios after / before (1.00x: no change). Building only: results "
            f"are kept until the timer stops. {m:,} leaf pairs.\n\n"
            + table(["workload", "before ns", "after ns", "after / before"], rows)
            + "\n\nOperators are slots and cost what they did. A method call "
            "(`w.tanh()`, `x.relu()`) costs more on CPython 3.11 only: its specializer "
            "caches a method lookup for an object with a `__dict__` slot only once the "
            "dict exists (3.12 added LOAD_ATTR_METHOD_LAZY_DICT for an empty slot), so "
            "each call looks the method up; on 3.12 and 3.13 the same pair measures 1.00x. "
            "(A shared empty dict in every plain Value's slot gets 3.11 to specialize "
            "it, 1.07x, but a class-level `Value.__setattr__ = f` would then write one "
            "Value's attributes where every Value sees them: not done.)")
    # bytes per node, fresh processes
    n = bench.cfg["mem_nodes"]
    mrows = []
    for shape, what in (("chain", "chain (one handle)"), ("dot", "dot (leaves held)"),
                        ("leaves", "leaves (a handle each)")):
        got = {}
        for k, which in (("before", BEFORE), ("after", "installed")):
            bench.log(f"  memory {k} {shape} {n}")
            got[k] = memory(which, shape, n)
        if any("error" in r for r in got.values()):
            mrows.append([what, str(got.get("before")), str(got.get("after")), ""])
            continue
        b, a = (got[k]["bytes"] / got[k]["nodes"] for k in ("before", "after"))
        mrows.append([what, f"{b:,.1f}", f"{a:,.1f}", f"{a - b:+.1f}"])
    body += (f"\n\nRSS growth per arena node for a {n:,}-node graph, each in a fresh "
             "process. A handle (a live `Value` object) costs 16 more bytes than before: "
             "the 16-byte GC header and the 8-byte `__dict__` pointer take it from "
             "pymalloc's 32-byte size class to the 48-byte one. CPython needs the header "
             "on every instance of a GC type, and cycles through attributes need a GC "
             "type. A node without a handle costs what it did.\n\n"
             + table(["graph", "before B/node", "after B/node", "change"], mrows))
    bench.section(TITLE, body)
    worst = max((r for _, r in ratios[:4] if r == r), default=float("nan"))
    bench.targets.append(("per-op cost, extensible Value vs before (build)", "<= 1.05x",
                          f"worst {fmt_ratio(worst)}",
                          "PASS" if worst <= 1.05 else f"slower by {worst:.2f}x"))
    bench.headline(f"the extensible Value's cost: worst {fmt_ratio(worst)} the time of the "
                   f"core before it (`{BEFORE}`), per op")
