"""cibuildwheel's test step, run here as cibuildwheel runs it on each wheel.

    python3 .ci/cibuildwheel_test.py WHEEL PROJECT_DIR WORK_DIR [IDENTIFIER]

Reads [tool.cibuildwheel] from PROJECT_DIR/pyproject.toml (with the overrides that
select IDENTIFIER, by default cp3XY-manylinux_<this machine> of this Python), then:
a fresh venv in WORK_DIR with WHEEL[test-extras] (and nothing else: no torch), a
copy of test-sources from PROJECT_DIR into WORK_DIR/test (outside the source tree),
and test-command run there with test-environment. Exits with the test command's
status. Used by .ci/run, so that the wheels workflow's test step is known to pass
before a tag is pushed.
"""
import fnmatch
import os
import platform
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:          # Python < 3.11
    import tomli as tomllib


def options_for(config, identifier):
    """[tool.cibuildwheel]'s test options, with the overrides selecting `identifier`
    applied in order (tables appended where the override says inherit = append)."""
    options = {key: config.get(key) for key in
               ("test-extras", "test-sources", "test-command", "test-environment",
                "test-requires", "test-skip")}
    for override in config.get("overrides", []):
        if not any(fnmatch.fnmatch(identifier, pattern) for pattern in override["select"].split()):
            continue
        for key in options:
            if key not in override:
                continue
            inherit = override.get("inherit", {}).get(key, "none")
            value = override[key]
            if inherit == "append" and isinstance(value, dict):
                value = {**(options[key] or {}), **value}
            elif inherit != "none":
                raise SystemExit(f"cibuildwheel_test: inherit {inherit!r} of {key} not handled")
            options[key] = value
    return options


def main(wheel, project, work, identifier=None):
    with open(os.path.join(project, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)["tool"]["cibuildwheel"]
    identifier = identifier or (f"cp3{sys.version_info[1]}-manylinux_{platform.machine()}")
    options = options_for(config, identifier)
    if options["test-skip"] and any(fnmatch.fnmatch(identifier, p)
                                    for p in options["test-skip"].split()):
        raise SystemExit(f"cibuildwheel_test: test-skip selects {identifier}: nothing to run")
    print(f"cibuildwheel_test: {identifier}: extras {options['test-extras']}, "
          f"sources {options['test-sources']}, environment {options['test-environment']}, "
          f"command {options['test-command']!r}", flush=True)

    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    extras = ",".join(options["test-extras"] or [])
    requirement = f"{os.path.abspath(wheel)}[{extras}]" if extras else os.path.abspath(wheel)
    subprocess.run([python, "-m", "pip", "install", "-q", requirement,
                    *(options["test-requires"] or [])], check=True)
    # what cibuildwheel's test venv has: the test extra, and no torch
    done = subprocess.run([python, "-c", "import importlib.util as u; "
                           "print(u.find_spec('torch') is None)"], capture_output=True, text=True)
    assert done.stdout.strip() == "True", "the test venv must not have torch"

    test_dir = os.path.join(work, "test")
    os.makedirs(test_dir)
    for source in options["test-sources"] or []:
        src, dst = os.path.join(project, source), os.path.join(test_dir, source)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)

    env = {key: value for key, value in os.environ.items()
           if not key.startswith("ARENAGRAD_")}     # only what test-environment sets
    env.update(options["test-environment"] or {})
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = venv
    env.pop("PYTHONPATH", None)
    return subprocess.run(options["test-command"], shell=True, cwd=test_dir, env=env).returncode


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
