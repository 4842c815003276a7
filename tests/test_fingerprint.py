"""The bits of a fixed set of expressions, on this platform, against those recorded in
tests/fingerprint.json: what the README says about bit-identical results, checked.

Each expression is evaluated on Values (its value and the gradient of every leaf,
by ``backward()``), then replayed by ``Graph`` after its leaves were moved away and
back. Three statements, one test each:

- eager == replay, bit for bit, on every platform;
- group ``exact`` (``+ - * /``, ``neg``, ``relu``: IEEE operations, correctly rounded
  by definition, no FMA contraction) gives the recorded bits on every platform;
- group ``libm`` (``**``, ``tanh``, ``exp``, ``log``, ``sigmoid``: from the platform's
  C math library) gives the bits recorded for this platform's C library. A C library
  with no record yet is compared with glibc's: where they differ, the test reports
  the platform and the expressions (an expected failure, so a release is not
  blocked by a library that is allowed to round differently), and recording them
  (below) turns any later change into a failure.

Adding expressions: append ``{"expr": ..., "group": ...}`` to the file's
``expressions`` (an expression over the leaves ``a``, ``b``, ``c``; ``group`` is
``libm`` as soon as it uses one op of the C library), then record on this platform:

    PYTHONPATH=$PWD/src python tests/test_fingerprint.py --record

which fills in what is missing (the ``exact`` bits, and this C library's ``libm``
bits) and never overwrites a recorded value (``--overwrite`` does, after a change
that is meant to change results).
"""
import json
import os
import platform
import sys

import pytest

import autograd.math as am
from autograd import Graph, Value

FINGERPRINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fingerprint.json")
REFERENCE_LIBRARY = "glibc"        # the C library whose libm bits are recorded first
# the ops whose results come from the platform's C library; an expression that uses
# one of them belongs to group "libm"
LIBM_OPS = ("**", "tanh", "exp", "log", "sigmoid",
            # autograd.math: libm's functions (sin also names asin, sinh, ...) and
            # CPython's own gamma, lgamma, atan2, hypot (ported; they call libm or may
            # differ where a libm does); sqrt, fabs, floor, ceil, trunc, fmod,
            # remainder and copysign are IEEE's exactly rounded operations: exact
            "sin", "cos", "tan", "erf", "cbrt", "gamma", "hypot")


def load():
    with open(FINGERPRINT, encoding="utf-8") as f:
        return json.load(f)


def save(data):
    """The file as it is kept: one line per expression (appending one adds a line)."""
    lines = [f" {json.dumps(key)}: {json.dumps(data[key])}," for key in ("about", "leaves")]
    entries = [f"  {json.dumps(entry)}" for entry in data["expressions"]]
    with open(FINGERPRINT, "w", encoding="utf-8") as f:
        f.write("{\n" + "\n".join(lines) + '\n "expressions": [\n'
                + ",\n".join(entries) + "\n ]\n}\n")


def c_library():
    """A name for this platform's C math library: the key of its libm record."""
    if sys.platform.startswith("linux"):
        lib, _ = platform.libc_ver()
        return "glibc" if lib == "glibc" else "musl"     # manylinux, musllinux
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "ucrt"                                    # MSVC's /MD builds
    return sys.platform


def platform_name():
    """The platform, as a failure message names it."""
    lib, version = platform.libc_ver()
    return (f"{platform.system()} {platform.machine()}, C library {c_library()}"
            f"{' ' + version if version else ''}, {platform.python_implementation()} "
            f"{platform.python_version()} ({platform.platform()})")


def evaluate(expr, leaves):
    """`expr`'s bits, eager and replayed: two dicts {"value": hex, "grad": {leaf: hex}}."""
    values = {name: Value(float.fromhex(x)) for name, x in leaves.items()}
    out = eval(expr, {"__builtins__": {}, "am": am}, dict(values))
    out.backward()
    eager = bits(out, values)
    graph = Graph(out)
    for v in values.values():                  # move the leaves away, replay, come back
        v.data = v.data * 0.75 + 0.125
        v.grad = 0.0
    graph.forward()
    for name, v in values.items():
        v.data = float.fromhex(leaves[name])
    graph.forward()
    graph.backward()
    return eager, bits(out, values)


def bits(out, values):
    return {"value": float(out.data).hex(),
            "grad": {name: float(v.grad).hex() for name, v in values.items()}}


def differences(entries, recorded_of, leaves):
    """Lines naming each expression whose bits differ from `recorded_of(entry)`."""
    lines = []
    for entry in entries:
        expected = recorded_of(entry)
        if expected is None:
            continue
        got, _ = evaluate(entry["expr"], leaves)
        if got != expected:
            lines.append(f"  {entry['expr']}: got {got}, recorded {expected}")
    return lines


@pytest.fixture(scope="module")
def fingerprint():
    return load()


def in_group(fingerprint, group):
    return [e for e in fingerprint["expressions"] if e["group"] == group]


def test_groups_are_what_the_readme_says(fingerprint):
    """An expression that uses a C-library op is in group libm; every op of
    the README's statement appears in the file."""
    for entry in fingerprint["expressions"]:
        uses_libm = any(op in entry["expr"] for op in LIBM_OPS)
        assert entry["group"] == ("libm" if uses_libm else "exact"), entry
    text = " ".join(e["expr"] for e in fingerprint["expressions"])
    for op in ("+", "-", "*", "/", "relu", *LIBM_OPS):
        assert op in text, op


def test_every_expression_is_recorded(fingerprint):
    missing = [e["expr"] for e in fingerprint["expressions"]
               if (e["group"] == "exact" and "bits" not in e)
               or (e["group"] == "libm" and REFERENCE_LIBRARY not in e.get("bits", {}))]
    assert not missing, (f"no recorded bits for {missing}: run "
                         "`python tests/test_fingerprint.py --record` (on glibc for libm)")


def test_eager_and_replay_agree_bit_for_bit(fingerprint):
    mismatches = []
    for entry in fingerprint["expressions"]:
        eager, replayed = evaluate(entry["expr"], fingerprint["leaves"])
        if eager != replayed:
            mismatches.append(f"  {entry['expr']}: eager {eager}, replayed {replayed}")
    assert not mismatches, (f"on {platform_name()}, Graph replay differs from eager "
                            "mode:\n" + "\n".join(mismatches))


def test_exact_ops_give_the_recorded_bits(fingerprint):
    """+ - * / neg relu (and their gradients): the same bits on every platform."""
    lines = differences(in_group(fingerprint, "exact"), lambda e: e.get("bits"),
                        fingerprint["leaves"])
    assert not lines, (f"on {platform_name()}, IEEE arithmetic gives other bits than "
                       "recorded (FMA contraction? another rounding mode?):\n"
                       + "\n".join(lines))


def test_libm_ops_give_this_c_librarys_recorded_bits(fingerprint):
    """** tanh exp log sigmoid: the bits recorded for this platform's C library; with
    no record for it, glibc's, and a report (not a failure) where they differ."""
    library = c_library()
    entries = in_group(fingerprint, "libm")
    recorded = [e for e in entries if library in e.get("bits", {})]
    lines = differences(recorded, lambda e: e["bits"][library], fingerprint["leaves"])
    assert not lines, (f"on {platform_name()}, the C math library gives other bits "
                       f"than recorded for {library}:\n" + "\n".join(lines))
    unrecorded = [e for e in entries if library not in e.get("bits", {})]
    lines = differences(unrecorded, lambda e: e.get("bits", {}).get(REFERENCE_LIBRARY),
                        fingerprint["leaves"])
    if lines:
        pytest.xfail(f"on {platform_name()}, the C math library ({library}, no record "
                     f"yet) rounds differently from {REFERENCE_LIBRARY}:\n" + "\n".join(lines)
                     + "\nrecord them with `python tests/test_fingerprint.py --record`")


def record(overwrite=False):
    """Fill in tests/fingerprint.json's missing bits on this platform (see the top)."""
    data = load()
    library = c_library()
    changed = []
    for entry in data["expressions"]:
        eager, replayed = evaluate(entry["expr"], data["leaves"])
        assert eager == replayed, (entry, eager, replayed)
        if entry["group"] == "exact":
            if overwrite or "bits" not in entry:
                entry["bits"] = eager
                changed.append(entry["expr"])
        else:
            per_library = entry.setdefault("bits", {})
            if overwrite or library not in per_library:
                per_library[library] = eager
                changed.append(f"{entry['expr']} ({library})")
    save(data)
    print(f"recorded on {platform_name()}: {len(changed)} entries")
    for line in changed:
        print(" ", line)


if __name__ == "__main__":
    if sys.argv[1:] not in (["--record"], ["--record", "--overwrite"]):
        sys.exit("usage: python tests/test_fingerprint.py --record [--overwrite]")
    record(overwrite="--overwrite" in sys.argv)
