"""A user's script that touches every public name, for ``mypy --strict`` (CI runs it on
this file against the installed package) and for Python (tests/test_packaging.py runs it).

When the public API grows, use the new names here: mypy then checks their stubs or
annotations from a user's side, and stubtest checks the stubs against the runtime.
"""
import math
import random

import autograd
import autograd.math as am
import autograd.micrograd
from autograd import (CustomValue, GradcheckError, Graph, Value, ValueVector, draw_dot, grad,
                      gradcheck, gradgradcheck, hessian, jacobian, trace)
from autograd.functional import jacobian as jacobian_of
from autograd.engine import dot, graph_size
from autograd.nn import MLP, Layer, Module, Neuron


def softplus(x: Value) -> Value:
    """A custom op, micrograd's way."""
    out = Value(math.log1p(math.exp(x.data)), (x,), "softplus")

    def _backward() -> None:
        x.grad += (1 / (1 + math.exp(-x.data))) * out.grad

    out._backward = _backward
    return out


def main() -> None:
    version: str = autograd.__version__
    assert version

    # micrograd's Value
    a = Value(-4.0, name="a")
    b = Value(2.0, label="b")
    c = a + b * 2 - 1 / b + (-a) ** 2 + 2 ** b
    d = (c * a).relu() + c.tanh() + b.exp() + b.log() + a.sigmoid() + (-a) ** b
    d.backward()
    grads: list[float] = [a.grad, b.grad]
    assert all(math.isfinite(g) for g in grads)
    assert d._op == "+" and (a * b)._prev == {a, b}
    step = d._backward
    step()

    # a custom op
    s = softplus(a)
    assert isinstance(s, CustomValue)
    s.backward()

    # micrograd's nn
    random.seed(1337)
    model = MLP(2, [4, 1])
    layer: Module = Layer(2, 3)
    neuron = Neuron(2, nonlin=False)
    xs: list[list[float]] = [[0.5, -1.0], [1.5, 2.0]]
    scores = [model(x) for x in xs]
    loss = sum(((1 + -yi * si).relu() for yi, si in zip([1.0, -1.0], scores)), Value(0.0))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
    assert len(layer.parameters()) == 9
    assert isinstance(neuron(xs[0]), Value)
    n: int = graph_size(loss)
    assert n > 0
    w = dot([Value(1.0), Value(2.0)], [3.0, Value(4.0)], Value(0.5))
    assert w.data == 11.5

    # replay
    params = ValueVector(model.parameters())
    g = Graph(loss)
    for _ in range(3):
        params.zero_grad()
        g.forward()
        g.backward()
        params.sgd_step(0.05)
    assert len(g) > 0 and len(params) == len(model.parameters())
    params.data = params.data * 1.0
    assert params.grad.shape == (len(params),)

    # derivatives of any order
    x = Value(1.5)
    (dx,) = grad(x ** 3, x, create_graph=True)
    assert dx is not None
    (ddx,) = grad(dx, [x])
    assert ddx is not None and ddx.data == 9.0
    h: list[list[float]] = hessian(lambda u, v: u * u * v, [1.0, 2.0])
    assert h == [[4.0, 2.0], [2.0, 0.0]]
    assert gradgradcheck(lambda u: u.tanh() * u, [Value(0.3)])
    jac: list[list[float]] = jacobian([x * x, x + 1], [x])
    assert jac == [[3.0], [1.0]]
    assert jacobian(x * x, x, as_array=True).shape == (1, 1)
    jac_f: list[list[float]] = jacobian_of(lambda u, v: [u * v], [2.0, 3.0])
    assert jac_f == [[3.0, 2.0]]
    assert jacobian_of(lambda u: u * u, 2.0, as_array=True).tolist() == [[4.0]]

    # autograd.math: Values in, Values out; numbers in, math's numbers out
    t = Value(0.4)
    price: Value = am.sin(t) * am.exp(-t) + am.sqrt(t) + am.erf(t) + am.atan2(t, 1.0)
    price = price + am.log(t, 2) + am.pow(t, 2) + am.hypot(t, 2.0) * am.pi + am.floor(t)
    price = price + abs(t) + t.sin() + t.abs() + max(t, Value(0.1)) + am.lgamma(t)
    plain: float = am.sin(0.4) + am.atan2(1, 2.0) + am.log(8, 2)
    whole: int = am.floor(2.5)
    price.backward()
    assert t.grad > 0 and plain > 0 and whole == 2 and f"{t:.2f}" == "0.40"
    assert (t < 1) and sorted([Value(2.0), t])[0] is t

    # micrograd's class, extended as a tutorial does
    setattr(x, "color", "red")
    assert getattr(x, "color") == "red" and vars(x) == {"color": "red"}
    x._op = "input"
    alias_on: bool = autograd.micrograd.is_installed()
    assert alias_on in (True, False)

    # look at it, check it
    nodes, edges = trace(loss)
    assert loss in nodes and len(edges) >= len(nodes) - 1
    source: str = draw_dot(c, rankdir="TB", max_nodes=100).source
    assert "digraph" in source
    assert gradcheck(lambda x, y: (x * y).tanh() + y ** 2, [Value(0.5), Value(-1.5)])
    try:
        gradcheck(lambda x: Value(x.data ** 2, (x,), "sq"), Value(3.0), atol=1e-9)
    except GradcheckError as e:
        message: str = str(e)
        assert "input 0" in message
    else:
        raise AssertionError("gradcheck missed a custom op without _backward")


if __name__ == "__main__":
    main()
    print("ok")
