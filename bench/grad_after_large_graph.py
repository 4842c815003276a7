"""Does a small grad() pay for the largest graph the process once held? (issue 18)

grad() used to calloc its per-node scratch (state bits, adjoints) for every slot the
arena had ever handed out, on every call. This script builds, in the installed core
and in the core of a git ref (bench/baseline.py: its own arena, in this process), a
small graph (20 ops), then a 10**6-node chain and a leaf above it (a late parameter:
it keeps the arena's high-water mark up, so no trim gives the slots back), frees the
chain, and times grad() of the small graph, with and without create_graph, the two
cores alternately (harness.alternate). Printed: the medians, and the paired ratio
ref / installed, in a fresh arena and after the large graph.

    PYTHONPATH=$PWD/src python3 bench/grad_after_large_graph.py [--baseline REF]
"""
import argparse
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baseline  # noqa: E402
from harness import Sampler, alternate, fmt_ratio, fmt_time, med, pair_ratio, table  # noqa: E402

from autograd import _core as ours  # noqa: E402

LARGE = 10**6


def small_graph(core):
    x = core.Value(1.5)
    y = x
    for _ in range(20):
        y = y * x + 1.0
    return x, y


def hold_large_graph(core):
    """A LARGE-node chain, freed, and the leaf made after it (returned: keep it)."""
    v = core.Value(0.5)
    for _ in range(LARGE):
        v = v * 1.0000001
    top = core.Value(2.0)
    del v
    gc.collect()
    return top


def samplers(cores, create_graph):
    out = {}
    for name, (core, (x, y)) in cores.items():
        out[name] = Sampler(lambda core=core, x=x, y=y: core.grad(y, x, create_graph=create_graph),
                            prime=False)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="main", help="git ref of the 'before' core")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    before = baseline.load(args.baseline)
    cores = {"before": (before, small_graph(before)), "after": (ours, small_graph(ours))}
    rows = []
    for phase in ("fresh arena", f"after a freed {LARGE:,}-node graph"):
        if phase != "fresh arena":
            kept = [hold_large_graph(core) for core, _ in cores.values()]  # noqa: F841
        for cg in (False, True):
            samples, errors = alternate(samplers(cores, cg), args.rounds, 0.05)
            assert not errors, errors
            rows.append([phase, f"create_graph={cg}", fmt_time(med(samples["before"])),
                         fmt_time(med(samples["after"])),
                         fmt_ratio(pair_ratio(samples, "before", "after"))])
    print(f"small grad() (20 ops): before = core of {baseline.describe(before)}, "
          "after = installed core")
    print(table(["arena", "grad", "before", "after", "before / after (paired)"], rows))


if __name__ == "__main__":
    main()
