"""watch_backward: the frames of backpropagation, against backward() and the seed's figures."""
import random
import xml.etree.ElementTree as ET

import pytest

from autograd import Value
from autograd._core import topological_order
from autograd.nn import Neuron
from autograd.viz import watch_backward


def seed_graph():
    """The seed tutorial's L = (a*b + d) * f, grads all zero."""
    a = Value(10.0, name="a")
    b = Value(3.0, name="b")
    c = a * b; c.name = "c"
    d = Value(-2.0, name="d")
    e = c + d; e.name = "e"
    f = Value(3.0, name="f")
    L = e * f; L.name = "L"
    return L


def by_name(frame):
    return {v.name: g for v, g in frame.grads.items()}


def test_seed_figures_bp5_and_bp4_are_frames():
    frames = watch_backward(seed_graph())
    assert by_name(frames[0]) == dict.fromkeys("Labcdef", 0.0)          # before: all 0
    assert by_name(frames[1]) == {**dict.fromkeys("abcdef", 0.0), "L": 1.0}
    # bp5: L.grad = 1.0, L._backward(): e and f have their grads, the rest 0
    assert by_name(frames[2]) == {"L": 1.0, "e": 3.0, "f": 28.0,
                                  "a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}
    # bp4: the seed's hand-computed grads, all filled in
    assert by_name(frames[-1]) == {"L": 1.0, "e": 3.0, "f": 28.0, "d": 3.0, "c": 3.0,
                                   "a": 9.0, "b": 30.0}
    assert len(frames) == 2 + 3                   # one frame per op: L, e, c
    assert [f.active.name for f in frames[1:]] == ["L", "L", "e", "c"]
    assert [sorted(v.name for v in f.changed) for f in frames[2:]] == [
        ["e", "f"], ["c", "d"], ["a", "b"]]


def test_seed_figure_bp6_neuron():
    # The seed's Neuron(3, nonlin=False) on x = [1.0, -3.4, 2.4]: y = w.x + b
    random.seed(0)
    x = [Value(1.0), Value(-3.4), Value(2.4)]
    n = Neuron(3, nonlin=False)
    y = n(x)
    last = watch_backward(y)[-1].grads
    for wi, xi in zip(n.w, x):
        assert last[wi] == xi.data and last[xi] == wi.data
    assert last[n.b] == 1.0


def twin_programs():
    """Pairs of identical random graphs (the same program run twice)."""
    for seed in range(30):
        def build(seed=seed):
            rng = random.Random(seed)
            xs = [Value(rng.uniform(-2, 2)) for _ in range(4)]
            pool = list(xs)
            for _ in range(rng.randint(3, 25)):
                a, b = rng.choice(pool), rng.choice(pool)
                op = rng.choice(["+", "*", "-", "tanh", "relu", "exp", "sigmoid", "**2"])
                pool.append({"+": lambda: a + b, "*": lambda: a * b, "-": lambda: a - b,
                             "tanh": a.tanh, "relu": a.relu, "exp": lambda: (a * 0.1).exp(),
                             "sigmoid": a.sigmoid, "**2": lambda: a ** 2}[op]())
            return sum(pool[-3:], pool[0])
        yield build


@pytest.mark.parametrize("build", list(twin_programs()))
def test_frames_match_backward_bit_for_bit(build):
    watched, plain = build(), build()
    frames = watch_backward(watched)
    plain.backward()
    order = topological_order(watched)
    twins = dict(zip(order, topological_order(plain)))
    # the last frame and the Values' grads afterwards: backward()'s numbers
    for v, g in frames[-1].grads.items():
        assert g == v.grad == twins[v].grad or (g != g and v.grad != v.grad)
    # every frame after the seed: one chain rule, in backward()'s order
    expected = [v for v in reversed(order) if v._op]
    assert [f.active for f in frames[2:]] == expected


def test_it_adds_to_grads_already_there_as_backward_does():
    L, twice = seed_graph(), seed_graph()
    L.backward()
    frames = watch_backward(L)
    twice.backward()
    twice.backward()
    assert by_name(frames[0])["a"] == 9.0 and by_name(frames[1])["L"] == 1.0
    # micrograd's semantics: L.grad is set to 1, every other grad accumulates
    assert by_name(frames[-1]) == {v.name: v.grad for v in topological_order(twice)}
    assert by_name(frames[-1])["a"] == 36.0


def test_pictures_colour_the_step():
    frames = watch_backward(seed_graph())
    source = frames[2].picture.source       # L._backward(): L active, e and f changed
    lines = [line for line in source.splitlines() if "fillcolor" in line]
    assert len(lines) == 3
    assert sum("lightblue" in line for line in lines) == 1 and "{ L |" in lines[0]


@pytest.mark.requires("dot")
def test_svgs_and_the_html_player():
    frames = watch_backward(seed_graph())
    svgs = frames.svgs()
    assert len(svgs) == 5
    texts = [t.text for t in ET.fromstring(svgs[-1]).iter("{http://www.w3.org/2000/svg}text")]
    assert "grad 30.0000" in texts and "grad 9.0000" in texts
    page = frames._repr_html_()
    assert page.count("<svg") == 5 and 'type="range"' in page and "setInterval" in page
    assert "L._backward(): the chain rule of '*' adds to f.grad, e.grad" in page
    assert "<script" in page and "src=" not in page.split("<script")[1].split(">")[0]


def test_refuses_big_graphs_with_advice():
    x = Value(0.5)
    for _ in range(300):
        x = x.tanh()
    with pytest.raises(ValueError, match="watch_backward\\(v\\) of an intermediate Value"):
        watch_backward(x)


def test_a_custom_op_without_forward_is_watched_as_backward_runs_it():
    # micrograd's way of writing an op: children, an _op and a Python _backward
    # (no _forward: Graph(...) would refuse to replay it; backward() runs it)
    def square(x, name):
        out = Value(x.data ** 2, (x,), "sq")
        out.name = name

        def _backward():
            x.grad += 2 * x.data * out.grad
        out._backward = _backward
        return out

    def build():
        a = Value(1.5, name="a")
        return square(a * 2.0, "s") + a

    watched, plain = build(), build()
    frames = watch_backward(watched)
    plain.backward()
    assert [v.grad for v in topological_order(watched)] == \
        [v.grad for v in topological_order(plain)]
    assert any("chain rule of 'sq'" in f.title for f in frames)
