"""autograd: micrograd's scalar ``Value``, compiled.

Replace ``from micrograd.engine import Value`` with ``from autograd.engine import
Value`` (or ``from autograd import Value``) and nothing changes but the speed.
"""
from autograd._core import grad
from autograd.engine import CustomValue, Graph, Value, ValueVector
from autograd.functional import hessian
from autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from autograd.viz import draw_dot, trace

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "draw_dot", "trace", "gradcheck",
           "GradcheckError", "grad", "hessian", "gradgradcheck"]
__version__ = "0.1.0"
