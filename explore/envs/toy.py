"""`ToyProblem`: a tiny configuration space with a known optimum, to test explorers.

Reward ``1 - mean_i |index_i - target_i| / (n_i - 1)``: 1.0 exactly at
``target``, lower elsewhere, smooth enough for any learner. One combination
(every parameter at its last value) is infeasible unless it is the target, so
masking is exercised too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explore.envs.problem import Choice, ConfigProblem, Evaluation


class ToyProblem(ConfigProblem):
    """A known-optimum problem (see the module doc)."""

    name = "Toy"

    def __init__(
        self, *, nvec: Sequence[int] = (4, 5, 3), target: Sequence[int] = (2, 3, 1)
    ) -> None:
        if len(nvec) != len(target) or any(
            not 0 <= t < n for t, n in zip(target, nvec, strict=True)
        ):
            raise ValueError(f"target {tuple(target)} outside the space {tuple(nvec)}")
        self.choices = tuple(
            Choice(name=f"p{i}", values=tuple(range(n))) for i, n in enumerate(nvec)
        )
        self.target = tuple(int(t) for t in target)

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        last = tuple(len(c.values) - 1 for c in self.choices)
        idx = tuple(config[c.name] for c in self.choices)
        if idx == last and idx != self.target:
            return "every parameter at its last value is not allowed"
        return None

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        idx = np.array([config[c.name] for c in self.choices], dtype=float)
        span = np.array([max(1, len(c.values) - 1) for c in self.choices], dtype=float)
        err = float(np.mean(np.abs(idx - np.array(self.target)) / span))
        return Evaluation(reward=1.0 - err, metrics={"error": err})
