"""Bad inputs and forward errors raise what Python floats and `math` raise; backward
never raises (IEEE semantics); overflow to inf and nan propagate as with floats."""
import math
from decimal import Decimal

import numpy as np
import pytest

from autograd import Graph, Value, ValueVector

# --- construction and attribute types ------------------------------------------------

@pytest.mark.parametrize("bad", ["1.0", None, [1.0], (1.0,), 1j, complex(1, 0), Decimal("1"),
                                 object(), np.array([1.0, 2.0]), {"data": 1}])
def test_value_data_must_be_real(bad):
    with pytest.raises(TypeError):
        Value(bad)


def test_huge_int_data_overflows_as_float_does():
    with pytest.raises(OverflowError):
        float(10 ** 400)
    with pytest.raises(OverflowError):
        Value(10 ** 400)


@pytest.mark.parametrize("attr", ["data", "grad"])
@pytest.mark.parametrize("bad", ["2", None, [2.0], 2j, object()])
def test_setting_data_or_grad_to_non_number(attr, bad):
    v = Value(1.0)
    with pytest.raises(TypeError):
        setattr(v, attr, bad)
    assert (v.data, v.grad) == (1.0, 0.0)        # unchanged


@pytest.mark.parametrize("attr", ["name", "label"])
@pytest.mark.parametrize("bad", [None, 3, 1.5, b"x", ["x"]])
def test_setting_name_to_non_str(attr, bad):
    v = Value(1.0, name="keep")
    with pytest.raises(TypeError):
        setattr(v, attr, bad)
    assert v.name == "keep"


@pytest.mark.parametrize("kw", [{"name": 3}, {"label": 3}, {"name": b"x"}])
def test_constructor_name_non_str(kw):
    with pytest.raises(TypeError):
        Value(1.0, **kw)


@pytest.mark.parametrize("children", [(1.0,), ("a",), (None,), [Value(1.0), 2]])
def test_children_must_be_values(children):
    with pytest.raises(TypeError):
        Value(1.0, children, "f")


# --- operands of other types ----------------------------------------------------------

BAD_OPERANDS = ["2", None, [1.0], 1j, Decimal("2"), object()]
BINOPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}


@pytest.mark.parametrize("bad", BAD_OPERANDS, ids=repr)
@pytest.mark.parametrize("op", BINOPS)
def test_bad_operand_right(op, bad):
    with pytest.raises(TypeError):
        BINOPS[op](Value(2.0), bad)


@pytest.mark.parametrize("bad", BAD_OPERANDS, ids=repr)
@pytest.mark.parametrize("op", BINOPS)
def test_bad_operand_left(op, bad):
    with pytest.raises(TypeError):
        BINOPS[op](bad, Value(2.0))


@pytest.mark.parametrize("method", ["__add__", "__sub__", "__mul__", "__truediv__",
                                    "__radd__", "__rsub__", "__rmul__", "__rtruediv__"])
def test_none_operand_is_not_implemented(method):
    """None is not a number: the binary op must decline it (as micrograd, TypeError),
    not treat it as a missing operand (whose data would read as 0)."""
    assert getattr(Value(2.0), method)(None) is NotImplemented


def test_pow_with_modulo():
    with pytest.raises(TypeError):
        pow(Value(2.0), 2, 3)
    with pytest.raises(TypeError):
        pow(Value(2.0), Value(2.0), 3)


def test_graph_and_vector_reject_non_values():
    with pytest.raises(TypeError):
        Graph(1.0)
    with pytest.raises(TypeError):
        Graph(None)
    with pytest.raises(TypeError):
        ValueVector([Value(1.0), 2.0])


# --- forward errors, as Python floats and math ----------------------------------------

FORWARD_ERRORS = [
    (lambda: 1 / Value(0.0), ZeroDivisionError),
    (lambda: 1 / Value(-0.0), ZeroDivisionError),
    (lambda: Value(1.0) / 0, ZeroDivisionError),
    (lambda: Value(1.0) / Value(0.0), ZeroDivisionError),
    (lambda: Value(math.nan) / 0.0, ZeroDivisionError),
    (lambda: Value(0.0) ** -1, ZeroDivisionError),
    (lambda: Value(0.0) ** -0.5, ZeroDivisionError),
    (lambda: Value(0.0) ** Value(-1.0), ZeroDivisionError),
    (lambda: 0 ** Value(-2.0), ZeroDivisionError),
    (lambda: Value(1e308) ** 2, OverflowError),
    (lambda: Value(10.0) ** Value(400.0), OverflowError),
    (lambda: 10.0 ** Value(400.0), OverflowError),
    (lambda: Value(-1e308) ** 3, OverflowError),
    (lambda: Value(-8.0) ** 0.5, ValueError),
    (lambda: Value(-8.0) ** Value(1 / 3), ValueError),
    (lambda: (-8.0) ** Value(0.5), ValueError),
    (lambda: Value(-1.0).log(), ValueError),
    (lambda: Value(0.0).log(), ValueError),
    (lambda: Value(-math.inf).log(), ValueError),
    (lambda: Value(1000.0).exp(), OverflowError),
    (lambda: Value(710.0).exp(), OverflowError),
]


@pytest.mark.parametrize("expr, exc", FORWARD_ERRORS)
def test_forward_errors(expr, exc):
    with pytest.raises(exc):
        expr()


@pytest.mark.parametrize("expr, reference", [
    (lambda: 1 / Value(0.0), lambda: 1 / 0.0),
    (lambda: Value(0.0) ** -1, lambda: 0.0 ** -1),
    (lambda: Value(1e308) ** 2, lambda: 1e308 ** 2),
    (lambda: Value(-1.0).log(), lambda: math.log(-1.0)),
    (lambda: Value(1000.0).exp(), lambda: math.exp(1000.0)),
])
def test_forward_errors_are_pythons(expr, reference):
    with pytest.raises(Exception) as ours:
        expr()
    with pytest.raises(Exception) as python:
        reference()
    assert type(ours.value) is type(python.value)


def test_complex_power_raises_where_python_gives_complex():
    """Python's float ** gives a complex number here; a Value cannot hold one."""
    assert isinstance((-8.0) ** 0.5, complex)
    with pytest.raises(ValueError):
        math.pow(-8.0, 0.5)
    with pytest.raises(ValueError):
        Value(-8.0) ** 0.5


# --- no error: IEEE results, as with floats -------------------------------------------

@pytest.mark.parametrize("expr, reference", [
    (lambda: Value(1e308) * 10, lambda: 1e308 * 10),
    (lambda: Value(1e308) + 1e308, lambda: 1e308 + 1e308),
    (lambda: Value(-1e308) - 1e308, lambda: -1e308 - 1e308),
    (lambda: Value(1e-320) / 1e10, lambda: 1e-320 / 1e10),
    (lambda: Value(-1000.0).exp(), lambda: math.exp(-1000.0)),
    (lambda: Value(math.inf).exp(), lambda: math.exp(math.inf)),
    (lambda: Value(-math.inf).exp(), lambda: math.exp(-math.inf)),
    (lambda: Value(math.inf) ** 2, lambda: math.inf ** 2),
    (lambda: Value(math.inf).log(), lambda: math.log(math.inf)),
    (lambda: Value(-8.0) ** 3, lambda: (-8.0) ** 3),
    (lambda: Value(-8.0) ** Value(-3.0), lambda: (-8.0) ** -3.0),
    (lambda: Value(0.0) ** 0, lambda: 0.0 ** 0),
    (lambda: Value(0.0) ** 0.5, lambda: 0.0 ** 0.5),
    (lambda: Value(math.inf) - math.inf, lambda: math.inf - math.inf),
    (lambda: Value(math.inf) * 0.0, lambda: math.inf * 0.0),
    (lambda: Value(100.0).tanh(), lambda: math.tanh(100.0)),
    (lambda: Value(-1000.0).sigmoid(), lambda: 0.0),
    (lambda: Value(1000.0).sigmoid(), lambda: 1.0),
    (lambda: Value(-math.inf).sigmoid(), lambda: 0.0),
    (lambda: Value(math.inf).sigmoid(), lambda: 1.0),
])
def test_ieee_results_as_floats(expr, reference):
    out, ref = expr().data, reference()
    assert out == ref or (math.isnan(out) and math.isnan(ref)), (out, ref)


@pytest.mark.parametrize("f, grad_is_nan", [
    (lambda v: v + 1, False), (lambda v: 2 * v, False), (lambda v: v - v, False),
    (lambda v: v / 3, False), (lambda v: -v, False), (lambda v: v.relu(), False),
    (lambda v: v ** 2, True), (lambda v: v ** 0.5, True), (lambda v: 2 ** v, True),
    (lambda v: v ** Value(2.0), True), (lambda v: v.tanh(), True), (lambda v: v.exp(), True),
    (lambda v: v.log(), True), (lambda v: v.sigmoid(), True), (lambda v: v * v, True),
    (lambda v: 1 / v, True),
])
def test_nan_propagates(f, grad_is_nan):
    a = Value(math.nan)
    out = f(a)
    assert math.isnan(out.data)
    out.backward()                  # never raises
    assert math.isnan(a.grad) == grad_is_nan, a.grad


def test_nan_in_a_micrograd_relu_has_zero_grad_as_micrograd():
    """relu(nan) is nan (0 if x < 0 else x), and its grad factor is (out.data > 0) = 0."""
    import micrograd.engine
    ours, theirs = Value(math.nan), micrograd.engine.Value(math.nan)
    r, mr = ours.relu(), theirs.relu()
    assert math.isnan(r.data) and math.isnan(mr.data)
    r.backward()
    mr.backward()
    assert ours.grad == theirs.grad == 0.0


# --- backward never raises ----------------------------------------------------------------

@pytest.mark.parametrize("build, check", [
    (lambda a: a ** 0.5, lambda a: a.grad == math.inf),                 # a = 0
    (lambda a: (a + 1e-300) ** -1, lambda a: a.grad == -math.inf),
    (lambda a: a ** 0, lambda a: a.grad == 0.0),      # d(a**0)/da = 0 even at 0 (PyTorch)
    (lambda a: (a + 1e-200) ** -1.5, lambda a: a.grad == -math.inf),
    (lambda a: a * 1e308 * 1e308, lambda a: a.grad == math.inf),
])
def test_backward_ieee_at_zero(build, check):
    a = Value(0.0)
    out = build(a)
    out.backward()
    assert check(a)


def test_backward_with_overflowed_data():
    a = Value(1e200)
    b = a * a                           # inf
    c = b * b
    c.backward()
    assert b.data == c.data == math.inf
    assert b.grad == math.inf and a.grad == math.inf
    d = Value(1e200)
    e = d * d - d * d                   # inf - inf
    e.backward()
    assert math.isnan(e.data) and d.grad == 0.0


def test_backward_value_pow_negative_base():
    a, b = Value(-2.0), Value(3.0)
    out = a ** b
    out.backward()
    assert out.data == -8.0 and a.grad == 12.0 and math.isnan(b.grad)


def test_sigmoid_never_overflows_in_backward():
    for x in (-1000.0, 1000.0, -1e308, 1e308):
        a = Value(x)
        s = a.sigmoid()
        s.backward()
        assert s.data in (0.0, 1.0) and a.grad == 0.0


# --- a failed op leaves the graph usable ------------------------------------------------

def test_failed_op_leaves_operands_intact():
    a = Value(0.0)
    b = a * 2
    with pytest.raises(ZeroDivisionError):
        1 / b
    with pytest.raises(ValueError):
        b.log()
    c = b + 1
    c.backward()
    assert (c.data, a.grad) == (1.0, 2.0)
