"""`SpaceProblem`: a sweep's :class:`~explore.space.DesignSpace` as an RL problem.

``MemHierarchy-v0`` with ``space="file.yaml"`` (a design-space file of the sweeps,
``explore/spaces/``) takes its parameters, budgets and objective from that file: one
choice per parameter over the values its grid takes (``values``, or ``steps`` points
of a range); the file's ``constraints`` (cost, area, power budgets over ``derived``
values and ``prices``) make a configuration infeasible, never simulated; the point is
evaluated by the space's own evaluator (``memsim.simulate`` at the space's fidelity).
The reward is the improvement of one objective (``objective=``, default the file's
first) over the space's first point (the first value of every parameter; if that one
breaks a constraint, the first feasible point of the grid): ``reference / value`` to
minimise, ``value / reference`` to maximise. A point the evaluator refuses (e.g.
weights that fit nowhere) earns the infeasible reward.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from explore.envs.problem import INFEASIBLE_REWARD, Choice, ConfigProblem, Evaluation
from hw_models.errors import Problem, SpecError


class SpaceProblem(ConfigProblem):
    """A design-space file as a configuration problem (see the module doc)."""

    name = "Space"

    def __init__(self, *, space: Any, objective: str | None = None) -> None:
        from explore.evaluate import evaluator_class
        from explore.space import DesignSpace

        self.space = space if isinstance(space, DesignSpace) else DesignSpace.from_yaml(Path(space))
        objectives = {o.name: o for o in self.space.objectives}
        if not objectives:
            raise SpecError([Problem("objectives", "the space names no objective to reward")])
        name = objective or next(iter(objectives))
        if name not in objectives:
            raise SpecError(
                [
                    Problem(
                        "objective",
                        f"{name!r} is not an objective of the space "
                        f"(known: {', '.join(objectives)})",
                    )
                ]
            )
        self.objective = objectives[name]
        self.choices = tuple(
            Choice(name=p.name, values=tuple(p.grid())) for p in self.space.parameters
        )
        self._evaluator = evaluator_class(self.space.evaluator)(self.space)
        self._reference: float | None = None
        self._default: tuple[int, ...] | None = None
        self.name = f"Space[{Path(self.space.source).stem}:{name}]"

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        broken = self.space.violations(config, self.space.derived_values(config))
        return "; ".join(f"breaks {c!r}" for c in broken) or None

    def default_index(self) -> tuple[int, ...]:
        """The first value of every parameter, or the first feasible grid point."""
        if self._default is None:
            first = tuple(0 for _ in self.choices)
            ranges = [range(len(c.values)) for c in self.choices]
            candidates = itertools.chain([first], itertools.product(*ranges))
            self._default = next(
                (i for i in candidates if self._combination_problem(self.config(i)) is None), first
            )
        return self._default

    def _value(self, config: dict[str, Any]) -> tuple[float | None, dict[str, float]]:
        rec = self._evaluator.evaluate(self.space.job(config, index=0))
        if rec.status != "ok":
            return None, {}
        metrics = {
            k: float(v)
            for k, v in {**rec.metrics, **rec.derived}.items()
            if isinstance(v, int | float)
        }
        return self.objective.value(metrics), metrics

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        if self._reference is None:
            ref, _ = self._value(self.config(self.default_index()))
            if ref is None or ref == 0:
                raise SpecError([Problem("space", "the reference point could not be evaluated")])
            self._reference = ref
        value, metrics = self._value(config)
        if value is None or value == 0:
            return Evaluation(reward=INFEASIBLE_REWARD, metrics=metrics)
        ratio = (
            self._reference / value if self.objective.sense == "min" else value / self._reference
        )
        return Evaluation(reward=ratio, metrics=metrics)

    def describe(self) -> dict[str, Any]:
        """Problem description for summaries."""
        return super().describe() | {"space": self.space.source, "objective": self.objective.name}
