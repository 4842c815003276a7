"""Readable for teaching: help() of every op shows micrograd's Python for it (made from
the op table's OP_PYTHON rows), that Python computes our numbers, a built-in op's
_backward says which chain rule it applies to which operands, inspect.signature(Value)."""
import inspect
import math
import sys
import random
import re
import textwrap

import pytest

from autograd import Value
from autograd._core import OP_NAMES, OP_PYTHON

METHODS = sorted({m for row in OP_PYTHON.values() for m in row[0]})


def code_blocks(doc):
    """The literal blocks (after '::') of a docstring, dedented."""
    blocks = []
    for part in doc.split("::\n\n")[1:]:
        lines = []
        for line in part.split("\n"):
            if line and not line.startswith("    "):
                break
            lines.append(line)
        blocks.append(textwrap.dedent("\n".join(lines)).strip() + "\n")
    return blocks


def test_every_op_row_documents_its_methods():
    assert METHODS and set(OP_PYTHON) <= set(range(len(OP_NAMES)))
    for op, (methods, forward, backward, *label) in OP_PYTHON.items():
        for method in methods:
            doc = inspect.getdoc(getattr(Value, method))
            assert "micrograd's Python for it" in doc, method
            for line in backward.split("\n") + forward.split("  #")[0].split("\n"):
                assert line.strip() in doc, (method, line)


@pytest.mark.parametrize("method", METHODS)
def test_help_shows_it(method):
    import pydoc
    text = pydoc.render_doc(getattr(Value, method), renderer=pydoc.plaintext)
    assert "def " in text and "out._backward = _backward" in text


def micrograd_class_from_the_docs():
    """A pure-Python Value whose ops are exactly the code help() shows."""
    namespace = {"math": math}
    exec(textwrap.dedent('''
        class Value:
            def __init__(self, data, _children=(), _op=''):
                self.data, self.grad, self._prev, self._op = data, 0.0, set(_children), _op
                self._backward = lambda: None
    '''), namespace)
    cls = namespace["Value"]
    for method in METHODS:
        for block in code_blocks(inspect.getdoc(getattr(Value, method))):
            local = {}
            exec(block, namespace, local)
            (fn,) = local.values()
            key = fn.__name__ + ("_value" if "other.data" in block and fn.__name__ == "__pow__"
                                 else "")
            setattr(cls, key, fn)
    return cls


def backward(root):
    topo, seen = [], set()

    def build(v):
        if v not in seen:
            seen.add(v)
            for c in v._prev:
                build(c)
            topo.append(v)
    build(root)
    root.grad = 1.0
    for v in reversed(topo):
        v._backward()


@pytest.mark.parametrize("seed", range(20))
def test_the_documented_python_computes_our_numbers(seed):
    Doc = micrograd_class_from_the_docs()
    rng = random.Random(seed)
    a0, b0 = rng.uniform(0.2, 2.0), rng.uniform(-2.0, 2.0)
    k = rng.choice([2, 3, 0.5, -1])
    cases = {
        "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a / b, "neg": lambda a, b: -a * b, "**c": lambda a, b: (a ** k) * b,
        "**v": lambda a, b: a ** b, "relu": lambda a, b: (a * b).relu(),
        "tanh": lambda a, b: (a * b).tanh(), "exp": lambda a, b: (a * b).exp(),
        "log": lambda a, b: a.log() * b, "sigmoid": lambda a, b: (a * b).sigmoid(),
        # autograd.math's methods (a in [0.2, 2], b in [-2, 2]); lgamma's digamma is
        # not in math, and exp2 and cbrt only from Python 3.11 on
        **{name: (lambda name: lambda a, b: getattr(a * b, name)())(name)
           for name in ("sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "expm1",
                        "erf", "erfc", "abs", "floor", "ceil", "trunc", "sign")},
        **{name: (lambda name: lambda a, b: getattr(a * 0.4, name)() * b)(name)
           for name in ("asin", "acos", "atanh")},
        **{name: (lambda name: lambda a, b: getattr(a, name)() * b)(name)
           for name in ("log2", "log10", "log1p", "sqrt")},
        "acosh": lambda a, b: (a + 1).acosh() * b,
        **{name: (lambda name: lambda a, b: getattr(a, name)(b))(name)
           for name in ("atan2", "hypot", "fmod", "copysign")},
    }
    if sys.version_info >= (3, 11):
        cases["exp2"] = lambda a, b: (a * b).exp2()
        cases["cbrt"] = lambda a, b: (a * b).cbrt()
    for name, f in cases.items():
        a, b = Value(a0), Value(b0)
        out = f(a, b)
        out.backward()
        da, db = Doc(a0), Doc(b0)
        if name == "**v":
            dout = Doc.__pow___value(da, db)
        elif name == "**c":
            dout = Doc.__mul__(Doc.__pow__(da, k), db)
        else:
            dout = f(da, db)
        backward(dout)
        assert (dout.data, da.grad, db.grad) == (out.data, a.grad, b.grad), name


def test_reflected_ops_say_what_they_compute():
    assert "``other - self`` for a number ``other``" in Value.__rsub__.__doc__
    assert "``other / self``" in Value.__rtruediv__.__doc__


def test_backward_repr_names_rule_and_operands():
    a, b = Value(2.0, name="a"), Value(3.0, name="b")
    c = a * b; c.name = "c"
    text = repr(c._backward)
    assert "op '*'" in text and "out = c Value(data=6.0" in text
    assert "self = a Value(data=2.0" in text and "other = b Value(data=3.0" in text
    assert "self.grad += other.data * out.grad" in text
    assert "other = 2" in repr((a ** 2)._backward)
    assert "nothing to propagate" in repr(a._backward)
    assert "(1 - out.data * out.data) * out.grad" in repr(a.tanh()._backward)


def test_signature_of_value():
    sig = inspect.signature(Value)
    assert str(sig) == "(data, _children=(), _op='', name='', *, label=None)"
    assert Value.__doc__.startswith("A scalar that remembers")
    assert str(inspect.signature(Value.__mul__)) == "(self, value, /)"


def test_a_replaced_operator_can_still_be_restored():
    saved = Value.__dict__["__mul__"]
    try:
        Value.__mul__ = lambda self, other: "replaced"
        assert Value(2.0) * 3 == "replaced"
    finally:
        Value.__mul__ = saved
    assert (Value(2.0) * 3).data == 6.0
    assert "micrograd's Python" in Value.__mul__.__doc__
