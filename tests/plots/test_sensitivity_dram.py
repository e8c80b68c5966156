"""Sensitivity curves and DRAM device plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hw_models.errors import SpecError
from plots import dram, dram_latency, dram_row_breakdown, row_outcomes, sensitivity
from plots.sensitivity import sensitivity_panels

SWEEP = pd.DataFrame(
    {
        "hbm_bandwidth_bytes_per_s": [4e12, 1e12, 2e12, 1e12, 2e12, 4e12],
        "tpot_s": [0.0075, 0.030, 0.015, 0.060, 0.030, 0.015],
        "energy_j": [1.0, 1.2, 1.1, 2.0, 1.9, 1.8],
        "model": ["7b", "7b", "7b", "13b", "13b", "13b"],
    }
)


def test_sensitivity_one_sorted_curve_per_group() -> None:
    ax = sensitivity(SWEEP, knob="hbm_bandwidth_bytes_per_s", objective="tpot_s", group="model")
    curves = {ln.get_gid(): ln for ln in ax.get_lines()}
    assert set(curves) == {"sensitivity:7b", "sensitivity:13b"}
    x, y = curves["sensitivity:7b"].get_data()
    assert list(x) == [1e12, 2e12, 4e12] and list(y) == [0.030, 0.015, 0.0075]
    assert ax.get_xlabel() == "hbm bandwidth (B/s)" and ax.get_ylabel() == "tpot (s)"
    assert ax.get_xscale() == "linear"  # 4x span: no log axis
    assert curves["sensitivity:7b"].get_linestyle() != curves["sensitivity:13b"].get_linestyle()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["7b", "13b"]


def test_sensitivity_panels_and_errors() -> None:
    fig = sensitivity_panels(
        SWEEP, knob="hbm_bandwidth_bytes_per_s", objectives=["tpot_s", "energy_j"]
    )
    assert [a.get_ylabel() for a in fig.get_axes()] == ["tpot (s)", "energy (J)"]
    with pytest.raises(SpecError, match="missing column 'ttft_s'"):
        sensitivity(SWEEP, knob="hbm_bandwidth_bytes_per_s", objective="ttft_s")
    with pytest.raises(SpecError, match="numeric"):
        sensitivity(SWEEP, knob="model", objective="tpot_s")


STATS = {
    "row_hits": 800,
    "row_misses": 150,
    "row_conflicts": 50,
    "read_latencies_ns": np.concatenate(
        [np.full(800, 20.0), np.full(150, 35.0), np.full(50, 50.0)]
    ),
    "avg_read_latency_ns": 25.0,
    "p99_read_latency_ns": 50.0,
}


def test_row_outcomes_fractions() -> None:
    t = row_outcomes({"frfcfs": STATS, "fcfs": {**STATS, "row_hits": 0}})
    assert t.loc["frfcfs", "row_hits_fraction"] == pytest.approx(0.8)
    assert t.loc["fcfs", "row_misses_fraction"] == pytest.approx(0.75)  # 150 / 200


def test_row_breakdown_bars() -> None:
    ax = dram_row_breakdown({"frfcfs": STATS})
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    assert bars["bar:row_hits:frfcfs"].get_width() == pytest.approx(80.0)
    assert bars["bar:row_conflicts:frfcfs"].get_x() == pytest.approx(95.0)
    assert ax.get_xlabel() == "Requests (%)"
    assert bars["bar:row_hits:frfcfs"].get_hatch() != bars["bar:row_misses:frfcfs"].get_hatch()


def test_latency_histogram_and_cdf() -> None:
    ax = dram_latency(STATS, bins=3)
    step = next(p for p in ax.patches if p.get_gid() == "latency:run")
    heights = step.get_data().values
    assert list(heights) == pytest.approx([80.0, 15.0, 5.0])  # % of requests per bin
    assert ax.get_xlabel() == "Read latency (ns)"
    marks = {ln.get_gid(): ln.get_xdata()[0] for ln in ax.get_lines()}
    assert marks == {"mean:run": 25.0, "p99:run": 50.0}
    ax2 = dram_latency(STATS, cdf=True, bins=3)
    cdf = next(ln for ln in ax2.get_lines() if ln.get_gid() == "latency:run")
    assert cdf.get_ydata()[-1] == pytest.approx(100.0)


def test_histogram_input_and_two_panel_figure() -> None:
    hist = {
        "row_hits": 1,
        "row_misses": 1,
        "row_conflicts": 2,
        "latency_histogram": {"bin_edges_ns": [0, 10, 20], "counts": [3, 1]},
    }
    fig = dram({"a": hist, "b": STATS})
    assert len(fig.get_axes()) == 2
    with pytest.raises(SpecError, match="3 bin edges for 3 counts"):
        dram_latency({"latency_histogram": {"bin_edges_ns": [0, 1, 2], "counts": [1, 2, 3]}})
    with pytest.raises(SpecError, match=r"stats.run.row_conflicts: required key is missing"):
        row_outcomes({"row_hits": 1, "row_misses": 2})
