"""Another version of the compiled core, built from git, to time beside the installed one.

A before/after comparison of the core is only worth its ratio if both sides run in
the same process, alternately, on the same machine state (bench/README.md). This
module compiles ``src/_core.pyx`` as it was at a git ref into a module of its own
(its own arena, its own ``Value`` type), so that a workload can pair it with the
installed ``autograd._core``:

    import baseline
    old = baseline.load("main")          # compiled once per commit, then cached
    x = old.Value(2.0) * 3               # the old core's Value
    baseline.describe(old)               # 'core of 1a2b3c4d5e6f (main)'

Only the core is rebuilt; Python modules (``nn``, ``viz``) are not. The build uses
the installed core's compiler directives and the C flags of this checkout's ``setup.py``
(read from it, not copied), so that the two
differ only in their source. Builds are cached in ``bench/.baseline/<commit>-<flags>/``.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".baseline")

SETUP = """\
from Cython.Build import cythonize
from setuptools import Extension, setup
import sys

setup(
    name="{pkg}",
    ext_modules=cythonize(
        [Extension("autograd._core", ["autograd/_core.pyx"],
                   extra_compile_args={flags!r})],
        language_level=3,
        compiler_directives={{"boundscheck": False, "wraparound": False,
                              "cdivision": True, "initializedcheck": False}},
    ),
    script_args=["build_ext", "--inplace"],
)
"""


def _git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True, capture_output=True,
                          text=True).stdout


def resolve(ref):
    """The full commit hash of a git ref (ValueError if git does not know it)."""
    try:
        return _git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise ValueError(f"cannot resolve git ref {ref!r} in {REPO}: "
                         f"{getattr(e, 'stderr', '') or e}") from None


def load(ref="main"):
    """The compiled core of git ref `ref`, as a module (built on first use).

    Parameters
    ----------
    ref : str
        Any git ref or commit of this repository.

    Returns
    -------
    module
        ``Value``, ``Graph``, ``dot``, ... of that commit's core, with an arena of its
        own; its ``__baseline_ref__`` is `ref` and ``__baseline_commit__`` the commit.
    """
    try:
        import Cython  # noqa: F401  (the build runs in a subprocess; fail here, clearly)
    except ImportError:
        raise ImportError("bench/baseline.py compiles a core from git and needs Cython: "
                          "pip install -e '.[bench]'") from None
    commit = resolve(ref)
    pkg = f"agbase_{commit[:12]}"
    name = f"{pkg}._core"
    if name in sys.modules:
        return sys.modules[name]
    root = _cache_root(commit)
    built = _built(root)
    if not built:
        shutil.rmtree(root, ignore_errors=True)     # a stale or half-made cache entry
        _build(commit, pkg, root)
        built = _built(root)
    # compiled as autograd._core (the core's C names derive from its module name),
    # imported under a name of its own beside the installed autograd._core
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "autograd", built[0]))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    mod.__baseline_ref__ = ref
    mod.__baseline_commit__ = commit
    return mod


def _cache_root(commit):
    # keyed by the flags too: a change of setup.py's flags rebuilds the old core with them
    import hashlib
    flags_key = hashlib.sha1(repr(release_cflags()).encode()).hexdigest()[:8]
    return os.path.join(CACHE, f"{commit[:12]}-{flags_key}")


def _built(root):
    folder = os.path.join(root, "autograd")
    return [f for f in os.listdir(folder) if f.startswith("_core.")
            and f.endswith((".so", ".pyd"))] if os.path.isdir(folder) else []


def cached_path(ref):
    """The compiled core of `ref` in the cache, or None if `load` would compile it
    (or git does not know `ref`)."""
    try:
        root = _cache_root(resolve(ref))
    except (ValueError, OSError, RuntimeError):
        return None
    built = _built(root)
    return os.path.join(root, "autograd", built[0]) if built else None


def release_cflags():
    """The C compiler flags setup.py gives a release build on this platform's compiler
    (its GCC_LIKE_CFLAGS or MSVC_CFLAGS, read from the file without running it)."""
    import ast
    with open(os.path.join(REPO, "setup.py")) as f:
        tree = ast.parse(f.read())
    wanted = "MSVC_CFLAGS" if sys.platform == "win32" else "GCC_LIKE_CFLAGS"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == wanted
                                                 for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"setup.py has no {wanted} list")


def _build(commit, pkg, root):
    os.makedirs(CACHE, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="build-", dir=CACHE)
    try:
        os.makedirs(os.path.join(tmp, "autograd"))
        files = [("src/_core.pyx", "_core.pyx"), ("src/autograd/_core.pxd", "_core.pxd")]
        # the core's included parts (src/core/*.pxi), where that commit has them
        if _has_core_dir(commit):
            files += [(f"src/core/{n}", os.path.join("core", n))
                      for n in _git("ls-tree", "--name-only", f"{commit}:src/core/").split()
                      if n.endswith(".pxi")]
        os.makedirs(os.path.join(tmp, "autograd", "core"))
        for src, dst in files:
            with open(os.path.join(tmp, "autograd", dst), "w") as f:
                f.write(_git("show", f"{commit}:{src}"))
        with open(os.path.join(tmp, "setup.py"), "w") as f:
            f.write(SETUP.format(pkg=pkg, flags=release_cflags()))
        p = subprocess.run([sys.executable, "setup.py"], cwd=tmp, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"building the core of {commit[:12]} failed:\n"
                               + "\n".join((p.stdout + p.stderr).splitlines()[-30:]))
        shutil.rmtree(os.path.join(tmp, "build"), ignore_errors=True)
        if os.path.isdir(root):                 # a concurrent build got there first
            shutil.rmtree(tmp)
            return
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _has_core_dir(commit):
    """Whether `commit` splits the core into src/core/*.pxi (as of issue 16)."""
    try:
        _git("cat-file", "-e", f"{commit}:src/core")
        return True
    except subprocess.CalledProcessError:
        return False


def describe(mod):
    """'core of <commit> (<ref>)' for a module from `load`, 'installed core' otherwise."""
    commit = getattr(mod, "__baseline_commit__", None)
    if commit is None:
        return "installed core"
    return f"core of {commit[:12]} ({mod.__baseline_ref__})"


if __name__ == "__main__":
    # python bench/baseline.py [REF]: build (or find) the core of REF and smoke-test it
    mod = load(sys.argv[1] if len(sys.argv) > 1 else "main")
    v = mod.Value(2.0)
    y = v * v + 1
    y.backward()
    print(f"{describe(mod)}: {mod.__file__}; (x*x+1).backward() at 2: grad {v.grad}")
