"""Plots of a real ``memsim.simulate`` result, and of the files a run writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hw_models import System, load_system_dict
from memsim.simulate import simulate
from plots import (
    RunTables,
    breakdown,
    render_report,
    roofline,
    roofline_points,
    write_run_figures,
)
from plots.tables import timeline_from_chrome_trace
from tests.plots.conftest import plot_system_data
from workloads.graph import Access, Graph, Op, Tensor


def _one_device() -> System:
    data = plot_system_data()
    data["devices"] = 1
    del data["links"]["nvl"]
    return load_system_dict(data)


def _graph() -> Graph:
    tensors = {
        "w0": Tensor(name="w0", bytes=2e9, kind="weight", layer=0),
        "x": Tensor(name="x", bytes=1e6, kind="activation"),
        "kv": Tensor(name="kv", bytes=1e8, kind="kv", layer=0),
    }
    ops = (
        # 2 TFLOP over 2 GB of weights: compute-bound on 100 TFLOP/s (20 ms) vs 2.5 ms of HBM
        Op(
            name="gemm",
            kind="gemm",
            flops=2e12,
            phase="prefill",
            layer=0,
            reads=(Access(tensor="w0", bytes=2e9), Access(tensor="x", bytes=1e6)),
            writes=(Access(tensor="x", bytes=1e6),),
        ),
        # 1 GFLOP over 100 MB of KV cache: memory-bound
        Op(
            name="attn",
            kind="attention",
            flops=1e9,
            phase="decode",
            step=1,
            layer=0,
            reads=(Access(tensor="kv", bytes=1e8),),
            writes=(Access(tensor="x", bytes=1e6),),
        ),
    )
    return Graph(tensors=tensors, ops=ops, meta={"model": "toy"})


@pytest.fixture(scope="module", params=["event", "analytic"])
def result(request: pytest.FixtureRequest) -> Any:
    return simulate(_one_device(), _graph(), fidelity=request.param)


def test_no_op_is_drawn_above_its_roof(result: Any) -> None:
    pts = roofline_points(result)
    assert set(pts["op"]) == {0, 1}
    system = result.system
    peak = system.peak_flops_per_s("bf16")
    for _, p in pts.iterrows():
        kind, _, name = p["resource"].partition(":")
        bw = (
            system.tiers[name].read_bandwidth_bytes_per_s
            if kind == "tier"
            else system.links[name].bandwidth_bytes_per_s
        )
        assert p["flops_per_s"] <= min(peak, bw * p["intensity_flop_per_byte"]) * (1 + 1e-9)
    # the GEMM runs near the compute roof: 2 TFLOP in >= 20 ms
    gemm = pts[pts["op"] == 0].iloc[0]
    assert gemm["flops_per_s"] == pytest.approx(100e12, rel=0.05)
    ax = roofline(result)
    assert sum(
        len(c.get_offsets()) for c in ax.collections if (c.get_gid() or "").startswith("points:")
    ) == len(pts)


@pytest.mark.slow
def test_write_run_figures(result: Any, tmp_path: Path) -> None:
    paths = write_run_figures(result, tmp_path)
    assert [p.name for p in paths] == ["roofline.png", "timeline.png", "occupancy.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    breakdown(result)  # an empty energy table still draws


@pytest.mark.slow
def test_run_folder_round_trip(result: Any, tmp_path: Path) -> None:
    result.to_csv(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps(result.summary()))
    result.to_chrome_trace(tmp_path / "trace.json")
    write_run_figures(result, tmp_path)
    tables = RunTables.from_dir(tmp_path, system=result.system)
    assert len(roofline_points(tables)) == len(roofline_points(result))
    trace_tl = timeline_from_chrome_trace(tmp_path / "trace.json")
    assert len(trace_tl[trace_tl["resource_kind"] == "compute"]) == 2
    page = render_report(tmp_path)
    assert page.count("data:image/png;base64,") >= 3
    assert "Makespan" in page and "toy" in page
