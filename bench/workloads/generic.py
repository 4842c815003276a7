"""The generic path, op by op: what code people write themselves costs per op (int and
bool operands, constants on either side, reflected ops, ``sum()``'s int start, ``/`` and
``**`` with ints, ``Value(x)``), on the installed core and, paired in the same process,
on the core of a git ref (``--baseline REF``, default ``main``; bench/baseline.py).
"""
import os
import sys
import timeit

from harness import Sampler, alternate, fmt_ns, fmt_ratio, fmt_time, med, pair_ratio, table

NAME = "generic"
ORDER = 46

# (label, statement); names: v, w (Values), vs (20 Values), Value
CASES = [
    ("`v + w` (two Values: the reference)", "v + w"),
    ("`v + 1.0`", "v + 1.0"),
    ("`v + 1` (int)", "v + 1"),
    ("`1 + v` (int, reflected)", "1 + v"),
    ("`2 * v`", "2 * v"),
    ("`v * True` (bool)", "v * True"),
    ("`1 - v`", "1 - v"),
    ("`1.0 - v` (float, reflected)", "1.0 - v"),
    ("`v / 3` (`x / len(x)`)", "v / 3"),
    ("`2 / v`", "2 / v"),
    ("`v ** 2`", "v ** 2"),
    ("`v ** -0.5`", "v ** -0.5"),
    ("`sum(vs)`, per term (int start)", "sum(vs)"),
    ("`Value(1.5)`", "Value(1.5)"),
    ("`Value(1)`", "Value(1)"),
    ("`-v`", "-v"),
    ("`v.exp()`", "v.exp()"),
]
PER = {"sum(vs)": 20}     # ops per statement
LOOP = 1000               # statements per timed call


def sampler(Value, stmt):
    ns = {"Value": Value, "v": Value(1.5), "w": Value(0.7),
          "vs": [Value(0.1 * i) for i in range(20)]}
    t = timeit.Timer(stmt, globals=ns)
    return Sampler(lambda: t.timeit(LOOP), prime=False)


def run(bench):
    from autograd import Value
    ref = getattr(bench.args, "baseline", None) or "main"
    old, why = None, ""
    if not bench.before_after:
        why = "the installed core only; `--before-after` adds the core of a git ref"
    else:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            import baseline
            old = bench.old_core(ref)
            label_old = baseline.describe(old)
        except Exception as e:  # noqa: BLE001 - no Cython, no git: say so
            why = f"no baseline ({type(e).__name__}: {e})"
    bench.log("generic path: ns per op" + (f", against {label_old}" if old else ""))
    rows = []
    rounds = bench.cfg["rounds"]
    for label, stmt in CASES:
        samplers = {"after": sampler(Value, stmt)}
        if old is not None:
            samplers["before"] = sampler(old.Value, stmt)
        samples, errors = alternate(samplers, rounds, bench.cfg["target"] / 4)
        per = LOOP * PER.get(stmt, 1) / 1e9
        after = med(samples.get("after", [])) / per
        if old is not None:
            before = med(samples.get("before", [])) / per
            rows.append([label, fmt_ns(before), fmt_ns(after),
                         fmt_ratio(pair_ratio(samples, "before", "after"))])
        else:
            rows.append([label, fmt_ns(after)])
        for k, e in errors.items():
            bench.notes.append(f"generic: {stmt} on {k}: {e}")
    # the same on a whole transformer step (examples/tinygpt.py), before and after
    step = ""
    if old is not None:
        from workloads import transformer as T
        tiny = T.tinygpt
        tok = tiny.Tokenizer(tiny.load_words())
        ids = tok.encode(T.WORD)
        samplers = {}
        for k, V in (("after", Value), ("before", old.Value)):
            model = tiny.TinyGPT(tok.vocab_size, seed=T.SEED, Value=V)
            opt = tiny.Adam(model.parameters(), steps=10**9)
            samplers[k] = Sampler(lambda m=model, o=opt: tiny.train_step(m, o, ids))
        samples, _ = alternate(samplers, rounds, bench.cfg["target"], bench.log)
        step = (f"\n\nThe transformer workload's step (`{T.WORD}`) on the same two cores, "
                f"paired: {fmt_time(med(samples['before']))} before, "
                f"{fmt_time(med(samples['after']))} after, "
                f"before / after {fmt_ratio(pair_ratio(samples, 'before', 'after'))}.")
    head = (["statement", f"ns / op, {label_old}", "ns / op, installed core",
             "before / after"] if old is not None else ["statement", "ns / op"])
    body = (f"ns per op of single statements on one Value (`timeit`, {LOOP:,} statements a "
            "sample, the loop's own cost included; the graph node each makes is freed "
            "inside the timing), the engines alternating in one process"
            + (f" (installed core: {os.path.basename(sys.modules['autograd._core'].__file__)}"
               f"; baseline built by bench/baseline.py from `{ref}`)" if old is not None
               else f" ({why})")
            + ".\n\n" + table(head, rows) + step)
    bench.section("3d. The generic path, op by op", body)
