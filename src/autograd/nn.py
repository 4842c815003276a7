"""micrograd's ``nn`` module on the compiled Value: same classes, same reprs, and the
same ``random.uniform(-1, 1)`` draws in the same order, so that after
``random.seed(s)`` an ``MLP`` here has exactly micrograd's weights."""
from __future__ import annotations

import random

from autograd._core import dot
from autograd.engine import Value

TYPE_CHECKING = False       # typing is not imported at run time: it costs more than we do
if TYPE_CHECKING:
    from typing import Any, Sequence, Union

    _Input = Sequence[Union[Value, float]]     # Values or plain numbers

__all__ = ["Module", "Neuron", "Layer", "MLP"]


class Module:

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        return []


class Neuron(Module):

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: _Input) -> Value:
        # micrograd's sum((wi*xi for wi, xi in zip(self.w, x)), self.b): the same
        # nodes in the same order, built by one C loop
        act = dot(self.w, x, self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    # Any: a Value, or a list of Values when there are several neurons (the type
    # depends on nout, so that micrograd's `model(x).backward()` type-checks)
    def __call__(self, x: _Input) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x: _Input) -> Any:     # as Layer's: a Value, or a list of them
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
