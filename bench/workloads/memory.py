"""Bytes per graph node and RSS over training steps, each in a fresh process."""
import engines as E
from harness import fmt_n, table, verdict

NAME = "memory"
ORDER = 70
TARGET_BYTES_PER_NODE = 80.0

def run(bench):
    bench.log("5. memory (fresh subprocesses)")
    n = bench.cfg["mem_nodes"]
    from autograd._core import arena_stats
    slot_bytes = arena_stats()["node_bytes"]
    rows = []
    bytes_per_node = {}
    for k in bench.keys("ours", "micrograd", "torch-scalar"):
        for shape in ("chain", "dot"):
            r = bench.worker("graph", k, shape, str(n))
            if "error" in r:
                rows.append([E.LABELS[k], shape, "failed: " + r["error"], "", "", ""])
                continue
            bpn = r["build_bytes"] / r["nodes"]
            bytes_per_node[(k, shape)] = bpn
            if shape == "dot":
                bench.summary.setdefault(k, {})["bytes"] = (r["nodes"], bpn)
            extra = ""
            if k == "ours":
                extra = (f"arena live {r['arena_live']:,}; Graph(root) adds "
                         f"{r['graph_record_bytes'] / r['nodes']:.1f} B/node")
            rows.append([E.LABELS[k], shape, f"{r['nodes']:,}", f"{bpn:,.1f}",
                         f"{r['after_backward_bytes'] / r['nodes']:,.1f}", extra])
    body = (f"RSS growth per graph node after building a {fmt_n(n)}-node graph, each in a "
            "fresh process (`bench/memworker.py`; /proc/self/statm), and after one backward "
            "(micrograd's grads become float objects then). **chain** holds one Python handle (the root); **dot** keeps its "
            "leaves' handles alive in two lists, as a model's parameters and inputs are. "
            f"Ours' arena takes {slot_bytes} B per slot (`arena_stats()['node_bytes']`), "
            "allocated by doubling.\n\n"
            + table(["engine", "shape", "nodes", "bytes / node", "after backward",
                     "notes"], rows))
    # RSS over training steps
    steps = bench.cfg["rss_steps"]
    srows = []
    flat = {}
    for k in bench.keys("ours", "ours-replay"):
        r = bench.worker("steps", k, str(steps))
        if "error" in r:
            srows.append([E.LABELS[k], "failed: " + r["error"], "", "", "", ""])
            continue
        rss = r["rss"]
        i0 = min(10, len(rss) - 1)
        growth = rss[-1] - rss[i0]
        spread = max(rss[i0:]) - min(rss[i0:])
        lives = sorted(set(r["live"][i0:]))
        flat[k] = growth
        srows.append([E.LABELS[k], f"{rss[0] / 2**20:.1f} MiB", f"{rss[i0] / 2**20:.2f} MiB",
                      f"{rss[-1] / 2**20:.2f} MiB", f"{growth / 1024:+.0f} KiB",
                      ", ".join(f"{x:,}" for x in lives)])
    body += (f"\n\nRSS over {steps} training steps of the demo (fresh process each; the "
             f"live-node count after each step is the arena's own count: parameters only "
             f"means nothing leaks).\n\n"
             + table(["engine", "after step 1", f"after step {i0 + 1}",
                      f"after step {steps}", f"growth {i0 + 1}->{steps}",
                      f"live nodes after steps {i0 + 1}..{steps}"], srows))
    bench.section("5. Memory", body)
    bpn = [v for (k, s), v in bytes_per_node.items() if k == "ours"]
    if bpn:
        worst = max(bpn)
        detail = ", ".join(f"{s} {v:.1f}" for (k, s), v in bytes_per_node.items()
                           if k == "ours")
        bench.check(f"bytes per node, {fmt_n(n)}-node graph", "<= 80 B",
                    f"max {worst:.1f} B ({detail})", verdict(worst, TARGET_BYTES_PER_NODE, False))
        ours, mg = bytes_per_node.get(("ours", "dot")), bytes_per_node.get(("micrograd", "dot"))
        if ours and mg:
            bench.headline(f"memory: {ours:.0f} bytes a graph node, {mg / ours:.1f}x less than "
                           f"micrograd 0.1.0 ({mg:.0f} bytes; {fmt_n(n)} nodes)")
    if "ours" in flat:
        g = flat["ours"]
        # flat: less growth than a tenth of one step's graph (65,818 nodes x 48 B)
        limit = 0.1 * 65818 * 48
        bench.check(f"flat RSS over {steps} eager steps", "growth < 316 KiB",
                    f"{g / 1024:+.0f} KiB", "PASS" if g < limit else "FAIL")
