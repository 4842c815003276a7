"""The fast paths of generic code: plain int, bool and float operands on either side,
``**`` with a number, and ``Value(x)`` from a number, against micrograd and against the
general path (number subclasses, numpy scalars, keyword arguments), which they must
not change."""
import math

import numpy as np
import pytest
from micrograd.engine import Value as MValue

from autograd import CustomValue, Value
from autograd._core import arena_stats

NUMBERS = [0, 1, -3, 2.5, -0.0, True, False, 7, 10**20]
BINARY = [
    ("add", lambda a, b: a + b), ("radd", lambda a, b: b + a),
    ("sub", lambda a, b: a - b), ("rsub", lambda a, b: b - a),
    ("mul", lambda a, b: a * b), ("rmul", lambda a, b: b * a),
    ("div", lambda a, b: a / b), ("rdiv", lambda a, b: b / a),
]


class MyInt(int):
    def __float__(self):
        return 99.0


class MyFloat(float):
    pass


@pytest.mark.parametrize("name,f", BINARY)
@pytest.mark.parametrize("c", NUMBERS)
def test_number_operand_matches_micrograd(name, f, c):
    x = 1.75
    if name == "div" and c == 0 or name == "rdiv" and x == 0:
        return
    ours = Value(x)
    out = f(ours, c)
    mine = MValue(x)
    ref = f(mine, c)
    ref.backward()
    out.backward()
    assert out.data == pytest.approx(ref.data, rel=1e-15)
    assert ours.grad == pytest.approx(mine.grad, rel=1e-15)
    # a constant leaf, as micrograd: the result has two operands
    assert len(out._prev) == 2
    assert type(out.data) is float


@pytest.mark.parametrize("name,f", BINARY)
def test_int_and_float_constants_give_the_same_node(name, f):
    for c in (3, True):
        a, b = f(Value(1.5), c), f(Value(1.5), float(c))
        assert a.data == b.data and a._op == b._op
        a.backward()
        b.backward()
        assert sorted(p.data for p in a._prev) == sorted(p.data for p in b._prev)


@pytest.mark.parametrize("c", [MyInt(5), MyFloat(2.5), np.float64(2.5), np.int64(5),
                               np.bool_(True)])
def test_number_subclasses_take_the_general_path_unchanged(c):
    v = Value(2.0)
    assert (v + c).data == 2.0 + float(int(c) if isinstance(c, int) else c)
    assert (c * v).data == float(int(c) if isinstance(c, int) else c) * 2.0


def test_int_too_large_for_a_float():
    v = Value(1.0)
    for f in (lambda: v + 10**400, lambda: 10**400 * v, lambda: v ** 10**400,
              lambda: Value(10**400)):
        with pytest.raises(OverflowError):
            f()
    assert math.isfinite(v.data)


def test_zero_division_with_int_operands():
    with pytest.raises(ZeroDivisionError):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError):
        1 / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1


@pytest.mark.parametrize("e,op", [(2, "**2"), (-1, "**-1"), (0.5, "**0.5"), (True, "**1"),
                                  (np.int64(3), "**3"), (np.float64(0.5), "**0.5")])
def test_pow_number(e, op):
    v = Value(1.5)
    out = v ** e
    assert out._op == op
    assert out._prev == {v}
    out.backward()
    m = MValue(1.5)
    r = m ** (float(e) if isinstance(e, np.floating) else int(e) if not isinstance(e, float)
              else e)
    r.backward()
    assert out.data == pytest.approx(r.data, rel=1e-15)
    assert v.grad == pytest.approx(m.grad, rel=1e-15)


def test_sum_from_int_zero():
    vs = [Value(float(i)) for i in range(5)]
    s = sum(vs)
    s.backward()
    assert s.data == 10.0
    assert all(v.grad == 1.0 for v in vs)


@pytest.mark.parametrize("x", [1.5, 2, True, False, -0.0, MyFloat(0.25), MyInt(4),
                               np.float32(0.5), np.int8(-3)])
def test_leaf_from_a_number(x):
    v = Value(x)
    assert type(v) is Value
    assert type(v.data) is float
    assert v.data == (float(int(x)) if isinstance(x, int) else float(x))
    assert v.grad == 0.0 and v._op == '' and v._prev == set() and v.name == ''


def test_leaf_constructor_other_calls_unchanged():
    assert Value(1.0, name="a").name == "a"
    assert Value(data=2).data == 2.0
    assert Value(3.0, (), '').data == 3.0 and type(Value(3.0, (), '')) is Value
    c = Value(1.0, (Value(2.0),), 'f')
    assert type(c) is CustomValue and c._op == 'f'
    with pytest.raises(TypeError):
        Value()
    with pytest.raises(TypeError):
        Value("1.0")
    with pytest.raises(TypeError):
        Value(None)
    with pytest.raises(TypeError):
        Value(1j)

    class Sub(Value):
        def __init__(self, x):
            super().__init__(x)
            self.tag = "t"

    s = Sub(2)
    assert type(s) is Sub and s.tag == "t" and s.data == 2.0


def test_leaves_and_constants_are_freed():
    before = arena_stats()["live"]
    for _ in range(100):
        v = Value(1)
        w = 2 * v + True - 1 / (v ** 2)
        del v, w
    assert arena_stats()["live"] == before
