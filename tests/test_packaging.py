"""The installed package: what `import autograd` costs, the name clash with HIPS autograd,
the version, the typed user script, and conftest's `requires` (skip, or fail under CI)."""
import importlib.metadata
import pathlib
import subprocess
import sys
import textwrap

import pytest

import autograd
from conftest import REQUIREMENTS, require

HERE = pathlib.Path(__file__).resolve().parent


def python(code, *args, env_extra=None, cwd=None):
    """Run `code` in a fresh interpreter; returns the CompletedProcess."""
    import os
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, *args, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_import_autograd_imports_neither_graphviz_nor_numpy():
    done = python("""
        import sys
        import autograd
        print(sorted(m for m in ('graphviz', 'numpy') if m in sys.modules))
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_draw_dot_imports_graphviz_when_it_draws():
    done = python("""
        import sys
        from autograd import Value, draw_dot
        assert 'graphviz' not in sys.modules
        dot = draw_dot(Value(1.0) * 2)
        print(type(dot).__module__, 'graphviz' in sys.modules)
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["graphviz.graphs", "True"]


def test_value_vector_still_works_without_numpy_imported_first():
    done = python("""
        from autograd import Value, ValueVector
        v = ValueVector([Value(1.0), Value(2.0)])
        print(v.data.tolist())
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1.0, 2.0]"


def fake_distribution(root, name, version):
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_warns_when_hips_autograd_is_installed_too(tmp_path):
    fake_distribution(tmp_path, "autograd", "1.7.0")
    done = python("import autograd", env_extra={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "UserWarning" in done.stderr
    assert "HIPS autograd 1.7.0" in done.stderr
    assert "separate virtual environments" in done.stderr
    assert "pip uninstall -y autograd arenagrad && pip install arenagrad" in done.stderr


def test_no_warning_for_other_distributions(tmp_path):
    # names that only look alike: ours, and one that merely starts with "autograd"
    fake_distribution(tmp_path, "autograd_extras", "2.0")
    fake_distribution(tmp_path / "other", "arenagrad", "0.0.1")
    done = python("import autograd", "-W", "error",
                  env_extra={"PYTHONPATH": f"{tmp_path}{__import__('os').pathsep}"
                                           f"{tmp_path / 'other'}"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def mixed_install(root, init_text, hips_version):
    """A site directory where HIPS autograd was installed over arenagrad: a copy of
    this package whose __init__.py is `init_text` (None: deleted, as uninstalling
    HIPS leaves it), and HIPS's metadata when `hips_version` is given."""
    import shutil
    site = root / "site"
    shutil.copytree(pathlib.Path(autograd.__file__).parent, site / "autograd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = site / "autograd" / "__init__.py"
    init.unlink()
    if init_text is not None:
        init.write_text(init_text)
    if hips_version:
        fake_distribution(site, "autograd", hips_version)
    return {"PYTHONPATH": str(site)}


# the mixed site alone: without site-packages (-S), where the installed package (a
# regular package) would win over the copy without __init__.py (a namespace portion)
ISOLATED = "-S"


HIPS_INIT = '"""HIPS autograd\'s __init__.py (a stand-in)."""\nfrom autograd.wrap_util import unary_to_nary\n'


@pytest.mark.parametrize("case", ["HIPS installed last", "HIPS installed, then uninstalled"])
def test_every_entry_point_warns_when_our_init_is_not_ours(tmp_path, case):
    hips = case == "HIPS installed last"
    env = mixed_install(tmp_path, HIPS_INIT if hips else None, "1.7.0" if hips else None)
    if hips:        # the module HIPS's __init__ imports
        (tmp_path / "site" / "autograd" / "wrap_util.py").write_text("unary_to_nary = None\n")
    fix = ("pip uninstall -y autograd arenagrad && pip install arenagrad" if hips
           else "pip install --force-reinstall arenagrad")
    for code in ["import autograd.engine", "import autograd.nn", "import autograd.micrograd"]:
        done = python(code + "; print('ran')", ISOLATED, env_extra=env, cwd=tmp_path)
        assert done.returncode == 0, (code, done.stderr)
        assert done.stdout.strip() == "ran", (code, done.stdout)
        assert "UserWarning" in done.stderr and fix in done.stderr, (code, done.stderr)
        assert ("HIPS autograd 1.7.0 was installed after arenagrad" in done.stderr) == hips
        assert "<string>:1: UserWarning" in done.stderr, (code, done.stderr)  # the import line
    # python -m autograd.micrograd script.py: the script runs, after the warning
    (tmp_path / "train.py").write_text("from micrograd.engine import Value\n"
                                       "print((Value(2.0) * 3).data)\n")
    done = subprocess.run([sys.executable, ISOLATED, "-m", "autograd.micrograd", "train.py"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(__import__("os").environ, **env))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6.0" and fix in done.stderr, done.stderr
    # `from autograd import Value` cannot be reached by our code: the error is Python's
    done = python("from autograd import Value", ISOLATED, env_extra=env, cwd=tmp_path)
    assert "ImportError: cannot import name 'Value' from 'autograd'" in done.stderr


def test_no_warning_from_the_engine_when_our_init_runs(tmp_path):
    done = python("import autograd.engine, autograd.nn, autograd.micrograd", "-W", "error",
                  ISOLATED,
                  env_extra=mixed_install(tmp_path, (pathlib.Path(autograd.__file__)).read_text(),
                                          None), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_version_is_written_once():
    # pyproject.toml reads autograd.__version__: the installed metadata says the same
    assert autograd.__version__ == importlib.metadata.version("arenagrad")


def test_the_typed_user_script_runs(tmp_path):
    # the script mypy --strict checks in CI is also a program that works
    done = subprocess.run([sys.executable, str(HERE / "typing" / "user_script.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- conftest's requires/require: skip with a hint, fail when its switch is on --------

@pytest.fixture
def missing(monkeypatch):
    """A requirement that is never available, forced by the switch ARENAGRAD_TEST_X."""
    monkeypatch.setitem(REQUIREMENTS, "missing",
                        (lambda: False, "install it with X", "ARENAGRAD_TEST_X"))


def test_require_skips_with_the_hint(missing, monkeypatch):
    monkeypatch.delenv("ARENAGRAD_TEST_X", raising=False)
    monkeypatch.setenv("CI", "true")        # not this requirement's switch
    with pytest.raises(pytest.skip.Exception, match="install it with X"):
        require("missing")


def test_require_fails_when_its_switch_is_on(missing, monkeypatch):
    monkeypatch.setenv("ARENAGRAD_TEST_X", "1")
    with pytest.raises(pytest.fail.Exception, match="ARENAGRAD_TEST_X=1.*install it with X"):
        require("missing")


def test_require_passes_what_is_there(monkeypatch):
    monkeypatch.setitem(REQUIREMENTS, "present", (lambda: True, "never shown", "CI"))
    monkeypatch.setenv("CI", "true")
    assert require("present") is None


def test_require_skips_what_the_platform_has_no_wheel_of(missing, monkeypatch):
    monkeypatch.setenv("ARENAGRAD_TEST_X", "1")
    monkeypatch.setenv("ARENAGRAD_TEST_WITHOUT", "matplotlib, missing")
    with pytest.raises(pytest.skip.Exception, match="install it with X.*no wheel of it"):
        require("missing")


def test_require_refuses_an_unknown_name():
    with pytest.raises(KeyError):
        require("no such requirement")


def test_the_switches_of_dot_torch_mpmath_psutil_and_matplotlib():
    """CI=true forces what every CI installs; torch has a switch of its own (.ci/run
    sets it), so the wheels' test runs, which have no torch, skip its tests."""
    assert {name: switch for name, (_, _, switch) in REQUIREMENTS.items()} == \
        {"dot": "CI", "torch": "ARENAGRAD_REQUIRE_TORCH", "mpmath": "ARENAGRAD_REQUIRE_TORCH",
         "psutil": "CI", "matplotlib": "CI"}


def test_dot_requirement_looks_on_path(monkeypatch):
    available, hint, _ = REQUIREMENTS["dot"]
    monkeypatch.setenv("PATH", "")
    assert available() is False
    assert "apt-get install graphviz" in hint and "brew install graphviz" in hint
