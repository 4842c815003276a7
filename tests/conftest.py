"""Shared fixtures: a seeded random-program generator, a runner that plays one program
on any micrograd-style ``Value`` class, and micrograd's demo loss.

A *program* is a list of leaf values plus a list of steps; step k makes node
``n_leaves + k`` from earlier nodes (any earlier node, so nodes are reused and the
graph is a DAG) and constants. The generator simulates every step with Python
floats and rejects steps that leave a safe domain (division by ~0, a non-positive
base under a fractional exponent, relu near its kink, overflow, heavy cancellation),
so the same program runs without error on every engine, and finite differences
through it are smooth.
"""
import importlib.util
import math
import os
import random
import shutil

import pytest

# ops micrograd 0.1.0 has (its - and / are built from + * **); sum is Python's sum()
MICROGRAD_OPS = ("add", "addc", "radd", "mul", "mulc", "rmul", "sub", "subc", "rsub",
                 "div", "divc", "rdiv", "neg", "powi", "powf", "relu", "sum")
# ops for which micrograd and we build the same nodes: two backward()s agree too
SAME_STRUCTURE_OPS = ("add", "addc", "radd", "mul", "mulc", "rmul", "powi", "powf",
                      "relu", "sum")
# everything we have
# autograd.math's functions, as methods PyTorch's tensors share. max and min (Python
# control flow on comparisons) are not in ALL_OPS: a replayed Graph keeps the branch
# taken when it was recorded (tests/test_math.py tests them against torch).
MATH_OPS = ("sin", "cos", "sqrt", "atan", "erf", "abs", "atan2", "hypot")
# the rest of autograd.math, called as autograd.math.<name> on our Values and as the
# tensor method of that name on torch's (or TORCH_EQUIVALENTS where torch has none)
MORE_MATH_OPS = ("tan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh",
                 "exp2", "expm1", "log2", "log10", "log1p", "cbrt", "erfc", "gamma",
                 "lgamma", "floor", "ceil", "trunc", "fmod", "remainder", "copysign")
BINARY_MATH_OPS = ("atan2", "hypot", "fmod", "remainder", "copysign")
# autograd.math's n-ary functions of 3 or 4 nodes (math's bits: an n-ary node)
NARY_MATH_OPS = ("hypot3", "fsum")
ALL_OPS = (MICROGRAD_OPS + ("tanh", "exp", "log", "sigmoid", "powv", "rpow") + MATH_OPS
           + MORE_MATH_OPS + NARY_MATH_OPS)


def _torch_cbrt(a):
    return a.sign() * a.abs() ** (1.0 / 3.0)


# torch has no cbrt, no gamma and no IEEE remainder (torch.remainder is Python's %)
TORCH_EQUIVALENTS = {
    "cbrt": _torch_cbrt,
    "gamma": lambda a: a.lgamma().exp(),
    "remainder": lambda a, b: a - (a / b).round() * b,    # round: half to even, as IEEE
}


def _near_integer(x):
    return abs(x - round(x)) < KINK

BOUND = 50.0        # |data| of every node stays below this
MIN_DEN = 0.25      # |divisor| and bases of negative / fractional powers stay above this
KINK = 0.02         # relu inputs are exactly 0 or at least this far from it


class Program:
    def __init__(self, leaves, steps, seed):
        self.leaves = leaves        # leaf data (floats, some ints)
        self.steps = steps          # (op, operand node indices, constant)
        self.seed = seed

    def __repr__(self):
        return f"Program(seed={self.seed}, leaves={self.leaves}, steps={self.steps})"


def _simulate(op, xs, c):
    """The float result of one step (raises or returns None outside the safe domain)."""
    a = xs[0] if xs else None
    b = xs[1] if len(xs) > 1 else None
    if op in ("add", "addc", "radd", "sub", "subc", "rsub", "sum"):
        if op == "sum":
            r, parts = sum(xs), xs
        else:
            x, y = {"add": (a, b), "addc": (a, c), "radd": (c, a),
                    "sub": (a, b), "subc": (a, c), "rsub": (c, a)}[op]
            r = x - y if "sub" in op else x + y
            parts = (x, y)
        # heavy cancellation would magnify the last-bit differences of / (below)
        if r != 0.0 and abs(r) < 0.01 * max(abs(p) for p in parts):
            return None
        return r
    if op in ("mul", "mulc", "rmul"):
        return a * (b if op == "mul" else c)
    if op in ("div", "divc", "rdiv"):
        x, y = {"div": (a, b), "divc": (a, c), "rdiv": (c, a)}[op]
        return x / y if abs(y) >= MIN_DEN else None
    if op == "neg":
        return -a
    if op == "powi":
        return a ** c if c > 0 or abs(a) >= MIN_DEN else None
    if op == "powf":
        return a ** c if a >= MIN_DEN else None
    if op == "relu":
        return max(a, 0.0) if a == 0.0 or abs(a) >= KINK else None
    if op == "tanh":
        return math.tanh(a)
    if op == "exp":
        return math.exp(a) if a <= 3.5 else None
    if op == "log":
        return math.log(a) if a >= MIN_DEN else None
    if op == "sigmoid":
        return 1.0 / (1.0 + math.exp(-a)) if a > -30 else 0.0
    if op == "powv":
        return a ** b if a >= MIN_DEN and abs(b) <= 3 else None
    if op == "rpow":
        return c ** a if abs(a) <= 3 else None
    if op in ("sin", "cos", "atan", "erf"):
        return getattr(math, op)(a)
    if op == "sqrt":
        return math.sqrt(a) if a >= MIN_DEN else None
    if op == "abs":
        return abs(a) if abs(a) >= KINK else None
    if op in ("atan2", "hypot"):
        return getattr(math, op)(a, b) if math.hypot(a, b) >= MIN_DEN else None
    if op in MORE_MATH_OPS:
        return _simulate_more_math(op, a, b)
    if op == "hypot3":
        return math.hypot(*xs) if math.hypot(*xs) >= MIN_DEN else None
    if op == "fsum":
        r = math.fsum(xs)
        return r if r == 0.0 or abs(r) >= 0.01 * max(map(abs, xs)) else None
    if op in ("max", "min"):     # ties only of a node with itself: max(a, a) is a
        return (max if op == "max" else min)(a, b) if a is b or abs(a - b) >= KINK else None
    raise AssertionError(op)


def _simulate_more_math(op, a, b):
    """autograd.math's other functions, kept away from their poles, domain ends and
    jumps (by KINK), so that every engine and finite differences agree."""
    f = getattr(math, op)
    if op == "tan":
        return f(a) if abs(math.cos(a)) >= 0.1 else None
    if op in ("asin", "acos", "atanh"):
        return f(a) if abs(a) <= 0.9 else None
    if op == "acosh":
        return f(a) if a >= 1.1 else None
    if op in ("sinh", "cosh", "expm1"):
        return f(a) if abs(a) <= 3.5 else None
    if op == "exp2":
        return f(a) if a <= 5.0 else None
    if op in ("log2", "log10", "lgamma"):
        return f(a) if a >= MIN_DEN else None
    if op == "gamma":
        return f(a) if MIN_DEN <= a <= 5.0 else None
    if op == "log1p":
        return f(a) if a >= MIN_DEN - 1.0 else None
    if op == "cbrt":
        return f(a) if abs(a) >= MIN_DEN else None
    if op in ("floor", "ceil", "trunc"):
        return float(f(a)) if not _near_integer(a) else None
    if op == "fmod":
        return f(a, b) if abs(b) >= MIN_DEN and not _near_integer(a / b) else None
    if op == "remainder":
        return f(a, b) if abs(b) >= MIN_DEN and not _near_integer(a / b - 0.5) else None
    if op == "copysign":
        return f(a, b) if abs(a) >= KINK and abs(b) >= KINK else None
    return f(a)                     # asinh, erfc


def _constant(rng, op):
    if op == "powi":
        return rng.choice((1, 2, 2, 3, -1, -1, -2))
    if op == "powf":
        return rng.choice((0.5, -0.5, 1.5, 2.0, rng.uniform(-1.5, 2.5)))
    if op == "rpow":
        return rng.uniform(0.3, 3.0)
    if rng.random() < 0.3:
        return rng.choice((-3, -2, -1, 1, 2, 3))       # int constants, as users write them
    return rng.uniform(-3.0, 3.0)


def make_program(seed, ops=MICROGRAD_OPS, n_leaves=None, n_steps=None):
    """A random program using `ops`, the same for the same seed."""
    rng = random.Random(seed)
    n_leaves = n_leaves or rng.randint(2, 5)
    n_steps = n_steps or rng.randint(6, 25)
    leaves = [rng.choice((-2, -1, 1, 2, 3)) if rng.random() < 0.15
              else rng.choice((-1, 1)) * rng.uniform(0.3, 3.0) for _ in range(n_leaves)]
    vals = [float(x) for x in leaves]
    used = [False] * n_leaves
    steps = []
    unary = ("neg", "powi", "powf", "relu", "tanh", "exp", "log", "sigmoid", "rpow",
             "addc", "radd", "mulc", "rmul", "subc", "rsub", "divc", "rdiv",
             "sin", "cos", "sqrt", "atan", "erf", "abs") + tuple(
                 op for op in MORE_MATH_OPS if op not in BINARY_MATH_OPS)
    while len(steps) < n_steps:
        for _ in range(50):
            op = rng.choice(ops)
            pick = lambda: rng.randrange(len(vals)) if rng.random() < 0.4 else \
                rng.randrange(max(0, len(vals) - 4), len(vals))     # favour recent: depth
            if op == "sum":
                args = tuple(pick() for _ in range(rng.randint(2, 4)))
            elif op in NARY_MATH_OPS:
                args = tuple(pick() for _ in range(rng.randint(3, 4)))
            elif op in unary:
                args = (pick(),)
            else:
                args = (pick(), pick())        # may be the same node twice
            c = _constant(rng, op)
            if op in ("divc", "rdiv") and c == 0:
                continue
            try:
                r = _simulate(op, [vals[i] for i in args], c)
            except (ArithmeticError, ValueError):
                r = None
            # a logarithm's 0 (of an int leaf 1) is no structural zero: a relu
            # above it would sit on its kink while finite differences move it
            if op in ("log", "log2", "log10", "log1p", "lgamma") and r == 0.0:
                continue
            if r is not None and not isinstance(r, complex) and math.isfinite(r) \
                    and abs(r) <= BOUND:
                break
        else:
            continue
        steps.append((op, args, c))
        if op in ("max", "min"):        # the Value not picked is not used (no gradient)
            args = (args[0] if vals[args[0]] == r else args[1],)
        vals.append(float(r))
        used.append(False)
        for i in args:
            used[i] = True
    # the output: Python's sum() of every node nothing else used, so all nodes count
    sinks = tuple(i for i, u in enumerate(used) if not u)
    steps.append(("sum", sinks, None))
    return Program(leaves, steps, seed)


def run_program(prog, V, leaf_data=None):
    """Play `prog` on Value class `V`; returns all its nodes (leaves first; last = output).

    `leaf_data` replaces the program's leaf values; its Values are used as the leaves."""
    nodes = [x if isinstance(x, V) else V(x)
             for x in (prog.leaves if leaf_data is None else leaf_data)]
    for op, args, c in prog.steps:
        a = nodes[args[0]]
        b = nodes[args[1]] if len(args) > 1 else None
        if op == "add":
            r = a + b
        elif op == "addc":
            r = a + c
        elif op == "radd":
            r = c + a
        elif op == "mul":
            r = a * b
        elif op == "mulc":
            r = a * c
        elif op == "rmul":
            r = c * a
        elif op == "sub":
            r = a - b
        elif op == "subc":
            r = a - c
        elif op == "rsub":
            r = c - a
        elif op == "div":
            r = a / b
        elif op == "divc":
            r = a / c
        elif op == "rdiv":
            r = c / a
        elif op == "neg":
            r = -a
        elif op in ("powi", "powf"):
            r = a ** c
        elif op == "relu":
            r = a.relu()
        elif op == "sum":
            r = sum(nodes[i] for i in args)
        elif op == "tanh":
            r = a.tanh()
        elif op == "exp":
            r = a.exp()
        elif op == "log":
            r = a.log()
        elif op == "sigmoid":
            r = a.sigmoid()
        elif op == "powv":
            r = a ** b
        elif op == "rpow":
            r = c ** a
        elif op in ("sin", "cos", "sqrt", "atan", "erf"):
            r = getattr(a, op)()
        elif op == "abs":
            r = abs(a)
        elif op in ("atan2", "hypot"):
            r = getattr(a, op)(b)
        elif op in MORE_MATH_OPS:
            r = _more_math(op, a, b)
        elif op in NARY_MATH_OPS:
            r = _nary_math(op, [nodes[i] for i in args])
        elif op == "max":
            r = max(a, b)
        elif op == "min":
            r = min(a, b)
        else:
            raise AssertionError(op)
        nodes.append(r)
    return nodes


def _more_math(op, a, b):
    """autograd.math.<op> on our Values; torch's method or equivalent on a tensor."""
    args = (a,) if b is None else (a, b)
    if type(a).__module__.startswith("torch"):
        if op in TORCH_EQUIVALENTS:
            return TORCH_EQUIVALENTS[op](*args)
        return getattr(a, op)(*args[1:])
    import autograd.math as am
    return getattr(am, op)(*args)


def _nary_math(op, xs):
    """autograd.math.hypot / fsum of several nodes; torch's norm / sum on tensors."""
    if type(xs[0]).__module__.startswith("torch"):
        import torch
        stacked = torch.stack(xs)
        return torch.linalg.vector_norm(stacked) if op == "hypot3" else stacked.sum()
    import autograd.math as am
    return am.hypot(*xs) if op == "hypot3" else am.fsum(xs)


def demo_loss(model, X, y, V):
    """micrograd's demo.ipynb loss: SVM max-margin loss + L2 regularization, whole batch."""
    inputs = [list(map(V, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    return data_loss + reg_loss


def assert_close(ours, theirs, rel=1e-9, abs_=1e-12, what=""):
    assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=abs_), \
        f"{what}: ours {ours!r} != expected {theirs!r}"


@pytest.fixture(scope="session")
def programs():
    """The program toolkit: make / run / op sets."""
    class Toolkit:
        make = staticmethod(make_program)
        run = staticmethod(run_program)
        MICROGRAD_OPS = globals()["MICROGRAD_OPS"]
        SAME_STRUCTURE_OPS = globals()["SAME_STRUCTURE_OPS"]
        ALL_OPS = globals()["ALL_OPS"]
    return Toolkit


@pytest.fixture(scope="session")
def moons_loss():
    """micrograd's demo loss, ``moons_loss(model, X, y, Value)``."""
    return demo_loss


@pytest.fixture(scope="session")
def close():
    """``close(ours, expected, rel=1e-9, abs_=1e-12, what='')`` asserts math.isclose."""
    return assert_close


# ---------------------------------------------------------------------------
# Tests that need something outside the test extra, or a facility of the platform
# ---------------------------------------------------------------------------
# Mark them ``@pytest.mark.requires("dot")`` (or a module with
# ``pytestmark = pytest.mark.requires("dot")``), or call ``require("dot")`` in the
# test. Without it they skip, saying why and how to install it (``pytest -rs`` lists
# the reasons). Each requirement has a switch that forbids the skip: when it is set,
# a missing requirement fails the test, since a skipped test there never ran.
#   CI=true                     Graphviz's `dot` and psutil (every CI installs them:
#                               the workflow's runners and containers, .ci/run)
#   CI=true                     also matplotlib (the demo's picture), except where
#                               ARENAGRAD_TEST_WITHOUT=matplotlib says the platform has
#                               no wheel of it (cibuildwheel's musllinux aarch64 tests)
#   ARENAGRAD_REQUIRE_TORCH=1   torch, for the differential tests against torch float64
#                               (set by .ci/run and .ci/sanitize; the wheels' test runs
#                               have no torch on most platforms, so they skip those)
# A facility the platform itself lacks (reading a process's memory; capping the
# address space, which macOS and Windows do not enforce) is never forced: the test
# skips with the reason, whatever the switches say.


def switched_on(name):
    """Is the environment switch `name` set (``1``, ``true`` or ``yes``)?"""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _importable(name):
    return lambda: importlib.util.find_spec(name) is not None


REQUIREMENTS = {
    # name: (is it available?, what to do when it is not, the switch that forbids skipping)
    "dot": (lambda: shutil.which("dot") is not None,
            "Graphviz's `dot` program is not on PATH; install Graphviz: apt-get install "
            "graphviz (Debian, Ubuntu), brew install graphviz (macOS), winget install "
            "graphviz (Windows), or conda install graphviz", "CI"),
    "torch": (_importable("torch"),
              "torch is not installed; pip install torch (a CPU build is enough)",
              "ARENAGRAD_REQUIRE_TORCH"),
    "mpmath": (_importable("mpmath"),
               "mpmath is not installed (it comes with torch, through sympy); pip install "
               "mpmath", "ARENAGRAD_REQUIRE_TORCH"),
    "psutil": (_importable("psutil"),
               "psutil is not installed (it measures the process's memory); "
               "pip install psutil, or the `test` extra", "CI"),
    "matplotlib": (_importable("matplotlib"),
                   "matplotlib is not installed (the demo draws with it); "
                   "pip install matplotlib, or the `test` extra", "CI"),
}


def exempted():
    """The requirements ARENAGRAD_TEST_WITHOUT names (comma-separated): a platform
    without a wheel of them, whose tests skip even under their switch."""
    return {name.strip() for name in os.environ.get("ARENAGRAD_TEST_WITHOUT", "").split(",")
            if name.strip()}


def require(what):
    """Skip the calling test unless `what` (a key of REQUIREMENTS) is available;
    fail instead of skipping when the requirement's switch is on."""
    available, hint, switch = REQUIREMENTS[what]
    if available():
        return
    if what in exempted():
        pytest.skip(f"{hint} (ARENAGRAD_TEST_WITHOUT={os.environ['ARENAGRAD_TEST_WITHOUT']}: "
                    "this platform has no wheel of it)")
    if switched_on(switch):
        pytest.fail(f"{switch}={os.environ[switch]}, so this test must run, but {hint}",
                    pytrace=False)
    pytest.skip(hint)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires(*names): the test needs each of conftest.REQUIREMENTS[name]; "
        "skipped without it, failed without it when that requirement's switch is on")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires"):
        for what in mark.args:
            require(what)


# Facilities of the platform: the tests that need them skip where they are missing.

def _why_no_memory_reading():
    require("psutil")
    try:
        import psutil
        info = psutil.Process().memory_info()
        assert info.rss > 0 and info.vms > 0, info
    except Exception as e:      # psutil reads /proc on Linux: hidden in some sandboxes
        return f"this platform does not give the process's memory to psutil ({e!r})"
    return None


# A fresh interpreter caps its address space 64 MiB above what it uses and asks for
# 256 MiB: where the cap is enforced (Linux), that is a MemoryError.
_ADDRESS_SPACE_PROBE = """
import psutil, resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (psutil.Process().memory_info().vms + 64 * 2**20, hard))
try:
    block = bytearray(256 * 2**20)
except MemoryError:
    print('enforced')
else:
    print('not enforced')
"""


def _why_no_address_space_cap():
    reason = _why_no_memory_reading()
    if reason:
        return reason
    try:
        import resource
        resource.RLIMIT_AS
    except (ImportError, AttributeError) as e:
        return f"this platform cannot cap a process's address space (resource.RLIMIT_AS: {e!r})"
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", _ADDRESS_SPACE_PROBE],
                          capture_output=True, text=True, timeout=60)
    if done.stdout.strip() != "enforced":
        return ("this platform does not enforce resource.RLIMIT_AS (a capped process "
                f"could still allocate: {(done.stdout + done.stderr).strip()!r})")
    return None


_FACILITIES = {"memory": _why_no_memory_reading,
               "address space cap": _why_no_address_space_cap}
_facility_reasons = {}


def require_facility(what):
    """Skip the calling test, with the reason, unless the platform has `what`:
    ``"memory"`` (the process's RSS and address space, through psutil) or
    ``"address space cap"`` (``resource.RLIMIT_AS``, enforced). psutil itself is a
    requirement (``require("psutil")``): missing, it fails the test under CI=true."""
    if what not in _facility_reasons:
        _facility_reasons[what] = _FACILITIES[what]()
    reason = _facility_reasons[what]
    if reason:
        pytest.skip(reason)


def rss_bytes():
    """The process's resident set size (``require_facility("memory")`` first)."""
    import psutil
    return psutil.Process().memory_info().rss


# =============================================================================
# The arena's bookkeeping and scripts in a fresh interpreter (lifetime tests)
# =============================================================================

# set by .ci/sanitize: RSS is then the sanitizer's quarantine and shadow memory
UNDER_SANITIZER = bool(os.environ.get("ARENAGRAD_SANITIZER"))

FATAL_MARKERS = ("Fatal Python error", "Segmentation fault", "Exception ignored",
                 "Traceback", "AddressSanitizer")


def live():
    """How many nodes the arena holds now."""
    from autograd._core import arena_stats
    return arena_stats()["live"]


@pytest.fixture
def baseline():
    """The arena's live count with no garbage around, before the test builds anything."""
    import gc
    gc.collect()
    return live()


@pytest.fixture
def no_gc():
    """Automatic cycle collection off, so that 'one gc.collect() frees it' is exact."""
    import gc
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_script(code, timeout=300):
    """Run `code` in a fresh ``python -X dev -X faulthandler``; return the CompletedProcess."""
    import subprocess
    import sys
    import textwrap
    return subprocess.run(
        [sys.executable, "-X", "dev", "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(proc, prints_ok=False):
    """The script exited 0 with no crash, no traceback, no ignored exception (and,
    with `prints_ok`, its last line is 'ok')."""
    msg = f"exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, msg
    for marker in FATAL_MARKERS:
        assert marker not in proc.stderr, msg
    if prints_ok:
        assert proc.stdout.strip().endswith("ok"), msg
