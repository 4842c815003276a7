"""examples/lesson.ipynb runs in a real Jupyter kernel; its pictures show the seed's figures.

The notebook is committed without outputs: this test executes it (nbclient,
ipykernel) and reads the outputs: the node and edge labels of draw_dot's SVGs,
and the watched backpropagation's frames against the seed's bp4/bp5 states.
"""
import os
import re
import xml.etree.ElementTree as ET

import nbclient        # the test extra has nbclient, nbformat and ipykernel
import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG = "{http://www.w3.org/2000/svg}"

BP4 = {"L": 1.0, "e": 3.0, "f": 28.0, "d": 3.0, "c": 3.0, "a": 9.0, "b": 30.0}
BP5 = {"L": 1.0, "e": 3.0, "f": 28.0, "d": 0.0, "c": 0.0, "a": 0.0, "b": 0.0}
DATA = {"L": 84.0, "e": 28.0, "f": 3.0, "d": -2.0, "c": 30.0, "a": 10.0, "b": 3.0}
SEED_EDGES = {("a", "*", "c"), ("b", "*", "c"), ("c", "+", "e"), ("d", "+", "e"),
              ("e", "*", "L"), ("f", "*", "L")}


def picture(svg):
    """(records {node id: [name, 'data ..', 'grad ..']}, ops {node id: label}, edges) of an SVG."""
    root = ET.fromstring(svg)
    records, ops, edges = {}, {}, set()
    for g in root.iter(SVG + "g"):
        title = g.find(SVG + "title").text if g.find(SVG + "title") is not None else None
        texts = [t.text or "" for t in g.iter(SVG + "text")]
        if g.get("class") == "node":
            if len(texts) == 3:
                records[title] = texts
            else:
                ops[title] = texts[0]
        elif g.get("class") == "edge":
            edges.add(tuple(title.split("->")))
    return records, ops, edges


def states(svg):
    """{name: (data, grad)} of a picture's records, and its (operand, op, result) edges."""
    records, ops, edges = picture(svg)
    state = {r[0]: (float(r[1].split()[1]), float(r[2].split()[1])) for r in records.values()}
    triples = set()
    for tail, head in edges:
        if head in ops:
            (result,) = [h for t, h in edges if t == head]
            triples.add((records[tail][0], ops[head], records[result][0]))
    return state, triples


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(os.path.join(ROOT, "examples", "lesson.ipynb"), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": ROOT}}).execute()
    return {c.metadata["tags"][0]: c for c in nb.cells if c.metadata.get("tags")}


def output(cell, mime):
    (data,) = [o["data"][mime] for o in cell.outputs if mime in o.get("data", {})]
    return data


@pytest.mark.requires("dot")
def test_the_first_picture_is_the_seeds_graph(executed):
    state, triples = states(output(executed["graph"], "image/svg+xml"))
    assert state == {k: (DATA[k], 0.0) for k in DATA}
    assert triples == SEED_EDGES


@pytest.mark.requires("dot")
@pytest.mark.parametrize("tag, grads", [("bp4", BP4), ("bp5", BP5)])
def test_the_seeds_figures(executed, tag, grads):
    state, triples = states(output(executed[tag], "image/svg+xml"))
    assert state == {k: (DATA[k], grads[k]) for k in DATA}
    assert triples == SEED_EDGES


@pytest.mark.requires("dot")
def test_the_neuron_figure_bp6(executed):
    # y = (b + w0*x0 + w1*x1) + w2*x2: 13 Values (x, w, b, 3 products, 3 sums), 6 ops
    records, ops, edges = picture(output(executed["bp6"], "image/svg+xml"))
    assert len(records) == 13 and sorted(ops.values()) == ["*"] * 3 + ["+"] * 3
    assert len(edges) == 6 + 12                 # op -> result, two operands -> op
    grads = [float(r[2].split()[1]) for r in records.values()]
    # dy/dw_i = x_i = (1, -3.4, 2.4); dy/db and the products' and sums' grads: 1
    assert sorted(g for g in grads if g in (1.0, -3.4, 2.4)) == [-3.4, 1.0, 1.0, 1.0, 1.0,
                                                                1.0, 1.0, 1.0, 1.0, 2.4]


@pytest.mark.requires("dot")
def test_watched_frames_are_the_seeds_states(executed):
    page = output(executed["watch"], "text/html")
    frames = re.findall(r'<div class="frame"[^>]*>(.*?)</div>', page, re.S)
    assert len(frames) == 5
    got = [states(svg)[0] for svg in frames]
    assert got[0] == {k: (DATA[k], 0.0) for k in DATA}
    assert got[2] == {k: (DATA[k], BP5[k]) for k in DATA}          # after L._backward()
    assert got[-1] == {k: (DATA[k], BP4[k]) for k in DATA}         # every grad filled in
    assert all(states(svg)[1] == SEED_EDGES for svg in frames)


def test_micrograds_notebooks_run_under_the_extension(executed):
    assert output(executed["micrograd"], "text/plain") == "(True, 'autograd.nn')"
