"""Batched replay (issue 17): a graph recorded from one sample, run for B lanes at once.

Each lane must be bit for bit a scalar Graph replay of that lane alone (and a fresh
eager build), whatever the number of threads; the shared leaves' .grad receive the
sum over lanes in the documented order."""
import gc
import math
import os
import random
import signal
import threading
import time
import _thread
import struct
import warnings

import numpy as np
import pytest

import autograd._core as core
from autograd import Graph, Lanes, Value, grad
from autograd.datasets import make_moons
from autograd.nn import MLP


def bits(x):
    """A float's bits (-0.0 distinct from 0.0); every NaN alike: which NaN an
    arithmetic op on a NaN gives (its sign bit) follows the compiler's operand
    order, in replay as in lanes, and no Python code can tell them apart."""
    return b"nan" if math.isnan(x) else struct.pack("<d", x)


def assert_bits(ours, theirs, what):
    ours, theirs = list(map(float, ours)), list(map(float, theirs))
    assert len(ours) == len(theirs), what
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert bits(a) == bits(b), f"{what}, lane {k}: {a!r} != {b!r}"


def doc_sum(values, block):
    """The documented order of a shared leaf's sum over lanes (Lanes' docstring)."""
    total = None
    for start in range(0, len(values), block):
        chunk = values[start:start + block]
        p = [0.0, 0.0, 0.0, 0.0]
        for j, v in enumerate(chunk):
            p[j % 4] += v
        s = (p[0] + p[1]) + (p[2] + p[3])
        total = s if total is None else total + s
    return total


def scalar_lanes(graph, root, inputs, shared, outputs, columns):
    """Replay the scalar graph once per lane: (root data, outputs' data, inputs' grads,
    shared leaves' grads) per lane; leaves are restored afterwards."""
    saved = [(v, v.data, v.grad) for v in inputs + shared]
    res = {"root": [], "out": [[] for _ in outputs], "in": [[] for _ in inputs],
           "shared": [[] for _ in shared]}
    try:
        for lane in zip(*columns):
            for v, x in zip(inputs, lane):
                v.data = float(x)
            for v in inputs + shared:
                v.grad = 0.0
            graph.forward()
            graph.backward()
            res["root"].append(root.data)
            for k, v in enumerate(outputs):
                res["out"][k].append(v.data)
            for k, v in enumerate(inputs):
                res["in"][k].append(v.grad)
            for k, v in enumerate(shared):
                res["shared"][k].append(v.grad)
    finally:
        for v, d, g in saved:
            v.data, v.grad = d, g
    return res


def assert_lanes_match_replay(lanes, graph, root, inputs, shared, columns, runs=1):
    """Each lane's root and inputs' grads are the scalar replay's bits, and each shared
    leaf's .grad the documented sum of its per-lane grads (for `runs` runs, their grads
    zeroed before each: nothing of a run may leak into the next)."""
    ref = scalar_lanes(graph, root, inputs, shared, [], columns)
    for _ in range(runs):
        for v in shared:
            v.grad = 0.0
        out = lanes.forward([np.array(c) for c in columns], backward=True)
        assert_bits(out, ref["root"], "root")
        for k, v in enumerate(inputs):
            assert_bits(lanes.grad(v), ref["in"][k], f"input {k} grad")
        for k, v in enumerate(shared):
            assert bits(v.grad) == bits(doc_sum(ref["shared"][k], lanes.block)), f"leaf {k}"


def leaves_of(root):
    # the Values themselves, not their ids: _prev makes handles on the fly, and an id
    # freed with its handle can be a later one's
    seen, stack, out = set(), [root], []
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if not v._prev and v._op == "":
            out.append(v)
        stack.extend(v._prev)
    return out


def lane_values(rng, prog, n_inputs, n_lanes):
    """Columns of lane data for the first n_inputs leaves: around the recorded values,
    often with the sign flipped (relu's branch differs between lanes)."""
    cols = []
    for x in prog.leaves[:n_inputs]:
        col = [x * rng.uniform(0.5, 1.5) * (-1 if rng.random() < 0.3 else 1)
               for _ in range(n_lanes)]
        cols.append(col)
    return cols


def replayable_lanes(graph, inputs, columns):
    """The lanes whose scalar replay raises nothing (others are tested separately)."""
    keep = []
    saved = [v.data for v in inputs]
    for k, lane in enumerate(zip(*columns)):
        for v, x in zip(inputs, lane):
            v.data = x
        try:
            graph.forward()
        except (ArithmeticError, ValueError):
            continue
        keep.append(k)
    for v, d in zip(inputs, saved):
        v.data = d
    return [[col[k] for k in keep] for col in columns]


OPS_SEEN = set()


def check_program(prog_nodes, prog, n_inputs, columns, threads, programs=None, block=None):
    nodes = prog_nodes
    root = nodes[-1]
    inputs = nodes[:n_inputs]
    g = Graph(root)
    columns = replayable_lanes(g, inputs, columns)
    if not columns[0]:
        return 0
    outputs = [nodes[len(nodes) // 2]] if len(nodes) > n_inputs + 1 else []
    shared = [v for v in leaves_of(root) if all(v is not u for u in inputs)]
    lanes = Lanes(root, inputs, outputs=outputs, threads=threads)
    OPS_SEEN.update(step[3] for step in lanes._tape()[0])
    grads_before = [v.grad for v in shared]
    data_before = [v.data for v in inputs + shared]
    out = lanes.forward([np.array(c) for c in columns], backward=True)
    ref = scalar_lanes(g, root, inputs, shared, outputs, columns)
    assert_bits(out, ref["root"], "root")
    for k, v in enumerate(outputs):
        assert_bits(lanes.data(v), ref["out"][k], f"output {k}")
    for k, v in enumerate(inputs):
        assert_bits(lanes.grad(v), ref["in"][k], f"input {k} grad")
    for k, v in enumerate(shared):
        want = grads_before[k] + doc_sum(ref["shared"][k], lanes.block)
        assert bits(v.grad) == bits(want), f"shared {k}: {v.grad!r} != {want!r}"
    assert [v.data for v in inputs + shared] == data_before, "lanes changed leaves' data"
    if programs is not None:        # a fresh eager build of a few lanes, bit for bit
        for k in range(min(3, len(columns[0]))):
            data = [col[k] for col in columns] + list(prog.leaves[n_inputs:])
            fresh = programs.run(prog, Value, data)
            fresh[-1].backward()
            assert bits(fresh[-1].data) == bits(out[k])
            for j in range(n_inputs):
                assert bits(fresh[j].grad) == bits(lanes.grad(inputs[j])[k])
    return len(columns[0])


@pytest.mark.parametrize("seed", range(60))
def test_random_program_lanes_equal_scalar_replay(seed, programs):
    rng = random.Random(seed)
    prog = programs.make(170_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    n_inputs = rng.randint(1, len(prog.leaves))
    columns = lane_values(rng, prog, n_inputs, rng.choice((1, 3, 17, 40)))
    check_program(nodes, prog, n_inputs, columns, threads=rng.choice((1, 2, 3)),
                  programs=programs)


@pytest.mark.parametrize("seed", range(12))
def test_many_blocks_and_threads(seed, programs, monkeypatch):
    """Small blocks (8 lanes): many blocks, split between threads; the sums cross blocks."""
    monkeypatch.setattr(core, "LANES_BLOCK_DOUBLES", 16)
    rng = random.Random(seed)
    prog = programs.make(180_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    n_inputs = rng.randint(1, len(prog.leaves))
    columns = lane_values(rng, prog, n_inputs, 61)
    results = []
    # one order for the three runs (a walk of _prev sets follows memory addresses)
    shared = [v for v in leaves_of(nodes[-1]) if all(v is not u for u in nodes[:n_inputs])]
    for threads in (1, 2, 3):
        for v in shared:
            v.grad = 0.0
        n = check_program(nodes, prog, n_inputs, columns, threads)
        results.append([bits(v.grad) for v in shared] + [n])
    assert results[0] == results[1] == results[2]


def test_derivative_graphs_every_op(programs):
    """Graphs made by grad(create_graph=True) hold step/select/pow_mask nodes (IEEE):
    lanes equal their scalar replay; with the random programs, every op of the table
    has run in lanes."""
    for seed in range(40):
        rng = random.Random(seed)
        prog = programs.make(190_000 + seed, programs.ALL_OPS)
        nodes = programs.run(prog, Value)
        n_leaves = len(prog.leaves)
        grads = grad([nodes[-1]], nodes[:n_leaves], create_graph=True, allow_unused=True)
        total = sum((gv for gv in grads if gv is not None), Value(0.0))
        columns = lane_values(rng, prog, n_leaves, 9)
        in_graph = {id(v) for v in leaves_of(total)}
        keep = [k for k in range(n_leaves) if id(nodes[k]) in in_graph]
        if not keep:
            continue
        columns = [columns[k] for k in keep]
        n_leaves = len(keep)
        chk_nodes = [nodes[k] for k in keep]
        g = Graph(total)
        lanes = Lanes(total, chk_nodes, threads=2)
        OPS_SEEN.update(step[3] for step in lanes._tape()[0])
        columns = replayable_lanes(g, chk_nodes[:n_leaves], columns)
        if not columns[0]:
            continue
        out = lanes.forward([np.array(c) for c in columns], backward=True)
        ref = scalar_lanes(g, total, chk_nodes[:n_leaves], [], [], columns)
        assert_bits(out, ref["root"], f"seed {seed} root")
        for k, v in enumerate(chk_nodes[:n_leaves]):
            assert_bits(lanes.grad(v), ref["in"][k], f"seed {seed} input {k}")
    # every op code but the leaf and the custom op (refused) has been seen in lanes
    # (a new op row needs a place in the random programs: conftest.ALL_OPS)
    wanted = set(range(1, len(core.OP_NAMES))) - {13}
    missing = sorted(core.OP_NAMES[k] or str(k) for k in wanted - OPS_SEEN)
    assert not missing, f"ops never run in lanes: {missing}"


def test_forward_error_names_the_lane_and_changes_nothing():
    x, w = Value(3.0), Value(2.0)
    root = w / x + (x - 2.0).log()
    lanes = Lanes(root, [x])
    w.grad = 0.5
    lanes.forward([[3.0, 4.0]], backward=True)
    good = lanes.data(root)
    g_after = w.grad
    # lane 2 divides by zero (step 0); lane 1 takes log(-1) at a later step
    with pytest.raises(ZeroDivisionError, match=r"lane 2 of 4"):
        lanes.forward([[3.0, 1.0, 0.0, 0.0]], backward=True)
    assert w.grad == g_after and x.data == 3.0
    with pytest.raises(RuntimeError):
        lanes.data(root)            # no half results: the failed forward left none
    with pytest.raises(ValueError, match=r"math domain error.*lane 1 of 2"):
        lanes.forward([[3.0, 1.0]])
    # what a scalar replay raises for that lane
    g = Graph(root)
    x.data = 1.0
    with pytest.raises(ValueError, match="math domain error"):
        g.forward()
    assert list(lanes.forward([[3.0, 4.0]])) == list(good)


def test_error_lane_independent_of_threads(monkeypatch):
    monkeypatch.setattr(core, "LANES_BLOCK_DOUBLES", 16)
    x = Value(1.0)
    root = (1.0 / x).log()          # x = 0: division (step 0); x < 0: log (step 1)
    col = [1.0] * 50
    col[7] = -1.0                   # log error, in block 0
    col[33] = 0.0                   # division error, an earlier step, in block 4
    msgs = set()
    for threads in (1, 2, 3):
        lanes = Lanes(root, [x], threads=threads)
        with pytest.raises(ZeroDivisionError) as info:
            lanes.forward([col])
        msgs.add(str(info.value))
    assert msgs == {"float division by zero (in lane 33 of 50)"}
    # the same step fails in several blocks: the first lane, whichever thread took
    # which block (threads take blocks as they come: repeated runs differ)
    for k in (45, 12, 20):
        col[k] = 0.0
    msgs = set()
    for threads in (1, 2, 3):
        lanes = Lanes(root, [x], threads=threads)
        for _ in range(30):
            with pytest.raises(ZeroDivisionError) as info:
                lanes.forward([col])
            msgs.add(str(info.value))
    assert msgs == {"float division by zero (in lane 12 of 50)"}


def test_non_finite_inputs_as_scalar_replay():
    """nan and inf are numbers a Value may hold: each lane does what replay does."""
    x, w = Value(1.0), Value(0.5)
    root = (x * w).relu() + (x * x).tanh() + x.exp()
    g = Graph(root)
    col = [math.nan, math.inf, -math.inf, 0.0, -0.0, 700.0, -2.0]
    ref = scalar_lanes(g, root, [x], [w], [], [col])
    lanes = Lanes(root, [x], threads=2)
    out = lanes.forward([col], backward=True)
    assert_bits(out, ref["root"], "root")
    assert_bits(lanes.grad(x), ref["in"][0], "grad")


def test_bad_input_clear_errors_nothing_changed():
    x, y, w = Value(1.0), Value(2.0), Value(3.0)
    root = w * x + y
    lanes = Lanes(root, [x, y])
    lanes.forward([[1.0, 2.0], [3.0, 4.0]])
    before = lanes.data(root)
    w.grad = 0.25
    cases = [
        ([[1.0, 2.0], [3.0]], ValueError, "lanes"),                     # wrong length
        ([[1.0, 2.0]], ValueError, "one array per input"),               # wrong count
        ([[1 + 2j, 2.0], [3.0, 4.0]], TypeError, "complex"),             # wrong dtype
        ([["a", "b"], [3.0, 4.0]], TypeError, "real numbers"),
        ([[None, 1.0], [3.0, 4.0]], TypeError, "object"),
        ([[[1.0]], [3.0]], ValueError, "one-dimensional"),
        ([[], []], ValueError, "0 lanes"),                               # B = 0
        ({"x": 1}, TypeError, "list of arrays"),
    ]
    for values, exc, match in cases:
        with pytest.raises(exc, match=match):
            lanes.forward(values)
        assert list(lanes.data(root)) == list(before)
        assert (x.data, y.data, w.data, w.grad) == (1.0, 2.0, 3.0, 0.25)
    with pytest.raises(MemoryError, match="bytes"):
        lanes.forward([np.broadcast_to(1.0, (2 ** 45,)), np.broadcast_to(1.0, (2 ** 45,))])
    assert list(lanes.data(root)) == list(before)
    with pytest.raises(ValueError, match="not a leaf"):
        Lanes(root, [w * x])
    with pytest.raises(ValueError, match="not a leaf"):
        Lanes(root, [Value(1.0)])
    with pytest.raises(ValueError, match="twice"):
        Lanes(root, [x, x])
    with pytest.raises(ValueError, match="not a node"):
        Lanes(root, [x], outputs=[Value(2.0)])
    with pytest.raises(TypeError):
        Lanes(root, [1.0])
    with pytest.raises(ValueError, match="at least 1"):
        Lanes(root, [x], threads=0)
    with pytest.raises(TypeError):
        Lanes(root, [x], threads=1.5)
    with pytest.raises(ValueError, match="no lanes"):
        Lanes(root, []).forward([])
    with pytest.raises(RuntimeError, match="forward"):
        Lanes(root, [x]).backward()


def test_freed_leaves_stay_alive_while_lanes_do():
    """The Lanes hold the recorded graph: dropping every other reference keeps it whole."""
    def build():
        x, w = Value(1.0), Value(2.0)
        return Lanes((w * x).tanh() * 3.0, [x]), (w * 1.0).tanh()
    lanes, _ = build()
    gc.collect()
    junk = [Value(float(k)) * 2 for k in range(1000)]     # reuse freed slots
    out = lanes.forward([[1.0, -1.0, 0.5]], backward=True)
    assert_bits(out, [math.tanh(2.0 * x) * 3.0 for x in (1.0, -1.0, 0.5)], "root")
    del junk


def test_custom_ops_refused():
    a = Value(2.0)
    custom = Value(a.data * 3, (a,), "triple")

    def _backward():
        a.grad += 3 * custom.grad
    custom._backward = _backward
    with pytest.raises(ValueError, match="custom ops"):
        Lanes(custom + 1, [a])
    custom._forward = lambda: setattr(custom, "data", a.data * 3)   # replayable by Graph
    Graph(custom + 1).forward()
    with pytest.raises(ValueError, match="custom ops"):
        Lanes(custom + 1, [a])
    # ops built on a custom op are refused too: the custom op is in their graph
    with pytest.raises(ValueError, match="custom ops"):
        Lanes((custom * 2).tanh(), [a])


def test_keyboard_interrupt_stops_a_long_run():
    x = Value(0.5)
    v = x
    for _ in range(20000):
        v = (v * 0.999 + 0.001).tanh()
    for threads in (1, 2):
        lanes = Lanes(v, [x], threads=threads)
        # Ctrl-C as the interpreter receives it, on every platform (no SIGALRM on
        # Windows): SIGINT marked as arrived, for the main thread's next signal check
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                lanes.forward([np.full(200_000, 0.5)], backward=True)
        finally:
            timer.cancel()
            timer.join()
        with pytest.raises(RuntimeError):
            lanes.data(v)
        out = lanes.forward([[0.5, 0.25]])      # usable again
        assert len(out) == 2


@pytest.mark.parametrize("threads", [1, 2])
def test_products_feeding_sums(threads):
    """A product whose only use is the next sum runs with it as one step in lanes:
    both operand orders, operands shared with the sum (acc * x + acc, x * x + acc),
    signed zeros and non-finite lanes, a product that is also an output (not fused):
    every lane is the scalar replay's, bit for bit."""
    x, y, w = Value(0.5), Value(-2.0), Value(3.0)
    acc = x + y
    acc = acc + w * x                   # the sum's second operand is the product
    acc = acc * 0.25 + ((y * w) + acc)  # its first (acc already in the order: adjacent)
    acc = acc + acc * x                 # the product reads the sum's other operand
    acc = acc + x * x                   # a square
    kept = w * y
    acc = kept + acc                    # a product that is an output: a step of its own
    acc = acc * acc + (-w) * y
    root = acc.relu() + acc * 0.5
    inputs, outputs = [x, y], [kept]
    columns = [[0.5, -0.0, 0.0, 1e300, -1e-310, math.inf, math.nan, 2.5, -7.0],
               [-2.0, 0.0, -0.0, 1e300, 3.0, 1.0, 1.0, -0.0, 0.25]]
    g = Graph(root)
    shared = [w]
    lanes = Lanes(root, inputs, outputs=outputs, threads=threads)
    assert {where for _, where in lanes._fused()} == {1, 2}
    w.grad = 0.0
    out = lanes.forward([np.array(c) for c in columns], backward=True)
    ref = scalar_lanes(g, root, inputs, shared, outputs, columns)
    assert_bits(out, ref["root"], "root")
    assert_bits(lanes.data(kept), ref["out"][0], "output")
    for k, v in enumerate(inputs):
        assert_bits(lanes.grad(v), ref["in"][k], f"input {k} grad")
    assert bits(w.grad) == bits(doc_sum(ref["shared"][0], lanes.block))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_grads_rows_first_written_by_a_store(threads, monkeypatch):
    """Lanes do not zero the grads before backward: each row's first writer stores
    (0.0 + its share). Rows first written by a rule that feeds nothing (x ** 0: the row
    must read 0.0, not the previous block's or run's grads), a square (one row, two
    shares), a product's operand that the sum also reads, a shared leaf: many blocks,
    repeated runs, every lane the scalar replay's bits."""
    monkeypatch.setattr(core, "LANES_BLOCK_DOUBLES", 16)
    x, y, w = Value(1.5), Value(-2.0), Value(0.75)
    u = x * 3.0                         # x's last writer in backward
    root = u + x ** 0                   # x's first writer: derivative 0 on every lane
    root = root + (y * y + y) * w       # y: a square, then a sum's operand
    acc = root + root * y               # a product reading the sum's other operand
    root = acc * 0.5 + w ** 0 * y       # w's first writer also feeds nothing
    inputs = [x, y]
    rng = random.Random(threads)
    columns = [[rng.uniform(-3, 3) for _ in range(45)] for _ in inputs]
    columns[0][3], columns[1][4] = -0.0, 0.0
    g = Graph(root)
    lanes = Lanes(root, inputs, threads=threads)
    assert lanes.block < 45            # several blocks
    assert_lanes_match_replay(lanes, g, root, inputs, [w], columns, runs=3)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_lanes", [1, 6, 7, 45])
def test_products_of_a_weight_read_nowhere_else(threads, n_lanes, monkeypatch):
    """A product-and-sum whose product reads a shared leaf that nothing else reads (a
    neuron's weight) runs with the leaf as one number, its grad summed in the loop: the
    leaf on either side of the product, the product on either side of the sum, the
    other operand read once or by other steps too (its grad row first written there or
    not), lane counts off multiples of 4, signed zeros and non-finite lanes, several
    blocks. Lanes equal the scalar replay bit for bit; each leaf's .grad is the sum of
    the per-lane grads in the documented order."""
    monkeypatch.setattr(core, "LANES_BLOCK_DOUBLES", 16 * 30)
    x, y = Value(0.5), Value(-2.0)
    w = [Value(v) for v in (0.75, -1.25, 3.0, -0.0, 2.0, 0.5)]
    shared_twice = Value(1.5)           # read by two products: a row, not folded
    acc = x + y
    acc = acc + w[0] * x                # leaf first, product second in the sum
    acc = y * w[1] + acc                # leaf second, product first
    acc = acc + acc * w[2]              # the product's other operand is the sum's
    acc = w[3] * y + acc
    t = x * x                           # a row read only by the next product
    acc = acc + w[4] * t
    acc = acc + shared_twice * x
    acc = shared_twice * y + acc
    acc = (acc.tanh() * w[5] + x).relu() + acc * 0.5
    root = acc
    inputs, shared = [x, y], w + [shared_twice]
    g = Graph(root)
    lanes = Lanes(root, inputs, threads=threads)
    # (which products run with their sum follows the recorded order: not all of them)
    steps, _, _, _, shared_rows = lanes._tape()
    folded_rows = {shared_rows[i] for _, i, _ in lanes._folded()}
    where = dict(lanes._fused())
    assert len(folded_rows) >= 4 and {side for _, _, side in lanes._folded()} == {0, 1}
    assert {where[k] for k, _, _ in lanes._folded()} == {1, 2}
    read_twice = [row for row in shared_rows
                  if sum((st[1] == row) + (st[2] == row) for st in steps) > 1]
    assert read_twice and not folded_rows & set(read_twice)
    rng = random.Random(n_lanes)
    columns = [[rng.uniform(-3, 3) for _ in range(n_lanes)] for _ in inputs]
    specials = [(-0.0, 0.0), (math.inf, 1.0), (math.nan, 2.0), (1e300, 1e300), (0.0, -0.0)]
    if n_lanes > 40:                    # (in small batches: finite sums, their order seen)
        for k, (a, b) in enumerate(specials):
            columns[0][3 * k], columns[1][3 * k] = a, b
    assert_lanes_match_replay(lanes, g, root, inputs, shared, columns)


@pytest.mark.parametrize("threads", [1, 2])
def test_chains_of_sums_share_one_grad_row(threads, monkeypatch):
    """In a neuron's chain of product-and-sum steps, an accumulator read only by the
    next sum does not get its grads stored: the step that made it reads the next sum's
    grad (0.0 + g and g give the same bits there). Chains whose top grad is -0.0 or
    non-finite, accumulators also read elsewhere (their grads stored and accumulated),
    a chain feeding two readers: every lane the scalar replay's bits, signed zeros
    included."""
    monkeypatch.setattr(core, "LANES_BLOCK_DOUBLES", 16 * 40)
    x, y, c = Value(0.5), Value(-2.0), Value(-0.0)
    w = [Value(v) for v in (0.75, -1.25, 3.0, 2.0, -0.5, 1.5, 0.25)]
    b = Value(0.125)
    acc = b + w[0] * x
    acc = acc + w[1] * y
    acc = acc + w[2] * x                # aliased into the next sums'
    kept = acc + w[3] * y               # read twice below: stored
    acc = kept + w[4] * x
    acc = acc + w[5] * y
    top = acc * c + kept * y            # the chain's top grad: c * 1 = -0.0 on some lanes
    acc2 = top + w[6] * x
    root = (acc2 * acc2).relu() + acc2 * x
    inputs, shared = [x, y, c], w + [b]
    g = Graph(root)
    lanes = Lanes(root, inputs, threads=threads)
    assert len(lanes._aliased()) >= 3
    rng = random.Random(threads)
    columns = [[rng.uniform(-3, 3) for _ in range(37)] for _ in inputs]
    columns[2] = [rng.choice([-0.0, 0.0, 1.5, -2.0]) for _ in range(37)]
    columns[0][5], columns[1][6], columns[0][7] = math.inf, math.nan, -0.0
    assert_lanes_match_replay(lanes, g, root, inputs, shared, columns)


def _mlp_lanes(threads, seed=3):
    """The demo's per-sample loss in lanes, and B = 300 points (several blocks)."""
    random.seed(seed)
    model = MLP(2, [8, 8, 1])
    x0, x1, label = Value(0.0), Value(0.0), Value(1.0)
    loss = (1 + -label * model([x0, x1])).relu()
    X, y = make_moons(300, noise=0.1, seed=seed)
    values = [X[:, 0].copy(), X[:, 1].copy(), np.asarray(y, dtype=np.float64)]
    return Lanes(loss, [x0, x1, label], threads=threads), values, model.parameters()


def _run_bits(lanes, values, params):
    for p in params:
        p.grad = 0.0
    out = lanes.forward(values, backward=True)
    return ([bits(v) for v in out], [[bits(v) for v in g] for g in lanes.backward()],
            [bits(p.grad) for p in params])


def test_worker_pool_is_reused():
    """Threads are started once and kept: many runs add no threads."""
    psutil = pytest.importorskip("psutil")  # a test requirement: REQUIREMENTS in conftest
    lanes, values, params = _mlp_lanes(threads=3)
    first = _run_bits(lanes, values, params)
    before = psutil.Process().num_threads()
    for _ in range(30):
        assert _run_bits(lanes, values, params) == first
    assert psutil.Process().num_threads() == before


def test_concurrent_runs_from_python_threads():
    """Two Python threads run Lanes at once (each with worker threads): each gets
    what it gets alone."""
    runs = [_mlp_lanes(threads=2, seed=s) for s in (4, 5)]
    alone = [_run_bits(*r) for r in runs]
    results, errors = [[], []], []

    def work(k):
        try:
            for _ in range(15):
                results[k].append(_run_bits(*runs[k]))
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in (0, 1):
        assert all(r == alone[k] for r in results[k])


def _long_chain_lanes(threads):
    w, x = Value(0.5), Value(1.0)
    y = x
    for _ in range(300):
        y = (y * w + 1.0).tanh()
    return Lanes(y, inputs=[x], threads=threads), w


def test_a_second_thread_is_refused_while_lanes_run():
    """forward() or backward() from another thread while a run is going raises
    RuntimeError before touching anything (a larger batch would have reallocated the
    scratch the running loops use); the running call's results are unaffected."""
    lanes, w = _long_chain_lanes(threads=1)
    big = [np.linspace(-1, 1, 300_000)]
    w.grad = 0.0
    lanes.forward(big, backward=True)
    expected = w.grad
    refused, errors = [], []
    started = threading.Event()

    def intruder():
        started.wait()
        for n in range(200):
            try:
                lanes.forward([np.zeros(1_200_000 + 1000 * n)])
            except RuntimeError as e:
                refused.append(str(e))
                return
            except BaseException as e:      # noqa: BLE001 - reported below
                errors.append(e)
                return
    t = threading.Thread(target=intruder)
    t.start()
    w.grad = 0.0
    started.set()
    lanes.forward(big, backward=True)
    t.join()
    assert not errors, errors
    if refused:                             # the intruder came while the run went on
        assert "already running (in another thread" in refused[0]
        assert w.grad == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_lanes_busy_in_another_thread_at_fork_are_free_in_the_child():
    """A fork while another thread runs these Lanes: the child has no such thread, and
    its copy of the Lanes runs."""
    lanes, _ = _long_chain_lanes(threads=2)
    small = [np.linspace(-1, 1, 1000)]
    expected = lanes.forward(small)
    runner = threading.Thread(target=lambda: lanes.forward([np.linspace(-1, 1, 600_000)],
                                                           backward=True))
    runner.start()
    time.sleep(0.05)
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # fork with threads
        pid = os.fork()
    if pid == 0:
        try:
            ok = bool((lanes.forward(small) == expected).all())
            os.write(write, b"same" if ok else b"differ")
        except BaseException as e:          # noqa: BLE001 - reported to the parent
            os.write(write, repr(e).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    runner.join()
    with os.fdopen(read, "rb") as f:
        said = f.read()
    assert status == 0 and said == b"same", (status, said)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_threads_after_fork():
    """A forked child has none of its parent's pool threads: it starts its own."""
    lanes, values, params = _mlp_lanes(threads=2)
    parent = _run_bits(lanes, values, params)
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # fork with threads
        pid = os.fork()
    if pid == 0:                        # the child: report, never return into pytest
        try:
            ok = _run_bits(lanes, values, params) == parent
            os.write(write, b"same" if ok else b"differ")
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 120       # a child waiting on its parent's threads hangs
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish its run in 120 s")
        time.sleep(0.01)
    with os.fdopen(read, "rb") as f:
        said = f.read()
    assert status == 0 and said == b"same", (status, said)


def test_small_batches_split_in_blocks_for_threads():
    """B = 100 of the demo's graph: two blocks of 50 lanes (threads share them);
    the block depends on B and the graph, never on the threads."""
    lanes1, values, params = _mlp_lanes(threads=1)
    lanes3, _, params3 = _mlp_lanes(threads=3)     # the same model: the same seed
    small = [v[:100] for v in values]
    a, b = _run_bits(lanes1, small, params), _run_bits(lanes3, small, params3)
    assert a == b
    assert lanes1.block == lanes3.block == 50
    _run_bits(lanes1, [v[:40] for v in values], params)
    assert lanes1.block == 40


def test_default_threads_and_repr():
    x = Value(1.0)
    lanes = Lanes(x * 2, [x])
    assert lanes.threads >= 1
    lanes.threads = None
    assert lanes.threads == core.default_threads()
    assert "Lanes(" in repr(lanes) and len(lanes) == 3


def test_demo_batched_losses_equal_eager():
    """The demo trained in lanes: the losses of micrograd's eager demo to 1e-12."""
    from autograd.demo import BatchTrainer, EagerTrainer, learning_rate
    X, y = make_moons(100, noise=0.1, seed=1337)
    X, y = X.tolist(), y.tolist()
    random.seed(1337)
    eager = EagerTrainer(MLP(2, [16, 16, 1]), X, y)
    random.seed(1337)
    batched = BatchTrainer(MLP(2, [16, 16, 1]), X, y, threads=2)
    for k in range(4):
        lr = learning_rate(k, 100)
        (le, ae), (lb, ab) = eager.step(lr), batched.step(lr)
        assert math.isclose(le, lb, rel_tol=1e-12, abs_tol=1e-12), (k, le, lb)
        if k == 0:                      # same parameters: the same sum, the same bits
            assert bits(le) == bits(lb)
        assert ae == ab
    for p, q in zip(eager.model.parameters(), batched.model.parameters()):
        assert math.isclose(p.data, q.data, rel_tol=1e-12, abs_tol=1e-12)


def test_sum_over_lanes_is_micrograds_sum():
    """Lanes.sum adds a node's lanes as micrograd's sum(losses) of Values does (left to
    right from 0), on every Python: against that very loop."""
    rng = random.Random(5)
    specials = [0.0, -0.0, 1e308, -1e308, 1e-320, math.inf, -math.inf, math.nan]
    x = Value(1.0)
    y = x * 1.0
    lanes = Lanes(y + 0.0, [x], outputs=[y])
    for trial in range(2000):
        n = rng.randint(1, 12)
        pool = specials if trial % 3 == 0 else [rng.uniform(-1, 1) * 10.0 ** rng.randint(-20, 20)
                                                 for _ in range(4)] + [-0.0, 0.0]
        values = [rng.choice(pool) for _ in range(n)]
        total = 0                       # micrograd: sum(losses) starts from the int 0
        for v in values:
            total = Value(v) + total if isinstance(total, int) else total + Value(v)
        lanes.forward([values])
        assert bits(lanes.sum(x)) == bits(total.data), values
        assert bits(lanes.sum(y)) == bits(total.data), values


def test_lanes_not_made_refuse_every_use():
    """Lanes whose __init__ failed (or was never called) refuse every use with a clear
    error, and a second __init__ that succeeds makes them whole (nothing of the failed
    one left: it was given back)."""
    x = Value(1.0)
    y = x * 2.0
    lanes = Lanes.__new__(Lanes)
    for use in (lambda: len(lanes), lambda: lanes.forward([[1.0]]), lambda: lanes.backward()):
        with pytest.raises(ValueError, match="Lanes.__init__ was not called"):
            use()
    assert "not made" in repr(lanes)
    with pytest.raises(ValueError, match="not a leaf of the graph"):
        lanes.__init__(y, inputs=[y])   # compile fails half-way (after the tape)
    for use in (lambda: len(lanes), lambda: lanes.forward([[1.0, 2.0]]),
                lambda: lanes.backward()):
        with pytest.raises(ValueError, match="did not complete"):
            use()
    with pytest.raises(RuntimeError, match="no finished forward"):
        lanes.sum(y)
    lanes.__init__(y + 1.0, inputs=[x])
    assert list(lanes.forward([[1.0, 2.0]], backward=True)) == [3.0, 5.0]
    assert list(lanes.grad(x)) == [2.0, 2.0] and len(lanes) == 5     # x, 2.0, y, 1.0, root
    with pytest.raises(RuntimeError, match="already called"):
        lanes.__init__(y, inputs=[x])
