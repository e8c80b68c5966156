"""Request-level DRAM controller speed: requests simulated per second.

    .venv/bin/python benchmarks/bench_dram.py [--requests N] [--repeat R] [--json PATH]

For each standard (DDR4, DDR5, LPDDR5, HBM2E, HBM3) x pattern (stream, random,
mix = random with one write in three), all requests arriving at cycle 0 (a
saturating source), default controller (FR-FCFS, open page, RoBaRaCoCh, all-bank
refresh). Each figure is the best of ``--repeat`` runs of ``simulate_requests``
without the protocol checker, after a warm-up; the checker's own cost is timed
separately on DDR4 random, and the first call (numba compile or cache load) is
reported on its own. Also prints the achieved bandwidth, which is a simulator
result, not a speed, and times reading a 1 M-line trace in each format (best of
``--repeat``, after a warm-up read).

Prints a table and writes ``benchmarks/results/dram.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from hw_models.fileio import atomic_write_text

DEVICES = ("DDR4_3200", "DDR5_4800", "LPDDR5_6400", "HBM2E", "HBM3")
PATTERNS = ("stream", "random", "mix")


def _first_call_s() -> float:
    """Seconds for the first simulation in a fresh process (compile or cache load)."""
    code = (
        "import time; t=time.perf_counter();"
        "from hw_models import load_dram_device;"
        "from memsim.dram import simulate_requests, traffic;"
        "d=load_dram_device('DDR4_3200');"
        "simulate_requests(d, traffic.random_uniform(d, 100));"
        "print(time.perf_counter()-t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    """Run the benchmark; print a table; write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--json", type=Path, default=Path(__file__).resolve().parent / "results" / "dram.json"
    )
    args = ap.parse_args()

    first = _first_call_s()

    from hw_models import load_dram_device
    from memsim.dram import simulate_requests, traffic

    rows = []
    for name in DEVICES:
        dev = load_dram_device(name)
        simulate_requests(dev, traffic.random_uniform(dev, 1000), check=False)  # warm-up
        for pattern in PATTERNS:
            trace = traffic.PATTERNS.create(pattern, dev, args.requests, seed=1)
            best = float("inf")
            stats = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                stats = simulate_requests(dev, trace, check=False)
                best = min(best, time.perf_counter() - t0)
            assert stats is not None
            rows.append(
                {
                    "device": name,
                    "pattern": pattern,
                    "requests": args.requests,
                    "seconds": best,
                    "requests_per_s": args.requests / best,
                    "bandwidth_gbps": stats.bandwidth_gbps,
                    "peak_fraction": stats.peak_fraction,
                }
            )
            print(
                f"{name:12s} {pattern:7s} {args.requests / best / 1e6:6.2f} M req/s "
                f"({best:.3f} s)  achieved {stats.bandwidth_gbps:7.1f} GB/s "
                f"({100 * stats.peak_fraction:5.1f} % of peak)",
                flush=True,
            )

    dev = load_dram_device("DDR4_3200")
    n_chk = min(args.requests, 200_000)
    trace = traffic.random_uniform(dev, n_chk, seed=1)
    t0 = time.perf_counter()
    simulate_requests(dev, trace, check=True)
    with_check = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate_requests(dev, trace, check=False)
    without = time.perf_counter() - t0

    import tempfile

    import numpy as np

    from memsim.dram.trace_scan import scan
    from workloads.formats.dram_traces import FORMATS, read_trace, write_trace

    parse: dict[str, float] = {}
    rng = np.random.default_rng(0)
    n_tr = 1_000_000
    addr = rng.integers(0, 1 << 34, n_tr) * 64
    cyc = np.cumsum(rng.integers(0, 5, n_tr))
    wr = rng.random(n_tr) < 0.3
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            path = write_trace(
                Path(tmp) / f"t.{fmt}", addresses=addr, is_write=wr, cycles=cyc, format=fmt
            )
            read_trace(path, format=fmt, scanner=scan)  # as RequestTrace.from_file reads
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                read_trace(path, format=fmt, scanner=scan)
                best = min(best, time.perf_counter() - t0)
            parse[fmt] = best

    print()
    print("1 M-line trace read: " + ", ".join(f"{fmt} {sec:.3f} s" for fmt, sec in parse.items()))
    print(f"first call in a fresh process (numba compile or cache load): {first:.2f} s")
    print(
        f"DDR4 random, {n_chk} requests: {n_chk / without / 1e6:.2f} M req/s unchecked, "
        f"{n_chk / with_check / 1e6:.2f} M req/s with the protocol checker"
    )
    result = {
        "benchmark": "dram",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "first_call_s": first,
        "checker": {
            "requests": n_chk,
            "unchecked_requests_per_s": n_chk / without,
            "checked_requests_per_s": n_chk / with_check,
        },
        "trace_read_1m_lines_s": parse,
        "results": rows,
    }
    atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
