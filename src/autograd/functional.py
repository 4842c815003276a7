"""Whole-matrix derivatives built on :func:`autograd.grad`, as ``torch.autograd.functional``."""
from __future__ import annotations

from autograd._core import Value, grad

TYPE_CHECKING = False       # typing is not imported at run time (see gradcheck.py)
if TYPE_CHECKING:
    from typing import Callable, Iterable, Union

__all__ = ["hessian"]


def hessian(f: Callable[..., Value],
            inputs: Union[Value, float, Iterable[Union[Value, float]]]) -> list[list[float]]:
    """The matrix of second derivatives of ``f(*inputs)``.

    Differentiates once with ``create_graph=True``, then each component of the
    gradient once more: one pass over the gradient's graph per input.

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a scalar Value.
    inputs : Value, number or sequence of them
        Numbers become new leaf Values; Values are used as they are (their
        ``.grad`` is not touched).

    Returns
    -------
    list of list of float
        ``H[i][j] = d2 f / (d inputs[i] d inputs[j])``; 0.0 where the derivative
        does not depend on an input.

    Raises
    ------
    TypeError
        If `f` does not return a Value.
    ValueError
        If the graph of `f` has a custom op (see :func:`autograd.grad`).

    Examples
    --------
    >>> hessian(lambda x, y: x * x * y, [1.0, 2.0])
    [[4.0, 2.0], [2.0, 0.0]]
    """
    if isinstance(inputs, Value) or not hasattr(inputs, "__iter__"):
        inputs = [inputs]
    xs = [x if isinstance(x, Value) else Value(x) for x in inputs]
    y = f(*xs)
    if not isinstance(y, Value):
        raise TypeError(f"f must return a Value, not {type(y).__name__}")
    first = grad(y, xs, create_graph=True, allow_unused=True)
    rows = []
    for g in first:
        if g is None:
            rows.append([0.0] * len(xs))
            continue
        second = grad(g, xs, allow_unused=True)
        rows.append([0.0 if h is None else h.data for h in second])
    return rows
