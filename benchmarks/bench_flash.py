"""Flash model: read throughput curves (request size x queue depth) per preset, and simulator speed.

    .venv/bin/python benchmarks/bench_flash.py [--requests N] [--json PATH]

Prints tables and writes ``benchmarks/results/flash.json``. Throughputs are
model results (what the simulated device delivers); the speed section is the
simulator's own wall-clock rate (best of 3, after a warm-up), in simulated NAND
pages per second for reads and host unit (4 KiB) writes per second for the FTL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hw_models.fileio import atomic_write_text
from hw_models.flash_presets import flash_device_names, load_flash_device
from memsim.flash import read_throughput_curve, simulate_flash_reads, simulate_flash_writes

SIZES = [4096, 16384, 65536, 262144, 1048576]
QDS = [1, 2, 4, 8, 16, 32, 64]


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "flash.json"))
    args = ap.parse_args()
    out: dict[str, object] = {
        "benchmark": "flash",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "requests": args.requests,
    }
    curves: dict[str, Any] = {}
    for name in flash_device_names():
        dev = load_flash_device(name)
        df = read_throughput_curve(dev, SIZES, QDS, requests=args.requests, pattern="random")
        curves[name] = df.to_dict(orient="records")
        table = df.pivot(
            index="request_bytes", columns="queue_depth", values="throughput_bytes_per_s"
        )
        peak = dev.geometry.peak_read_bandwidth_bytes_per_s
        print(f"\n{name}: random-read throughput, GB/s (peak {peak / 1e9:.2f} GB/s)")
        print("size \\ QD " + "".join(f"{q:>8d}" for q in QDS))
        for size, row in table.iterrows():
            print(f"{int(str(size)) // 1024:>6d} KiB" + "".join(f"{v / 1e9:8.3f}" for v in row))
        for wsize in (4096, 16384):
            w = simulate_flash_writes(dev, request_bytes=wsize, requests=50000, pattern="random")
            print(
                f"random {wsize // 1024} KiB writes (preconditioned, "
                f"{w.map_unit_bytes // 1024} KiB map unit): WA {w.write_amplification:.2f} "
                f"(greedy estimate {w.greedy_wa_estimate:.2f}), RMW {w.rmw_factor:.2f}, "
                f"{w.throughput_bytes_per_s / 1e9:.2f} GB/s"
            )
            curves[f"{name}:write:{wsize}"] = w.to_dict()
    out["curves"] = curves

    dev = load_flash_device("samsung_pm9a3_7t68")
    speed: list[dict[str, Any]] = []
    for size, qd, n in ((4096, 32, 200_000), (1048576, 32, 5000)):
        pages = n * -(-size // int(dev.geometry.page_bytes))
        t = _best(
            partial(simulate_flash_reads, dev, request_bytes=size, queue_depth=qd, requests=n)
        )
        speed.append(
            {
                "kind": "read",
                "request_bytes": size,
                "queue_depth": qd,
                "requests": n,
                "seconds": t,
                "pages_per_s": pages / t,
                "requests_per_s": n / t,
            }
        )
    from hw_models.flash import FlashGeometry

    small = FlashGeometry(
        channels=2,
        dies_per_channel=2,
        page_bytes=4096,
        pages_per_block=64,
        blocks_per_plane=256,
        tR_s=50e-6,
        tPROG_s=500e-6,
        tERASE_s=3e-3,
        channel_rate_bytes_per_s=400e6,
        overprovisioning=0.07,
    )
    n_w = 500_000
    t = _best(
        lambda: simulate_flash_writes(small, request_bytes=4096, requests=n_w, precondition=False),
        repeat=2,
    )
    speed.append(
        {
            "kind": "write_ftl",
            "request_bytes": 4096,
            "requests": n_w,
            "seconds": t,
            "page_writes_per_s": n_w / t,
            "simulated_blocks": 1024,
        }
    )
    out["simulator_speed"] = speed
    print("\nsimulator speed")
    for s in speed:
        rate = float(s.get("pages_per_s") or s.get("page_writes_per_s") or 0.0)
        print(
            f"  {s['kind']:9s} {s['request_bytes']:>8d} B x {s['requests']:>7d}: "
            f"{s['seconds']:.3f} s, {rate / 1e6:.2f} M pages/s"
        )
    path = atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
