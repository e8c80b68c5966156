"""Sweeps: the reported front, resuming, constraints and capacity, Dask = local processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from explore import DesignSpace, Store, sweep
from explore.pareto import front_ids
from tests.explore.spaces import small_decode, synthetic


def _table(store: Path) -> list[tuple[Any, ...]]:
    """Everything a row holds except how long it took and when it was written."""
    with Store(store) as st:
        return [
            (r["key"], r["status"], r["parameters"], r["objectives"], r["metrics"])
            for r in sorted(st.rows(), key=lambda r: r["key"])
        ]


def test_reported_front_matches_the_hand_computed_one(tmp_path: Path) -> None:
    space = DesignSpace.from_dict(synthetic())
    report = sweep(space, store=tmp_path / "s.db", workers=1)
    assert report.points == 15 and report.evaluated == 15
    with Store(tmp_path / "s.db") as st:
        rows = st.rows()
        front = front_ids(rows, st.objectives())
    on_front = sorted(
        (r["parameters"]["x"], r["parameters"]["y"]) for r in rows if r["id"] in front
    )
    assert on_front == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_a_restart_skips_stored_points_and_duplicates_nothing(tmp_path: Path) -> None:
    space = DesignSpace.from_dict(synthetic())
    db = tmp_path / "s.db"
    first = sweep(space, store=db, budget=6, workers=1)
    assert first.evaluated == 6
    second = sweep(space, store=db, workers=2)
    assert (second.skipped, second.evaluated) == (6, 9)
    third = sweep(space, store=db, workers=2)
    assert (third.skipped, third.evaluated) == (15, 0)
    with Store(db) as st:
        assert len(st) == 15


def test_constraints_and_capacity_make_points_infeasible_before_simulation(tmp_path: Path) -> None:
    doc = small_decode()
    doc["parameters"] = {
        # Llama-2-7B bf16 weights alone are 13.5 GB: 4 GB of HBM plus 4 GB of host DDR
        # cannot hold them, 80 GB can
        "tiers.hbm.capacity_bytes": {"values": ["4 GB", "80 GB"]},
        "workload.batch": {"values": [1, 8]},
    }
    # shrink host DDR too, so nothing can spill (a one-value system parameter)
    doc["parameters"]["tiers.ddr.capacity_bytes"] = {"values": ["4 GB"]}
    doc["derived"] = {"hbm_gb": "tiers.hbm.capacity_bytes / 1e9"}
    doc["constraints"] = ["hbm_gb * workload.batch <= 100"]
    space = DesignSpace.from_dict(doc)
    report = sweep(space, store=tmp_path / "c.db", workers=1)
    with Store(tmp_path / "c.db") as st:
        by = {
            (r["parameters"]["tiers.hbm.capacity_bytes"], r["parameters"]["workload.batch"]): r
            for r in st.rows()
        }
    assert by[("80 GB", 8)]["status"] == "infeasible"  # 80 x 8 > 100: never simulated
    assert "constraint not met" in by[("80 GB", 8)]["message"]
    assert by[("80 GB", 8)]["metrics"] == {}
    assert by[("4 GB", 1)]["status"] == "infeasible"  # does not fit: capacity
    assert "hbm" in by[("4 GB", 1)]["message"]
    assert by[("80 GB", 1)]["status"] == "ok"
    assert report.infeasible == 3 and report.evaluated == 1


def test_more_hbm_bandwidth_is_never_slower(tmp_path: Path) -> None:
    space = DesignSpace.from_dict(small_decode())
    sweep(space, store=tmp_path / "m.db", workers=2)
    with Store(tmp_path / "m.db") as st:
        rows = st.rows()
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows)
    for batch in (1, 4, 16, 64):
        curve = sorted(
            (r["parameters"]["tiers.hbm.read_bandwidth_bytes_per_s"], r["objectives"]["tpot_s"])
            for r in rows
            if r["parameters"]["workload.batch"] == batch
        )
        tpot = [t for _, t in curve]
        assert tpot == sorted(tpot, reverse=True)
        # the roofline bound: a decode step reads at least the weights (13.5 GB for 7B bf16)
        for bw, t in curve:
            assert t >= 13.4e9 / bw


def test_dask_local_cluster_gives_the_same_table_as_local_processes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    space = DesignSpace.from_dict(small_decode())
    sweep(space, store=tmp_path / "local.db", workers=2)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        report = sweep(space, store=tmp_path / "dask.db", scheduler=cluster.scheduler_address)
    assert report.evaluated == 12
    assert _table(tmp_path / "dask.db") == _table(tmp_path / "local.db")


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_adaptive_samplers_fill_their_budget_and_resume(tmp_path: Path, sampler: str) -> None:
    space = DesignSpace.from_dict(
        {
            "evaluator": "formula",
            "parameters": {"x": {"low": 0.0, "high": 4.0}, "y": {"low": 0.0, "high": 2.0}},
            "formulas": {"f1": "x", "f2": "(x - 3) ** 2 + y"},
            "objectives": {"f1": "min", "f2": "min"},
        }
    )
    db = tmp_path / "a.db"
    first = sweep(space, store=db, sampler=sampler, budget=12, workers=1, seed=1)
    assert first.evaluated == 12
    again = sweep(space, store=db, sampler=sampler, budget=20, workers=1, seed=1)
    assert again.skipped == 12 and again.evaluated == 8
    with Store(db) as st:
        assert len(st) == 20
