"""The paper's claim, tested: MARL vs PPO, SAC, random, GA and BO on ``MemCtrl-v0``.

"Multi-Agent Reinforcement Learning for Microprocessor Design Space Exploration"
(Krishnan et al., 2022) reported that one agent per parameter beats single-agent
PPO and SAC when tuning a DRAM memory controller. :func:`run_claim` runs every
explorer at the same budget of simulator calls over several seeds, for each trace and
objective, and writes per scenario the outputs of :meth:`CompareResult.write` plus
``claim.md`` (one table) and ``claim.json``; ``memsim explore claim`` adds
``claim.png`` (learning curves, one panel per scenario).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explore.compare import CompareResult, compare


def _verdict(res: CompareResult) -> dict[str, Any]:
    s = res.summary()
    ranked = sorted(s, key=lambda k: -s[k]["best_mean"])
    win = ranked[0]
    out: dict[str, Any] = {"winner": win, "ranking": ranked}
    for marl in ("marl", "marl_shared"):
        if marl not in s:
            continue
        others = [k for k in ranked if not k.startswith("marl")]
        if not others:
            continue
        rival = others[0]
        diff = s[marl]["best_mean"] - s[rival]["best_mean"]
        overlap = (
            s[marl]["ci95"][0] <= s[rival]["ci95"][1] and s[rival]["ci95"][0] <= s[marl]["ci95"][1]
        )
        out[marl] = {
            "best_other": rival,
            "difference": diff,
            "relative": diff / abs(s[rival]["best_mean"]) if s[rival]["best_mean"] else 0.0,
            "ci_overlap": overlap,
        }
    return out


def _scenario(job: tuple[str, list[str], int, int, dict[str, Any]]) -> CompareResult:
    """One (trace, objective) scenario; scenarios are independent (one per worker)."""
    _, algos, budget, seeds, env_kwargs = job
    return compare(algos, "memsim/MemCtrl-v0", budget=budget, seeds=seeds, env_kwargs=env_kwargs)


def run_claim(
    *,
    traces: Sequence[str],
    objectives: Sequence[str],
    algos: Sequence[str],
    budget: int,
    seeds: int,
    requests: int,
    out: Path,
    device: str = "DDR4_3200",
    workers: int = 1,
) -> dict[str, CompareResult]:
    """Run the matrix and write the outputs (module doc); returns the results by
    scenario (``trace-objective``), for the caller to draw (``claim.png``: the CLI).

    ``workers`` > 1 runs scenarios in that many processes (each result is the same as
    in one process: every scenario has its own problem, memo and seeds)."""
    from hw_models.fileio import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (
            f"{t}-{o}",
            list(algos),
            budget,
            seeds,
            {"trace": t, "objective": o, "requests": requests, "device": device},
        )
        for t in traces
        for o in objectives
    ]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(_scenario, jobs))
    else:
        done = [_scenario(j) for j in jobs]
    results: dict[str, CompareResult] = {}
    for (name, *_), res in zip(jobs, done, strict=True):
        res.write(out / name)
        results[name] = res
    names = list(results)
    lines = [
        f"Budget {budget} simulator calls per run, {seeds} seeds, {device}, "
        f"{requests:,}-request traces. Reward = default controller's metric / metric "
        "(1.0 = default); best reward found, mean over seeds [95 % CI].",
        "",
        "| explorer | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for algo in algos:
        cells = []
        for n in names:
            s = results[n].summary()[algo]
            cells.append(f"{s['best_mean']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]")
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    verdicts = {n: _verdict(r) for n, r in results.items()}
    lines += ["", "| scenario | winner | MARL (independent) vs best non-MARL |", "|---|---|---|"]
    for n, v in verdicts.items():
        m = v.get("marl")
        text = (
            f"{m['difference']:+.4f} ({100 * m['relative']:+.2f} %) vs {m['best_other']}"
            f"{', CIs overlap' if m['ci_overlap'] else ''}"
            if m
            else "-"
        )
        lines.append(f"| {n} | {v['winner']} | {text} |")
    atomic_write_text(out / "claim.md", "\n".join(lines) + "\n")
    doc = {
        "budget": budget,
        "seeds": seeds,
        "device": device,
        "requests": requests,
        "scenarios": {n: r.to_json() | {"verdict": verdicts[n]} for n, r in results.items()},
    }
    atomic_write_text(out / "claim.json", json.dumps(doc, indent=1))
    return results
