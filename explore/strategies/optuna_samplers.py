"""Optuna's TPE and NSGA-II as adaptive samplers (an in-memory study per sweep).

The study is rebuilt from the store when a sweep resumes (:meth:`replay`), so what the
sampler learnt is not lost with the process. Optuna's log level is raised to WARNING
only while it is called, and restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from explore.strategies import SAMPLERS, AdaptiveSampler, need_budget, need_extra

if TYPE_CHECKING:
    from explore.space import DesignSpace, Parameter, Point


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import optuna

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def distribution(p: Parameter) -> Any:
    """The Optuna distribution of a parameter (lists and stepped log ranges categorical)."""
    import optuna.distributions as d

    if p.values is not None or (p.steps is not None and (p.log or p.integer)):
        return d.CategoricalDistribution(p.grid())
    assert p.low is not None and p.high is not None
    if p.steps is not None:
        if p.steps == 1 or p.low == p.high:
            return d.CategoricalDistribution([p.low])
        return d.FloatDistribution(p.low, p.high, step=(p.high - p.low) / (p.steps - 1))
    if p.integer:
        return d.IntDistribution(int(p.low), int(p.high), log=p.log)
    return d.FloatDistribution(p.low, p.high, log=p.log)


class OptunaSampler(AdaptiveSampler):
    """Common ask/tell over an in-memory Optuna study."""

    def __init__(self, space: DesignSpace, *, seed: int, budget: int | None) -> None:
        need_extra("optuna", f"the {self.name} sampler")
        import optuna

        super().__init__(space, seed=seed, budget=budget)
        self.dists = {p.name: distribution(p) for p in space.parameters}
        directions: list[Any] = [
            "minimize" if o.sense == "min" else "maximize" for o in space.objectives
        ]
        with _quiet():
            self.study = optuna.create_study(
                directions=directions, sampler=self._sampler(need_budget(self.name, budget))
            )

    name = "optuna"

    def _sampler(self, budget: int) -> Any:
        raise NotImplementedError

    def ask(self) -> tuple[Any, Point]:
        """Ask the study for a trial; the point is its parameters in the space's order."""
        with _quiet():
            trial = self.study.ask(self.dists)
        return trial, {p.name: trial.params[p.name] for p in self.space.parameters}

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """Finish the trial (failed when ``values`` is None)."""
        import optuna

        with _quiet():
            if values is None:
                self.study.tell(token, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(token, list(values))

    def replay(self, point: Point, values: Sequence[float] | None) -> None:
        """Add a stored point as a finished trial."""
        import optuna

        params = {}
        for name, dist in self.dists.items():
            v = point[name]
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                matches = [c for c in dist.choices if repr(c) == repr(v) or c == v]
                if not matches:
                    return  # not a point of this space any more
                v = matches[0]
            params[name] = v
        with _quiet():
            if values is None:
                trial = optuna.trial.create_trial(
                    params=params, distributions=self.dists, state=optuna.trial.TrialState.FAIL
                )
            else:
                trial = optuna.trial.create_trial(
                    params=params, distributions=self.dists, values=list(values)
                )
            self.study.add_trial(trial)


@SAMPLERS.register("tpe")
class TPE(OptunaSampler):
    """Optuna's tree-structured Parzen estimator (multi-objective when the space is)."""

    name = "tpe"

    def _sampler(self, budget: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=max(2, min(10, budget // 4))
        )


@SAMPLERS.register("nsga2")
class NSGA2(OptunaSampler):
    """Optuna's NSGA-II; the population is a quarter of the budget (4 to 50)."""

    name = "nsga2"

    def _sampler(self, budget: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(
            seed=self.seed, population_size=max(4, min(50, budget // 4))
        )
