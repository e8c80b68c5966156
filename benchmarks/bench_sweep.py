"""What a sweep pays per point: evaluation, the store, local processes and Dask.

    .venv/bin/python benchmarks/bench_sweep.py [--points N] [--json PATH]

Prints a table and writes ``benchmarks/results/sweep.json``:

* ``eval_13b_ms``: one analytic evaluation of a Llama-2-13B generation point (batch 1,
  prompt 512, 32 generated tokens) on h100_sxm with a different HBM bandwidth each
  time, once the worker has built the graph (the evaluator's graph cache is warm):
  load the system with the override, place, simulate, flatten the summary. Split
  into ``load_system_ms`` and ``simulate_ms``; ``eval_13b_cpu_ms`` is the CPU time of
  this process (what a shared, loaded machine does not inflate). Target (issue 12):
  <= 5 ms.
* ``store_put_ms``: writing one finished point to the SQLite store (its own
  transaction, WAL).
* ``overhead_*_ms``: wall time per point of a whole sweep of a ``formula`` space
  (nothing to simulate), so what is left is the sweep machinery: planning keys,
  the store, and shipping points to workers — inline, 2 local processes, and a Dask
  ``LocalCluster`` (2 threads, in process; startup excluded), one point per task and
  64 per task.
* ``sweep_13b_points_per_s``: a real 13B sweep on 2 local processes, end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from explore import DesignSpace, Store, sweep
from explore.evaluate import EvalRecord, worker_evaluator
from hw_models.fileio import atomic_write_text
from hw_models.loader import load_system_dict

SPACE_13B: dict[str, Any] = {
    "system": "h100_sxm",
    "workload": {"model": "llama2_13b", "batch": 1, "prompt": 512, "gen": 32},
    "parameters": {
        "tiers.hbm.read_bandwidth_bytes_per_s": {"low": 1.0e12, "high": 8.0e12, "steps": 200},
    },
    "objectives": {"tpot_s": "min", "energy_j": "min"},
}


def _formula(n: int) -> DesignSpace:
    return DesignSpace.from_dict(
        {
            "evaluator": "formula",
            "parameters": {"x": {"low": 0, "high": n - 1}},
            "formulas": {"f": "x * 2", "g": "(x - 7) ** 2"},
            "objectives": {"f": "min", "g": "min"},
        }
    )


def bench_eval(points: int) -> dict[str, float]:
    """Per-point cost of the simulate evaluator with a warm graph cache."""
    space = DesignSpace.from_dict(SPACE_13B)
    ev = worker_evaluator(space)
    jobs = [space.job(p, index=i) for i, p in enumerate(space.grid_points())][: points + 1]
    first = ev.evaluate(jobs[0])  # builds the graph
    assert first.status == "ok", first.message
    totals, loads, cpus = [], [], []
    doc = space.system_docs["h100_sxm"]
    for job in jobs[1:]:
        t0, c0 = time.perf_counter(), time.process_time()
        rec: EvalRecord = ev.evaluate(job)
        totals.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        assert rec.status == "ok"
        t0 = time.perf_counter()
        load_system_dict(doc, overrides=job.system_overrides)
        loads.append(time.perf_counter() - t0)
    total, load = statistics.median(totals), statistics.median(loads)
    return {
        "eval_13b_ms": 1e3 * total,
        "eval_13b_cpu_ms": 1e3 * statistics.median(cpus),
        "load_system_ms": 1e3 * load,
        "simulate_ms": 1e3 * (total - load),
        "graph_build_and_first_eval_ms": 1e3 * first.elapsed_s,
    }


def bench_store(points: int) -> dict[str, float]:
    """Writing finished points to the store, one transaction each."""
    space = _formula(points)
    jobs = [space.job(p, index=i) for i, p in enumerate(space.grid_points())]
    ev = worker_evaluator(space)
    records = [ev.evaluate(j) for j in jobs]
    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.db") as st:
        st.bind(space)
        t0 = time.perf_counter()
        for r in records:
            st.put(r, space)
        dt = time.perf_counter() - t0
    return {"store_put_ms": 1e3 * dt / len(records)}


def _sweep_ms(space: DesignSpace, n: int, **kw: Any) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        report = sweep(space, store=Path(d) / "s.db", progress=False, **kw)
        dt = time.perf_counter() - t0
    assert report.evaluated == n, report.line()
    return 1e3 * dt / n


def bench_overheads(points: int) -> dict[str, float]:
    """Sweep machinery per point: inline, 2 processes, Dask (2 threads)."""
    import distributed

    space = _formula(points)
    out = {
        "overhead_inline_ms": _sweep_ms(space, points, workers=1),
        "overhead_processes_ms": _sweep_ms(space, points, workers=2),
        "overhead_processes_chunk64_ms": _sweep_ms(space, points, workers=2, chunk=64),
    }
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out["overhead_dask_ms"] = _sweep_ms(space, points, scheduler=client)
        out["overhead_dask_chunk64_ms"] = _sweep_ms(space, points, scheduler=client, chunk=64)
    return out


def bench_sweep_13b(points: int) -> dict[str, float]:
    """A real 13B sweep on 2 local processes, end to end (pool start-up included)."""
    space = DesignSpace.from_dict(
        {
            **SPACE_13B,
            "parameters": {
                "tiers.hbm.read_bandwidth_bytes_per_s": {
                    "low": 1.0e12,
                    "high": 8.0e12,
                    "steps": points,
                }
            },
        }
    )
    ms = _sweep_ms(space, points, workers=2)
    return {"sweep_13b_points_per_s": 1e3 / ms}


def main(argv: list[str]) -> int:
    """Run the benchmarks, print a table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument(
        "--json", default=str(Path(__file__).parent / "results" / "sweep.json"), metavar="PATH"
    )
    args = ap.parse_args(argv)
    results: dict[str, float] = {}
    results.update(bench_eval(args.points))
    results.update(bench_store(max(args.points, 500)))
    results.update(bench_overheads(max(args.points, 500)))
    results.update(bench_sweep_13b(args.points))
    for name, value in results.items():
        print(f"{name:34s} {value:10.3f}")
    doc = {
        "results": results,
        "points": args.points,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
