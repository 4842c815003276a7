"""examples/tinygpt.py: it runs from anywhere, its loss falls, and it computes what the
same code computes on a pure-Python micrograd-style Value (bench/pyvalue.py)."""
import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tinygpt = load("tinygpt", "examples/tinygpt.py")
pyvalue = load("pyvalue", "bench/pyvalue.py")


@pytest.fixture(scope="module")
def tok():
    return tinygpt.Tokenizer(tinygpt.load_words())


def test_runs_from_another_directory(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(REPO, "examples", "tinygpt.py"),
                        "--steps", "5", "--samples", "2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("4,000 words")
    assert sum(line.startswith("step") for line in lines) == 5
    samples = lines[lines.index("samples:") + 1:]
    assert len(samples) == 2 and all(s.strip().isalpha() for s in samples)


def test_loss_falls(tok):
    words = ["kelen", "tasy", "vepiron"]
    model = tinygpt.TinyGPT(tok.vocab_size, seed=1)
    opt = tinygpt.Adam(model.parameters(), steps=40)
    losses = [tinygpt.train_step(model, opt, tok.encode(words[i % 3])) for i in range(30)]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert 3.0 < first < 3.5          # about log(25): nothing learnt yet
    assert last < 0.6 * first


def test_agrees_with_a_pure_python_value(tok):
    words = ["kelen", "tasy"]
    losses = {}
    for key, Value in (("ours", None), ("python", pyvalue.Value)):
        model = tinygpt.TinyGPT(tok.vocab_size, n_embd=8, n_head=2, seed=2, Value=Value)
        opt = tinygpt.Adam(model.parameters(), steps=10)
        losses[key] = [tinygpt.train_step(model, opt, tok.encode(w)) for w in words * 2]
    for a, b in zip(losses["ours"], losses["python"]):
        assert abs(a - b) <= 1e-9 * abs(b)
    assert losses["ours"][2] != losses["ours"][0]       # the weights did move
