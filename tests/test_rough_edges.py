"""What a new user trips over first, each fixed: the demo's output in a pipe and on a
terminal, its labels, its neuron picture and its errors; `--help` on every script;
``python -m autograd.micrograd -c/-``; the quick benchmark's plain summary."""
import glob
import hashlib
import os
import pty
import random
import re
import subprocess
import sys

import pytest

from autograd import Value, demo
from autograd.nn import MLP

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, cwd, **kw):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env, **kw)


# --- the demo -----------------------------------------------------------------------

def test_demo_progress_in_a_pipe_is_one_line_per_step(tmp_path):
    r = run(["-m", "autograd.demo", "--steps", "12", "--out", str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) < 120
    assert len(re.findall(r"^step +\d+  loss", r.stdout, re.M)) == 12


def test_demo_progress_on_a_terminal_rewrites_one_line(tmp_path):
    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "autograd.demo", "--steps", "12",
                          "--out", str(tmp_path)], stdout=follower, stderr=subprocess.PIPE,
                         cwd=tmp_path)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:              # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    p.stderr.close()
    out = b"".join(chunks).decode()
    # 12 updates of one line: each starts with \r; a newline only once the steps end
    assert out.count("\rstep ") == 12
    progress = out[out.index("\rstep "):]
    assert progress.split("\r\n")[0].count("\r") == 12


def test_demo_labels_two_losses_apart(tmp_path):
    r = run(["-m", "autograd.demo", "--steps", "5", "--out", str(tmp_path)], tmp_path)
    labels = [line.split("loss")[0].strip(" :") for line in r.stdout.splitlines()
              if " loss " in line]
    # micrograd's notebook's: step k is the loss before the k-th update
    assert labels == ["step 0", "step 1", "step 2", "step 3", "step 4", "after 5 steps"]


def test_the_drawn_neuron_passes_gradients_back():
    random.seed(3)
    model = MLP(2, [4, 1])
    first = model.layers[0].neurons[0]
    # make the first neuron dead on the first point: relu(w.x + b) with w.x + b < 0
    X = [[1.0, 1.0], [-1.0, 0.5], [0.3, -2.0]]
    for w in first.w:
        w.data = -abs(w.data) - 0.1
    first.b.data = -0.5
    neuron, x = demo.live_neuron(model, X)
    inputs = [Value(xi) for xi in x]
    out = neuron(inputs)
    assert out.data > 0
    out.backward()
    assert neuron is not first or x is not X[0]
    assert all(w.grad == xi for w, xi in zip(neuron.w, x))      # d relu(w.x + b)/dw = x
    assert neuron.b.grad == 1.0
    assert all(v.grad == w.data for v, w in zip(inputs, neuron.w))


@pytest.mark.parametrize("out", ["/proc/no-such-dir/x", "FILE", "UNDER_FILE"])
def test_demo_bad_out_is_a_usage_error(tmp_path, out):
    if out.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc here (the issue's example); UNDER_FILE is the same error")
    if out in ("FILE", "UNDER_FILE"):
        (tmp_path / "a-file").write_text("")
        out = str(tmp_path / "a-file" / ("x" if out == "UNDER_FILE" else ""))
        out = out.rstrip("/\\")
    r = run(["-m", "autograd.demo", "--steps", "1", "--out", out], tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert re.search(r"^python -m autograd.demo: error: --out .*", r.stderr, re.M), r.stderr


# --- --help on every script -----------------------------------------------------------

SCRIPTS = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "examples",
                                                                           "*.py")))
SCRIPTS += ["bench/run.py", "-m autograd.demo", "-m autograd.micrograd"]


def tree_state(*folders):
    """{path: sha256} of every file under `folders` (what a script could have written)."""
    state = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    state[os.path.join(root, f)] = hashlib.sha256(fh.read()).hexdigest()
    return state


BENCH_HERE = os.path.exists(os.path.join(REPO, "bench", "run.py"))
NO_BENCH = ("bench/ is not among cibuildwheel's test-sources (a wheel's test run has "
            "tests/ and examples/ only); .ci/run's test stage has it")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_honours_help_and_writes_nothing(tmp_path, script):
    if script.startswith("bench/") and not BENCH_HERE:
        pytest.skip(NO_BENCH)
    args = script.split() if script.startswith("-m") else [os.path.join(REPO, script)]
    watched = [os.path.join(REPO, "examples"), os.path.join(REPO, "bench"), str(tmp_path)]
    before = tree_state(*watched)
    r = run([*args, "--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:"), r.stdout[:200]
    assert tree_state(*watched) == before


# --- python -m autograd.micrograd -c / - ------------------------------------------------

def test_micrograd_alias_runs_dash_c_as_python_does(tmp_path):
    code = ("import sys, micrograd; from micrograd.engine import Value; "
            "print(sys.argv, sys.path[0] == '', __name__, (Value(2.0) * 3).data)")
    ours = run(["-m", "autograd.micrograd", "-c", code, "a", "-x"], tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == "['-c', 'a', '-x'] True __main__ 6.0\n"
    # the traceback points into the code as python's -c does
    r = run(["-m", "autograd.micrograd", "-c", "x = 1\n1 / 0"], tmp_path)
    plain = run(["-c", "x = 1\n1 / 0"], tmp_path)
    assert r.returncode == plain.returncode == 1
    assert r.stderr == plain.stderr
    assert run(["-m", "autograd.micrograd", "-c", "raise SystemExit(3)"], tmp_path).returncode == 3
    missing = run(["-m", "autograd.micrograd", "-c"], tmp_path)
    assert missing.returncode == 2 and "Argument expected for the -c option" in missing.stderr


def test_micrograd_alias_reads_the_program_from_stdin(tmp_path):
    code = "import sys\nfrom micrograd.nn import MLP\nprint(sys.argv, MLP(2, [1]))\n"
    r = run(["-m", "autograd.micrograd", "-", "b"], tmp_path, input=code)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "['-', 'b'] MLP of [Layer of [LinearNeuron(2)]]\n"


def test_micrograd_alias_modules_have_a_file(tmp_path):
    code = ("import os, micrograd, micrograd.engine, micrograd.nn\n"
            "for m in (micrograd, micrograd.engine, micrograd.nn):\n"
            "    assert os.path.isfile(m.__file__), m\n"
            "print(os.path.basename(micrograd.__file__))\n")
    r = run(["-m", "autograd.micrograd", "-c", code], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "micrograd.py\n"


# --- the quick benchmark speaks plainly ---------------------------------------------------

def test_quick_bench_prints_a_plain_summary_and_compiles_nothing(tmp_path):
    if not BENCH_HERE:
        pytest.skip(NO_BENCH)
    r = run([os.path.join(REPO, "bench", "run.py"), "--quick", "--only",
             "forward,backward,extension",
             "--out", str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "What was measured" in r.stdout
    assert re.search(r"^  - building a graph .* faster than micrograd 0\.1\.0$", r.stdout, re.M)
    assert re.search(r"^Checks and targets: .*speed targets? left to the full run\.$",
                     r.stdout, re.M)
    assert "RESULTS.md" in r.stdout
    # one progress line per workload, nothing else, before the summary
    assert len(r.stderr.splitlines()) <= 5, r.stderr
    assert len(r.stdout.splitlines()) < 30
    # no internal words; the old core is not compiled in a quick run
    for word in ("issue", "CHECK", "c5c3a69", "compiling"):
        assert word not in out
    results = (tmp_path / "RESULTS.md").read_text()
    assert "Not run: it compares the installed core with one compiled from git" in results
    assert "not graded (quick run)" in results and "short by" not in results
