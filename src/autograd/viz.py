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

__all__ = ["trace", "draw_dot", "watch_backward", "BackwardFrames", "Frame"]

MAX_NODES = 1000
"""draw_dot's default limit on Values. Graphviz 2.43's ``dot`` lays out a chain of
1,000 Values with a leaf at each step (``y = y * 1.01`` repeated) in about 2 s of
CPU, and 2,000 of them in 16 s (its initial feasible tree grows faster than
quadratically); a picture of more is unreadable anyway."""

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
    max_nodes : int, default 1000
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
    A Value used far apart along a long chain (``x`` in ``y = y * x`` repeated)
    would make ``dot``'s layout take minutes: when the graph's long edges would
    cost more than ``LAYOUT_BUDGET`` dummy nodes, each far use of a Value is
    drawn from a dashed copy of its record beside the use (see ``_far_edges``).
    Graphs below that budget, such as the lectures', are drawn as micrograd
    draws them.

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
            f"the graph has {size} Values, more than max_nodes={max_nodes}: Graphviz would "
            "take minutes and the picture would be unreadable. Draw a part of it: "
            "draw_dot(v) of an intermediate Value v draws only what computed v; "
            "or pass a larger max_nodes and wait")
    nodes, edges = _walk(root)
    return _picture(nodes, edges, _far_edges(nodes, edges), format, rankdir)


def _picture(nodes: list[Value], edges: list[tuple[Value, Value]],
             far: set[tuple[Value, Value]], format: str, rankdir: str,
             fill: dict[Value, str] | None = None) -> _Digraph:
    """draw_dot's picture of a walked graph; `fill` colours some records (watch_backward)."""
    from graphviz import nohtml

    uid = {v: f"n{k}" for k, v in enumerate(nodes)}
    fill = fill or {}
    dot = _new_digraph(format=format, graph_attr={"rankdir": rankdir})
    if far:
        # Bound network simplex too (iterations = nslimit x real nodes): the graph
        # is big, and the optimum's last steps move nothing a reader would see.
        dot.graph_attr.update(nslimit="2", nslimit1="2")

    def record(v: Value, name: str, **attrs: str) -> None:
        label = f"{{ {_escape_record(v.name)} | data {v.data:.4f} | grad {v.grad:.4f} }}"
        if v in fill:
            attrs.update(style=",".join(filter(None, [attrs.get("style"), "filled"])),
                         fillcolor=fill[v])
        dot.node(name, label=nohtml(label), shape="record", **attrs)

    for v in nodes:
        record(v, uid[v])
        if v._op:
            dot.node(uid[v] + "_op", label=nohtml(v._op.translate(_TEXT_SPECIALS)))
            dot.edge(uid[v] + "_op", uid[v])
    for child, parent in edges:
        head = uid[parent] + "_op" if parent._op else uid[parent]
        if (child, parent) in far:
            # The operand drawn again beside its use (dashed: the same Value).
            tail = f"{uid[child]}_for_{uid[parent]}"
            record(child, tail, style="dashed", tooltip=f"the same Value as {uid[child]}")
            dot.edge(tail, head)
        else:
            dot.edge(uid[child], head)
    return dot


LAYOUT_BUDGET = 1_000
"""The most dummy nodes draw_dot lets ``dot`` lay out (see ``_far_edges``)."""


def _far_edges(nodes: list[Value], edges: list[tuple[Value, Value]]) -> set[tuple[Value, Value]]:
    """The edges to draw from a copy of their operand, or none if the graph is cheap to lay out.

    Why: ``dot`` puts every node in a column (a rank) and turns an edge that
    spans k columns into a chain of k - 1 dummy nodes; its x-coordinate pass
    (network simplex) then costs about (dummies)^2. A Value used all along a
    chain, as ``x`` in ``y = y * x`` repeated n times, has edges of length 1, 3,
    5, ... 2n - 1: n^2 dummies, and n = 60 took 10 s, n = 100 minutes. The
    order nodes are emitted in only changes the constant (micrograd's order took
    3 s at n = 60); bounding ``nslimit`` alone leaves the n^2 dummies.

    The ranks ``dot`` gives are estimated by longest path from the root (each
    node as far right as it can go, which is the optimum on a tree). If the
    dummies then exceed ``LAYOUT_BUDGET``, every edge longer than one rank is
    returned: draw_dot draws its operand again, dashed, beside the use, so no
    edge is long. Graphs under the budget (the lectures') are drawn as before.
    """
    consumers: dict[Value, list[Value]] = {}
    for child, parent in edges:
        consumers.setdefault(child, []).append(parent)
    # depth of a Value's record node; its op node is one deeper (one rank left).
    depth: dict[Value, int] = {}
    waiting = {v: len(ps) for v, ps in consumers.items()}
    ready = [nodes[0]]
    while ready:                        # Kahn's order: a Value after all its consumers
        v = ready.pop()
        ps = consumers.get(v)
        depth[v] = max(depth[p] + (2 if p._op else 1) for p in ps) if ps else 0
        for c in v._prev:
            waiting[c] -= 1
            if not waiting[c]:
                ready.append(c)
    dummies = 0
    long: list[tuple[Value, Value]] = []
    for child, parent in edges:
        span = depth[child] - depth[parent] - (1 if parent._op else 0)
        if span > 1:
            dummies += span - 1
            long.append((child, parent))
    return set(long) if dummies > LAYOUT_BUDGET else set()


def _new_digraph(**attrs: object) -> _Digraph:
    """A graphviz.Digraph that, shown in Jupyter without Graphviz's ``dot``, says
    how to install it instead of showing graphviz's ExecutableNotFound traceback."""
    from graphviz import Digraph

    dot = Digraph(**attrs)                       # type: ignore[arg-type]
    shown_by_graphviz = dot._repr_mimebundle_

    def _repr_mimebundle_(include=None, exclude=None, **kwargs):  # type: ignore[no-untyped-def]
        from graphviz import ExecutableNotFound
        try:
            return shown_by_graphviz(include, exclude, **kwargs)
        except ExecutableNotFound:
            return {"text/plain": GRAPHVIZ_MISSING}

    dot._repr_mimebundle_ = _repr_mimebundle_    # type: ignore[method-assign]
    return dot


GRAPHVIZ_MISSING = (
    "draw_dot: cannot show the picture: Graphviz's `dot` program is not installed "
    "(or not on PATH). Install it: apt-get install graphviz (Debian, Ubuntu), "
    "brew install graphviz (macOS), conda install graphviz; then restart the kernel. "
    "Meanwhile, draw_dot(...).source is the graph as DOT text.")


def _escape_record(text: str) -> str:
    # A line break has no escape in record fields: show it as a space.
    return text.replace("\n", " ").translate(_RECORD_SPECIALS)


# =============================================================================
# Watching backpropagation
# =============================================================================

WATCH_MAX_NODES = 200
"""watch_backward's default limit on Values: one picture per step, each laid out by ``dot``."""

_ACTIVE, _CHANGED = "lightblue", "gold"


class Frame:
    """One state of the graph while ``backward()`` runs: the title says what just happened.

    Attributes
    ----------
    title : str
        What was just done, e.g. ``"L._backward(): the chain rule of '*' ..."``.
    grads : dict of Value to float
        Every Value's grad in this state.
    active : Value or None
        The Value whose ``_backward`` just ran (the output itself for the seed).
    changed : tuple of Value
        The Values whose grad this step changed.
    picture : graphviz.Digraph
        draw_dot's picture of this state: `active` in light blue, `changed` in gold.
    """

    __slots__ = ("title", "grads", "active", "changed", "picture")

    def __init__(self, title: str, grads: dict[Value, float], active: Value | None,
                 changed: tuple[Value, ...], picture: _Digraph) -> None:
        self.title, self.grads, self.active = title, grads, active
        self.changed, self.picture = changed, picture

    def __repr__(self) -> str:
        return f"<Frame {self.title!r}>"


class BackwardFrames:
    """The frames ``watch_backward`` recorded: a sequence of `Frame`.

    In Jupyter it shows itself as one self-contained HTML player (a slider and a
    play button, plain HTML and JavaScript); ``svgs()`` gives the pictures,
    ``to_html()`` a page to save.
    """

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self._svgs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Frame:
        return self.frames[i]

    def __iter__(self):
        return iter(self.frames)

    def __repr__(self) -> str:
        return f"<BackwardFrames: {len(self.frames)} frames>"

    def svgs(self) -> list[str]:
        """Each frame's picture as SVG text (rendered once by Graphviz's ``dot``)."""
        if self._svgs is None:
            self._svgs = [f.picture.pipe(format="svg", encoding="utf-8") for f in self.frames]
        return self._svgs

    def to_html(self, interval_ms: int = 1200) -> str:
        """One HTML fragment: the frames' SVGs, a slider, a play button and the step's title.

        No external file or library: it works in Jupyter, in a saved notebook and
        in a page of its own (``open('backprop.html', 'w').write(frames.to_html())``).
        """
        import html
        wid = f"autograd-watch-{next(_widget_ids)}-{id(self):x}"
        pictures = []
        for k, svg in enumerate(self.svgs()):
            svg = svg[svg.find("<svg"):]          # drop the XML prolog and DOCTYPE
            hidden = "" if k == 0 else ' style="display:none"'
            pictures.append(f'<div class="frame"{hidden}>{svg}</div>')
        titles = [f"{k}/{len(self.frames) - 1}: {f.title}" for k, f in enumerate(self.frames)]
        return f"""<div id="{wid}" style="font-family:sans-serif">
<div style="margin:4px 0">
<button type="button" class="play" style="width:5em">&#9654; play</button>
<input type="range" class="slider" min="0" max="{len(self.frames) - 1}" value="0" step="1" style="width:60%;vertical-align:middle">
</div>
<div class="title" style="margin:4px 0;font-family:monospace">{html.escape(titles[0])}</div>
{''.join(pictures)}
<script>
(function () {{
  var root = document.getElementById("{wid}");
  var titles = {_json_list(titles)};
  var frames = root.getElementsByClassName("frame");
  var slider = root.getElementsByClassName("slider")[0];
  var title = root.getElementsByClassName("title")[0];
  var button = root.getElementsByClassName("play")[0];
  var timer = null;
  function show(k) {{
    for (var i = 0; i < frames.length; i++) frames[i].style.display = i == k ? "" : "none";
    slider.value = k; title.textContent = titles[k];
  }}
  function stop() {{ clearInterval(timer); timer = null; button.innerHTML = "&#9654; play"; }}
  slider.oninput = function () {{ stop(); show(+slider.value); }};
  button.onclick = function () {{
    if (timer) {{ stop(); return; }}
    if (+slider.value == frames.length - 1) show(0);
    button.innerHTML = "&#10074;&#10074; pause";
    timer = setInterval(function () {{
      var k = +slider.value + 1;
      if (k >= frames.length) {{ stop(); return; }}
      show(k);
    }}, {int(interval_ms)});
  }};
}})();
</script>
</div>"""

    def _repr_html_(self) -> str:
        from graphviz import ExecutableNotFound
        try:
            return self.to_html()
        except ExecutableNotFound:
            import html
            return f"<pre>{html.escape(GRAPHVIZ_MISSING)}</pre>"


def _json_list(strings: list[str]) -> str:
    import json
    # "</" inside a <script> would end it
    return json.dumps(strings).replace("</", "<\\/")


def _count():
    k = 0
    while True:
        k += 1
        yield k


_widget_ids = _count()


def watch_backward(root: Value, format: str = "svg", rankdir: str = "LR",
                   max_nodes: int = WATCH_MAX_NODES) -> BackwardFrames:
    """Run ``root.backward()`` step by step and keep a picture of every step.

    The frames are the graph before backpropagation, after the output's grad is
    set to 1, and after each node's ``_backward`` in the order ``backward()``
    runs them (the reverse of ``autograd.engine.topological_order(root)``, the
    core's own order), as the seed tutorial's figures bp4–bp6 show it by hand. Leaves,
    whose ``_backward`` does nothing, get no frame.

    Parameters
    ----------
    root : Value
        The output; its graph's grads are what backward() would leave.
    format, rankdir
        As draw_dot's.
    max_nodes : int, default 200
        The largest number of Values watched (one picture per step).

    Returns
    -------
    BackwardFrames
        A sequence of `Frame`; in Jupyter, a player with a slider and a play button.

    Notes
    -----
    This *is* the backward pass: it runs once, exactly as ``root.backward()``
    would (same order, same chain rules, so the same numbers bit for bit), and
    leaves the same grads behind. Like backward(), it adds to grads already there:
    call ``zero_grad()`` (or set ``.grad = 0``) first to watch a fresh pass, and
    do not call backward() again afterwards unless you mean to accumulate.

    Examples
    --------
    >>> from autograd import Value
    >>> a = Value(10.0, name='a'); b = Value(3.0, name='b')
    >>> c = a * b; c.name = 'c'
    >>> frames = watch_backward(c)
    >>> [f.title for f in frames]       # doctest: +NORMALIZE_WHITESPACE
    ['before backward(): the grads as they are',
     'c.grad = 1: backward() seeds the output',
     "c._backward(): the chain rule of '*' adds to a.grad, b.grad"]
    >>> frames[-1].grads[a], a.grad
    (3.0, 3.0)
    """
    from autograd._core import topological_order

    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', not {rankdir!r}")
    size = graph_size(root)
    if size > max_nodes:
        raise ValueError(
            f"the graph has {size} Values, more than max_nodes={max_nodes}: one picture per "
            "step would be too many to watch. Watch a part of it (watch_backward(v) of an "
            "intermediate Value v), or pass a larger max_nodes")
    nodes, edges = _walk(root)              # numbered once: every frame has the same nodes
    far = _far_edges(nodes, edges)
    uid = {v: f"n{k}" for k, v in enumerate(nodes)}

    def who(v: Value) -> str:
        return v.name or uid[v]

    frames: list[Frame] = []

    def snap(title: str, active: Value | None, before: dict[Value, float] | None) -> None:
        grads = {v: v.grad for v in nodes}
        changed = tuple(v for v in nodes if before is not None
                        and _differs(grads[v], before[v]))
        fill = {v: _CHANGED for v in changed}
        if active is not None:
            fill[active] = _ACTIVE if active not in fill else _CHANGED
        frames.append(Frame(title, grads, active, changed,
                            _picture(nodes, edges, far, format, rankdir, fill)))

    steps = [v for v in reversed(topological_order(root)) if v._op or v._prev]
    snap("before backward(): the grads as they are", None, None)
    before = frames[-1].grads
    root.grad = 1.0                          # as backward(): set, not added
    snap(f"{who(root)}.grad = 1: backward() seeds the output", root, before)
    for v in steps:
        before = frames[-1].grads
        v._backward()
        changed = [f"{who(c)}.grad" for c in nodes if _differs(c.grad, before[c])]
        what = f"adds to {', '.join(changed)}" if changed else "changes nothing"
        snap(f"{who(v)}._backward(): the chain rule of {v._op!r} {what}", v, before)
    return BackwardFrames(frames)


def _differs(x: float, y: float) -> bool:
    return not (x == y or (x != x and y != y))      # nan == nan here
