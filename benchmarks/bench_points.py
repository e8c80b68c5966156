"""Cost of one hardware point in a sweep, and of starting the ``memsim`` command.

    .venv/bin/python benchmarks/bench_points.py [--repeat 20] [--json PATH]

A sweep builds its graph once and evaluates it on many hardware points; it keeps one
``memsim.SimCache`` per worker (compiled graph, attention-fitted graph, placement,
layout, graph-only facts). Figures (wall clock; ``min`` is the least disturbed run on
a shared machine, ``median`` the typical one):

* analytic, Llama-2-7B generation (batch 8, prompt 512, 64 tokens) on h100_sxm, one
  point = one ``System`` with a different tensor peak (target 2 ms);
* the same with the point given as a preset name + overrides (loader included);
* analytic, Llama-2-70B TP8 on dgx_h100 (target 5 ms);
* both also with ``detail="summary"`` (no per-op tables: what sweeps use);
* event engine on the 7B point (no DMA, one lane: the analytic schedule, no simpy);
* no cache: the same 7B point when every call starts from scratch;
* start-up: ``memsim --help`` (target 0.3 s) and ``memsim run --help`` (the imports a
  run needs before it simulates; target 0.5 s), each a fresh process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import memsim
from hw_models import load_system
from hw_models.fileio import atomic_write_text
from workloads import generate, load_model

REQUEST = {"batch": 8, "prompt_len": 512, "gen_len": 64}


def per_call(fn: Callable[[int], Any], repeat: int) -> tuple[float, float]:
    """(min, median) seconds of ``fn(i)`` for i in range(repeat)."""
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def startup(argv: list[str], repeat: int) -> tuple[float, float]:
    """(min, median) wall seconds of a fresh ``python -m memsim.cli.main ARGV``."""
    cmd = [sys.executable, "-m", "memsim.cli.main", *argv]
    subprocess.run(cmd, capture_output=True, check=True)  # warm the OS file cache
    return per_call(lambda _: subprocess.run(cmd, capture_output=True, check=True), repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--json", default="benchmarks/results/points.json")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="opt into glibc allocator tuning first (memsim.alloc), as a sweep worker may",
    )
    args = ap.parse_args()
    if args.keep_freed_memory:
        from memsim.alloc import keep_freed_memory

        keep_freed_memory()
    rows: list[dict[str, Any]] = []

    def row(name: str, t: tuple[float, float], target: float | None = None, **extra: Any) -> None:
        rows.append({"case": name, "min_s": t[0], "median_s": t[1], "target_s": target, **extra})
        tgt = f"(target < {target * 1e3:g} ms)" if target else ""
        print(f"{name:<60} min {t[0] * 1e3:8.2f} ms  median {t[1] * 1e3:8.2f} ms {tgt}")

    n = args.repeat
    g7 = generate(load_model("llama2_7b"), **REQUEST)
    peaks = [9.0e14 + 1e13 * i for i in range(n)]
    h100 = [
        load_system("h100_sxm", overrides={"compute.tensor.peak_flops_per_s.bf16": p})
        for p in peaks
    ]
    # a SimCache per worker (memsim before it kept module-level caches instead)
    kw: dict[str, Any] = {"cache": memsim.SimCache()} if hasattr(memsim, "SimCache") else {}
    memsim.simulate(h100[0], g7, fidelity="analytic", **kw)  # fit, compile, place
    row(
        f"analytic 7B/H100 per point, System given ({len(g7)} ops)",
        per_call(lambda i: memsim.simulate(h100[i], g7, fidelity="analytic", **kw), n),
        0.002,
        ops=len(g7),
    )

    row(
        "analytic 7B/H100 per point, detail='summary' (what sweeps use)",
        per_call(
            lambda i: memsim.simulate(h100[i], g7, fidelity="analytic", detail="summary", **kw), n
        ),
        0.002,
        ops=len(g7),
    )

    def by_name(i: int) -> Any:
        sys_ = load_system("h100_sxm", overrides={"compute.tensor.peak_flops_per_s.bf16": peaks[i]})
        return memsim.simulate(sys_, g7, fidelity="analytic", **kw)

    row("analytic 7B/H100 per point, preset name + override", per_call(by_name, n))
    row(
        "event 7B/H100 per point (nothing contends: analytic schedule)",
        per_call(lambda i: memsim.simulate(h100[i], g7, fidelity="event", **kw), n),
    )
    row(
        "analytic 7B/H100, no cache (every call from scratch)",
        per_call(
            lambda i: (
                memsim.simulate(h100[i], g7, fidelity="analytic", cache=memsim.SimCache())
                if kw
                else memsim.simulate(h100[i], g7, fidelity="analytic")
            ),
            max(3, n // 4),
        ),
    )

    g70 = generate(load_model("llama2_70b"), tp=8, **REQUEST)
    dgx = [
        load_system("dgx_h100", overrides={"compute.tensor.peak_flops_per_s.bf16": p})
        for p in peaks
    ]
    memsim.simulate(dgx[0], g70, fidelity="analytic", **kw)
    row(
        f"analytic 70B TP8/dgx_h100 per point ({len(g70)} ops)",
        per_call(lambda i: memsim.simulate(dgx[i], g70, fidelity="analytic", **kw), n),
        0.005,
        ops=len(g70),
    )

    row(
        "analytic 70B TP8/dgx_h100 per point, detail='summary'",
        per_call(
            lambda i: memsim.simulate(dgx[i], g70, fidelity="analytic", detail="summary", **kw), n
        ),
        0.005,
        ops=len(g70),
    )

    k = max(3, n // 4)
    row("start-up: memsim --help", startup(["--help"], k), 0.3)
    row("start-up: memsim run --help (imports of a run)", startup(["run", "--help"], k), 0.5)

    doc = {"benchmark": "points", "keep_freed_memory": args.keep_freed_memory, "rows": rows}
    out = atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
