"""Memory given back: RSS before, at the peak of and after a huge graph, and the
speed of a small training step before and after that graph came and went.

Runs in a fresh process (this file is also its worker): RSS read from
/proc/self/statm before anything big is built, after building and
backpropagating a chain of N nodes, and after dropping it. The small step (an
MLP on 16 moons: forward, loss, backward, SGD update) is timed alternately with
a fixed pure-Python reference workload, before and after the huge graph; the
ratio step / reference of each round cancels the machine's load, and the
figure is the median ratio after divided by the median ratio before (1.00x:
same speed). A control process does the same without the huge graph, in turn
with the measured one (several pairs in a full run): its figure is the noise
floor of the machine.
"""
import json
import os
import subprocess
import sys
import time

NAME = "memory_return"


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(nodes, rounds):
    import harness
    from autograd import Value
    from autograd._core import arena_stats
    from autograd.datasets import make_moons
    from autograd.nn import MLP

    X, y = make_moons(16)
    model = MLP(2, [16, 16, 1])
    xs = [[Value(float(a)) for a in row] for row in X]

    def step():
        scores = [model(x) for x in xs]
        loss = sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(xs))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.01 * p.grad

    def reference():                      # fixed interpreter work: no arena, no new memory
        acc = 0.0
        for i in range(20000):
            acc += i * 0.5
        return acc

    def timed():
        samplers = {"step": harness.Sampler(step), "ref": harness.Sampler(reference)}
        samples, errors = harness.alternate(samplers, rounds, 0.05)
        return harness.pair_ratio(samples, "step", "ref"), harness.med(samples["step"])

    def cpu_timed():
        """The same pairing in process time, call by call: on a loaded machine the
        wall-clock figure also measures the scheduler."""
        ratios = []
        for _ in range(4 * rounds):
            t0 = time.process_time()
            step()
            t1 = time.process_time()
            reference()
            ratios.append((t1 - t0) / max(time.process_time() - t1, 1e-9))
        return harness.med(ratios)

    for _ in range(50):                   # warm: the first steps are slower
        step()
        reference()
    before_ratio, before_step = timed()
    before_cpu = cpu_timed()
    cap_small = arena_stats()["capacity"]
    rss0 = _rss_mb()
    x = Value(0.5)
    root = x
    for _ in range(nodes // 2):
        root = root * 1.0                 # two nodes an op: the constant and the product
    root.backward()
    peak, cap_peak = _rss_mb(), arena_stats()["capacity"]
    del root
    after = _rss_mb()
    cap_after = arena_stats()["capacity"]
    after_ratio, after_step = timed()
    after_cpu = cpu_timed()
    print(json.dumps({"nodes": nodes, "rss_before": rss0, "rss_peak": peak, "rss_after": after,
                      "rss_after_steps": _rss_mb(), "cap_small": cap_small,
                      "cap_peak": cap_peak, "cap_after": cap_after,
                      "cap_after_steps": arena_stats()["capacity"],
                      "before_ratio": before_ratio, "after_ratio": after_ratio,
                      "before_step": before_step, "after_step": after_step,
                      "before_cpu": before_cpu, "after_cpu": after_cpu}))


def run(bench):
    import harness
    nodes = 2 * 10**6 if bench.quick else 2 * 10**7
    rounds = 5 if bench.quick else 15
    pairs = 1 if bench.quick else 3
    bench.log(f"memory_return: a {nodes:,}-node graph built, backpropagated and dropped "
              f"(fresh processes, {pairs} pair(s) with a control)")
    here = os.path.dirname(os.path.abspath(__file__))

    def worker(n):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(n), str(rounds)],
                              capture_output=True, text=True, cwd=os.path.dirname(here))
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed: {proc.stderr.strip().splitlines()[-1:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    runs, controls = [], []
    for _ in range(pairs):
        runs.append(worker(nodes))
        controls.append(worker(0))
    speed = harness.med([r["after_ratio"] / r["before_ratio"] for r in runs])
    noise = harness.med([r["after_ratio"] / r["before_ratio"] for r in controls])
    speed_cpu = harness.med([r["after_cpu"] / r["before_cpu"] for r in runs])
    noise_cpu = harness.med([r["after_cpu"] / r["before_cpu"] for r in controls])
    r = max(runs, key=lambda r: r["rss_after"] - r["rss_before"])     # the worst one
    kept = r["rss_after"] - r["rss_before"]
    rows = [["RSS (MB)", f"{r['rss_before']:.0f}", f"{r['rss_peak']:.0f}",
             f"{r['rss_after']:.0f}", f"{r['rss_after_steps']:.0f}"],
            ["arena capacity (slots)", f"{r['cap_small']:,}", f"{r['cap_peak']:,}",
             f"{r['cap_after']:,}", f"{r['cap_after_steps']:,}"]]
    body = (f"A chain of {nodes:,} nodes built, backpropagated and dropped in a fresh process "
            "(`bench/workloads/memory_return.py`); RSS from /proc/self/statm (the run that "
            "kept the most, of "
            f"{pairs}). The small training step (an MLP 2-16-16-1 on 16 moons) is timed "
            f"alternately with a fixed pure-Python reference, {rounds} rounds before and "
            "after; the paired figure is (step / reference after) / (step / reference "
            f"before): **{harness.fmt_ratio(speed)}** (median of {pairs}; 1.00x: same speed). "
            "A control process that never builds the huge graph gives "
            f"{harness.fmt_ratio(noise)}: the machine's noise floor. The same pairing in "
            f"process time, call by call: **{harness.fmt_ratio(speed_cpu)}** (control "
            f"{harness.fmt_ratio(noise_cpu)}).\n\n"
            + harness.table(["", "before", "peak", "after drop", "after the steps"], rows))
    bench.section("Memory given back", body)
    bench.check(f"RSS kept after a {nodes:,}-node graph is dropped", "<= 150 MB",
                f"{kept:+.0f} MB", harness.verdict(kept, 150, higher_is_better=False))
    bench.headline(f"memory given back: {kept:+.0f} MB kept once a {nodes:,}-node graph "
                   f"(+{r['rss_peak'] - r['rss_before']:,.0f} MB) is dropped")
    bench.targets.append(("small step after / before a huge graph (control: "
                          f"{harness.fmt_ratio(noise)})", "<= 1.10x", harness.fmt_ratio(speed),
                          harness.verdict(speed, 1.10, higher_is_better=False)))
    bench.targets.append(("the same in process time (control: "
                          f"{harness.fmt_ratio(noise_cpu)})", "<= 1.10x",
                          harness.fmt_ratio(speed_cpu),
                          harness.verdict(speed_cpu, 1.10, higher_is_better=False)))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _worker(int(sys.argv[1]), int(sys.argv[2]))
