"""micrograd's ``engine`` module: ``from autograd.engine import Value``.

The class itself is compiled (``autograd._core``): ``src/_core.pyx`` lists its parts;
``src/core/op_table.pxi`` has every op's forward formula and chain rule.
"""
from autograd._core import (CustomValue, Graph, Value, ValueVector, dot, graph_size,
                            topological_order)

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "dot", "graph_size",
           "topological_order"]
