"""micrograd's demo, on autograd: ``python -m autograd.demo``.

Trains ``MLP(2, [16, 16, 1])`` on 100 two-moons points with micrograd's
demo.ipynb loss (max-margin + 1e-4 L2) and learning-rate schedule, prints the
accuracy and the time per step (and micrograd's, when it is installed), and
writes the decision boundary (PNG, needs matplotlib) and one neuron's graph
(SVG, needs Graphviz's ``dot``) into ``--out``.

``--replay`` records the loss graph once and replays it each step in C
(``Graph`` + ``ValueVector``) instead of rebuilding it: the same losses, faster.

``--batch`` records one sample's loss and runs it for the 100 points at once in
lanes (``Lanes``): the same losses to 1e-12 (the sum over samples of the
parameters' gradients is the only reordering).
"""
import argparse
import math
import os
import pathlib
import random
import sys
import time

import graphviz
import numpy as np

from autograd.datasets import make_moons
from autograd._core import Lanes
from autograd.engine import Graph, Value, ValueVector
from autograd.nn import MLP
from autograd.viz import draw_dot

__all__ = ["loss", "accuracy", "learning_rate", "EagerTrainer", "ReplayTrainer", "BatchTrainer",
           "train", "live_neuron", "main"]

N_SAMPLES = 100
NOISE = 0.1
ALPHA = 1e-4                # L2 regularization strength
MICROGRAD_STEPS = 3         # micrograd takes ~0.1 s a step: a few are enough to time it


def loss(model, X, y, V=Value):
    """micrograd demo.ipynb's loss on the whole batch, with Value class `V`.

    Returns
    -------
    total_loss : V
        Mean max-margin loss ``relu(1 - y * score)`` plus ``ALPHA * sum(p * p)``.
    scores : list of V
        The model's output for each point.

    Examples
    --------
    >>> random.seed(0)
    >>> total, scores = loss(MLP(2, [4, 1]), [[0.5, -1.0]], [1.0])
    >>> len(scores), total.data > 0
    (1, True)
    """
    inputs = [list(map(V, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum((p * p for p in model.parameters()))
    return data_loss + reg_loss, scores


def accuracy(y, scores):
    """The fraction of points on the right side of the boundary (score > 0 for y > 0).

    Examples
    --------
    >>> accuracy([1.0, -1.0], [Value(0.3), Value(0.2)])
    0.5
    """
    return sum((yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)) / len(y)


def learning_rate(k, steps):
    """micrograd's schedule ``1.0 - 0.9 * k / 100``, stretched over `steps` steps.

    Examples
    --------
    >>> learning_rate(0, 100), learning_rate(50, 100)
    (1.0, 0.55)
    """
    return 1.0 - 0.9 * k / steps


class EagerTrainer:
    """micrograd's loop: build the loss graph, backward, update, every step.

    Works with any micrograd-style model and Value class `V` (micrograd's own too).

    Examples
    --------
    >>> random.seed(0)
    >>> trainer = EagerTrainer(MLP(2, [4, 1]), [[0.5, -1.0], [-0.5, 1.0]], [1.0, -1.0])
    >>> loss_before, acc = trainer.step(0.1)
    >>> trainer.evaluate()[0].data < loss_before
    True
    """

    mode = "eager"

    def __init__(self, model, X, y, V=Value):
        self.model, self.X, self.y, self.V = model, X, y, V

    def evaluate(self):
        """(total loss, scores) of the current parameters."""
        return loss(self.model, self.X, self.y, self.V)

    def step(self, lr):
        """One SGD step; returns the loss and accuracy before the update."""
        total_loss, scores = self.evaluate()
        self.model.zero_grad()
        total_loss.backward()
        for p in self.model.parameters():
            p.data -= lr * p.grad
        return total_loss.data, accuracy(self.y, scores)


class ReplayTrainer:
    """The loss graph recorded once; each step replays it in C.

    ``Graph.forward()`` recomputes every node from the current parameters (the
    demo's graph has no data-dependent Python control flow: relu's branch is
    inside its op), ``Graph.backward()`` backpropagates, and ``ValueVector``
    zeroes the grads and applies the update, all without building Values.

    Examples
    --------
    >>> random.seed(0)
    >>> trainer = ReplayTrainer(MLP(2, [4, 1]), [[0.5, -1.0], [-0.5, 1.0]], [1.0, -1.0])
    >>> loss_before, acc = trainer.step(0.1)
    >>> trainer.evaluate()[0].data < loss_before
    True
    """

    mode = "replay"

    def __init__(self, model, X, y):
        self.y = y
        self.total_loss, self.scores = loss(model, X, y)
        self.graph = Graph(self.total_loss)
        self.params = ValueVector(model.parameters())

    def evaluate(self):
        self.graph.forward()
        return self.total_loss, self.scores

    def step(self, lr):
        total_loss, scores = self.evaluate()
        self.params.zero_grad()
        self.graph.backward()
        result = total_loss.data, accuracy(self.y, scores)
        self.params.sgd_step(lr)
        return result


class BatchTrainer:
    """One sample's loss recorded once, run for every point at once in lanes.

    The graph of ``relu(1 - y * score) * (1 / N)`` for one point (inputs x0, x1
    and the label y) runs in C for the N points (``Lanes``): the scores and
    per-point losses come back as arrays, and the parameters' ``.grad`` receive
    the sum over points. The L2 term is a small graph of its own, replayed.
    The loss is ``sum(losses) * (1 / N) + reg`` as in micrograd, bit for bit;
    the gradients differ from the eager step's only in the order of the sum
    over points (about 1e-16 relative).

    Examples
    --------
    >>> random.seed(0)
    >>> trainer = BatchTrainer(MLP(2, [4, 1]), [[0.5, -1.0], [-0.5, 1.0]], [1.0, -1.0])
    >>> loss_before, acc = trainer.step(0.1)
    >>> trainer.evaluate()[0].data < loss_before
    True
    """

    mode = "batch"

    def __init__(self, model, X, y, threads=None):
        self.model, self.y = model, y
        self.values = [np.array([row[0] for row in X], dtype=np.float64),
                       np.array([row[1] for row in X], dtype=np.float64),
                       np.array(y, dtype=np.float64)]
        x0, x1, label = Value(0.0), Value(0.0), Value(1.0)
        self.score = model([x0, x1])
        self.hinge = (1 + -label * self.score).relu()
        sample_loss = self.hinge * (1.0 / len(y))
        self.lanes = Lanes(sample_loss, [x0, x1, label], outputs=[self.score, self.hinge],
                           threads=threads)
        self.reg_loss = ALPHA * sum((p * p for p in model.parameters()))
        self.reg_graph = Graph(self.reg_loss)
        self.params = ValueVector(model.parameters())

    def _run(self, backward):
        self.lanes.forward(self.values, backward=backward)
        self.reg_graph.forward()
        if backward:
            self.reg_graph.backward()
        total = self.lanes.sum(self.hinge) * (1.0 / len(self.y)) + self.reg_loss.data
        return total, self.lanes.data(self.score)

    def evaluate(self):
        """(total loss, scores) of the current parameters, as Values."""
        total, scores = self._run(False)
        return Value(total), [Value(s) for s in scores.tolist()]

    def step(self, lr):
        """One SGD step; returns the loss and accuracy before the update."""
        self.params.zero_grad()
        total, scores = self._run(True)
        acc = float(np.mean((self.values[2] > 0) == (scores > 0)))
        self.params.sgd_step(lr)
        return total, acc


def train(trainer, steps, progress=True):
    """Run `steps` SGD steps; returns the (loss, accuracy) of each and the seconds per step.

    With `progress`, prints each step's loss and accuracy as micrograd's notebook does
    (``step 0`` .. ``step 99``: the loss before the k-th update): on a terminal one line,
    rewritten with ``\\r``; into a file or a pipe (``| tee log``) one line per step.

    Examples
    --------
    >>> random.seed(0)
    >>> trainer = EagerTrainer(MLP(2, [4, 1]), [[0.5, -1.0], [-0.5, 1.0]], [1.0, -1.0])
    >>> history, seconds = train(trainer, 3, progress=False)
    >>> len(history)
    3
    """
    history = []
    rewrite = progress and sys.stdout.isatty()
    start = time.perf_counter()
    for k in range(steps):
        history.append(trainer.step(learning_rate(k, steps)))
        if progress:
            step_loss, acc = history[-1]
            line = f"step {k:>{len(str(steps - 1))}}  loss {step_loss:.10f}  accuracy {acc:.0%}"
            if rewrite:
                print("\r" + line, end="", flush=True)
            else:
                print(line, flush=True)
    seconds = (time.perf_counter() - start) / max(steps, 1)
    if rewrite:
        print()
    return history, seconds


def time_micrograd(X, y, seed, history):
    """micrograd's seconds per step on the same model, data and loop, or None if it
    is not installed; also whether its first losses agree with `history`'s."""
    try:
        from micrograd.engine import Value as MicrogradValue
        from micrograd.nn import MLP as MicrogradMLP
    except ImportError:
        return None, None
    random.seed(seed)           # the same weights: both MLPs draw random.uniform alike
    trainer = EagerTrainer(MicrogradMLP(2, [16, 16, 1]), X, y, MicrogradValue)
    steps = min(MICROGRAD_STEPS, len(history))
    start = time.perf_counter()
    theirs = [trainer.step(learning_rate(k, len(history)))[0] for k in range(steps)]
    seconds = (time.perf_counter() - start) / max(steps, 1)
    # backward sums grads in another order (micrograd's topological sort walks sets):
    # the same up to rounding
    agree = all(math.isclose(a, b, rel_tol=1e-9) for a, (b, _) in zip(theirs, history))
    return seconds, agree


def plot_decision_boundary(model, X, y, path):
    """micrograd's decision-boundary figure; False (with a note) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")       # files only: no window, no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no decision boundary picture "
              "(pip install 'arenagrad[demo]')")
        return False
    h = 0.25
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    Xmesh = np.c_[xx.ravel(), yy.ravel()]
    scores = [model(list(map(Value, xrow))) for xrow in Xmesh]
    Z = np.array([s.data > 0 for s in scores]).reshape(xx.shape)
    fig = plt.figure()
    plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    plt.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral)
    plt.xlim(xx.min(), xx.max())
    plt.ylim(yy.min(), yy.max())
    fig.savefig(path)
    plt.close(fig)
    return True


def live_neuron(model, X):
    """(neuron, point) of the first hidden layer whose ReLU passes a gradient: the first
    point of `X`, in order, on which some neuron's weighted sum is positive (a neuron
    whose sum is negative outputs 0 and sends back 0 to every input). Falls back to
    the first neuron on the first point when none is.

    Examples
    --------
    >>> random.seed(0)
    >>> model = MLP(2, [4, 1])
    >>> neuron, x = live_neuron(model, [[0.5, -1.0], [-0.5, 1.0]])
    >>> neuron(list(map(Value, x))).data > 0
    True
    """
    neurons = model.layers[0].neurons
    for x in X:
        for neuron in neurons:
            act = sum((w.data * float(xi) for w, xi in zip(neuron.w, x)), neuron.b.data)
            if act > 0:
                return neuron, x
    return neurons[0], X[0]


def draw_neuron(model, X, path):
    """The graph of a hidden neuron on a point of `X`, after its backward(): one whose
    ReLU is open there (`live_neuron`), so that the picture shows gradients flowing
    back to its weights, bias and inputs.

    Returns False (with a note) when Graphviz's ``dot`` program is missing."""
    neuron, x = live_neuron(model, X)
    for k, w in enumerate(neuron.w):
        w.name = f"w{k}"
    neuron.b.name = "b"
    out = neuron([Value(float(xi), name=f"x{k}") for k, xi in enumerate(x)])
    out.name = "out"
    neuron.zero_grad()
    out.backward()
    try:
        path.write_bytes(draw_dot(out).pipe(format="svg"))
    except graphviz.ExecutableNotFound:
        print("Graphviz's `dot` program is not installed: no neuron picture")
        return False
    return True


def main(argv=None):
    """The command line: ``python -m autograd.demo [--steps N] [--out DIR] [--seed S]
    [--replay | --batch]``."""
    parser = argparse.ArgumentParser(prog="python -m autograd.demo",
                                     description="micrograd's demo (two moons, MLP) on autograd")
    parser.add_argument("--steps", type=int, default=100, help="SGD steps (default 100)")
    parser.add_argument("--out", default="demo_out", help="directory for the pictures")
    parser.add_argument("--seed", type=int, default=1337,
                        help="seed of the data and the weights (default 1337, micrograd's)")
    parser.add_argument("--replay", action="store_true",
                        help="record the loss graph once and replay it in C each step")
    parser.add_argument("--batch", action="store_true",
                        help="record one sample's loss and run it for all points at once "
                             "in lanes (C, threads)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    out = pathlib.Path(args.out)
    # checked before training: a bad --out is a usage error, not a traceback at the end
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out}: not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.error(f"--out {args.out}: cannot create this directory ({e.strerror or e})")
    if not os.access(out, os.W_OK | os.X_OK):
        parser.error(f"--out {args.out}: cannot write into this directory")

    X, y = make_moons(N_SAMPLES, noise=NOISE, seed=args.seed)
    X_list, y_list = X.tolist(), y.tolist()     # Python floats, as micrograd's Value expects
    random.seed(args.seed)
    model = MLP(2, [16, 16, 1])
    trainer = (ReplayTrainer if args.replay else EagerTrainer)(model, X_list, y_list) \
        if not args.batch else BatchTrainer(model, X_list, y_list)
    how = ("the loss graph recorded once, replayed in C each step" if args.replay
           else "the graph rebuilt every step, as in micrograd")
    if args.batch:
        how = (f"one sample's loss recorded once ({len(trainer.lanes)} nodes), run for the "
               f"{N_SAMPLES} points in lanes on {trainer.lanes.threads} thread(s); losses "
               "equal eager's to 1e-12: the sum over samples is the only reordering")
    print(f"MLP(2, [16, 16, 1]), {len(model.parameters())} parameters, on {N_SAMPLES} "
          f"two-moons points (noise {NOISE}, seed {args.seed})")
    print(f"{trainer.mode} mode: {how}")

    history, seconds = train(trainer, args.steps)
    final_loss, scores = trainer.evaluate()
    print(f"after {args.steps} steps: loss {final_loss.data:.10f}  "
          f"accuracy {accuracy(y_list, scores):.0%}")
    print(f"time per step: {seconds * 1e3:.2f} ms ({trainer.mode})")
    micrograd_seconds, agree = time_micrograd(X_list, y_list, args.seed, history)
    if micrograd_seconds is None:
        print("micrograd is not installed: no comparison (pip install micrograd==0.1.0)")
    else:
        print(f"micrograd, the same step: {micrograd_seconds * 1e3:.2f} ms "
              f"({min(MICROGRAD_STEPS, args.steps)} steps; same losses: {agree})")
        print(f"autograd ({trainer.mode}) is {micrograd_seconds / seconds:.1f}x faster")

    if plot_decision_boundary(model, X, y, out / "decision_boundary.png"):
        print(f"wrote {out / 'decision_boundary.png'}")
    if draw_neuron(model, X, out / "neuron.svg"):
        print(f"wrote {out / 'neuron.svg'}")


if __name__ == "__main__":
    main()
