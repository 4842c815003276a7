"""gradcheck: catches wrong chain rules, passes on every built-in op, leaves inputs alone."""
import math
import re

import numpy as np
import pytest

import autograd._core
import autograd.math as am
from autograd import GradcheckError, Value, gradcheck

RNG_SEED = 20240603


def tanh_op(x, wrong=False):
    """tanh as a custom op, micrograd's way; `wrong` forgets the square in 1 - t**2."""
    t = math.tanh(x.data)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += ((1 - t) if wrong else (1 - t ** 2)) * out.grad
    out._backward = _backward
    return out


# Every built-in op, on operands where it is smooth (away from relu's kink, log's and
# division's poles, negative bases of fractional powers). Keyed by the `_op` it makes.
BUILTIN = {
    "+": (lambda x, y: x + y, 2),
    "-": (lambda x, y: x - y, 2),
    "*": (lambda x, y: x * y, 2),
    "/": (lambda x, y: x / (y * y + 0.5), 2),
    "neg": (lambda x: -x, 1),
    "**2": (lambda x: x ** 2, 1),
    "**3": (lambda x: x ** 3, 1),
    "**-1": (lambda x: (x * x + 0.5) ** -1, 1),
    "**0.5": (lambda x: (x * x + 0.5) ** 0.5, 1),
    "**": (lambda x, y: (x * x + 0.5) ** y, 2),
    "ReLU": (lambda x: x.relu(), 1),
    "tanh": (lambda x: x.tanh(), 1),
    "exp": (lambda x: x.exp(), 1),
    "log": (lambda x: (x * x + 0.5).log(), 1),
    "sigmoid": (lambda x: x.sigmoid(), 1),
    # a number on the left: __radd__, __rsub__, __rmul__, __rtruediv__, __rpow__
    "number + x": (lambda x: 2.5 + x, 1),
    "number - x": (lambda x: 2.5 - x, 1),
    "number * x": (lambda x: 2.5 * x, 1),
    "number / x": (lambda x: 2.5 / (x * x + 0.5), 1),
    "number ** x": (lambda x: 2.5 ** x, 1),
    # autograd.math's rows (operands mapped into each function's smooth domain)
    "sin": (am.sin, 1), "cos": (am.cos, 1), "tan": (lambda x: am.tan(0.4 * x), 1),
    "asin": (lambda x: am.asin(0.9 * x.tanh()), 1), "acos": (lambda x: am.acos(0.9 * x.tanh()), 1),
    "atan": (am.atan, 1), "sinh": (am.sinh, 1), "cosh": (am.cosh, 1), "asinh": (am.asinh, 1),
    "acosh": (lambda x: am.acosh(x * x + 1.5), 1), "atanh": (lambda x: am.atanh(0.9 * x.tanh()), 1),
    "exp2": (am.exp2, 1), "expm1": (am.expm1, 1), "log2": (lambda x: am.log2(x * x + 0.5), 1),
    "log10": (lambda x: am.log10(x * x + 0.5), 1), "log1p": (lambda x: am.log1p(x * x), 1),
    "sqrt": (lambda x: am.sqrt(x * x + 0.5), 1), "cbrt": (am.cbrt, 1), "fabs": (am.fabs, 1),
    "erf": (am.erf, 1), "erfc": (am.erfc, 1), "gamma": (lambda x: am.gamma(x * x + 0.5), 1),
    "lgamma": (lambda x: am.lgamma(x * x + 0.5), 1), "floor": (am.floor, 1),
    "ceil": (am.ceil, 1), "trunc": (am.trunc, 1), "sign": (lambda x: x.sign(), 1),
    "atan2": (am.atan2, 2), "hypot": (am.hypot, 2),
    "fmod": (lambda x, y: am.fmod(x, y * y + 0.5), 2),
    "remainder": (lambda x, y: am.remainder(x, y * y + 0.5), 2), "copysign": (am.copysign, 2),
    # the n-ary functions: a spine of binary steps under a node with math's value
    "hypot of 3": (am.hypot, 3), "hypot of 4": (lambda x, y, z: am.hypot(x, y, z, x * y), 3),
    "fsum of 3": (lambda x, y, z: am.fsum([x, y, z]), 3),
    "dist in 3-d": (lambda x, y, z: am.dist((x, y, z), (0.5, -y, 2.0)), 3),
}


def near_a_kink(op, point):
    """Points within 1e-3 of where the op (or its derivative) jumps."""
    x = point[0]
    if op in ("ReLU", "fabs", "cbrt", "sign"):
        return abs(x) < 1e-3
    if op in ("floor", "ceil", "trunc"):
        return abs(x - round(x)) < 1e-3
    if op in ("fmod", "remainder"):
        q = x / (point[1] ** 2 + 0.5)
        return min(abs(q - round(q)), abs(abs(q - math.floor(q)) - 0.5)) < 1e-3
    if op == "copysign":
        return abs(point[1]) < 1e-3
    return False


def test_every_builtin_op_is_covered():
    ops = {f(*[Value(0.7)] * n)._op for f, n in BUILTIN.values()}
    # step, select, pow_mask are made only by grad(create_graph=True): test_higher_order.py
    # as are rint and polygamma (the chain rules of remainder and gamma, lgamma);
    # sumsq is the spine under hypot of 3 or more (checked with it)
    assert set(autograd._core.OP_NAMES) - {"", "step", "select", "pow_mask", "rint",
                                           "polygamma", "sumsq"} <= ops


@pytest.mark.parametrize("op", BUILTIN)
def test_builtin_ops_pass_at_many_points(op):
    f, arity = BUILTIN[op]
    rng = np.random.default_rng(RNG_SEED)
    for point in rng.uniform(-3, 3, size=(200, arity)):
        if near_a_kink(op, point):
            continue        # no derivative to compare
        assert gradcheck(f, [Value(float(p)) for p in point])


def test_catches_a_wrong_custom_backward():
    x = Value(0.8, name="x")
    assert gradcheck(tanh_op, [x])
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda x: tanh_op(x, wrong=True), [x])
    analytic = 1 - math.tanh(0.8)
    numeric = 1 - math.tanh(0.8) ** 2
    message = str(err.value)
    assert "input 0 ('x', data 0.8)" in message
    assert f"analytic {analytic!r}" in message
    found = float(re.search(r"numeric (\S+)", message)[1])
    assert found == pytest.approx(numeric, rel=1e-8)


def test_message_lists_only_the_disagreeing_inputs():
    a, b, c = Value(0.3, name="a"), Value(-0.4), Value(1.1, name="c")
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda a, b, c: tanh_op(a, wrong=True) * b + tanh_op(c, wrong=True), [a, b, c])
    lines = str(err.value).splitlines()
    assert "for 2 of 3 inputs" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "input 0 ('a', data 0.3)", "input 2 ('c', data 1.1)"]


def test_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)


def test_raise_exception_false_returns_false():
    x = Value(0.8)
    assert gradcheck(lambda x: tanh_op(x, wrong=True), x, raise_exception=False) is False
    assert gradcheck(tanh_op, x, raise_exception=False) is True


def test_restores_data_and_grads():
    x, y = Value(0.8), Value(-1.25)
    x.grad, y.grad = 5.0, -7.0
    gradcheck(lambda x, y: x * y.tanh(), [x, y])
    with pytest.raises(GradcheckError):
        gradcheck(lambda x, y: tanh_op(x, wrong=True) * y, [x, y])
    assert (x.data, x.grad, y.data, y.grad) == (0.8, 5.0, -1.25, -7.0)


def test_restores_when_f_raises():
    x = Value(1e-7)
    x.grad = 2.0
    with pytest.raises(ValueError, match="math domain error"):
        gradcheck(lambda x: x.log(), [x], eps=1e-6)       # x - eps < 0
    assert (x.data, x.grad) == (1e-7, 2.0)


def test_tolerances():
    x = Value(1.0)
    # the analytic gradient is off by 1e-4 relative to the true 2.0
    def f(x):
        out = Value(x.data ** 2, (x,), "sq")
        def _backward():
            x.grad += 2.0002 * x.data * out.grad
        out._backward = _backward
        return out
    assert gradcheck(f, [x], atol=0, rtol=1e-3)
    assert not gradcheck(f, [x], atol=0, rtol=1e-5, raise_exception=False)
    assert gradcheck(f, [x], atol=1e-3, rtol=0)


def test_nan_gradient_disagrees():
    def f(x):
        out = Value(2 * x.data, (x,), "nan grad")
        def _backward():
            x.grad += math.nan * out.grad
        out._backward = _backward
        return out
    assert gradcheck(f, [Value(1.0)], raise_exception=False) is False


def test_type_errors():
    with pytest.raises(TypeError, match="input 0 must be a Value"):
        gradcheck(lambda x: x, [1.0])
    with pytest.raises(TypeError, match="f must return a Value"):
        gradcheck(lambda x: 1.0, [Value(1.0)])


# -- random programs (conftest's generator: every op, kept in a smooth domain) ---------

def program_function(programs, prog):
    return lambda *leaves: programs.run(prog, Value, leaves)[-1]


def test_random_programs(programs):
    for seed in range(300):
        prog = programs.make(seed, ops=programs.ALL_OPS)
        leaves = [Value(float(x)) for x in prog.leaves]
        assert gradcheck(program_function(programs, prog), leaves), prog


def doubling_identity(x):
    """x itself as a custom op, whose _backward wrongly passes on twice the gradient."""
    out = Value(x.data, (x,), "id")

    def _backward():
        x.grad += 2.0 * out.grad
    out._backward = _backward
    return out


def test_random_programs_with_one_wrong_op_fail(programs):
    for seed in range(50):
        prog = programs.make(seed, ops=programs.ALL_OPS)
        body = program_function(programs, prog)

        def f(x, *rest):
            wrong = doubling_identity(x)
            return body(wrong, *rest) + wrong     # x reaches the output whatever the program
        leaves = [Value(float(x)) for x in prog.leaves]
        assert not gradcheck(f, leaves, raise_exception=False), prog
