"""Summarize profiles of bench/profile_step.py (see PROFILE.md for the commands).

    python bench/profile_report.py pyspy RAW.txt
        py-spy's raw (collapsed) output of `py-spy record --native -f raw`: the share
        of samples per part of the step (interpreter, core dot, backward, free, ...),
        and the interpreter's share per Python function.

    python bench/profile_report.py callgrind STEPS.out BASE.out N
        two callgrind outputs of the same command with --steps N and --steps 0: the
        instructions per step per function (the difference divided by N), grouped into
        the core, the interpreter and the rest.
"""
import collections
import re
import subprocess
import sys


def pyspy(path):
    total = 0
    parts = collections.Counter()
    interp = collections.Counter()
    for line in open(path):
        stack, n = line.rstrip().rsplit(" ", 1)
        n = int(n)
        frames = stack.split(";")
        # the steps: under profile_step.py's main(), not importing anything (a graph freed
        # as step() returns shows up right under main(), after the step's frame is gone)
        if (not any(f.startswith("main (profile_step.py") for f in frames)
                or any("importlib" in f or "_find_and_load" in f for f in frames)):
            continue
        total += n
        core = [f for f in frames if "_core.pyx" in f or "_core.cpython" in f or "__pyx" in f]
        if core:
            f = core[0].split(" (")[0]
            if f == "backward":
                c = "core: backward (sort + chain rule)"
            elif "dealloc" in f:
                c = "core: freeing the graph (Value dealloc -> cascade)"
            elif f == "dot":
                c = "core: dot (the MLP's weighted sums)"
            elif f in ("relu", "tanh", "exp", "log", "sigmoid"):
                c = f"core: {f}"
            elif "nb_" in f:
                c = "core: Python operators on Values"
            elif "new" in f or "__init__" in f:
                c = "core: Value() leaves"
            else:
                c = f"core: other ({f})"
        else:
            leaf = frames[-1]
            if ".py" in leaf:
                c = "Python interpreter"
                interp[re.sub(r":\d+\)", ")", leaf)] += n
            else:
                c = "other native: " + leaf.split(" (")[-1].rstrip(")")
        parts[c] += n
    print(f"{total} samples in the steps")
    for c, n in parts.most_common():
        if n / total >= 0.002:
            print(f"{n / total * 100:5.1f}%  {c}")
    print("\nthe interpreter's share, by Python function (self time)")
    for f, n in interp.most_common(12):
        print(f"{n / total * 100:5.1f}%  {f}")


def _annotate(path):
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        n = int(m.group(1).replace(",", ""))
        fm = re.match(r"(.*?):(\S+)(?: \[(.*)\])?$", m.group(2))
        key = (fm.group(1), fm.group(2), fm.group(3) or "") if fm else (m.group(2), "", "")
        counts[key] += n
    return counts


def callgrind(steps_out, base_out, n):
    a, b = _annotate(steps_out), _annotate(base_out)
    diff = {k: (a[k] - b.get(k, 0)) / n for k in a}
    total = sum(diff.values())
    cats = collections.Counter()
    groups = collections.Counter()
    for (path, f, obj), v in diff.items():
        fn = re.sub(r"'\d+$", "", f)
        if "__pyx" in fn or "_core.c" in path or "_core." in obj:
            c = "core: " + re.sub(r"__pyx_(f|pw|pf|tp_\w+?|nb_\w+?|getprop|setprop)_8autograd_5_core_",
                                  "", fn)
            g = "core"
        elif "Python-3" in path or "python3" in path or "libpython" in obj:
            c, g = "interpreter: " + fn, "interpreter"
        else:
            c, g = "other: " + fn, "other"
        cats[c] += v
        groups[g] += v
    print(f"{total / 1e6:.2f} M instructions per step")
    for g, v in groups.most_common():
        print(f"  {g}: {v / 1e6:.2f} M ({v / total * 100:.1f}%)")
    print()
    for c, v in cats.most_common(25):
        print(f"{v / 1e3:9.1f} k  {v / total * 100:5.1f}%  {c}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "pyspy":
        pyspy(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "callgrind":
        callgrind(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
