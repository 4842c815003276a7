"""autograd.math: data bit-identical to Python's math, derivatives against PyTorch
(float64) and central differences, eager == replay, errors as math's, and Value's
comparisons, formatting and conversions."""
import math
import os
import random
import struct

import numpy as np
import pytest

try:
    import torch
except ImportError:     # the tests that compare with torch are marked requires("torch"):
    torch = None        # they skip, saying why, or fail under ARENAGRAD_REQUIRE_TORCH=1;
try:                    # the rest (bit-identity with math, errors, comparisons) run
    import mpmath
except ImportError:
    mpmath = None


class _TorchFunction:
    """torch.<path>, looked up when called (the tables below name torch's functions
    whether or not torch is installed)."""
    def __init__(self, path):
        self.path = path

    def __getattr__(self, name):                    # TORCH.special.erf
        return _TorchFunction(f"{self.path}.{name}")

    def __call__(self, *args, **kwargs):
        f = torch
        for name in self.path.split("."):
            f = getattr(f, name)
        return f(*args, **kwargs)


class _Torch:
    def __getattr__(self, name):
        return _TorchFunction(name)


TORCH = _Torch()

import autograd.math as am
from autograd import Graph, Lanes, Value, grad, gradcheck, gradgradcheck, jvp

# name -> (domain of smooth points for derivative tests, torch function or None)
UNARY = {
    "sin": ((-3, 3), TORCH.sin), "cos": ((-3, 3), TORCH.cos), "tan": ((-1.4, 1.4), TORCH.tan),
    "asin": ((-0.95, 0.95), TORCH.asin), "acos": ((-0.95, 0.95), TORCH.acos),
    "atan": ((-3, 3), TORCH.atan), "sinh": ((-3, 3), TORCH.sinh), "cosh": ((-3, 3), TORCH.cosh),
    "tanh": ((-3, 3), TORCH.tanh), "asinh": ((-3, 3), TORCH.asinh),
    "acosh": ((1.05, 5), TORCH.acosh), "atanh": ((-0.95, 0.95), TORCH.atanh),
    "exp": ((-3, 3), TORCH.exp), "exp2": ((-3, 3), TORCH.exp2), "expm1": ((-3, 3), TORCH.expm1),
    "log": ((0.05, 5), TORCH.log), "log2": ((0.05, 5), TORCH.log2),
    "log10": ((0.05, 5), TORCH.log10), "log1p": ((-0.9, 5), TORCH.log1p),
    "sqrt": ((0.05, 5), TORCH.sqrt),
    "cbrt": ((0.05, 5), lambda t: t ** (1.0 / 3.0)),       # torch has no cbrt: x > 0 only
    "fabs": ((-3, 3), TORCH.abs), "erf": ((-3, 3), TORCH.special.erf),
    "erfc": ((-3, 3), TORCH.special.erfc),
    "gamma": ((0.2, 5), lambda t: TORCH.exp(TORCH.lgamma(t))),   # x > 0: gamma = exp(lgamma)
    "lgamma": ((0.2, 8), TORCH.lgamma),
    "floor": ((-3, 3), TORCH.floor), "ceil": ((-3, 3), TORCH.ceil),
    "trunc": ((-3, 3), TORCH.trunc),
    "degrees": ((-3, 3), TORCH.rad2deg), "radians": ((-3, 3), TORCH.deg2rad),
}
# name -> (domain of x, domain of y, torch function or None)
BINARY = {
    "atan2": ((-3, 3), (-3, 3), TORCH.atan2), "hypot": ((-3, 3), (-3, 3), TORCH.hypot),
    "fmod": ((-5, 5), (0.3, 2), TORCH.fmod), "remainder": ((-5, 5), (0.3, 2), None),
    "copysign": ((-3, 3), (-3, 3), TORCH.copysign), "pow": ((0.1, 3), (-2, 2), TORCH.pow),
    "log": ((0.1, 5), (1.5, 5), lambda x, b: TORCH.log(x) / TORCH.log(b)),
}

EDGES = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308,
         math.inf, -math.inf, math.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.5, -1.5, 3.0,
         1e-20, 1e-21, -1e-21, 709.78, 710.0, -745.2, 1e308, -1e308, 1.7976931348623157e308,
         171.6, 171.7, 200.0, 200.5, -200.5, -170.5, 140.5, -140.5, 5.5246800407767295,
         6.0, 23.0, 24.0, -3.0, 1 - 1e-16, 1 + 2e-16, math.pi, -math.pi, 1e16, -1e16, 0.1]


def random_floats(rng, n):
    xs = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            xs.append(rng.uniform(-10, 10))
        elif kind < 0.6:
            xs.append(rng.uniform(-1, 1))
        elif kind < 0.8:
            xs.append(rng.choice((-1, 1)) * 10 ** rng.uniform(-310, 308))
        elif kind < 0.9:
            xs.append(rng.uniform(-200, 200))
        else:
            xs.append(float(rng.randint(-30, 30)) + rng.choice((0.0, 0.5)))
    return xs


def outcome(f, *args):
    """What f(*args) gives: ('ok', bits) or ('raise', type, message); any nan is one nan."""
    try:
        r = f(*args)
    except (ValueError, OverflowError, ZeroDivisionError) as e:
        return ("raise", type(e), str(e))
    if isinstance(r, Value):
        r = r.data
    if isinstance(r, float) and math.isnan(r):
        return ("ok", "nan")
    return ("ok", struct.pack("<d", float(r)))


def value_fn(name):
    return getattr(am, name)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_data_bit_identical_to_math(name):
    rng = random.Random(sum(map(ord, name)))
    f = value_fn(name)
    ref = getattr(math, name)
    xs = EDGES + random_floats(rng, 3000)
    if name in ("floor", "ceil", "trunc"):
        # math gives an int (0, never -0) and raises for inf, nan; a Value's data is
        # that int's float, bit for bit, and the same errors
        for x in xs:
            expected = outcome(lambda y: float(ref(y)), x)
            assert outcome(lambda y: f(y).data, Value(x)) == expected, (name, x)
            assert outcome(f, x) == outcome(ref, x), (name, x)
        return
    checked = 0
    for x in xs:
        expected = outcome(ref, x)
        assert outcome(f, Value(x)) == expected, (name, x)
        assert outcome(f, x) == expected, (name, x)
        checked += expected[0] == "ok"
    assert checked > 500


@pytest.mark.parametrize("name", ["atan2", "hypot", "fmod", "remainder", "copysign", "pow", "log"])
def test_binary_data_bit_identical_to_math(name):
    rng = random.Random(sum(map(ord, name)))
    f = value_fn(name)
    ref = getattr(math, name)
    xs = EDGES + random_floats(rng, 1500)
    ys = EDGES + random_floats(rng, 1500)
    pairs = [(x, y) for x in EDGES for y in EDGES] + list(zip(xs, ys[::-1]))
    if name == "pow":   # integers and near-integers, where the signs matter
        pairs += [(rng.uniform(-5, 5), float(rng.randint(-6, 6))) for _ in range(500)]
    if name == "remainder":   # ties: x an odd multiple of y / 2
        pairs += [(rng.randint(-50, 50) * 0.5 * y, y) for y in (0.5, 1.0, 3.0, 0.1)
                  for _ in range(50)]
    checked = 0
    for x, y in pairs:
        expected = outcome(ref, x, y)
        assert outcome(f, Value(x), Value(y)) == expected, (name, x, y)
        assert outcome(f, Value(x), y) == expected, (name, x, y)
        assert outcome(f, x, Value(y)) == expected, (name, x, y)
        assert outcome(f, x, y) == expected, (name, x, y)
        checked += expected[0] == "ok"
    assert checked > 500


def test_numbers_only_return_what_math_returns():
    assert am.sin(0.5) == math.sin(0.5) and type(am.sin(1)) is float
    assert am.floor(2.5) == 2 and type(am.floor(2.5)) is int
    assert am.log(8, 2) == math.log(8, 2) and am.log(10 ** 400) == math.log(10 ** 400)
    assert am.sin(np.float32(0.5)) == math.sin(np.float32(0.5))
    assert am.hypot() == 0.0 and am.hypot(3, 4, 12) == 13.0
    assert am.prod([2, 3], start=4) == 24 and am.fsum([0.1] * 10) == 1.0
    assert am.dist((1, 2), (4, 6)) == 5.0
    assert am.pi == math.pi and am.e == math.e and am.tau == math.tau and am.inf == math.inf
    assert math.isnan(am.nan)
    with pytest.raises(TypeError):
        am.sin("a")
    with pytest.raises(TypeError):
        am.sin(Value(1.0), 2)   # type: ignore[call-arg]
    for f, args in [(am.log, (-1,)), (am.sqrt, (-1,)), (am.acos, (2,)), (am.pow, (0, -1)),
                    (am.gamma, (0,)), (am.fmod, (math.inf, 1)), (am.remainder, (1, 0))]:
        with pytest.raises(ValueError, match="^math domain error$"):
            f(*args)
        with pytest.raises(ValueError, match="^math domain error$"):
            f(Value(args[0]), *args[1:])
    for f, x in [(am.exp, 1000), (am.cosh, 1000), (am.sinh, 1000), (am.exp2, 2000),
                 (am.expm1, 1000), (am.gamma, 200), (am.lgamma, 1e308)]:
        with pytest.raises(OverflowError, match="^math range error$"):
            f(x)
        with pytest.raises(OverflowError, match="^math range error$"):
            f(Value(x))
    with pytest.raises(OverflowError, match="^math range error$"):
        am.pow(Value(10.0), 400)
    with pytest.raises(ValueError, match="^math domain error$"):
        am.pow(Value(-8.0), 1 / 3)
    with pytest.raises(ZeroDivisionError):
        am.log(Value(5.0), 1)


def smooth_points(rng, domain, n=25):
    lo, hi = domain
    return [rng.uniform(lo, hi) for _ in range(n)]


def torch_derivatives(tf, xs):
    """First and second derivatives of torch function tf at each x, float64."""
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = tf(t).sum()
    (d1,) = torch.autograd.grad(y, t, create_graph=True)
    if d1.requires_grad:
        (d2,) = torch.autograd.grad(d1.sum(), t, allow_unused=True)
    else:
        d2 = None
    d2 = [0.0] * len(xs) if d2 is None else d2.detach().clone().tolist()
    return d1.detach().clone().tolist(), d2


@pytest.mark.requires("torch")
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_derivatives_against_torch_and_differences(name):
    rng = random.Random(7 + len(name))
    domain, tf = UNARY[name]
    f = value_fn(name)
    xs = smooth_points(rng, domain)
    if name in ("floor", "ceil", "trunc"):
        xs = [x for x in xs if abs(x - round(x)) > 1e-3]
    d1_t, d2_t = torch_derivatives(tf, xs)
    for x, t1, t2 in zip(xs, d1_t, d2_t):
        v = Value(x)
        y = f(v)
        (g1,) = grad(y, v, create_graph=True)
        (g2,) = grad(g1, v, allow_unused=True)
        g2 = 0.0 if g2 is None else g2.data
        assert g1.data == pytest.approx(t1, rel=1e-12, abs=1e-12), (name, x)
        assert g2 == pytest.approx(t2, rel=1e-9, abs=1e-9), (name, x)
        # backward() gives grad()'s first derivative bit for bit
        v.grad = 0.0
        y.backward()
        assert v.grad == g1.data
        # central differences, on the data of math's own function
        h = 1e-6 * max(1.0, abs(x))
        fd = (getattr(am, name)(x + h) - getattr(am, name)(x - h)) / (2 * h)
        assert g1.data == pytest.approx(fd, rel=1e-6, abs=1e-6)


@pytest.mark.requires("torch")
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_derivatives_against_torch_and_differences(name):
    rng = random.Random(11 + len(name))
    dx, dy, tf = BINARY[name]
    f = value_fn(name)
    xs, ys = smooth_points(rng, dx), smooth_points(rng, dy)
    if name in ("fmod", "remainder"):     # away from the jumps
        pairs = [(x, y) for x, y in zip(xs, ys)
                 if min(abs(x / y - round(x / y) - 0.5), abs(x / y - round(x / y) + 0.5),
                        abs(x / y - round(x / y))) > 1e-3]
    else:
        pairs = list(zip(xs, ys))
    for x, y in pairs:
        a, b = Value(x), Value(y)
        out = f(a, b)
        ga, gb = grad(out, [a, b], create_graph=True)
        hess = [[h.data if h is not None else 0.0 for h in grad(gi, [a, b], allow_unused=True)]
                for gi in (ga, gb)]
        if tf is not None:
            ta = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            tb = torch.tensor(y, dtype=torch.float64, requires_grad=True)
            tga, tgb = torch.autograd.grad(tf(ta, tb), [ta, tb], create_graph=True,
                                           allow_unused=True)
            tga = torch.zeros((), dtype=torch.float64) if tga is None else tga
            tgb = torch.zeros((), dtype=torch.float64) if tgb is None else tgb
            assert ga.data == pytest.approx(tga.item(), rel=1e-12, abs=1e-12), (name, x, y)
            assert gb.data == pytest.approx(tgb.item(), rel=1e-12, abs=1e-12), (name, x, y)
            for gi, row in zip((tga, tgb), hess):
                th = (torch.autograd.grad(gi, [ta, tb], allow_unused=True, retain_graph=True)
                      if gi.requires_grad else (None, None))
                th = [0.0 if t is None else t.item() for t in th]
                assert row == pytest.approx(th, rel=1e-9, abs=1e-9), (name, x, y)
        h = 1e-6
        fda = (f(x + h, y) - f(x - h, y)) / (2 * h)
        fdb = (f(x, y + h) - f(x, y - h)) / (2 * h)
        assert ga.data == pytest.approx(fda, rel=1e-5, abs=1e-6), (name, x, y)
        if name != "copysign":   # d/dy copysign is 0 (PyTorch) where y is not 0
            assert gb.data == pytest.approx(fdb, rel=1e-5, abs=1e-6), (name, x, y)
        else:
            assert gb.data == 0.0


def program(x, y):
    """Every function in one program (x in (0.1, 0.9), y in (1.1, 2))."""
    terms = [am.sin(x), am.cos(y), am.tan(x), am.asin(x), am.acos(x), am.atan(y),
             am.sinh(x), am.cosh(y), am.tanh(x), am.asinh(y), am.acosh(y), am.atanh(x),
             am.exp(x), am.exp2(y), am.expm1(x), am.log(y), am.log(y, 3.0), am.log2(y),
             am.log10(y), am.log1p(x), am.sqrt(y), am.cbrt(x), am.fabs(x - y), am.erf(x),
             am.erfc(y), am.gamma(y), am.lgamma(x), am.floor(y) * x, am.ceil(x) * y,
             am.trunc(y) * x, am.degrees(x), am.radians(y), am.atan2(x, y), am.hypot(x, y),
             am.hypot(x, y, x), am.fmod(y, x), am.remainder(y, x), am.copysign(x, -y),
             am.pow(y, x), am.pow(x, 2), am.dist((x, y), (y, 0.5)), am.fsum([x, y, 1.0]),
             am.prod([x, y, 2.0]), am.sumprod([x, y], [y, x]), abs(x - y)]
    return am.fsum(terms)


def test_eager_equals_replay_bit_for_bit():
    rng = random.Random(3)
    x, y = Value(0.3), Value(1.4)
    out = program(x, y)
    graph = Graph(out)
    for _ in range(20):
        xv, yv = rng.uniform(0.1, 0.9), rng.uniform(1.1, 2.0)
        x.data, y.data = xv, yv
        graph.forward()
        x.grad = y.grad = 0.0
        graph.backward()
        ex, ey = Value(xv), Value(yv)
        eager = program(ex, ey)
        eager.backward()
        assert out.data == eager.data
        assert (x.grad, y.grad) == (ex.grad, ey.grad)
        # and the derivative graphs replay too
        gx, gy = grad(eager, [ex, ey], create_graph=True)
        assert gx.data == ex.grad and gy.data == ey.grad


def test_gradcheck_and_gradgradcheck_on_every_function():
    x, y = Value(0.35), Value(1.3)
    assert gradcheck(program, [x, y])
    assert gradgradcheck(program, [x, y])


@pytest.mark.requires("torch", "mpmath")
def test_hessian_of_the_program_against_torch():
    import autograd
    xv, yv = 0.35, 1.3
    h = autograd.hessian(lambda a, b: am.sin(a) * am.erf(b) + am.lgamma(a * b) + am.atan2(a, b),
                         [Value(xv), Value(yv)])
    t = torch.tensor([xv, yv], dtype=torch.float64)

    def tf(v):
        a, b = v[0], v[1]
        return torch.sin(a) * torch.special.erf(b) + torch.lgamma(a * b) + torch.atan2(a, b)
    th = torch.autograd.functional.hessian(tf, t)
    # torch's trigamma is off by ~3e-10 at 0.455 (ours by ~1e-15, see
    # test_polygamma_against_mpmath): mpmath's exact Hessian decides, torch loosely
    assert np.allclose(np.array(h, dtype=float), th.numpy(), rtol=1e-8, atol=1e-12)

    def mf(a, b):
        return mpmath.sin(a) * mpmath.erf(b) + mpmath.loggamma(a * b) + mpmath.atan2(a, b)
    with mpmath.workdps(40):
        exact = [[mpmath.diff(mf, (xv, yv), (2, 0)), mpmath.diff(mf, (xv, yv), (1, 1))],
                 [mpmath.diff(mf, (xv, yv), (1, 1)), mpmath.diff(mf, (xv, yv), (0, 2))]]
    assert np.allclose(np.array(h, dtype=float), np.array(exact, dtype=float), rtol=1e-13)


@pytest.mark.requires("mpmath")
def test_polygamma_against_mpmath():
    # lgamma's derivatives of order 1..4 (digamma, trigamma, ...): the chain rule's helper op
    rng = random.Random(2)
    for x in [rng.uniform(-6, 12) for _ in range(200)] + [1e-3, 0.455, 25.0, 1e5, -0.5]:
        v = Value(x)
        y = am.lgamma(v)
        for n in range(4):
            (y,) = grad(y, v, create_graph=True)
            exact = float(mpmath.polygamma(n, x))
            assert y.data == pytest.approx(exact, rel=2e-13, abs=1e-300), (n, x)


# -- non-differentiable points: PyTorch's values --------------------------------

NON_DIFFERENTIABLE = [
    # (our function, torch function, inputs)
    ("fabs", TORCH.abs, (0.0,)), ("fabs", TORCH.abs, (-0.0,)),
    ("sqrt", TORCH.sqrt, (0.0,)), ("cbrt", None, (0.0,)),
    ("floor", TORCH.floor, (2.0,)), ("ceil", TORCH.ceil, (-1.0,)), ("trunc", TORCH.trunc, (3.0,)),
    ("atan2", TORCH.atan2, (0.0, 0.0)), ("atan2", TORCH.atan2, (0.0, -1.0)),
    ("hypot", TORCH.hypot, (0.0, 0.0)),
    ("fmod", TORCH.fmod, (3.0, 1.5)), ("fmod", TORCH.fmod, (-3.0, 1.5)),
    ("copysign", TORCH.copysign, (0.0, -1.0)), ("copysign", TORCH.copysign, (2.0, 0.0)),
    ("copysign", TORCH.copysign, (2.0, -0.0)),
    ("acosh", TORCH.acosh, (1.0,)), ("asin", TORCH.asin, (1.0,)), ("acos", TORCH.acos, (-1.0,)),
    ("erf", TORCH.special.erf, (math.inf,)),
    ("pow", TORCH.pow, (0.0, 2.0)), ("pow", TORCH.pow, (0.0, 0.5)), ("pow", TORCH.pow, (0.0, 0.0)),
    ("pow", TORCH.pow, (-2.0, 2.0)),
]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.requires("torch")
@pytest.mark.parametrize("name,tf,args", NON_DIFFERENTIABLE)
def test_non_differentiable_points_as_pytorch(name, tf, args):
    vs = [Value(a) for a in args]
    out = value_fn(name)(*vs)
    out.backward()
    if tf is None:      # cbrt: 1 / (3 cbrt(0)**2) = inf, as sqrt's
        assert vs[0].grad == math.inf
        return
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    tout = tf(*ts)
    tout.backward()
    for v, t in zip(vs, ts):
        tg = 0.0 if t.grad is None else t.grad.item()
        assert same(v.grad, tg), (name, args, v.grad, tg)


def test_remainder_derivative_is_minus_the_quotient():
    # PyTorch has no IEEE remainder; d/dy (x - n*y) = -n, n the nearest integer (ties even)
    for x, y, n in [(5.0, 2.0, 2), (7.0, 2.0, 4), (2.4, 1.0, 2), (-2.6, 1.0, -3)]:
        a, b = Value(x), Value(y)
        am.remainder(a, b).backward()
        assert (a.grad, b.grad) == (1.0, -n)


# -- n-ary functions: math's bits, eager, replayed and in lanes ------------------

def nary_floats(rng, n):
    """n floats of wildly mixed magnitudes and signs, edges among them."""
    pick = (lambda: rng.uniform(-1, 1), lambda: rng.gauss(0, 1) * 10 ** rng.randint(-300, 300),
            lambda: rng.choice(EDGES), lambda: rng.uniform(-1e308, 1e308),
            lambda: float(rng.randint(-5, 5)), lambda: rng.choice((1e16, -1e16, 1.0, 1e-16)))
    return [rng.choice(pick)() for _ in range(n)]


@pytest.mark.parametrize("name", ["hypot", "fsum", "dist"])
def test_nary_functions_bit_identical_to_math(name):
    """hypot, fsum and dist of 2 to 9 operands: math's bits (or math's error) for
    Values, for Values mixed with numbers, and after a Graph replay at new floats."""
    rng = random.Random(sum(map(ord, name)))
    ref = {"hypot": lambda xs: math.hypot(*xs), "fsum": math.fsum,
           "dist": lambda xs: math.dist(xs[0::2], xs[1::2])}[name]
    ours = {"hypot": lambda vs: am.hypot(*vs), "fsum": am.fsum,
            "dist": lambda vs: am.dist(vs[0::2], vs[1::2])}[name]
    checked = raised = 0
    for _ in range(3000):
        n = rng.randint(2, 9) * (2 if name == "dist" else 1)
        xs = nary_floats(rng, n)
        expected = outcome(ref, xs)
        mixed = [Value(x) if rng.random() < 0.7 else x for x in xs]
        mixed[0] = Value(xs[0])
        assert outcome(ours, mixed) == expected, (name, xs)
        checked += expected[0] == "ok"
        raised += expected[0] == "raise"
        if expected[0] == "ok":         # replay the graph at other floats
            leaves = [v for v in mixed if isinstance(v, Value)]
            root = ours(mixed)
            graph = Graph(root)
            new = nary_floats(rng, len(leaves))
            for v, x in zip(leaves, new):
                v.data = x
            floats = [v.data if isinstance(v, Value) else v for v in mixed]
            again = outcome(ref, floats)
            assert outcome(lambda: (graph.forward(), root)[1]) == again, (name, floats)
    assert checked > 2000
    if name == "fsum":
        assert raised > 20              # intermediate overflows, -inf + inf


def test_nary_errors_are_maths():
    with pytest.raises(OverflowError, match="intermediate overflow in fsum"):
        am.fsum([Value(1e308), 1e308, -1.0])
    with pytest.raises(ValueError, match=r"-inf \+ inf in fsum"):
        am.fsum([Value(math.inf), 1.0, -math.inf])
    with pytest.raises(TypeError, match="must be real number, not str"):
        am.fsum([Value(1.0), 2.0, "3"])
    with pytest.raises(TypeError, match="must be real number, not str"):
        am.hypot(Value(1.0), 2.0, "3")
    assert math.isnan(am.fsum([Value(math.inf), 1.0, math.nan]).data)
    assert am.hypot(Value(math.nan), math.inf, 1.0).data == math.inf
    # the replayed graph raises as math does, at new floats
    x = Value(1.0)
    total = am.fsum([x, 1e308, 1e308 * 0.5])
    graph = Graph(total)
    x.data = 1e308
    with pytest.raises(OverflowError, match="intermediate overflow in fsum"):
        graph.forward()


def test_nary_graph_shape_and_derivatives():
    """A spine of binary steps under the n-ary node; derivatives x_i / hypot and 1,
    also where the first coordinates are 0 (PyTorch's vector_norm: 0 there)."""
    xs = [Value(v) for v in (0.0, 0.0, 3.0, 4.0)]
    h = am.hypot(*xs)
    assert h._op == "hypot" and h.data == 5.0 and [p._op for p in h._prev] == ["sumsq"]
    h.backward()
    assert [v.grad for v in xs] == pytest.approx([0.0, 0.0, 0.6, 0.8], rel=1e-15)
    s = am.fsum(xs + [2.5])
    assert s._op == "fsum" and [p._op for p in s._prev] == ["+"]
    for v in xs:
        v.grad = 0.0
    s.backward()
    assert [v.grad for v in xs] == [1.0, 1.0, 1.0, 1.0]
    assert "spine" in repr(s._backward)


def test_nary_hypot_derivatives_at_the_ends_of_the_range():
    """x / hypot with no 2 * hypot formed: finite for norms up to the largest float.
    (Below about 5.6e-309, a subnormal norm, 1 / hypot overflows: inf, documented.)"""
    for big in (1e308, 1.7e308):
        xs = [Value(big), Value(1.0), Value(-2.0)]
        am.hypot(*xs).backward()
        assert xs[0].grad == pytest.approx(1.0, rel=1e-12)
        assert xs[2].grad == pytest.approx(-2.0 / big, rel=1e-12)
    xs = [Value(3e-300), Value(4e-300), Value(0.0)]
    am.hypot(*xs).backward()
    assert [v.grad for v in xs] == pytest.approx([0.6, 0.8, 0.0], rel=1e-12)


def test_fmod_derivative_graph_is_backward_bit_for_bit():
    """d fmod / dy = -trunc(x / y): C's trunc, -0.0 kept, in backward() and in the
    graph grad(create_graph=True) builds (whose trunc node holds math's int, never -0.0)."""
    for xv, yv in [(-0.5, 1.0), (0.5, -1.0), (-0.25, 3.0), (7.5, 2.0), (-7.5, 2.0)]:
        x, y = Value(xv), Value(yv)
        am.fmod(x, y).backward()
        x2, y2 = Value(xv), Value(yv)
        (g,) = grad(am.fmod(x2, y2), [y2], create_graph=True)
        assert struct.pack("<d", g.data) == struct.pack("<d", y.grad), (xv, yv)


@pytest.mark.requires("torch")
def test_nary_derivatives_against_torch():
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(3, 7)
        xs = [rng.uniform(-3, 3) if rng.random() < 0.8 else 0.0 for _ in range(n)]
        if math.hypot(*xs) < 0.1:
            continue
        for name in ("hypot", "fsum"):
            vs = [Value(x) for x in xs]
            y = am.hypot(*vs) if name == "hypot" else am.fsum(vs)
            y2 = y * y * y                          # second derivatives not all 0
            grads = grad(y2, vs, create_graph=True)
            t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
            ty = torch.linalg.vector_norm(t) if name == "hypot" else t.sum()
            (tg,) = torch.autograd.grad(ty ** 3, t, create_graph=True)
            for k in range(n):
                assert grads[k].data == pytest.approx(tg[k].item(), rel=1e-12, abs=1e-12)
                second = grad(grads[k], vs, allow_unused=True)
                (th,) = torch.autograd.grad(tg[k], t, retain_graph=True)
                for j in range(n):
                    ours = 0.0 if second[j] is None else second[j].data
                    assert ours == pytest.approx(th[j].item(), rel=1e-10, abs=1e-10), \
                        (name, xs, k, j)


def test_nary_lanes_and_forward_mode_equal_replay():
    x, y, z = Value(0.5), Value(-2.0), Value(3.0)
    root = am.hypot(x, y * z, 1.5, z) + am.fsum([x * 0.1, y, 2.0 * x, z]) * x
    lanes = Lanes(root, [x, y], threads=2)
    rng = np.random.default_rng(3)
    cols = [rng.uniform(-3, 3, 97), rng.uniform(-3, 3, 97)]
    cols[0][:5] = 0.0
    out = lanes.forward(cols, backward=True)
    graph = Graph(root)
    for k in range(97):
        x.data, y.data = cols[0][k], cols[1][k]
        graph.forward()
        x.grad = y.grad = 0.0
        graph.backward()
        assert struct.pack("<d", out[k]) == struct.pack("<d", root.data)
        assert lanes.grad(x)[k] == x.grad and lanes.grad(y)[k] == y.grad
    (tangent,) = jvp([root], [x, y], [1.0, 0.0])
    (dx,) = grad(root, [x])
    assert tangent == pytest.approx(dx.data, rel=1e-14)
    with pytest.raises(OverflowError, match=r"intermediate overflow in fsum \(in lane 1 of 2\)"):
        Lanes(am.fsum([x, y, 1e308]), [x, y]).forward([[1.0, 1e308], [1.0, 1e308]])


# -- Value: methods, comparisons, formatting, conversions -------------------------

def test_value_methods_are_the_functions():
    x = Value(0.7)
    for name in ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                 "atanh", "exp2", "expm1", "log2", "log10", "log1p", "sqrt", "cbrt", "erf",
                 "erfc", "lgamma", "floor", "ceil", "trunc"]:
        assert getattr(x, name)().data == getattr(am, name)(x).data, name
    assert x.abs().data == abs(Value(-0.7)).data == 0.7
    assert Value(1.5).acosh().data == math.acosh(1.5)
    assert x.atan2(2.0).data == math.atan2(0.7, 2.0) and x.hypot(2.0).data == math.hypot(0.7, 2)
    assert x.fmod(0.3).data == math.fmod(0.7, 0.3) and x.copysign(-1).data == -0.7
    assert [Value(v).sign().data for v in (2.0, -3.0, 0.0)] == [1.0, -1.0, 0.0]
    f = math.floor(Value(2.5))
    assert isinstance(f, Value) and f.data == 2.0
    assert math.ceil(Value(2.5)).data == 3.0 and math.trunc(Value(-2.5)).data == -2.0


def test_comparisons_compare_data_and_equality_stays_identity():
    a, b = Value(1.0), Value(1.0)
    assert not a < b and a <= b and not a > b and a >= b
    assert a < 2 and 2 > a and a <= 1.0 and a >= np.float64(0.5) and a > True - 1
    assert a != b and not a == b and a == a and hash(a) == hash(a) == object.__hash__(a)
    assert len({a, b}) == 2 and {a: 1, b: 2}[a] == 1
    assert (Value(math.nan) < 1) is False and (Value(math.nan) >= 1) is False
    with pytest.raises(TypeError):
        _ = a < "x"
    with pytest.raises(TypeError):
        _ = a < None

    class Sub(Value):
        pass
    s = Sub(2.0)
    assert s > a and hash(s) == object.__hash__(s) and s != Sub(2.0)


@pytest.mark.requires("torch")
def test_max_min_sorted_if_pick_a_value_and_pytorch_gradients():
    rng = random.Random(9)
    for _ in range(200):
        xs = [rng.uniform(-2, 2) for _ in range(5)]
        vs = [Value(x) for x in xs]
        ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]

        def prog(v, lib):
            top = max(v[0], v[1])
            low = min(v[2], 0.0)
            order = sorted(v)
            acc = top * low + order[0] * order[-1] + max(0, v[3])
            if v[4] > 0:
                acc = acc * v[4]
            else:
                acc = acc - v[4] * v[4]
            return acc
        out = prog(vs, am)
        out.backward()
        tout = prog(ts, torch)
        tout.backward()
        assert out.data == pytest.approx(tout.item(), rel=1e-14)
        for v, t in zip(vs, ts):
            tg = 0.0 if t.grad is None else t.grad.item()
            assert v.grad == pytest.approx(tg, rel=1e-14, abs=1e-300)


def test_format_formats_data():
    v = Value(3.14159)
    assert format(v, ".2f") == "3.14" and f"{v:8.3f}" == "   3.142" and f"{v:e}" == "3.141590e+00"
    assert f"{v}" == str(v) == repr(v)


def test_conversions_raise_typeerror_naming_data_and_autograd_math():
    v = Value(0.25)
    for conv in (float, int, round, math.sin, math.exp, math.isfinite, complex):
        with pytest.raises(TypeError) as info:
            conv(v)
        if conv is not complex:
            assert "v.data" in str(info.value) and "autograd.math.sin" in str(info.value)
            assert "0.25" in str(info.value)
    with pytest.raises(TypeError):
        [1, 2][v]
