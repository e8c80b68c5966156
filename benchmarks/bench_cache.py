"""Cache simulator speed: accesses per second per policy, one level and two levels.

    .venv/bin/python benchmarks/bench_cache.py [--accesses N] [--repeat R] [--json PATH]

Prints a table and writes ``benchmarks/results/cache.json``. Each figure is the
best of ``--repeat`` timed runs after a warm-up (numba compilation excluded).
Streams: ``random`` over 4 MiB (mostly misses in a 32 KiB L1) and ``stream``
(a loop over 4 MiB: every L1 access misses). Also reports the hit rates, which
are simulator results, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from hw_models import CacheSpec
from hw_models.fileio import atomic_write_text
from memsim.cache import CacheHierarchy, replacement_policies, synthetic_stream

L1 = {"capacity_bytes": 32 * 1024, "line_bytes": 64, "ways": 8}
L2 = {"capacity_bytes": 1024 * 1024, "line_bytes": 64, "ways": 16}


def _time(
    levels: list[CacheSpec], addrs: np.ndarray, writes: np.ndarray, repeat: int
) -> tuple[float, list[float]]:
    CacheHierarchy(levels).access(addrs[:10_000], writes[:10_000])  # warm-up / compile
    best = float("inf")
    rates: list[float] = []
    for _ in range(repeat):
        h = CacheHierarchy(levels)
        t0 = time.perf_counter()
        res = h.access(addrs, writes)
        best = min(best, time.perf_counter() - t0)
        rates = [lv.hit_rate for lv in res.levels]
    return addrs.size / best, rates


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accesses", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "cache.json"))
    args = ap.parse_args()
    rows = []
    for pattern in ("random", "stream"):
        addrs, writes = synthetic_stream(
            pattern, args.accesses, footprint_bytes=4 * 1024 * 1024, write_fraction=0.3, seed=1
        )
        for policy in replacement_policies.names():
            for depth in (1, 2):
                specs = [CacheSpec(**L1, policy=policy)]
                if depth == 2:
                    specs.append(CacheSpec(**L2, policy=policy))
                rate, hit_rates = _time(specs, addrs, writes, args.repeat)
                rows.append(
                    {
                        "pattern": pattern,
                        "policy": policy,
                        "levels": depth,
                        "accesses": args.accesses,
                        "accesses_per_s": rate,
                        "hit_rates": hit_rates,
                    }
                )
                hr = " / ".join(f"{h:.1%}" for h in hit_rates)
                print(
                    f"{pattern:7s} {policy:7s} {depth} level(s) {rate / 1e6:7.1f} M acc/s  hit {hr}"
                )
    out = {
        "benchmark": "cache",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "l1": L1,
        "l2": L2,
        "rows": rows,
    }
    path = atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
