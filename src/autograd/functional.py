"""Whole-matrix derivatives built on :func:`autograd.grad`, :func:`autograd.jacobian`,
:func:`autograd.jvp` and :func:`autograd.jacfwd`, as ``torch.autograd.functional``."""
from __future__ import annotations

from autograd._core import ForwardJacobian, Graph, Value, ValueVector, grad, jacfwd, jvp
from autograd._core import jacobian as _jacobian_of_values

TYPE_CHECKING = False       # typing is not imported at run time (see gradcheck.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Literal, Sequence, Union, overload

    import numpy as np
    import numpy.typing as npt

__all__ = ["hessian", "hvp", "jacobian", "RecordedHessian"]

METHODS = ("auto", "forward-over-reverse", "reverse-over-reverse")
# method='auto': forward over reverse from this many inputs. Measured (time per
# Hessian, tanh chains of 8 to 1,000 nodes): at 1 input reverse over reverse is
# 1.2-1.7x faster, at 2 they are even (0.8-1.0x), from 3 forward wins (1.0-1.4x at
# 3, 1.5-1.6x at 5, 2.6x for Rosenbrock-50), whatever the graph's size.
AUTO_FORWARD_FROM = 3


def _leaves(inputs):
    if isinstance(inputs, Value) or not hasattr(inputs, "__iter__"):
        inputs = [inputs]
    return [x if isinstance(x, Value) else Value(x) for x in inputs]


def _used(first):
    """The positions and Values of the gradients that are not None."""
    used = [k for k, g in enumerate(first) if g is not None]
    grads = [g for g in first if g is not None]
    return used, grads


def _scalar_of(f, xs):
    y = f(*xs)
    if not isinstance(y, Value):
        raise TypeError(f"f must return a Value, not {type(y).__name__}")
    return y


def hessian(f: Callable[..., Value],
            inputs: Union[Value, float, Iterable[Union[Value, float]]], *,
            method: str = "auto", as_array: bool = False) -> Any:
    """The matrix of second derivatives of ``f(*inputs)``.

    Differentiates once with ``create_graph=True`` (the gradient as a graph), then
    differentiates that graph again, by one of two methods:

    - ``'forward-over-reverse'``: one forward sweep of the gradient's graph with one
      tangent lane per input (:func:`autograd.jacfwd`): the whole matrix in one
      batched pass, about the cost of one pass per nonzero of each row;
    - ``'reverse-over-reverse'``: one reverse pass over the gradient's graph per
      input (:func:`autograd.grad` of each component).

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a scalar Value.
    inputs : Value, number or sequence of them
        Numbers become new leaf Values; Values are used as they are (their
        ``.grad`` is not touched).
    method : {'auto', 'forward-over-reverse', 'reverse-over-reverse'}
        ``'auto'`` (default) takes forward over reverse from 3 inputs up and reverse
        over reverse for 1 or 2, where it measured as fast or faster (its passes
        need no tangent arrays). Both give the same matrix within float rounding.
    as_array : bool, default False
        Return a numpy array instead of a list of lists (no Python float per
        entry: the faster form for large matrices).

    Returns
    -------
    list of list of float, or numpy.ndarray of shape (n, n)
        ``H[i][j] = d2 f / (d inputs[i] d inputs[j])``; 0.0 where the derivative
        does not depend on an input.

    Raises
    ------
    TypeError
        If `f` does not return a Value.
    ValueError
        If the graph of `f` has a custom op (see :func:`autograd.grad`), or
        `method` is unknown.

    Examples
    --------
    >>> hessian(lambda x, y: x * x * y, [1.0, 2.0])
    [[4.0, 2.0], [2.0, 0.0]]
    >>> hessian(lambda x, y, z: x * y * z, [1.0, 2.0, 3.0], as_array=True)
    array([[0., 3., 2.],
           [3., 0., 1.],
           [2., 1., 0.]])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, "
                         f"not {method!r}")
    xs = _leaves(inputs)
    y = _scalar_of(f, xs)
    first = grad(y, xs, create_graph=True, allow_unused=True)
    n = len(xs)
    if method == "auto":
        method = "forward-over-reverse" if n >= AUTO_FORWARD_FROM else "reverse-over-reverse"
    if method == "forward-over-reverse":
        used, grads = _used(first)
        if len(used) == n:
            matrix = jacfwd(grads, xs)
        else:
            import numpy as np
            matrix = np.zeros((n, n))
            if used:
                matrix[used] = jacfwd(grads, xs)
        return matrix if as_array else matrix.tolist()
    rows = []
    for g in first:
        if g is None:
            rows.append([0.0] * n)
            continue
        second = grad(g, xs, allow_unused=True)
        rows.append([0.0 if h is None else h.data for h in second])
    if as_array:
        import numpy as np
        return np.array(rows, dtype=np.float64).reshape(n, n)
    return rows


def hvp(f: Callable[..., Value],
        inputs: Union[Value, float, Iterable[Union[Value, float]]],
        v: Iterable[float]) -> list[float]:
    """The Hessian of ``f(*inputs)`` times the vector `v`, by forward over reverse.

    The gradient as a graph (``grad(..., create_graph=True)``), then one forward
    sweep of it along `v` (:func:`autograd.jvp`): no matrix is formed.

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a scalar Value.
    inputs : Value, number or sequence of them
        As :func:`hessian`.
    v : sequence of float
        One number per input.

    Returns
    -------
    list of float
        ``(H v)[i] = sum_j d2 f / (d inputs[i] d inputs[j]) * v[j]``.

    Raises
    ------
    TypeError, ValueError
        As :func:`hessian`; ValueError if `v` has the wrong length.

    Examples
    --------
    >>> hvp(lambda x, y: x * x * y, [1.0, 2.0], [1.0, 0.0])
    [4.0, 2.0]
    """
    xs = _leaves(inputs)
    y = _scalar_of(f, xs)
    v = list(v)
    if len(v) != len(xs):
        raise ValueError(f"v has {len(v)} entries for {len(xs)} inputs")
    first = grad(y, xs, create_graph=True, allow_unused=True)
    used, grads = _used(first)
    out = [0.0] * len(xs)
    if used:
        for k, t in zip(used, jvp(grads, xs, v)):
            out[k] = t
    return out


class RecordedHessian:
    """The Hessian of ``f`` recorded once, then evaluated at any point by replay:
    no Python runs ``f`` again (as ``jax.jit(jax.hessian(f))`` traces once).

    Records ``f(*inputs)`` and its gradient's graph (``grad(..., create_graph=True)``)
    as one :class:`~autograd.Graph`, and its tangent sweep (``ForwardJacobian``); a
    call sets the inputs, replays the graph (``Graph.forward``) and sweeps it forward
    with one tangent lane per input (as :func:`autograd.jacfwd`). Valid while ``f`` runs the same ops for every point,
    as any `Graph` (no Python branch on the data; ``relu``'s branch is fine).

    Parameters
    ----------
    f : callable
        Takes the inputs as positional arguments and returns a scalar Value.
    inputs : sequence of float
        The point to record at (any point where ``f`` runs its usual ops).

    Examples
    --------
    >>> h = RecordedHessian(lambda x, y: x * x * y, [1.0, 2.0])
    >>> h([3.0, 1.0])
    array([[2., 6.],
           [6., 0.]])
    """

    def __init__(self, f: Callable[..., Value], inputs: Iterable[float]) -> None:
        self._xs = _leaves(inputs)
        y = _scalar_of(f, self._xs)
        first = grad(y, self._xs, create_graph=True, allow_unused=True)
        self._used, self._grads = _used(first)
        # one root over the gradient (and so the nodes of f it needs), for replay
        self._graph = Graph(sum(self._grads, Value(0.0)))
        self._vector = ValueVector(self._xs)
        # the tangent sweep's order and positions, recorded once too
        self._jacobian = ForwardJacobian(self._grads, self._xs) if self._grads else None

    def __call__(self, point: Any) -> Any:
        """The Hessian at `point` (one number per input), a numpy array (n, n)."""
        import numpy as np
        self._vector.data = point
        self._graph.forward()
        n = len(self._xs)
        if self._jacobian is None:
            return np.zeros((n, n))
        if len(self._used) == n:
            return self._jacobian()
        matrix = np.zeros((n, n))
        matrix[self._used] = self._jacobian()
        return matrix


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
