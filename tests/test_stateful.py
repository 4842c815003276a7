"""A random walk through everything a user can do to Values, checked against a model.

The state machine creates leaves, combines Values with every op (operands may be
constants, on either side), builds micrograd-style custom ops (closures that
reference `out` and their operands, one of which allocates during backward),
computes `dot(ws, xs, start)` (the C loop behind nn.Neuron), deletes Values, runs backward, zeroes and sets grads and data, records Graphs and
replays them, moves data through ValueVectors, and reads `_prev` and names.

The model is pure Python:

* data follows Python's float semantics (the exception Python raises for the same
  computation on floats, ValueError where Python would return a complex number);
* gradients follow each op's local rule in IEEE arithmetic (the model applies them
  in its own topological order, so grads are compared with a tolerance scaled by
  the sum of the magnitudes that flowed into each one);
* which arena nodes are alive: a Value's handle lives while the user holds it, a
  live CustomValue refers to it (a custom op's children, a managed op's operands)
  or a Graph over custom ops keeps it (it holds the CustomValues of its graph);
  a node lives while its handle, a live parent node, a Graph or a ValueVector
  refers to it. ``arena_stats()['live']`` must equal that count after every step
  (every deletion is followed by ONE gc.collect(), which must free custom-op cycles).

A forward replay that raises leaves the nodes of its graph in an unspecified
state: the model marks their data and grads unknown (None) until recomputed.
"""
import ctypes
import gc
import math
import sys

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from autograd import CustomValue, Graph, Value, ValueVector
from autograd.engine import dot
from autograd._core import arena_stats

# The C library's pow and log, as the core calls them: on POSIX the symbols the
# process already resolves (the libm our extension binds to; find_library("m") needs
# ldconfig or a compiler on musl); on Windows the Universal C Runtime that MSVC's /MD
# builds call (find_library("m") is None there).
_libm = ctypes.CDLL("ucrtbase") if sys.platform == "win32" else ctypes.CDLL(None)
_libm.pow.restype = _libm.log.restype = ctypes.c_double
_libm.pow.argtypes = [ctypes.c_double, ctypes.c_double]
_libm.log.argtypes = [ctypes.c_double]
INF = math.inf
NAN = math.nan
FORWARD_ERRORS = (ZeroDivisionError, OverflowError, ValueError)
MAX_VALUES = 30


def live():
    return arena_stats()["live"]


# -----------------------------------------------------------------------------
# The model's arithmetic
# -----------------------------------------------------------------------------

def c_pow(a, b):
    return _libm.pow(a, b)


def c_log(a):
    return _libm.log(a)


def ieee_div(x, y):
    if y != 0 or math.isnan(y):
        return x / y
    if x == 0 or math.isnan(x):
        return NAN
    return math.copysign(INF, x) * math.copysign(1.0, y)


def spec_pow(a, b):
    if math.isfinite(a) and math.isfinite(b) and a < 0 and b != math.floor(b):
        raise ValueError("Python would return a complex number")
    return a ** b


def spec_sigmoid(a):
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


SPEC = {   # Python's float semantics, raising what Python raises
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": spec_pow,
    "powc": spec_pow,
    "neg": lambda a, b: -a,
    "relu": lambda a, b: 0.0 if a < 0 else a,
    "tanh": lambda a, b: math.tanh(a),
    "exp": lambda a, b: math.exp(a),
    "log": lambda a, b: math.log(a),
    "sigmoid": lambda a, b: spec_sigmoid(a),
    # custom ops (their _forward)
    "ctanh": lambda a, b: math.tanh(a),
    "cmul": lambda a, b: a * b,
    "cnoisy": lambda a, b: a,
}


def local_rules(node):
    """[(operand, contribution(g))] of node's chain rule: operand.grad += contribution(g).
    Never raises (IEEE). None when a datum it needs is unknown."""
    op = node.op
    d = node.data
    a = node.kids[0].data if node.kids else None
    b = node.kids[1].data if len(node.kids) > 1 else None
    k = node.kids
    if op == "add":
        return [(k[0], lambda g: g), (k[1], lambda g: g)]
    if op == "sub":
        return [(k[0], lambda g: g), (k[1], lambda g: -g)]
    if op in ("mul", "cmul"):
        if a is None or b is None:
            return None
        return [(k[0], lambda g: b * g), (k[1], lambda g: a * g)]
    if op == "div":
        if a is None or b is None:
            return None
        return [(k[0], lambda g: ieee_div(g, b)), (k[1], lambda g: -ieee_div(g * a, b * b))]
    if op == "neg":
        return [(k[0], lambda g: -g)]
    if op in ("pow", "powc"):
        if a is None or b is None or d is None:
            return None
        out = []
        if b != 0.0:                            # d(a**0)/da = 0, also at a == 0
            out.append((k[0], lambda g: (b * c_pow(a, b - 1.0)) * g))
        if op == "pow" and not (a == 0.0 and b >= 0.0):
            out.append((k[1], lambda g: d * c_log(a) * g))
        return out
    if d is None:
        return None
    if op == "relu":
        return [(k[0], lambda g: (1.0 if d > 0.0 else 0.0) * g)]
    if op in ("tanh", "ctanh"):
        return [(k[0], lambda g: (1.0 - d * d) * g)]
    if op == "exp":
        return [(k[0], lambda g: d * g)]
    if op == "log":
        if a is None:
            return None
        return [(k[0], lambda g: ieee_div(g, a))]
    if op == "sigmoid":
        return [(k[0], lambda g: d * (1.0 - d) * g)]
    if op == "cnoisy":
        return [(k[0], lambda g: g)]
    return []                                   # leaf


class Node:
    """A model node. `kids` are its operands: arena edges for built-in ops (the
    constant of `x ** 2` included), Python references for custom ops."""
    __slots__ = ("op", "kids", "managed", "custom", "data", "grad", "scale", "name",
                 "__weakref__")

    def __init__(self, op, kids, data, managed, custom=False, name=""):
        self.op = op
        self.kids = tuple(kids)
        self.data = data
        self.grad = 0.0
        self.scale = 0.0        # sum of the magnitudes added to grad: the tolerance's scale
        self.managed = managed
        self.custom = custom
        self.name = name

    @property
    def leaf(self):
        return self.op == "leaf"

    def arena_kids(self):
        return () if self.custom else self.kids

    def handle_kids(self):
        """Values that this node's live handle keeps alive (its __dict__'s _children)."""
        return self.kids if self.managed else ()


def topo(root):
    """Nodes reachable from root, operands before results (a ** c's hidden exponent
    is no Value of the graph: the core neither orders nor counts it)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        for k in (n.kids[:1] if n.op == "powc" else n.kids):
            if id(k) not in seen:
                stack.append((k, False))
    return order


def backprop(order, root):
    """root.grad = 1, then every node's rule, results before operands."""
    root.grad, root.scale = 1.0, 1.0
    for n in reversed(order):
        rules = local_rules(n)
        if not rules:
            if rules is None:
                for k in n.kids:
                    k.grad = k.scale = None
            continue
        for k, contribution in rules:
            if n.grad is None or k.grad is None:
                k.grad = k.scale = None
                continue
            k.grad = k.grad + contribution(n.grad)
            k.scale = k.scale + abs(contribution(n.scale))


def same_data(actual, expected):
    if expected is None:
        return True
    if math.isnan(expected):
        return math.isnan(actual)
    return actual == expected and math.copysign(1, actual) == math.copysign(1, expected)


def close_grad(actual, expected, scale):
    if expected is None or scale is None or not math.isfinite(scale):
        return True             # unknown, or overflowed: the summation order matters
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= 1e-9 * scale + 1e-300


# -----------------------------------------------------------------------------
# Custom ops, written micrograd's way
# -----------------------------------------------------------------------------

def custom_op(kind, operands, noise):
    if kind == "ctanh":
        (v,) = operands
        out = Value(math.tanh(v.data), (v,), "ctanh")

        def _backward():
            v.grad += (1 - out.data * out.data) * out.grad

        def _forward():
            out.data = math.tanh(v.data)
    elif kind == "cmul":
        a, b = operands
        out = Value(a.data * b.data, (a, b), "cmul")

        def _backward():
            a.grad += b.data * out.grad
            b.grad += a.data * out.grad

        def _forward():
            out.data = a.data * b.data
    else:
        (v,) = operands
        out = Value(v.data, (v,), "cnoisy")

        def _backward():
            junk = [Value(float(i)) * 2.0 for i in range(noise)]   # arena churn mid-pass
            del junk
            v.grad += out.grad

        def _forward():
            out.data = v.data
    out._backward = _backward
    out._forward = _forward
    return out


# -----------------------------------------------------------------------------
# Strategies
# -----------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5, 1e308, -1e308, 1e-310, 700.0, INF, -INF, NAN]
DATA = st.one_of(st.floats(-4, 4), st.sampled_from(SPECIAL), st.integers(-3, 3))
CONSTANTS = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, 3.0, -0.5, 1e300, INF, NAN]),
                      st.integers(-3, 3))
BINARY = ["add", "sub", "mul", "div", "pow"]
UNARY = ["neg", "relu", "tanh", "exp", "log", "sigmoid"]
NAMES = st.sampled_from(["", "a", "w", "loss", "ünï"])

PYOP = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y, "pow": lambda x, y: x ** y}


class LifetimeMachine(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        self.vals = {}          # key -> (Value, Node): the Values the user holds
        self.next_key = 0
        self.graphs = []        # [Graph, order, root Node]
        self.vectors = []       # [ValueVector, [Node]]
        self.baseline = None

    # -- setup and teardown ----------------------------------------------------

    @initialize(xs=st.lists(DATA, min_size=2, max_size=4))
    def start(self, xs):
        gc.collect()
        gc.freeze()             # keep every gc.collect() below cheap
        self.baseline = live()
        for x in xs:
            self.hold(Value(x), Node("leaf", (), float(x), False))

    def teardown(self):
        if self.baseline is None:
            return
        self.vals.clear()
        self.graphs.clear()
        self.vectors.clear()
        gc.collect()            # ONE collection frees every custom-op cycle
        left = live() - self.baseline
        gc.unfreeze()
        failing = sys.exc_info()[0] is not None     # a step failed: its traceback holds Values
        assert failing or left == 0, f"{left} nodes leaked"

    # -- helpers ---------------------------------------------------------------

    def hold(self, value, node):
        self.vals[self.next_key] = (value, node)
        self.next_key += 1

    def pick(self, data):
        return self.vals[data.draw(st.sampled_from(sorted(self.vals, reverse=True)))]

    def expected_live(self):
        handles = {}
        stack = [n for _, n in self.vals.values()]
        for g in self.graphs:           # a Graph keeps its custom ops' Values (their rules)
            if g[2].managed:
                stack.extend(n for n in g[1] if n.managed)
        while stack:
            n = stack.pop()
            if id(n) not in handles:
                handles[id(n)] = n
                stack.extend(n.handle_kids())
        nodes = {}
        stack = list(handles.values())
        for g in self.graphs:
            stack.extend(g[1])
        for vec in self.vectors:
            stack.extend(vec[1])
        while stack:
            n = stack.pop()
            if id(n) not in nodes:
                nodes[id(n)] = n
                stack.extend(n.arena_kids())
        return len(nodes)

    def apply(self, make_value, op, operands):
        """make_value() checked against Python's float semantics on the operands'
        data: (Value, Node), or None if it raised (as Python would have)."""
        datas = [n.data for n in operands]
        known = all(x is not None for x in datas)
        expected, expected_exc = None, None
        if known:
            try:
                expected = SPEC[op](datas[0], datas[1] if len(datas) > 1 else None)
            except FORWARD_ERRORS as e:
                expected_exc = type(e)
        try:
            value = make_value()
        except FORWARD_ERRORS as e:
            assert not known or (expected_exc is not None and isinstance(e, expected_exc)), \
                (op, datas, e, expected)
            return None
        assert not known or expected_exc is None, (op, datas, value.data, expected_exc)
        managed = any(n.managed for n in operands)
        node = Node(op, operands, expected if known else None, managed)
        assert isinstance(value, CustomValue) == managed
        assert same_data(value.data, node.data), (op, datas, value.data, expected)
        return value, node

    def one_op(self, data, v, n):
        """A random op on (v, n), its other operand a held Value, itself or a constant."""
        kind = data.draw(st.sampled_from(["binary", "binary", "unary", "custom", "dot"]))
        if kind == "dot":
            return self.dot(data, v, n)
        if kind == "unary":
            op = data.draw(st.sampled_from(UNARY))
            return self.apply(lambda: -v if op == "neg" else getattr(v, op)(), op, (n,))
        if kind == "custom":
            op = data.draw(st.sampled_from(["ctanh", "cmul", "cnoisy"]))
            noise = data.draw(st.sampled_from([0, 10, 3000]))
            operands = [(v, n)]
            if op == "cmul":
                operands.append((v, n) if data.draw(st.booleans()) else self.pick(data))
            out = custom_op(op, [o[0] for o in operands], noise)
            nodes = tuple(o[1] for o in operands)
            datas = [m.data for m in nodes] + [None]
            node = Node(op, nodes, None if None in datas[:len(nodes)] else
                        SPEC[op](datas[0], datas[1]), True, custom=True)
            assert type(out) is CustomValue
            assert same_data(out.data, node.data)
            return out, node
        op = data.draw(st.sampled_from(BINARY))
        form = data.draw(st.sampled_from(["vv", "vc", "cv"]))
        if form == "vv":
            w, m = (v, n) if data.draw(st.booleans()) else self.pick(data)
            if data.draw(st.booleans()):
                return self.apply(lambda: PYOP[op](v, w), op, (n, m))
            return self.apply(lambda: PYOP[op](w, v), op, (m, n))
        c = data.draw(CONSTANTS)
        const = Node("leaf", (), float(c), False)
        if form == "vc":
            return self.apply(lambda: PYOP[op](v, c), "powc" if op == "pow" else op,
                              (n, const))
        return self.apply(lambda: PYOP[op](c, v), op, (const, n))

    def dot(self, data, start, start_node):
        """dot(ws, xs, start): start + w0*x0 + ... (a C loop, or Python's sum)."""
        k = data.draw(st.integers(0, 4))
        ws, xs, wn, xn = [], [], [], []
        for _ in range(k):
            w, m = self.pick(data)
            ws.append(w)
            wn.append(m)
            if data.draw(st.booleans()):
                x, m = self.pick(data)
                xs.append(x)
                xn.append(m)
            else:
                c = data.draw(CONSTANTS)
                xs.append(float(c))
                xn.append(Node("leaf", (), float(c), False))
        out = dot(ws, xs, start)
        if k == 0:
            assert out is start
            return out, start_node
        acc = start_node
        for m, c in zip(wn, xn):
            term = Node("mul", (m, c), None if None in (m.data, c.data) else m.data * c.data,
                        m.managed or c.managed)
            acc = Node("add", (acc, term), None if None in (acc.data, term.data)
                       else acc.data + term.data, acc.managed or term.managed)
        assert same_data(out.data, acc.data), (out.data, acc.data)
        assert isinstance(out, CustomValue) == acc.managed
        return out, acc

    # -- making Values -----------------------------------------------------------

    @precondition(lambda self: len(self.vals) < MAX_VALUES)
    @rule(x=DATA, name=NAMES)
    def leaf(self, x, name):
        v = Value(x, name=name) if name else Value(x)
        self.hold(v, Node("leaf", (), float(x), False, name=name))

    @precondition(lambda self: self.vals and len(self.vals) < MAX_VALUES)
    @rule(data=st.data())
    def op(self, data):
        made = self.one_op(data, *self.pick(data))
        if made is not None:
            self.hold(*made)

    @precondition(lambda self: self.vals and len(self.vals) < MAX_VALUES)
    @rule(data=st.data(), steps=st.integers(2, 12))
    def expression(self, data, steps):
        """Several ops in a row; only the last result is held (the others live on as
        nodes without a handle, or as handles in a CustomValue's __dict__)."""
        v, n = self.pick(data)
        for _ in range(steps):
            made = self.one_op(data, v, n)
            if made is None:
                break
            v, n = made
        self.hold(v, n)

    # -- dropping Values ---------------------------------------------------------

    @precondition(lambda self: self.vals)
    @rule(data=st.data())
    def delete(self, data):
        keys = data.draw(st.lists(st.sampled_from(sorted(self.vals)), unique=True,
                                  min_size=1, max_size=3))
        for k in keys:
            del self.vals[k]
        gc.collect()

    # -- gradients, data and names -----------------------------------------------

    @precondition(lambda self: self.vals)
    @rule(data=st.data())
    def backward(self, data):
        v, n = self.pick(data)
        v.backward()
        backprop(topo(n), n)

    @precondition(lambda self: self.vals)
    @rule(data=st.data(), what=st.sampled_from(["grad", "data", "name", "label"]),
          g=st.sampled_from([0, 0.0, 1.5, -2.0, NAN]), x=DATA, name=NAMES)
    def mutate(self, data, what, g, x, name):
        keys = data.draw(st.lists(st.sampled_from(sorted(self.vals)), unique=True,
                                  min_size=1, max_size=4))
        for k in keys:
            v, n = self.vals[k]
            if what == "grad":
                v.grad = g
                n.grad, n.scale = float(g), abs(float(g))
            elif what == "data":
                v.data = x
                n.data = float(x)
            else:
                setattr(v, what, name)
                n.name = name

    # -- Graph -------------------------------------------------------------------

    @precondition(lambda self: self.vals)
    @rule(data=st.data(), drop=st.booleans())
    def graph(self, data, drop):
        if drop and self.graphs:
            del self.graphs[data.draw(st.integers(0, len(self.graphs) - 1))]
            gc.collect()
            return
        if len(self.graphs) >= 3:
            del self.graphs[0]
        v, n = self.pick(data)
        g = Graph(v)
        order = topo(n)
        assert len(g) == len(order)
        self.graphs.append([g, order, n])
        gc.collect()

    @precondition(lambda self: self.graphs)
    @rule(data=st.data(), passes=st.lists(st.sampled_from("fb"), min_size=1, max_size=3))
    def replay(self, data, passes):
        g, order, root = self.graphs[data.draw(st.integers(0, len(self.graphs) - 1))]
        for p in passes:
            if p == "f":
                self.replay_forward(g, order)
            else:
                g.backward()
                backprop(order, root)

    def replay_forward(self, g, order):
        computed = {}
        expected_exc = False
        unpredictable = False
        for n in order:
            if n.leaf:
                continue
            datas = [computed.get(id(k), k.data) for k in n.kids]
            if None in datas:
                unpredictable = True
                computed[id(n)] = None
                continue
            try:
                computed[id(n)] = SPEC[n.op](datas[0], datas[1] if len(datas) > 1 else None)
            except FORWARD_ERRORS:
                expected_exc = True
                break
        try:
            g.forward()
        except FORWARD_ERRORS:
            assert expected_exc or unpredictable
            for n in order:
                if not n.leaf:
                    n.data = n.grad = n.scale = None
            return
        assert not expected_exc or unpredictable
        for n in order:
            if not n.leaf:
                n.data = computed[id(n)]
                n.grad = n.scale = 0.0

    # -- ValueVector --------------------------------------------------------------

    @precondition(lambda self: self.vals)
    @rule(data=st.data(), action=st.sampled_from(["make", "data", "grad", "zero", "sgd",
                                                 "drop"]),
          x=DATA, lr=st.sampled_from([0.0, 0.1, -1.0, 1e300]))
    def vector(self, data, action, x, lr):
        if action == "make" or not self.vectors:
            if len(self.vectors) >= 3:
                del self.vectors[0]
            keys = data.draw(st.lists(st.sampled_from(sorted(self.vals)), min_size=1,
                                      max_size=6))
            self.vectors.append([ValueVector([self.vals[k][0] for k in keys]),
                                 [self.vals[k][1] for k in keys]])
            return
        i = data.draw(st.integers(0, len(self.vectors) - 1))
        if action == "drop":
            del self.vectors[i]
            return
        vv, nodes = self.vectors[i]
        if action == "data":
            new = [float(x) + i for i in range(len(nodes))]
            vv.data = new
            for n, d in zip(nodes, new):
                n.data = d
        elif action == "grad":
            vv.grad = np.full(len(nodes), float(x))
            for n in nodes:
                n.grad, n.scale = float(x), abs(float(x))
        elif action == "zero":
            vv.zero_grad()
            for n in nodes:
                n.grad, n.scale = 0.0, 0.0
        elif action == "sgd":
            vv.sgd_step(lr)
            for n in nodes:                         # a node listed twice steps twice
                n.data = None if n.data is None or n.grad is None else n.data - lr * n.grad
        for n, d, gr in zip(nodes, vv.data.tolist(), vv.grad.tolist()):
            assert same_data(d, n.data), (d, n.data)
            assert close_grad(gr, n.grad, n.scale), (gr, n.grad, n.scale)

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def values_match_the_model(self):
        held = {id(node): value for value, node in self.vals.values()}
        for value, node in self.vals.values():
            assert same_data(value.data, node.data), (value, node.op, node.data)
            assert close_grad(value.grad, node.grad, node.scale), \
                (value, node.op, node.grad, node.scale)
            assert value.name == node.name
            assert isinstance(value, CustomValue) == node.managed
            # _prev: the operands (x ** 2: just x), the user's own objects when held
            prev = value._prev
            visible = node.kids[:1] if node.op == "powc" else node.kids
            distinct = {id(k): k for k in visible}
            assert len(prev) == len(distinct)
            for k in distinct.values():
                if id(k) in held:
                    assert any(p is held[id(k)] for p in prev)
            assert sorted(p.name for p in prev) == sorted(k.name for k in distinct.values())
            assert all(any(same_data(p.data, k.data) for k in distinct.values())
                       for p in prev)

    @invariant()
    def arena_holds_exactly_the_reachable_nodes(self):
        if self.baseline is not None:
            assert live() - self.baseline == self.expected_live()


LifetimeMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None, derandomize=True,
    database=None, suppress_health_check=list(HealthCheck))
TestLifetime = LifetimeMachine.TestCase
