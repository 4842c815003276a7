"""draw_dot on the looped product ``y = x; y = y * x`` (n times): Graphviz's ``dot``
time on ours' picture and on micrograd's ``draw_dot`` (its trace_graph notebook's,
copied below), for several n up to draw_dot's guard.

Each picture's DOT source is made in this process and laid out by ``dot -Tsvg``
in a child process with a timeout; the table gives the child's CPU time (less
sensitive to a loaded machine than wall time) and wall time. Before issue 19,
ours took 10.6 s at n = 60 and never finished at n = 999; micrograd's picture
has the same n^2 dummy nodes (see ``autograd.viz._far_edges``).
"""
import resource
import shutil
import subprocess
import time

NAME = "viz"
ORDER = 90


def micrograd_draw_dot(root, format="svg", rankdir="LR"):
    """micrograd's draw_dot, as in its trace_graph.ipynb."""
    from graphviz import Digraph

    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    dot = Digraph(format=format, graph_attr={"rankdir": rankdir})
    for n in nodes:
        dot.node(name=str(id(n)), label="{ data %.4f | grad %.4f }" % (n.data, n.grad),
                 shape="record")
        if n._op:
            dot.node(name=str(id(n)) + n._op, label=n._op)
            dot.edge(str(id(n)) + n._op, str(id(n)))
    for n1, n2 in edges:
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)
    return dot


def looped_product(value_class, n):
    x = value_class(1.01)
    y = x
    for _ in range(n):
        y = y * x
    y.backward()
    return y


def time_dot(source, timeout):
    """(CPU seconds, wall seconds) of `dot -Tsvg` on `source`, or None past `timeout`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=source.encode(),
                       timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def run(bench):
    from autograd import Value
    from autograd.viz import MAX_NODES, draw_dot

    if shutil.which("dot") is None:
        bench.section("draw_dot: the looped product", "Skipped: Graphviz's `dot` not installed.")
        return
    sizes = (60, 300) if bench.quick else (30, 60, 100, 300, 600, MAX_NODES - 1)
    timeout = 20 if bench.quick else 120
    mg = None if bench.quick or not bench.has("micrograd") else __import__("micrograd.engine").engine
    mg_gave_up = False
    rows = []

    def fmt(t):
        return f"{t[0]:.2f} s ({t[1]:.2f} s wall)" if t else f"over {timeout} s (killed)"
    for n in sizes:
        bench.log(f"  draw_dot, looped product n={n}")
        ours = time_dot(draw_dot(looped_product(Value, n)).source, timeout)
        theirs = "not run"
        if mg is not None and not mg_gave_up:
            t = time_dot(micrograd_draw_dot(looped_product(mg.Value, n)).source, timeout)
            mg_gave_up = t is None          # bigger n only take longer
            theirs = fmt(t)
        elif mg_gave_up:
            theirs = "not run (a smaller n timed out)"
        rows.append((n, n + 1, fmt(ours), theirs))
    import harness
    body = ("`dot -Tsvg` CPU time on the picture of `y = x; y = y * x` repeated n times "
            f"(n + 1 Values; draw_dot's guard: {MAX_NODES} Values), timeout {timeout} s.\n\n"
            + harness.table(["n", "Values", "ours", "micrograd's draw_dot"], rows))
    if bench.quick:
        body += "\n\n--quick: ours only, two sizes; the full run adds micrograd and n up to the guard."
    bench.section("draw_dot: the looped product", body)
