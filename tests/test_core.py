"""The core's own mechanisms: the nn fast path `dot`, the sweep's order, the arena."""
import math
import random

import pytest

from autograd import Graph, Value
from autograd._core import arena_stats, dot
from autograd.nn import MLP


def python_dot(ws, xs, b):
    return sum((wi * xi for wi, xi in zip(ws, xs)), b)


def structure(root):
    """The graph below root as a canonical nested tuple (op, data, sorted children)."""
    memo = {}
    stack = [root]
    while stack:                          # iterative: operands before results
        v = stack[-1]
        pending = [c for c in v._prev if c not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        memo[v] = (v._op, v.data, tuple(sorted((memo[c] for c in v._prev), key=repr)))
    return memo[root]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("inputs", ["values", "floats", "mixed"])
def test_dot_builds_micrograds_neuron_graph(seed, inputs):
    rng = random.Random(seed)
    n = rng.randrange(1, 12)
    ws = [Value(rng.uniform(-1, 1)) for _ in range(n)]
    b = Value(rng.uniform(-1, 1))
    raw = [rng.uniform(-3, 3) for _ in range(n)]
    xs = {"values": [Value(x) for x in raw], "floats": raw,
          "mixed": [Value(x) if k % 2 else x for k, x in enumerate(raw)]}[inputs]
    fast, slow = dot(ws, xs, b), python_dot(ws, xs, b)
    assert fast.data == slow.data
    assert structure(fast) == structure(slow)
    fast.backward()
    fast_grads = [v.grad for v in ws + [b]]
    for v in ws + [b]:
        v.grad = 0.0
    slow.backward()
    assert fast_grads == [v.grad for v in ws + [b]]


def test_dot_falls_back_to_python_for_anything_else():
    class Sub(Value):
        pass
    ws = [Value(2.0), Sub(3.0)]
    assert dot(ws, [1, 2], Value(1.0)).data == 9.0          # ints, a subclass
    assert dot(ws[:1], [Value(4.0)], 1.5).data == 9.5       # a number as start
    with pytest.raises(TypeError):
        dot([Value(1.0)], ["x"], Value(0.0))


def test_dot_of_nothing_is_its_start_as_sum():
    b = Value(1.0)
    assert dot([], [], b) is b
    assert dot([Value(1.0)], [], b) is b


def test_dot_frees_its_intermediate_nodes():
    base = arena_stats()["live"]
    ws = [Value(0.5) for _ in range(100)]
    xs = [Value(2.0) for _ in range(100)]
    out = dot(ws, xs, Value(0.0))
    assert arena_stats()["live"] == base + 100 + 100 + 1 + 200
    del out
    assert arena_stats()["live"] == base + 200
    del ws, xs
    assert arena_stats()["live"] == base


def test_mlp_uses_the_fast_path_and_matches_the_python_neuron():
    random.seed(3)
    model = MLP(3, [4, 4, 1])
    x = [Value(0.3), Value(-1.2), Value(2.0)]
    out = model(x)

    def python_model(x):
        for layer in model.layers:
            outs = []
            for n in layer.neurons:
                act = python_dot(n.w, x, n.b)
                outs.append(act.relu() if n.nonlin else act)
            x = outs[0] if len(outs) == 1 else outs
        return x
    assert structure(out) == structure(python_model(x))


def test_a_node_reached_by_paths_of_different_depths_gets_every_contribution():
    # r = (a*3)*a + (a*3): the interior node b = a*3 is an operand of r's
    # operands at two depths; the sweep must finish all of b's results first.
    for build in (lambda a, b: (b * a) + b, lambda a, b: b + (b * a),
                  lambda a, b: (b * a) * b, lambda a, b: ((b * a).tanh() + b) * b):
        a = Value(0.7)
        b = a * 3
        r = build(a, b)
        r.backward()
        h = 1e-6
        f = lambda x: build(Value(x), Value(x) * 3).data     # noqa: E731

        def g(x):
            av = Value(x)
            return build(av, av * 3).data
        numeric = (g(0.7 + h) - g(0.7 - h)) / (2 * h)
        assert math.isclose(a.grad, numeric, rel_tol=1e-6), (a.grad, numeric)
        del f


def test_graph_order_matches_eager_backward_bit_for_bit():
    random.seed(5)
    model = MLP(2, [8, 8, 1])
    xs = [[Value(random.uniform(-1, 1)) for _ in range(2)] for _ in range(20)]
    loss = sum((model(x) ** 2 for x in xs), Value(0.0))
    loss.backward()
    eager = [p.grad for p in model.parameters()]
    model.zero_grad()
    g = Graph(loss)
    g.forward()
    g.backward()
    assert [p.grad for p in model.parameters()] == eager


def test_freed_slots_are_reused():
    x = Value(1.0)
    for _ in range(3):
        y = x
        for _ in range(10_000):
            y = y * 1.0
        del y
    cap = arena_stats()["capacity"]
    for _ in range(20):
        y = x
        for _ in range(10_000):
            y = y * 1.0
        del y
    assert arena_stats()["capacity"] == cap


@pytest.mark.parametrize("seed", range(30))
def test_graph_size_counts_the_values_trace_finds(seed, programs):
    from autograd import trace
    from autograd._core import graph_size
    prog = programs.make(7_000 + seed, programs.ALL_OPS)
    root = programs.run(prog, Value)[-1]
    assert graph_size(root) == len(trace(root)[0])


def test_graph_size_of_a_deep_chain_is_counted_in_c():
    from autograd._core import graph_size
    x = Value(1.0)
    y = x
    for _ in range(200_000):
        y = y * 1.0 + 0.0
    assert graph_size(y) == 1 + 4 * 200_000
