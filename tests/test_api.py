"""The API surface micrograd code relies on: imports, attributes, `_prev` identity,
`_op` strings, repr, identity hashing, subclassing, custom ops, and nn."""
import gc
import math
import random
from fractions import Fraction

import micrograd.engine
import micrograd.nn
import numpy as np
import pytest

import autograd
import autograd.engine
import autograd.nn
from autograd import CustomValue, Graph, Value, ValueVector
from autograd.nn import MLP, Layer, Module, Neuron


def test_imports():
    assert autograd.Value is autograd.engine.Value is Value
    assert autograd.CustomValue is CustomValue and issubclass(CustomValue, Value)
    assert autograd.Graph is Graph and autograd.ValueVector is ValueVector
    assert {"Value", "CustomValue", "Graph", "ValueVector"} <= set(autograd.__all__)
    assert issubclass(Neuron, Module) and issubclass(Layer, Module) and issubclass(MLP, Module)


# --- construction and attributes ------------------------------------------------------

@pytest.mark.parametrize("x", [3, -7, 2.5, True, False, np.float64(0.25), np.float32(0.1),
                               np.int64(-4), np.int8(5), Fraction(1, 3), 10**18 + 1,
                               math.inf, -0.0])
def test_data_is_stored_as_float64(x):
    v = Value(x)
    assert type(v.data) is float and v.data == float(x)
    assert math.copysign(1, v.data) == math.copysign(1, float(x))
    assert type(v.grad) is float and v.grad == 0.0


def test_nan_data():
    assert math.isnan(Value(math.nan).data)


def test_attributes_and_defaults():
    v = Value(2.0)
    assert (v.data, v.grad, v.name, v.label, v._op, v._prev) == (2.0, 0.0, "", "", "", set())
    assert callable(v._backward)
    v._backward()                  # a leaf's rule does nothing
    assert v.grad == 0.0
    v.data = 5
    v.grad = np.float64(1.5)
    assert (v.data, v.grad) == (5.0, 1.5) and type(v.data) is float


def test_constructor_positional_micrograd_signature():
    a, b = Value(1.0), Value(2.0)
    c = Value(3.0, (a, b), "+", "c")
    assert c.data == 3.0 and c._prev == {a, b} and c._op == "+" and c.name == "c"


def test_label_is_keyword_only():
    with pytest.raises(TypeError):
        Value(1.0, (), "", "n", "l")
    with pytest.raises(TypeError):
        Value()


def test_interior_node_reached_through_prev_after_its_handle_died():
    """A node outlives its Value object; _prev hands out a new one with its data/grad."""
    a, b = Value(2.0), Value(3.0)
    c = (a * b) + 1                     # the Value of a * b is dropped here
    c.backward()
    (m,) = [v for v in c._prev if v.data == 6.0]
    assert (m._op, m.grad, m._prev) == ("*", 1.0, {a, b})
    m.name = "m"
    del m
    gc.collect()
    (m,) = [v for v in c._prev if v.data == 6.0]
    assert m.name == "m"


def test_name_and_label_alias():
    v = Value(1.0, name="x")
    assert v.name == v.label == "x"
    v.label = "y"
    assert v.name == "y"
    v.name = "z"
    assert v.label == "z"
    v.name = ""
    assert v.label == ""
    w = Value(1.0, label="w")
    assert w.name == "w"
    assert Value(1.0, name="n", label="l").name == "l"   # label wins, as its alias
    s = (w * 2)
    s.label = "s"
    assert s.name == "s"


def test_names_survive_gc_and_are_per_node():
    vals = [Value(float(i), name=f"v{i}") for i in range(100)]
    gc.collect()
    assert [v.name for v in vals] == [f"v{i}" for i in range(100)]
    del vals
    assert Value(1.0).name == ""        # a reused slot carries no stale name


# --- _prev and identity -----------------------------------------------------------------

def test_prev_identity():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    assert a in c._prev and b in c._prev
    assert c._prev == {a, b}
    assert len(c._prev) == 2
    d = a + a
    assert d._prev == {a}
    e = c.relu()
    assert e._prev == {c}
    (p,) = e._prev
    assert p is c


def test_prev_constant_operand_is_one_object_per_live_node():
    a = Value(1.0)
    c = a + 2
    p1, p2 = c._prev, c._prev
    assert p1 == p2 and len(p1) == 2 and a in p1
    (k,) = p1 - {a}
    assert k.data == 2.0 and k._op == ""
    (k2,) = [v for v in c._prev if v is not a]
    assert k2 is k
    c.backward()
    assert k.grad == 1.0


def test_prev_handles_see_the_live_node():
    """A handle made from _prev is the node itself: setting its data is seen downstream."""
    a = Value(3.0)
    b = a * 4
    (k,) = b._prev - {a}
    k.data = 5.0
    g = Graph(b)
    g.forward()
    assert b.data == 15.0


def test_hash_and_eq_are_identity():
    a, b = Value(1.0), Value(1.0)
    assert a != b and not (a == b) and a == a
    assert len({a, b}) == 2 and hash(a) == hash(a)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    assert (a + 0) != a


# --- _op strings ------------------------------------------------------------------------

def _ops(V):
    a, b = V(2.0), V(3.0)
    return {"+": a + b, "*": a * b, "ReLU": a.relu(), "**2": a ** 2, "**2.0": a ** 2.0,
            "**-1": a ** -1, "**0.5": a ** 0.5, "+c": a + 1, "c+": 1 + a, "c*": 2 * a}


def test_op_strings_equal_micrograds():
    ours, theirs = _ops(Value), _ops(micrograd.engine.Value)
    assert {k: v._op for k, v in ours.items()} == {k: v._op for k, v in theirs.items()}


@pytest.mark.parametrize("make, op", [
    (lambda a, b: a - b, "-"), (lambda a, b: 1 - a, "-"), (lambda a, b: a - 1, "-"),
    (lambda a, b: a / b, "/"), (lambda a, b: 1 / a, "/"), (lambda a, b: a / 2, "/"),
    (lambda a, b: -a, "neg"), (lambda a, b: a ** b, "**"), (lambda a, b: 2 ** a, "**"),
    (lambda a, b: a.tanh(), "tanh"), (lambda a, b: a.exp(), "exp"),
    (lambda a, b: a.log(), "log"), (lambda a, b: a.sigmoid(), "sigmoid"),
    (lambda a, b: a ** -2, "**-2"), (lambda a, b: a ** np.float64(1.5), "**1.5"),
    (lambda a, b: a, ""),
])
def test_our_op_strings(make, op):
    assert make(Value(2.0), Value(3.0))._op == op


def test_repr():
    v = Value(2.5)
    assert repr(v) == "Value(data=2.5, grad=0.0)"
    v.grad = -1
    assert repr(v) == "Value(data=2.5, grad=-1.0)"
    assert str(Value(3)) == "Value(data=3.0, grad=0.0)"
    # micrograd's format, with float fields
    mg = micrograd.engine.Value(2.5)
    mg.grad = -1.0
    assert repr(v) == repr(mg)


# --- ops with numbers on either side ---------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    (lambda a: a + 2, 5.0), (lambda a: 2 + a, 5.0), (lambda a: a - 2, 1.0),
    (lambda a: 2 - a, -1.0), (lambda a: a * 2, 6.0), (lambda a: 2 * a, 6.0),
    (lambda a: a / 2, 1.5), (lambda a: 6 / a, 2.0), (lambda a: a ** 2, 9.0),
    (lambda a: 2 ** a, 8.0), (lambda a: -a, -3.0), (lambda a: a ** a, 27.0),
    (lambda a: np.float64(2.0) * a, 6.0), (lambda a: a * np.int64(2), 6.0),
    (lambda a: sum([a, a, a]), 9.0),
])
def test_number_operands(expr, expected):
    out = expr(Value(3.0))
    assert isinstance(out, Value) and out.data == expected


# --- subclassing and custom ops ----------------------------------------------------------

class MyValue(Value):
    """A user's subclass adding an op the micrograd way (a closure in _backward)."""

    def cube(self):
        out = MyValue(self.data ** 3, (self,), "cube")

        def _backward():
            self.grad += 3 * self.data ** 2 * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = MyValue(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out


def test_subclass_custom_op_backward():
    x = MyValue(0.5, name="x")
    assert type(x) is MyValue and x.name == "x"
    y = x.cube()
    t = x.tanh()
    assert isinstance(y, MyValue) and y._op == "cube" and y._prev == {x}
    assert t._op == "tanh" and t.data == math.tanh(0.5)
    z = y * 2 + t * x - 1
    assert isinstance(z, CustomValue)           # built on a custom op: a CustomValue
    z.backward()
    expected = 2 * 3 * 0.5 ** 2 + (1 - math.tanh(0.5) ** 2) * 0.5 + math.tanh(0.5)
    assert math.isclose(x.grad, expected, rel_tol=1e-15)


def test_subclass_instance_attributes():
    v = MyValue(1.0)
    v.tag = "kept"            # a Python subclass has a __dict__
    assert v.tag == "kept"
    assert (v * 2).data == 2.0


def test_custom_op_micrograd_style_on_plain_value():
    a = Value(0.3)
    t = math.tanh(a.data)
    out = Value(t, (a,), "tanh")
    assert type(out) is CustomValue and isinstance(out, Value)
    assert out._op == "tanh" and out._prev == {a}

    def _backward():
        a.grad += (1 - t ** 2) * out.grad
    out._backward = _backward
    assert out._backward is _backward
    loss = out * 3
    loss.backward()
    assert math.isclose(a.grad, 3 * (1 - t ** 2), rel_tol=1e-15)
    out.extra = 1             # CustomValue has a __dict__
    assert out.extra == 1


def test_custom_value_types():
    assert type(Value(1.0)) is Value
    assert type(Value(1.0) + Value(2.0)) is Value
    assert type(Value(1.0, (), "const")) is CustomValue
    a = Value(1.0)
    assert type(Value(2.0, [a], "f")) is CustomValue
    assert type(Value(2.0, _children=(a,), _op="f")) is CustomValue
    c = Value(2.0, (a,), "f")
    assert type(c + 1) is CustomValue and type(1 - c) is CustomValue
    assert type(c.relu()) is CustomValue and type(2 ** c) is CustomValue


def test_custom_op_without_backward_is_a_no_op():
    """micrograd's default _backward is `lambda: None`."""
    a = Value(2.0)
    out = Value(4.0, (a,), "mystery")
    (out * 1).backward()
    assert a.grad == 0.0 and out.grad == 1.0


@pytest.mark.parametrize("make", [lambda: Value(1.0), lambda: Value(1.0) + Value(2.0),
                                  lambda: Value(1.0).relu(), lambda: 2 * Value(3.0)])
def test_backward_assignment_on_builtin_value_raises(make):
    v = make()
    with pytest.raises(AttributeError):
        v._backward = lambda: None


@pytest.mark.parametrize("bad", [None, 1, "f", [lambda: None]])
def test_backward_assignment_non_callable_raises(bad):
    out = Value(1.0, (Value(2.0),), "f")
    with pytest.raises(TypeError):
        out._backward = bad


def test_builtin_backward_is_the_local_rule():
    a, b = Value(2.0), Value(5.0)
    c = a * b
    c.grad = 2.0
    c._backward()
    assert (a.grad, b.grad) == (10.0, 4.0)
    c._backward()               # applying it again adds again, as micrograd's closure
    assert (a.grad, b.grad) == (20.0, 8.0)


# --- backward semantics ------------------------------------------------------------------

def test_backward_overwrites_root_grad_and_accumulates_elsewhere():
    a = Value(3.0)
    b = a * a
    c = b + 1
    c.grad = 42.0
    c.backward()
    assert c.grad == 1.0 and b.grad == 1.0 and a.grad == 6.0
    c.backward()
    assert c.grad == 1.0 and b.grad == 2.0 and a.grad == 6.0 + 2 * 6.0


def test_backward_reaches_interior_nodes_once_per_path():
    a = Value(2.0)
    b = a * 3
    c = b + b * b
    c.backward()
    assert b.grad == 1 + 2 * b.data and a.grad == 3 * b.grad


def test_deep_chain_backward_is_iterative():
    x = Value(1.0)
    y = x
    for _ in range(100_000):
        y = y + 1
    y.backward()
    assert x.grad == 1.0 and y.data == 100_001.0


# --- nn ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda nn: nn.Neuron(3), lambda nn: nn.Neuron(3, nonlin=False), lambda nn: nn.Layer(2, 3),
    lambda nn: nn.Layer(4, 1, nonlin=False), lambda nn: nn.MLP(2, [16, 16, 1]),
    lambda nn: nn.MLP(3, [4, 4, 1]),
])
def test_nn_reprs_and_weights_equal_micrograds(make):
    random.seed(42)
    ours = make(autograd.nn)
    random.seed(42)
    theirs = make(micrograd.nn)
    assert repr(ours) == repr(theirs)
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    assert all(type(p) is Value for p in ours.parameters())


def test_demo_loss_with_numpy_inputs_as_in_micrograds_notebook(moons_loss):
    """The notebook feeds numpy rows and integer numpy labels straight in."""
    from autograd.datasets import make_moons
    X, y = make_moons(n_samples=10, seed=3)
    random.seed(0)
    model = MLP(2, [4, 1])
    from_numpy = moons_loss(model, X, y.astype(np.int64), Value)
    from_lists = moons_loss(model, X.tolist(), [int(t) for t in y], Value)
    assert type(from_numpy) is Value and from_numpy.data == from_lists.data
    from_numpy.backward()
    g1 = [p.grad for p in model.parameters()]
    model.zero_grad()
    from_lists.backward()
    assert g1 == [p.grad for p in model.parameters()]


def test_nn_forward_and_zero_grad():
    random.seed(3)
    model = MLP(3, [4, 4, 1])
    random.seed(3)
    mg = micrograd.nn.MLP(3, [4, 4, 1])
    x = [2.0, 3.0, -1.0]
    out, mout = model(x), mg(x)
    assert isinstance(out, Value) and math.isclose(out.data, mout.data, rel_tol=1e-12)
    out.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    assert isinstance(model.layers[0]([1.0, 2.0, 3.0]), list)
    assert Module().parameters() == []
