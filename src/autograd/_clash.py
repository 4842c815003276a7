"""The import name clash with HIPS autograd: detect it, and say what to do.

HIPS autograd (the distribution named ``autograd``) installs the same import name:
pip writes one package over the other without a word, and uninstalling either
deletes files of both. Only ``__init__.py`` is in both (HIPS has no ``engine``,
``nn``, ``micrograd``...), so two mixes are possible:

- arenagrad installed last: our ``__init__.py`` runs, and warns
  (:func:`warn_if_hips_is_installed`);
- HIPS installed last (or installed, then uninstalled): ``autograd/__init__.py`` is
  HIPS's (or gone), ours never runs, and ``from autograd import Value`` is a bare
  ImportError. Our other entry points (``autograd.engine``, which ``autograd.nn``,
  ``autograd.micrograd`` and ``autograd.demo`` import) still run, and warn
  (:func:`warn_if_init_is_foreign`).

This module's name is not in HIPS autograd, so no install of HIPS overwrites it.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False       # typing is not imported at run time
if TYPE_CHECKING:
    import types

REPAIR = "pip uninstall -y autograd arenagrad && pip install arenagrad"


def other_autograd_distribution() -> str | None:
    """The version of an installed distribution named ``autograd``, or None.

    A listing of sys.path's directories finds candidates first: importlib.metadata
    takes longer to import than this whole package."""
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


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside the import machinery and this
    package: the user's `import` line (warnings.warn skips importlib's frames
    itself, so they are not counted)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<frozen importlib"):
            if os.path.dirname(os.path.abspath(name)) != here:
                return level
            level += 1
        frame = frame.f_back
    return 1


def _warn(message: str) -> None:
    import warnings
    warnings.warn(message, UserWarning, stacklevel=_caller_stacklevel())


def warn_if_hips_is_installed(version: str) -> None:
    """Called by our ``__init__.py`` (`version` is arenagrad's)."""
    hips = other_autograd_distribution()
    if hips is None:
        return
    _warn(f"another distribution named 'autograd' (HIPS autograd {hips}) is installed "
          f"next to arenagrad {version}: both install the import name `autograd`, so "
          "pip has written one over the other (`import autograd` may mix their files) and "
          "uninstalling either breaks the other. Use them in separate virtual environments; "
          f"to repair this one: {REPAIR}")


def warn_if_init_is_foreign() -> None:
    """Called when ``autograd.engine`` is imported: is ``autograd/__init__.py`` ours?"""
    package = sys.modules.get("autograd")
    if package is None or getattr(package, "_IS_ARENAGRAD", False):
        return
    hips = other_autograd_distribution()
    if hips is not None:
        what = (f"HIPS autograd {hips} was installed after arenagrad and replaced its "
                "autograd/__init__.py (both install the import name `autograd`)")
        fix = (f"use the two in separate virtual environments; to repair this one: {REPAIR}")
    else:
        what = ("autograd/__init__.py is not arenagrad's: it was deleted or replaced "
                "(uninstalling HIPS autograd deletes it, as both install the import name "
                "`autograd`)")
        fix = "repair: pip install --force-reinstall arenagrad"
    _warn(f"{what}. `import autograd` is not this package, so `from autograd import Value` "
          f"fails; `autograd.engine`, `autograd.nn` and `python -m autograd.micrograd` "
          f"still work. {fix[0].upper()}{fix[1:]}")
