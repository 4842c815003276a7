"""Refuse a release whose tag is not the package's version.

    python .ci/check_tag.py TAG [DIST_FILE ...]

TAG is the git tag (``v0.1.0``, or ``refs/tags/v0.1.0``). The version it names must
be ``autograd.__version__`` (read from src/autograd/__init__.py, or from the PKG-INFO
of an sdist given as DIST_FILE, without importing anything) and the version in the
name of every DIST_FILE (``arenagrad-0.1.0.tar.gz``, ``arenagrad-0.1.0-cp312-....whl``).
Exits 1 naming each mismatch. Run by the wheels workflow before it builds (sdist
job) and before it publishes (publish job), and by .ci/run.
"""
import os
import re
import sys
import tarfile

VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"', re.M)


def version_of_file(path):
    """The version in a distribution's file name."""
    name = os.path.basename(path)
    if name.endswith(".whl"):
        return name.split("-")[1]
    if name.endswith(".tar.gz"):
        return name[:-len(".tar.gz")].rsplit("-", 1)[1]
    raise SystemExit(f"check_tag: not a distribution: {path}")


def version_in_sdist(path):
    """``__version__`` in the sdist's src/autograd/__init__.py."""
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.name.endswith("/src/autograd/__init__.py"):
                return VERSION_LINE.search(tar.extractfile(member).read().decode()).group(1)
    raise SystemExit(f"check_tag: {path} has no src/autograd/__init__.py")


def main(tag, files):
    tag = tag.rsplit("/", 1)[-1]
    if not tag.startswith("v"):
        return f"check_tag: a release tag is v<version>, not {tag!r}"
    wanted = tag[1:]
    found = {}
    source = os.path.join(os.path.dirname(__file__), "..", "src", "autograd", "__init__.py")
    if os.path.exists(source):
        with open(source, encoding="utf-8") as f:
            found["autograd.__version__ (src/autograd/__init__.py)"] = \
                VERSION_LINE.search(f.read()).group(1)
    for path in files:
        found[os.path.basename(path)] = version_of_file(path)
        if path.endswith(".tar.gz"):
            found[f"autograd.__version__ in {os.path.basename(path)}"] = version_in_sdist(path)
    if not found:
        return "check_tag: nothing to compare the tag with"
    wrong = {what: v for what, v in found.items() if v != wanted}
    if wrong:
        return (f"check_tag: the tag {tag} is not the version of what would be published:\n"
                + "\n".join(f"  {what}: {v}" for what, v in wrong.items())
                + f"\nset __version__ = \"{wanted}\" in src/autograd/__init__.py, "
                "or tag the commit v<its version>")
    print(f"check_tag: {tag} is the version of {len(found)} item(s)")
    return None


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
