"""Whole-matrix derivatives built on :func:`autograd.grad` and :func:`autograd.jacobian`, as
``torch.autograd.functional``."""
from __future__ import annotations

from autograd._core import Value, grad
from autograd._core import jacobian as _jacobian_of_values

TYPE_CHECKING = False       # typing is not imported at run time (see gradcheck.py)
if TYPE_CHECKING:
    from typing import Callable, Iterable, Literal, Sequence, Union, overload

    import numpy as np
    import numpy.typing as npt

__all__ = ["hessian", "jacobian"]


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
    xs = _leaves(inputs)
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


def _leaves(inputs: Union[Value, float, Iterable[Union[Value, float]]]) -> list[Value]:
    """The inputs as a list of Values: numbers become new leaves."""
    if isinstance(inputs, Value) or not hasattr(inputs, "__iter__"):
        inputs = [inputs]
    return [x if isinstance(x, Value) else Value(x) for x in inputs]


if TYPE_CHECKING:
    @overload
    def jacobian(f: Callable[..., Union[Value, Sequence[Value]]],
                 inputs: Union[Value, float, Iterable[Union[Value, float]]], *,
                 as_array: Literal[False] = ...) -> list[list[float]]: ...

    @overload
    def jacobian(f: Callable[..., Union[Value, Sequence[Value]]],
                 inputs: Union[Value, float, Iterable[Union[Value, float]]], *,
                 as_array: Literal[True]) -> npt.NDArray[np.float64]: ...


def jacobian(f: Callable[..., Union[Value, Sequence[Value]]],
             inputs: Union[Value, float, Iterable[Union[Value, float]]], *,
             as_array: bool = False) -> Union[list[list[float]], npt.NDArray[np.float64]]:
    """The matrix of first derivatives of ``f(*inputs)``, as
    ``torch.autograd.functional.jacobian``.

    Calls `f` once and differentiates its outputs with
    :func:`autograd.jacobian`: one recorded graph, one reverse sweep per
    output, in C.

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a Value or a
        sequence of Values.
    inputs : Value, number or sequence of them
        Numbers become new leaf Values; Values are used as they are (their
        ``.grad`` is not touched).
    as_array : bool, default False
        Return a float64 numpy array of shape ``(n_outputs, n_inputs)``.

    Returns
    -------
    list of list of float, or numpy.ndarray
        ``J[i][j] = d f(*inputs)[i] / d inputs[j]``, one row per output (one
        row also when `f` returns a single Value); 0.0 where an output does not
        depend on an input (as torch's ``strict=False``).

    Raises
    ------
    TypeError
        If `f` returns something other than a Value or a sequence of Values.

    Examples
    --------
    >>> jacobian(lambda x, y: [x * y, x + y], [2.0, 3.0])
    [[3.0, 2.0], [1.0, 1.0]]
    >>> jacobian(lambda x: x ** 3, 2.0, as_array=True)
    array([[12.]])
    """
    xs = _leaves(inputs)
    ys = f(*xs)
    outs = [ys] if isinstance(ys, Value) else ys
    if not isinstance(outs, (list, tuple)) or not all(isinstance(y, Value) for y in outs):
        raise TypeError(f"f must return a Value or a sequence of Values, not {type(ys).__name__}")
    if as_array:
        return _jacobian_of_values(outs, xs, allow_unused=True, as_array=True)
    return _jacobian_of_values(outs, xs, allow_unused=True)
