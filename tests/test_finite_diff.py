"""Gradients against central finite differences (float64, h = 1e-6), for the ops
micrograd lacks and for random programs mixing every op; and the analytic rules at
special points (kinks, zero bases), where finite differences cannot be trusted."""
import math

import pytest

from autograd import Value

H = 1e-6


def central_diff(f, xs, i, h=H):
    up, down = list(xs), list(xs)
    up[i] += h
    down[i] -= h
    return (f(*map(Value, up)).data - f(*map(Value, down)).data) / (2 * h)


def check_grads(f, xs, rel=1e-6, abs_=1e-7):
    """backward()'s grads of f at xs vs central differences, for every argument."""
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    out.backward()
    scale = max(1.0, abs(out.data))
    for i, leaf in enumerate(leaves):
        fd = central_diff(f, xs, i)
        assert math.isclose(leaf.grad, fd, rel_tol=rel, abs_tol=abs_ * scale), \
            f"d/dx{i} at {xs}: backward {leaf.grad!r}, finite difference {fd!r}"


UNARY = {
    "tanh": (lambda a: a.tanh(), [-3.0, -0.7, 0.0, 0.3, 1.2, 4.0]),
    "exp": (lambda a: a.exp(), [-5.0, -1.0, 0.0, 0.5, 2.0, 5.0]),
    "log": (lambda a: a.log(), [0.05, 0.5, 1.0, 2.0, 30.0]),
    "sigmoid": (lambda a: a.sigmoid(), [-30.0, -4.0, -0.5, 0.0, 0.5, 4.0, 30.0]),
    "neg": (lambda a: -a, [-2.0, 0.0, 3.5]),
    "number / v": (lambda a: 3.0 / a, [-2.0, -0.4, 0.3, 5.0]),
    "number - v": (lambda a: 3.0 - a, [-2.0, 0.0, 5.0]),
    "number ** v": (lambda a: 2.5 ** a, [-3.0, -0.5, 0.0, 0.7, 4.0]),
    "0.3 ** v": (lambda a: 0.3 ** a, [-3.0, 0.0, 2.0]),
    "v ** 0.5": (lambda a: a ** 0.5, [0.01, 0.4, 9.0]),
    "v ** -1.5": (lambda a: a ** -1.5, [0.2, 1.0, 7.0]),
    "v ** -2": (lambda a: a ** -2, [-3.0, -0.5, 0.5, 3.0]),
    "v ** 3": (lambda a: a ** 3, [-2.0, 0.0, 1.5]),
}


@pytest.mark.parametrize("name, x", [(name, x) for name, (_, xs) in UNARY.items() for x in xs])
def test_unary_ops(name, x):
    check_grads(UNARY[name][0], [x])


BINARY = {
    "v / v": lambda a, b: a / b,
    "v - v": lambda a, b: a - b,
    "v ** v": lambda a, b: a ** b,
    "v * v": lambda a, b: a * b,
    "v + v": lambda a, b: a + b,
}
BINARY_POINTS = [(0.5, -2.0), (1.7, 0.3), (3.0, 2.5), (0.9, -0.7), (4.2, 1.0), (2.0, 0.0)]


@pytest.mark.parametrize("name, point", [(name, p) for name in BINARY for p in BINARY_POINTS
                                         if not (name == "v / v" and p[1] == 0.0)])
def test_binary_ops(name, point):
    check_grads(BINARY[name], list(point))


@pytest.mark.parametrize("point", [(-2.0, 3.0), (-1.5, -2.0), (-0.5, 1.0)])
def test_pow_negative_base_integer_value_exponent(point):
    """a ** b with a < 0 and an integral b: the base gradient is defined (and checked);
    the exponent's is nan, a ** b * log(a)."""
    a, b = Value(point[0]), Value(point[1])
    out = a ** b
    out.backward()
    fd = central_diff(lambda x: x ** point[1], [point[0]], 0)
    assert math.isclose(a.grad, fd, rel_tol=1e-6)
    assert math.isnan(b.grad)


@pytest.mark.parametrize("seed", range(250))
def test_random_programs_all_ops(seed, programs):
    prog = programs.make(50_000 + seed, programs.ALL_OPS)
    def f(*leaves):
        return programs.run(prog, Value, leaves)[-1]

    check_grads(f, [float(x) for x in prog.leaves], rel=1e-5, abs_=1e-6)


def test_random_programs_cover_every_op(programs):
    seen = set()
    for seed in range(250):
        seen.update(op for op, _, _ in programs.make(50_000 + seed, programs.ALL_OPS).steps)
    assert seen == set(programs.ALL_OPS)


# --- analytic rules at special points ------------------------------------------------

@pytest.mark.parametrize("x, data, grad", [(-2.0, 0.0, 0.0), (-1e-300, 0.0, 0.0),
                                           (0.0, 0.0, 0.0), (1e-300, 1e-300, 1.0),
                                           (3.5, 3.5, 1.0)])
def test_relu(x, data, grad):
    """micrograd's rule: 0 if x < 0 else x; grad (out.data > 0)."""
    a = Value(x)
    out = a.relu()
    out.backward()
    assert out.data == data and a.grad == grad


@pytest.mark.parametrize("b", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_pow_exponent_grad_is_zero_at_zero_base(b):
    """d(a**b)/db = a**b * log(a) would be 0 * -inf = nan at a == 0: the rule is 0
    there for b >= 0, as in PyTorch."""
    a, e = Value(0.0), Value(b)
    out = a ** e
    out.backward()
    assert out.data == 0.0 ** b
    assert e.grad == 0.0


@pytest.mark.parametrize("b", [1.0, 2.0, 3.0, 2.5])
def test_pow_base_grad_at_zero_base(b):
    a, e = Value(0.0), Value(b)
    (a ** e).backward()
    assert a.grad == b * 0.0 ** (b - 1)       # 1 for b == 1, else 0


def test_pow_at_zero_base_fractional_exponent_is_inf():
    a = Value(0.0)
    (a ** 0.5).backward()
    assert a.grad == math.inf
    a, e = Value(0.0), Value(0.5)
    (a ** e).backward()
    assert a.grad == math.inf and e.grad == 0.0


@pytest.mark.parametrize("a, b", [(2.0, 3.0), (0.5, -1.5), (7.0, 0.0)])
def test_pow_exponent_grad_formula(a, b):
    x, y = Value(a), Value(b)
    out = x ** y
    out.backward()
    assert math.isclose(y.grad, a ** b * math.log(a), rel_tol=1e-15, abs_tol=0)
    assert math.isclose(x.grad, b * a ** (b - 1), rel_tol=1e-15, abs_tol=0)


def test_number_pow_value_grad():
    x = Value(1.5)
    (3.0 ** x).backward()
    assert math.isclose(x.grad, 3.0 ** 1.5 * math.log(3.0), rel_tol=1e-15)


@pytest.mark.parametrize("x", [-1000.0, -40.0, 0.0, 40.0, 1000.0])
def test_sigmoid_extremes(x):
    a = Value(x)
    s = a.sigmoid()
    s.backward()
    expected = 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
    assert math.isclose(s.data, expected, rel_tol=1e-15)
    assert math.isclose(a.grad, s.data * (1.0 - s.data), rel_tol=1e-15)
    assert 0.0 <= a.grad <= 0.25


@pytest.mark.parametrize("x", [-25.0, 25.0])
def test_tanh_saturates(x):
    a = Value(x)
    t = a.tanh()
    t.backward()
    assert t.data == math.tanh(x) and a.grad == 1.0 - math.tanh(x) ** 2


def test_division_grads_exact():
    a, b = Value(3.0), Value(-4.0)
    (a / b).backward()
    assert a.grad == 1 / -4.0 and b.grad == -3.0 / 16.0


def test_log_and_exp_grads_exact():
    a, b = Value(4.0), Value(1.3)
    (a.log() + b.exp()).backward()
    assert a.grad == 0.25 and b.grad == math.exp(1.3)
