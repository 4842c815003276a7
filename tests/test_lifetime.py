"""Lifetime and robustness of the compiled core (issue 2).

The core must never crash from Python, whatever the user does: deleting Values in
any order, deep and huge graphs, misbehaving custom ops, odd data, interpreter
shutdown. Everything that could take the test process down (or corrupt the arena
for the tests that follow) runs in a subprocess under ``-X dev -X faulthandler``.

The arena's ``live`` count is the leak detector: after a graph is dropped (and, for
custom ops, after ONE ``gc.collect()``) it must return to its value before the graph
was built.
"""
import gc
import itertools
import math
import random
import weakref
from fractions import Fraction

import numpy as np
import pytest
from micrograd.engine import Value as MGValue

from autograd import CustomValue, Graph, Value, ValueVector
from autograd._core import arena_stats
from autograd.datasets import make_moons
from autograd.nn import MLP
from conftest import assert_clean_exit, live, require_facility, run_script

@pytest.fixture
def frozen_gc():
    """Move every existing object out of the collector's sight, so that the many
    gc.collect() calls of a test only scan what the test made."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


# -----------------------------------------------------------------------------
# micrograd-style custom ops: closures that reference out, self and other.
# `V` is the Value class to build with (ours or micrograd's), `log` collects
# weakrefs to every closure and every result.
# -----------------------------------------------------------------------------

def c_tanh(self, V=Value, log=None):
    x = self.data
    t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
    out = V(t, (self,), 'tanh')

    def _backward():
        self.grad += (1 - t ** 2) * out.grad
    out._backward = _backward
    if log is not None:
        log.append(weakref.ref(_backward))
        log.append(weakref.ref(out))
    return out


def c_exp(self, V=Value, log=None):
    out = V(math.exp(self.data), (self,), 'exp')

    def _backward():
        self.grad += out.data * out.grad
    out._backward = _backward
    if log is not None:
        log.append(weakref.ref(_backward))
        log.append(weakref.ref(out))
    return out


def c_mul(self, other, V=Value, log=None):
    other = other if isinstance(other, (Value, MGValue)) else V(other)
    out = V(self.data * other.data, (self, other), '*')

    def _backward():
        self.grad += other.data * out.grad
        other.grad += self.data * out.grad
    out._backward = _backward
    if log is not None:
        log.append(weakref.ref(_backward))
        log.append(weakref.ref(out))
    return out


class MyValue(Value):
    """A user's Value subclass with its own custom ops (a __dict__, GC-tracked)."""

    def square(self):
        out = MyValue(self.data * self.data, (self,), 'sq')

        def _backward():
            self.grad += 2 * self.data * out.grad
        out._backward = _backward
        return out

    def cube(self):
        out = MyValue(self.data ** 3, (self,), 'cube')
        state = {'out': out, 'self': self}         # a longer cycle: closure -> dict -> out

        def _backward():
            s, o = state['self'], state['out']
            s.grad += 3 * s.data ** 2 * o.grad
        out._backward = _backward
        out.extra = [state, _backward]             # and one through the instance dict
        return out


# =============================================================================
# Deep and huge graphs
# =============================================================================

def test_chain_of_a_million_nodes_backward_then_release(baseline):
    n = 500_000                         # each step: a product node and a constant leaf
    c = 1.000001
    x = Value(0.5)
    y = x
    for _ in range(n):
        y = y * c
    assert live() - baseline == 2 * n + 1
    expected = 0.5
    for _ in range(n):
        expected *= c
    assert y.data == expected
    y.backward()
    assert math.isclose(x.grad, c ** n, rel_tol=1e-9)
    del y                               # freeing a 10**6-node chain is iterative
    assert live() - baseline == 1
    assert x.data == 0.5
    del x
    assert live() == baseline


def test_chain_reusing_one_leaf_a_million_times(baseline):
    n = 1_000_000
    x = Value(0.25)
    y = x
    for _ in range(n):
        y = y + x
    assert live() - baseline == n + 1
    y.backward()
    assert x.grad == n + 1              # exact: small integers in float
    assert y.data == 0.25 * (n + 1)
    del x                               # the leaf first: the chain keeps it alive
    assert live() - baseline == n + 1
    del y
    assert live() == baseline


def test_wide_sum_of_a_million_values(baseline):
    n = 1_000_000
    xs = [Value(float(i)) for i in range(n)]
    s = sum(xs)                         # 0 + x0 + x1 + ...: a constant and n adds
    assert s.data == n * (n - 1) / 2
    s.backward()
    vv = ValueVector(xs)
    assert (vv.grad == 1.0).all()
    del vv
    del xs                              # the sum keeps every leaf alive
    assert live() - baseline == 2 * n + 1
    del s
    assert live() == baseline


def test_million_node_graph_replay_after_dropping_every_value(baseline):
    n = 500_000
    x = Value(0.1)
    w = Value(1.0)
    y = x
    for _ in range(n):
        y = y * w + 0.0
    g = Graph(y)
    params = ValueVector([x, w])
    del x, w, y
    graph_nodes = live() - baseline
    assert graph_nodes == len(g) == 2 * n + 2 + n    # products, sums, constants, x, w
    params.data = [2.0, 1.0]
    g.forward()
    g.backward()
    assert params.grad.tolist() == [1.0, 2.0 * n]
    del g
    assert live() - baseline == 2
    del params
    assert live() == baseline


def test_deep_chain_of_managed_nodes_over_a_custom_op(baseline, no_gc):
    """A custom op at the bottom makes every result above it a CustomValue: a
    10**5-deep chain of Python objects, freed without recursing in C or Python."""
    n = 100_000
    x = Value(0.5)
    log = []
    y = c_tanh(x, log=log)
    for _ in range(n):
        y = y + 1
    assert type(y) is CustomValue
    y.backward()
    assert math.isclose(x.grad, 1 - math.tanh(0.5) ** 2, rel_tol=1e-12)
    del y
    assert live() - baseline > 1        # the closure cycle still holds the custom op
    gc.collect()
    assert live() - baseline == 1
    assert all(ref() is None for ref in log)
    del x
    assert live() == baseline


def test_deep_chain_of_custom_ops_alone(baseline, no_gc):
    n = 20_000
    x = Value(0.001)
    y = x
    for _ in range(n):
        y = c_mul(y, 1.0)
    y.backward()
    assert x.grad == 1.0
    del y
    gc.collect()
    assert live() - baseline == 1


# =============================================================================
# A training loop's memory is flat
# =============================================================================

def demo_loss(model, X, y, alpha=1e-4):
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    total = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total, sum(accuracy) / len(accuracy)


def test_training_loop_memory_is_flat(baseline):
    random.seed(1)
    X, y = make_moons(40, noise=0.1, seed=3)
    model = MLP(2, [16, 16, 1])
    n_params = len(model.parameters())
    assert live() - baseline == n_params
    capacities = []
    losses = []
    for k in range(8):
        total, _ = demo_loss(model, X, y)
        model.zero_grad()
        total.backward()
        lr = 1.0 - 0.9 * k / 8
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(total.data)
        del total
        assert live() - baseline == n_params
        capacities.append(arena_stats()["capacity"])
    assert capacities[1:] == capacities[:-1]
    assert losses[-1] < losses[0]


def test_graph_replay_training_loop_memory_is_flat(baseline):
    random.seed(2)
    X, y = make_moons(30, noise=0.1, seed=4)
    model = MLP(2, [8, 8, 1])
    params = ValueVector(model.parameters())
    n_params = len(params)
    total, _ = demo_loss(model, X, y)
    g = Graph(total)
    del total
    pinned = live() - baseline
    capacity = arena_stats()["capacity"]
    for _ in range(20):
        g.forward()
        params.zero_grad()
        g.backward()
        params.sgd_step(0.05)
        assert live() - baseline == pinned
    assert arena_stats()["capacity"] == capacity
    del g
    assert live() - baseline == n_params
    del params, model
    assert live() == baseline


# =============================================================================
# Custom ops (micrograd's closures) do not leak
# =============================================================================

def build_custom_program(V, layers, log=None):
    """custom -> builtin -> custom ... over many layers; returns (loss, leaves)."""
    x = V(0.3)
    w = V(-0.7)
    b = V(0.2)
    h = x
    for k in range(layers):
        h = c_tanh(h * w + b, V, log)          # builtin under a custom op
        h = c_mul(h, x, V, log) + 0.5          # a builtin over a custom op
        if k % 3 == 0:
            h = c_exp(h * 0.25, V, log) ** 2   # custom, then builtin pow
        h = h - b
    loss = c_mul(h, h, V, log)
    return loss, (x, w, b)


def test_custom_op_graphs_are_freed_by_one_collection(baseline, no_gc):
    log = []
    loss, leaves = build_custom_program(Value, 30, log)
    ref_loss, ref_leaves = build_custom_program(MGValue, 30)
    assert isinstance(loss, CustomValue)
    assert math.isclose(loss.data, ref_loss.data, rel_tol=1e-12)
    loss.backward()
    ref_loss.backward()
    for ours, theirs in zip(leaves, ref_leaves):
        assert math.isclose(ours.grad, theirs.grad, rel_tol=1e-9), (ours.grad, theirs.grad)
    assert len(log) > 100 and all(ref() is not None for ref in log)
    del loss, leaves, ours
    assert live() > baseline            # held by the closure cycles until collected
    gc.collect()                        # ONE collection frees every layer
    assert live() == baseline
    dead = [ref() is None for ref in log]
    assert all(dead), f"{dead.count(False)} closures/values survived one gc.collect()"


def test_custom_ops_of_a_value_subclass_are_freed_by_one_collection(baseline, no_gc):
    x = MyValue(1.5, name='x')
    y = x.square()                      # MyValue, custom
    z = (y * 2).tanh()                  # builtin ops over a custom op: CustomValue
    w = MyValue.cube(z + x)             # a subclass method on a CustomValue
    v = MyValue.square(w * y)
    v.backward()
    # d/dx by the chain rule, computed in plain floats
    yv = 2.25
    zv = math.tanh(2 * yv)
    wv = (zv + 1.5) ** 3
    dv_dw = 2 * (wv * yv) * yv
    dv_dy = 2 * (wv * yv) * wv
    dw_dz = dw_dx_direct = 3 * (zv + 1.5) ** 2
    dz_dy = (1 - zv ** 2) * 2
    dv_dy_total = dv_dy + dv_dw * dw_dz * dz_dy
    expected = dv_dy_total * 2 * 1.5 + dv_dw * dw_dx_direct
    assert math.isclose(x.grad, expected, rel_tol=1e-9)
    refs = [weakref.ref(o) for o in (x, y, z, w, v)]
    refs += [weakref.ref(o._backward) for o in (y, w, v)]
    del x, y, z, w, v
    gc.collect()
    assert live() == baseline
    assert all(r() is None for r in refs)


def test_custom_op_whose_closure_outlives_the_graph(baseline, no_gc):
    """A closure kept by the user keeps its Values (and their nodes) alive, and
    is still callable after the graph is gone."""
    x = Value(2.0)
    out = c_mul(x, x)
    fn = out._backward
    del out, x
    gc.collect()
    assert live() - baseline == 2       # out and x, held by the closure
    fn()                                # out.grad is 0: adds nothing, no crash
    del fn
    gc.collect()
    assert live() == baseline


# =============================================================================
# Deleting Values in every order
# =============================================================================

def small_graph(V, custom):
    a = V(1.5)
    b = V(-0.5)
    c = a * b + a
    d = c_tanh(c, V) if custom else (c * c).relu()
    e = d * a + b ** 2
    return {'a': a, 'b': b, 'c': c, 'd': d, 'e': e}


def reachable(roots):
    """Every Value reachable through _prev from roots (holding the handles made)."""
    seen = {}
    stack = list(roots)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen[id(v)] = v
        stack.extend(v._prev)
    return list(seen.values())


def count_nodes(roots):
    """How many arena nodes `roots` keep alive: the Values reachable through _prev,
    plus the hidden constant exponent of every `x ** number` ('**2', not '**')."""
    found = reachable(roots)
    return len(found) + sum(1 for v in found if v._op.startswith('**') and v._op != '**')


@pytest.mark.parametrize("custom", [False, True], ids=["builtin", "custom"])
def test_delete_values_in_every_order(baseline, custom, frozen_gc):
    names = 'abcde'
    for order in itertools.permutations(names):
        ours = small_graph(Value, custom)
        ref = small_graph(MGValue, custom)
        for k in order:
            del ours[k], ref[k]
            if custom:
                gc.collect()            # the dropped custom op's closure cycle
            for s in ours:
                assert ours[s].data == ref[s].data
            for s in ours:
                for v in reachable([ours[s]]):
                    v.grad = 0.0
                for v in reachable([ref[s]]):
                    v.grad = 0.0
                ours[s].backward()
                ref[s].backward()
                for t in ours:
                    assert math.isclose(ours[t].grad, ref[t].grad, rel_tol=1e-12), \
                        (order, k, s, t)
            # the arena holds exactly the nodes the survivors can reach
            assert live() - baseline == count_nodes(ours.values()), (order, k)
        assert live() == baseline, order


# =============================================================================
# Identity and names
# =============================================================================

def test_prev_returns_the_users_objects(baseline):
    a = Value(2.0)
    b = Value(3.0)
    c = a * b
    for _ in range(3):
        prev = c._prev
        assert len(prev) == 2
        assert any(p is a for p in prev) and any(p is b for p in prev)
    d = c.tanh()
    assert next(iter(d._prev)) is c
    e = a + a
    assert e._prev == {a}


def test_prev_makes_one_new_handle_after_the_users_is_dropped(baseline):
    a = Value(2.0, name='a')
    c = a * 3
    del a
    assert live() - baseline == 3
    (x,) = [p for p in c._prev if p.data == 2.0]
    (x2,) = [p for p in c._prev if p.data == 2.0]
    assert x is x2                      # at most one handle per node
    assert x.name == 'a'
    c.backward()
    assert x.grad == 3.0
    del x, x2
    (x3,) = [p for p in c._prev if p.data == 2.0]
    assert x3.name == 'a' and x3.grad == 3.0      # names and grads live in the node
    x3.name = 'renamed'
    del x3
    for _ in range(5):                  # handle churn
        (x4,) = [p for p in c._prev if p.data == 2.0]
        assert x4.name == 'renamed'
        del x4
    del c
    assert live() == baseline


def test_names_of_freed_nodes_do_not_leak_into_reused_slots(baseline):
    named = [Value(float(i), name=f"n{i}") for i in range(3000)]
    del named
    fresh = [Value(0.0) for _ in range(3000)]
    assert all(v.name == '' for v in fresh)
    del fresh
    # a named node freed by a cascade (no handle of its own when it dies)
    x = Value(1.0)
    y = x * 2
    y.label = 'mid'
    z = y + 1
    z.name = 'top'
    del y
    assert [p.name for p in z._prev if p.data == 2.0] == ['mid']
    del z, x
    assert live() == baseline
    fresh = [Value(1.0) for _ in range(10)] + [Value(1.0) * 2 for _ in range(10)]
    assert all(v.name == '' and v.label == '' for v in fresh)
    for v in fresh:
        assert all(p.name == '' for p in v._prev)


def test_names_cleared_and_renamed(baseline):
    v = Value(1.0, label='lab')
    assert v.name == 'lab'
    v.name = ''
    assert v.name == ''
    v.name = 'again'
    with pytest.raises(TypeError):
        v.name = 3
    assert v.name == 'again'
    del v
    assert live() == baseline
    assert Value(2.0).name == ''


# =============================================================================
# Graph and ValueVector pin their nodes
# =============================================================================

def test_graph_and_vector_keep_a_builtin_graph_replayable(baseline):
    x = Value(0.5)
    w = Value(-1.5)
    y = ((x * w + 1).tanh() + (x ** 2).exp() / (w * w).sigmoid()).relu() - x.log()
    g = Graph(y)
    params = ValueVector([x, w])
    n_nodes = live() - baseline
    del x, w, y
    gc.collect()
    assert live() - baseline == n_nodes
    for xv, wv in [(0.5, -1.5), (0.25, 2.0), (1.5, 0.1)]:
        params.data = [xv, wv]
        params.zero_grad()
        g.forward()
        g.backward()
        # the same graph, rebuilt eagerly
        x2, w2 = Value(xv), Value(wv)
        y2 = ((x2 * w2 + 1).tanh() + (x2 ** 2).exp() / (w2 * w2).sigmoid()).relu() - x2.log()
        y2.backward()
        assert params.grad.tolist() == pytest.approx([x2.grad, w2.grad], rel=1e-12)
        del x2, w2, y2
    del g
    assert live() - baseline == 2
    del params
    assert live() == baseline


def test_vector_keeps_values_alive_and_releases_them(baseline):
    vs = [Value(float(i)) for i in range(100)]
    vv = ValueVector(vs)
    vv2 = ValueVector(vs[::2])
    del vs
    assert live() - baseline == 100
    vv.data = np.arange(100.0) * 2
    assert vv2.data.tolist() == [4.0 * i for i in range(50)]
    del vv
    assert live() - baseline == 50
    del vv2
    assert live() == baseline


def custom_tanh_with_forward(self):
    out = Value(math.tanh(self.data), (self,), 'tanh')

    def _backward():
        self.grad += (1 - out.data ** 2) * out.grad

    def _forward():
        out.data = math.tanh(self.data)
    out._backward = _backward
    out._forward = _forward
    return out


def test_graph_of_custom_ops_is_replayable_while_its_values_live(baseline, no_gc):
    x = Value(0.3)
    y = custom_tanh_with_forward(x * 2) + 1
    g = Graph(y)
    x.data = 0.7
    g.forward()
    g.backward()
    assert y.data == math.tanh(1.4) + 1
    assert math.isclose(x.grad, 2 * (1 - math.tanh(1.4) ** 2), rel_tol=1e-12)
    del g, y, x
    gc.collect()
    assert live() == baseline


def test_graph_of_custom_ops_is_replayable_after_dropping_its_values(baseline, no_gc):
    """Graph(root) pins every node of the graph, so dropping the Values must not
    change what a replay computes. A custom op's children, `_forward` and
    `_backward` live in its Value's __dict__: the Graph must keep those Values
    too, or the replay silently skips the op (stale data, zero gradient)."""
    x = Value(0.3)
    y = custom_tanh_with_forward(x * 2) + 1
    g = Graph(y)
    params = ValueVector([x])
    del y, x
    gc.collect()
    params.data = [0.7]
    g.forward()
    g.backward()
    grad = params.grad[0]
    del g, params                       # before asserting: a failure must not leak
    gc.collect()
    assert live() == baseline
    assert math.isclose(grad, 2 * (1 - math.tanh(1.4) ** 2), rel_tol=1e-12)


def test_graph_with_custom_op_without_forward_is_refused_without_leaking(baseline, no_gc):
    x = Value(0.3)
    y = c_tanh(x) * 2
    with pytest.raises(ValueError):
        Graph(y)
    y.backward()                        # eager backward still fine
    assert math.isclose(x.grad, 2 * (1 - math.tanh(0.3) ** 2), rel_tol=1e-12)
    del x, y
    gc.collect()
    assert live() == baseline


def test_uninitialised_graph_refuses_backward():
    g = Graph.__new__(Graph)
    assert len(g) == 0
    g.forward()
    with pytest.raises(ValueError):
        g.backward()


def test_graph_in_a_reference_cycle_with_its_custom_ops(baseline, no_gc):
    """A Graph holds the CustomValues of its custom ops; a closure that refers to
    the Graph closes a cycle through a C extension type: one collection frees it."""
    def build():
        x = Value(0.5)
        holder = {}
        out = Value(x.data * 2, (x,), 'double')

        def _backward():
            x.grad += 2 * out.grad
            holder['graph'].forward()      # the hook reaches its own Graph

        def _forward():
            out.data = x.data * 2
        out._backward = _backward
        out._forward = _forward
        holder['graph'] = g = Graph(out * x)
        g.backward()
        assert x.grad == 4 * 0.5           # d(2x * x)/dx = 4x
        return [weakref.ref(out), weakref.ref(_backward)]    # (a Graph has no weakrefs)
    refs = build()
    assert live() > baseline and all(r() is not None for r in refs)
    gc.collect()
    assert all(r() is None for r in refs)
    assert live() == baseline


def test_dot_matches_the_python_sum_and_releases_everything(baseline):
    from autograd.engine import dot
    ws = [Value(0.1 * i - 0.5) for i in range(50)]
    xs = [Value(0.3 * i) if i % 2 else 0.25 * i for i in range(50)]
    b = Value(0.7)
    fast = dot(ws, xs, b)
    slow = sum((w * x for w, x in zip(ws, xs)), b)
    assert fast.data == slow.data
    n_nodes = live() - baseline
    fast.backward()
    grads_fast = [w.grad for w in ws] + [b.grad]
    for v in ws + [b] + [x for x in xs if isinstance(x, Value)]:
        v.grad = 0.0
    del v
    slow.backward()
    assert grads_fast == [w.grad for w in ws] + [b.grad]
    del slow
    leaves = 50 + 25 + 1
    per_graph = (n_nodes - leaves) // 2
    assert live() - baseline == leaves + per_graph
    assert per_graph == 50 + 50 + 25            # products, sums, float constants
    del ws, xs
    assert live() - baseline == leaves + per_graph     # the graph keeps its leaves
    del fast
    assert live() - baseline == 1
    assert dot([], [], b) is b
    huge = dot([b] * 1_000_000, [1.0] * 1_000_000, b)
    b.grad = 0.0
    huge.backward()
    assert b.grad == 1_000_001.0
    del huge, b
    assert live() == baseline


# =============================================================================
# Custom _backward hooks that misbehave
# =============================================================================

def identity_op(x, hook):
    out = Value(x.data, (x,), 'id')

    def _backward():
        hook()
        x.grad += out.grad
    out._backward = _backward
    return out


def test_hook_that_creates_many_values_during_backward(baseline, no_gc):
    x = Value(0.5)
    junk = []

    def make_values():
        junk.extend(Value(float(i)) * 2 for i in range(20_000))
    y = (identity_op(x * 3, make_values) * x).tanh() + x
    y.backward()
    t = math.tanh(3 * 0.5 * 0.5)        # y = tanh(3x * x) + x
    assert math.isclose(x.grad, (1 - t ** 2) * 6 * 0.5 + 1, rel_tol=1e-12)
    assert live() - baseline > 40_000
    del junk, x, y
    gc.collect()
    assert live() == baseline


def test_hook_that_reallocates_the_arena_during_backward():
    """In a fresh process the arena is small: the hook forces realloc (the arena
    moves) between two chain rules of the same pass, and again during replay."""
    proc = run_script("""
        import gc, math
        from autograd import Value, Graph, ValueVector
        from autograd._core import arena_stats
        junk = []
        def grow():
            spare = arena_stats()['capacity'] - arena_stats()['live']
            junk.extend(Value(0.0) for _ in range(spare + 10))
        x = Value(0.5)
        mid = x * 3
        out = Value(mid.data, (mid,), 'id')
        def _backward():
            grow()
            mid.grad += out.grad
        def _forward():
            grow()
            out.data = mid.data
        out._backward = _backward
        out._forward = _forward
        y = (out * x).tanh() + x
        def zero_grads(root):
            seen, stack = {}, [root]
            while stack:
                v = stack.pop()
                if id(v) not in seen:
                    seen[id(v)] = v
                    v.grad = 0.0
                    stack.extend(v._prev)
        for rounds in range(3):
            cap = arena_stats()['capacity']
            zero_grads(y)
            y.backward()
            assert arena_stats()['capacity'] > cap
            t = math.tanh(1.5 * 0.5)
            assert math.isclose(x.grad, (1 - t ** 2) * 6 * 0.5 + 1, rel_tol=1e-12), x.grad
        g = Graph(y)
        params = ValueVector([x])
        for xv in (0.25, 0.75):
            cap = arena_stats()['capacity']
            params.data = [xv]
            params.zero_grad()
            g.forward()
            g.backward()
            assert arena_stats()['capacity'] > cap
            t = math.tanh(3 * xv * xv)
            assert math.isclose(x.grad, (1 - t ** 2) * 6 * xv + 1, rel_tol=1e-12), x.grad
            assert y.data == t + xv
        print(arena_stats())
        """)
    assert_clean_exit(proc)


def test_hook_that_deletes_the_graph_it_runs_in(baseline, no_gc):
    holder = {}

    def drop_everything():
        holder.clear()
        gc.collect()
        junk = [Value(float(i)) for i in range(5000)]   # reuses freed slots, if any
        del junk
    x = Value(1.5)
    holder['x'] = x
    holder['mid'] = mid = identity_op(x * x, drop_everything)
    holder['y'] = y = mid * 2 + x
    del x, mid
    y.backward()
    assert holder == {}
    (x_again,) = [v for v in reachable([y]) if v.data == 1.5 and not v._prev]
    assert x_again.grad == 2 * 2 * 1.5 + 1
    del y, x_again
    gc.collect()
    assert live() == baseline


def test_hook_that_raises_leaves_a_consistent_arena(baseline, no_gc):
    calls = []

    def boom():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("hook failed")
    x = Value(0.5)
    y = identity_op(x * 2, boom) * x + x
    with pytest.raises(RuntimeError, match="hook failed"):
        y.backward()
    # the failed pass left no node marked and no pin behind: a second pass works
    for v in reachable([y]):
        v.grad = 0.0
    del v
    y.backward()
    assert x.grad == 2 * 2 * 0.5 + 1
    del x, y
    gc.collect()
    assert live() == baseline


def test_hook_that_raises_during_graph_replay(baseline, no_gc):
    fail = [True]

    def maybe_fail():
        if fail[0]:
            raise KeyError("replay hook")
    x = Value(0.5)
    mid = identity_op(x * 2, maybe_fail)
    mid._forward = lambda: setattr(mid, 'data', x.data * 2)
    g = Graph(mid * x)
    with pytest.raises(KeyError):
        g.backward()
    fail[0] = False
    x.grad = 0.0
    g.forward()
    g.backward()
    assert x.grad == 2.0
    del g, mid, x
    gc.collect()
    assert live() == baseline


def test_hook_that_runs_backward_on_another_graph(baseline, no_gc):
    a = Value(3.0)
    seen = []

    def nested():
        z = a * a * a
        z.backward()                   # a.grad += 27
        seen.append(z.data)
    x = Value(2.0)
    y = identity_op(x * x, nested) + 1
    y.backward()
    assert seen == [27.0]
    assert x.grad == 4.0 and a.grad == 27.0
    del a, x, y
    gc.collect()
    assert live() == baseline


def test_hook_that_runs_backward_on_its_own_graph_recurses_cleanly(baseline, no_gc):
    holder = []

    def again():
        holder[0].backward()
    x = Value(2.0)
    holder.append(identity_op(x, again) * 1.0)
    with pytest.raises(RecursionError):
        holder[0].backward()
    holder.clear()
    del x
    gc.collect()
    assert live() == baseline
    v = Value(2.0)
    (v * v).backward()
    assert v.grad == 4.0


def test_hook_that_tries_to_reinitialise_values_of_its_graph(baseline, no_gc):
    x = Value(2.0)
    w = Value(3.0)
    refused = []

    def reinit():
        for v in (x, w):
            try:
                v.__init__(100.0)
            except RuntimeError:
                refused.append(v)
    y = identity_op(x * w, reinit) + x
    y.backward()
    assert len(refused) == 2
    assert (x.data, x.grad, w.data, w.grad) == (2.0, 3.0 + 1.0, 3.0, 2.0)
    del refused, x, w, y
    gc.collect()
    assert live() == baseline


def test_threads_building_and_dropping_graphs_concurrently():
    """Threads switch inside hooks, __float__, gc.collect(): the arena must stay
    consistent (every thread builds, backpropagates and drops its own graphs over
    shared leaves, with custom ops whose hooks allocate)."""
    proc = run_script("""
        import gc, math, random, sys, threading
        from autograd import Value, Graph, ValueVector
        from autograd._core import arena_stats
        sys.setswitchinterval(1e-6)
        shared = [Value(float(i) / 50) for i in range(50)]
        errors = []
        def ctanh(v):
            out = Value(math.tanh(v.data), (v,), 'tanh')
            def _backward():
                v.grad += (1 - out.data ** 2) * out.grad
                [Value(0.0) * 2 for _ in range(50)]
            def _forward():
                out.data = math.tanh(v.data)
            out._backward = _backward
            out._forward = _forward
            return out
        def work(seed):
            rng = random.Random(seed)
            try:
                for it in range(400):
                    y = rng.choice(shared)
                    for k in range(rng.randint(1, 60)):
                        r = rng.random()
                        if r < 0.2:
                            y = ctanh(y)
                        elif r < 0.5:
                            y = y * rng.choice(shared) + 0.5
                        else:
                            y = (y + 1.0).tanh()
                    y.backward()
                    if it % 10 == 0:
                        g = Graph(y)
                        g.forward()
                        g.backward()
                        ValueVector(shared[:10]).zero_grad()
                        del g
                    if it % 37 == 0:
                        gc.collect()
                    list(y._prev)
                    del y
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gc.collect()
        assert not errors, errors[:3]
        assert arena_stats()['live'] == 50, arena_stats()
        """)
    assert_clean_exit(proc)


# =============================================================================
# Interpreter shutdown
# =============================================================================

SHUTDOWN_SCRIPTS = {
    "module_globals": """
        from autograd import Value
        a = Value(1.0, name='a')
        b = a * 2 + 3
        b.name = 'b'
        c = (b.tanh() * a).exp()
        c.backward()
        """,
    "reference_cycles": """
        import gc
        from autograd import Value
        a = Value(1.0); b = a * a
        lst = [a, b]; lst.append(lst)
        d = {'b': b, 'a': a}; d['d'] = d
        class Box: pass
        box = Box(); box.v = b * 3; box.me = box
        del lst, d, box
        gc.disable()          # the cycles are still pending at exit
        """,
    "custom_closures_pending_gc": """
        import gc, math
        from autograd import Value
        def tanh(self):
            out = Value(math.tanh(self.data), (self,), 'tanh')
            def _backward():
                self.grad += (1 - out.data ** 2) * out.grad
            out._backward = _backward
            return out
        gc.disable()
        x = Value(0.5)
        for i in range(2000):
            x = tanh(x * 1.01 + 0.1)
        x.backward()
        keep = x
        del x
        y = tanh(Value(2.0))
        del y                 # garbage, never collected before shutdown
        """,
    "graph_and_vector_alive": """
        import math
        from autograd import Value, Graph, ValueVector
        x = Value(0.5); w = Value(2.0)
        y = (x * w).tanh() + x.exp()
        g = Graph(y)
        vv = ValueVector([x, w])
        del x, w, y
        g.forward(); g.backward()
        out = Value(1.0, (Value(3.0),), 'id')   # a custom op too
        out._forward = lambda: None
        out._backward = lambda: None
        g2 = Graph(out * 2)
        """,
    "million_nodes_alive": """
        from autograd import Value, Graph
        x = Value(0.5)
        y = x
        for i in range(1_000_000):
            y = y + 1e-6
        y.backward()
        g = Graph(y)
        """,
    "del_at_shutdown_builds_values": """
        from autograd import Value, Graph, ValueVector
        class Holder:
            def __init__(self, V=Value, G=Graph, VV=ValueVector):
                self.V, self.G, self.VV = V, G, VV
                self.v = V(2.0) * 3
            def __del__(self):
                v = self.V(3.0)
                w = (v * v + self.v).tanh()
                w.backward()
                self.G(w).backward()
                self.VV([v, w]).sgd_step(0.1)
        h = Holder()
        h.me = h              # in a cycle: dies in the final collection
        h2 = Holder()         # dies when module globals are cleared
        """,
    "value_subclass_and_names": """
        from autograd import Value
        class MyValue(Value):
            def square(self):
                out = MyValue(self.data ** 2, (self,), 'sq')
                def _backward():
                    self.grad += 2 * self.data * out.grad
                out._backward = _backward
                return out
        vals = [MyValue(float(i), name=f'v{i}').square() + 1 for i in range(1000)]
        vals[-1].backward()
        import autograd._core as core
        core.keep = vals      # Values owned by the extension module itself
        """,
    "atexit_backward": """
        import atexit
        from autograd import Value
        x = Value(2.0)
        y = x * x
        def at_exit():
            y.backward()
            assert x.grad == 4.0
        atexit.register(at_exit)
        """,
    "thread_alive_at_exit": """
        import threading, time
        from autograd import Value
        stop = False
        def work():
            v = Value(1.0)
            while not stop:
                w = (v * 2).tanh()
                w.backward()
        t = threading.Thread(target=work, daemon=True)
        t.start()
        time.sleep(0.05)
        """,
}


@pytest.mark.parametrize("name", sorted(SHUTDOWN_SCRIPTS))
def test_interpreter_shutdown(name):
    assert_clean_exit(run_script(SHUTDOWN_SCRIPTS[name]))


# =============================================================================
# Re-initialisation, uninitialised Values, odd data
# =============================================================================

def test_reinit_a_live_value_is_refused(baseline):
    """A Value is bound to its node for life: __init__ again raises RuntimeError
    and changes nothing (the handle table stays one handle per node)."""
    x = Value(2.0, name='x')
    y = x * 3
    for args in [(5.0,), (7.0, (), '', 'again'), ("bad",), (1.0, (y,), 'op')]:
        with pytest.raises(RuntimeError):
            x.__init__(*args)
        assert (x.data, x.name, x._prev) == (2.0, 'x', set())
    del args
    y.backward()
    assert x.grad == 3.0
    assert any(p is x for p in y._prev)
    assert live() - baseline == 3
    del x, y
    assert live() == baseline


def test_init_after_new_binds_a_fresh_node(baseline):
    v = Value.__new__(Value)
    v.__init__(3.0, label='v')
    assert (v.data, v.name) == (3.0, 'v')
    assert live() - baseline == 1
    with pytest.raises(RuntimeError):
        v.__init__(4.0)
    w = Value.__new__(Value)
    with pytest.raises(TypeError):
        w.__init__(1.0, (v,), 'op')      # a plain Value has no __dict__ for the closure
    assert live() - baseline == 1
    del v, w
    assert live() == baseline


def test_reinit_a_custom_value_is_refused(baseline, no_gc):
    a = Value(1.0)
    out = c_mul(a, a)
    top = out + 1
    with pytest.raises(RuntimeError):
        out.__init__(4.0)
    top.backward()
    assert a.grad == 2.0 and out.data == 1.0
    del a, out, top
    gc.collect()
    assert live() == baseline


def test_value_new_without_init_is_the_null_node(baseline):
    """Value.__new__(Value) skips __init__: the handle points at slot 0, the null
    node, shared by every uninitialised Value. It reads as 0.0 (so repr works), but
    writing to it, computing with it or backpropagating from it raises ValueError:
    one uninitialised Value must not change another's data."""
    u = Value.__new__(Value)
    assert live() == baseline
    assert (u.data, u.grad, u._prev, u._op, u.name) == (0.0, 0.0, set(), '', '')
    repr(u)
    for write in (lambda: setattr(u, 'data', 1.0), lambda: setattr(u, 'grad', 1.0),
                  lambda: u * 3, lambda: 3 * u, lambda: u + Value(1.0), lambda: Value(1.0) - u,
                  lambda: u ** 2, lambda: u.relu(), lambda: -u, lambda: u.backward(),
                  lambda: Graph(u)):
        with pytest.raises(ValueError, match="__init__"):
            write()
    u.name = 'ignored'
    assert u.name == ''
    with pytest.raises(AttributeError):
        u._backward = lambda: None
    assert Value.__new__(Value).data == 0.0
    del u
    assert live() == baseline
    c = CustomValue.__new__(CustomValue)
    assert c.data == 0.0 and c._prev == set()
    del c


def test_value_subclass_that_skips_super_init(baseline):
    class Lazy(Value):
        def __init__(self, x):
            self.x = x                   # forgot super().__init__
    z = Lazy(3.0)
    assert z.data == 0.0 and z.x == 3.0
    with pytest.raises(ValueError, match="super"):
        z * 2
    del z
    assert live() == baseline


@pytest.mark.parametrize("x, expected", [
    (math.inf, math.inf), (-math.inf, -math.inf), (0.0, 0.0), (True, 1.0), (False, 0.0),
    (np.float32(0.1), float(np.float32(0.1))), (np.float64(-2.5), -2.5),
    (np.int64(2 ** 62), float(2 ** 62)), (np.int8(-7), -7.0), (Fraction(1, 3), 1 / 3),
    (2 ** 1000, float(2 ** 1000)), (-(2 ** 63), -float(2 ** 63)), (5e-324, 5e-324),
])
def test_odd_data(baseline, x, expected):
    v = Value(x)
    assert v.data == expected and type(v.data) is float
    w = Value(0.0)
    w.data = x
    w.grad = x
    assert w.data == expected and w.grad == expected
    r = v * 1.0 + w
    r.backward()
    assert v.grad == 1.0
    del v, w, r
    assert live() == baseline


def test_nan_and_negative_zero(baseline):
    v = Value(-0.0)
    assert math.copysign(1.0, v.data) == -1.0
    assert math.copysign(1.0, v.relu().data) == -1.0     # micrograd: 0 if x < 0 else x
    n = Value(math.nan)
    for r in (n + 1, n * 0, n.tanh(), n.exp(), n.log(), n.sigmoid(), n ** 2, n.relu()):
        assert math.isnan(r.data)
        r.backward()
    assert math.isnan(n.grad)
    del v, n, r
    assert live() == baseline


@pytest.mark.parametrize("big", [10 ** 400, -(10 ** 400), Fraction(10 ** 400, 3)])
def test_ints_too_large_for_a_float(baseline, big):
    with pytest.raises(OverflowError):
        Value(big)
    v = Value(1.0)
    with pytest.raises(OverflowError):
        v.data = big
    with pytest.raises(OverflowError):
        v.grad = big
    with pytest.raises(OverflowError):
        v + big
    with pytest.raises(OverflowError):
        big * v
    with pytest.raises(OverflowError):
        v ** big
    assert v.data == 1.0 and v.grad == 0.0
    assert live() - baseline == 1
    del v
    assert live() == baseline


@pytest.mark.parametrize("bad", ["1.0", None, 1j, [1.0], np.array([1.0, 2.0]),
                                 {1.0}, object()])
def test_non_real_data_is_a_type_error(baseline, bad):
    with pytest.raises(TypeError):
        Value(bad)
    v = Value(1.0)
    with pytest.raises(TypeError):
        v.data = bad
    with pytest.raises(TypeError):
        v.grad = bad
    if not isinstance(bad, np.ndarray):    # numpy broadcasts `v + array` elementwise
        with pytest.raises(TypeError):
            v + bad
    with pytest.raises(TypeError):
        ValueVector([v, bad])
    del v
    assert live() == baseline


def test_failed_ops_allocate_nothing(baseline):
    x = Value(0.0)
    big = Value(1000.0)
    neg = Value(-8.0)
    huge = Value(1e300)
    cases = [(ZeroDivisionError, lambda: 1 / x), (ZeroDivisionError, lambda: x ** -1),
             (OverflowError, lambda: big.exp()), (ValueError, lambda: x.log()),
             (ValueError, lambda: neg ** 0.5), (OverflowError, lambda: huge ** 2),
             (TypeError, lambda: x + "a"), (TypeError, lambda: pow(x, 2, 3))]
    before = live()
    for exc, fn in cases:
        with pytest.raises(exc):
            fn()
        assert live() == before
    del x, big, neg, huge
    assert live() == baseline


# =============================================================================
# Crashes and corruptions found by this file (fixed in the core since): each
# repro runs in a subprocess, as a regression test.
# =============================================================================

def test_copy_and_pickle_do_not_alias_a_node():
    """copy.copy / deepcopy / pickle use Cython's auto-generated __reduce__, which
    stores the bare node index: the copy is a second handle on the same node that
    took no reference. Dropping it frees the node under the original (whose data
    then changes when the slot is reused). Either refuse, or copy properly."""
    proc = run_script("""
        import copy, pickle
        from autograd import Value
        from autograd._core import arena_stats
        copiers = {'copy': copy.copy, 'deepcopy': copy.deepcopy,
                   'pickle': lambda v: pickle.loads(pickle.dumps(v))}
        for name, fn in copiers.items():
            a = Value(2.0)
            b = a * 3
            base = arena_stats()['live']
            try:
                c = fn(b)
            except (TypeError, pickle.PicklingError):
                continue
            del c
            junk = [Value(7.0) for _ in range(10)]
            assert b.data == 6.0, (name, b.data)
            assert arena_stats()['live'] >= base, name
            del junk, a, b
        print('ok')
        """)
    assert_clean_exit(proc)


def test_unpickling_a_value_in_a_fresh_process_does_not_crash(tmp_path):
    path = tmp_path / "v.pkl"
    proc = run_script(f"""
        import pickle
        from autograd import Value
        vs = [Value(float(i)) for i in range(3_000_000)]
        try:
            data = pickle.dumps(vs[-1])
        except (TypeError, pickle.PicklingError):
            data = b''
        open({str(path)!r}, 'wb').write(data)
        """)
    assert_clean_exit(proc)
    proc = run_script(f"""
        import pickle
        from autograd import Value
        data = open({str(path)!r}, 'rb').read()
        if data:
            try:
                v = pickle.loads(data)
            except (TypeError, pickle.UnpicklingError, ValueError):
                pass
            else:
                v.data = 1.0
                print(v.data, v * 2)
        """)
    assert_clean_exit(proc)


def test_weakref_callback_cannot_resurrect_a_dying_value():
    """A Value subclass leaf under a plain Value: the parent's node refers to the
    leaf's node but not to its Python object. While the leaf object is being
    deallocated (refcount 0), its weakref callbacks and its __dict__'s finalizers
    run before Value.__dealloc__ clears handles[idx]; reaching the node through
    `_prev` then returns the dying object, and the user keeps a dangling pointer."""
    proc = run_script("""
        import gc, weakref
        from autograd import Value
        class MyValue(Value):
            pass
        x = MyValue(1.0)
        p = x + 2
        leaked = []
        def callback(_):
            leaked.extend(v for v in p._prev if v.data == 1.0)
        wr = weakref.ref(x, callback)
        del x
        junk = [MyValue(5.0) for i in range(100)]
        assert len(leaked) == 1
        for v in leaked:
            assert v.data == 1.0, v.data
            repr(v)
        # the handle made in the callback is the node's one handle from now on
        (again,) = [v for v in p._prev if v.data == 1.0]
        assert again is leaked[0]
        p.backward()
        assert again.grad == 1.0
        del leaked, again, v
        gc.collect()
        print('ok')
        """)
    assert_clean_exit(proc)


def test_finalizer_in_a_dying_values_dict_cannot_reach_it():
    proc = run_script("""
        import gc
        from autograd import Value
        class MyValue(Value):
            pass
        leaked = []
        class Spy:
            def __init__(self, parent):
                self.parent = parent
            def __del__(self):
                leaked.extend(self.parent._prev)
        x = MyValue(1.0)
        p = x * 2
        x.spy = Spy(p)
        del x
        junk = [MyValue(5.0) for i in range(100)]
        for v in leaked:
            assert v.data in (1.0, 2.0), v.data
        del leaked
        gc.collect()
        print('ok')
        """)
    assert_clean_exit(proc)


def test_graph_replay_hook_cannot_reach_a_dying_custom_value():
    """Same cause through Graph replay: a pinned custom node whose CustomValue is
    being deallocated; a weakref callback replays the graph, which calls
    python_hook(<Value>handles[i]) on the refcount-0 object (incref/decref:
    deallocated twice)."""
    proc = run_script("""
        import gc, weakref
        from autograd import Value, Graph
        x = Value(0.5)
        out = Value(x.data, (x,), 'id')
        def _backward():
            x.grad += out.grad
        out._backward = _backward
        out._forward = lambda: None
        g = Graph(out)
        def callback(_):
            g.backward()
        wr = weakref.ref(out, callback)
        del _backward               # the closure's cell is out's only other owner
        out._backward = lambda: None
        del out
        gc.collect()
        g.backward()
        print('ok')
        """)
    assert_clean_exit(proc)


def test_name_that_is_a_str_subclass_cannot_run_code_while_nodes_are_freed():
    """The name setter stores str(value), assumed an exact str ('freeing it runs no
    user code'); str() of a str subclass whose __str__ returns self is that
    subclass. node_free_cascade pops it from the side table mid-loop, its __del__
    runs and grows the arena: the cascade's `n` pointer dangles (realloc)."""
    proc = run_script("""
        from autograd import Value
        from autograd._core import arena_stats
        pre = [Value(0.0) for _ in range(1 << 20)]   # a big (mmap'ed) arena
        del pre
        keep = []
        class Name(str):
            def __str__(self):
                return self
            def __del__(self):
                n = arena_stats()['capacity'] + 10
                keep.extend(Value(float(i)) for i in range(n))
        x = Value(1.0)
        for i in range(50):
            x = x + 1.0
        x.name = Name('n')
        stored = type(x.name)
        x = Value(1.0)                # frees the chain: names.pop() runs __del__
        print('ok', len(keep))
        assert stored is str, stored
        """)
    assert_clean_exit(proc)


def test_custom_children_that_are_not_values_do_not_crash():
    """A CustomValue's `_children` is a plain attribute of its __dict__; Graph.record
    casts every element to Value without checking (`(<Value>child).idx`), reading
    an arena index out of a float's bytes."""
    proc = run_script("""
        from autograd import Value, Graph
        a = Value(1.0)
        out = Value(2.0, (a,), 'f')
        out._forward = lambda: None
        out._children = (a, 1.1, 'x', None)
        for action in (out.backward, lambda: Graph(out), lambda: out._prev,
                       lambda: (out * 2).backward()):
            try:
                action()
            except (TypeError, ValueError):
                pass
        print('ok')
        """)
    assert_clean_exit(proc)


@pytest.mark.parametrize("during", ["backward", "forward"])
def test_reinitialising_a_graph_while_it_runs(during):
    """A hook that calls g.__init__(...) on the Graph being replayed must not make
    record() release and free `order` (and unpin its nodes) while
    run_backward/forward is still walking it: refused, and the pass completes."""
    proc = run_script(f"""
        from autograd import Value, Graph
        def identity(v, forward_hook, backward_hook):
            out = Value(v.data, (v,), 'id')
            def _backward():
                backward_hook()
                v.grad += out.grad
            def _forward():
                forward_hook()
                out.data = v.data
            out._backward = _backward
            out._forward = _forward
            return out
        refused = []
        def reinit():
            try:
                g.__init__(Value(1.0))
            except RuntimeError:
                refused.append(True)
        nothing = lambda: None
        x = Value(0.5)
        y = identity(x, {'reinit' if during == 'forward' else 'nothing'}, nothing)
        for _ in range(200_000):
            y = y * 1.0
        y = identity(y, nothing, {'reinit' if during == 'backward' else 'nothing'})
        g = Graph(y)
        del y
        x.data = 2.0
        g.forward()
        g.backward()
        assert refused == [True], refused
        assert x.grad == 1.0, x.grad
        assert len(g) == 2 * 200_000 + 3, len(g)
        print('ok')
        """)
    assert_clean_exit(proc)


def test_out_of_memory_leaves_no_node_behind():
    """With the address space capped, the arena cannot grow: ops raise MemoryError.
    A failed op must not leave nodes behind. binary_op/apply_op allocate a number
    operand's constant leaf, then the result: when the result's allocation fails
    the constant keeps its creation reference forever. dot() fails the same way
    mid-loop, and also keeps the running sum's extra reference: every node made so
    far leaks, and so does `start` (the partial sum refers to it)."""
    require_facility("address space cap")
    proc = run_script("""
        import gc, psutil, resource
        from autograd import Value
        from autograd.engine import dot
        from autograd._core import arena_stats

        def live():
            return arena_stats()['live']

        def address_space():
            return psutil.Process().memory_info().vms

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + 150 * 2**20, hard))
        x = Value(1.0)
        y = x
        try:
            while True:                    # fill the arena until it cannot grow
                y = y + x
                if live() == 1000:
                    spares = [Value(0.0) for _ in range(6)]
                    start = Value(0.5)
        except MemoryError:
            pass
        # room for Python objects, not for a bigger arena
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + 8 * 2**20, hard))
        assert live() == arena_stats()['capacity'] - 1, arena_stats()   # full
        leaked = {}
        del spares[0]                      # one free slot: a constant fits, not its result
        before = live()
        try:
            x + 1.0
        except MemoryError:
            leaked['x + 1.0'] = live() - before
        del spares[:5]                     # five free slots: dot fails at its 2nd term
        before = live()
        try:
            dot([x, x, x], [1.0, 2.0, 3.0], start)
        except MemoryError:
            leaked['dot'] = live() - before
        del start                          # its node must go
        leaked['start'] = live() - (before - 1)
        assert leaked == {'x + 1.0': 0, 'dot': 0, 'start': 0}, leaked
        del x, y
        gc.collect()
        assert live() == 0, arena_stats()
        """)
    assert_clean_exit(proc)


def test_sweep_started_by_a_finalizer_inside_a_sweep():
    """The sweep marks nodes with its number. custom_children() allocates (a list)
    when a custom op's `_children` holds non-Values; a collection there can run a
    finalizer that calls backward(): a nested sweep re-marks the nodes the outer
    sweep already placed, which then walks them again. The Graph's order holds
    them twice (wrong length, pins counted twice) and its backward applies their
    rules twice (wrong gradients)."""
    proc = run_script("""
        import gc, math
        from autograd import Value, Graph

        x = Value(0.5)
        shared = x
        for i in range(20):
            shared = shared * 1.5 + 0.25       # 81 nodes, x included
        other_root = shared * 2.0              # another graph over the same nodes
        out = Value(shared.data, (shared,), 'id')
        out._forward = lambda: None
        out._backward = lambda: None
        out._children = (shared, 'not a Value')
        root = shared + out                    # shared is placed before out is expanded
        fired = []
        armed = [False]

        class Bomb:
            def __del__(self):
                if armed[0]:
                    fired.append(1)
                    other_root.backward()      # a sweep inside the sweep
                again = Bomb()                 # garbage for the next collection
                again.me = again

        bomb = Bomb()
        bomb.me = bomb
        del bomb
        gc.collect()
        old = gc.get_threshold()
        gc.set_threshold(1, 1000, 1000)        # collect at (almost) every allocation
        armed[0] = True
        g = Graph(root)
        armed[0] = False
        gc.set_threshold(*old)
        assert fired, 'no finalizer ran during the sweep'
        seen, stack = {}, [root]
        while stack:                           # zero every grad the nested passes set
            v = stack.pop()
            if id(v) not in seen:
                seen[id(v)] = v
                v.grad = 0.0
                stack.extend(v._prev)
        g.backward()
        assert (len(g), x.grad) == (1 + 1 + 81, 1.5 ** 20), (len(g), x.grad)
        """)
    assert_clean_exit(proc)


def test_local_backward_of_none_is_refused():
    """`Value._backward` of a built-in op returns an `_LocalBackward`; its type
    accepts None (`def __cinit__(self, Value v)` without `not None`), and calling
    it reads an arena index out of Py_None's memory and writes gradients there."""
    proc = run_script("""
        from autograd import Value
        LocalBackward = type((Value(1.0) * 2)._backward)
        try:
            fn = LocalBackward(None)
        except TypeError:
            print('refused')
        else:
            try:
                fn()
            except (TypeError, AttributeError):
                print('refused at call')
            else:
                raise SystemExit('called a chain rule on None')
        """)
    assert_clean_exit(proc)


def test_prev_survives_an_arena_move_during_its_own_allocation():
    """`_prev` makes a set, which may run the cycle collector; a finalizer that
    grows the arena then moves it. `_prev` must not read the node through a
    pointer taken before (a use-after-free found on review)."""
    proc = run_script("""
        import gc
        from autograd import Value
        from autograd._core import arena_stats
        keep = []
        while arena_stats()['capacity'] < 1 << 18:      # a big, mmapped arena
            keep.append(Value(0.0))
        a, b = Value(2.0), Value(3.0)
        v = a * b
        del a, b
        st = arena_stats()
        fill = [Value(0.0) for _ in range(st['capacity'] - st['live'] - 1)]   # full
        class Fin:
            def __del__(self):
                global grown
                grown = [Value(1.0) for _ in range(1000)]                     # moves it
        gc.disable()
        f = Fin(); f.self = f; del f
        gc.set_threshold(1)
        gc.enable()
        before = arena_stats()['capacity']
        prev = sorted(x.data for x in v._prev)
        assert arena_stats()['capacity'] > before, 'the finalizer did not run'
        assert prev == [2.0, 3.0], prev
        print('ok')
        """)
    assert_clean_exit(proc)
