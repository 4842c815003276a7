"""Regression tests of the reliability audit (issue 10), and of the same holes
reached by other triggers.

- one object, one node: Value.__init__ re-entered on the same object, from any
  user code that __init__ runs, binds it to exactly one node;
- no user code run during a sweep can free or reuse a node the sweep holds;
- no silent wrong numbers (ValueVector setters, Graph.forward, dot, one float()
  per number), numpy's bool, MemoryErrors with a message;
- the 32-bit reference count cannot wrap: a pin near its top is refused;
- memory is given back after a huge graph, with hysteresis.

Whatever could crash the test process runs in a subprocess, as in test_lifetime.py.
"""
import gc
import math
import numbers
import textwrap
from fractions import Fraction

import numpy as np
import pytest

from autograd import CustomValue, Graph, Value, ValueVector, grad
from autograd._core import _add_refs, graph_size
from autograd.engine import dot
from conftest import live, require_facility, run_script
from conftest import assert_clean_exit as assert_exit


def assert_clean_exit(proc):
    assert_exit(proc, prints_ok=True)


# a pin is refused once a count is above this (see MAX_NODES in _core.pyx)
PIN_LIMIT = 2**32 - 1 - 2 * 2**30


# =============================================================================
# One object, one node: Value.__init__ re-entered on the same object
# =============================================================================

# Each trigger makes user code that the outer __init__ runs call `reenter()`,
# which runs __init__ on the same, still unbound object.
REENTRY_TRIGGERS = {
    "data's __float__": """
        class Real:
            def __float__(self):
                reenter()
                return 2.0
        numbers.Real.register(Real)
        outer = lambda: obj.__init__(Real())
        """,
    "iterating _children": """
        kid = Value(3.0)
        def kids():
            reenter()
            yield kid
        outer = lambda: obj.__init__(2.0, kids())
        """,
    "_op's __bool__": """
        class Op:
            def __bool__(self):
                reenter()
                return True
            def __str__(self):
                return 'op'
        outer = lambda: obj.__init__(2.0, (), Op())
        """,
    "_op's __str__": """
        class Op:
            def __str__(self):
                reenter()
                return 'op'
        outer = lambda: obj.__init__(2.0, (), Op())
        """,
    "a __dict__ key's __eq__": """
        class Key:
            def __hash__(self):
                return hash('_children')
            def __eq__(self, other):
                reenter()
                return False
        obj.__dict__ = {Key(): 0}
        kid = Value(3.0)
        outer = lambda: obj.__init__(2.0, (kid,), 'op')
        """,
    "a value replaced in __dict__": """
        class Old:
            def __del__(self):
                reenter()
        obj.__dict__ = {'_op': Old()}
        kid = Value(3.0)
        outer = lambda: obj.__init__(2.0, (kid,), 'op')
        """,
    "a finalizer run by the collector": """
        kid = Value(3.0)
        class Cycle:
            def __del__(self):
                reenter()
        junk = Cycle()
        junk.me = junk
        del junk
        def kids():
            gc.collect()                # as any allocation of a GC object may
            yield kid
        outer = lambda: obj.__init__(2.0, kids())
        """,
}


@pytest.mark.parametrize("trigger", sorted(REENTRY_TRIGGERS))
def test_reentrant_init_binds_one_node(trigger):
    """The audit's crash: the inner __init__ bound node X, the outer then bound node
    Y over it; X leaked and handles[X] outlived the object (use-after-free in
    `_prev` and backward). Now the outer call refuses, the object keeps the
    inner call's node, and nothing leaks or dangles."""
    proc = run_script(textwrap.dedent("""
        import gc, numbers
        from autograd import CustomValue, Value
        from autograd._core import arena_stats

        def live():
            return arena_stats()['live']

        gc.disable()                    # collections only where a trigger runs one
        obj = CustomValue.__new__(CustomValue)
        refused = []
        entered = []

        def reenter():
            if entered:
                return
            entered.append(1)
            try:
                obj.__init__(1.0)
            except RuntimeError:
                refused.append('inner')
        """) + textwrap.dedent(REENTRY_TRIGGERS[trigger]) + textwrap.dedent("""
        base = live()
        try:
            outer()
        except RuntimeError as e:
            assert 'already called' in str(e), e
            refused.append('outer')
        assert entered and refused == ['outer'], (entered, refused)
        assert obj.data == 1.0, obj.data           # the inner call's node
        assert live() == base + 1, (live(), base)   # and no other
        obj._backward = lambda: None
        c = obj + 1.0
        c._children = ()                            # c does not keep obj alive
        del obj
        gc.collect()
        c.backward()                                # reads node X's handle: must be gone
        assert sorted(v.data for v in c._prev) == [1.0, 1.0], c._prev
        spray = [bytes(64) for _ in range(10000)]
        c.backward()
        del c, spray
        gc.collect()
        assert live() == base, (live(), base)
        print('ok')
        """))
    assert_clean_exit(proc)


def test_reentrant_init_of_a_named_value_keeps_one_name(baseline):
    """A name given by the outer call is not written once the object is bound by
    an inner call (it would name the inner call's node)."""
    obj = Value.__new__(Value)

    class Real:
        def __float__(self):
            obj.__init__(1.0, name='inner')
            return 2.0
    numbers.Real.register(Real)
    with pytest.raises(RuntimeError, match="already called"):
        obj.__init__(Real(), name='outer')
    assert (obj.data, obj.name) == (1.0, 'inner')
    del obj
    assert live() == baseline


# =============================================================================
# No user code run during a sweep can free or reuse a node the sweep holds
# =============================================================================

SWEEP_GRAPH = """
    import gc
    from autograd import Graph, Value
    from autograd._core import arena_stats, graph_size

    def live():
        return arena_stats()['live']

    armed = []

    def build():
        x = Value(0.5)
        p = x * 3.0
        for i in range(5):
            p = p * 1.0 + 0.0          # a plain chain owned only by c1's _children
        c2 = Value(1.0, (), 'c2')
        b = Value(2.0, (), 'b')
        c2._children = (b,)
        c1 = Value(3.0, (p, c2), 'c1')
        c1._forward = c2._forward = b._forward = lambda: None
        c1._backward = c2._backward = b._backward = lambda: None
        del p
        junk = []

        def drop():                    # frees p's chain and reuses its slots
            c1._children = (c2,)
            junk.extend(Value(9.0) * 7.0 for _ in range(30))
        return x, c1 * 1.0, junk, drop, b

    gc.collect()
    base = live()
    x, root, junk, drop, b = build()
    honest = len(Graph(root))
    del x, root, junk, drop, b
    gc.collect()
    assert live() == base
    x, root, junk, drop, b = build()
    """


@pytest.mark.parametrize("call", ["Graph", "backward", "graph_size"])
def test_dict_key_eq_cannot_run_inside_a_sweep(call):
    """The audit's crash: the lookup of `_children` compared a colliding key of a
    custom op's __dict__ with ==, running user code half-way through a sweep,
    which freed nodes on the sweep's stack. The sweep now reads `_children`
    without calling out. (Graph() and backward() look up `_forward` and
    `_backward` after the sweep, where user code may run: what they hold is
    pinned by then.)"""
    proc = run_script(textwrap.dedent(SWEEP_GRAPH) + textwrap.dedent(f"""
        ran = []
        class Key:
            def __hash__(self):
                return hash('_children')
            def __eq__(self, other):
                if armed:
                    ran.append(armed.pop())
                    drop()
                return False
        b.__dict__ = {{Key(): 0, **vars(b)}}
        armed.append('sweep')
        call = {call!r}
        if call == 'Graph':
            g = Graph(root)
            assert len(g) == honest, len(g)
            g.forward()
            g.backward()
            del g
        elif call == 'backward':
            root.backward()
        else:
            assert graph_size(root) == honest
            assert ran == [], ran
        del x, root, junk, drop, b
        armed.clear()
        gc.collect()
        assert live() == base, (live(), base)
        print('ok')
        """))
    assert_clean_exit(proc)


def test_a_sweep_over_a_custom_op_without_dict_runs_no_collection():
    """The same hole, another trigger: a custom op whose __dict__ was deleted. The
    sweep reads `_children` from the dict slot without making a dict, so nothing
    it does allocates a GC object and no finalizer can run inside it (one armed
    with gc threshold 1 runs only at the next collection, after the sweep); the
    graph it counts is the one reachable when it started."""
    proc = run_script(textwrap.dedent(SWEEP_GRAPH) + textwrap.dedent("""
        class Finalizer:
            def __del__(self):
                armed.append(state[0])
                drop()
        state = ['before']
        del b.__dict__                 # b has no children now: a leaf
        gc.collect()
        f = Finalizer()
        f.me = f
        del f
        hold = [dict(a=1) for _ in range(200)]   # no free dict left
        gc.set_threshold(1)
        state[0] = 'during'
        n = graph_size(root)
        state[0] = 'after'
        gc.collect()
        gc.set_threshold(700)
        assert armed == ['after'], armed         # not inside the sweep
        assert n == honest, n
        assert graph_size(root) < honest         # p's chain is gone now
        del x, root, junk, drop, b
        gc.collect()
        assert live() == base, (live(), base)
        print('ok')
        """))
    assert_clean_exit(proc)


# =============================================================================
# Silent wrong numbers
# =============================================================================

@pytest.mark.parametrize("bad", [None, "3.5", 1 + 2j, np.array([1 + 2j, 3]),
                                 np.array(["1", "2"]), [1.0, None], np.datetime64(1, "D")],
                         ids=["None", "str", "complex", "complex array", "str array",
                              "None in a list", "datetime"])
@pytest.mark.parametrize("attr", ["data", "grad"])
def test_valuevector_setters_refuse_what_value_refuses(baseline, attr, bad):
    """numpy casts None to nan, parses strings and drops imaginary parts;
    `vv.grad = None` set every grad to nan."""
    a, b = Value(1.0), Value(2.0)
    a.grad, b.grad = 0.5, 0.25
    vv = ValueVector([a, b])
    with pytest.raises(TypeError, match=f"{attr} must be (a )?real numbers?"):
        setattr(vv, attr, bad)
    assert (a.data, b.data, a.grad, b.grad) == (1.0, 2.0, 0.5, 0.25)


def test_valuevector_grad_none_has_values_message(baseline):
    a = Value(1.0)
    vv = ValueVector([a])
    with pytest.raises(TypeError) as from_value:
        a.grad = None
    with pytest.raises(TypeError) as from_vector:
        vv.grad = None
    assert str(from_vector.value) == str(from_value.value)


@pytest.mark.parametrize("good, expected", [
    (Fraction(1, 4), [0.25, 0.25]), ([Fraction(1, 2), 3], [0.5, 3.0]),
    (np.array([True, False]), [1.0, 0.0]), (np.float32(1.5), [1.5, 1.5]),
    (np.array([1, 2], dtype=np.int8), [1.0, 2.0]), (np.True_, [1.0, 1.0])])
def test_valuevector_setters_take_real_numbers(baseline, good, expected):
    vv = ValueVector([Value(0.0), Value(0.0)])
    vv.data = good
    vv.grad = good
    assert vv.data.tolist() == expected and vv.grad.tolist() == expected


@pytest.mark.parametrize("how", ["deleted", "None", "not callable"])
def test_graph_forward_refuses_a_custom_op_that_lost_its_forward(baseline, how):
    """Graph() refuses a custom op with children and no `_forward`; forward() did
    not, and replayed stale data silently."""
    x = Value(0.5)
    out = Value(math.tanh(x.data), (x,), 'ctanh')

    def _backward():
        x.grad += (1 - out.data ** 2) * out.grad

    def _forward():
        out.data = math.tanh(x.data)
    out._backward, out._forward = _backward, _forward
    y = out * 2
    g = Graph(y)
    if how == "deleted":
        del out._forward
    else:
        out._forward = None if how == "None" else 42
    x.data = 2.0
    with pytest.raises(ValueError, match="cannot replay custom op 'ctanh'"):
        g.forward()
    out._forward = _forward                     # back: the replay is right again
    g.forward()
    x.grad = 0.0
    g.backward()
    assert out.data == math.tanh(2.0) and y.data == 2 * math.tanh(2.0)
    assert x.grad == 2 * (1 - math.tanh(2.0) ** 2)
    del g, y, out, x, _forward, _backward
    gc.collect()
    assert live() == baseline


def test_graph_forward_of_a_childless_custom_op_needs_no_forward(baseline):
    """A custom op without children is a leaf to replay, as Graph() says."""
    c = Value(2.0, (), 'const')
    y = c * 3.0
    g = Graph(y)
    c.data = 4.0
    g.forward()
    assert y.data == 12.0


@pytest.mark.parametrize("where", ["weight", "input", "start", "start, no terms"])
def test_dot_refuses_uninitialised_values(baseline, where):
    """dot's fast path took the null node (idx 0) as an operand, and backward then
    wrote into it: every uninitialised Value's grad changed."""
    u = Value.__new__(Value)
    x, b = Value(2.0), Value(1.0)
    call = {"weight": lambda: dot([u], [x], b), "input": lambda: dot([x], [u], b),
            "start": lambda: dot([x], [x], u), "start, no terms": lambda: dot([], [], u)}[where]
    with pytest.raises(ValueError, match="has no node"):
        call()
    assert Value.__new__(Value).grad == 0.0 and Value.__new__(Value).data == 0.0
    assert live() == baseline + 2


class Drifting:
    """A real number whose float() changes from one call to the next."""

    def __init__(self, *values):
        self.values = list(values)
        self.calls = 0

    def __float__(self):
        self.calls += 1
        return self.values.pop(0)


numbers.Real.register(Drifting)


@pytest.mark.parametrize("op", ["mul", "rmul", "add", "rsub", "pow", "rtruediv"])
def test_op_with_a_custom_value_converts_a_number_once(baseline, op):
    """make_managed_result rebuilt the constant from the number: a second float()."""
    x = Value(1.5, (), 'leaf')                  # a CustomValue: results are managed
    n = Drifting(2.0, 3.0)
    y = {"mul": lambda: x * n, "rmul": lambda: n * x, "add": lambda: x + n,
         "rsub": lambda: n - x, "pow": lambda: x ** n, "rtruediv": lambda: n / x}[op]()
    assert n.calls == 1
    y.backward()
    want = {"mul": (3.0, 2.0), "rmul": (3.0, 2.0), "add": (3.5, 1.0), "rsub": (0.5, -1.0),
            "pow": (2.25, 3.0), "rtruediv": (2.0 / 1.5, -2.0 / 1.5 ** 2)}[op]
    assert (y.data, x.grad) == pytest.approx(want, rel=1e-15)


# =============================================================================
# numpy's bool, MemoryError messages
# =============================================================================

def test_numpy_bool_is_a_number_like_pythons_bool(baseline):
    v = Value(np.True_)
    assert v.data == 1.0 and type(v.data) is float
    v.data = np.False_
    v.grad = np.True_
    assert (v.data, v.grad) == (0.0, 1.0)
    assert (Value(2.0) * np.True_).data == 2.0
    assert (Value(2.0) + np.False_).data == 2.0
    assert (Value(2.0) ** np.True_).data == 2.0
    assert ValueVector([v]).data.tolist() == [0.0]


def test_refused_type_names_its_module():
    """`not bool` read as if Python's bool were refused; a non-builtin type is named
    with its module."""
    with pytest.raises(TypeError, match=r"not str$"):
        Value("1")
    with pytest.raises(TypeError, match=r"not numpy\.ndarray$"):
        Value(np.array([1.0, 2.0]))


def test_out_of_memory_errors_have_messages():
    """The scratch buffers' MemoryErrors were empty. Runs the audit's reproducer's
    scenario: a 10**7-node chain, then an address space too small for the sweep;
    then grad()'s (second audit)."""
    require_facility("address space cap")
    proc = run_script("""
        import psutil, resource
        from autograd import Graph, Value, ValueVector
        from autograd._core import graph_size

        def address_space():
            return psutil.Process().memory_info().vms

        x = Value(0.5)
        y = x
        for _ in range(5_000_000):
            y = y * 1.0
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + 30 * 2**20, hard))
        messages = {}
        for name, call in [('backward', y.backward), ('Graph', lambda: Graph(y)),
                           ('graph_size', lambda: graph_size(y))]:
            try:
                call()
            except MemoryError as e:
                messages[name] = str(e)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        assert sorted(messages) == ['Graph', 'backward', 'graph_size'], messages
        for name, text in messages.items():
            assert text.startswith('cannot allocate') and ' MB)' in text, (name, text)
        y.backward()
        assert x.grad == 1.0
        print('ok')
        """)
    assert_clean_exit(proc)
    # grad()'s own allocations (issue 18): its scratch, its saved grads. The limit
    # rises from just above what the process uses until grad() gets through:
    # every MemoryError on the way, the Graph's and grad()'s, has a message.
    proc = run_script("""
        import psutil, resource
        from autograd import Value, grad
        from autograd._core import arena_stats

        def address_space():
            return psutil.Process().memory_info().vms

        x = Value(0.5)
        y = x
        for _ in range(1_000_000):
            y = y * 1.0000001
        y.backward()                    # the sweep's buffers exist; grad()'s do not
        live = arena_stats()['live']
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        messages = []
        for mb in range(2, 200, 2):
            resource.setrlimit(resource.RLIMIT_AS, (address_space() + mb * 2**20, hard))
            try:
                (g,) = grad(y, x)
                break
            except MemoryError as e:
                messages.append(str(e))
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        else:
            raise AssertionError('grad() never got through')
        assert arena_stats()['live'] == live + 1
        assert all(m.startswith('cannot allocate') and ' MB)' in m for m in messages), messages
        assert any("grad() pass's scratch" in m for m in messages), messages
        assert g.data == x.grad and grad(y, x, create_graph=True)[0].data == x.grad
        print('ok')
        """)
    assert_clean_exit(proc)


# =============================================================================
# The 32-bit reference count
# =============================================================================

@pytest.fixture
def near_limit():
    """A Value whose node's count is a few pins short of the limit, and the count
    taken back afterwards (else the node could never be freed)."""
    added = []

    def make(v, room=0):
        delta = PIN_LIMIT - room - _add_refs(v, 0)
        _add_refs(v, delta)
        added.append((v, delta))
        return v
    yield make
    for v, delta in added:
        _add_refs(v, -delta)


def test_pins_near_the_top_of_the_count_are_refused(baseline, near_limit):
    """A node pinned 2**32 times wrapped to 0 and was freed while in use. Pins
    (Graph, ValueVector, handles, dot's running sum, a sweep's) are refused with
    OverflowError once the count is within 2 * MAX_NODES of 2**32: all the parent
    references there can ever be still fit."""
    x = Value(1.5)
    y = x * 2.0 + 1.0
    near_limit(x)
    count = _add_refs(x, 0)
    for pin in (lambda: ValueVector([x]), lambda: ValueVector([y, x]),
                lambda: Graph(x), lambda: Graph(y), lambda: dot([], [], x)):
        before = live()
        try:
            r = pin()
        except OverflowError as e:
            assert "reference count is full" in str(e)
        else:
            assert r is x                       # dot of no terms is `start`, no pin
        assert _add_refs(x, 0) == count        # a refused pin takes nothing
        assert live() == before
    with pytest.raises(OverflowError):
        dot([y], [1.0], x)                      # the running sum pins `start`
    # parent references are not pins: they may go past the limit
    z = x * x
    assert _add_refs(x, 0) == count + 2
    del z
    assert _add_refs(x, 0) == count
    # nothing was freed early: x and y work, and everything goes at the end
    y.backward()
    assert (x.data, y.data, x.grad) == (1.5, 4.0, 2.0)


def test_refused_handle_pin(baseline, near_limit):
    """`_prev` makes a new handle for an operand that has none: a pin."""
    x = Value(1.5)
    y = x * 2.0
    del x                                       # the node lives on, held by y
    delta = PIN_LIMIT - _add_refs(y, 0, operand=1)
    _add_refs(y, delta, operand=1)
    try:
        with pytest.raises(OverflowError, match="reference count is full"):
            y._prev
        assert live() == baseline + 3
    finally:
        _add_refs(y, -delta, operand=1)
    (x,) = [v for v in y._prev if v.data == 1.5]
    assert _add_refs(y, 0, operand=1) == 2      # y and the new handle


def test_refused_sweep_pin(baseline, near_limit):
    """A sweep over a custom op pins every node it pushes."""
    x = Value(1.5)
    y = x * 2.0
    c = Value(0.0, (y,), 'c')
    c._backward = lambda: None
    near_limit(y)
    counts = [_add_refs(v, 0) for v in (x, y, c)]
    for call in (lambda: Graph(c), c.backward, lambda: graph_size(c)):
        with pytest.raises(OverflowError):
            call()
        assert [_add_refs(v, 0) for v in (x, y, c)] == counts
    assert live() == baseline + 4


def test_refused_pin_in_a_vector_lets_go_of_the_others(baseline, near_limit):
    a, b, c = Value(1.0), Value(2.0), Value(3.0)
    near_limit(b)
    counts = [_add_refs(v, 0) for v in (a, b, c)]
    with pytest.raises(OverflowError):
        ValueVector([a, b, c])
    gc.collect()
    assert [_add_refs(v, 0) for v in (a, b, c)] == counts


def test_one_pin_below_the_limit_is_taken(baseline, near_limit):
    x = Value(1.0)
    near_limit(x, room=1)
    vv = ValueVector([x])
    assert _add_refs(x, 0) == PIN_LIMIT
    with pytest.raises(OverflowError):
        Graph(x)
    del vv
    assert _add_refs(x, 0) == PIN_LIMIT - 1


# =============================================================================
# Memory given back
# =============================================================================

def test_memory_is_given_back_after_a_huge_graph():
    """A 2*10**7-node graph kept ~1.1 GB of RSS for the rest of the session."""
    require_facility("memory")
    proc = run_script("""
        import psutil
        from autograd import Value
        from autograd._core import arena_stats

        def rss_mb():
            return psutil.Process().memory_info().rss / 2**20

        params = [Value(float(i)) for i in range(100)]    # low slots, still live after
        start = rss_mb()
        x = Value(0.5)
        y = x
        for _ in range(10_000_000):
            y = y * 1.0
        y.backward()
        peak = rss_mb()
        assert peak - start > 700, (start, peak)
        del y
        after = rss_mb()
        assert after - start < 150, (start, peak, after)
        assert x.grad == 1.0 and [p.data for p in params] == list(map(float, range(100)))
        assert arena_stats()['capacity'] <= 2**16, arena_stats()
        y = x * 2.0                          # the arena still works
        y.backward()
        assert x.grad == 3.0
        print(f'RSS {start:.0f} -> {peak:.0f} -> {after:.0f} MB')
        print('ok')
        """)
    assert_clean_exit(proc)


def test_a_training_loop_does_not_shrink_and_regrow_every_step():
    """A step that builds a big graph and drops it leaves few live nodes: the
    arena would shrink after every step and regrow in the next. Once a trim had
    to be regrown, the arena stays at that size. (A fresh process: the arena's
    history decides.)"""
    proc = run_script("""
        from autograd import Value
        from autograd._core import arena_stats

        params = [Value(0.1 * i) for i in range(64)]
        history = []
        for step in range(8):
            acc = params[0]
            for _ in range(2000):
                for p in params[1:]:
                    acc = acc + p            # 126,000 nodes
            acc.backward()
            del acc
            s = arena_stats()
            history.append((s['capacity'], s['grows'], s['trims']))
        caps, grows, trims = zip(*history)
        assert trims == (1,) * 8, history          # after the first step only
        assert grows[2:] == (grows[1],) * 6, history
        assert caps[1:] == (131072,) * 7, history
        print('ok')
        """)
    assert_clean_exit(proc)


def test_live_values_keep_their_nodes_through_a_trim():
    """A trim gives back the slots above the last live one, and the pages of long
    free runs below it (madvise): the Values that stay, at the bottom, in the
    middle and at the top of the dropped ones, keep their data, grads and
    operands; slots given back are handed out again without trouble."""
    proc = run_script("""
        import gc
        from autograd import Value
        from autograd._core import arena_stats

        vals = [Value(float(i)) * 2.0 for i in range(300_000)]     # 3 nodes each
        kept = [vals[5], vals[150_000], vals[299_990]]
        for v in kept:
            v.backward()
        trims = arena_stats()['trims']
        del vals, v
        assert arena_stats()['live'] == 9
        assert arena_stats()['trims'] == trims        # the top one blocks the tail
        top = kept.pop()
        assert (top.data, top.grad) == (599_980.0, 1.0)
        del top                                       # the blocker goes: the tail goes,
        assert arena_stats()['trims'] == trims + 1    # up to the next live one
        assert arena_stats()['capacity'] == (3 * 150_000 + 3 + 63) // 64 * 64, arena_stats()
        assert [(v.data, v.grad) for v in kept] == [(10.0, 1.0), (300_000.0, 1.0)]
        assert sorted(p.data for p in kept[1]._prev) == [2.0, 150_000.0]
        fresh = [Value(float(i)) * 3.0 for i in range(100_000)]  # into the slots given back
        assert [v.data for v in fresh[:3]] == [0.0, 3.0, 6.0] and fresh[-1].data == 299_997.0
        assert all(len(v._prev) == 2 for v in fresh[::1000])
        fresh[-1].backward()
        assert [p.grad for p in fresh[-1]._prev if p.data == 99_999.0] == [3.0]
        del fresh, kept
        gc.collect()
        assert arena_stats()['live'] == 0
        print('ok')
        """)
    assert_clean_exit(proc)


# =============================================================================
# Second audit (issue 18): custom ops in gradient graphs, the core's own objects
# =============================================================================

def custom_square(a):
    """micrograd's way of writing an op: out = a ** 2 with its own _backward."""
    out = Value(a.data ** 2, (a,), 'sq')

    def _backward():
        a.grad += 2 * a.data * out.grad
    out._backward = _backward
    return out


@pytest.mark.parametrize("weight", ["custom op", "op on a custom op", "second output"])
def test_create_graph_refuses_a_weight_computed_by_a_custom_op(baseline, weight):
    """The audit's wrong result: a custom op's Value as grad_outputs with
    create_graph entered the gradient graph under plain nodes (no FLAG_MANAGED),
    so backward() and grad() skipped its _backward (d(dy)/da 0 instead of 24),
    and swept it without pins. Now refused, like a custom op in the outputs'
    graph, naming the op; nothing is left behind."""
    x = Value(3.0)
    a = Value(2.0)
    v = custom_square(a)
    outs, weights = x * x, v
    if weight == "op on a custom op":
        weights = v * 1.0
    elif weight == "second output":
        outs, weights = [x * x, x * 2.0], [1.0, v]
    before = live()
    with pytest.raises(ValueError, match=r"grad_outputs\[\d\].*custom op 'sq'"):
        grad(outs, x, grad_outputs=weights, create_graph=True)
    assert live() == before
    # as a number (the message's advice), or without create_graph, it works
    w = weights[-1] if isinstance(weights, list) else weights
    (dy,) = grad(outs, x, grad_outputs=[1.0, w.data] if isinstance(outs, list) else w.data,
                 create_graph=True)
    (dn,) = grad(outs, x, grad_outputs=weights)
    expected = 6.0 * 4.0 if weight != "second output" else 6.0 + 2.0 * 4.0
    assert dy.data == dn.data == expected
    assert type(dy) is Value and dy._op != ''


def test_unpinned_sweep_over_a_custom_grad_output_cannot_crash():
    """The audit's crash (same root): grad() over such a gradient graph swept a
    custom op without pinning; a finalizer run by the collector inside grad()
    freed the chain under it. The scenario, for each of the first collections
    inside grad(): it is refused before any graph is built."""
    child = """
        import gc, sys
        from autograd import Value, grad
        K = %d
        x = Value(3.0)
        y = x * x
        v = Value(2.0, (), 'w')
        v._backward = lambda: None
        try:
            (dy,) = grad(y, x, grad_outputs=v, create_graph=True)
        except ValueError:
            print('ok')
            sys.exit(0)
        big = Value(1.0)
        for _ in range(300000):
            big = big + 1.0
        v._prev = (big,)
        del big
        fired = []
        class Bomb:
            def __init__(self, n):
                self.n = n; self.me = self
            def __del__(self):
                if self.n > 0:
                    Bomb(self.n - 1)
                elif not fired:
                    fired.append(1)
                    v._prev = ()
        Bomb(K)
        gc.set_threshold(1)
        try:
            grad(dy, [x], allow_unused=True)
        finally:
            gc.set_threshold(700)
        print('ok')
        """
    for k in range(4):
        assert_clean_exit(run_script(child % k))


def test_every_handle_above_a_custom_op_is_a_custom_value(baseline):
    """FLAG_MANAGED marks every node above a custom op, and its handle is a
    CustomValue, also one made later by `_prev` for a node whose handle died."""
    x = Value(2.0)
    c = custom_square(x)
    made = [c * 2.0, 2.0 * c, c + x, x - c, -c, c ** 2, c.relu(), c.tanh(),
            c * Fraction(1, 2), dot([c], [x], Value(1.0)), sum([c, x])]
    assert all(type(r) is CustomValue for r in made), [type(r) for r in made]
    r = (c * 3.0) + 1.0
    del r.__dict__                  # its operands' Values go: their nodes stay
    gc.collect()
    (mid,) = [p for p in r._prev if p.data == 12.0]
    assert type(mid) is CustomValue
    (const,) = [p for p in r._prev if p.data == 1.0]
    assert type(const) is Value
    r.backward()
    assert mid.grad == 1.0 and const.grad == 1.0


# Each replacement is made on the class (or the core module), as user code may;
# the core must neither call it to make its own objects nor trust what it returns.
CLASS_REPLACEMENTS = {
    "Value.__new__ returns a float": """
        class Proxy(float):
            pass
        junk = struct.unpack('<d', struct.pack('<Q', 0x4000000010000000))[0]
        def new(cls, *args, **kw):
            if args and isinstance(args[0], (int, float)) and args[0] in (7.0, 0.5, 24.0):
                return Proxy(junk)
            return object.__new__(cls)
        Value.__new__ = new
        undo = lambda: delattr(Value, '__new__')
        """,
    "Value.__init__ does not bind": """
        orig = Value.__init__
        def init(self, data, *a, **k):
            if data in (7.0, 0.5, 24.0):
                return
            orig(self, data, *a, **k)
        Value.__init__ = init
        undo = lambda: setattr(Value, '__init__', orig)
        """,
    "CustomValue.__new__ returns a held Value": """
        held = Value(5.0, (), 'held')
        CustomValue.__new__ = lambda cls, *a, **k: held
        def undo():
            del CustomValue.__new__
            assert (held.data, held._op, held._prev) == (5.0, 'held', set()), held
        """,
    "the module's name CustomValue is a float": """
        import autograd._core as core
        core.CustomValue = float
        made = Value(3.0, (x,), 'made')     # its type was chosen by that name
        assert (type(made), made.data, made._op, made._prev) == (CustomValue, 3.0, 'made', {x})
        undo = lambda: setattr(core, 'CustomValue', CustomValue)
        """,
}


@pytest.mark.parametrize("replacement", sorted(CLASS_REPLACEMENTS))
def test_core_makes_its_own_values(replacement):
    """The audit's crash and wrong result: an op between a custom op and a number
    made the number's leaf with the public Value(...) (and the result with
    CustomValue.__new__) and used what came back unchecked: a garbage node
    index (SIGSEGV), the null node as an operand (a wrong grad, a write into
    it), or a Value the user holds overwritten. grad()'s results and copies
    of leaves were made the same way."""
    proc = run_script(textwrap.dedent("""
        import copy, pickle, struct
        from autograd import CustomValue, Value, grad
        x = Value(2.0)
        c = Value(2.0, (x,), 'id')
        def bw():
            x.grad += c.grad
        c._backward = bw
        y = x * 3.0
        leaf = Value(0.5)
        leaf.grad = 1.5
        """) + textwrap.dedent(CLASS_REPLACEMENTS[replacement]) + textwrap.dedent("""
        try:
            results = [c * 7.0, 7.0 * c, c + 7.0, c ** 7.0, 7.0 - c]
            (g,) = grad(y, x, grad_outputs=8.0)           # 24.0: a new leaf
            copies = [copy.copy(leaf), copy.deepcopy(leaf), pickle.loads(pickle.dumps(leaf))]
        finally:
            undo()
        assert [r.data for r in results] == [14.0, 14.0, 9.0, 128.0, 5.0]
        for r in results:
            assert type(r) is CustomValue
            # (the exponent of ** 7.0 is hidden, as in micrograd)
            assert sorted(p.data for p in r._prev) == ([2.0] if r._op == '**7.0' else
                                                       [2.0, 7.0]), r._prev
        results[0].backward()
        assert x.grad == 7.0, x.grad
        assert (type(g), g.data, g._prev) == (Value, 24.0, set())
        for v in copies:
            assert (type(v), v.data, v.grad) == (Value, 0.5, 1.5)
        assert Value.__new__(Value).grad == 0.0          # the null node is untouched
        print('ok')
        """))
    assert_clean_exit(proc)


@pytest.mark.parametrize("make", ["leaf", "op", "custom op"])
@pytest.mark.parametrize("attr", ["data", "grad", "_op", "name", "label", "_prev",
                                  "_backward"])
def test_deleting_a_value_property_is_an_attribute_error(baseline, make, attr):
    """`del v.data` said NotImplementedError: __del__ (Cython's default)."""
    x = Value(1.5, name='x')
    v = {"leaf": x, "op": x * 2.0, "custom op": custom_square(x)}[make]
    before = (v.data, v.grad, v._op, v.name, v._prev)
    with pytest.raises(AttributeError, match=rf"property '{attr}' of '{type(v).__name__}' "
                                             "object has no deleter"):
        delattr(v, attr)
    assert (v.data, v.grad, v._op, v.name, v._prev) == before
    v.color = 'red'                 # instance attributes are deleted as before
    del v.color
    assert not hasattr(v, 'color')


def test_micrograd_runner_m_binds_builtins_to_the_module(tmp_path):
    """`python -m autograd.micrograd -m module` ran the module with __builtins__
    bound to the builtins dict; `python -m module` binds the module."""
    import subprocess
    import sys
    (tmp_path / "uses_builtins.py").write_text(
        "print(type(__builtins__).__name__, __builtins__.len([1, 2]))\n")
    runs = [subprocess.run([sys.executable, *runner, "-m", "uses_builtins"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
            for runner in ([], ["-m", "autograd.micrograd"])]
    for proc in runs:
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "module 2\n", ""), proc


# grad()'s scratch is shared by passes and cleared entry by entry: a pass that
# leaves a bit behind would change the next pass's numbers.

def reference_grads(root, xs):
    """backward()'s numbers, from a fresh copy of nothing: grads zeroed first."""
    for v in topo_of(root):
        v.grad = 0.0
    root.backward()
    return [v.grad for v in xs]


def topo_of(root):
    seen, stack, out = set(), [root], []
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
            stack.extend(v._prev)
    return out


def test_grad_scratch_is_clean_after_every_pass(baseline):
    """Inputs outside the graph, a refused input, a refused custom op, several
    outputs: each pass clears what it set, and later passes (with and without
    create_graph) give backward()'s numbers bit for bit."""
    xs = [Value(0.3 * k + 0.1) for k in range(5)]
    outer = sum(xs[k] * xs[(k + 1) % 5] for k in range(5)).tanh() * xs[0]
    inner = (xs[1] * xs[2] + xs[3]).exp()
    expected = reference_grads(outer, xs)
    for _ in range(2):
        grad(inner, xs, allow_unused=True)                       # xs[0], xs[4] outside
        grad([inner, outer], xs, grad_outputs=[2.0, None], create_graph=True)
        with pytest.raises(ValueError, match="not in the graph"):
            grad(inner, xs[0])
        c = custom_square(inner)
        with pytest.raises(ValueError, match="custom op 'sq'"):
            grad(c, xs, create_graph=True, allow_unused=True)
        assert [g.data for g in grad(outer, xs)] == expected
        dys = grad(outer, xs, create_graph=True)
        assert [g.data for g in dys] == expected
        # the graph of one of them, differentiated again, has every input too
        assert [g.data for g in grad(dys[2], xs)] == reference_grads(dys[2], xs)


def test_grad_inside_grad_gets_scratch_of_its_own(baseline):
    """A custom op's _backward that calls grad() (and one that raises) while an
    outer grad() holds the shared scratch: both give the right numbers."""
    x = Value(1.5)
    y = x * x * x
    inner_results = []
    a = Value(0.7)
    out = Value(a.data * 2.0, (a,), 'twice')

    def _backward():
        (g,) = grad(y, x, create_graph=True)           # 3 x**2, while the outer runs
        (h,) = grad(g, x)                              # 6 x
        inner_results.append((g.data, h.data))
        a.grad += 2.0 * out.grad
    out._backward = _backward
    loss = out * y
    ga, gx = grad(loss, [a, x])
    assert (ga.data, gx.data) == (2.0 * y.data, out.data * 3 * 1.5 ** 2)
    assert inner_results == [(3 * 1.5 ** 2, 6 * 1.5)]
    assert [g.data for g in grad(y, x)] == [3 * 1.5 ** 2]
