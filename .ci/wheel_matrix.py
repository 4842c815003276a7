"""The wheels the workflow builds and tests, and what each test run installs.

    python .ci/wheel_matrix.py [PROJECT_DIR]      (needs cibuildwheel installed)

Asks cibuildwheel itself (the version .github/workflows/wheels.yml uses) for the
build identifiers of each platform and their test options, with pyproject.toml's
overrides applied, and prints one Markdown table row per group of identifiers that
install the same things. Run by .ci/run (its output is the release's matrix).
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

import tomllib
from cibuildwheel.options import CommandLineArguments, compute_options


# tests that skip on every wheel's test run, whatever the platform
ALWAYS_SKIPPED = "torch's differential tests (torch is not installed)"
# platforms whose facilities some tests need (conftest.require_facility)
NO_ADDRESS_SPACE_CAP = ("macosx", "win")


def identifiers_of(platform):
    """The build identifiers cibuildwheel would build on `platform` (pyproject's archs)."""
    done = subprocess.run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
                           "--platform", platform], capture_output=True, text=True, check=True)
    return done.stdout.split()


def requirements(project, extras):
    """The project's dependencies plus those of `extras`, self-references expanded."""
    metadata = project["project"]
    out, todo, seen = list(metadata["dependencies"]), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in metadata["optional-dependencies"][extra]:
            m = re.fullmatch(rf"{metadata['name']}\[([^\]]+)\]", req)
            if m:
                todo.extend(e.strip() for e in m.group(1).split(","))
            else:
                out.append(req)
    return sorted(out, key=str.lower)


def main(project_dir="."):
    os.chdir(project_dir)
    with open("pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    rows = defaultdict(list)
    for platform in ("linux", "macos", "windows"):
        options = compute_options(platform, CommandLineArguments.defaults(), env={})
        for identifier in identifiers_of(platform):
            build = options.build_options(identifier)
            environment = build.test_environment.as_dictionary({})
            skipped = [ALWAYS_SKIPPED]
            without = environment.get("ARENAGRAD_TEST_WITHOUT")
            if without:
                skipped.append(f"tests that need {without} (no wheel of it)")
            if identifier.split("-")[1].startswith(NO_ADDRESS_SPACE_CAP):
                skipped.append("expected: the 2 out-of-memory tests (RLIMIT_AS not enforced there; probed at run time)")
            extras = build.test_extras      # cibuildwheel keeps it as "[a,b]"
            if isinstance(extras, str):
                extras = [e for e in extras.strip("[]").split(",") if e]
            key = (identifier.split("-")[1], tuple(extras),
                   tuple(sorted(environment.items())), tuple(skipped))
            rows[key].append(identifier.split("-")[0])
    print("| wheel (platform tag) | CPython | test extras | installs for the tests | "
          "test environment | skipped there |")
    print("|---|---|---|---|---|---|")
    total = 0
    for (tag, extras, environment, skipped), pythons in rows.items():
        total += len(pythons)
        versions = ", ".join(f"{p[2]}.{p[3:]}" for p in pythons)
        print(f"| {tag} | {versions} | {', '.join(extras)} | "
              f"{', '.join(requirements(project, extras))} | "
              f"{', '.join(f'{k}={v}' for k, v in environment)} | {'; '.join(skipped)} |")
    print(f"\n{total} wheels, each tested with the whole suite (skips above)")


if __name__ == "__main__":
    main(*sys.argv[1:])
