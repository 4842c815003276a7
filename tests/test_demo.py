"""python -m autograd.demo: eager and replay modes, their outputs, and what they reach."""
import importlib.util
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from autograd import demo
from autograd.datasets import make_moons
from autograd.nn import MLP

STEP = re.compile(r"^step +(\d+)  loss (\S+)  accuracy (\d+)%$")
HAS_MICROGRAD = importlib.util.find_spec("micrograd") is not None


def run_demo(out, *args):
    done = subprocess.run([sys.executable, "-m", "autograd.demo", "--steps", "10",
                           "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # not a terminal: one plain line per step, no \r
    assert "\r" not in done.stdout
    lines = done.stdout.split("\n")
    steps = [STEP.match(line) for line in lines if STEP.match(line)]
    return done.stdout, [(int(m[1]), float(m[2]), int(m[3])) for m in steps]


@pytest.fixture(scope="module")
def eager(tmp_path_factory):
    out = tmp_path_factory.mktemp("eager")
    return out, *run_demo(out)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    return out, *run_demo(out, "--replay")


@pytest.mark.parametrize("mode", ["eager", "replay"])
def test_runs_and_reports(mode, request):
    _, stdout, steps = request.getfixturevalue(mode)
    assert f"{mode} mode:" in stdout
    # micrograd's notebook's labels: step k's loss is before the k-th update, and
    # the loss after the last update has a label of its own
    assert [k for k, _, _ in steps] == list(range(10))
    assert steps[-1][1] < steps[0][1]                       # the loss goes down
    assert re.search(r"^after 10 steps: loss \d\.\d+  accuracy \d+%$", stdout, re.M)
    assert re.search(rf"time per step: \d+\.\d+ ms \({mode}\)", stdout)
    if HAS_MICROGRAD:
        assert re.search(r"micrograd, the same step: \d+\.\d+ ms \(3 steps; same losses: True\)",
                         stdout)
        assert re.search(rf"autograd \({mode}\) is \d+\.\dx faster", stdout)
    else:
        assert "micrograd is not installed" in stdout


@pytest.mark.requires("dot", "matplotlib")
@pytest.mark.parametrize("mode", ["eager", "replay"])
def test_writes_the_pictures(mode, request):
    out, _, _ = request.getfixturevalue(mode)
    assert (out / "decision_boundary.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = ET.parse(out / "neuron.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"w0", "w1", "b", "x0", "x1", "out", "ReLU"} <= texts
    # a live neuron: the gradient reaches its weights, bias and inputs
    grads = [float(t[len("grad "):]) for t in texts if t and t.startswith("grad ")]
    assert sum(g != 0.0 for g in grads) >= 5, grads


def test_eager_and_replay_give_the_same_losses(eager, replay):
    assert [loss for _, loss, _ in eager[2]] == [loss for _, loss, _ in replay[2]]
    final = re.compile(r"after \d+ steps: .*")
    assert final.findall(eager[1]) == final.findall(replay[1])


def moons_trainer(kind, seed=1337):
    X, y = make_moons(100, noise=demo.NOISE, seed=seed)
    random.seed(seed)
    return kind(MLP(2, [16, 16, 1]), X.tolist(), y.tolist())


def test_replay_matches_eager_step_by_step():
    eager_history, _ = demo.train(moons_trainer(demo.EagerTrainer), 20, progress=False)
    replay_history, _ = demo.train(moons_trainer(demo.ReplayTrainer), 20, progress=False)
    # the same ops in the same order, in C either way (a compiler that fuses
    # multiply-adds in sgd_step would differ in the last bits: then compare closely)
    flat = lambda history: [x for step in history for x in step]     # noqa: E731
    assert flat(replay_history) == pytest.approx(flat(eager_history), rel=1e-12, abs=0)


def test_reaches_micrograds_accuracy():
    # micrograd's demo reaches 100% after 100 steps; so does ours on its default data
    trainer = moons_trainer(demo.ReplayTrainer)
    history, _ = demo.train(trainer, 100, progress=False)
    assert history[-1][1] == 1.0
    assert demo.accuracy(trainer.y, trainer.evaluate()[1]) == 1.0
    assert history[-1][0] < 0.05


def test_learning_rate_is_micrograds_over_100_steps():
    assert [demo.learning_rate(k, 100) for k in (0, 10, 99)] == \
        [1.0 - 0.9 * k / 100 for k in (0, 10, 99)]


def test_without_matplotlib_there_is_a_note(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib fails
    trainer = moons_trainer(demo.EagerTrainer)
    X, y = make_moons(100, seed=1337)
    assert demo.plot_decision_boundary(trainer.model, X, y, tmp_path / "b.png") is False
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "b.png").exists()


def test_without_dot_there_is_a_note(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", "")
    trainer = moons_trainer(demo.EagerTrainer)
    assert demo.draw_neuron(trainer.model, [[0.5, -0.3]], tmp_path / "n.svg") is False
    assert "`dot` program is not installed" in capsys.readouterr().out


def test_bad_steps_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograd.demo", "--steps", "0",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--steps must be at least 1" in done.stderr
