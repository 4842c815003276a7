"""One training step of examples/tinygpt.py's transformer, on every scalar engine.

The same code (``TinyGPT``, ``Adam``, ``train_step``) runs on ours, on a pure-Python
micrograd-style Value with exp and log (bench/pyvalue.py), and on PyTorch 0-dim
float64 tensors: generic code (``sum()`` from the int 0, ``x / len(x)``, ``** -0.5``,
constants on either side), not the demo's ``core.dot`` path.
"""
import gc
import os
import random
import sys

import engines as E
import pyvalue
from harness import Sampler, alternate, fmt_ratio, fmt_time, med, pair_ratio, table, verdict

NAME = "transformer"
ORDER = 45
TARGET = 120.0          # one step, pure-Python Value / ours, GC on

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples"))
import tinygpt  # noqa: E402

SEED = 0
WORD = "gratumel"       # the timed step's word: names.txt's median length (8), 9 positions
QUICK_WORD = "tasy"     # --quick: 5 positions, on a model half as wide (a smoke test)
QUICK_SIZE = dict(n_embd=8, n_head=2)


class TorchAdam(tinygpt.Adam):
    """tinygpt.Adam for 0-dim tensors: the same update, grads read with .item()."""

    def grads(self):
        # None: a parameter this step did not use
        return [0.0 if p.grad is None else p.grad.item() for p in self.params]

    def zero_grads(self):
        for p in self.params:
            p.grad = None


def make(key, vocab_size, steps, size):
    """(model, optimizer) on engine `key`, initial weights from SEED."""
    if key == "ours":
        from autograd import Value
    elif key in ("pyvalue", "pyvalue-nogc"):
        Value = pyvalue.Value
    else:
        import torch

        def Value(x):
            return torch.tensor(x, dtype=torch.float64, requires_grad=True)
    model = tinygpt.TinyGPT(vocab_size, seed=SEED, Value=Value, **size)
    adam = TorchAdam if key == "torch-scalar" else tinygpt.Adam
    return model, adam(model.parameters(), steps=steps)


def run(bench):
    bench.log("transformer: one training step of examples/tinygpt.py")
    wanted = ["ours", "pyvalue", "pyvalue-nogc", "torch-scalar"]
    if bench.quick:
        wanted.remove("pyvalue-nogc")
    keys = [k for k in wanted if k.startswith("pyvalue") or bench.has(k)]
    word = QUICK_WORD if bench.quick else WORD
    size = QUICK_SIZE if bench.quick else {}
    words = tinygpt.load_words()
    tok = tinygpt.Tokenizer(words)
    random.Random(SEED).shuffle(words)
    if bench.quick:
        words = [w for w in words if len(w) <= len(QUICK_WORD)]

    # -- agreement: K steps from the same weights on the same words --
    K = bench.cfg["check_steps"]
    losses = {}
    for k in keys:
        if k == "pyvalue-nogc":
            continue
        model, opt = make(k, tok.vocab_size, 1000, size)
        gc.collect()
        losses[k] = [float(tinygpt.train_step(model, opt, tok.encode(w))) for w in words[:K]]
    ref = losses["ours"]
    worst = 0.0
    rows = []
    for k, ls in losses.items():
        rel = max(abs(a - b) / abs(b) for a, b in zip(ls, ref))
        worst = max(worst, rel)
        rows.append([E.LABELS[k], ", ".join(f"{x:.12f}" for x in ls), f"{rel:.1e}",
                     "ok" if rel <= 1e-9 else "DISAGREE"])
    check = (f"Losses of the first {K} steps from `seed={SEED}` weights on the same words, "
             "relative to ours (float64 engines must agree to 1e-9):\n\n"
             + table(["engine", "losses", "max rel. diff", ""], rows))

    # -- timing: one step on a fixed word, repeated --
    ids = tok.encode(word)
    samplers = {}
    nodes = None
    for k in keys:
        model, opt = make(k, tok.vocab_size, 10**9, size)   # lr stays put: the same work each call
        samplers[k] = Sampler(lambda model=model, opt=opt: tinygpt.train_step(model, opt, ids),
                              nogc=k.endswith("-nogc"))
        if k == "ours":
            from autograd._core import graph_size
            nodes = graph_size(model.loss(ids))
    samples, errors = alternate(samplers, bench.cfg["rounds"], bench.cfg["target"], bench.log)
    for k, v in samples.items():
        bench.summary.setdefault(k, {})["transformer"] = (med(v), pair_ratio(samples, "pyvalue", k))
    trows = []
    for k in wanted:
        if k in samples:
            trows.append([E.LABELS[k], fmt_time(med(samples[k])),
                          fmt_ratio(pair_ratio(samples, k, "ours")),
                          fmt_ratio(pair_ratio(samples, "pyvalue", k))])
    shape = tinygpt.TinyGPT(tok.vocab_size, seed=SEED, **size)
    n_params = len(shape.parameters())
    body = (f"`examples/tinygpt.py`: a character-level GPT (1 block, {shape.n_embd} wide, "
            f"{shape.n_head} heads, "
            f"RMSNorm, ReLU MLP; {n_params:,} parameters) written in plain Python on each "
            f"engine's scalar. One step: the loss of the {len(ids) - 1}-position word "
            f"`{word}` (token and position embeddings, attention over the positions so far, "
            f"softmax, cross-entropy; {nodes:,} graph nodes on ours), backward, Adam over "
            "the parameters. Generic code: `sum()` from the int 0, `x / len(x)`, "
            "`** -0.5`, `max(v.data ...)`, constants on both sides. The pure-Python Value "
            "is micrograd's design plus `exp` and `log` (`bench/pyvalue.py`), timed as "
            "shipped (GC on, steady state) and with gc off.\n\n"
            + table(["engine", "per step", "time / ours", "pure-Python Value / engine"], trows)
            + bench.err_note(errors) + bench.skipped_note(["torch-scalar"]) + "\n\n" + check)
    bench.section("3c. A transformer step (examples/tinygpt.py)", body)
    r = pair_ratio(samples, "pyvalue", "ours")
    bench.targets.append(("transformer step vs pure-Python Value, GC on", f">= {TARGET:.0f}x",
                          (f"{fmt_ratio(r)} ({fmt_time(med(samples['ours']))} vs "
                           f"{fmt_time(med(samples['pyvalue']))})") if r == r else "n/a",
                          verdict(r, TARGET)))
    if r == r:
        bench.headline(f"a tiny GPT's training step: {fmt_time(med(samples['ours']))}, "
                       f"{fmt_ratio(r)} faster than micrograd's Value with exp and log")
    bench.check("transformer losses agree (float64)", "<= 1e-9",
                f"max rel. diff {worst:.1e}", "PASS" if worst <= 1e-9 else "FAIL")
