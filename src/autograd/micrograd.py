"""Run unmodified micrograd code on autograd: ``import micrograd`` gets autograd.

After :func:`install`, ``micrograd``, ``micrograd.engine`` and ``micrograd.nn``
are autograd's modules, so ``from micrograd.engine import Value`` gives the
compiled ``Value`` and ``from micrograd.nn import MLP`` its ``MLP``. Three ways
to turn it on, none of which touches the code that imports micrograd:

- a script: ``python -m autograd.micrograd script.py [args...]`` (or
  ``python -m autograd.micrograd -m module [args...]``, ``-c code [args...]``,
  ``- [args...]`` for the standard input) runs it as ``python script.py`` would:
  as ``__main__``, with its ``sys.argv``, its folder first on ``sys.path``, its
  exit status and its traceback;
- IPython and Jupyter: ``%load_ext autograd.micrograd``, before the cell that
  imports micrograd;
- code: ``import autograd.micrograd; autograd.micrograd.install()``.

Nothing is printed. If the real micrograd was imported first, :func:`install`
raises ``RuntimeError`` saying what to do (its Values would not mix with ours).
"""
from __future__ import annotations

import atexit
import importlib.machinery
import os
import runpy
import signal
import sys
import types

import autograd.engine
import autograd.nn

__all__ = ["install", "is_installed", "load_ipython_extension", "main"]

_USAGE = """\
usage: python -m autograd.micrograd script.py [args...]
       python -m autograd.micrograd -m module [args...]
       python -m autograd.micrograd -c code [args...]
       python -m autograd.micrograd - [args...]      (the program from standard input)

Run a micrograd program unchanged on autograd: `micrograd`, `micrograd.engine`
and `micrograd.nn` import autograd's modules.
"""


def is_installed() -> bool:
    """Whether ``import micrograd`` gives autograd's alias in this process."""
    return getattr(sys.modules.get("micrograd"), "__autograd_alias__", False) is True


def install() -> None:
    """Make ``micrograd``, ``micrograd.engine`` and ``micrograd.nn`` autograd's modules.

    Call it before the first ``import micrograd``; calling it again does nothing.

    Raises
    ------
    RuntimeError
        If the real micrograd is already imported in this process.

    Examples
    --------
    >>> import autograd.micrograd
    >>> autograd.micrograd.install()
    >>> from micrograd.engine import Value
    >>> Value is autograd.engine.Value
    True
    """
    if is_installed():
        return
    real = sorted(name for name in sys.modules
                  if name == "micrograd" or name.startswith("micrograd."))
    if real:
        raise RuntimeError(
            f"the real micrograd is already imported ({', '.join(real)}), so its Values "
            "would not be autograd's: turn autograd on before the first `import "
            "micrograd`. Restart the interpreter (in Jupyter: the kernel) and run "
            "`%load_ext autograd.micrograd` or `autograd.micrograd.install()` first, "
            "or run the script with `python -m autograd.micrograd script.py`")
    package = types.ModuleType("micrograd", "autograd's stand-in for micrograd "
                                            "(autograd.micrograd.install()).")
    package.__spec__ = importlib.machinery.ModuleSpec("micrograd", None, is_package=True)
    package.__path__ = []            # its only submodules are engine and nn
    package.__file__ = __file__      # code that asks where micrograd lives gets this alias
    for attr, value in (("__autograd_alias__", True), ("engine", autograd.engine),
                        ("nn", autograd.nn)):
        setattr(package, attr, value)
    sys.modules["micrograd.engine"] = autograd.engine
    sys.modules["micrograd.nn"] = autograd.nn
    sys.modules["micrograd"] = package


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext autograd.micrograd``: :func:`install` for the session."""
    install()


def _strip_own_frames(tb):
    """The traceback from the first frame that is neither ours nor runpy's."""
    ours = (globals(), vars(runpy))
    while tb is not None and any(tb.tb_frame.f_globals is g for g in ours):
        tb = tb.tb_next
    return tb


def _run_script(path):
    """Run the file at `path` as ``python path`` does: a fresh ``__main__``."""
    full = os.path.abspath(path)
    try:
        with open(full, "rb") as f:
            source = f.read()
    except OSError as e:
        sys.stderr.write(f"{sys.executable}: can't open file {full!r}: "
                         f"[Errno {e.errno}] {e.strerror}\n")
        sys.exit(2)
    sys.path[0] = os.path.dirname(os.path.realpath(full))
    main = types.ModuleType("__main__")
    main.__file__ = full
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", full)
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    code = compile(source, full, "exec", dont_inherit=True)
    exec(code, vars(main))


def _run_code(source, filename):
    """Run `source` as ``python -c`` (`filename` ``<string>``) or ``python -``
    (``<stdin>``) do: a fresh ``__main__`` without ``__file__``, the current
    directory first on ``sys.path``."""
    import builtins
    sys.path[0] = ""
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.BuiltinImporter
    sys.modules["__main__"] = main
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, vars(main))


def main(argv: list[str] | None = None) -> None:
    """``python -m autograd.micrograd script.py [args...]``: see the module's docstring."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["-c"]:
        sys.stderr.write("Argument expected for the -c option\n" + _USAGE)
        sys.exit(2)
    if not args or args[0] in ("-h", "--help") or args == ["-m"]:
        asked = args[:1] in (["-h"], ["--help"])
        (sys.stdout if asked else sys.stderr).write(_USAGE)
        sys.exit(0 if asked else 2)
    install()
    # registered before the script's own handlers, so it runs after them
    atexit.register(_exit_by_sigint_if_interrupted)
    try:
        if args[0] == "-m":
            sys.argv = args[1:]
            # __builtins__ the module, as `python -m` binds it (exec would put the dict)
            runpy.run_module(args[1], {"__builtins__": sys.modules["builtins"]},
                             run_name="__main__", alter_sys=True)
        elif args[0] == "-c":               # python's sys.argv: ['-c', args...]
            sys.argv = ["-c", *args[2:]]
            _run_code(args[1], "<string>")
        elif args[0] == "-":                # ['-', args...]
            sys.argv = args
            _run_code(sys.stdin.read(), "<stdin>")
        else:
            sys.argv = args
            _run_script(args[0])
    except SystemExit:
        raise
    except BaseException as exc:
        # what the interpreter prints for an uncaught exception, from the
        # script's first frame on, as `python script.py` shows it
        exc.__traceback__ = _strip_own_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):
            _interrupted.append(True)
        sys.exit(1)


_interrupted: list[bool] = []


def _exit_by_sigint_if_interrupted():
    """After an uncaught KeyboardInterrupt the interpreter, once the atexit
    handlers have run, kills itself with SIGINT (status 130 in a shell)."""
    if _interrupted:
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    main()
