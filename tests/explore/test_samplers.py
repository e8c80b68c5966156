"""Every sampler is seeded; LHS stratifies; OAT and Sobol make the points their analyses need."""

from __future__ import annotations

import numpy as np
import pytest

from explore import DesignSpace
from explore.strategies import make_sampler, sampler_names
from explore.strategies.basic import Sobol
from hw_models.errors import SpecError


def _space() -> DesignSpace:
    return DesignSpace.from_dict(
        {
            "evaluator": "formula",
            "parameters": {
                "a": {"low": 0.0, "high": 1.0},
                "b": {"low": 1.0, "high": 1000.0, "log": True},
                "c": {"values": ["p", "q", "r"]},
            },
            "formulas": {"f": "a + log10(b)", "g": "b - a"},
            "objectives": {"f": "min", "g": "max"},
        }
    )


@pytest.mark.parametrize("name", ["random", "lhs", "sobol"])
def test_fixed_samplers_are_seeded(name: str) -> None:
    space = _space()
    a = make_sampler(name, space, seed=3, budget=20).points()  # type: ignore[union-attr]
    b = make_sampler(name, space, seed=3, budget=20).points()  # type: ignore[union-attr]
    c = make_sampler(name, space, seed=4, budget=20).points()  # type: ignore[union-attr]
    assert a == b and a != c


def test_every_registered_sampler_is_known_to_the_cli() -> None:
    assert set(sampler_names()) == {"grid", "random", "lhs", "oat", "sobol", "tpe", "nsga2"}


def test_lhs_puts_one_point_in_every_stratum() -> None:
    space = _space()
    pts = make_sampler("lhs", space, seed=0, budget=10).points()  # type: ignore[union-attr]
    a = np.array([p["a"] for p in pts])
    b = np.log10([p["b"] for p in pts]) / 3.0  # log range: strata are equal in log
    for u in (a, b):
        assert sorted(np.floor(u * 10).astype(int).tolist()) == list(range(10))


def test_oat_varies_one_parameter_at_a_time() -> None:
    space = _space()
    pts = make_sampler("oat", space, seed=0, budget=None).points()  # type: ignore[union-attr]
    centre = pts[0]
    assert centre["c"] == "q" and centre["a"] == pytest.approx(0.5)
    # 5 levels for each range, 3 values for c: 1 centre + 4 + 4 + 2
    assert len(pts) == 11
    for p in pts[1:]:
        assert sum(p[k] != centre[k] for k in centre) == 1


def test_sobol_takes_the_largest_power_of_two_the_budget_allows() -> None:
    space = _space()  # d = 3: N x 5 points
    assert len(Sobol(space, seed=0, budget=100).points()) == 16 * 5
    with pytest.raises(SpecError, match="--budget"):
        Sobol(space, seed=0, budget=4).points()


@pytest.mark.parametrize("name", ["tpe", "nsga2"])
def test_optuna_samplers_ask_points_of_the_space(name: str) -> None:
    space = _space()
    s = make_sampler(name, space, seed=0, budget=8)
    token, point = s.ask()  # type: ignore[union-attr]
    assert 0.0 <= point["a"] <= 1.0 and 1.0 <= point["b"] <= 1000.0 and point["c"] in "pqr"
    s.tell(token, [1.0, 2.0])  # type: ignore[union-attr]


def test_random_and_lhs_need_a_budget() -> None:
    with pytest.raises(SpecError, match="--budget"):
        make_sampler("lhs", _space(), seed=0, budget=None).points()  # type: ignore[union-attr]
