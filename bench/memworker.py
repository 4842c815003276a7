"""Memory measurements, each in a fresh process (run by bench/run.py; prints one JSON line).

    python bench/memworker.py graph ENGINE SHAPE N   # RSS per node of an N-node graph
    python bench/memworker.py steps ENGINE STEPS     # RSS, live nodes and time of each demo step

RSS is read from /proc/self/statm (resident pages); peaks from getrusage.
"""
import gc
import json
import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engines as E  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def live():
    from autograd._core import arena_stats
    return arena_stats()["live"]


def graph(key, shape, n):
    eng = E.Scalar(key)
    gc.disable()                       # nothing here is garbage; keep the collector out
    # warm up: lazy imports and first-use allocations must not count
    for warm in (E.chain(eng, 1000), E.dot(*E.dot_leaves(eng, 1000))):
        eng.backward(warm)
    del warm
    gc.collect()
    r0, p0 = rss(), peak()
    if shape == "chain":
        root = E.chain(eng, n)
        nodes = E.SHAPES["chain"][1](n)
    elif shape == "dot":
        ws, xs = E.dot_leaves(eng, n)     # the leaves' handles stay alive in lists
        root = E.dot(ws, xs)
        nodes = E.dot_nodes(n)
    else:
        raise ValueError(shape)
    r1 = rss()
    out = {"engine": key, "shape": shape, "nodes": nodes, "rss_before": r0,
           "build_bytes": r1 - r0}
    eng.backward(root)
    r2 = rss()
    out["after_backward_bytes"] = r2 - r0
    out["peak_bytes"] = max(peak(), r2) - max(p0, r0)
    if key == "ours":
        from autograd import Graph
        out["arena_live"] = live()
        g = Graph(root)
        out["graph_record_bytes"] = rss() - r2
        del g
    return out


def steps(key, n_steps):
    X, y = E.moons()
    demo = E.make_demo(key, X, y)
    gc.collect()
    out = {"engine": key, "rss": [], "live": [], "seconds": []}
    pc = time.perf_counter
    for _ in range(n_steps):
        t0 = pc()
        demo.step()
        out["seconds"].append(pc() - t0)
        out["rss"].append(rss())
        out["live"].append(live())
    return out


def main():
    mode = sys.argv[1]
    result = {}

    def run():
        try:
            if mode == "graph":
                result.update(graph(sys.argv[2], sys.argv[3], int(float(sys.argv[4]))))
            elif mode == "steps":
                result.update(steps(sys.argv[2], int(sys.argv[3])))
            else:
                raise SystemExit(f"unknown mode {mode}")
        except BaseException as e:      # reported, not raised: the parent prints it
            result["error"] = f"{type(e).__name__}: {e}"

    # micrograd's topological sort is recursive: deep graphs need a big stack
    sys.setrecursionlimit(10**8)
    threading.stack_size(1 << 30)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    print(json.dumps(result), flush=True)
    os._exit(0)                         # skip tearing down a million-object graph


if __name__ == "__main__":
    main()
