"""Explorers: budgets count simulator calls, results are reproducible, learners learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from explore.compare import ci95, compare
from explore.envs.problem import Evaluation
from explore.envs.toy import ToyProblem
from explore.rl import EXPLORERS, LEARNED, Budget
from explore.rl.baselines import grid_levels

pytestmark = pytest.mark.rl


class CountingToy(ToyProblem):
    """The toy problem, counting real simulator calls."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.simulated: list[tuple[int, ...]] = []

    def _simulate(self, config: dict[str, object]) -> Evaluation:
        self.simulated.append(tuple(config.values()))  # type: ignore[arg-type]
        return super()._simulate(config)  # type: ignore[arg-type]


def test_budget_counts_calls_not_steps() -> None:
    p = CountingToy()
    b = Budget(p, 3)
    for idx in [(0, 0, 0), (0, 0, 0), (1, 0, 0), (0, 0, 0), (2, 0, 0), (3, 0, 0)]:
        b(idx)
    # three distinct configurations simulated, repeats free, the fourth refused
    assert p.simulated == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert (b.calls, b.steps, b.exhausted) == (3, 6, True)
    assert b((3, 0, 0)) is None and len(p.simulated) == 3
    # best-so-far curve: one entry per call, never decreasing
    assert len(b.curve) == 3 and all(np.diff(b.curve) >= 0)
    # an infeasible configuration costs a step, not a call
    b2 = Budget(p, 5)
    assert b2.reward((3, 4, 2)) == -1.0 and (b2.calls, b2.steps) == (0, 1)


def test_grid_levels_fit_the_budget() -> None:
    p = ToyProblem(nvec=(4, 5, 3), target=(0, 0, 0))
    levels = grid_levels(p, 12)
    assert math.prod(len(v) for v in levels) <= 12
    # parameters take turns: (2, 2, 2) = 8 fits, growing any to 3 levels = 12 fits
    assert sorted(len(v) for v in levels) == [2, 2, 3]
    assert all(v[0] == 0 for v in levels)  # lowest value kept by the even spacing


def test_ci95_by_hand() -> None:
    lo, hi = ci95([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, 2) = 4.3027: half-width 4.3027 / sqrt(3) = 2.4841
    assert (lo, hi) == (pytest.approx(2 - 2.4841, abs=1e-4), pytest.approx(2 + 2.4841, abs=1e-4))
    assert ci95([5.0]) == (5.0, 5.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPLORERS.names())
def test_same_seed_same_best(name: str) -> None:
    p = ToyProblem(nvec=(5, 5, 4), target=(1, 3, 2))
    if name == "dqn":
        p = ToyProblem()
    runs = [compare([name], p, budget=20, seeds=[3]).runs[0] for _ in range(2)]
    assert runs[0].best_config == runs[1].best_config
    assert runs[0].curve == runs[1].curve
    assert runs[0].calls <= 20


@pytest.mark.slow
@pytest.mark.parametrize("name", LEARNED)
def test_learned_explorers_find_the_known_optimum(name: str) -> None:
    p = ToyProblem()  # 60 configurations, optimum (2, 3, 1)
    b = Budget(p, 50)
    EXPLORERS.create(name)(p, b, seed=0)
    assert b.best_index == p.target and b.best_reward == 1.0
    assert b.calls <= 50


def test_compare_fairness_and_json() -> None:
    p = CountingToy(nvec=(6, 6, 6), target=(5, 0, 2))
    res = compare(["random", "ga", "grid", "bo"], p, budget=15, seeds=3)
    js = res.to_json()["explorers"]
    assert set(js) == {"random", "ga", "grid", "bo"}
    for _name, s in js.items():
        assert s["calls"] <= 15
        assert s["ci95"][0] <= s["best_mean"] <= s["ci95"][1]
    # shared memo: a configuration is simulated once across all runs
    assert len(p.simulated) == len(set(p.simulated))
    curves = res.curves()
    assert all(c.shape == (3, 15) for c in curves.values())
    # grid ignores the seed: identical runs, zero-width interval
    assert js["grid"]["ci95"][0] == pytest.approx(js["grid"]["ci95"][1])


def test_dqn_refuses_a_space_too_large() -> None:
    from explore.envs.memctrl import MemCtrlProblem
    from hw_models.errors import SpecError

    p = MemCtrlProblem(trace="stream", requests=200)
    with pytest.raises(SpecError, match="dqn enumerates"):
        EXPLORERS.create("dqn")(p, Budget(p, 5), seed=0)
