"""examples/greeks.py and examples/pendulum.py (issue 16): they run at small sizes
and their own checks pass (closed-form Greeks, finite differences, bit-identity of
replayed values with the same code on floats, the fit's convergence); a failing
check makes them exit with status 1; ``--help`` prints usage without running."""
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                          capture_output=True, text=True, timeout=300)


def test_greeks_checks_pass():
    done = run("greeks.py", "--options", "30", "--scenarios", "8")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "all checks passed" in out
    for greek in ("delta", "vega", "rho", "theta", "gamma", "vanna", "volga"):
        assert f"  {greek} " in out
    assert "A portfolio of 30 calls and puts" in out and "scenario    7" in out
    checks = int(out.split(" checks, worst relative error")[0].rsplit("\n", 1)[1])
    # one option: 7 Greeks, the price, symmetry; the book: 3 Jacobian entries per
    # option; per scenario: value, delta, rho, gamma, replayed delta and 3 per option
    assert checks == 9 + 3 * 30 + 8 * (5 + 3 * 30)


def test_greeks_fails_loudly():
    done = run("greeks.py", "--options", "3", "--scenarios", "2", "--tolerance", "1e-18")
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "closed form" in done.stderr


def test_pendulum_checks_pass():
    done = run("pendulum.py", "--steps", "1000", "--iterations", "25")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "all checks passed" in out
    assert "d theta_final / d L" in out and "d theta_final / d theta0" in out
    last = out.split("step  25: L = ")[1]
    assert abs(float(last.split(" m")[0]) - 1.3) < 1e-3     # the true 1.3, within the noise


def test_pendulum_fails_loudly():
    # a step size so large that gradient descent leaves the basin of L = 1.3
    done = run("pendulum.py", "--steps", "500", "--iterations", "20", "--learning-rate", "0.5")
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "the fit ended at" in done.stderr


@pytest.mark.parametrize("script", ["greeks.py", "pendulum.py"])
def test_help_prints_usage_and_runs_nothing(script):
    done = run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    for printed_by_a_run in ("checks passed", "Pendulum:", "European call", "Fitting"):
        assert printed_by_a_run not in done.stdout
