"""autograd: micrograd's scalar ``Value``, compiled.

Replace ``from micrograd.engine import Value`` with ``from autograd.engine import
Value`` (or ``from autograd import Value``) and nothing changes but the speed.
"""
from __future__ import annotations

__version__ = "0.1.0"   # the one place: pyproject.toml reads it (setuptools' attr:)
# that this __init__.py is arenagrad's: autograd.engine checks it (autograd._clash)
_IS_ARENAGRAD = True

from autograd._core import Lanes, grad, jacobian
from autograd.engine import CustomValue, Graph, Value, ValueVector
from autograd.functional import hessian
from autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from autograd.viz import draw_dot, trace
from autograd._core import jacfwd, jvp  # forward mode
from autograd.functional import hvp

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "Lanes", "draw_dot", "trace", "gradcheck",
           "GradcheckError", "grad", "jacobian", "hessian", "gradgradcheck"]
__all__ += ["jvp", "jacfwd", "hvp"]     # forward mode


# HIPS autograd installs the same import name: warn when it is installed too
# (autograd._clash says why; autograd.engine warns when this file is not ours)
from autograd._clash import warn_if_hips_is_installed as _warn_if_hips_is_installed

_warn_if_hips_is_installed(__version__)
