"""Memory per op of a large run: Llama-2-70B TP8 generation on dgx_h100.

    .venv/bin/python benchmarks/bench_memory.py [--gen-len 512] [--json FILE.json]

Each (fidelity, detail) runs in a fresh process: the graph is built first
(``generate(llama2_70b, tp=8, batch=8, prompt_len=512, gen_len=...)``, about 1,130 ops
per decode step; ``--gen-len 2048`` is the 2.3 M-op run of issue 9), then
``simulate()`` runs while a thread samples the process's resident set every 10 ms
(``/proc/self/statm``; Linux). Figures per op: ``peak`` is the largest growth of the
resident set over its level before the call (the graph fitted to the system, compiled
arrays, plan, schedule, result: everything ``simulate()`` holds at once), ``after``
its growth once the call returned and the result is still held (an upper bound of what
the result keeps: the allocator may keep freed pages). The graph built by the caller
is not counted. ``--traced`` measures with ``tracemalloc`` instead (exact Python and
numpy bytes, but about 20 times slower: use a small ``--gen-len``). Target of issue 9:
at most 300 bytes per op.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from hw_models.fileio import atomic_write_text

CASES = (("analytic", "full"), ("analytic", "summary"), ("event", "full"), ("event", "summary"))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _one(fidelity: str, detail: str, gen_len: int, traced: bool) -> dict[str, Any]:
    """Measure one (fidelity, detail) in this process."""
    import gc
    import threading
    import tracemalloc

    import memsim
    from workloads import generate, load_model

    graph = generate(load_model("llama2_70b"), tp=8, batch=8, prompt_len=512, gen_len=gen_len)
    n = len(graph.ops)
    gc.collect()
    base = _rss()
    top = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            top[0] = max(top[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    if traced:
        tracemalloc.start(1)
    else:
        sampler.start()
    t0 = time.perf_counter()
    result = memsim.simulate("dgx_h100", graph, fidelity=fidelity, detail=detail)
    seconds = time.perf_counter() - t0
    gc.collect()
    if traced:
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    else:
        done.set()
        sampler.join()
        peak = max(top[0], _rss()) - base
        after = _rss() - base
    assert result.makespan_s > 0
    return {
        "case": f"llama2_70b tp8 b8 p512 g{gen_len}",
        "ops": n,
        "fidelity": fidelity,
        "detail": detail,
        "measure": "tracemalloc" if traced else "rss",
        "seconds": seconds,
        "peak_bytes_per_op": peak / n,
        "after_bytes_per_op": after / n,
    }


def main() -> None:
    """Run every case in a fresh process; print (and optionally write) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gen-len", type=int, default=512)
    ap.add_argument("--json", default=None)
    ap.add_argument("--traced", action="store_true", help="tracemalloc instead of RSS")
    ap.add_argument("--one", nargs=2, metavar=("FIDELITY", "DETAIL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], args.one[1], args.gen_len, args.traced)))
        return
    rows = []
    for fidelity, detail in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--gen-len", str(args.gen_len), "--one", fidelity, detail]
            + (["--traced"] if args.traced else []),
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['case']:30s} {r['ops']:8d} {fidelity:8s} {detail:8s} "
            f"peak {r['peak_bytes_per_op']:6.0f} B/op  after {r['after_bytes_per_op']:6.0f} B/op"
            f"  ({r['measure']}, {r['seconds']:.1f} s)",
            flush=True,
        )
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
