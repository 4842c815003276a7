"""Python's ``math`` module for Values: the same functions, differentiable.

``autograd.math`` mirrors :mod:`math` name for name and signature for every
function that is real-valued and differentiable almost everywhere. Each takes
Values and plain numbers (int, float, numpy scalars) in any mix:

- with no Value among its arguments it returns exactly what ``math`` returns
  (it calls ``math``), so code written once against ``autograd.math`` runs on
  floats too;
- with a Value it returns a Value whose ``data`` is bit-identical to what
  ``math`` returns for the same floats (libm where CPython calls libm;
  CPython's own ``gamma``, ``lgamma``, ``atan2``, ``remainder`` and two-argument
  ``hypot`` ported to C), raising ``math``'s errors at the call
  (``ValueError('math domain error')``, ``OverflowError('math range error')``);
  inside ``backward()``, replay and derivative graphs the IEEE values are kept.

Each function is one row of the core's op table (forward formula, chain rule,
differentiable chain rule), so ``backward()``, ``Graph`` replay,
``grad(create_graph=True)``, ``hessian`` and ``gradgradcheck`` all work for it.
The derivative formulas are in each function's docstring; at points where a
function is not differentiable, the value PyTorch (float64) gives (README,
"Differentiate a scalar program").

Functions of several numbers (``hypot`` with 3 or more coordinates, ``dist`` in
3 or more dimensions, ``fsum``, ``sumprod``) are built from two-operand nodes:
``hypot(a, b, c) = hypot(hypot(a, b), c)``, ``fsum`` a left fold of ``+``,
``sumprod`` of ``*`` and ``+``. Their data may differ from ``math``'s in the
last bits (``math`` rounds once, exactly or nearly): for n terms, hypot within
about n ulp of ``math.hypot``, ``fsum`` and ``sumprod`` within
``(n - 1) * 2**-53 * sum(|terms|)`` of the exact sum (the usual bound of
left-to-right summation; tests/test_math.py checks both bounds). ``prod`` is
``math.prod``'s own left fold of ``*``: bit-identical.

``floor``, ``ceil`` and ``trunc`` of a Value return a Value (derivative 0, as
``torch.floor``), not an int; on a number they return ``math``'s int.

Not here: functions with integer or boolean results (``factorial``, ``comb``,
``perm``, ``gcd``, ``lcm``, ``isqrt``, ``isclose``, ``isfinite``, ``isinf``,
``isnan``), which have no derivative, and those returning pairs or floats'
representations (``frexp``, ``modf``, ``ldexp``, ``nextafter``, ``ulp``): use
``math`` on ``v.data``.

Examples
--------
>>> import autograd.math as am
>>> from autograd import Value
>>> x = Value(0.5)
>>> y = am.sin(x) * am.exp(x)
>>> y.backward()
>>> round(x.grad, 12)
2.237328119798
>>> am.sin(0.5) == __import__('math').sin(0.5)
True
"""
from __future__ import annotations

import functools as _functools
import math as _math
import operator as _operator
from typing import Any, Iterable, Union, overload

from autograd._core import OP_CODES as _OPS
from autograd._core import Value
from autograd._core import apply_math as _apply
from autograd._core import apply_nary as _apply_nary

_Real = Union[float, int]   # and numpy's scalars at run time

pi = _math.pi
e = _math.e
tau = _math.tau
inf = _math.inf
nan = _math.nan

__all__ = ["pi", "e", "tau", "inf", "nan",
           "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh",
           "asinh", "acosh", "atanh", "exp", "exp2", "expm1", "log", "log2", "log10",
           "log1p", "sqrt", "cbrt", "pow", "hypot", "dist", "fabs", "fmod", "remainder",
           "copysign", "erf", "erfc", "gamma", "lgamma", "floor", "ceil", "trunc",
           "degrees", "radians", "fsum", "prod", "sumprod"]

_RAD_TO_DEG = 180.0 / _math.pi    # CPython's radToDeg: 180.0 / Py_MATH_PI
_DEG_TO_RAD = _math.pi / 180.0    # degToRad
_FLOOR = _OPS['floor']
_CEIL = _OPS['ceil']
_TRUNC = _OPS['trunc']
_LOG = _OPS['log']
_NO_BASE: Any = object()   # log(x): math.log's base left out
_HYPOT = _OPS['hypot']
_SIN = _OPS['sin']
_COS = _OPS['cos']
_TAN = _OPS['tan']
_ASIN = _OPS['asin']
_ACOS = _OPS['acos']
_ATAN = _OPS['atan']
_SINH = _OPS['sinh']
_COSH = _OPS['cosh']
_ASINH = _OPS['asinh']
_ACOSH = _OPS['acosh']
_ATANH = _OPS['atanh']
_EXP = _OPS['exp']
_EXP2 = _OPS['exp2']
_EXPM1 = _OPS['expm1']
_LOG2 = _OPS['log2']
_LOG10 = _OPS['log10']
_LOG1P = _OPS['log1p']
_SQRT = _OPS['sqrt']
_CBRT = _OPS['cbrt']
_FABS = _OPS['fabs']
_ERF = _OPS['erf']
_ERFC = _OPS['erfc']
_GAMMA = _OPS['gamma']
_LGAMMA = _OPS['lgamma']
_ATAN2 = _OPS['atan2']
_COPYSIGN = _OPS['copysign']
_FMOD = _OPS['fmod']
_REMAINDER = _OPS['remainder']
_TANH = _OPS['tanh']
_POW = _OPS['**']


@overload
def sin(x: Value, /) -> Value: ...
@overload
def sin(x: _Real, /) -> float: ...
def sin(x: Value | _Real, /) -> Value | float:
    """math.sin: the sine of x (radians). Derivative: cos(x)."""
    if isinstance(x, Value):
        return _apply(_SIN, x)
    return _math.sin(x)

@overload
def cos(x: Value, /) -> Value: ...
@overload
def cos(x: _Real, /) -> float: ...
def cos(x: Value | _Real, /) -> Value | float:
    """math.cos: the cosine of x (radians). Derivative: -sin(x)."""
    if isinstance(x, Value):
        return _apply(_COS, x)
    return _math.cos(x)

@overload
def tan(x: Value, /) -> Value: ...
@overload
def tan(x: _Real, /) -> float: ...
def tan(x: Value | _Real, /) -> Value | float:
    """math.tan: the tangent of x (radians). Derivative: 1 + tan(x)**2."""
    if isinstance(x, Value):
        return _apply(_TAN, x)
    return _math.tan(x)

@overload
def asin(x: Value, /) -> Value: ...
@overload
def asin(x: _Real, /) -> float: ...
def asin(x: Value | _Real, /) -> Value | float:
    """math.asin: the arc sine of x. Derivative: 1 / sqrt(1 - x*x)."""
    if isinstance(x, Value):
        return _apply(_ASIN, x)
    return _math.asin(x)

@overload
def acos(x: Value, /) -> Value: ...
@overload
def acos(x: _Real, /) -> float: ...
def acos(x: Value | _Real, /) -> Value | float:
    """math.acos: the arc cosine of x. Derivative: -1 / sqrt(1 - x*x)."""
    if isinstance(x, Value):
        return _apply(_ACOS, x)
    return _math.acos(x)

@overload
def atan(x: Value, /) -> Value: ...
@overload
def atan(x: _Real, /) -> float: ...
def atan(x: Value | _Real, /) -> Value | float:
    """math.atan: the arc tangent of x. Derivative: 1 / (1 + x*x)."""
    if isinstance(x, Value):
        return _apply(_ATAN, x)
    return _math.atan(x)

@overload
def sinh(x: Value, /) -> Value: ...
@overload
def sinh(x: _Real, /) -> float: ...
def sinh(x: Value | _Real, /) -> Value | float:
    """math.sinh: the hyperbolic sine of x. Derivative: cosh(x)."""
    if isinstance(x, Value):
        return _apply(_SINH, x)
    return _math.sinh(x)

@overload
def cosh(x: Value, /) -> Value: ...
@overload
def cosh(x: _Real, /) -> float: ...
def cosh(x: Value | _Real, /) -> Value | float:
    """math.cosh: the hyperbolic cosine of x. Derivative: sinh(x)."""
    if isinstance(x, Value):
        return _apply(_COSH, x)
    return _math.cosh(x)

@overload
def tanh(x: Value, /) -> Value: ...
@overload
def tanh(x: _Real, /) -> float: ...
def tanh(x: Value | _Real, /) -> Value | float:
    """math.tanh: the hyperbolic tangent of x. Derivative: 1 - tanh(x)**2."""
    if isinstance(x, Value):
        return _apply(_TANH, x)
    return _math.tanh(x)

@overload
def asinh(x: Value, /) -> Value: ...
@overload
def asinh(x: _Real, /) -> float: ...
def asinh(x: Value | _Real, /) -> Value | float:
    """math.asinh: the inverse hyperbolic sine of x. Derivative: 1 / sqrt(x*x + 1)."""
    if isinstance(x, Value):
        return _apply(_ASINH, x)
    return _math.asinh(x)

@overload
def acosh(x: Value, /) -> Value: ...
@overload
def acosh(x: _Real, /) -> float: ...
def acosh(x: Value | _Real, /) -> Value | float:
    """math.acosh: the inverse hyperbolic cosine of x. Derivative: 1 / sqrt(x*x - 1)."""
    if isinstance(x, Value):
        return _apply(_ACOSH, x)
    return _math.acosh(x)

@overload
def atanh(x: Value, /) -> Value: ...
@overload
def atanh(x: _Real, /) -> float: ...
def atanh(x: Value | _Real, /) -> Value | float:
    """math.atanh: the inverse hyperbolic tangent of x. Derivative: 1 / (1 - x*x)."""
    if isinstance(x, Value):
        return _apply(_ATANH, x)
    return _math.atanh(x)

@overload
def exp(x: Value, /) -> Value: ...
@overload
def exp(x: _Real, /) -> float: ...
def exp(x: Value | _Real, /) -> Value | float:
    """math.exp: e raised to the power x. Derivative: exp(x)."""
    if isinstance(x, Value):
        return _apply(_EXP, x)
    return _math.exp(x)

@overload
def exp2(x: Value, /) -> Value: ...
@overload
def exp2(x: _Real, /) -> float: ...
def exp2(x: Value | _Real, /) -> Value | float:
    """math.exp2: 2 raised to the power x. Derivative: exp2(x) * log(2)."""
    if isinstance(x, Value):
        return _apply(_EXP2, x)
    return _math.exp2(x)

@overload
def expm1(x: Value, /) -> Value: ...
@overload
def expm1(x: _Real, /) -> float: ...
def expm1(x: Value | _Real, /) -> Value | float:
    """math.expm1: exp(x) - 1, accurate near 0. Derivative: expm1(x) + 1."""
    if isinstance(x, Value):
        return _apply(_EXPM1, x)
    return _math.expm1(x)

@overload
def log2(x: Value, /) -> Value: ...
@overload
def log2(x: _Real, /) -> float: ...
def log2(x: Value | _Real, /) -> Value | float:
    """math.log2: the base-2 logarithm of x. Derivative: 1 / (x * log(2))."""
    if isinstance(x, Value):
        return _apply(_LOG2, x)
    return _math.log2(x)

@overload
def log10(x: Value, /) -> Value: ...
@overload
def log10(x: _Real, /) -> float: ...
def log10(x: Value | _Real, /) -> Value | float:
    """math.log10: the base-10 logarithm of x. Derivative: 1 / (x * log(10))."""
    if isinstance(x, Value):
        return _apply(_LOG10, x)
    return _math.log10(x)

@overload
def log1p(x: Value, /) -> Value: ...
@overload
def log1p(x: _Real, /) -> float: ...
def log1p(x: Value | _Real, /) -> Value | float:
    """math.log1p: log(1 + x), accurate near 0. Derivative: 1 / (x + 1)."""
    if isinstance(x, Value):
        return _apply(_LOG1P, x)
    return _math.log1p(x)

@overload
def sqrt(x: Value, /) -> Value: ...
@overload
def sqrt(x: _Real, /) -> float: ...
def sqrt(x: Value | _Real, /) -> Value | float:
    """math.sqrt: the square root of x. Derivative: 1 / (2 * sqrt(x))."""
    if isinstance(x, Value):
        return _apply(_SQRT, x)
    return _math.sqrt(x)

@overload
def cbrt(x: Value, /) -> Value: ...
@overload
def cbrt(x: _Real, /) -> float: ...
def cbrt(x: Value | _Real, /) -> Value | float:
    """math.cbrt: the cube root of x. Derivative: 1 / (3 * cbrt(x)**2)."""
    if isinstance(x, Value):
        return _apply(_CBRT, x)
    return _math.cbrt(x)

@overload
def fabs(x: Value, /) -> Value: ...
@overload
def fabs(x: _Real, /) -> float: ...
def fabs(x: Value | _Real, /) -> Value | float:
    """math.fabs: the absolute value of x, a float. Derivative: sign(x) (0 at 0)."""
    if isinstance(x, Value):
        return _apply(_FABS, x)
    return _math.fabs(x)

@overload
def erf(x: Value, /) -> Value: ...
@overload
def erf(x: _Real, /) -> float: ...
def erf(x: Value | _Real, /) -> Value | float:
    """math.erf: the error function at x. Derivative: 2/sqrt(pi) * exp(-x*x)."""
    if isinstance(x, Value):
        return _apply(_ERF, x)
    return _math.erf(x)

@overload
def erfc(x: Value, /) -> Value: ...
@overload
def erfc(x: _Real, /) -> float: ...
def erfc(x: Value | _Real, /) -> Value | float:
    """math.erfc: the complementary error function at x, 1 - erf(x). Derivative: -2/sqrt(pi) * exp(-x*x)."""
    if isinstance(x, Value):
        return _apply(_ERFC, x)
    return _math.erfc(x)

@overload
def gamma(x: Value, /) -> Value: ...
@overload
def gamma(x: _Real, /) -> float: ...
def gamma(x: Value | _Real, /) -> Value | float:
    """math.gamma: the gamma function at x. Derivative: gamma(x) * digamma(x)."""
    if isinstance(x, Value):
        return _apply(_GAMMA, x)
    return _math.gamma(x)

@overload
def lgamma(x: Value, /) -> Value: ...
@overload
def lgamma(x: _Real, /) -> float: ...
def lgamma(x: Value | _Real, /) -> Value | float:
    """math.lgamma: the natural logarithm of the absolute value of the gamma function at x. Derivative: digamma(x)."""
    if isinstance(x, Value):
        return _apply(_LGAMMA, x)
    return _math.lgamma(x)

@overload
def atan2(y: Value, x: Value | _Real, /) -> Value: ...
@overload
def atan2(y: _Real, x: Value, /) -> Value: ...
@overload
def atan2(y: _Real, x: _Real, /) -> float: ...
def atan2(y: Value | _Real, x: Value | _Real, /) -> Value | float:
    """math.atan2: the arc tangent of y/x, in the quadrant of the point (x, y). Derivatives: d/dy = x / (x*x + y*y), d/dx = -y / (x*x + y*y)."""
    if isinstance(y, Value) or isinstance(x, Value):
        return _apply(_ATAN2, y, x)
    return _math.atan2(y, x)

@overload
def copysign(x: Value, y: Value | _Real, /) -> Value: ...
@overload
def copysign(x: _Real, y: Value, /) -> Value: ...
@overload
def copysign(x: _Real, y: _Real, /) -> float: ...
def copysign(x: Value | _Real, y: Value | _Real, /) -> Value | float:
    """math.copysign: x with the sign of y. Derivatives: d/dx = copysign(x, y) / x (0 at x == 0), d/dy = 0."""
    if isinstance(x, Value) or isinstance(y, Value):
        return _apply(_COPYSIGN, x, y)
    return _math.copysign(x, y)

@overload
def fmod(x: Value, y: Value | _Real, /) -> Value: ...
@overload
def fmod(x: _Real, y: Value, /) -> Value: ...
@overload
def fmod(x: _Real, y: _Real, /) -> float: ...
def fmod(x: Value | _Real, y: Value | _Real, /) -> Value | float:
    """math.fmod: C's fmod(x, y): x - n*y, n = trunc(x / y). Derivatives: d/dx = 1, d/dy = -trunc(x / y)."""
    if isinstance(x, Value) or isinstance(y, Value):
        return _apply(_FMOD, x, y)
    return _math.fmod(x, y)

@overload
def remainder(x: Value, y: Value | _Real, /) -> Value: ...
@overload
def remainder(x: _Real, y: Value, /) -> Value: ...
@overload
def remainder(x: _Real, y: _Real, /) -> float: ...
def remainder(x: Value | _Real, y: Value | _Real, /) -> Value | float:
    """math.remainder: the IEEE 754 remainder: x - n*y, n the integer nearest x / y (ties to even). Derivatives: d/dx = 1, d/dy = -n."""
    if isinstance(x, Value) or isinstance(y, Value):
        return _apply(_REMAINDER, x, y)
    return _math.remainder(x, y)

@overload
def pow(x: Value, y: Value | _Real, /) -> Value: ...
@overload
def pow(x: _Real, y: Value, /) -> Value: ...
@overload
def pow(x: _Real, y: _Real, /) -> float: ...
def pow(x: Value | _Real, y: Value | _Real, /) -> Value | float:  # noqa: A001
    """math.pow: x raised to the power y, with math.pow's errors. Derivatives: d/dx = y * x**(y - 1), d/dy = x**y * log(x)."""
    if isinstance(x, Value) or isinstance(y, Value):
        return _apply(_POW, x, y)
    return _math.pow(x, y)


@overload
def log(x: Value, base: Value | _Real = ..., /) -> Value: ...
@overload
def log(x: _Real, base: Value, /) -> Value: ...
@overload
def log(x: _Real, base: _Real = ..., /) -> float: ...
def log(x: Value | _Real, base: Any = _NO_BASE, /) -> Value | float:
    """math.log(x[, base]): the natural logarithm of x, or log(x) / log(base),
    as math computes it. Derivative: 1 / x (d/dbase = -log(x) / (base * log(base)**2))."""
    bases = () if base is _NO_BASE else (base,)
    if not any(isinstance(a, Value) for a in (x, *bases)):
        return _math.log(x, *bases)  # type: ignore[arg-type]
    num = _apply(_LOG, x) if isinstance(x, Value) else _math.log(x)
    if not bases:
        return num
    den = _apply(_LOG, base) if isinstance(base, Value) else _math.log(base)
    return num / den


@overload
def floor(x: Value, /) -> Value: ...
@overload
def floor(x: _Real, /) -> int: ...
def floor(x: Value | _Real, /) -> Value | int:
    """math.floor: the largest integer <= x; for a Value, a Value (derivative 0)."""
    if isinstance(x, Value):
        return _apply(_FLOOR, x)
    return _math.floor(x)


@overload
def ceil(x: Value, /) -> Value: ...
@overload
def ceil(x: _Real, /) -> int: ...
def ceil(x: Value | _Real, /) -> Value | int:
    """math.ceil: the smallest integer >= x; for a Value, a Value (derivative 0)."""
    if isinstance(x, Value):
        return _apply(_CEIL, x)
    return _math.ceil(x)


@overload
def trunc(x: Value, /) -> Value: ...
@overload
def trunc(x: _Real, /) -> int: ...
def trunc(x: Value | _Real, /) -> Value | int:
    """math.trunc: x rounded toward 0; for a Value, a Value (derivative 0)."""
    if isinstance(x, Value):
        return _apply(_TRUNC, x)
    return _math.trunc(x)


@overload
def degrees(x: Value, /) -> Value: ...
@overload
def degrees(x: _Real, /) -> float: ...
def degrees(x: Value | _Real, /) -> Value | float:
    """math.degrees: x * (180 / pi), as math computes it. Derivative: 180 / pi."""
    if isinstance(x, Value):
        return x * _RAD_TO_DEG
    return _math.degrees(x)


@overload
def radians(x: Value, /) -> Value: ...
@overload
def radians(x: _Real, /) -> float: ...
def radians(x: Value | _Real, /) -> Value | float:
    """math.radians: x * (pi / 180), as math computes it. Derivative: pi / 180."""
    if isinstance(x, Value):
        return x * _DEG_TO_RAD
    return _math.radians(x)


def hypot(*coordinates: Value | _Real) -> Value | float:
    """math.hypot: the Euclidean norm of the coordinates, math's bits for any number
    of them.

    Derivative: coordinate / hypot; where all are 0, nan for two coordinates (as
    torch.hypot) and 0 for three or more (as torch.linalg.vector_norm). With three
    or more coordinates the graph is a spine of sums of squares (``_op`` 'sumsq'),
    which carries the derivative, under a node whose data is math.hypot of them all
    (``_op`` 'hypot').
    """
    if not any(isinstance(c, Value) for c in coordinates):
        return _math.hypot(*coordinates)  # type: ignore[arg-type]
    if len(coordinates) == 1:
        return _apply(_FABS, coordinates[0])
    if len(coordinates) == 2:
        return _apply(_HYPOT, coordinates[0], coordinates[1])
    return _apply_nary("hypot", coordinates)


def dist(p: Iterable[Value | _Real], q: Iterable[Value | _Real], /) -> Value | float:
    """math.dist: the Euclidean distance between points p and q, hypot of the
    differences p_i - q_i, as math computes it (math's bits)."""
    ps: tuple[Any, ...] = tuple(p)
    qs: tuple[Any, ...] = tuple(q)
    if not any(isinstance(c, Value) for c in ps + qs):
        return _math.dist(ps, qs)
    if len(ps) != len(qs):
        raise ValueError("both points must have the same number of dimensions")
    return hypot(*[a - b for a, b in zip(ps, qs)])


def fsum(seq: Iterable[Value | _Real], /) -> Value | float:
    """math.fsum: the exactly rounded sum of the values, math's bits, with math's
    errors (OverflowError for an intermediate overflow, ValueError for -inf + inf).

    Derivative: 1 for each term. With three or more terms the graph is a spine of
    ``+`` steps, which carries the derivative, under a node whose data is
    math.fsum of them all (``_op`` 'fsum'; with two or more terms).
    """
    items: list[Any] = list(seq)
    if not any(isinstance(c, Value) for c in items):
        return _math.fsum(items)
    if len(items) == 1:                 # math's x + 0.0 (-0.0 sums to 0.0)
        return items[0] + 0.0  # type: ignore[no-any-return]
    return _apply_nary("fsum", items)


def prod(iterable: Iterable[Value | _Real], /, *, start: Value | _Real = 1) -> Value | float:
    """math.prod: start * x0 * x1 * ..., the same left fold as math's, so the
    same bits. Derivative: the product of the other factors."""
    items: list[Any] = list(iterable)
    if not isinstance(start, Value) and not any(isinstance(c, Value) for c in items):
        return _math.prod(items, start=start)  # type: ignore[no-any-return]
    return _functools.reduce(_operator.mul, items, start)  # type: ignore[no-any-return]


def sumprod(p: Iterable[Value | _Real], q: Iterable[Value | _Real], /) -> Value | float:
    """math.sumprod (Python 3.12): p0*q0 + p1*q1 + ...

    With Values, products summed left to right (math rounds the exact sum
    once: the data may differ in the last bits, by at most
    (n - 1) * 2**-53 * sum(|p_i * q_i|) plus the products' own roundings).
    On Python 3.11, whose math has no sumprod, numbers are summed the same way.
    Derivatives: d/dp_i = q_i, d/dq_i = p_i.
    """
    ps: list[Any] = list(p)
    qs: list[Any] = list(q)
    if len(ps) != len(qs):
        raise ValueError("Inputs are not the same length")
    if not any(isinstance(c, Value) for c in ps + qs) and hasattr(_math, "sumprod"):
        return _math.sumprod(ps, qs)  # type: ignore[no-any-return]
    if not ps:
        return 0
    terms = [a * b for a, b in zip(ps, qs)]
    return _functools.reduce(_operator.add, terms)
