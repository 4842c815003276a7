"""Differential tests against micrograd 0.1.0: the same random programs and the same
MLP training run on micrograd's Value and on ours give the same numbers.

Our - and / are single nodes where micrograd builds a + (b * -1) and a * b**-1, so
values may differ in the last bits: we compare with a relative tolerance of 1e-9.
"""
import random

import pytest
from micrograd.engine import Value as MgValue
from micrograd.nn import MLP as MgMLP

from autograd import Value
from autograd.datasets import make_moons
from autograd.nn import MLP

N_PROGRAMS = 400
N_SAME_STRUCTURE = 150


def _compare(ours, theirs, close, what):
    assert len(ours) == len(theirs)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        close(o.data, t.data, what=f"{what} node {k} data")
        close(o.grad, t.grad, what=f"{what} node {k} grad")


@pytest.mark.parametrize("seed", range(N_PROGRAMS))
def test_random_program_one_backward(seed, programs, close):
    prog = programs.make(seed, programs.MICROGRAD_OPS)
    ours = programs.run(prog, Value)
    theirs = programs.run(prog, MgValue)
    _compare(ours, theirs, close, f"{prog} before backward")
    ours[-1].backward()
    theirs[-1].backward()
    # every node: leaves, interior nodes (each of ours vs micrograd's last node of the
    # same expression) and the output
    _compare(ours, theirs, close, f"{prog} after backward")


@pytest.mark.parametrize("seed", range(N_SAME_STRUCTURE))
def test_random_program_two_backwards_same_structure(seed, programs, close):
    prog = programs.make(10_000 + seed, programs.SAME_STRUCTURE_OPS)
    ours = programs.run(prog, Value)
    theirs = programs.run(prog, MgValue)
    for k in range(2):          # grads accumulate across calls, interior nodes too
        ours[-1].backward()
        theirs[-1].backward()
        _compare(ours, theirs, close, f"{prog} after backward #{k + 1}")


def test_programs_cover_every_op(programs):
    """The generator really produces every op micrograd has, and DAGs (reused nodes)."""
    seen, reused, twice = set(), 0, 0
    for seed in range(N_PROGRAMS):
        prog = programs.make(seed, programs.MICROGRAD_OPS)
        seen.update(op for op, _, _ in prog.steps)
        uses = [i for _, args, _ in prog.steps[:-1] for i in args]
        reused += len(uses) != len(set(uses))
        twice += any(len(args) == 2 and args[0] == args[1] for _, args, _ in prog.steps)
    assert seen == set(programs.MICROGRAD_OPS)
    assert reused > N_PROGRAMS // 2 and twice > 10
    exps = {c for seed in range(N_PROGRAMS)
            for op, _, c in programs.make(seed, programs.MICROGRAD_OPS).steps
            if op in ("powi", "powf")}
    assert {-2, -1, 2, 3, 0.5, -0.5} <= exps


@pytest.mark.parametrize("expr", [
    lambda a, b: a - b, lambda a, b: a / b, lambda a, b: 2 - a, lambda a, b: 2 / a,
    lambda a, b: -a * b, lambda a, b: a ** -1 + b ** 0.5, lambda a, b: (a * b).relu(),
    lambda a, b: sum([a, b, a * b]), lambda a, b: 3 + a * 2.5 + b * a,
])
def test_small_expressions(expr, close):
    a, b = Value(1.7), Value(2.3)
    ma, mb = MgValue(1.7), MgValue(2.3)
    out, mout = expr(a, b), expr(ma, mb)
    close(out.data, mout.data)
    out.backward()
    mout.backward()
    close(a.grad, ma.grad)
    close(b.grad, mb.grad)


def test_mlp_training_parity(moons_loss, close):
    """micrograd's demo (MLP(2, [16, 16, 1]), max-margin loss, SGD with a decaying rate)
    on both engines: the same weights, losses and parameters at every step."""
    X, y = make_moons(n_samples=30, noise=0.1, seed=1)
    X, y = X.tolist(), y.tolist()
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    random.seed(1337)
    mg_model = MgMLP(2, [16, 16, 1])
    params, mg_params = model.parameters(), mg_model.parameters()
    assert len(params) == len(mg_params) == 337
    assert [p.data for p in params] == [p.data for p in mg_params]
    losses = []
    for k in range(5):
        loss = moons_loss(model, X, y, Value)
        mg_loss = moons_loss(mg_model, X, y, MgValue)
        close(loss.data, mg_loss.data, what=f"loss at step {k}")
        losses.append(loss.data)
        model.zero_grad()
        mg_model.zero_grad()
        loss.backward()
        mg_loss.backward()
        lr = 1.0 - 0.9 * k / 100
        for i, (p, q) in enumerate(zip(params, mg_params)):
            close(p.grad, q.grad, what=f"grad of parameter {i} at step {k}")
            p.data -= lr * p.grad
            q.data -= lr * q.grad
        for i, (p, q) in enumerate(zip(params, mg_params)):
            close(p.data, q.data, what=f"parameter {i} after step {k}")
    assert losses[-1] < losses[0]       # it trained: the comparison was not vacuous
