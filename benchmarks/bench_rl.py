"""MemCtrl-v0 speed: one environment step (one controller simulation) on a trace.

    .venv/bin/python benchmarks/bench_rl.py [--requests 20000] [--repeat 15] [--json PATH]

For each trace (stream, random, mix, mixed, llm) on DDR4-3200 at 0.6 x peak offered
load, the median time of ``env.step(action)`` over ``--repeat`` distinct random
feasible configurations (each one simulated: no cache), after a warm-up step (numba
compile or cache load, reported apart). Also the median time of one call of each
explorer's own logic (its proposals and updates, no simulation) on the toy problem,
so the comparison's cost can be predicted:

    time ~= explorers x seeds x budget x (step + explorer overhead per call)

(less in practice: the comparison shares results between runs, see explore.compare).
Prints a table and writes ``benchmarks/results/rl.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from hw_models.fileio import atomic_write_text

TRACES = ("stream", "random", "mix", "mixed", "llm")


def bench_steps(requests: int, repeat: int) -> dict[str, dict[str, float]]:
    """Median and worst step time per trace (seconds)."""
    from explore.envs.gym_env import ConfigEnv
    from explore.envs.memctrl import MemCtrlProblem

    out = {}
    for trace in TRACES:
        problem = MemCtrlProblem(trace=trace, requests=requests, objective="both")
        env = ConfigEnv(problem)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        env.step(np.array(problem.default_index()))  # warm-up (+ the reference run)
        first = time.perf_counter() - t0
        times = []
        while len(times) < repeat:
            a = np.array([rng.choice(np.flatnonzero(m)) for m in problem.static_mask()])
            if not problem.feasible(a):
                continue
            t0 = time.perf_counter()
            env.step(a)
            times.append(time.perf_counter() - t0)
        out[trace] = {
            "requests": len(problem.trace),
            "median_step_s": statistics.median(times),
            "max_step_s": max(times),
            "first_step_s": first,
        }
    return out


def bench_overhead(budget: int) -> dict[str, float]:
    """Explorer seconds per call on the toy problem (the simulator costs ~nothing there)."""
    from explore.envs.toy import ToyProblem
    from explore.rl import EXPLORERS, Budget

    out = {}
    problem = ToyProblem(nvec=(6, 6, 6, 6), target=(1, 2, 3, 4))
    for name in ("random", "grid", "ga", "bo", "ppo", "a2c", "sac", "marl", "marl_shared"):
        b = Budget(problem, budget)
        t0 = time.perf_counter()
        EXPLORERS.create(name)(problem, b, seed=0)
        out[name] = (time.perf_counter() - t0) / max(1, b.calls)
    return out


def main() -> None:
    """Run the benchmark and write the results."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--budget", type=int, default=200, help="calls for the overhead runs")
    ap.add_argument("--json", default="benchmarks/results/rl.json")
    args = ap.parse_args()
    steps = bench_steps(args.requests, args.repeat)
    print(f"{'trace':8} {'requests':>9} {'median ms':>10} {'max ms':>8} {'first ms':>9}")
    for t, r in steps.items():
        print(
            f"{t:8} {r['requests']:>9} {1e3 * r['median_step_s']:>10.1f} "
            f"{1e3 * r['max_step_s']:>8.1f} {1e3 * r['first_step_s']:>9.1f}"
        )
    over = bench_overhead(args.budget)
    print("explorer overhead per simulator call (toy problem, ms):")
    for k, v in over.items():
        print(f"  {k:12} {1e3 * v:8.2f}")
    doc = {"steps": steps, "explorer_overhead_s_per_call": over, "budget": args.budget}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
