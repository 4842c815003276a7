"""The seed tutorial (Backpropagation 2/2, /work/shared/seed/000_099b75e7af974292.txt)
run on our Value: its graph, its manual chain rule with `_backward`, its `deriv()`
finite differences (the exact numbers it prints) and its Neuron."""
import random

import numpy as np
import pytest

from autograd import Value


def build(da=0.0, dc=0.0, dd=0.0, de=0.0, df=0.0):
    """The seed's graph, built exactly as its deriv() builds it (h added where it adds it)."""
    a = Value(10.0 + da, name="a")
    b = Value(3.0, name="b")
    c = a * b; c.name = "c"
    c.data = c.data + dc
    d = Value(-2.0 + dd, name="d")
    e = c + d; e.name = "e"
    e.data = e.data + de
    f = Value(3.0 + df, name='f')
    L = e * f; L.name = "L"
    return a, b, c, d, e, f, L


def test_forward_and_names():
    a, b, c, d, e, f, L = build()
    assert (c.data, e.data, L.data) == (30.0, 28.0, 84.0)
    assert [v.name for v in (a, b, c, d, e, f, L)] == list("abcdefL")
    assert [v.label for v in (a, b, c, d, e, f, L)] == list("abcdefL")
    assert (L._op, e._op, c._op, a._op) == ("*", "+", "*", "")
    assert L._prev == {e, f} and e._prev == {c, d} and c._prev == {a, b} and a._prev == set()


def test_manual_backward_step_by_step():
    a, b, c, d, e, f, L = build()
    assert all(v.grad == 0.0 for v in (a, b, c, d, e, f, L))
    L.grad = 1.0
    L._backward()
    assert (e.grad, f.grad) == (3.0, 28.0)
    assert (a.grad, b.grad, c.grad, d.grad) == (0.0, 0.0, 0.0, 0.0)
    f._backward()           # a leaf: "nothing changes"
    assert [v.grad for v in (a, b, c, d, e, f, L)] == [0.0, 0.0, 0.0, 0.0, 3.0, 28.0, 1.0]
    e._backward()
    assert (c.grad, d.grad) == (3.0, 3.0)
    c._backward()
    assert (a.grad, b.grad) == (9.0, 30.0)
    assert [v.grad for v in (a, b, c, d, e, f, L)] == [9.0, 30.0, 3.0, 3.0, 3.0, 28.0, 1.0]


def test_backward_from_scratch_gives_the_same_grads():
    a, b, c, d, e, f, L = build()
    L.backward()
    assert [v.grad for v in (a, b, c, d, e, f, L)] == [9.0, 30.0, 3.0, 3.0, 3.0, 28.0, 1.0]


def test_e_backward_as_in_the_ordering_section():
    """The seed's last graph stops at e and calls e.backward()."""
    a, b, c, d, e, f, L = build()
    e.backward()
    assert [v.grad for v in (a, b, c, d, e)] == [3.0, 10.0, 1.0, 1.0, 1.0]
    assert f.grad == 0.0 and L.grad == 0.0


H = 0.001


def deriv(**bump):
    L1 = build()[-1].data
    L2 = build(**bump)[-1].data
    return (L2 - L1) / H


def test_deriv_prints_the_seeds_numbers():
    """Float arithmetic is IEEE double, as in the seed's pure-Python Value: the printed
    finite differences come out bit for bit."""
    assert deriv(da=H) == 9.000000000000341
    assert deriv(de=H) == 3.0000000000001137
    assert deriv(df=H) == 27.999999999991587
    assert deriv(dc=H) == 3.0000000000001137
    assert deriv(dd=H) == pytest.approx(3.0, rel=1e-9)   # the seed prints no digits for d


def test_deriv_matches_a_pure_python_float_computation():
    """The same numbers from bare floats: our ops add nothing to IEEE arithmetic."""
    def L(a=10.0, e_bump=0.0, f=3.0):
        return ((a * 3.0 + -2.0) + e_bump) * f
    assert deriv(da=H) == (L(a=10.0 + H) - L()) / H
    assert deriv(de=H) == (L(e_bump=H) - L()) / H
    assert deriv(df=H) == (L(f=3.0 + H) - L()) / H


class Neuron:
    """The seed's Neuron, verbatim (it draws its weights from numpy's global generator)."""

    def __init__(self, nin, nonlin=True):
        self.w = [Value(np.random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed_neuron(seed):
    np.random.seed(seed)
    x = [Value(1.0, name="x1"), Value(-3.4, label="x2"), Value(2.4, name="x3")]
    n = Neuron(3, nonlin=False)
    y = n(x)
    y.name = "y"
    w = [wi.data for wi in n.w]
    assert all(type(wi.data) is float and -1 <= wi.data <= 1 for wi in n.w)
    assert y.data == ((0.0 + w[0] * 1.0) + w[1] * -3.4) + w[2] * 2.4
    assert y._op == "+"
    assert [v.name for v in x] == ["x1", "x2", "x3"] and [v.label for v in x] == ["x1", "x2", "x3"]
    y.backward()
    assert [wi.grad for wi in n.w] == [1.0, -3.4, 2.4]
    assert [xi.grad for xi in x] == w
    assert n.b.grad == 1.0 and y.grad == 1.0 and y.label == "y"


def test_seed_neuron_relu_and_library_neuron_agree():
    """The library's Neuron is the seed's with random.uniform: same graph, same grads."""
    from autograd.nn import Neuron as LibNeuron
    random.seed(5)
    lib = LibNeuron(3, nonlin=True)
    seed_n = Neuron(3, nonlin=True)
    for wa, wb in zip(seed_n.w, lib.w):
        wa.data = wb.data
    x = [1.0, -3.4, 2.4]
    ya, yb = seed_n(x), lib(x)
    assert ya.data == yb.data and ya._op == yb._op == "ReLU"
    ya.backward()
    yb.backward()
    assert [w.grad for w in seed_n.w] == [w.grad for w in lib.w]
