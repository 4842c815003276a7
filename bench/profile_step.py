"""Run ours' eager demo step in a loop, for a profiler to look at (see PROFILE.md).

    python bench/profile_step.py --steps 2000                  # plain timing
    py-spy record --native -r 997 -f raw -o /tmp/step.txt -- python bench/profile_step.py
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python bench/profile_step.py --steps 20 --warmup 2
    perf stat -e instructions,cycles python bench/profile_step.py --steps 2000

--transformer profiles one training step of examples/tinygpt.py instead (the transformer
workload's step, on ours).

--phase limits each step to one phase (forward, backward, free) so that a profile of
the whole process is a profile of that phase (the others run once, untimed, to set up).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engines as E  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--replay", action="store_true", help="the Graph replay step instead")
    ap.add_argument("--phase", choices=["step", "forward", "backward"], default="step")
    ap.add_argument("--transformer", action="store_true",
                    help="examples/tinygpt.py's training step instead of the demo's")
    args = ap.parse_args()
    if args.transformer:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "examples"))
        import tinygpt
        from workloads.transformer import SEED, WORD
        tok = tinygpt.Tokenizer(tinygpt.load_words())
        model = tinygpt.TinyGPT(tok.vocab_size, seed=SEED)
        opt = tinygpt.Adam(model.parameters(), steps=10**9)
        ids = tok.encode(WORD)
        return loop(lambda: tinygpt.train_step(model, opt, ids), args, "transformer step")
    X, y = E.moons()
    demo = E.make_demo("ours-replay" if args.replay else "ours", X, y)
    if args.phase == "step":
        fn = demo.step
    elif args.phase == "forward":
        def fn():
            E.demo_loss(demo.Value, demo.model, X, y)     # built and dropped (free included)
    else:
        total = E.demo_loss(demo.Value, demo.model, X, y)
        fn = total.backward
    loop(fn, args, f"{args.phase}{' (replay)' if args.replay else ''}")


def loop(fn, args, what):
    for _ in range(args.warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        fn()
    dt = (time.perf_counter() - t0) / args.steps
    print(f"{what}: {dt * 1e3:.3f} ms per call, {args.steps} calls", file=sys.stderr)


if __name__ == "__main__":
    main()
