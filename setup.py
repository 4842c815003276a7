"""Build the compiled core ``autograd._core`` from ``src/_core.pyx``.

All metadata lives in ``pyproject.toml``; this file only declares the extension and
chooses the C compiler's flags, per compiler (``build_ext.build_extensions``).

Extra flags for one build (a sanitizer job, a debug build) go in ``CFLAGS`` or, to be
sure they come last on the command line, ``ARENAGRAD_CFLAGS`` (and ``LDFLAGS`` /
``ARENAGRAD_LDFLAGS`` for the linker). When they ask for an optimisation level
(``-O...``) or debug info (``-g...``), our release defaults for those step aside.
"""
import os
import shlex
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# gcc and clang (compiler_type "unix", also macOS's clang; "mingw32" on Windows).
GCC_LIKE_CFLAGS = [
    "-O3",                  # the op table and the arena loops are the product: full speed
    "-ffp-contract=off",    # no FMA contraction: gcc/clang fuse a*b + c on ARM64 (and on
                            # x86-64 with FMA) into one rounding, differently in eager ops
                            # and in Graph replay's loops; results must be bit-identical
                            # on every platform, eager and replay alike
    "-fno-jump-tables",     # the op table's switch as compare-and-branch, not an indirect
                            # jump: with a jump table, Graph.forward/backward ran 2-3x
                            # slower in some builds (on AMD Zen the indirect jump of a
                            # replay loop mispredicted on every node, depending only on
                            # where the linker put the code); conditional branches on
                            # the op are predicted whatever the layout (bench/README.md)
    "-Wall",                # our code compiles clean under -Wall: keep it so
    "-g0",                  # a release carries no debug info (82% of the .so with -g)
]
GCC_LIKE_LDFLAGS_LINUX = [
    "-s",                   # strip the symbol table too: the .so only exports PyInit__core
]
# MSVC (compiler_type "msvc"; setuptools already passes /O2 /W3 /MD and no /Zi, so a
# release build has no debug info).
MSVC_CFLAGS = [
    "/O2",                  # full speed (as setuptools' default, stated here on purpose)
    "/fp:precise",          # IEEE rounding of every operation, no contraction into FMA
                            # (VS 2022 contracts only under /fp:contract or /fp:fast):
                            # bit-identical with the gcc/clang builds' -ffp-contract=off
]


def _user_flags(*names):
    return [flag for name in names for flag in shlex.split(os.environ.get(name, ""))]


class BuildExt(build_ext):
    """Flags chosen by ``compiler.compiler_type``: no gcc flag ever reaches MSVC."""

    def build_extensions(self):
        kind = self.compiler.compiler_type
        if kind == "msvc":
            cflags, ldflags = list(MSVC_CFLAGS), []
        else:   # "unix" (gcc, clang, Apple clang), "mingw32", "cygwin"
            cflags = list(GCC_LIKE_CFLAGS)
            ldflags = list(GCC_LIKE_LDFLAGS_LINUX) if sys.platform.startswith("linux") else []
            # distutils puts $CFLAGS before our extra_compile_args, and gcc keeps the
            # last -O and -g: when the user asks for them, ours must not override.
            user = _user_flags("CFLAGS", "ARENAGRAD_CFLAGS")
            if any(f.startswith("-O") for f in user):
                cflags = [f for f in cflags if not f.startswith("-O")]
            if any(f.startswith("-g") and f != "-g0" for f in user):
                cflags = [f for f in cflags if f != "-g0"]
                ldflags = [f for f in ldflags if f != "-s"]
        # ARENAGRAD_* come last, so they win over everything above
        cflags += _user_flags("ARENAGRAD_CFLAGS")
        ldflags += _user_flags("ARENAGRAD_LDFLAGS")
        # Cython runs here, when building, not when setup.py is loaded: an sdist
        # needs only the .pyx (and gets no generated C). Only the sources change:
        # setuptools has prepared these Extension objects (cythonize returns new ones).
        from Cython.Build import cythonize
        generated = cythonize(
            self.extensions,
            language_level=3,
            include_path=["src"],  # the declarations: src/autograd/_core.pxd
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
            },
        )
        for ext, gen in zip(self.extensions, generated):
            ext.sources = gen.sources
        for ext in self.extensions:
            ext.extra_compile_args = cflags + list(ext.extra_compile_args)
            ext.extra_link_args = ldflags + list(ext.extra_link_args)
        super().build_extensions()


extensions = [Extension("autograd._core", ["src/_core.pyx"])]

setup(cmdclass={"build_ext": BuildExt}, ext_modules=extensions)
