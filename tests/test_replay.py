"""Graph replay (issue 5): a recorded graph, replayed after its leaves change, gives the
data and grads of a freshly built graph; an MLP trained by replay follows eager
training exactly; ValueVector moves data and grads in bulk."""
import math
import random
import struct

import numpy as np
import pytest

from autograd import Graph, Value, ValueVector
from autograd.datasets import make_moons
from autograd.nn import MLP

TOL = dict(rel_tol=1e-12, abs_tol=1e-12)


def assert_same(ours, fresh, what):
    assert math.isclose(ours.data, fresh.data, **TOL), f"{what} data {ours.data} != {fresh.data}"
    assert math.isclose(ours.grad, fresh.grad, **TOL), f"{what} grad {ours.grad} != {fresh.grad}"


# --- random programs ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(80))
def test_random_program_replay_equals_fresh_graph(seed, programs):
    prog = programs.make(90_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    n_leaves = len(prog.leaves)
    leaves = nodes[:n_leaves]
    g = Graph(nodes[-1])
    rng = random.Random(seed)
    replayed = 0
    for step in range(12):
        # the first step replays the recorded values; then the leaves move
        # (by up to 10%: the domains of acos, atanh, ... are narrow)
        new = [x * (1 + 0.1 * rng.uniform(-1, 1)) if step else x for x in prog.leaves]
        try:
            fresh = programs.run(prog, Value, new)
        except (ArithmeticError, ValueError) as e:
            for leaf, x in zip(leaves, new):
                leaf.data = x
            with pytest.raises(type(e)):
                g.forward()
            continue
        fresh[-1].backward()
        for leaf, x in zip(leaves, new):
            leaf.data = x
            leaf.grad = 0.0
        g.forward()
        for k in range(n_leaves, len(nodes)):         # forward: data new, grads zeroed
            assert math.isclose(nodes[k].data, fresh[k].data, **TOL), (prog, step, k)
            assert nodes[k].grad == 0.0
        g.backward()
        for k, (ours, theirs) in enumerate(zip(nodes, fresh)):
            assert_same(ours, theirs, f"{prog} step {step} node {k}")
        replayed += 1
    assert replayed >= 6


@pytest.mark.parametrize("seed", range(20))
def test_replay_backward_twice_accumulates_like_eager(seed, programs):
    prog = programs.make(95_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    g = Graph(nodes[-1])
    fresh = programs.run(prog, Value)
    for _ in range(2):
        g.backward()
        fresh[-1].backward()
    for k, (ours, theirs) in enumerate(zip(nodes, fresh)):
        assert_same(ours, theirs, f"node {k}")


def bits(x):
    return struct.pack("<d", x)


def assert_bits(ours, fresh, what):
    """The same double, bit for bit (nan's payload and 0.0's sign included)."""
    for field in ("data", "grad"):
        a, b = getattr(ours, field), getattr(fresh, field)
        assert bits(a) == bits(b), f"{what} {field} {a!r} != {b!r}"


def replay_against_fresh(nodes, leaves, build, new_leaf_data, passes=2):
    """Replay the Graph of nodes[-1] at new leaf data, `passes` backward passes, and
    compare every node, bit for bit, with a graph freshly built there and
    backpropagated eagerly as often."""
    g = Graph(nodes[-1])
    for leaf, x in zip(leaves, new_leaf_data):
        leaf.data = x
        leaf.grad = 0.0
    g.forward()
    fresh = build(new_leaf_data)
    for _ in range(passes):
        g.backward()
        fresh[-1].backward()
    assert len(fresh) == len(nodes)
    for k, (ours, theirs) in enumerate(zip(nodes, fresh)):
        assert_bits(ours, theirs, f"node {k}")


@pytest.mark.parametrize("seed", range(40))
def test_random_program_replay_is_eager_bit_for_bit(seed, programs):
    """Replay's loops read recently stored data and grads from registers: the very
    doubles the arena holds, so replay is eager's arithmetic exactly."""
    prog = programs.make(97_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    rng = random.Random(seed)
    new = [x * (1 + 0.05 * rng.uniform(-1, 1)) for x in prog.leaves]
    try:
        programs.run(prog, Value, new)
    except (ArithmeticError, ValueError):
        new = list(prog.leaves)
    replay_against_fresh(nodes, nodes[:len(prog.leaves)],
                         lambda data: programs.run(prog, Value, data), new)


def chain_programs():
    """Chains where each node reads the one just computed, once or twice (x * x),
    as lhs or rhs, with a leaf used at every step (its grad accumulates)."""
    def pendulum(x, steps=60):
        length, theta = x
        decay = 0.01 * 9.81 / length
        omega = 0.0
        out = [length, theta]
        for _ in range(steps):
            omega = omega - decay * theta.sin()
            theta = theta + 0.01 * omega
            out += [omega, theta]
        return out

    def squares(x):
        a, b = x
        out = [a, b]
        y = a
        for _ in range(30):
            y = (y * y).cos() * b      # y * y: one node as both operands
            y = b + y                  # the previous node as rhs
            out += [y]
        return out

    def mixed(x):
        a, b = x
        out = [a, b]
        y = a
        for k in range(40):
            y = y.tanh() / b if k % 3 else (b - y.exp()).sigmoid() ** 2
            out += [y]
        return out
    return {"pendulum": (pendulum, [1.5, 1.0], [1.3, 0.9]),
            "squares": (squares, [0.7, 0.3], [0.6, 0.35]),
            "mixed": (mixed, [0.2, 1.7], [-0.3, 1.6])}


@pytest.mark.parametrize("name", sorted(chain_programs()))
def test_chain_replay_is_eager_bit_for_bit(name):
    program, recorded, new = chain_programs()[name]
    leaves = [Value(x) for x in recorded]
    nodes = program(leaves)

    def build(data):
        return program([Value(x) for x in data])
    replay_against_fresh(nodes, leaves, build, new, passes=3)


def test_graph_leaves_keep_grads_and_root_grad_is_overwritten():
    x = Value(2.0)
    y = x * x + 1
    g = Graph(y)
    g.backward()
    assert (x.grad, y.grad) == (4.0, 1.0)
    y.grad = 7.0
    x.data = 3.0
    g.forward()
    assert y.data == 10.0 and y.grad == 0.0 and x.grad == 4.0    # x is a leaf: kept
    g.backward()
    assert y.grad == 1.0 and x.grad == 4.0 + 6.0
    assert len(g) == 4 and repr(g) == "Graph(4 nodes)"     # x, x*x, the constant 1, +


def test_graph_of_a_leaf():
    x = Value(2.0)
    g = Graph(x)
    g.forward()
    assert x.data == 2.0
    g.backward()
    assert x.grad == 1.0


def test_graph_keeps_its_nodes_alive():
    x = Value(2.0)
    g = Graph((x * 3).exp())
    x.data = 0.5
    g.forward()
    g.backward()
    assert math.isclose(x.grad, 3 * math.exp(1.5), rel_tol=1e-15)


def test_relu_branch_replays():
    """relu's branch is part of its op: replay follows the data across the kink."""
    x = Value(1.0)
    y = (x * 2).relu()
    g = Graph(y)
    for v, data, grad in [(-1.0, 0.0, 0.0), (3.0, 6.0, 2.0), (-0.5, 0.0, 0.0)]:
        x.data, x.grad = v, 0.0
        g.forward()
        g.backward()
        assert (y.data, x.grad) == (data, grad)


# --- forward errors during replay ---------------------------------------------------------

@pytest.mark.parametrize("build, bad, exc", [
    (lambda x: 1 / x, 0.0, ZeroDivisionError),
    (lambda x: (x + 1) / (x - 2), 2.0, ZeroDivisionError),
    (lambda x: x ** -1, 0.0, ZeroDivisionError),
    (lambda x: x.log(), -1.0, ValueError),
    (lambda x: x ** 0.5, -4.0, ValueError),
    (lambda x: x ** Value(0.5), -4.0, ValueError),
    (lambda x: x.exp(), 1000.0, OverflowError),
    (lambda x: (x * 2) ** 2, 1e200, OverflowError),
    (lambda x: x ** Value(2.0), 1e200, OverflowError),
    (lambda x: 10 ** x, 400.0, OverflowError),
])
def test_replay_forward_errors(build, bad, exc):
    x = Value(1.5)
    y = build(x) * 3
    g = Graph(y)
    x.data = bad
    with pytest.raises(exc):
        g.forward()
    x.data = 1.5                       # the graph is still usable
    g.forward()
    x.grad = 0.0
    g.backward()
    fresh_x = Value(1.5)
    fresh = build(fresh_x) * 3
    fresh.backward()
    assert y.data == fresh.data and x.grad == fresh_x.grad


# --- custom ops ------------------------------------------------------------------------------

def my_tanh(x):
    out = Value(math.tanh(x.data), (x,), "my_tanh")

    def _backward():
        x.grad += (1 - out.data ** 2) * out.grad
    out._backward = _backward
    return out


def test_custom_op_without_forward_cannot_replay():
    x = Value(0.3)
    y = my_tanh(x * 2) + 1
    with pytest.raises(ValueError, match="my_tanh"):
        Graph(y)
    y.backward()                       # eager backward is still fine
    assert math.isclose(x.grad, 2 * (1 - math.tanh(0.6) ** 2), rel_tol=1e-15)


def test_custom_op_with_forward_replays():
    x = Value(0.3)
    h = x * 2
    t = my_tanh(h)

    def _forward():
        t.data = math.tanh(h.data)
    t._forward = _forward
    y = t * t + x
    g = Graph(y)
    for v in (0.3, -0.8, 1.7):
        x.data, x.grad = v, 0.0
        g.forward()
        assert t.grad == 0.0
        g.backward()
        fx = Value(v)
        fy = my_tanh(fx * 2)
        fy = fy * fy + fx
        fy.backward()
        assert math.isclose(y.data, fy.data, **TOL) and math.isclose(x.grad, fx.grad, **TOL)


# --- the MLP demo ---------------------------------------------------------------------------

def _model():
    random.seed(1337)
    return MLP(2, [16, 16, 1])


def test_mlp_replay_with_new_inputs_equals_fresh(moons_loss):
    X, y = make_moons(n_samples=30, noise=0.1, seed=1)
    model = _model()
    inputs = [[Value(x) for x in row] for row in X.tolist()]
    loss = moons_loss(model, inputs, y.tolist(), lambda v: v)
    g = Graph(loss)
    params = ValueVector(model.parameters())
    xs = ValueVector([v for row in inputs for v in row])
    for seed in (2, 3, 4):
        X2, _ = make_moons(n_samples=30, noise=0.2, seed=seed)
        xs.data = X2.ravel()
        params.zero_grad()
        g.forward()
        g.backward()
        fresh_model = _model()
        fresh = moons_loss(fresh_model, X2.tolist(), y.tolist(), Value)
        fresh.backward()
        assert math.isclose(loss.data, fresh.data, **TOL)
        np.testing.assert_allclose(params.grad, [p.grad for p in fresh_model.parameters()],
                                   rtol=1e-12, atol=1e-12)


def test_mlp_trained_by_replay_follows_eager_training(moons_loss):
    X, y = make_moons(n_samples=30, noise=0.1, seed=1)
    X, y = X.tolist(), y.tolist()
    steps = 25

    eager = _model()
    eager_losses = []
    for k in range(steps):
        loss = moons_loss(eager, X, y, Value)
        eager.zero_grad()
        loss.backward()
        eager_losses.append(loss.data)
        for p in eager.parameters():
            p.data -= (1.0 - 0.9 * k / 100) * p.grad

    model = _model()
    loss = moons_loss(model, X, y, Value)
    g = Graph(loss)
    params = ValueVector(model.parameters())
    replay_losses = []
    for k in range(steps):
        g.forward()
        params.zero_grad()
        g.backward()
        replay_losses.append(loss.data)
        params.sgd_step(1.0 - 0.9 * k / 100)

    assert replay_losses == eager_losses
    assert [p.data for p in model.parameters()] == [p.data for p in eager.parameters()]
    assert eager_losses[-1] < eager_losses[0]


# --- ValueVector ---------------------------------------------------------------------------

def test_value_vector_get_set():
    vals = [Value(float(i)) for i in range(4)]
    vv = ValueVector(vals)
    assert len(vv) == 4 and repr(vv) == "ValueVector(4 values)"
    d = vv.data
    assert d.dtype == np.float64 and d.tolist() == [0.0, 1.0, 2.0, 3.0]
    d[0] = 99.0                                  # a copy: the Values do not change
    assert vals[0].data == 0.0 and vv.data[0] == 0.0
    vv.data = np.array([4.0, 5.0, 6.0, 7.0])
    assert [v.data for v in vals] == [4.0, 5.0, 6.0, 7.0]
    vv.data = [1, 2, 3, 4]                       # any sequence of numbers
    assert [v.data for v in vals] == [1.0, 2.0, 3.0, 4.0]
    vv.data = np.arange(8.0)[::2]                # non-contiguous input
    assert [v.data for v in vals] == [0.0, 2.0, 4.0, 6.0]
    vv.grad = np.array([1.0, -1.0, 2.0, -2.0], dtype=np.float32)
    assert [v.grad for v in vals] == [1.0, -1.0, 2.0, -2.0]
    g = vv.grad
    g[:] = 0
    assert vals[0].grad == 1.0
    vv.sgd_step(0.5)
    assert [v.data for v in vals] == [-0.5, 2.5, 3.0, 7.0]
    vv.zero_grad()
    assert [v.grad for v in vals] == [0.0] * 4 and vv.grad.tolist() == [0.0] * 4
    vals[2].data = 10.0                          # the vector reads the live Values
    assert vv.data[2] == 10.0


@pytest.mark.parametrize("attr", ["data", "grad"])
@pytest.mark.parametrize("scalar", [0.5, 3, np.float64(-2.0), np.array(1.5)])
def test_value_vector_set_from_scalar(attr, scalar):
    """A scalar broadcasts to every Value."""
    vals = [Value(1.0) for _ in range(4)]
    vv = ValueVector(vals)
    setattr(vv, attr, scalar)
    assert [getattr(v, attr) for v in vals] == [float(scalar)] * 4
    assert getattr(vv, attr).tolist() == [float(scalar)] * 4


def test_value_vector_of_interior_nodes_and_duplicates():
    a = Value(1.0)
    b = a * 3
    vv = ValueVector([a, b, a])
    assert vv.data.tolist() == [1.0, 3.0, 1.0]
    vv.grad = [1.0, 2.0, 5.0]                    # duplicates: the last write wins
    assert a.grad == 5.0 and b.grad == 2.0
    empty = ValueVector([])
    assert len(empty) == 0 and empty.data.shape == (0,)
    empty.sgd_step(1.0)
    empty.zero_grad()


def test_value_vector_keeps_values_alive():
    vv = ValueVector([Value(2.0) * 3])
    assert vv.data.tolist() == [6.0]


@pytest.mark.parametrize("attr", ["data", "grad"])
@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros(5), np.zeros((4, 1)), np.zeros((2, 2)),
                                 [], [1.0, 2.0]])
def test_value_vector_shape_errors(attr, bad):
    vals = [Value(1.0) for _ in range(4)]
    vv = ValueVector(vals)
    with pytest.raises(ValueError):
        setattr(vv, attr, bad)
    assert [getattr(v, attr) for v in vals] == [1.0 if attr == "data" else 0.0] * 4


def test_value_vector_bad_values():
    vv = ValueVector([Value(1.0)])
    with pytest.raises((TypeError, ValueError)):
        vv.data = ["x"]
    with pytest.raises(TypeError):
        vv.sgd_step("0.1")
