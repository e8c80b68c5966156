"""Loading a system with overrides in a loop: what a sweep pays per hardware point.

    .venv/bin/python benchmarks/bench_overrides.py [--repeat R] [--json PATH]

Prints a table and writes ``benchmarks/results/overrides.json``. Each figure is
the median of ``--repeat`` calls of ``load_system(...)`` after one warm-up call
(the first call of a process also pays imports and the first parse of the preset;
that is reported apart as ``first_call_ms``, measured in a fresh interpreter).
The target for a validated copy with overrides is about 1 ms (issue 9).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _timing import timed

from hw_models import System, load_system
from hw_models.errors import SpecError
from hw_models.fileio import atomic_write_text


def _cases(base: System) -> dict[str, Callable[[], Any]]:
    cap = {"tiers.hbm.capacity_bytes": "96 GiB"}
    return {
        "preset name": lambda: load_system("h100_sxm"),
        "preset name + capacity override": lambda: load_system("h100_sxm", overrides=cap),
        "System + capacity override": lambda: load_system(base, overrides=cap),
        "preset name + HBM bandwidth override (DRAM-backed)": lambda: load_system(
            "h100_sxm", overrides={"tiers.hbm.read_bandwidth_bytes_per_s": 2.5e12}
        ),
        "preset name + 3 overrides": lambda: load_system(
            "h100_sxm",
            overrides=[
                "tiers.hbm.capacity_bytes=64 GiB",
                "devices=4",
                "tiers.hbm.latency_s=600 ns",
            ],
        ),
    }


def _first_call_ms() -> float:
    code = (
        "import time; t0 = time.perf_counter(); from hw_models import load_system; "
        "load_system('h100_sxm'); print((time.perf_counter() - t0) * 1e3)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    return float(proc.stdout.strip())


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "overrides.json"))
    args = ap.parse_args()
    base = load_system("h100_sxm")
    rows = []
    for name, fn in _cases(base).items():
        try:
            fn()  # warm-up
        except SpecError as err:
            print(f"{name:52s} refused: {str(err).splitlines()[-1][:80]}")
            rows.append({"case": name, "ms_per_call": None, "error": str(err)})
            continue
        sec, _ = timed(fn, args.repeat)
        print(f"{name:52s} {sec * 1e3:8.3f} ms/call")
        rows.append({"case": name, "ms_per_call": sec * 1e3})
    first = _first_call_ms()
    print(f"{'first call in a fresh process (imports + parse)':52s} {first:8.1f} ms")
    out = {
        "benchmark": "overrides",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "repeat": args.repeat,
        "rows": rows,
        "first_call_ms": first,
    }
    path = atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
