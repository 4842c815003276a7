"""Look at a graph: ``trace`` collects it, ``draw_dot`` draws it as micrograd's lectures do.

``draw_dot`` returns a ``graphviz.Digraph``: it displays itself in Jupyter, and
``.render()`` / ``.pipe()`` turn it into a picture with Graphviz's ``dot`` program
(without ``dot`` installed, ``.source`` still works and rendering raises
graphviz's ``ExecutableNotFound``).
"""
from __future__ import annotations

from autograd._core import graph_size

TYPE_CHECKING = False       # typing is not imported at run time: it costs more than we do
if TYPE_CHECKING:
    from graphviz import Digraph as _Digraph

    from autograd._core import Value

# graphviz is imported by draw_dot, when it draws: `import autograd` does not pay
# for it (it took 25 of the package's 35 ms to import).

__all__ = ["trace", "draw_dot"]

MAX_NODES = 2000
"""draw_dot's default limit on Values: ``dot`` takes seconds at a few thousand
nodes, and a picture of more is unreadable anyway."""

# Characters with a meaning inside a DOT record label: field separators, nesting,
# port names; backslash and the double quote end or escape the quoted string.
_RECORD_SPECIALS = str.maketrans({c: "\\" + c for c in '\\"|{}<>'})
_TEXT_SPECIALS = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _walk(root: Value) -> tuple[list[Value], list[tuple[Value, Value]]]:
    """The Values reachable from `root`, root first, and the (child, parent) edges.

    Iterative depth-first search, so graph depth is unlimited. Operands are
    visited in the order of their labels, not of `_prev` (a set ordered by memory
    address), so that the same graph gets the same numbering in every run.
    """
    nodes: list[Value] = []
    edges: list[tuple[Value, Value]] = []
    seen = {root}
    stack = [root]
    while stack:
        v = stack.pop()
        nodes.append(v)
        children = list(v._prev)
        if len(children) > 1:
            children.sort(key=_display_key)
        edges.extend((child, v) for child in children)
        for child in reversed(children):     # the stack pops the first one first
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return nodes, edges


def _display_key(v: Value) -> tuple[str, str, float, float]:
    return (v._op, v.name, v.data, v.grad)


def trace(root: Value) -> tuple[set[Value], set[tuple[Value, Value]]]:
    """Collect the graph that computed `root`, as micrograd's ``trace``.

    Parameters
    ----------
    root : Value
        The output of the graph.

    Returns
    -------
    nodes : set of Value
        Every Value reachable from `root` through ``_prev``, `root` included.
    edges : set of tuple of (Value, Value)
        One ``(child, parent)`` pair for each operand of each Value.

    Notes
    -----
    Iterative: a chain of a million Values needs no recursion.

    Examples
    --------
    >>> from autograd import Value
    >>> a = Value(2.0, name='a')
    >>> b = a * a
    >>> nodes, edges = trace(b)
    >>> len(nodes), len(edges)
    (2, 1)
    """
    nodes, edges = _walk(root)
    return set(nodes), set(edges)


def draw_dot(root: Value, format: str = "svg", rankdir: str = "LR",
             max_nodes: int = MAX_NODES) -> _Digraph:
    """Draw the graph that computed `root`, as in micrograd's lectures.

    One record node per Value, ``{ name | data %.4f | grad %.4f }``; one small
    node per operation, labelled with its ``_op``; edges from each operand to
    the operation and from the operation to its result.

    Parameters
    ----------
    root : Value
        The output of the graph.
    format : str, default 'svg'
        The output format used by ``.render()`` and ``.pipe()``.
    rankdir : {'LR', 'TB'}, default 'LR'
        Left to right or top to bottom.
    max_nodes : int, default 2000
        The largest number of Values drawn; bigger graphs raise ValueError
        (Graphviz would take minutes, and the picture would be unreadable).

    Returns
    -------
    graphviz.Digraph
        Nodes are numbered in the order of a depth-first walk from `root`
        (``n0`` is `root`), so the DOT source is the same in every run.

    Raises
    ------
    ValueError
        If `rankdir` is not 'LR' or 'TB', or the graph has more than
        `max_nodes` Values.

    Notes
    -----
    Names may hold any text: ``| { } < > \\ "`` are escaped, so the picture
    shows them as written. Graphviz itself trims spaces at the ends of a record
    field and shows a run of spaces as one; a line break is shown as a space.

    Examples
    --------
    >>> from autograd import Value
    >>> a = Value(10.0, name='a')
    >>> b = Value(3.0, name='b')
    >>> c = a * b; c.name = 'c'
    >>> c.backward()
    >>> dot = draw_dot(c)
    >>> print(dot.source)  # doctest: +NORMALIZE_WHITESPACE
    digraph {
        graph [rankdir=LR]
        n0 [label="{ c | data 30.0000 | grad 1.0000 }" shape=record]
        n0_op [label="*"]
        n0_op -> n0
        n1 [label="{ a | data 10.0000 | grad 3.0000 }" shape=record]
        n2 [label="{ b | data 3.0000 | grad 10.0000 }" shape=record]
        n1 -> n0_op
        n2 -> n0_op
    }
    >>> svg = dot.pipe(format='svg')  # needs Graphviz's `dot` program
    """
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', not {rankdir!r}")
    size = graph_size(root)             # in C: a huge graph is refused at once
    if size > max_nodes:
        raise ValueError(
            f"the graph has {size} Values, more than max_nodes={max_nodes}; "
            "draw a smaller part of it, or pass a larger max_nodes")
    from graphviz import Digraph, nohtml

    nodes, edges = _walk(root)
    uid = {v: f"n{k}" for k, v in enumerate(nodes)}
    dot = Digraph(format=format, graph_attr={"rankdir": rankdir})
    for v in nodes:
        label = f"{{ {_escape_record(v.name)} | data {v.data:.4f} | grad {v.grad:.4f} }}"
        dot.node(uid[v], label=nohtml(label), shape="record")
        if v._op:
            dot.node(uid[v] + "_op", label=nohtml(v._op.translate(_TEXT_SPECIALS)))
            dot.edge(uid[v] + "_op", uid[v])
    for child, parent in edges:
        dot.edge(uid[child], uid[parent] + "_op" if parent._op else uid[parent])
    return dot


def _escape_record(text: str) -> str:
    # A line break has no escape in record fields: show it as a space.
    return text.replace("\n", " ").translate(_RECORD_SPECIALS)
