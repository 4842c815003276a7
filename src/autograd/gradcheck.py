"""Check ``backward()`` and ``grad()`` against finite differences, as
``torch.autograd.gradcheck`` and ``gradgradcheck`` do."""
from __future__ import annotations

from autograd._core import grad
from autograd.engine import Value

TYPE_CHECKING = False       # typing is not imported at run time: it costs more than we do
if TYPE_CHECKING:
    from typing import Callable, Iterable, Sequence, Union

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees with the
    numerical one: a failed assertion about `f`, so pytest reports it as such."""


def gradcheck(f: Callable[..., Value], inputs: Union[Value, Iterable[Value]], *,
              eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare the gradient ``backward()`` computes with central finite differences.

    Calls ``f(*inputs)``, runs ``backward()`` on the result, and for each input
    ``x`` compares ``x.grad`` (analytic) with ``(f(x + eps) - f(x - eps)) / (2 eps)``
    (numeric), all other inputs held fixed. They agree if
    ``|analytic - numeric| <= atol + rtol * |numeric|``, as in ``torch.allclose``.

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a scalar Value. It
        is called ``1 + 2 * len(inputs)`` times, so it must build its graph
        afresh from the inputs on each call.
    inputs : Value or sequence of Value
        The Values to differentiate with respect to.
    eps : float, default 1e-6
        The finite-difference step.
    atol, rtol : float
        Absolute and relative tolerance.
    raise_exception : bool, default True
        Raise :class:`GradcheckError` on disagreement; otherwise return False.

    Returns
    -------
    bool
        True if every gradient agrees; False if one does not and
        `raise_exception` is False.

    Raises
    ------
    GradcheckError
        If a gradient disagrees and `raise_exception` is True. The message lists
        each disagreeing input with its analytic and numeric gradient.
    TypeError
        If an input or the result of `f` is not a Value.

    Notes
    -----
    Every input's ``data`` and ``grad`` are restored before returning, also on
    error. The graph `f` builds is fresh on each call, so its inner grads do not
    matter; Values that `f` reuses from outside keep the grads it adds.

    Examples
    --------
    >>> from autograd import Value
    >>> x, y = Value(0.5), Value(-1.5)
    >>> gradcheck(lambda x, y: (x * y).tanh() + y ** 2, (x, y))
    True

    A custom op whose ``_backward`` forgets the square in ``1 - tanh(x)**2``:

    >>> import math
    >>> def bad_tanh(x):
    ...     out = Value(math.tanh(x.data), (x,), 'tanh')
    ...     def _backward():
    ...         x.grad += (1 - out.data) * out.grad
    ...     out._backward = _backward
    ...     return out
    >>> gradcheck(bad_tanh, [x], raise_exception=False)
    False
    """
    inputs = (inputs,) if isinstance(inputs, Value) else tuple(inputs)
    for k, x in enumerate(inputs):
        if not isinstance(x, Value):
            raise TypeError(f"input {k} must be a Value, not {type(x).__name__}")
    saved = [(x.data, x.grad) for x in inputs]
    try:
        for x in inputs:
            x.grad = 0.0
        _call(f, inputs).backward()
        analytic = [x.grad for x in inputs]
        numeric = [_central_difference(f, inputs, x, eps) for x in inputs]
    finally:
        for x, (data, grad) in zip(inputs, saved):
            x.data, x.grad = data, grad
    wrong = [(k, a, n) for k, (a, n) in enumerate(zip(analytic, numeric))
             if not abs(a - n) <= atol + rtol * abs(n)]    # `not <=`: nan disagrees
    if not wrong:
        return True
    if not raise_exception:
        return False
    lines = [f"  input {k}{_described(inputs[k])}: analytic {a!r}, numeric {n!r}"
             for k, a, n in wrong]
    raise GradcheckError(
        f"backward() disagrees with finite differences (eps={eps}, atol={atol}, "
        f"rtol={rtol}) for {len(wrong)} of {len(inputs)} inputs:\n" + "\n".join(lines))


def gradgradcheck(f: Callable[..., Union[Value, Sequence[Value]]],
                  inputs: Union[Value, Iterable[Value]],
                  grad_outputs: Union[float, Value, Sequence[Union[float, Value, None]], None] = None,
                  *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True) -> bool:
    """Compare second derivatives with central finite differences of first ones.

    The analytic side differentiates ``grad(f(*inputs), inputs, grad_outputs,
    create_graph=True)`` once more with :func:`autograd.grad`; the numeric side
    moves each input by ``±eps`` and differences the first derivatives (computed
    without ``create_graph``). Entry ``(i, j)`` is d(first derivative i)/d(input j),
    the Hessian for a scalar `f`. They agree if ``|analytic - numeric| <= atol +
    rtol * |numeric|``, as in :func:`gradcheck`.

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a Value or a
        sequence of Values; it is called ``2 + 2 * len(inputs)`` times.
    inputs : Value or sequence of Value
    grad_outputs : float, Value or sequence of them, optional
        The outputs' weights, as in :func:`autograd.grad` (1.0 by default).
    eps, atol, rtol : float
        The finite-difference step and the tolerances.
    raise_exception : bool, default True
        Raise :class:`GradcheckError` on disagreement; otherwise return False.

    Returns
    -------
    bool
        True if every second derivative agrees.

    Raises
    ------
    GradcheckError
        If one disagrees and `raise_exception` is True; the message lists each.
    ValueError
        If `f`'s graph has a custom op: its ``_backward`` cannot be differentiated.

    Notes
    -----
    Every input's ``data`` is restored before returning; no ``.grad`` changes.

    Examples
    --------
    >>> from autograd import Value
    >>> x, y = Value(0.5), Value(-1.5)
    >>> gradgradcheck(lambda x, y: (x * y).tanh() + y ** 3, (x, y))
    True
    """
    inputs = (inputs,) if isinstance(inputs, Value) else tuple(inputs)
    for k, x in enumerate(inputs):
        if not isinstance(x, Value):
            raise TypeError(f"input {k} must be a Value, not {type(x).__name__}")
    n = len(inputs)

    def first(create_graph):
        out = f(*inputs)
        if not isinstance(out, Value) and not all(isinstance(o, Value) for o in out):
            raise TypeError(f"f must return Values, not {type(out).__name__}")
        return grad(out, inputs, grad_outputs, create_graph=create_graph, allow_unused=True)

    saved = [x.data for x in inputs]
    try:
        analytic = []
        for g in first(True):
            row = [None] * n if g is None else grad(g, inputs, allow_unused=True)
            analytic.append([0.0 if h is None else h.data for h in row])
        numeric = [[0.0] * n for _ in range(n)]
        for j, x in enumerate(inputs):
            data = x.data
            x.data = data + eps
            plus = first(False)
            x.data = data - eps
            minus = first(False)
            x.data = data
            for i in range(n):
                p = 0.0 if plus[i] is None else plus[i].data
                m = 0.0 if minus[i] is None else minus[i].data
                numeric[i][j] = (p - m) / (2 * eps)
    finally:
        for x, data in zip(inputs, saved):
            x.data = data
    wrong = [(i, j, analytic[i][j], numeric[i][j]) for i in range(n) for j in range(n)
             if not abs(analytic[i][j] - numeric[i][j]) <= atol + rtol * abs(numeric[i][j])]
    if not wrong:
        return True
    if not raise_exception:
        return False
    lines = [f"  d(grad {i})/d(input {j}){_described(inputs[j])}: analytic {a!r}, "
             f"numeric {m!r}" for i, j, a, m in wrong]
    raise GradcheckError(
        f"second derivatives disagree with finite differences of first ones (eps={eps}, "
        f"atol={atol}, rtol={rtol}) for {len(wrong)} of {n * n} entries:\n" + "\n".join(lines))


def _call(f: Callable[..., Value], inputs: Sequence[Value]) -> Value:
    out: object = f(*inputs)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, not {type(out).__name__}")
    return out


def _central_difference(f: Callable[..., Value], inputs: Sequence[Value], x: Value,
                        eps: float) -> float:
    data = x.data
    x.data = data + eps
    plus = _call(f, inputs).data
    x.data = data - eps
    minus = _call(f, inputs).data
    x.data = data
    return (plus - minus) / (2 * eps)


def _described(x: Value) -> str:
    return f" ({x.name!r}, data {x.data!r})" if x.name else f" (data {x.data!r})"
