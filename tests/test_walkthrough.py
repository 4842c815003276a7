"""examples/backprop_walkthrough.py: the seed tutorial's numbers and figures."""
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "examples" / "backprop_walkthrough.py"
SVG = "{http://www.w3.org/2000/svg}"

# the script draws its figures with Graphviz's `dot`
pytestmark = pytest.mark.requires("dot")

# What the seed tutorial prints for each deriv() variant.
SEED_PRINTS = {"a": "9.000000000000341", "e": "3.0000000000001137",
               "f": "27.999999999991587", "c": "3.0000000000001137"}


def L(a=10.0, b=3.0, d=-2.0, f=3.0, bump_c=0.0, bump_e=0.0):
    """The seed's L = (a*b + d) * f in plain floats, h added where the seed adds it."""
    c = a * b + bump_c
    e = c + d + bump_e
    return e * f


def expected_derivs(h=0.001):
    base = L()
    return {"a": (L(a=10.0 + h) - base) / h, "e": (L(bump_e=h) - base) / h,
            "f": (L(f=3.0 + h) - base) / h, "c": (L(bump_c=h) - base) / h,
            "d": (L(d=-2.0 + h) - base) / h}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the script in a fresh directory (its figures land there); returns (stdout, dir)."""
    cwd = tmp_path_factory.mktemp("walkthrough")
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout, cwd


def section(stdout, title):
    """The lines printed under the section whose title starts with `title`."""
    blocks = stdout.split("\n== ")
    (block,) = [b for b in blocks if b.startswith(title)]
    return block.splitlines()[1:]


def grads(line):
    return {m[1]: float(m[2]) for m in re.finditer(r"(\w)\.grad=(\S+)", line)}


def test_deriv_prints_the_seeds_numbers(run):
    stdout, _ = run
    printed = dict(re.findall(r"deriv\(\) with h added to (\w): (\S+)", stdout))
    assert list(printed) == ["a", "e", "f", "c", "d"]          # the seed's order
    for name, value in expected_derivs().items():
        assert printed[name] == repr(value)
    for name, value in SEED_PRINTS.items():
        assert printed[name] == value


def test_hand_set_grads(run):
    (line, _) = section(run[0], "All grads set by hand")
    assert grads(line) == {"a": 9.0, "b": 30.0, "c": 3.0, "d": 3.0, "e": 3.0, "f": 28.0,
                           "L": 1.0}


def test_backward_step_by_step(run):
    stdout, _ = run
    assert set(grads(section(stdout, "The tutorial defines")[0]).values()) == {0.0}
    after_L = section(stdout, "L.grad = 1.0; L._backward()")
    assert grads(after_L[0]) == {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 3.0, "f": 28.0,
                                 "L": 1.0}
    assert "same grads as the tutorial's Value: True" in after_L
    assert grads(section(stdout, "f._backward()")[0]) == grads(after_L[0])
    topo = section(stdout, "backward() in topological order")
    assert grads(topo[0]) == {"a": 3.0, "b": 10.0, "c": 1.0, "d": 1.0, "e": 1.0}
    assert "same grads as the tutorial's Value: True" in topo


def test_neuron(run):
    lines = section(run[0], "A Neuron")
    seed = int(re.search(r"np\.random\.seed\((\d+)\)", run[0])[1])
    np.random.seed(seed)
    w = [np.random.uniform(-1, 1) for _ in range(3)]
    x = [1.0, -3.4, 2.4]
    y = 0 + w[0] * x[0] + w[1] * x[1] + w[2] * x[2]     # sum(..., b) with b = 0
    assert f"y.data={float(y)!r}" in lines
    assert f"x.grad = {[float(wi) for wi in w]}" in lines
    assert "w.grad == x.data and x.grad == w.data: True" in lines


def svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    return [t.text for t in root.iter(SVG + "text")]


def test_figures_are_valid_svg(run):
    _, cwd = run
    assert sorted(p.name for p in cwd.iterdir()) == ["bp4.svg", "bp5.svg", "bp6.svg"]
    for name in ["bp4.svg", "bp5.svg", "bp6.svg"]:
        assert "<svg" in (cwd / name).read_text()
    bp4 = svg_texts(cwd / "bp4.svg")
    assert {"a", "data 10.0000", "grad 9.0000", "b", "grad 30.0000", "L", "grad 28.0000"} <= set(bp4)
    bp5 = svg_texts(cwd / "bp5.svg")
    assert bp5.count("grad 0.0000") == 4 and {"grad 3.0000", "grad 28.0000"} <= set(bp5)
    bp6 = svg_texts(cwd / "bp6.svg")
    assert {"grad 1.0000", "grad -3.4000", "grad 2.4000", "*", "+"} <= set(bp6)


def test_out_dir_argument(tmp_path):
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    assert sorted(p.name for p in out.iterdir()) == ["bp4.svg", "bp5.svg", "bp6.svg"]
