"""Derivatives of any order (issue 11): ``grad``, ``hessian``, ``gradgradcheck``.

Differential against torch float64's double and triple backward on random programs
that use every op; finite differences of first derivatives; replayed grad graphs
against freshly built ones; lifetime; errors.
"""
import gc
import math
import random

import pytest

import autograd._core
from autograd import (Graph, GradcheckError, Value, draw_dot, grad, gradgradcheck,
                      hessian)
from autograd._core import arena_stats

try:
    import torch
except ImportError:     # its tests are marked requires("torch"): they skip, saying why,
    torch = None        # or fail under ARENAGRAD_REQUIRE_TORCH=1 (.ci/run); the rest run

N_TORCH = 150           # random programs against torch
N_FINITE = 120          # random programs against finite differences
N_REPLAY = 80


def live():
    return arena_stats()["live"]


class T:
    """A leaf maker that `run_program` can use: 0-dim float64 tensors."""
    def __new__(cls, x):
        return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)


def _num(v):
    """A derivative as a float: None (not in the graph) is 0."""
    if v is None:
        return 0.0
    return float(v.data) if isinstance(v, Value) else float(v.detach())


def _assert_close(ours, theirs, what):
    """Equal up to rounding: relative 1e-8 of the largest entry of that derivative."""
    scale = max([1.0] + [abs(t) for t in theirs if math.isfinite(t)])
    for k, (o, t) in enumerate(zip(ours, theirs)):
        if math.isnan(t):
            assert math.isnan(o), f"{what}[{k}]: ours {o!r}, torch {t!r}"
            continue
        assert abs(o - t) <= 1e-8 * scale, f"{what}[{k}]: ours {o!r}, torch {t!r}"


def _same(a, b):
    """Bit for bit (nan equals nan)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _weights(rng, n):
    return [rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5) for _ in range(n)]


# --- against torch ----------------------------------------------------------------------

@pytest.mark.requires("torch")
@pytest.mark.parametrize("seed", range(N_TORCH))
def test_random_programs_against_torch_double_and_triple_backward(seed, programs):
    prog = programs.make(70_000 + seed, programs.ALL_OPS)
    rng = random.Random(seed)
    ours = programs.run(prog, Value)
    theirs = programs.run(prog, T)
    n = len(prog.leaves)
    xs, ts = ours[:n], theirs[:n]
    what = repr(prog)

    g = grad(ours[-1], xs, create_graph=True, allow_unused=True)
    tg = torch.autograd.grad(theirs[-1], ts, create_graph=True, allow_unused=True)
    _assert_close([_num(v) for v in g], [_num(t) for t in tg], f"{what} first")

    # the whole Hessian: each first derivative differentiated again
    for i in range(n):
        if g[i] is None or tg[i] is None or not tg[i].requires_grad:
            assert g[i] is None or all(_num(h) == 0.0 for h in
                                       grad(g[i], xs, allow_unused=True)), what
            continue
        h = grad(g[i], xs, allow_unused=True)
        th = torch.autograd.grad(tg[i], ts, allow_unused=True, retain_graph=True)
        _assert_close([_num(v) for v in h], [_num(t) for t in th], f"{what} H[{i}]")

    # third order: a weighted sum of first derivatives, twice more, with Value weights
    # for ours and tensor weights for torch (grad_outputs of each kind)
    w = _weights(rng, n)
    used = [i for i in range(n) if g[i] is not None and tg[i] is not None
            and tg[i].requires_grad]
    if not used:
        return
    s = sum((w[i] * g[i] for i in used), Value(0.0))
    ts_ = sum(w[i] * tg[i] for i in used)
    h = grad(s, xs, create_graph=True, allow_unused=True)
    th = torch.autograd.grad(ts_, ts, create_graph=True, allow_unused=True)
    _assert_close([_num(v) for v in h], [_num(t) for t in th], f"{what} second")
    v = _weights(rng, n)
    keep = [i for i in range(n) if h[i] is not None and th[i] is not None
            and th[i].requires_grad]
    if not keep:
        return
    third = grad([h[i] for i in keep], xs, grad_outputs=[v[i] for i in keep],
                 allow_unused=True)
    tthird = torch.autograd.grad([th[i] for i in keep], ts,
                                 grad_outputs=[torch.tensor(v[i], dtype=torch.float64)
                                               for i in keep], allow_unused=True)
    _assert_close([_num(x) for x in third], [_num(t) for t in tthird], f"{what} third")


def test_torch_programs_cover_every_op(programs):
    seen = set()
    for seed in range(N_TORCH):
        seen.update(op for op, _, _ in programs.make(70_000 + seed, programs.ALL_OPS).steps)
    assert seen == set(programs.ALL_OPS)


@pytest.mark.parametrize("seed", range(40))
def test_numbers_are_backwards_bit_for_bit(seed, programs):
    """create_graph or not, grad() gives backward()'s numbers exactly, and the data
    of the built graph are its numbers: the same formulas in the same association."""
    prog = programs.make(71_000 + seed, programs.ALL_OPS)
    nodes = programs.run(prog, Value)
    n = len(prog.leaves)
    inputs = nodes[:n] + nodes[n:-1:3]              # leaves and some inner nodes
    numbers = grad(nodes[-1], inputs)
    graphs = grad(nodes[-1], inputs, create_graph=True)
    assert all(v.grad == 0.0 for v in nodes)         # grad() never touches .grad
    nodes[-1].backward()
    for x, a, b in zip(inputs, numbers, graphs):
        assert _same(a.data, x.grad) and _same(b.data, x.grad), repr(prog)
        assert a._op == "" and a._prev == set()      # without create_graph: leaves


@pytest.mark.requires("torch")
def test_hessian_matches_torch():
    def f(x, y, z):
        return (x * y).tanh() * z.exp() + (x ** 2.5) * y.sigmoid() + (y / z).log() \
            + x ** z + 3.0 ** (x * z) + (x - y).relu() * z
    point = [1.3, 0.4, 0.9]
    ours = hessian(f, point)
    theirs = torch.autograd.functional.hessian(
        lambda x: f(x[0], x[1], x[2]), torch.tensor(point, dtype=torch.float64))
    for i in range(3):
        _assert_close(ours[i], theirs[i].tolist(), f"H[{i}]")


# --- against finite differences ---------------------------------------------------------

@pytest.mark.parametrize("seed", range(N_FINITE))
def test_random_programs_gradgradcheck(seed, programs):
    prog = programs.make(72_000 + seed, programs.ALL_OPS)
    n = len(prog.leaves)
    xs = [Value(float(x)) for x in prog.leaves]
    assert gradgradcheck(lambda *leaves: programs.run(prog, Value, leaves)[-1], xs,
                         eps=1e-6, atol=1e-4, rtol=1e-4), repr(prog)
    assert all(x.grad == 0.0 for x in xs) and [x.data for x in xs] == \
        [float(x) for x in prog.leaves][:n]


def test_gradgradcheck_catches_a_wrong_second_derivative():
    """A custom op whose _backward is right but whose derivative graph is wrong can't
    exist (custom ops are refused), so break the program instead: a function whose
    'second derivative' comes from a different function."""
    x = Value(0.7)
    calls = []

    def f(v):
        calls.append(1)
        # exact first derivative on the analytic side, a different one when f moves
        return v ** 3 if len(calls) <= 2 else v ** 3 + v * v * 100.0
    assert not gradgradcheck(f, [x], raise_exception=False)
    calls.clear()
    with pytest.raises(GradcheckError, match="second derivatives disagree"):
        gradgradcheck(f, [x])


def test_gradgradcheck_with_several_outputs_and_weights():
    a, b = Value(0.3), Value(-1.2)
    assert gradgradcheck(lambda a, b: [a * b.exp(), (a - b).tanh()], [a, b],
                         grad_outputs=[0.5, -2.0])


# --- hand-picked rules --------------------------------------------------------------------

def test_third_derivative_of_a_power():
    x = Value(2.0)
    (d1,) = grad(x ** 4, x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x, create_graph=True)
    (d4,) = grad(d3, x)
    assert (d1.data, d2.data, d3.data, d4.data) == (32.0, 48.0, 48.0, 24.0)


def test_relu_second_derivative_is_zero_and_a_leaf():
    x = Value(1.5)
    (d1,) = grad(x.relu() * 2.0, x, create_graph=True)
    (d2,) = grad(d1, x)
    assert d1.data == 2.0 and d2.data == 0.0


@pytest.mark.requires("torch")
def test_power_zero_exponents():
    """d(a**0)/da = 0 for a number exponent (a constant, as in torch) and for a Value
    one (selected by b != 0); the second derivatives are torch's, nan at a == 0 too."""
    a = Value(0.0)
    (da,) = grad(a ** 0, a, create_graph=True)
    assert da.data == 0.0 and da._prev == set() and grad(da, a, allow_unused=True) == (None,)
    for av in (0.0, 2.0):
        a, z = Value(av), Value(0.0)
        ta, tz = T(av), T(0.0)
        (da,) = grad(a ** z, a, create_graph=True)
        (tda,) = torch.autograd.grad(ta ** tz, ta, create_graph=True)
        assert da.data == 0.0 and tda.item() == 0.0
        ours = [v.data for v in grad(da, [a, z])]
        theirs = [float(t) for t in torch.autograd.grad(tda, [ta, tz])]
        assert all(_same(o, t) for o, t in zip(ours, theirs)), (av, ours, theirs)
    (dz,) = grad(Value(0.0) ** z, z)     # d(a**b)/db at a == 0, b >= 0: 0 (as torch)
    assert dz.data == 0.0


def test_ieee_at_the_domain_edge():
    """Differentiation-made nodes never raise, eager or replayed: the grad of x ** 0.5
    at 0 is inf, its derivative -inf, as first-order backward() gives inf."""
    x = Value(0.0)
    y = x ** 0.5
    (d1,) = grad(y, x, create_graph=True)
    (d2,) = grad(d1, x)
    y.backward()
    assert d1.data == x.grad == math.inf and d2.data == -math.inf
    # log's rule g / x and 1 / x's -g * 1 / (x * x), built at x = 1, replayed at x = 0:
    # the user's own nodes raise there, as eagerly; the grad graphs give inf
    for f, edge, error in [(lambda u: u.log(), math.inf, ValueError),
                           (lambda u: 1.0 / u, -math.inf, ZeroDivisionError)]:
        x = Value(1.0)
        y = f(x * 1.0)
        (d1,) = grad(y, x, create_graph=True)
        ry, rd = Graph(y), Graph(d1)
        x.data = 0.0
        with pytest.raises(error):
            ry.forward()
        rd.forward()
        assert d1.data == edge


def test_grad_graph_nodes_replay_with_ieee_values():
    x = Value(4.0)
    (d1,) = grad((x * 1.0) ** 0.5, x, create_graph=True)
    r = Graph(d1)
    x.data = 0.0
    r.forward()                          # 0 ** -0.5 inside the grad graph: inf, no error
    assert d1.data == math.inf


def test_hvp_through_a_value_grad_output():
    xs = [Value(0.5), Value(-0.3), Value(1.1)]
    v = [0.2, -1.0, 0.7]

    def f(a, b, c):
        return (a * b).tanh() + b * c.exp() + a ** 3

    g = grad(f(*xs), xs, create_graph=True)
    hv = grad(g, xs, grad_outputs=v)
    hm = hessian(f, [x.data for x in xs])
    for i in range(3):
        assert hv[i].data == pytest.approx(sum(hm[i][j] * v[j] for j in range(3)), rel=1e-12)
    # a Value grad_output is part of the graph: differentiate with respect to it
    u = Value(2.0)
    y = xs[0] * xs[1]
    (gx,) = grad(y, xs[0], grad_outputs=u, create_graph=True)
    (gu,) = grad(gx, u)
    assert gx.data == 2.0 * xs[1].data and gu.data == xs[1].data


def test_inputs_inside_the_graph_and_outputs_as_inputs():
    x = Value(1.5)
    h = x * x
    y = h.exp() + h
    gx, gh, gy = grad(y, [x, h, y], create_graph=True)
    assert gh.data == math.exp(2.25) + 1.0 and gy.data == 1.0
    assert gx.data == gh.data * 3.0


def test_several_outputs_are_summed_with_weights():
    x, y = Value(0.4), Value(2.0)
    a, b = x * y, x.tanh()
    gx, gy = grad([a, b, a], [x, y], grad_outputs=[1.0, 3.0, None], create_graph=True)
    assert gx.data == pytest.approx(2 * 2.0 + 3 * (1 - math.tanh(0.4) ** 2), rel=1e-15)
    assert gy.data == 2 * 0.4
    n = grad([a, b, a], [x, y], grad_outputs=[1.0, 3.0, None])
    assert (n[0].data, n[1].data) == (gx.data, gy.data)


# --- replay ------------------------------------------------------------------------------

def _perturbed(rng, prog):
    return [x + rng.uniform(-0.05, 0.05) * abs(x) for x in prog.leaves]


@pytest.mark.parametrize("seed", range(N_REPLAY))
def test_replayed_grad_graphs_equal_fresh_ones(seed, programs):
    prog = programs.make(73_000 + seed, programs.ALL_OPS)
    rng = random.Random(seed)
    n = len(prog.leaves)
    nodes = programs.run(prog, Value)
    xs = nodes[:n]
    g = grad(nodes[-1], xs, create_graph=True, allow_unused=True)
    w = _weights(rng, n)
    s = sum((w[i] * g[i] for i in range(n) if g[i] is not None), Value(0.0))
    h = grad(s, xs, create_graph=True, allow_unused=True)
    roots = [v for v in g + h if v is not None]
    replay = [Graph(v) for v in roots]
    for _ in range(3):
        data = _perturbed(rng, prog)
        try:
            fresh_nodes = programs.run(prog, Value, data)
        except (ArithmeticError, ValueError):
            continue                          # left the program's domain
        for x, d in zip(xs, data):
            x.data = d
        for r in replay:
            r.forward()
        fx = fresh_nodes[:n]
        fg = grad(fresh_nodes[-1], fx, create_graph=True, allow_unused=True)
        fs = sum((w[i] * fg[i] for i in range(n) if fg[i] is not None), Value(0.0))
        fh = grad(fs, fx, create_graph=True, allow_unused=True)
        fresh = [v for v in fg + fh if v is not None]
        assert len(fresh) == len(roots)
        for a, b in zip(roots, fresh):
            assert _same(a.data, b.data), repr(prog)


def test_replay_follows_the_conditions_of_relu_and_powers():
    """The conditions are ops: relu's step, a ** b's b != 0 and a == 0 <= b."""
    x, b = Value(1.5), Value(2.0)
    y = x.relu() * x + (x * 1.0) ** b + x ** (b * 1.0)
    gx, gb = grad(y, [x, b], create_graph=True)
    hxx, hxb = grad(gx, [x, b])
    r = [Graph(gx), Graph(gb)]

    def check(xv, bv):
        x.data, b.data = xv, bv
        for g in r:
            g.forward()
        fx, fb = Value(xv), Value(bv)
        fy = fx.relu() * fx + (fx * 1.0) ** fb + fx ** (fb * 1.0)
        fgx, fgb = grad(fy, [fx, fb], create_graph=True)
        assert _same(gx.data, fgx.data) and _same(gb.data, fgb.data), (xv, bv)
        assert [_same(p.data, q.data) for p, q in
                zip(grad(gx, [x, b]), grad(fgx, [fx, fb]))] == [True, True], (xv, bv)

    for xv, bv in [(-1.5, 2.0), (0.0, 2.0), (0.0, 0.0), (2.0, 0.0), (-2.0, 3.0), (3.0, 0.5)]:
        check(xv, bv)


# --- lifetime ----------------------------------------------------------------------------

def test_repeated_hessians_leave_no_live_nodes():
    xs = [Value(0.3), Value(-0.8), Value(1.2)]

    def f(a, b, c):
        return (a * b + c).tanh() * (a ** 2 + (b * b) ** c.sigmoid()).log() + (a - c).relu()

    hessian(f, xs)
    before = live()
    for _ in range(50):
        hessian(f, xs)
        g = grad(f(*xs), xs, create_graph=True)
        grad(sum(g, Value(0.0)), xs)
        del g
    assert live() == before


def test_dropping_grad_graphs_frees_them():
    before = live()
    x = Value(0.7)
    y = (x * x).tanh()
    (g,) = grad(y, x, create_graph=True)
    (h,) = grad(g, x, create_graph=True)
    assert live() > before + 3
    del y, g
    assert h.data == hessian(lambda v: (v * v).tanh(), [0.7])[0][0]  # h's graph lives
    del h, x
    assert live() == before


def test_failed_grad_leaves_nothing_behind():
    before = live()
    x, y = Value(1.0), Value(2.0)
    with pytest.raises(ValueError, match="input 1"):
        grad([x * 2.0, x.exp()], [x, y], create_graph=True)
    with pytest.raises(ValueError, match="input 1"):
        grad(x * 2.0, [x, y])
    del x, y
    assert live() == before


# --- the API -----------------------------------------------------------------------------

def test_grad_never_touches_grad():
    x = Value(2.0)
    x.grad = 5.0
    y = x * x
    y.grad = -1.0
    (g,) = grad(y, x)
    (h,) = grad(y, x, create_graph=True)
    assert (g.data, h.data, x.grad, y.grad) == (4.0, 4.0, 5.0, -1.0)
    assert isinstance(x.grad, float)


def test_unused_inputs():
    x, y = Value(1.0), Value(2.0)
    z = x * 3.0
    for cg in (False, True):
        with pytest.raises(ValueError, match="allow_unused"):
            grad(z, [x, y], create_graph=cg)
        gx, gy = grad(z, [x, y], create_graph=cg, allow_unused=True)
        assert gx.data == 3.0 and gy is None


def test_custom_ops():
    """Without create_graph a custom op's _backward runs (on saved-and-restored grads);
    with create_graph it is refused by name: its rule adds numbers, not Values."""
    x = Value(0.5)

    def softplus(v):
        out = Value(math.log1p(math.exp(v.data)), (v,), "softplus")

        def _backward():
            v.grad += (1 / (1 + math.exp(-v.data))) * out.grad
        out._backward = _backward
        return out

    y = softplus(x * 2.0) * 3.0
    x.grad = 7.0
    (g,) = grad(y, x)
    assert g.data == pytest.approx(6.0 / (1 + math.exp(-1.0)), rel=1e-15) and x.grad == 7.0
    with pytest.raises(ValueError, match="'softplus'"):
        grad(y, x, create_graph=True)
    with pytest.raises(ValueError, match="'softplus'"):
        hessian(lambda v: softplus(v), [0.5])
    del y
    gc.collect()


def test_bad_arguments():
    x = Value(1.0)
    y = x * 2.0
    with pytest.raises(TypeError):
        grad(1.0, x)
    with pytest.raises(TypeError):
        grad(y, [x, 3.0])
    with pytest.raises(ValueError, match="empty"):
        grad(y, [])
    with pytest.raises(ValueError, match="entries"):
        grad([y, y], x, grad_outputs=[1.0])
    with pytest.raises(TypeError):
        grad(y, x, grad_outputs="a")
    assert grad(y, x, grad_outputs=2)[0].data == 4.0


def test_grad_graphs_are_ordinary_graphs():
    x = Value(0.3, name="x")
    (g,) = grad((x * x).sigmoid(), x, create_graph=True)
    source = draw_dot(g).source
    assert "sigmoid" in source and "x" in source
    ops = set()
    stack, seen = [g], set()
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            ops.add(v._op)
            stack.extend(v._prev)
    assert {"*", "-", "sigmoid"} <= ops
    g.backward()                          # backward() through a grad graph
    (h,) = grad(g, x)
    assert x.grad == h.data


def test_internal_op_names():
    x, b = Value(1.5), Value(0.5)
    g = grad(x.relu() + x ** b, [x, b], create_graph=True)
    names = set()
    stack, seen = list(g), set()
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            names.add(v._op)
            stack.extend(v._prev)
    assert {"step", "select", "pow_mask"} <= names
    assert {"step", "select", "pow_mask"} <= set(autograd._core.OP_NAMES)


def test_example_script_runs():
    """examples/second_derivatives.py: Newton reaches (1, 1); its HVP matches
    finite differences (the script asserts both)."""
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "second_derivatives.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "y = 1.000000000000" in done.stdout and "agrees with finite differences" in done.stdout


def test_custom_op_whose_backward_calls_grad_and_drops_values():
    """A _backward may do anything, grad() included: the pass's nodes are pinned and
    its saved grads restored; the numbers stay right."""
    before = live()
    x = Value(0.3)

    def odd(v):
        out = Value(v.data ** 3, (v,), "cube")

        def _backward():
            tmp = [Value(1.0) * v for _ in range(50)]           # allocate, maybe grow
            (inner,) = grad(tmp[0] ** 3, v)                      # re-entrant grad
            del tmp
            v.grad += inner.data * out.grad
        out._backward = _backward
        return out

    y = odd(x * 2.0) + x
    x.grad = 1.5
    (g,) = grad(y, x)
    assert g.data == pytest.approx(3 * 0.6 ** 2 * 2 + 1, rel=1e-15) and x.grad == 1.5
    del y, g, x
    gc.collect()
    assert live() == before
