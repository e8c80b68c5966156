"""DesignSpace: the smallest file as written, dotted paths, derived values, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from explore import DesignSpace
from hw_models import load_system
from hw_models.errors import SpecError
from tests.explore.spaces import SMALLEST_YAML, small_decode, synthetic


def test_smallest_space_file_works_as_written(tmp_path: Path) -> None:
    f = tmp_path / "space.yaml"
    f.write_text(SMALLEST_YAML)
    space = DesignSpace.from_yaml(f)
    assert space.grid_size() == 9
    points = list(space.grid_points())
    # PyYAML reads `2.0e12` (no exponent sign) as a string: the space reads it as a number
    assert points[0] == {"tiers.hbm.read_bandwidth_bytes_per_s": 2.0e12, "workload.batch": 1}
    job = space.job(points[0], index=0)
    assert job.workload["batch"] == 1 and job.workload["model"] == "llama2_7b"
    assert job.system_overrides["tiers.hbm.read_bandwidth_bytes_per_s"] == 2.0e12


def test_bandwidth_of_a_dram_backed_tier_runs_its_devices_at_the_matching_rate(
    tmp_path: Path,
) -> None:
    # H100: 5 HBM3 stacks (JEDEC HBM3: 1024 bit x 6.4 Gb/s = 819.2 GB/s per stack at
    # 6400 MT/s); 2.0 TB/s means running them at 6400 x 2.0e12 / (5 x 819.2e9) MT/s
    f = tmp_path / "space.yaml"
    f.write_text(SMALLEST_YAML)
    space = DesignSpace.from_yaml(f)
    job = space.job(next(space.grid_points()), index=0)
    system = load_system("h100_sxm", overrides=job.system_overrides)
    hbm = system.tiers["hbm"]
    assert hbm.read_bandwidth_bytes_per_s == 2.0e12
    assert hbm.dram is not None
    # (the preset's 5234 MT/s gives 3.3497 TB/s for the datasheet's 3.35: 1e-4 apart)
    assert hbm.dram.peak_bandwidth_bytes_per_s == pytest.approx(2.0e12, rel=1e-3)
    assert hbm.dram.data_rate_mtps == pytest.approx(6400 * 2.0e12 / (5 * 819.2e9), rel=1e-3)


def test_keys_are_content_hashes() -> None:
    space = DesignSpace.from_dict(small_decode())
    p = {"tiers.hbm.read_bandwidth_bytes_per_s": 2.0e12, "workload.batch": 4}
    a, b = space.job(p, index=0), space.job(dict(reversed(p.items())), index=7)
    assert a.key == b.key  # the same point, whatever its order or index
    assert space.job(p, index=0, seed=1).key != a.key
    assert space.job({**p, "workload.batch": 16}, index=0).key != a.key


def _refused(doc: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as err:
        DesignSpace.from_dict(doc)
    return err.value


def test_unknown_system_path_is_refused_naming_it() -> None:
    doc = small_decode()
    doc["parameters"]["tiers.hbm.bandwith_bytes_per_s"] = {"values": [1.0, 2.0]}
    err = _refused(doc)
    assert "parameters.tiers.hbm.bandwith_bytes_per_s" in str(err)
    doc = small_decode()
    doc["parameters"]["tiers.l3.capacity_bytes"] = {"values": [1.0]}
    assert "parameters.tiers.l3.capacity_bytes" in str(_refused(doc))


def test_unknown_workload_field_and_objective_are_refused() -> None:
    doc = small_decode()
    doc["parameters"]["workload.batchsize"] = {"values": [1]}
    assert "workload.batchsize: unknown workload field" in str(_refused(doc))
    doc = small_decode()
    doc["objectives"] = {"tpot": "min"}
    assert "objectives.tpot: unknown metric" in str(_refused(doc))
    doc = small_decode()
    doc["objectives"] = {"tpot_s": "smallest"}
    assert "objectives.tpot_s" in str(_refused(doc))


def test_empty_ranges_are_refused() -> None:
    doc = small_decode()
    doc["parameters"]["workload.batch"] = {"values": []}
    assert "parameters.workload.batch.values: empty list" in str(_refused(doc))
    doc["parameters"]["workload.batch"] = {"low": 8, "high": 2}
    assert "parameters.workload.batch: empty range" in str(_refused(doc))
    doc["parameters"]["workload.batch"] = {"low": 0.0, "high": 2.0, "log": True}
    assert "parameters.workload.batch.low" in str(_refused(doc))


def test_a_value_the_system_refuses_is_reported_at_the_parameter() -> None:
    doc = small_decode()
    doc["parameters"]["tiers.hbm.capacity_bytes"] = {"values": [-1.0, 80e9]}
    err = _refused(doc)
    assert "parameters.tiers.hbm.capacity_bytes: at -1.0" in str(err)


def test_derived_values_and_constraints_from_a_price_table() -> None:
    doc = synthetic()
    doc["prices"] = {"usd_per_x": 10.0}
    doc["derived"] = {"cost_usd": "x * prices.usd_per_x + 5"}
    doc["constraints"] = ["cost_usd <= 35"]
    space = DesignSpace.from_dict(doc)
    assert space.derived_values({"x": 3, "y": 0}) == {"cost_usd": 35.0}
    assert space.violations({"x": 3, "y": 0}, {"cost_usd": 35.0}) == []
    assert space.violations({"x": 4, "y": 0}, {"cost_usd": 45.0}) == ["cost_usd <= 35"]


def test_constraints_no_point_meets_are_refused() -> None:
    doc = synthetic()
    doc["constraints"] = ["x + y > 100"]
    err = _refused(doc)
    assert "constraints[0]: no point of the space satisfies 'x + y > 100'" in str(err)


def test_expressions_read_only_known_names_and_safe_syntax() -> None:
    doc = synthetic()
    doc["derived"] = {"z": "x * unknown_thing"}
    assert "derived.z: unknown name 'unknown_thing'" in str(_refused(doc))
    doc["derived"] = {"z": "__import__('os')"}
    assert "derived.z: unknown function '__import__'" in str(_refused(doc))
    doc["derived"] = {"z": "x[0]"}
    assert "derived.z: unsupported expression syntax" in str(_refused(doc))


def test_system_fields_in_expressions_read_the_point_or_the_preset() -> None:
    doc = small_decode()
    doc["derived"] = {
        "gb": "tiers.hbm.capacity_bytes / 1e9 + tiers.hbm.read_bandwidth_bytes_per_s / 1e12"
    }
    space = DesignSpace.from_dict(doc)
    p = {"tiers.hbm.read_bandwidth_bytes_per_s": 5.0e12, "workload.batch": 1}
    assert space.derived_values(p)["gb"] == pytest.approx(80.0 + 5.0)  # H100: 80 GB HBM3


def test_ranges_grid_log_and_integers() -> None:
    doc = synthetic()
    doc["parameters"]["z"] = {"low": 1.0, "high": 100.0, "log": True, "steps": 3}
    doc["formulas"]["f2"] = "(x - 3) ** 2 + y + 0 * z"
    space = DesignSpace.from_dict(doc)
    x, _, z = space.parameters
    assert x.grid() == [0, 1, 2, 3, 4] and x.integer
    assert z.grid() == pytest.approx([1.0, 10.0, 100.0])
    assert x.from_unit(0.0) == 0 and x.from_unit(0.999) == 4
    assert z.from_unit(0.5) in z.grid()


def test_serve_parameters_need_a_serving_evaluator() -> None:
    doc = small_decode()
    doc["parameters"]["serve.max_batched_tokens"] = {"values": [512]}
    assert "has no serve settings" in str(_refused(doc))


def test_derived_values_may_come_in_any_order_but_not_in_a_circle(tmp_path: Path) -> None:
    doc = synthetic()
    doc["derived"] = {"total": "part * 2", "part": "x + 1"}
    space = DesignSpace.from_dict(doc)
    assert space.derived_values({"x": 2, "y": 0}) == {"part": 3, "total": 6}
    # rebuilt from its stored document (as `sweep show` and --fidelity do), the same
    assert space.with_engine().derived_values({"x": 2, "y": 0})["total"] == 6
    doc["derived"] = {"a": "b + x", "b": "a * 2"}
    assert "circular definition: a -> b -> a" in str(_refused(doc))


def test_workload_values_are_checked_at_the_extremes() -> None:
    doc = small_decode()
    doc["parameters"]["workload.batch"] = {"values": [0, 4]}
    assert "parameters.workload.batch: at 0" in str(_refused(doc))
    doc["parameters"]["workload.batch"] = {"values": [1]}
    doc["parameters"]["engine.fidelity"] = {"values": ["analytic", "exact"]}
    assert "parameters.engine.fidelity: at 'exact'" in str(_refused(doc))


def test_the_system_itself_can_be_a_parameter() -> None:
    doc = small_decode()
    doc["parameters"] = {
        "system": {"values": ["h100_sxm", "h200_sxm"]},
        "tiers.hbm.capacity_bytes": {"values": ["80 GB"]},
    }
    space = DesignSpace.from_dict(doc)
    jobs = [space.job(p, index=i) for i, p in enumerate(space.grid_points())]
    assert [j.system for j in jobs] == ["h100_sxm", "h200_sxm"]
    assert jobs[0].key != jobs[1].key
    doc["parameters"]["tiers.l4.capacity_bytes"] = {"values": [1.0]}
    assert "parameters.tiers.l4.capacity_bytes" in str(_refused(doc))
