"""`compare`: explorers at an equal budget of simulator calls, over several seeds.

>>> from explore.compare import compare
>>> res = compare(["random", "ga"], "memsim/Toy-v0", budget=20, seeds=2)
>>> sorted(res.summary())
['ga', 'random']

Fairness rules:

* the budget counts **simulator calls**, not environment steps: each run proposes
  configurations to its own :class:`~explore.rl.budget.Budget`; a configuration it
  has seen costs nothing (and is counted once), an infeasible one is never simulated;
* every explorer sees the same problem object (same trace, same reference);
* results are shared across runs through a memo owned by this call (the simulator is
  deterministic), so a configuration simulated by one run is not simulated again by
  another; each run is still charged the simulation time of every call it counts
  (``wall_s`` = its own overhead + those simulation seconds), so wall times are what
  each run would have taken alone;
* a run that stops proposing new configurations before its budget (a converged
  policy; ``max_steps`` proposals) keeps its best: its curve is extended flat.

Reported per explorer: the final best reward's mean over seeds with a 95 %
confidence interval (Student t), the calls used, the wall time, and the best-so-far
curve of every seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explore.envs.problem import ConfigProblem
from explore.rl import EXPLORERS, Budget, Memo
from hw_models.errors import Problem, SpecError


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One explorer, one seed."""

    explorer: str
    seed: int
    curve: list[float]
    calls: int
    steps: int
    best_reward: float
    best_config: dict[str, Any]
    best_metrics: dict[str, float]
    wall_s: float
    sim_s: float


def ci95(values: Sequence[float]) -> tuple[float, float]:
    """95 % confidence interval of the mean (Student t); the mean twice for one value."""
    x = np.asarray(values, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return (m, m)
    from scipy.stats import t

    h = float(t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return (m - h, m + h)


@dataclass(slots=True, kw_only=True)
class CompareResult:
    """All runs of a comparison, with summaries and writers."""

    problem: dict[str, Any]
    budget: int
    seeds: int
    runs: list[RunRecord] = field(default_factory=list)

    def explorers(self) -> list[str]:
        """Explorer names in the order they ran."""
        return list(dict.fromkeys(r.explorer for r in self.runs))

    def curves(self) -> dict[str, np.ndarray]:
        """Per explorer, best-so-far reward after each call (seeds x budget), extended flat."""
        out = {}
        for name in self.explorers():
            rows = []
            for r in self.runs:
                if r.explorer != name:
                    continue
                c = np.full(self.budget, np.nan)
                c[: len(r.curve)] = r.curve
                if r.curve:
                    c[len(r.curve) :] = r.curve[-1]
                rows.append(c)
            out[name] = np.array(rows)
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per explorer: best_mean, ci95, best_std, calls (mean), wall_s (mean), best (overall)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.explorers():
            runs = [r for r in self.runs if r.explorer == name]
            best = [r.best_reward for r in runs]
            top = max(runs, key=lambda r: r.best_reward)
            lo, hi = ci95(best)
            out[name] = {
                "best_mean": float(np.mean(best)),
                "ci95": [lo, hi],
                "best_std": float(np.std(best, ddof=1)) if len(best) > 1 else 0.0,
                "calls": float(np.mean([r.calls for r in runs])),
                "wall_s": float(np.mean([r.wall_s for r in runs])),
                "seeds": len(runs),
                "best_config": top.best_config,
                "best_metrics": top.best_metrics,
            }
        return out

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON: ``{"explorers": {name: {best_mean, ci95, calls, wall_s}}, ...}``."""
        s = self.summary()
        return {
            "explorers": {
                k: {f: v[f] for f in ("best_mean", "ci95", "best_std", "calls", "wall_s", "seeds")}
                for k, v in s.items()
            },
            "budget": self.budget,
            "seeds": self.seeds,
            "problem": self.problem,
        }

    def table_rows(self) -> list[list[Any]]:
        """Rows: explorer, best mean, CI low, CI high, calls, wall s (sorted by best mean)."""
        s = self.summary()
        rows = [
            [k, v["best_mean"], v["ci95"][0], v["ci95"][1], v["calls"], v["wall_s"]]
            for k, v in s.items()
        ]
        return sorted(rows, key=lambda r: -r[1])

    def to_markdown(self) -> str:
        """The summary as a markdown table."""
        lines = [
            "| explorer | best reward (mean) | 95 % CI | calls | wall s |",
            "|---|---:|---|---:|---:|",
        ]
        for name, m, lo, hi, calls, wall in self.table_rows():
            lines.append(f"| {name} | {m:.4f} | [{lo:.4f}, {hi:.4f}] | {calls:.0f} | {wall:.1f} |")
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path) -> list[Path]:
        """``table.csv``, ``table.md``, ``curves.csv``, ``runs.json``, ``summary.json`` and
        ``best.json`` (the overall best configuration, replayable). The figure of the
        curves is drawn by the CLI (``plots.learning_curves``; explore draws nothing)."""
        from hw_models.fileio import atomic_write_text

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        csv = ["explorer,best_mean,ci95_lo,ci95_hi,calls,wall_s"]
        csv += [",".join(str(v) for v in row) for row in self.table_rows()]
        paths.append(atomic_write_text(d / "table.csv", "\n".join(csv) + "\n"))
        paths.append(atomic_write_text(d / "table.md", self.to_markdown()))
        lines = ["explorer,seed,call,best"]
        for r in self.runs:
            curve = self.curves()[r.explorer][self._row(r)]
            lines += [f"{r.explorer},{r.seed},{i + 1},{float(v)!r}" for i, v in enumerate(curve)]
        paths.append(atomic_write_text(d / "curves.csv", "\n".join(lines) + "\n"))
        paths.append(
            atomic_write_text(d / "runs.json", json.dumps([asdict(r) for r in self.runs], indent=1))
        )
        paths.append(atomic_write_text(d / "summary.json", json.dumps(self.to_json(), indent=1)))
        if self.runs:
            top = max(self.runs, key=lambda r: r.best_reward)
            replay = self.problem.get("replay_best", top.best_config)
            paths.append(atomic_write_text(d / "best.json", json.dumps(replay, indent=1) + "\n"))
        return paths

    def _row(self, run: RunRecord) -> int:
        same = [r for r in self.runs if r.explorer == run.explorer]
        return same.index(run)


def _problem(env: str | ConfigProblem, env_kwargs: dict[str, Any] | None) -> ConfigProblem:
    if isinstance(env, ConfigProblem):
        return env
    from explore.envs import make_problem

    return make_problem(env, **(env_kwargs or {}))


def compare(
    explorers: Sequence[str],
    env: str | ConfigProblem,
    *,
    budget: int,
    seeds: int | Sequence[int] = 5,
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int | None = None,
    progress: bool | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
) -> CompareResult:
    """Run every explorer for every seed at ``budget`` simulator calls (module doc).

    ``env``: an environment id (``memsim/MemCtrl-v0``...) with ``env_kwargs``, or a
    :class:`~explore.envs.problem.ConfigProblem`. ``seeds``: a count (0..K-1) or the
    seeds themselves. ``progress``: a tqdm bar over calls (None: only on a terminal).
    """
    from tqdm import tqdm

    problems = []
    if budget <= 0:
        problems.append(Problem("budget", f"expected simulator calls > 0, found {budget}"))
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        problems.append(Problem("seeds", "expected at least one seed"))
    for name in explorers:
        if name not in EXPLORERS:
            problems.append(
                Problem(
                    "explorers",
                    f"unknown explorer {name!r} (known: {', '.join(EXPLORERS.names())})",
                )
            )
    if problems:
        raise SpecError(problems)
    problem = _problem(env, env_kwargs)
    desc = problem.describe()  # also simulates the reference once, outside every budget
    memo = Memo()
    result = CompareResult(problem=desc, budget=budget, seeds=len(seed_list))
    total = len(explorers) * len(seed_list) * budget
    with tqdm(total=total, unit="call", disable=None if progress is None else not progress) as bar:
        for name in explorers:
            fn = EXPLORERS.create(name)
            for seed in seed_list:
                bar.set_description(f"{name} seed {seed}")
                b = Budget(problem, budget, max_steps=max_steps, memo=memo, progress=bar)
                t0 = time.perf_counter()
                fn(problem, b, seed=seed)
                elapsed = time.perf_counter() - t0
                bar.update(budget - b.calls)
                best = b.best_index
                run = RunRecord(
                    explorer=name,
                    seed=seed,
                    curve=list(b.curve),
                    calls=b.calls,
                    steps=b.steps,
                    best_reward=b.best_reward,
                    best_config=problem.config(best) if best is not None else {},
                    best_metrics=dict(b.seen[problem.key(best)].metrics)
                    if best is not None
                    else {},
                    wall_s=elapsed - b.fresh_s + b.sim_s,
                    sim_s=b.sim_s,
                )
                result.runs.append(run)
                if on_run is not None:
                    on_run(run)
    if result.runs:
        top = max(result.runs, key=lambda r: r.best_reward)
        if top.best_config:
            result.problem["replay_best"] = problem.replay_config(top.best_config)
    return result
