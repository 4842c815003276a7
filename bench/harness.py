"""The shared benchmark harness: samplers, round-robin pairing, formatting.

Every workload (``bench/workloads/*.py`` and the sections of ``run.py``) times its
engines with `Sampler` and `alternate`, pairs them with `pair_ratio`, and formats
with `fmt_*`, `table` and `verdict`. Method: bench/README.md.
"""
import gc
import math
import os
import statistics
import time

BIG_RECURSION = 10**8          # micrograd's build_topo recurses once per graph level
BIG_STACK = 1 << 30            # ... so the whole bench runs in a thread with a 1 GiB stack

# =============================================================================
# The timing harness
# =============================================================================

class Sampler:
    """Times one engine's call.

    Each sample: gc.collect() (outside the timing), then for engines that run with the
    collector on, one untimed priming call whose garbage stays (so a cyclic-garbage
    engine like micrograd is timed in its steady state, with the previous step's garbage
    around, as in a training loop), then `number` timed calls. For `nogc` engines the
    collector is disabled around the timed calls only. With `keep`, the calls' results
    are held until the timer stops (to time building without freeing).
    """

    def __init__(self, fn, nogc=False, keep=False, prime=True, setup=None):
        self.fn, self.nogc, self.keep, self.prime = fn, nogc, keep, prime
        self.setup = setup
        self.number = 1
        self.single = None

    def calibrate(self, target):
        gc.collect()
        if self.setup:
            self.setup()
        t0 = time.perf_counter()
        r = self.fn()
        self.single = time.perf_counter() - t0
        del r
        self.number = max(1, int(round(target / max(self.single, 1e-9))))
        return self.single

    def sample(self):
        """One sample; retaken (up to RETAKES times, keeping the least disturbed one) when
        this process got less than MIN_CPU_SHARE of a CPU while it ran: on a shared
        machine, a sample during which the scheduler ran someone else is no measure."""
        global RETAKEN
        best = None
        for attempt in range(RETAKES + 1):
            c0 = time.process_time()
            w0 = time.perf_counter()
            t = self._sample()
            share = (time.process_time() - c0) / max(time.perf_counter() - w0, 1e-9)
            if best is None or share > best[1]:
                best = (t, share)
            if share >= MIN_CPU_SHARE:
                break
            RETAKEN += 1
        if best[1] < MIN_CPU_SHARE:
            global DISTURBED
            DISTURBED += 1
        return best[0]

    def _sample(self):
        fn, number = self.fn, self.number
        gc.collect()
        if self.prime and not self.nogc:
            r = fn()
            del r
        kept = [] if self.keep else None
        if self.nogc:
            gc.disable()
        try:
            if self.setup is not None:
                # each call timed alone, after an untimed setup (e.g. zeroing grads)
                setup, pc, total = self.setup, time.perf_counter, 0.0
                for _ in range(number):
                    setup()
                    t0 = pc()
                    fn()
                    total += pc() - t0 - TIMER_OVERHEAD
                t0, t1 = 0.0, total
            elif kept is not None:
                append = kept.append
                t0 = time.perf_counter()
                for _ in range(number):
                    append(fn())
                t1 = time.perf_counter()
            else:
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                t1 = time.perf_counter()
        finally:
            if self.nogc:
                gc.enable()
        del kept
        return (t1 - t0) / number


MIN_CPU_SHARE = 0.85     # a sample during which we got less of a CPU than this is retaken
# a quick run retakes once (BENCH_RETAKES=1, set by run.py for its worker processes too):
# on a loaded machine, three retakes of every sample would double its length
RETAKES = int(os.environ.get("BENCH_RETAKES", "3"))
RETAKEN = 0              # how many samples were retaken
DISTURBED = 0            # how many stayed below MIN_CPU_SHARE after all retakes


def _timer_overhead():
    pc = time.perf_counter
    xs = []
    for _ in range(2000):
        t0 = pc()
        xs.append(pc() - t0)
    return statistics.median(xs)


TIMER_OVERHEAD = _timer_overhead()


def alternate(samplers, rounds, target, log=None):
    """Run the samplers round-robin: {key: [seconds per call, one per round]}; a sampler
    that raises is dropped (its error recorded under key 'errors')."""
    samples = {k: [] for k in samplers}
    errors = {}
    for k, s in list(samplers.items()):
        try:
            s.calibrate(target)               # also the warm-up
        except Exception as e:                # noqa: BLE001 - reported in the table
            errors[k] = f"{type(e).__name__}: {e}"
            del samplers[k]
            del samples[k]
    for _ in range(rounds):
        for k, s in list(samplers.items()):
            try:
                samples[k].append(s.sample())
            except Exception as e:            # noqa: BLE001
                errors[k] = f"{type(e).__name__}: {e}"
                del samplers[k]
                del samples[k]
    if log:
        log("    " + ", ".join(f"{k} {fmt_time(statistics.median(v))}"
                               for k, v in samples.items() if v))
    return samples, errors


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pair_ratio(samples, num, den):
    """Median over rounds of samples[num][i] / samples[den][i] (nan if either is missing)."""
    a, b = samples.get(num), samples.get(den)
    if not a or not b:
        return float("nan")
    return statistics.median(x / y for x, y in zip(a, b))


def no_setup():
    pass


def zero_grads_setup(key, root):
    """An untimed reset before each repeated backward: without it the interior grads
    grow with every call (each backward adds to the last one's), binomially along a
    deep graph, until micrograd's int grads overflow a float."""
    if key == "ours":
        from autograd import Graph
        return Graph(root).forward          # zeroes every non-leaf grad (data unchanged)
    if key in ("micrograd", "micrograd-nogc"):
        topo, seen, stack = [], set(), [root]   # iterative: no recursion limit here
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            topo.append(v)
            stack.extend(v._prev)

        def zero(topo=topo):
            for v in topo:
                v.grad = 0
        return zero
    return no_setup                          # torch keeps no interior grads


# =============================================================================
# Formatting
# =============================================================================

def fmt_time(s):
    if s != s:
        return "n/a"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e9:.0f} ns"


def fmt_ns(x):
    """Three significant digits or so; "n/a" for nan."""
    if x != x:
        return "n/a"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(r):
    return "n/a" if r != r else fmt_ns(r) + "x"


def fmt_n(n):
    e = int(round(math.log10(n)))
    return f"10^{e}" if 10**e == n else f"{n:,}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def verdict(achieved, target, higher_is_better=True):
    if achieved != achieved:
        return "not measured"
    if higher_is_better:
        return "PASS" if achieved >= target else f"short by {target / achieved:.2f}x"
    return "PASS" if achieved <= target else f"short by {achieved / target:.2f}x"
