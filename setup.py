"""Build the compiled core ``autograd._core`` from ``src/_core.pyx``.

The metadata lives in ``pyproject.toml``; this file declares the extension and
chooses the C compiler's flags, per compiler (``build_ext.build_extensions``), and
makes two things pyproject.toml cannot: the long description (the README with its
relative links made absolute to the repository, for PyPI) and a reproducible sdist
under ``SOURCE_DATE_EPOCH``.

Extra flags for one build (a sanitizer job, a debug build) go in ``CFLAGS`` or, to be
sure they come last on the command line, ``ARENAGRAD_CFLAGS`` (and ``LDFLAGS`` /
``ARENAGRAD_LDFLAGS`` for the linker). When they ask for an optimisation level
(``-O...``) or debug info (``-g...``), our release defaults for those step aside.
"""
import gzip
import io
import os
import re
import shlex
import sys
import tarfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

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


# ---------------------------------------------------------------------------
# The long description: PyPI shows the README, but not the repository's files, so
# its relative links and images (docs/bp4.svg, bench/RESULTS.md) point into the
# repository at this version's tag. The README itself keeps relative links (they
# work on the repository's own pages and in a clone).
# ---------------------------------------------------------------------------
REPOSITORY = "https://github.com/arenagrad/arenagrad"    # as in pyproject's [project.urls]
RAW_FILES = "https://raw.githubusercontent.com/arenagrad/arenagrad"

# ![alt](target) and [text](target): a target that is neither a URL nor an anchor
_RELATIVE_LINK = re.compile(r"(!?)\[([^\]]*)\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)")


def _version():
    """``__version__`` from src/autograd/__init__.py, read without importing it."""
    with open(os.path.join("src", "autograd", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def absolute_links(markdown, ref):
    """`markdown` with its relative links to the repository's files at `ref` (a tag):
    images to their raw file, other links to the file's page."""
    def absolute(m):
        image, text, target = m.groups()
        base = f"{RAW_FILES}/{ref}" if image else f"{REPOSITORY}/blob/{ref}"
        return f"{image}[{text}]({base}/{target.removeprefix('./')})"
    return _RELATIVE_LINK.sub(absolute, markdown)


def long_description():
    with open("README.md", encoding="utf-8") as f:
        return absolute_links(f.read(), f"v{_version()}")


# ---------------------------------------------------------------------------
# A reproducible sdist. setuptools' tarball has each file's own mtime (the
# generated PKG-INFO's is the build's time), the builder's user and group, and a
# gzip header with the build's time and the archive's name: two builds of one
# commit differ. Under SOURCE_DATE_EPOCH (as the wheel already is), the archive is
# written again with no time later than it, owner root, and a bare gzip header.
# ---------------------------------------------------------------------------

def normalize_tarball(path, epoch):
    """Rewrite the .tar.gz at `path`: same members in the same order, mtimes clamped
    to `epoch`, owner and group 0/root, gzip header without name and with `epoch`."""
    with tarfile.open(path, "r:gz") as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None)
                   for m in src.getmembers()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member, data in members:
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            member.pax_headers = {}     # the read ones repeat the fractional mtime
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=epoch) as gz:
            gz.write(buffer.getvalue())


class Sdist(sdist):
    """setuptools' sdist; with SOURCE_DATE_EPOCH set, its tarballs are normalized."""

    def make_distribution(self):
        super().make_distribution()
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            for path in self.archive_files:
                if path.endswith(".tar.gz"):
                    normalize_tarball(path, int(epoch))


extensions = [Extension("autograd._core", ["src/_core.pyx"])]

setup(cmdclass={"build_ext": BuildExt, "sdist": Sdist}, ext_modules=extensions,
      long_description=long_description(), long_description_content_type="text/markdown")
