"""Compare memsim's predictions with held-out end-to-end timings (validation, never a fit).

    python validation/predict_e2e.py [--system h200_sxm_calibrated] [--engine cuda_graphs]
                                     [--csv validation/h200/e2e.csv] [--json FILE]

Each row of the CSV (``validation/h200_e2e.py``'s format: model, phase, batch,
prompt_or_context, time_s) is predicted by simulating one prefill (TTFT) or one
decode step over ``prompt_or_context`` cached tokens (TPOT) on the analytic path,
and the relative error ``predicted / measured - 1`` is printed with the median
and p90 of |error| per phase. Nothing here changes a parameter: the figures judge
a preset whose efficiencies were fitted on microbenchmarks only.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

import memsim
import workloads
from hw_models import load_system
from hw_models.engine_profile import with_engine


def main() -> None:
    """Predict every row and print the table and the per-phase summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="h200_sxm_calibrated")
    ap.add_argument("--engine", default=None)
    ap.add_argument("--csv", default=str(Path(__file__).parent / "h200" / "e2e.csv"))
    ap.add_argument("--json", default=None, help="write rows and summary as JSON here")
    args = ap.parse_args()
    system = with_engine(load_system(args.system), args.engine)
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        cfg = workloads.load_model(r["model"])
        b, n = int(r["batch"]), int(r["prompt_or_context"])
        if r["phase"] == "prefill":
            g = workloads.prefill(cfg, batch=b, prompt_len=n)
        else:
            g = workloads.decode(cfg, batch=b, context_len=n)
        t = memsim.simulate(system, g, fidelity="analytic").makespan_s
        m = float(r["time_s"])
        out.append({**r, "predicted_s": t, "error": t / m - 1.0})
        print(
            f"{r['model']:11s} {r['phase']:7s} batch {b:4d} tokens {n:6d}  measured "
            f"{1e3 * m:9.3f} ms  predicted {1e3 * t:9.3f} ms  {100 * (t / m - 1):+6.1f} %"
        )
    summary = {}
    for phase in ("prefill", "decode"):
        e = np.array([o["error"] for o in out if o["phase"] == phase])
        if e.size:
            summary[phase] = {
                "rows": int(e.size),
                "median_abs_error": float(np.median(np.abs(e))),
                "p90_abs_error": float(np.percentile(np.abs(e), 90)),
                "mean_error": float(e.mean()),
            }
            s = summary[phase]
            print(
                f"{phase}: {s['rows']} rows, median |error| {100 * s['median_abs_error']:.1f} %, "
                f"p90 {100 * s['p90_abs_error']:.1f} %, mean {100 * s['mean_error']:+.1f} %"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": out, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
