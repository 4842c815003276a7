"""Code that extends Value as one extends micrograd's Python class: methods and dunders
added to the class, attributes on Values (colours, optimizer state, tags), a
relabelled `_op`; and what stays refused (`_prev` of a built-in op).

Each tutorial-style pattern runs on micrograd 0.1.0 and on ours, and must give the
same numbers. Lifetime: attributes die with their Value, cycles through them are
freed by one gc.collect(), a Value without attributes stays out of the cycle
collector, and finalizers run by the collector while the core allocates a Value
cannot break it.
"""
import copy
import ctypes
import gc
import math
import pickle
import random
import subprocess
import sys
import textwrap

import pytest
from graphviz import Digraph
from micrograd.engine import Value as MGValue
from micrograd.nn import MLP as MGMLP

from autograd import CustomValue, Value, draw_dot
from autograd._core import dot
from autograd.nn import MLP
from conftest import UNDER_SANITIZER, live, require_facility, rss_bytes

NEEDS_310 = sys.version_info < (3, 10)


@pytest.fixture
def restore_classes():
    """Undo every class-level assignment a test makes to Value or micrograd's Value."""
    saved = {cls: dict(vars(cls)) for cls in (Value, MGValue)}
    yield
    for cls, before in saved.items():
        for name in set(vars(cls)) - set(before):
            delattr(cls, name)
        for name, attr in before.items():
            if vars(cls).get(name) is not attr:
                setattr(cls, name, attr)


def nb_add(cls):
    """The C function in a type's nb_add slot (PyTypeObject.tp_as_number is its
    13th pointer-sized field in CPython 3.9 to 3.13; nb_add is the first of those)."""
    word = ctypes.sizeof(ctypes.c_void_p)
    as_number = ctypes.c_void_p.from_address(id(cls) + 12 * word).value
    return ctypes.c_void_p.from_address(as_number).value


# ---------------------------------------------------------------------------
# Class-level extension
# ---------------------------------------------------------------------------

def tutorial_tanh(self):
    """The lecture's tanh, written as a custom op and added to the class."""
    x = self.data
    t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
    out = type(self)(t, (self,), 'tanh')

    def _backward():
        self.grad += (1 - t ** 2) * out.grad
    out._backward = _backward
    return out


def tutorial_sigmoid(self):
    """A sigmoid built from the class's own ops, added to the class."""
    return (1 + (-self).exp()) ** -1 if hasattr(self, 'exp') else None


def mg_exp(self):
    out = MGValue(math.exp(self.data), (self,), 'exp')

    def _backward():
        self.grad += out.data * out.grad
    out._backward = _backward
    return out


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
def test_methods_added_to_the_class_give_micrograds_numbers(restore_classes):
    MGValue.exp = mg_exp
    for cls in (Value, MGValue):
        cls.tanh = tutorial_tanh
        cls.sigmoid = tutorial_sigmoid
        cls.swish = lambda self: self * self.sigmoid()
    results = []
    for V in (Value, MGValue):
        x = V(0.7)
        w = V(-1.3)
        h = (x * w).tanh()               # a method on an op result
        s = x.sigmoid() + h.swish()      # on a leaf, and on a custom op's result
        out = s * h + x.tanh()
        out.backward()
        results.append((out.data, x.grad, w.grad, h._op))
    ours, theirs = results
    assert ours[3] == theirs[3] == 'tanh'
    for a, b in zip(ours[:3], theirs[:3]):
        assert math.isclose(a, b, rel_tol=1e-12), (ours, theirs)


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
def test_added_method_is_seen_by_subclasses_and_deleted(restore_classes):
    class Sub(Value):
        pass
    Value.double = lambda self: self * 2
    assert Sub(2.0).double().data == 4.0
    assert (Value(1.0) + 2).double().data == 6.0
    c = Value(1.0, (), 'c')
    assert isinstance(c, CustomValue) and c.double().data == 2.0
    del Value.double
    for v in (Value(1.0), Value(1.0) + 1, Sub(1.0), c):
        assert not hasattr(v, 'double')
        with pytest.raises(AttributeError):
            v.double()
    with pytest.raises(AttributeError):
        del Value.double


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
def test_dunder_assignment_takes_effect_and_restoring_gives_back_the_compiled_slot(
        restore_classes):
    compiled = nb_add(Value)
    original = vars(Value)['__add__']
    Value.__repr__ = lambda self: f"V({self.data})"
    assert repr(Value(2.0)) == "V(2.0)" and repr(Value(2.0) * 3) == "V(6.0)"
    calls = []

    def logged_add(self, other):
        calls.append(other)
        return original(self, other)
    Value.__add__ = logged_add
    assert nb_add(Value) != compiled
    a = Value(1.0)
    b = a + 2.0                         # the assigned __add__ wins, on leaves...
    c = b + a                           # ...and on op results
    assert c.data == 4.0 and calls == [2.0, a]
    assert (2.0 + a).data == 3.0 and len(calls) == 2     # __radd__ is still the core's
    c.backward()
    assert a.grad == 2.0
    # nn's neurons build their sums with dot: a replaced + must be used there too
    calls.clear()
    act = dot([Value(2.0)], [Value(3.0)], Value(1.0))
    assert act.data == 7.0 and len(calls) == 1
    Value.__add__ = original
    assert nb_add(Value) == compiled    # the compiled slot is back
    calls.clear()
    assert (a + a).data == 2.0 and calls == []
    del Value.__repr__
    assert repr(Value(2.0)).startswith("<autograd._core.Value object at")


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
@pytest.mark.parametrize("arg", [2.0, 2, True])
def test_an_assigned_init_is_called_by_the_leaf_constructor_too(restore_classes, arg):
    """Value(number) has a shortcut past tp_new and __init__: it must step aside
    while the class's __init__ is the user's, and come back when it is restored."""
    original = vars(Value)['__init__']
    seen = []

    def init(self, data, *args, **kwargs):
        seen.append(data)
        original(self, data * 10, *args, **kwargs)
    Value.__init__ = init
    assert Value(arg).data == float(arg) * 10 and seen == [arg]
    assert Value(arg, name='x').data == float(arg) * 10
    Value.__init__ = original
    seen.clear()
    v = Value(arg)
    assert v.data == float(arg) and type(v) is Value and seen == []


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
def test_operators_not_replaced_keep_their_compiled_slots(restore_classes):
    compiled = nb_add(Value)
    Value.__mul__ = lambda self, other: "mul"
    assert Value(2.0) * 3 == "mul"
    assert nb_add(Value) == compiled and (Value(2.0) + 3).data == 5.0


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested below)")
def test_class_assignment_survives_interpreter_shutdown():
    """Functions and dunders on the static type, Values with attributes and cycles,
    subclasses, all alive at exit: the interpreter exits cleanly."""
    code = textwrap.dedent("""
        import gc
        from autograd import Value
        class Sub(Value):
            def extra(self):
                return 1
        def sig(self):
            return self.sigmoid()
        Value.sig = sig
        Value.__repr__ = lambda self: f"V({self.data})"
        Value.__add__ = lambda self, other: Value.__mul__(self, other)
        Value.__eq__ = lambda self, other: self is other
        Value.__hash__ = object.__hash__
        Value.__del__ = lambda self: None
        keep = [Value(1.0).sig(), Sub(2.0) + 1, Sub(3.0)]
        for v in keep:
            v.me = v
            v.state = [v, keep]
        Value.keep = keep
        Sub.keep = keep
        cyc = Value(5.0)
        cyc.me = cyc
        del cyc
        print(repr(Value(2.0) + 3))
    """)
    r = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "V(6.0)\n" and r.stderr == ""


def test_class_assignment_needs_310(restore_classes):
    """Python 3.9 refuses assignment to any compiled type, with its own TypeError."""
    if NEEDS_310:
        with pytest.raises(TypeError, match="Value"):
            Value.double = lambda self: self * 2
    else:
        Value.double = lambda self: self * 2
        assert Value(2.0).double().data == 4.0


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested above)")
def test_an_assigned_finalizer_runs_for_every_value(restore_classes):
    """Values reused from the core's freelist must not look finalized already."""
    calls = []
    Value.__del__ = lambda self: calls.append(self.data)
    for k in range(5):
        v = Value(float(k))
        del v
    w = Value(1.0) * 2.0
    del w
    assert calls == [0.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0]   # the temporary leaf, then w


def test_subclass_with_its_own_methods_and_slots():
    class Tagged(Value):
        __slots__ = ('tag',)

        def __init__(self, data, tag='', **kw):
            super().__init__(data, **kw)
            self.tag = tag
    t = Tagged(2.0, 'weights')
    t.note = 'also a dict'             # Value's __dict__ slot is inherited
    out = t * t
    out.backward()
    assert (t.tag, t.note, out.data, t.grad) == ('weights', 'also a dict', 4.0, 4.0)
    assert gc.is_tracked(t)             # subclasses are always tracked
    t.tag = [t]                         # a cycle through a __slots__ member
    del t, out
    assert gc.collect() >= 1


# ---------------------------------------------------------------------------
# Instance attributes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: Value(1.0), lambda: Value(1.0) + Value(2.0),
                                  lambda: Value(3.0) ** 2, lambda: Value(1.0).relu(),
                                  lambda: dot([Value(1.0)], [2.0], Value(0.0)),
                                  lambda: Value(2.0, (), 'custom')])
def test_attribute_protocol(make):
    v = make()
    assert not hasattr(v, 'color') and getattr(v, 'color', 'none') == 'none'
    v.color = 'red'
    setattr(v, '_vis_color', 'blue')
    assert v.color == 'red' and getattr(v, '_vis_color') == 'blue' and hasattr(v, 'color')
    assert {'color': 'red', '_vis_color': 'blue'}.items() <= vars(v).items()
    assert v.__dict__ is vars(v)
    del v.color
    assert not hasattr(v, 'color')
    with pytest.raises(AttributeError):
        del v.color
    with pytest.raises(AttributeError):
        v.missing
    v.data = 5.0                         # properties are still properties
    assert v.data == 5.0 and 'data' not in vars(v)


def test_a_plain_value_stays_out_of_the_cycle_collector():
    a = Value(1.0)
    results = [a + 1, a * a, 2 - a, a.relu(), -a, a ** 2, a.exp(),
               dot([a], [a], a), next(iter((a + a)._prev))]
    for v in [a] + results:
        assert not gc.is_tracked(v)
    getattr(a, 'color', None)
    hasattr(a, 'color')
    a.data = 2.0
    a.grad = 1.0
    a.name = 'a'
    a._op = 'leaf'
    assert not gc.is_tracked(a)


MAKERS = [lambda: Value(1.0), lambda: Value(1.0) + 2, lambda: -Value(1.0),
          lambda: Value(1.0).tanh(), lambda: Value(1.5, name='x'),
          lambda: dot([Value(1.0)], [2.0], Value(0.0)), lambda: Value(1.0) ** 2,
          lambda: next(iter((Value(1.0) * Value(2.0))._prev))]


@pytest.mark.parametrize("write", [
    lambda v: setattr(v, 'x', 1),
    lambda v: vars(v).__setitem__('x', 1),
    lambda v: v.__dict__.update(x=1),
    lambda v: setattr(v, '__dict__', {'x': 1}),
])
@pytest.mark.parametrize("make", MAKERS)
def test_attributes_written_to_one_value_are_its_own(make, write):
    """However an attribute is written, no other Value sees it."""
    others = [m() for m in MAKERS]
    v = make()
    write(v)
    assert v.x == 1 and vars(v) == {'x': 1}
    assert gc.is_tracked(v)
    for o in others + [m() for m in MAKERS]:
        assert not hasattr(o, 'x') and vars(o) == {}
        assert vars(o) is not vars(v)


def test_failed_and_refused_writes_leave_no_dict_and_share_nothing():
    v = Value(1.0) + 1
    with pytest.raises(TypeError):
        v.data = 'not a number'          # a property: refused before any dict
    with pytest.raises(TypeError):
        v.__dict__ = ['not', 'a', 'dict']
    assert not gc.is_tracked(v)
    u = Value(1.0) * 3
    try:
        object.__setattr__(u, 'x', 1)     # jumps over Value.__setattr__
    except TypeError:
        assert sys.version_info < (3, 13)  # refused up to 3.12
    else:
        assert vars(u) == {'x': 1}         # 3.13+: u's own dict, no other Value's
    assert not hasattr(v, 'x') and vars(Value(2.0)) == {} and vars(Value(2.0) + 1) == {}
    del v.__dict__                       # nothing to delete: still fine
    with pytest.raises(AttributeError):
        del v.missing                    # as on a Python class, this makes v a dict
    assert vars(v) == {} and gc.is_tracked(v)
    v.y = 2
    assert vars(v) == {'y': 2}
    assert vars(Value(2.0)) == {} and not hasattr(Value(2.0) * 3, 'y')


def test_a_subclass_writing_through_super_keeps_its_own_attributes():
    class Tagged(Value):
        def __setattr__(self, name, value):
            super().__setattr__(name, value.upper() if isinstance(value, str) else value)

    t = Tagged(1.0)
    t.tag = 'a'
    assert t.tag == 'A' and vars(t) == {'tag': 'A'}
    assert vars(Value(1.0)) == {} and vars(Value(1.0) + 1) == {}


@pytest.mark.skipif(NEEDS_310, reason="class assignment needs Python 3.10 (tested above)")
@pytest.mark.parametrize("replace", [
    lambda seen: setattr(Value, '__setattr__',
                         lambda self, n, x: (seen.append(n), object.__setattr__(self, n, x))),
    lambda seen: delattr(Value, '__setattr__'),
])
def test_a_replaced_setattr_writes_one_values_attributes_only(restore_classes, replace):
    """Class-level __setattr__ replacement (a logging setter, or deleting ours):
    CPython's generic setter then writes the dict slot directly; every Value's
    attributes stay its own."""
    seen = []
    a, b = Value(1.0), Value(2.0) * 3
    replace(seen)
    a.color = 'red'
    a.tanh = lambda: 'shadowed'
    assert a.color == 'red' and a.tanh() == 'shadowed'
    for v in (b, Value(5.0), Value(5.0) + 1, -b):
        assert not hasattr(v, 'color') and vars(v) == {} and v.tanh().data == math.tanh(v.data)
    assert seen in ([], ['color', 'tanh'])


@pytest.mark.parametrize("give_dict", [
    lambda v: setattr(v, 'x', 1),
    lambda v: vars(v),
    lambda v: v.__dict__,
    lambda v: setattr(v, '__dict__', {'x': 1}),
    lambda v: vars(v).update(x=1),
    lambda v: dir(v),
])
def test_a_value_with_a_dict_is_tracked(give_dict):
    """The invariant 'has a dict => tracked': otherwise a cycle through the dict
    would never be collected."""
    v = Value(1.0) * 2
    assert not gc.is_tracked(v)
    give_dict(v)
    assert gc.is_tracked(v)
    vars(v)['me'] = v


@pytest.mark.parametrize("cycle", [
    lambda v, others: setattr(v, 'me', v),
    lambda v, others: setattr(v, 'state', [v]),
    lambda v, others: setattr(v, 'graph', others),
    lambda v, others: vars(v).__setitem__('me', {'again': v}),
    lambda v, others: setattr(v, '__dict__', {'me': v}),
])
def test_a_cycle_through_attributes_is_freed_by_one_collect(cycle, baseline, no_gc):
    a = Value(2.0)
    b = Value(3.0)
    c = a * b + a
    others = [a, b, c]
    for v in (a, c):
        cycle(v, others)
    c.backward()
    assert (a.grad, b.grad) == (4.0, 2.0)
    del a, b, c, others, v
    assert live() > baseline            # the cycles hold the graph
    gc.collect()
    assert live() == baseline


def test_attributes_die_with_their_value(baseline):
    class Flag:
        dead = 0

        def __del__(self):
            Flag.dead += 1
    v = Value(1.0) + 1
    v.flag = Flag()
    del v
    assert Flag.dead == 1 and live() == baseline


def test_copy_and_pickle_keep_a_leafs_attributes():
    p = Value(1.5, name='w')
    p.m = 0.25
    p.v = [0.5]
    for clone in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert (clone.data, clone.name, clone.m, clone.v) == (1.5, 'w', 0.25, [0.5])
        assert clone is not p and gc.is_tracked(clone)
    assert copy.deepcopy(p).v is not p.v
    plain = copy.copy(Value(2.0))
    assert vars(plain) == {} or not gc.is_tracked(plain)


def test_millions_of_values_with_attributes_leave_nothing(baseline):
    """Rounds of 500,000 Values with attributes, a third of them in cycles: after
    each round's gc.collect(), no live node and no growth of the process."""
    require_facility("memory")
    sizes = []
    for _ in range(4):
        keep = []
        for k in range(100_000):
            a = Value(float(k))
            b = a * 2.0 + 1.0
            a.m, a.v = 0.0, 0.0
            b.color = 'red'
            if k % 3 == 0:
                b.me = b
                a.state = [a, b]
            keep.append(b)
            c = Value(1.0)
            c.tag = k
            keep.append(c)
        del keep, a, b, c
        gc.collect()
        assert live() == baseline
        sizes.append(rss_bytes())
    # the first round may leave allocator pools behind; later rounds reuse them
    # (under ASAN, RSS measures its quarantine, not us: the live counts above still hold)
    if not UNDER_SANITIZER:
        assert sizes[-1] - sizes[1] < 8 * 2**20, sizes


# ---------------------------------------------------------------------------
# Finalizers run by the cycle collector while the core allocates a Value
# ---------------------------------------------------------------------------

class Garbage:
    """A cycle with a finalizer that builds, grows and frees Values: the arena
    moves, nodes are freed and reused while the core is making a Value."""
    hoard = []
    runs = 0

    def __init__(self):
        self.me = self
        self.op = Value(1.0, (Value(2.0),), 'g')     # a custom op in the cycle

    def __del__(self):
        Garbage.runs += 1
        built = [Value(float(k)) * 2 for k in range(300)]
        Garbage.hoard.append(built)
        if len(Garbage.hoard) > 20:
            Garbage.hoard.clear()


def test_finalizers_during_op_allocation_cannot_break_the_core(baseline):
    old = gc.get_threshold()
    gc.collect()
    gc.set_threshold(1)
    try:
        rng = random.Random(4)
        for _ in range(400):
            Garbage()                   # collectable at the next collection
            x, y = rng.uniform(1, 2), rng.uniform(1, 2)
            a, b = Value(x), Value(y)
            grown = [Value(1.0) for _ in range(50)]      # freelist empty: real allocations
            outs = [a + b, a - y, x * b, a / b, -a, a.tanh(), a ** 2, a ** b, 2.0 ** a,
                    dot([a, b], [b, 2.0], a)]
            want = [x + y, x - y, x * y, x / y, -x, math.tanh(x), x ** 2, x ** y, 2.0 ** x,
                    x + x * y + y * 2.0]
            for o, w in zip(outs, want):
                assert math.isclose(o.data, w, rel_tol=1e-15)
            prev = (a * b)._prev
            assert prev == {a, b}
            del grown, outs, prev, a, b, o
    finally:
        gc.set_threshold(*old)
        Garbage.hoard.clear()
    assert Garbage.runs > 0
    gc.collect()                        # the last Garbage's finalizers hoard again
    Garbage.hoard.clear()
    gc.collect()
    assert live() == baseline


def test_a_finalizer_that_changes_dots_lists_during_allocation():
    ws = [Value(1.0), Value(2.0)]
    xs = [Value(3.0), Value(4.0)]

    class Vandal:
        def __init__(self):
            self.me = self

        def __del__(self):
            ws.clear()
            xs.append("not a value")
    old = gc.get_threshold()
    gc.collect()
    try:
        Vandal()
        gc.set_threshold(1)
        while len(ws) == 2:
            fill = [Value(0.0) for _ in range(2000)]     # past the freelist
            try:
                out = dot(ws, xs, Value(0.0))
            except TypeError:
                break
            assert out.data in (11.0, 0.0)
            del fill
    finally:
        gc.set_threshold(*old)


def test_handle_of_stays_one_handle_per_node_when_a_finalizer_makes_one():
    """A finalizer run while `_prev` makes a handle for an operand makes one for
    the same node: both must be the same object."""
    a = Value(1.0)
    c = a * 2.0                         # the constant's node has no handle
    got = []

    class Peek:
        def __init__(self):
            self.me = self

        def __del__(self):
            got.append(next(v for v in c._prev if v is not a))
    old = gc.get_threshold()
    gc.collect()
    try:
        for _ in range(200):
            fill = [Value(0.0) for _ in range(1100)]     # the freelist is empty now
            Peek()
            gc.set_threshold(1)
            const = next(v for v in c._prev if v is not a)
            gc.set_threshold(*old)
            assert all(v is const for v in got)
            del const, fill
            got.clear()
    finally:
        gc.set_threshold(*old)


# ---------------------------------------------------------------------------
# _op and _prev
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda a, b: a + b, lambda a, b: a * b,
                                  lambda a, b: (a ** 3) * b, lambda a, b: (a / b).tanh(),
                                  lambda a, b: a ** b, lambda a, b: Value(a.data, (a, b), 'f')])
def test_writing_op_changes_the_label_never_the_chain_rule(make):
    grads = []
    for relabel in (False, True):
        a, b = Value(1.5), Value(0.5)
        out = make(a, b)
        if isinstance(out, CustomValue):
            def _backward():
                a.grad += out.grad
            out._backward = _backward
        if relabel:
            for v in [out] + list(out._prev):
                v._op = f"<{v._op}>"
            assert out._op.startswith("<")
        (out * 3).backward()
        grads.append((out.data, a.grad, b.grad))
    assert grads[0] == grads[1]


def test_an_op_label_lives_with_its_node(baseline):
    a = Value(1.0)
    t = a + 1
    t._op = 'plus one'
    top = t * 3.0
    del t
    (t_again,) = [v for v in top._prev if v.data == 2.0]      # a new handle, same node
    assert t_again._op == 'plus one'
    del t_again
    del top
    assert live() == baseline + 1
    fresh = a + 1                      # reuses the freed slot
    assert fresh._op == '+'
    a._op = ''
    assert a._op == ''
    with pytest.raises(TypeError):
        a._op = 5


def test_draw_dot_shows_a_written_op():
    a = Value(2.0, name='a')
    b = a * a
    b._op = 'square'
    assert 'n0_op [label=square]' in draw_dot(b).source


def test_prev_of_a_builtin_op_cannot_be_assigned():
    a = Value(1.0)
    for v in (a + 1, a.relu(), a, a ** 2):
        with pytest.raises(AttributeError, match="custom op"):
            v._prev = {a}
        assert v._prev == set() or a in v._prev


def test_prev_of_a_custom_op_sets_its_children():
    a, b = Value(2.0), Value(3.0)
    out = Value(5.0, (a,), 'f')

    def _backward():
        a.grad += out.grad
        b.grad += 2 * out.grad
    out._backward = _backward
    out._prev = {a, b}
    assert out._prev == {a, b}
    (out * 1).backward()
    assert (a.grad, b.grad) == (1.0, 2.0)
    with pytest.raises(TypeError):
        out._prev = [a, 'b']


# ---------------------------------------------------------------------------
# Tutorial-style programs: micrograd's numbers and pictures
# ---------------------------------------------------------------------------

def user_trace(root):
    """micrograd's trace.py, as users copy it."""
    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges


def user_draw_dot(root):
    """A user's draw_dot that reads the attributes a visualiser set on the Values."""
    dot_ = Digraph(format='svg', graph_attr={'rankdir': 'LR'})
    nodes, edges = user_trace(root)
    records = []
    for n in nodes:
        uid = str(id(n))
        label = "{ %s | data %.4f | grad %.4f }" % (getattr(n, 'label', ''), n.data, n.grad)
        colour = getattr(n, '_vis_color', 'black')
        dot_.node(name=uid, label=label, shape='record', color=colour)
        records.append((label, colour, n._op))
        if n._op:
            dot_.node(name=uid + n._op, label=n._op)
            dot_.edge(uid + n._op, uid)
    for n1, n2 in edges:
        dot_.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot_, sorted(records), len(edges)


def test_a_visualiser_colours_and_relabels_nodes_as_on_micrograd():
    pictures = []
    for V in (Value, MGValue):
        x1, x2 = V(2.0), V(0.0)
        w1, w2 = V(-3.0), V(1.0)
        b = V(6.8813735870195432)
        n = x1 * w1 + x2 * w2 + b
        o = n.relu()
        for v, name in ((x1, 'x1'), (x2, 'x2'), (w1, 'w1'), (w2, 'w2'), (b, 'b'),
                        (n, 'n'), (o, 'o')):
            v.label = name
        o.backward()
        for v in user_trace(o)[0]:
            setattr(v, '_vis_color', 'red' if v.grad else 'gray')
            if v._op == 'ReLU':
                v._op = 'relu!'
        _, records, n_edges = user_draw_dot(o)
        pictures.append((records, n_edges))
    assert pictures[0] == pictures[1]


def test_an_optimizer_keeping_state_on_parameters_trains_as_on_micrograd(moons_loss):
    from autograd.datasets import make_moons
    X, y = make_moons(20, seed=3)
    histories = []
    for V, Net in ((Value, MLP), (MGValue, MGMLP)):
        random.seed(7)
        model = Net(2, [6, 1])
        for p in model.parameters():
            p.velocity = 0.0             # momentum SGD's state, on the parameters
            p.steps = 0
        history = []
        for t in range(1, 8):
            loss = moons_loss(model, X.tolist(), y.tolist(), V)
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.velocity = 0.9 * p.velocity + p.grad
                p.steps += 1
                p.data -= 0.05 * p.velocity
            history.append(loss.data)
        assert all(p.steps == 7 for p in model.parameters())
        histories.append(history)
    for ours, theirs in zip(*histories):
        assert math.isclose(ours, theirs, rel_tol=1e-9), histories
