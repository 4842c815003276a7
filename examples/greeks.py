"""The Black-Scholes price of European options and their Greeks, by automatic
differentiation, checked against the closed-form Greeks.

    python examples/greeks.py                  # one option, then a portfolio of 200
    python examples/greeks.py --options 2000 --scenarios 100

1. One option: the price is written once with ``autograd.math`` (the normal CDF
   from ``erf``, ``exp``, ``log``, ``sqrt``); one ``backward()`` gives delta, vega,
   rho and theta, ``hessian`` gives gamma, vanna and volga. Each is compared with
   its textbook formula.
2. A portfolio of calls and puts on one underlying, each with its own volatility
   and maturity: its value is recorded once as a ``Graph`` and replayed over
   market scenarios (the spot moves, time passes): ``forward()`` and ``backward()``
   in C, with no graph rebuilt. The gradient of its delta (``grad(...,
   create_graph=True)``), recorded and replayed too, gives gamma and the vannas.
   ``autograd.jacobian`` gives every option's own delta, rho and vega at once.

The script exits with status 1 if any check fails.
"""
import argparse
import math
import random
import sys
import time

import autograd.math as am
from autograd import Graph, Value, grad, jacobian
from autograd.functional import hessian

SQRT2 = math.sqrt(2.0)


# -----------------------------------------------------------------------------
# The model, written once: it runs on floats (math's results) and on Values
# -----------------------------------------------------------------------------

def normal_cdf(x):
    return 0.5 * (1.0 + am.erf(x / SQRT2))


def normal_pdf(x):
    return am.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(spot, strike, maturity, rate, vol, call=True):
    """The price of a European call (or put) on a non-dividend-paying stock."""
    vol_sqrt_t = vol * am.sqrt(maturity)
    d1 = (am.log(spot / strike) + (rate + 0.5 * vol * vol) * maturity) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    discounted_strike = strike * am.exp(-rate * maturity)
    if call:
        return spot * normal_cdf(d1) - discounted_strike * normal_cdf(d2)
    return discounted_strike * normal_cdf(-d2) - spot * normal_cdf(-d1)


def closed_form_greeks(spot, strike, maturity, rate, vol, call=True):
    """The textbook Greeks (floats). Theta is the price's change as time passes:
    minus its derivative with respect to the time to maturity."""
    sqrt_t = math.sqrt(maturity)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * maturity) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    pdf = normal_pdf(d1)
    discounted_strike = strike * math.exp(-rate * maturity)
    sign = 1.0 if call else -1.0
    n_d1, n_d2 = normal_cdf(sign * d1), normal_cdf(sign * d2)
    vega = spot * pdf * sqrt_t
    return {
        "delta": sign * n_d1,
        "vega": vega,
        "rho": sign * strike * maturity * math.exp(-rate * maturity) * n_d2,
        "theta": -spot * pdf * vol / (2 * sqrt_t) - sign * rate * discounted_strike * n_d2,
        "gamma": pdf / (spot * vol * sqrt_t),
        "vanna": -pdf * d2 / vol,
        "volga": vega * d1 * d2 / vol,
    }


# -----------------------------------------------------------------------------
# Checks
# -----------------------------------------------------------------------------

class Checks:
    """Counts comparisons; remembers the worst relative error and any failure."""

    def __init__(self, tolerance):
        self.tolerance = tolerance
        self.count = 0
        self.worst = 0.0
        self.failures = []

    def compare(self, what, ours, expected, scale=1.0):
        """|ours - expected| <= tolerance * max(|expected|, scale)."""
        err = abs(ours - expected) / max(abs(expected), scale)
        self.count += 1
        self.worst = max(self.worst, err)
        if not err <= self.tolerance:       # also fails on nan
            self.failures.append(f"{what}: autograd {ours!r}, closed form {expected!r}")
        return err

    def same_bits(self, what, ours, expected):
        self.count += 1
        if ours != expected:
            self.failures.append(f"{what}: {ours!r} is not {expected!r} bit for bit")


# -----------------------------------------------------------------------------
# 1. One option
# -----------------------------------------------------------------------------

def one_option(checks):
    spot, strike, maturity, rate, vol = 100.0, 105.0, 0.75, 0.03, 0.22
    S, T, r, sigma = Value(spot), Value(maturity), Value(rate), Value(vol)
    price = black_scholes(S, strike, T, r, sigma)
    price.backward()
    H = hessian(lambda s, v: black_scholes(s, strike, maturity, rate, v), [spot, vol])
    ours = {"delta": S.grad, "vega": sigma.grad, "rho": r.grad, "theta": -T.grad,
            "gamma": H[0][0], "vanna": H[0][1], "volga": H[1][1]}
    expected = closed_form_greeks(spot, strike, maturity, rate, vol)
    print(f"A European call: spot {spot}, strike {strike}, {maturity} years, "
          f"rate {rate}, volatility {vol}")
    print(f"  price {price.data:.10f}  (the same code on floats: "
          f"{black_scholes(spot, strike, maturity, rate, vol):.10f})")
    checks.same_bits("price", price.data, black_scholes(spot, strike, maturity, rate, vol))
    print(f"  {'Greek':6} {'autograd':>20} {'closed form':>20} {'rel. error':>11}")
    for name in ours:
        err = checks.compare(name, ours[name], expected[name])
        print(f"  {name:6} {ours[name]:20.14f} {expected[name]:20.14f} {err:11.1e}")
    # H is symmetric: vanna is d2/dS dsigma either way
    checks.compare("vanna (symmetry)", H[1][0], H[0][1])


# -----------------------------------------------------------------------------
# 2. A portfolio through Graph replay
# -----------------------------------------------------------------------------

def make_book(n_options, seed):
    rng = random.Random(seed)
    return [{"strike": rng.uniform(70.0, 130.0), "maturity": rng.uniform(0.1, 2.0),
             "vol": rng.uniform(0.1, 0.5), "call": rng.random() < 0.5,
             "quantity": rng.choice((-1, 1)) * rng.randint(1, 20)} for _ in range(n_options)]


def portfolio(checks, n_options, n_scenarios, seed):
    spot0, rate0 = 100.0, 0.02
    book = make_book(n_options, seed)
    S, r = Value(spot0), Value(rate0)
    sigmas = [Value(o["vol"]) for o in book]
    Ts = [Value(o["maturity"]) for o in book]
    prices = [black_scholes(S, o["strike"], T, r, sigma, o["call"])
              for o, T, sigma in zip(book, Ts, sigmas)]
    value = sum(o["quantity"] * p for o, p in zip(book, prices))
    (delta,) = grad(value, [S], create_graph=True)
    leaves = [S, r] + sigmas + Ts
    value_graph, delta_graph = Graph(value), Graph(delta)
    print(f"\nA portfolio of {n_options} calls and puts: {len(value_graph)} nodes "
          f"(value), {len(delta_graph)} (value and delta); {n_scenarios} scenarios "
          "replayed")

    # every option's own delta, rho and vega: one reverse sweep per option
    J = jacobian(prices, [S, r] + sigmas)
    for k, o in enumerate(book):
        cf = closed_form_greeks(spot0, o["strike"], o["maturity"], rate0, o["vol"], o["call"])
        checks.compare(f"jacobian: option {k} delta", J[k][0], cf["delta"])
        checks.compare(f"jacobian: option {k} rho", J[k][1], cf["rho"])
        checks.compare(f"jacobian: option {k} vega", J[k][2 + k], cf["vega"])

    rng = random.Random(seed + 1)
    replay_seconds = 0.0
    for scenario in range(n_scenarios):
        spot = spot0 * math.exp(rng.gauss(0.0, 0.1))
        days = scenario % 30
        S.data = spot
        for T, o in zip(Ts, book):
            T.data = o["maturity"] - days / 365.0
        start = time.perf_counter()
        value_graph.forward()
        for x in leaves:
            x.grad = 0.0
        value_graph.backward()
        first = {"delta": S.grad, "rho": r.grad, "vega": [s.grad for s in sigmas],
                 "theta": [-T.grad for T in Ts]}
        delta_graph.forward()
        for x in leaves:
            x.grad = 0.0
        delta_graph.backward()
        replay_seconds += time.perf_counter() - start
        gamma, vannas = S.grad, [s.grad for s in sigmas]

        # the closed forms, option by option
        cfs = [closed_form_greeks(spot, o["strike"], T.data, rate0, o["vol"], o["call"])
               for o, T in zip(book, Ts)]
        qs = [o["quantity"] for o in book]
        book_value = sum(q * black_scholes(spot, o["strike"], T.data, rate0, o["vol"], o["call"])
                         for q, o, T in zip(qs, book, Ts))
        checks.same_bits(f"scenario {scenario}: value", value.data, book_value)
        scale = sum(abs(q) * (abs(cf["delta"]) + 1.0) for q, cf in zip(qs, cfs))
        checks.compare(f"scenario {scenario}: delta", first["delta"],
                       sum(q * cf["delta"] for q, cf in zip(qs, cfs)), scale)
        checks.compare(f"scenario {scenario}: rho", first["rho"],
                       sum(q * cf["rho"] for q, cf in zip(qs, cfs)), scale)
        checks.compare(f"scenario {scenario}: gamma", gamma,
                       sum(q * cf["gamma"] for q, cf in zip(qs, cfs)), scale / spot0)
        checks.compare(f"scenario {scenario}: delta (replayed delta graph)", delta.data,
                       first["delta"], scale)
        for k, (q, cf) in enumerate(zip(qs, cfs)):
            checks.compare(f"scenario {scenario}: option {k} vega", first["vega"][k],
                           q * cf["vega"])
            checks.compare(f"scenario {scenario}: option {k} theta", first["theta"][k],
                           q * cf["theta"])
            checks.compare(f"scenario {scenario}: option {k} vanna", vannas[k],
                           q * cf["vanna"])
        if scenario < 3 or scenario == n_scenarios - 1:
            print(f"  scenario {scenario:4}: spot {spot:8.3f}, {days:2} days on: value "
                  f"{value.data:14.6f}, delta {first['delta']:12.6f}, gamma {gamma:10.6f}, "
                  f"rho {first['rho']:14.6f}")
        elif scenario == 3:
            print("  ...")
    print(f"  replay: {1e3 * replay_seconds / max(n_scenarios, 1):.3f} ms per scenario "
          "(value and all first derivatives, delta and its gradient)")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Black-Scholes Greeks by automatic differentiation (backward(), "
                    "hessian, jacobian, Graph replay), checked against the closed forms.")
    parser.add_argument("--options", type=int, default=200, metavar="N",
                        help="options in the portfolio (default: 200)")
    parser.add_argument("--scenarios", type=int, default=50, metavar="M",
                        help="market scenarios replayed (default: 50)")
    parser.add_argument("--seed", type=int, default=1, help="the portfolio's seed")
    parser.add_argument("--tolerance", type=float, default=1e-10,
                        help="largest relative error allowed (default: 1e-10)")
    args = parser.parse_args(argv)
    if args.options < 1 or args.scenarios < 0:
        parser.error("--options must be at least 1 and --scenarios at least 0")
    checks = Checks(args.tolerance)
    one_option(checks)
    portfolio(checks, args.options, args.scenarios, args.seed)
    print(f"\n{checks.count} checks, worst relative error {checks.worst:.1e} "
          f"(tolerance {args.tolerance:.0e})")
    if checks.failures:
        print(f"FAILED: {len(checks.failures)} checks, the first ones:", file=sys.stderr)
        for line in checks.failures[:10]:
            print("  " + line, file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
