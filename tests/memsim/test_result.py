"""SimResult tables (exact contract columns) and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import memsim
from tests.memsim.world import tiny, tiny_graph


@pytest.fixture(scope="module")
def result() -> memsim.SimResult:
    return memsim.simulate(tiny(), tiny_graph(), policy="stream_weights")


def test_frames_have_the_contract_columns(result: memsim.SimResult) -> None:
    assert list(result.ops_frame().columns) == [
        "op", "name", "kind", "phase", "layer", "step", "stage", "device", "unit", "dtype",
        "start_s", "end_s", "duration_s", "flops", "bytes_read", "bytes_written",
        "intensity_flop_per_byte", "bound",
    ]  # fmt: skip
    assert list(result.traffic_frame().columns) == ["op", "resource", "bytes_read", "bytes_written"]
    assert list(result.tiers_frame().columns) == [
        "tier", "kind", "capacity_bytes", "instances", "bytes_read", "bytes_written", "busy_s",
        "peak_bytes", "energy_j", "peak_bandwidth_bytes_per_s",
    ]  # fmt: skip
    assert list(result.links_frame().columns) == [
        "link", "kind", "bytes", "busy_s", "energy_j", "bandwidth_bytes_per_s",
    ]  # fmt: skip
    assert list(result.occupancy_frame().columns) == ["time_s", "tier", "bytes", "capacity_bytes"]
    assert list(result.timeline_frame().columns) == [
        "resource", "resource_kind", "start_s", "end_s", "label", "phase",
    ]  # fmt: skip
    assert list(result.energy_frame().columns) == ["component", "tensor_kind", "phase", "energy_j"]
    s = result.summary()
    for key in ("makespan_s", "ttft_s", "tpot_s", "tokens_per_s", "energy_j", "bottleneck", "mfu",
                "achieved_bandwidth_bytes_per_s", "tiers", "meta"):  # fmt: skip
        assert key in s
    assert set(s["meta"]) >= {
        "system",
        "system_hash",
        "model",
        "version",
        "seed",
        "fidelity",
        "policy",
    }


def test_views_agree_with_each_other(result: memsim.SimResult) -> None:
    ops = result.ops_frame()
    tl = result.timeline_frame()
    assert set(tl["resource_kind"]) == {"compute", "dma", "channel"}
    assert (ops["end_s"] >= ops["start_s"]).all()
    assert ops["intensity_flop_per_byte"].iloc[0] == pytest.approx(
        ops["flops"].iloc[0] / (ops["bytes_read"].iloc[0] + ops["bytes_written"].iloc[0])
    )
    # the weight is fetched once: 1e9 B into HBM, read again by the GEMM
    occ = result.occupancy_frame()
    assert occ[occ.tier == "hbm"]["bytes"].max() == pytest.approx(1e9 + 2048)
    assert result.summary()["tiers"]["ddr"]["bytes_read"] == pytest.approx(1e9)


def test_exports_round_trip(result: memsim.SimResult, tmp_path: Path) -> None:
    doc = json.loads(result.to_json(tmp_path / "r.json").read_text())
    assert doc["summary"]["makespan_s"] == pytest.approx(result.makespan_s)
    written = result.to_csv(tmp_path / "csv")
    assert {p.name for p in written} >= {"ops.csv", "tiers.csv", "traffic.csv", "occupancy.csv"}
    ops = pd.read_csv(tmp_path / "csv" / "ops.csv")
    assert ops["name"].tolist() == ["mm", "act"]
    result.to_parquet(tmp_path / "pq")
    assert pd.read_parquet(tmp_path / "pq" / "tiers.parquet")["tier"].tolist() == ["hbm", "ddr"]
    trace = json.loads(result.to_chrome_trace(tmp_path / "t.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["name"] for e in spans} >= {"mm", "act"}
    assert all(e["dur"] >= 0 and "ts" in e for e in spans)
    # no temporary files left behind
    assert not [p for p in tmp_path.rglob(".*")]


def test_result_is_frozen(result: memsim.SimResult) -> None:
    with pytest.raises(AttributeError):
        result.makespan_s = 0.0  # type: ignore[misc]
