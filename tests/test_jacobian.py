"""``autograd.jacobian`` and ``autograd.functional.jacobian`` (issue 16).

Differential: random programs over every op against torch float64's
``torch.autograd.functional.jacobian``; row by row against ``grad()`` bit for bit
(a one-hot ``grad_outputs`` over the same outputs; ``grad(outputs[i])`` alone where
the outputs share only leaves); no ``.grad`` changes; custom ops; errors.
"""
import gc
import math
import random

import numpy as np
import pytest

import autograd
import autograd.functional
import autograd.math as am
from autograd import Value, grad, jacobian
from autograd._core import arena_stats

pytestmark = pytest.mark.requires("torch")

N_PROGRAMS = 80


def _torch():
    import torch
    return torch


class _TensorMeta(type):
    def __instancecheck__(cls, x):
        return isinstance(x, _torch().Tensor)


class T(metaclass=_TensorMeta):
    """A leaf maker for `run_program`: 0-dim float64 tensors (and tensors pass as leaves)."""
    def __new__(cls, x):
        return _torch().tensor(float(x), dtype=_torch().float64, requires_grad=True)


def _bits(a, b):
    """Bit for bit (nan equals nan, -0.0 differs from 0.0)."""
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                  math.copysign(1, b))


def _pick_outputs(rng, n_nodes, n_leaves):
    """Some nodes of a program as outputs: its final sum and 1 to 4 others."""
    others = rng.sample(range(n_leaves, n_nodes - 1), min(rng.randint(1, 4),
                                                          n_nodes - 1 - n_leaves))
    return [n_nodes - 1] + others


def _grad_numbers(outputs, inputs, **kw):
    return [0.0 if g is None else g.data for g in grad(outputs, inputs, allow_unused=True, **kw)]


@pytest.mark.parametrize("seed", range(N_PROGRAMS))
def test_random_programs_against_torch_functional_jacobian(seed, programs):
    torch = _torch()
    prog = programs.make(90_000 + seed, programs.ALL_OPS)
    rng = random.Random(seed)
    nodes = programs.run(prog, Value)
    n = len(prog.leaves)
    picked = _pick_outputs(rng, len(nodes), n)
    outs, xs = [nodes[k] for k in picked], nodes[:n]

    def f(*leaves):
        ts = programs.run(prog, T, leaf_data=list(leaves))
        return tuple(ts[k] for k in picked)

    expected = torch.autograd.functional.jacobian(
        f, tuple(torch.tensor(float(x), dtype=torch.float64) for x in prog.leaves))
    ours = jacobian(outs, xs, allow_unused=True)
    assert len(ours) == len(outs) and all(len(row) == n for row in ours)
    for i in range(len(outs)):
        scale = max([1.0] + [abs(float(t)) for t in expected[i]])
        for j in range(n):
            assert abs(ours[i][j] - float(expected[i][j])) <= 1e-9 * scale, \
                f"{prog!r} J[{i}][{j}]: ours {ours[i][j]!r}, torch {float(expected[i][j])!r}"
    # the functional form, on numbers, gives the same matrix
    assert autograd.functional.jacobian(lambda *ls: list(f_ours(prog, programs, ls, picked)),
                                        [float(x) for x in prog.leaves]) == ours


def f_ours(prog, programs, leaves, picked):
    nodes = programs.run(prog, Value, leaf_data=list(leaves))
    return [nodes[k] for k in picked]


@pytest.mark.parametrize("seed", range(N_PROGRAMS))
def test_rows_are_one_hot_grads_bit_for_bit(seed, programs):
    """Row i is grad(outputs, inputs, grad_outputs=e_i): the same order, steps and sums.
    The inputs include intermediate nodes."""
    prog = programs.make(91_000 + seed, programs.ALL_OPS)
    rng = random.Random(seed)
    nodes = programs.run(prog, Value)
    n = len(prog.leaves)
    outs = [nodes[k] for k in _pick_outputs(rng, len(nodes), n)]
    ins = nodes[:n] + rng.sample(nodes[n:-1], min(2, len(nodes) - n - 1))
    rng.shuffle(ins)
    ours = jacobian(outs, ins, allow_unused=True)
    for i in range(len(outs)):
        one_hot = [1.0 if k == i else 0.0 for k in range(len(outs))]
        expected = _grad_numbers(outs, ins, grad_outputs=one_hot)
        for j in range(len(ins)):
            assert _bits(ours[i][j], expected[j]), f"{prog!r} J[{i}][{j}]"
        # and grad(outputs[i]) alone, up to the order of the sums at shared nodes
        alone = _grad_numbers(outs[i], ins)
        for j in range(len(ins)):
            assert math.isclose(ours[i][j], alone[j], rel_tol=1e-12, abs_tol=1e-12), \
                f"{prog!r} J[{i}][{j}]"


@pytest.mark.parametrize("seed", range(40))
def test_outputs_sharing_only_leaves_equal_grad_of_each_bit_for_bit(seed, programs):
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(0.3, 2.0)) for _ in range(4)]
    outs = []
    k = 0
    while len(outs) < 3:        # programs drawn for other leaves: those that run on these
        k += 1
        prog = programs.make(92_000 + 100 * seed + k, programs.ALL_OPS, n_leaves=4)
        try:
            outs.append(programs.run(prog, Value, leaf_data=leaves)[-1])
        except (ArithmeticError, ValueError):
            continue
    ours = jacobian(outs, leaves, allow_unused=True)
    for i in range(3):
        expected = _grad_numbers(outs[i], leaves)
        assert all(_bits(o, e) for o, e in zip(ours[i], expected)), (seed, i)


def test_no_grad_changes_and_no_node_is_kept(programs):
    prog = programs.make(93_000, programs.ALL_OPS)
    gc.collect()
    before = arena_stats()["live"]
    nodes = programs.run(prog, Value)
    rng = random.Random(0)
    for v in nodes:
        v.grad = rng.uniform(-5, 5)
    grads = [v.grad for v in nodes]
    jacobian(nodes[-3:], nodes[:4] + nodes[-5:-3], allow_unused=True)
    assert [v.grad for v in nodes] == grads
    del nodes, v
    gc.collect()
    assert arena_stats()["live"] == before


def test_example_and_shapes():
    x, y = Value(2.0), Value(3.0)
    assert jacobian([x * y, x + y, x * x], [x, y]) == [[3.0, 2.0], [1.0, 1.0], [4.0, 0.0]]
    assert jacobian(x * y, x) == [[3.0]]
    a = jacobian((x * y, x - y), (x, y), as_array=True)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (2, 2)
    assert a.tolist() == [[3.0, 2.0], [1.0, -1.0]]
    assert jacobian(x * y, [x, y], as_array=True).shape == (1, 2)
    # outputs and inputs may repeat; an output may be an input
    assert jacobian([x * y, x * y, x], [x, x, y]) == [[3.0, 3.0, 2.0], [3.0, 3.0, 2.0],
                                                      [1.0, 1.0, 0.0]]
    assert jacobian([x], [x]) == [[1.0]]
    assert jacobian([x, y], [x, y]) == [[1.0, 0.0], [0.0, 1.0]]


def test_math_functions_against_closed_forms():
    x, y = Value(0.7), Value(-1.3)
    outs = [am.sin(x) * am.cos(y), am.atan2(y, x), am.hypot(x, y), am.erf(x * y)]
    j = jacobian(outs, [x, y])
    a, b = 0.7, -1.3
    r2 = a * a + b * b
    expected = [[math.cos(a) * math.cos(b), -math.sin(a) * math.sin(b)],
                [-b / r2, a / r2],
                [a / math.sqrt(r2), b / math.sqrt(r2)],
                [2 / math.sqrt(math.pi) * math.exp(-(a * b) ** 2) * b,
                 2 / math.sqrt(math.pi) * math.exp(-(a * b) ** 2) * a]]
    for i in range(4):
        for k in range(2):
            assert math.isclose(j[i][k], expected[i][k], rel_tol=1e-13), (i, k)


def test_a_row_sees_only_its_own_paths():
    """A step the output does not reach is skipped: sqrt's infinite derivative at 0 in
    one output's graph puts no 0 * inf = nan in another's row (a one-hot grad would)."""
    x, y = Value(0.0), Value(1.5)
    u = am.sqrt(x)
    outs = [u + y, y * 2]
    assert jacobian(outs, [x, y]) == [[math.inf, 1.0], [0.0, 2.0]]
    assert math.isnan(_grad_numbers(outs, [x, y], grad_outputs=[0.0, 1.0])[0])
    assert _grad_numbers(outs[1], [x, y]) == [0.0, 2.0]


def softplus(x):
    out = Value(math.log1p(math.exp(x.data)), (x,), "softplus")

    def _backward():
        x.grad += (1 / (1 + math.exp(-x.data))) * out.grad

    out._backward = _backward
    return out


def test_custom_ops_run_their_backward(programs):
    x, y = Value(0.4), Value(-0.9)
    s = softplus(x * y)
    outs = [s * x, s + am.sin(y), x * y, softplus(y)]
    ours = jacobian(outs, [x, y])
    sig = 1 / (1 + math.exp(-(0.4 * -0.9)))
    sp = math.log1p(math.exp(0.4 * -0.9))
    expected = [[sp + 0.4 * sig * -0.9, 0.4 * sig * 0.4], [sig * -0.9, sig * 0.4 +
                                                            math.cos(-0.9)],
                [-0.9, 0.4], [0.0, 1 / (1 + math.exp(0.9))]]
    for i in range(4):
        for k in range(2):
            assert math.isclose(ours[i][k], expected[i][k], rel_tol=1e-14), (i, k)
        one_hot = [1.0 if m == i else 0.0 for m in range(4)]
        assert ours[i] == _grad_numbers(outs, [x, y], grad_outputs=one_hot)
    assert x.grad == 0.0 and y.grad == 0.0


def test_unused_inputs():
    x, y, z = Value(1.0), Value(2.0), Value(3.0)
    with pytest.raises(ValueError, match="input 1 is not in the graph.*allow_unused"):
        jacobian([x * y, x + 1], [x, z])
    assert jacobian([x * y, x + 1], [x, z, y], allow_unused=True) == [[2.0, 0.0, 1.0],
                                                                      [1.0, 0.0, 0.0]]
    # the functional form gives zeros, as torch's strict=False
    assert autograd.functional.jacobian(lambda a, b: [a * 2], [1.0, 2.0]) == [[2.0, 0.0]]


def test_bad_arguments():
    x = Value(1.0)
    with pytest.raises(ValueError, match="outputs is empty"):
        jacobian([], [x])
    with pytest.raises(ValueError, match="inputs is empty"):
        jacobian([x * 2], [])
    with pytest.raises(TypeError, match="outputs must be Values, not float"):
        jacobian([x * 2, 1.0], [x])
    with pytest.raises(TypeError, match="inputs must be Values, not int"):
        jacobian(x * 2, [x, 3])
    with pytest.raises(TypeError):
        jacobian(x * 2, x, True)        # the options are keyword-only
    with pytest.raises(TypeError, match="f must return a Value or a sequence of Values"):
        autograd.functional.jacobian(lambda a: 2.0, [1.0])
    with pytest.raises(TypeError, match="f must return a Value or a sequence of Values"):
        autograd.functional.jacobian(lambda a: [a, 1.0], [1.0])


def test_functional_against_torch():
    torch = _torch()

    def f(r, theta, phi):
        return [r * am.sin(theta) * am.cos(phi), r * am.sin(theta) * am.sin(phi),
                r * am.cos(theta)]

    def tf(r, theta, phi):
        return (r * torch.sin(theta) * torch.cos(phi), r * torch.sin(theta) * torch.sin(phi),
                r * torch.cos(theta))

    point = (1.7, 0.6, -2.1)
    ours = autograd.functional.jacobian(f, point, as_array=True)
    theirs = torch.autograd.functional.jacobian(
        tf, tuple(torch.tensor(p, dtype=torch.float64) for p in point))
    expected = np.array([[float(t) for t in row] for row in theirs])
    assert ours.shape == (3, 3)
    assert np.allclose(ours, expected, rtol=1e-14, atol=1e-15)
