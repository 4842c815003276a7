"""micrograd's ``engine`` module: ``from autograd.engine import Value``.

The class itself is compiled (``autograd._core``); see ``src/_core.pyx`` for the op
table (every op's forward formula and chain rule) and the arena.
"""
from autograd._core import CustomValue, Graph, Value, ValueVector, dot, graph_size

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "dot", "graph_size"]
