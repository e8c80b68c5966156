"""`Budget`: a caching, counting evaluator, the one place simulator calls are counted.

Every explorer proposes configurations (choice-index vectors) to a :class:`Budget`.
A configuration seen before in the run costs nothing and returns the same result;
a new feasible one costs one simulator call, until ``budget`` calls are spent, after
which nothing more is simulated. Infeasible configurations are never simulated and
cost no call. ``max_steps`` (proposals of any kind) stops an explorer that keeps
proposing configurations it has already seen.

``memo`` (optional, owned by the caller, e.g. :func:`explore.compare.compare`) holds
results across runs on the same problem: a run still counts each of its own calls
once, and its ``wall_s`` is charged the simulation time the call took when it was
first run (``sim_s``), so sharing the memo changes no number except the real time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from explore.envs.problem import INFEASIBLE_REWARD, ConfigProblem, Evaluation, Index


@dataclass(slots=True)
class Memo:
    """Results by configuration hash: (evaluation, seconds the simulation took)."""

    results: dict[str, tuple[Evaluation, float]] = field(default_factory=dict)


class Budget:
    """Counted, cached access to ``problem.evaluate`` (see the module doc)."""

    def __init__(
        self,
        problem: ConfigProblem,
        budget: int,
        *,
        max_steps: int | None = None,
        memo: Memo | None = None,
        progress: Any = None,
    ) -> None:
        if budget <= 0:
            raise ValueError(f"budget: expected a number of simulator calls > 0, found {budget}")
        self.problem = problem
        self.budget = int(budget)
        self.max_steps = int(max_steps) if max_steps is not None else 5 * self.budget
        self.memo = memo
        self.progress = progress
        self.seen: dict[str, Evaluation] = {}
        self.calls = 0
        self.steps = 0
        self.curve: list[float] = []  # best reward after each call
        self.best_reward = float("-inf")
        self.best_index: Index | None = None
        self.sim_s = 0.0  # simulation seconds charged to this run
        self.fresh_s = 0.0  # seconds actually spent simulating here (memo misses)

    @property
    def exhausted(self) -> bool:
        """True when no more calls (or proposals) are allowed."""
        return self.calls >= self.budget or self.steps >= self.max_steps

    def __call__(self, index: Sequence[int]) -> Evaluation | None:
        """Evaluate a feasible configuration: cached, or one call; None once the budget is spent."""
        self.steps += 1
        idx = self.problem.check_index(index)
        key = self.problem.key(idx)
        if key in self.seen:
            return self.seen[key]
        if self.calls >= self.budget:
            return None
        hit = self.memo.results.get(key) if self.memo is not None else None
        if hit is None:
            t0 = time.perf_counter()
            ev = self.problem.evaluate(idx)
            seconds = time.perf_counter() - t0
            self.fresh_s += seconds
            if self.memo is not None:
                self.memo.results[key] = (ev, seconds)
        else:
            ev, seconds = hit
        self.sim_s += seconds
        self.seen[key] = ev
        self.calls += 1
        if ev.reward > self.best_reward:
            self.best_reward, self.best_index = float(ev.reward), idx
        self.curve.append(self.best_reward)
        if self.progress is not None:
            self.progress.update(1)
        return ev

    def reward(self, index: Sequence[int]) -> float:
        """The reward of any configuration: the penalty for an infeasible one (no call)
        or once the budget is spent."""
        if not self.problem.feasible(index):
            self.steps += 1
            return INFEASIBLE_REWARD
        ev = self(index)
        return INFEASIBLE_REWARD if ev is None else float(ev.reward)
