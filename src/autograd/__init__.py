"""autograd: micrograd's scalar ``Value``, compiled.

Replace ``from micrograd.engine import Value`` with ``from autograd.engine import
Value`` (or ``from autograd import Value``) and nothing changes but the speed.
"""
from __future__ import annotations

__version__ = "0.1.0"   # the one place: pyproject.toml reads it (setuptools' attr:)

import os
import sys

from autograd._core import grad, jacobian
from autograd.engine import CustomValue, Graph, Value, ValueVector
from autograd.functional import hessian
from autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from autograd.viz import draw_dot, trace

__all__ = ["Value", "CustomValue", "Graph", "ValueVector", "draw_dot", "trace", "gradcheck",
           "GradcheckError", "grad", "jacobian", "hessian", "gradgradcheck"]


# =============================================================================
# The import name clash with HIPS autograd
# =============================================================================
# HIPS autograd (the distribution named `autograd`) installs the same import name:
# pip writes one package over the other, and uninstalling either deletes files of
# both. Its metadata directory gives it away. importlib.metadata takes longer to
# import than this whole package, so a listing of sys.path's directories finds
# candidates first and importlib.metadata confirms them.

def _other_autograd_distribution() -> str | None:
    """The version of an installed distribution named ``autograd``, or None."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:           # not a directory (a zip), or gone
            continue
        for name in names:
            low = name.lower()
            if low.startswith(("autograd-", "autograd.")) and \
                    low.endswith((".dist-info", ".egg-info")):
                break
        else:
            continue
        import importlib.metadata
        try:
            return importlib.metadata.version("autograd")
        except importlib.metadata.PackageNotFoundError:
            return None
    return None


def _warn_if_hips_autograd_is_installed() -> None:
    version = _other_autograd_distribution()
    if version is None:
        return
    import warnings
    warnings.warn(
        f"another distribution named 'autograd' (HIPS autograd {version}) is installed "
        f"next to arenagrad {__version__}: both install the import name `autograd`, so "
        "pip has written one over the other (`import autograd` may mix their files) and "
        "uninstalling either breaks the other. Use them in separate virtual environments; "
        "to repair this one: pip uninstall -y autograd arenagrad && pip install arenagrad",
        UserWarning, stacklevel=2)


_warn_if_hips_autograd_is_installed()
