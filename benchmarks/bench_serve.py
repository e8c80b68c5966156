"""Serving speed and bucketing error: a table, written to ``benchmarks/results/serve.json``.

    .venv/bin/python benchmarks/bench_serve.py [--requests 10000] [--json out.json]

The target (issue 11): 10,000 requests of a 7B model on one GPU with continuous
batching simulate in <= 10 s on 2 cores. Workload: Llama-2-7B on one H100,
Poisson arrivals at 20 requests/s, prompts lognormal (median 512, sigma 0.5,
at most 2048), outputs lognormal (median 128, sigma 0.5, at most 512).

Bucketing error is measured two ways against ``Bucketing(exact=True)`` (every
distinct iteration shape simulated as it is):

* per iteration, on random shapes (decode batches of random contexts, with and
  without a prompt chunk): relative error of the iteration time;
* per run, on a 400-request run: relative difference of the headline metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hw_models import load_system
from hw_models.fileio import atomic_write_text
from memsim.serving import Bucketing, IterationCost, ServeConfig, make_requests, serve
from workloads import load_model

WORKLOAD = {
    "arrival": "poisson:20",
    "prompt_len": "lognormal:512:0.5:2048",
    "output_len": "lognormal:128:0.5:512",
}
METRICS = ("throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tbt_p50_s", "tbt_p99_s")


def _run(system: Any, n: int, config: ServeConfig) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, CPU seconds of this process (robust on a shared machine), summary."""
    reqs = make_requests(requests=n, seed=0, **WORKLOAD)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = serve(system, "llama2_7b", reqs, config=config).summary()
    return time.perf_counter() - t0, time.process_time() - c0, summary


def _shape_errors(system: Any, samples: int) -> dict[str, float]:
    cfg = load_model("llama2_7b")
    opts = ServeConfig().build_options(system)
    approx = IterationCost(system, cfg, device_tier="hbm", build_options=opts)
    exact = IterationCost(
        system, cfg, device_tier="hbm", build_options=opts, bucketing=Bucketing(exact=True)
    )
    rng = np.random.default_rng(1)
    errs = []
    for i in range(samples):
        n = int(rng.integers(1, 256))
        contexts = rng.integers(20, 3000, size=n).tolist()
        chunks = [] if i % 2 else [(int(rng.integers(16, 2048)), int(rng.integers(0, 2000)))]
        a = approx.time(decode_contexts=contexts, prompt_chunks=chunks)
        e = exact.time(decode_contexts=contexts, prompt_chunks=chunks)
        errs.append(abs(a / e - 1.0))
    return {"max": float(np.max(errs)), "mean": float(np.mean(errs)), "samples": samples}


def main(argv: list[str]) -> int:
    """Run the cases, print a table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "serve.json"))
    args = ap.parse_args(argv)
    system = load_system("h100_sxm")
    rows: dict[str, Any] = {"workload": WORKLOAD, "requests": args.requests}
    print(f"{'case':<40} {'wall s':>8} {'CPU s':>8} {'iterations':>10} {'simulated':>9}")
    for name, config in (
        ("continuous", ServeConfig(scheduler="continuous")),
        ("chunked (budget 2048)", ServeConfig(scheduler="chunked", max_num_batched_tokens=2048)),
    ):
        secs, cpu, s = _run(system, args.requests, config)
        rows[name] = {
            "seconds": secs,
            "cpu_seconds": cpu,
            "iterations": s["iterations"],
            "simulations": s["meta"]["simulations"],
            **{k: s[k] for k in METRICS},
        }
        label = f"{args.requests} requests, {name}"
        sims = s["meta"]["simulations"]
        print(f"{label:<40} {secs:8.2f} {cpu:8.2f} {s['iterations']:>10} {sims:>9}")
    shape = _shape_errors(system, 40)
    rows["shape_error"] = shape
    print(f"iteration-time error vs exact: max {shape['max']:.2%}, mean {shape['mean']:.3%}")
    _, _, fast = _run(system, 400, ServeConfig())
    _, _, exact = _run(system, 400, ServeConfig(bucketing=Bucketing(exact=True)))
    diff = {k: abs(fast[k] / exact[k] - 1.0) for k in METRICS}
    rows["run_error_400"] = diff
    print(
        "400-request run, bucketed vs exact: " + ", ".join(f"{k} {v:.2%}" for k, v in diff.items())
    )
    atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
