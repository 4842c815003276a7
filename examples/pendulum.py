"""A pendulum integrated for 10,000 steps, differentiated through every step, and
fitted to an observed trajectory by gradient descent.

    python examples/pendulum.py
    python examples/pendulum.py --steps 2000 --iterations 20

The pendulum: theta'' = -(g / L) sin(theta), from rest at angle theta0, integrated
by symplectic Euler (omega += -dt g / L sin(theta); theta += dt omega), written
once with ``autograd.math``, so the same function runs on floats and on Values.

1. The final angle's gradient with respect to the length L and the initial angle
   theta0, by one ``backward()`` through the whole integration, checked against
   central finite differences of the same function on floats.
2. The length fitted to an observed trajectory (angles sampled along a run with an
   unknown length, plus noise): the squared error is recorded once as a ``Graph``;
   each gradient-descent step sets L's data, replays ``forward()`` and
   ``backward()`` in C and moves L. The replayed loss is checked bit for bit
   against the same function evaluated on floats.

The script exits with status 1 if any check fails.
"""
import argparse
import math
import random
import sys
import time

import autograd.math as am
from autograd import Graph, Value

GRAVITY = 9.81


def simulate(length, theta0, steps, dt, every=0):
    """The final angle, and the angles after every `every` steps (if `every`)."""
    decay = dt * GRAVITY / length       # one division, outside the loop
    theta, omega = theta0, 0.0
    samples = []
    for k in range(1, steps + 1):
        omega = omega - decay * am.sin(theta)
        theta = theta + dt * omega
        if every and k % every == 0:
            samples.append(theta)
    return theta, samples


def squared_error(length, theta0, observed, steps, dt, every):
    _, samples = simulate(length, theta0, steps, dt, every)
    return sum((s - o) ** 2 for s, o in zip(samples, observed)) / len(observed)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="A pendulum's final angle differentiated through a long integration "
                    "(checked against finite differences), and its length fitted to an "
                    "observed trajectory by gradient descent with Graph replay.")
    parser.add_argument("--steps", type=int, default=10_000,
                        help="integration steps (default: 10000)")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in seconds (default: 10 / steps: 10 seconds in all)")
    parser.add_argument("--iterations", type=int, default=40,
                        help="gradient-descent steps of the fit (default: 40)")
    parser.add_argument("--learning-rate", type=float, default=0.02,
                        help="gradient-descent step size (default: 0.02)")
    parser.add_argument("--seed", type=int, default=1, help="the observation noise's seed")
    args = parser.parse_args(argv)
    if args.steps < 100:
        parser.error("--steps must be at least 100")
    steps = args.steps
    dt = args.dt if args.dt is not None else 10.0 / steps
    failures = []

    # 1. the gradient of the final angle, against central differences
    length0, theta0 = 1.5, 1.0
    L, th0 = Value(length0), Value(theta0)
    start = time.perf_counter()
    final, _ = simulate(L, th0, steps, dt)
    final.backward()
    eager = time.perf_counter() - start
    print(f"Pendulum: L = {length0} m, theta0 = {theta0} rad, {steps} steps of {dt:g} s")
    on_floats = simulate(length0, theta0, steps, dt)[0]
    print(f"  final angle {final.data:.12f} rad (floats: {on_floats:.12f}); "
          f"built and differentiated in {1e3 * eager:.1f} ms")
    if final.data != on_floats:
        failures.append("the final angle differs from the same code on floats")
    for name, ours, f, x in (
            ("d theta_final / d L", L.grad, lambda v: simulate(v, theta0, steps, dt)[0], length0),
            ("d theta_final / d theta0", th0.grad, lambda v: simulate(length0, v, steps, dt)[0],
             theta0)):
        h = 1e-6 * max(1.0, abs(x))
        central = (f(x + h) - f(x - h)) / (2 * h)
        err = abs(ours - central) / max(1.0, abs(central))
        print(f"  {name:26} autograd {ours:16.10f}, central difference {central:16.10f}, "
              f"rel. error {err:.1e}")
        if not err <= 1e-6:
            failures.append(f"{name}: autograd {ours!r}, central difference {central!r}")

    # 2. fit the length to an observed trajectory, by gradient descent on a replayed Graph
    true_length, every = 1.3, max(1, steps // 100)
    rng = random.Random(args.seed)
    _, clean = simulate(true_length, theta0, steps, dt, every)
    observed = [a + rng.gauss(0.0, 0.01) for a in clean]
    L = Value(length0)
    loss = squared_error(L, theta0, observed, steps, dt, every)
    graph = Graph(loss)
    print(f"\nFitting L to {len(observed)} noisy angles observed with L = {true_length} m, "
          f"from L = {length0} m: a Graph of {len(graph)} nodes, replayed")
    start = time.perf_counter()
    for it in range(args.iterations + 1):
        if it:
            L.data -= args.learning_rate * L.grad
            graph.forward()
        L.grad = 0.0
        graph.backward()
        if it < 5 or it % 10 == 0 or it == args.iterations:
            print(f"  step {it:3}: L = {L.data:.8f} m, loss {loss.data:.3e}, "
                  f"dloss/dL {L.grad:+.3e}")
    replay = (time.perf_counter() - start) / (args.iterations + 1)
    print(f"  {1e3 * replay:.2f} ms per step (forward and backward replayed)")
    expected_loss = squared_error(L.data, theta0, observed, steps, dt, every)
    if loss.data != expected_loss:
        failures.append(f"the replayed loss {loss.data!r} is not the floats' {expected_loss!r}")
    if args.iterations >= 20 and not abs(L.data - true_length) < 0.01:
        failures.append(f"the fit ended at L = {L.data}, not within 0.01 of {true_length}")

    if failures:
        print("FAILED:", file=sys.stderr)
        for line in failures:
            print("  " + line, file=sys.stderr)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
