"""micrograd's ``engine`` module: ``from autograd.engine import Value``.

The class itself is compiled (``autograd._core``): ``src/_core.pyx`` lists its parts;
``src/core/op_table.pxi`` has every op's forward formula and chain rule.
"""
from autograd._clash import warn_if_init_is_foreign
from autograd._core import (CustomValue, Graph, Value, ValueVector, dot, graph_size,
                            topological_order)

# every entry point imports this module: it warns when autograd/__init__.py is not
# ours (HIPS autograd installed over arenagrad), which our __init__ cannot do
warn_if_init_is_foreign()

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "dot", "graph_size",
           "topological_order"]
