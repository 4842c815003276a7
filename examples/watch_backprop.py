"""Watch backpropagation, step by step: the seed tutorial's L = (a*b + d) * f and
the lecture's tanh neuron, each as a page with a slider and a play button.

    python examples/watch_backprop.py [--out DIR]     # writes DIR/seed.html, DIR/neuron.html

Each frame is the graph after one more node's ``_backward`` (light blue: the
node whose chain rule ran; gold: the grads it changed), in the order
``backward()`` runs them. Needs Graphviz's ``dot``. In Jupyter, the last
expression ``watch_backward(L)`` shows the same player inline.
"""
import argparse
import os
import sys

from autograd import Value
from autograd.viz import watch_backward


def seed_example():
    """The seed's expression (figures bp4-bp6): L = (a*b + d) * f."""
    a = Value(10.0, name="a")
    b = Value(3.0, name="b")
    c = a * b; c.name = "c"
    d = Value(-2.0, name="d")
    e = c + d; e.name = "e"
    f = Value(3.0, name="f")
    L = e * f; L.name = "L"
    return L


def lecture_neuron():
    """The lecture's neuron: o = tanh(x1*w1 + x2*w2 + b)."""
    x1 = Value(2.0, name="x1"); x2 = Value(0.0, name="x2")
    w1 = Value(-3.0, name="w1"); w2 = Value(1.0, name="w2")
    b = Value(6.8813735870195432, name="b")
    x1w1 = x1 * w1; x1w1.name = "x1*w1"
    x2w2 = x2 * w2; x2w2.name = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2; x1w1x2w2.name = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b; n.name = "n"
    o = n.tanh(); o.name = "o"
    return o


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="watch_out", help="directory for the pages")
    args = parser.parse_args(argv)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        parser.error(f"cannot create --out {args.out!r}: {e.strerror}")
    for name, root in [("seed", seed_example()), ("neuron", lecture_neuron())]:
        frames = watch_backward(root)
        for frame in frames:
            print(f"{name}: {frame.title}")
        path = os.path.join(args.out, f"{name}.html")
        with open(path, "w", encoding="utf-8") as page:
            page.write(f"<!doctype html><meta charset='utf-8'><title>{name}</title>"
                       + frames.to_html())
        print(f"wrote {path} ({len(frames)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
