"""Check ``backward()`` against finite differences, as ``torch.autograd.gradcheck`` does."""
from __future__ import annotations

from autograd.engine import Value

TYPE_CHECKING = False       # typing is not imported at run time: it costs more than we do
if TYPE_CHECKING:
    from typing import Callable, Iterable, Sequence, Union

__all__ = ["gradcheck", "GradcheckError"]


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
