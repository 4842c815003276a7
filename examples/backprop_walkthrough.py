"""The seed tutorial "Backpropagation 2/2", run on autograd's Value.

Every code block of the tutorial runs here, in its order, on ``autograd.Value``:
the manual ``deriv()`` checks, the hand-set grads, ``L._backward()`` step by step,
``backward()``, and the ``Neuron``. The tutorial's own ``class Value`` blocks are
its teaching code; a copy of them (``SeedValue``) runs the same steps, to show
that both classes compute the same grads. The tutorial's figures are written
as SVG::

    python examples/backprop_walkthrough.py [OUT_DIR]     # bp4.svg, bp5.svg, bp6.svg

OUT_DIR defaults to the current directory. Needs Graphviz's ``dot`` program.
"""
import argparse
import pathlib

import numpy as np

from autograd import Value, draw_dot

H = 0.001
NEURON_SEED = 1337      # the tutorial's Neuron draws np.random.uniform: seed it
NAMES = "abcdefL"

# What the tutorial prints (or, for d, says) for each deriv() variant.
SEED_SAYS = {"a": "9.000000000000341", "e": "3.0000000000001137", "f": "27.999999999991587",
             "c": "3.0000000000001137", "d": "3 (in its prose)"}


class SeedValue:
    """The tutorial's own Value (its last version, with ``backward``), verbatim."""

    def __init__(self, data, _children=(), _op="", name=""):
        self.data = data
        self.grad = 0.0
        self._prev = set(_children)
        self._backward = lambda: None
        self._op = _op
        self.name = name

    def __repr__(self):
        return f"Value(data={self.data})"

    def __add__(self, other):
        out = SeedValue(self.data + other.data, _children=(self, other), _op="+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward

        return out

    def __mul__(self, other):
        out = SeedValue(self.data * other.data, _children=(self, other), _op="*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward

        return out

    def backward(self):
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)

        self.grad = 1
        for v in reversed(topo):
            v._backward()


class Neuron:
    """The tutorial's Neuron, verbatim."""

    def __init__(self, nin, nonlin=True):
        self.w = [Value(np.random.uniform(-1,1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi*xi for wi,xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act


def expression(V=Value, bump="", h=0.0):
    """The tutorial's graph ``L = (a*b + d) * f``, as a dict of its named Values.

    The node named `bump` gets `h` added to its data as soon as it is made, so
    that everything computed from it sees the change: the tutorial's
    ``Value(10.0+h, name="a")`` and ``e.data = e.data + h``, for any node.
    """
    v = {}

    def named(value, name):
        value.name = name
        if name == bump:
            value.data = value.data + h
        v[name] = value
        return value

    a = named(V(10.0), "a")
    b = named(V(3.0), "b")
    c = named(a * b, "c")
    d = named(V(-2.0), "d")
    e = named(c + d, "e")
    f = named(V(3.0), "f")
    named(e * f, "L")
    return v


def deriv(bump):
    """The tutorial's deriv(): dL/d(bump) by a forward difference with h = 0.001."""
    L1 = expression()["L"].data
    L2 = expression(bump=bump, h=H)["L"].data
    slope = (L2 - L1) / H
    print(f"deriv() with h added to {bump}: {slope!r}   (the tutorial: {SEED_SAYS[bump]})")
    return slope


def grads(v):
    return "  ".join(f"{name}.grad={v[name].grad!r}" for name in NAMES if name in v)


def same_grads(ours, theirs):
    return all(ours[name].grad == theirs[name].grad for name in theirs)


def section(title):
    print(f"\n== {title} ==")


def save(dot, path):
    path.write_bytes(dot.pipe(format="svg"))
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=".", help="directory for the SVG figures")
    out = pathlib.Path(parser.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)

    section("Manual gradients: (f(x + h) - f(x)) / h")
    deriv("a")
    deriv("e")
    deriv("f")
    v = expression()                 # the graph of part 1/2
    v["L"].grad = 1.0
    v["e"].grad = 3.0
    v["f"].grad = 28.0
    deriv("c")
    deriv("d")

    section("All grads set by hand (figure bp4)")
    v["L"].grad = 1.0
    v["e"].grad = 3.0
    v["f"].grad = 28.0
    v["d"].grad = 3.0
    v["c"].grad = 3.0
    v["a"].grad = 9.0
    v["b"].grad = 30.0
    print(grads(v))
    save(draw_dot(v["L"]), out / "bp4.svg")

    section("The tutorial defines its own Value with _backward; we use autograd's")
    v = expression()                 # initialized again: every grad is 0
    print(grads(v))
    draw_dot(v["L"])

    section("L.grad = 1.0; L._backward() (figure bp5)")
    v["L"].grad = 1.0
    v["L"]._backward()
    print(grads(v))
    save(draw_dot(v["L"]), out / "bp5.svg")
    seed = expression(SeedValue)
    seed["L"].grad = 1.0
    seed["L"]._backward()
    print(f"same grads as the tutorial's Value: {same_grads(v, seed)}")

    section("f._backward(): f is a leaf, nothing changes")
    v["f"]._backward()               # the tutorial writes L._backward(); its prose means f
    print(grads(v))

    section("backward() in topological order: e.backward()")
    v = expression()
    del v["f"], v["L"]               # the tutorial builds a..e only
    v["e"].backward()
    print(grads(v))
    seed = expression(SeedValue)
    del seed["f"], seed["L"]
    seed["e"].backward()
    print(f"same grads as the tutorial's Value: {same_grads(v, seed)}")

    section(f"A Neuron, y.backward() (figure bp6; np.random.seed({NEURON_SEED}))")
    np.random.seed(NEURON_SEED)
    x = [Value(1.0), Value(-3.4), Value(2.4)]
    neuron = Neuron(3, nonlin=False)
    y = neuron(x)
    y.backward()
    print(f"y.data={y.data!r}")
    print("w.grad =", [w.grad for w in neuron.w])
    print("x.grad =", [xi.grad for xi in x])
    print(f"b.grad = {neuron.b.grad!r}")
    # y = w.x + b: dy/dw = x, dy/dx = w, dy/db = 1
    print("w.grad == x.data and x.grad == w.data:",
          all(w.grad == xi.data and xi.grad == w.data for w, xi in zip(neuron.w, x)))
    save(draw_dot(y), out / "bp6.svg")


if __name__ == "__main__":
    main()
