"""Run every benchmark script in this folder (``bench_*.py``), one after the other.

Each script prints its own table and writes ``benchmarks/results/<name>.json``
(cache, dram, engine, flash, overrides, request_fidelity, workloads, ...: every
``bench_*.py`` found here runs, a new one needs no registration).
Usage: ``python benchmarks/run_all.py [NAME ...]`` (names without ``bench_`` / ``.py``).
Exit status is non-zero if any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the selected (default: all) benchmarks; return 1 if any failed."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = {f"bench_{n.removeprefix('bench_').removesuffix('.py')}.py" for n in argv}
        scripts = [s for s in scripts if s.name in wanted]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], check=False)
        print(f"--- {script.name}: exit {proc.returncode}, {time.perf_counter() - t0:.1f} s")
        if proc.returncode:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
