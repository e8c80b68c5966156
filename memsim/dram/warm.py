"""Compile the DRAM package's numba code once, ahead of its first use.

``python -m memsim.dram.warm`` (run by ``make demo`` and ``make test`` after
installing) compiles the channel controller, the protocol checker and the trace
reader into numba's on-disk cache, so that the first ``memsim dram`` loads
machine code (about 1 s) instead of compiling it (15-30 s on a small machine).
It simulates a few requests of a shipped device and reads a three-line trace per
format; nothing else is written.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def warm() -> float:
    """Compile (or load) every compiled DRAM function; returns the seconds it took."""
    t0 = time.perf_counter()
    from hw_models import load_dram_device
    from memsim.dram import RequestTrace, simulate_requests, traffic
    from workloads.formats.dram_traces import FORMATS, write_trace

    dev = load_dram_device("DDR4_3200")
    simulate_requests(dev, traffic.mix(dev, 64, seed=0), check=True)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            path = write_trace(
                Path(tmp) / f"warm.{fmt}", addresses=[0, 64, 128], cycles=[0, 1, 2], format=fmt
            )
            RequestTrace.from_file(str(path), format=fmt)
    return time.perf_counter() - t0


def main() -> int:
    """Entry point of ``python -m memsim.dram.warm``."""
    print(f"memsim.dram: compiled code ready in {warm():.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
