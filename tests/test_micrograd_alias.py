"""The zero-change mode: unmodified micrograd code runs on autograd.

`python -m autograd.micrograd script.py`, `%load_ext autograd.micrograd` in IPython,
and `autograd.micrograd.install()`. micrograd 0.1.0 is installed (the `test`
extra), so every test also proves that the alias, not the real package, ran:
the same script run with plain `python` uses the real one, and both runs must
print the same losses.

Each case runs in a subprocess: the alias changes `sys.modules` for good.
"""
import os
import subprocess
import sys
import textwrap

import pytest

# micrograd's demo.ipynb training loop as a script, unchanged but for the data
# (scikit-learn's make_moons is replaced by the same construction in numpy) and
# its size, read from the command line so that real micrograd runs it quickly.
DEMO = textwrap.dedent('''
    import random
    import sys

    import numpy as np

    import micrograd
    from micrograd.engine import Value
    from micrograd.nn import Neuron, Layer, MLP

    np.random.seed(1337)
    random.seed(1337)

    def make_moons(n_samples, noise):
        n_out = n_samples // 2
        n_in = n_samples - n_out
        outer = np.c_[np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out))]
        inner = np.c_[1 - np.cos(np.linspace(0, np.pi, n_in)),
                      1 - np.sin(np.linspace(0, np.pi, n_in)) - .5]
        X = np.r_[outer, inner] + np.random.normal(scale=noise, size=(n_samples, 2))
        y = np.r_[np.zeros(n_out), np.ones(n_in)]
        return X, y

    n_samples, steps = int(sys.argv[1]), int(sys.argv[2])
    X, y = make_moons(n_samples=n_samples, noise=0.1)
    y = y*2 - 1 # make y be -1 or 1

    model = MLP(2, [16, 16, 1]) # 2-layer neural network
    print(model)
    print("number of parameters", len(model.parameters()))

    # loss function
    def loss(batch_size=None):

        # inline DataLoader :)
        if batch_size is None:
            Xb, yb = X, y
        else:
            ri = np.random.permutation(X.shape[0])[:batch_size]
            Xb, yb = X[ri], y[ri]
        inputs = [list(map(Value, xrow)) for xrow in Xb]

        # forward the model to get scores
        scores = list(map(model, inputs))

        # svm "max-margin" loss
        losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(yb, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum((p*p for p in model.parameters()))
        total_loss = data_loss + reg_loss

        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    total_loss, acc = loss()
    print(total_loss, acc)

    # optimization
    for k in range(steps):

        # forward
        total_loss, acc = loss()

        # backward
        model.zero_grad()
        total_loss.backward()

        # update (sgd)
        learning_rate = 1.0 - 0.9*k/100
        for p in model.parameters():
            p.data -= learning_rate * p.grad

        if k % 1 == 0:
            print(f"step {k} loss {total_loss.data}, accuracy {acc*100}%")

    print("engine", type(Value(1.0)).__module__, micrograd.engine.__name__)
''')


def run(args, cwd, **kw):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env, **kw)


def lines_of(out, prefix):
    return [line for line in out.splitlines() if line.startswith(prefix)]


def test_an_unmodified_micrograd_script_trains_with_micrograds_losses(tmp_path):
    script = tmp_path / "demo.py"
    script.write_text(DEMO)
    ours = run(["-m", "autograd.micrograd", "demo.py", "30", "6"], cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""
    theirs = run(["demo.py", "30", "6"], cwd=tmp_path)
    assert theirs.returncode == 0, theirs.stderr
    # the alias ran ours; plain python ran the real micrograd
    assert lines_of(ours.stdout, "engine") == ["engine autograd._core autograd.engine"]
    assert lines_of(theirs.stdout, "engine") == ["engine micrograd.engine micrograd.engine"]
    assert lines_of(ours.stdout, "MLP of [") == lines_of(theirs.stdout, "MLP of [")
    steps_ours = lines_of(ours.stdout, "step")
    steps_theirs = lines_of(theirs.stdout, "step")
    assert len(steps_ours) == len(steps_theirs) == 6
    for a, b in zip(steps_ours, steps_theirs):
        la = float(a.split("loss ")[1].split(",")[0])
        lb = float(b.split("loss ")[1].split(",")[0])
        assert abs(la - lb) <= 1e-12 * abs(lb), (a, b)
        assert a.split(",")[1] == b.split(",")[1]                # the accuracy


SHOW = textwrap.dedent('''
    import sys, os
    from micrograd.engine import Value
    print(__name__, __file__, sys.argv, sys.path[0], __package__, __spec__)
    print(sys.modules["__main__"].__dict__ is globals())
    print(os.path.basename(__file__))
    if sys.argv[1:2] == ["fail"]:
        def inner():
            raise ValueError("from the script")
        inner()
    if sys.argv[1:2] == ["exit"]:
        sys.exit(int(sys.argv[2]))
''')


@pytest.mark.parametrize("args", [["a", "--flag", "b c"], ["fail"], ["exit", "3"],
                                  ["exit", "0"]])
def test_the_script_sees_what_python_script_py_gives_it(tmp_path, args):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "show.py").write_text(SHOW)
    ours = run(["-m", "autograd.micrograd", "sub/show.py", *args], cwd=tmp_path)
    plain = run(["sub/show.py", *args], cwd=tmp_path)
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr)
    if args[0] == "fail":
        assert ours.returncode == 1 and "autograd" not in ours.stderr
        assert ours.stderr.startswith("Traceback (most recent call last):\n  File ")


def test_a_missing_script_and_no_arguments(tmp_path):
    missing = run(["-m", "autograd.micrograd", "nope.py"], cwd=tmp_path)
    assert missing.returncode == 2 and "can't open file" in missing.stderr
    assert missing.stdout == ""
    bare = run(["-m", "autograd.micrograd"], cwd=tmp_path)
    assert bare.returncode == 2 and bare.stderr.startswith("usage:")
    helped = run(["-m", "autograd.micrograd", "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and helped.stdout.startswith("usage:")


def test_run_a_module_with_dash_m(tmp_path):
    (tmp_path / "trainer.py").write_text(textwrap.dedent('''
        import sys
        from micrograd.engine import Value
        print(__name__, type(Value(1.0)).__module__, sys.argv[1:])
    '''))
    r = run(["-m", "autograd.micrograd", "-m", "trainer", "x"], cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "__main__ autograd._core ['x']\n", "")


def test_install_from_code(tmp_path):
    code = textwrap.dedent('''
        import autograd.micrograd
        autograd.micrograd.install()
        autograd.micrograd.install()            # twice is fine
        import micrograd, micrograd.engine, micrograd.nn
        from micrograd import engine, nn
        from micrograd.engine import Value
        from micrograd.nn import MLP, Neuron, Layer, Module
        import autograd
        assert Value is autograd.Value and MLP is autograd.nn.MLP
        assert micrograd.engine is engine is autograd.engine and nn is autograd.nn
        assert autograd.micrograd.is_installed()
        try:
            import micrograd.other
        except ImportError:
            pass
        else:
            raise AssertionError("micrograd.other imported")
    ''')
    r = run(["-c", code], cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_install_after_the_real_micrograd_is_refused(tmp_path):
    code = textwrap.dedent('''
        from micrograd.engine import Value
        import autograd.micrograd
        try:
            autograd.micrograd.install()
        except RuntimeError as e:
            print(e)
        else:
            raise AssertionError("installed over the real micrograd")
    ''')
    r = run(["-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already imported" in r.stdout and "load_ext autograd.micrograd" in r.stdout
    assert "restart" in r.stdout.lower()


def test_an_ipython_session_with_load_ext(tmp_path):
    code = textwrap.dedent('''
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        cells = [
            "%load_ext autograd.micrograd",
            "from micrograd.engine import Value\\nfrom micrograd.nn import MLP",
            "import random\\nrandom.seed(0)\\nmodel = MLP(2, [4, 1])",
            "x = [Value(0.5), Value(-1.0)]\\nout = model(x)\\nout.backward()",
            "print(type(out).__module__, out.data, sum(p.grad for p in model.parameters()))",
        ]
        for cell in cells:
            result = shell.run_cell(cell, store_history=True)
            if not result.success:
                sys.exit(f"cell failed: {cell!r}: {result.error_in_exec!r}")
    ''')
    ours = run(["-c", code], cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr + ours.stdout
    module, data, grads = ours.stdout.split()
    assert module == "autograd._core"
    # the same cells on the real micrograd, without the extension
    plain = run(["-c", code.replace('"%load_ext autograd.micrograd",', "")], cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr + plain.stdout
    module_r, data_r, grads_r = plain.stdout.split()
    assert module_r == "micrograd.engine"
    assert float(data) == float(data_r)
    assert abs(float(grads) - float(grads_r)) <= 1e-12 * max(1.0, abs(float(grads_r)))
