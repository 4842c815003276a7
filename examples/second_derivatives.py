"""Second derivatives with autograd: Newton's method, and a Hessian-vector product
of micrograd's demo MLP.

    python examples/second_derivatives.py

1. Newton's method on Rosenbrock's function f(x, y) = (1 - x)**2 + 100 (y - x**2)**2:
   each step solves H d = -g with the gradient and Hessian that `grad` and `hessian`
   give, and reaches the minimum (1, 1) in a handful of steps, where gradient descent
   needs thousands.
2. The curvature of the demo's loss along a direction v: H v by double backward
   (`grad` of the gradient, weighted by v), checked against finite differences of
   first derivatives.
"""
import argparse
import random

from autograd import Value, grad, hessian
from autograd.datasets import make_moons
from autograd.nn import MLP


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def newton(f, point, steps=10):
    """Minimise f by Newton's method (2 unknowns: the 2x2 system solved by hand)."""
    for k in range(steps):
        xs = [Value(p) for p in point]
        g = [v.data for v in grad(f(*xs), xs)]
        (a, b), (c, d) = hessian(f, point)
        det = a * d - b * c
        step = [(d * g[0] - b * g[1]) / det, (a * g[1] - c * g[0]) / det]
        point = [p - s for p, s in zip(point, step)]
        print(f"  step {k + 1}: x = {point[0]:.12f}, y = {point[1]:.12f}, "
              f"f = {f(*map(Value, point)).data:.3e}")
        if max(abs(s) for s in step) < 1e-12:
            break
    return point


def demo_loss(model, X, y):
    """micrograd's demo loss: max-margin loss over the batch + 1e-4 L2."""
    scores = [model([Value(a), Value(b)]) for a, b in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    return data_loss + 1e-4 * sum(p * p for p in model.parameters())


def main():
    print("Newton's method on Rosenbrock's function, from (-1.2, 1):")
    x, y = newton(rosenbrock, [-1.2, 1.0])
    assert abs(x - 1) < 1e-9 and abs(y - 1) < 1e-9

    print("\nA Hessian-vector product of micrograd's demo loss:")
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    X, labels = make_moons(100, noise=0.1, seed=1)
    X, labels = X.tolist(), labels.tolist()      # labels in {-1, 1}
    v = [random.uniform(-1, 1) for _ in params]

    g = grad(demo_loss(model, X, labels), params, create_graph=True)   # graphs
    hv = [h.data for h in grad(g, params, grad_outputs=v)]             # H v
    curvature = sum(a * b for a, b in zip(v, hv))
    print(f"  {len(params)} parameters; v^T H v = {curvature:.9f}")

    # the same product from finite differences of first derivatives
    eps = 1e-6

    def gradient_at(shift):
        for p, vi, d in zip(params, v, base):
            p.data = d + shift * vi
        return [gi.data for gi in grad(demo_loss(model, X, labels), params)]

    base = [p.data for p in params]
    plus, minus = gradient_at(eps), gradient_at(-eps)
    gradient_at(0.0)
    fd = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
    err = max(abs(a - b) for a, b in zip(hv, fd)) / max(abs(b) for b in fd)
    print(f"  agrees with finite differences of the gradient to {err:.1e} (relative)")
    assert err < 1e-5


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                            epilog="Takes no options: it prints its two examples.").parse_args()
    main()
