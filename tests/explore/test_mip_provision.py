"""Provisioning MIP: the cheapest point meeting the target, checked against the whole grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from explore.evaluate import evaluator_class
from explore.mip.provisioning import parse_target, plan_provision
from explore.space import DesignSpace
from hw_models.errors import SpecError

SPACE = """
description: "HBM bandwidth x capacity for Llama-2-7B decode"
system: h100_sxm
workload: {model: llama2_7b, kind: decode, batch: 1, prompt: 512}
parameters:
  tiers.hbm.read_bandwidth_bytes_per_s: {values: [1.0e+12, 2.0e+12, 3.35e+12]}
  tiers.hbm.capacity_bytes: {values: [8 GB, 24 GB, 80 GB]}
prices:
  hbm_usd_per_gb: 15.0
  hbm_usd_per_tb_per_s: 1500.0
derived:
  cost_usd: >-
    tiers.hbm.capacity_bytes / 1e9 * prices.hbm_usd_per_gb
    + tiers.hbm.read_bandwidth_bytes_per_s / 1e12 * prices.hbm_usd_per_tb_per_s
objectives: {tpot_s: min, cost_usd: min}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> DesignSpace:
    path: Path = tmp_path_factory.mktemp("prov") / "space.yaml"
    path.write_text(SPACE)
    return DesignSpace.from_yaml(path)


def _grid(space: DesignSpace) -> list[tuple[float, float]]:
    ev = evaluator_class(space.evaluator)(space)
    out = []
    for i, point in enumerate(space.grid_points()):
        rec = ev.evaluate(space.job(point, index=i))
        out.append((rec.metrics["tpot_s"], rec.derived["cost_usd"]))
    return out


@pytest.mark.parametrize("target", [0.006, 0.01, 0.02])
def test_cheapest_point_meeting_the_target_equals_the_grid_search(
    space: DesignSpace, target: float
) -> None:
    grid = _grid(space)
    cheapest = min(c for t, c in grid if t <= target)
    plan = plan_provision(space, target=f"tpot_s<={target}")
    assert plan.simulated <= target
    assert plan.cost == pytest.approx(cheapest)
    assert plan.evaluations <= len(grid)


def test_unreachable_target_is_refused_with_the_best_seen(space: DesignSpace) -> None:
    with pytest.raises(SpecError, match=r"no point of the space meets tpot_s <= 0\.001"):
        plan_provision(space, target="tpot_s<=0.001")


def test_target_syntax() -> None:
    assert parse_target("tokens_per_s>=100") == ("tokens_per_s", ">=", 100.0)
    with pytest.raises(SpecError, match="target"):
        parse_target("tpot_s < 3")
