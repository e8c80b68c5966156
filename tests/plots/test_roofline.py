"""The roofline draws what the system and the run say: ceilings, slopes, ridges, points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex

from hw_models import System, load_system, load_system_dict
from hw_models.errors import SpecError
from plots import ceilings_frame, occupancy, roofline, roofline_grid, roofline_points
from plots.style import PHASE_LOOKS, TIER_LOOKS
from tests.plots.conftest import FakeResult, plot_system_data


def _lines(ax, prefix: str) -> dict[str, object]:
    return {ln.get_gid(): ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(prefix)}


def _collections(ax, prefix: str) -> dict[str, object]:
    return {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith(prefix)}


def test_one_ceiling_per_dtype_tier_and_link(plot_system: System) -> None:
    ax = roofline(plot_system)
    ceilings = _lines(ax, "ceiling:")
    # 3 dtypes (fp32, bf16, fp8) + 3 tiers (sram, hbm, ddr) + 2 links (pcie, nvl)
    assert sorted(ceilings) == sorted(
        [
            "ceiling:compute:fp32",
            "ceiling:compute:bf16",
            "ceiling:compute:fp8",
            "ceiling:tier:sram",
            "ceiling:tier:hbm",
            "ceiling:tier:ddr",
            "ceiling:link:pcie",
            "ceiling:link:nvl",
        ]
    )
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "Arithmetic intensity (FLOP/B)"
    assert ax.get_ylabel() == "Attainable performance (FLOP/s)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "hbm (hbm) 1 TB/s" in legend and "BF16 peak 100 TFLOP/s" in legend


def test_slanted_ceiling_slope_is_the_bandwidth(plot_system: System) -> None:
    ax = roofline(plot_system)
    ceilings = _lines(ax, "ceiling:")
    for gid, bw in [
        ("ceiling:tier:sram", 10e12),
        ("ceiling:tier:hbm", 1e12),
        ("ceiling:tier:ddr", 100e9),
        ("ceiling:link:pcie", 10e9),
        ("ceiling:link:nvl", 50e9),
    ]:
        x, y = (np.asarray(v, dtype=float) for v in ceilings[gid].get_data())
        assert y / x == pytest.approx([bw] * len(x), rel=1e-12)
        # it rises to the highest compute ceiling (fp8, 200 TFLOP/s) and stops there
        assert y.max() == pytest.approx(200e12)
    for gid, peak in [("ceiling:compute:fp32", 25e12), ("ceiling:compute:bf16", 100e12)]:
        _, y = ceilings[gid].get_data()
        assert list(y) == [peak, peak]


def test_ridge_points_at_peak_over_bandwidth(plot_system: System) -> None:
    ax = roofline(plot_system, dtype="bf16")
    ridges = _lines(ax, "ridge:")
    # bf16 100 TFLOP/s / 1 TB/s = 100 FLOP/B; / 100 GB/s = 1000; / 10 GB/s (PCIe) = 10^4
    expected = {
        "ridge:tier:hbm": 100.0,
        "ridge:tier:ddr": 1000.0,
        "ridge:tier:sram": 10.0,
        "ridge:link:pcie": 1e4,
        "ridge:link:nvl": 2000.0,
    }
    assert set(ridges) == set(expected)
    for gid, x in expected.items():
        xs, ys = ridges[gid].get_data()
        assert xs[0] == pytest.approx(x) and ys[0] == pytest.approx(100e12)
    assert ridges["ridge:tier:hbm"].get_data()[0][0] == pytest.approx(
        plot_system.ridge_point("hbm", "bf16")
    )


def test_effective_ceilings_only_where_fraction_below_one(plot_system: System) -> None:
    ax = roofline(plot_system, effective=True)
    eff = _lines(ax, "ceiling:tier:hbm:effective") | _lines(ax, "ceiling:link:pcie:effective")
    assert list(eff) == ["ceiling:tier:hbm:effective"]  # only HBM has achievable 0.8
    x, y = (np.asarray(v, dtype=float) for v in eff["ceiling:tier:hbm:effective"].get_data())
    assert y / x == pytest.approx([0.8e12, 0.8e12])


def test_points_placed_by_traffic_per_tier(fake_result: FakeResult) -> None:
    pts = roofline_points(fake_result)
    # op0: sram + hbm, op1: hbm, op2: hbm, op3: ddr + pcie; op4 has no FLOPs -> left out
    assert len(pts) == 6
    p = pts[(pts["op"] == 0) & (pts["resource"] == "tier:hbm")].iloc[0]
    assert p["intensity_flop_per_byte"] == pytest.approx(2e12 / 1e9)  # 2000 FLOP/B
    assert p["flops_per_s"] == pytest.approx(2e12 / 0.025)  # 80 TFLOP/s
    s = pts[(pts["op"] == 0) & (pts["resource"] == "tier:sram")].iloc[0]
    assert s["intensity_flop_per_byte"] == pytest.approx(2e12 / 4e9)  # read 3 GB + wrote 1 GB
    # share of time: 25 ms of 91 ms of op time
    assert p["time_share"] == pytest.approx(0.025 / 0.091)

    ax = roofline(fake_result)
    drawn = _collections(ax, "points:")
    assert sum(len(c.get_offsets()) for c in drawn.values()) == 6
    assert set(drawn) == {
        "points:prefill:tier:sram",
        "points:prefill:tier:hbm",
        "points:decode:tier:hbm",
        "points:decode:tier:ddr",
        "points:decode:link:pcie",
    }
    # colour by phase
    for gid, coll in drawn.items():
        phase = gid.split(":")[1]
        assert to_hex(coll.get_facecolors()[0]) == PHASE_LOOKS[phase].color.lower()
    # size by share of time: the 25 ms op is drawn 5x the area of the 5 ms one (+ floor)
    pre_hbm = drawn["points:prefill:tier:hbm"]
    xs = np.asarray(pre_hbm.get_offsets())[:, 0]
    sizes = dict(zip(np.round(xs, 6), pre_hbm.get_sizes(), strict=True))
    big, small = sizes[2000.0], sizes[round(1e11 / 5e8, 6)]
    assert (big - 6.0) / (small - 6.0) == pytest.approx(5.0)


def test_per_op_points_use_offchip_intensity(fake_result: FakeResult) -> None:
    pts = roofline_points(fake_result, hierarchical=False)
    assert len(pts) == 4
    op2 = pts[pts["op"] == 2].iloc[0]
    assert op2["intensity_flop_per_byte"] == pytest.approx(2e9 / 1e10)


def test_tier_colour_is_the_same_in_roofline_and_occupancy(fake_result: FakeResult) -> None:
    ax_r = roofline(fake_result)
    ax_o = occupancy(fake_result)
    for tier in ("hbm", "ddr", "sram"):
        c_r = _lines(ax_r, f"ceiling:tier:{tier}")[f"ceiling:tier:{tier}"].get_color()
        c_o = _lines(ax_o, f"occupancy:{tier}")[f"occupancy:{tier}"].get_color()
        assert to_hex(c_r) == to_hex(c_o) == TIER_LOOKS[tier].color.lower()


def test_systems_side_by_side(plot_system: System) -> None:
    h100 = load_system("h100_sxm")
    fig = roofline_grid([plot_system, h100])
    axes = fig.get_axes()
    assert len(axes) == 2
    assert axes[0].get_ylim() == axes[1].get_ylim()
    assert "ceiling:tier:hbm" in _lines(axes[1], "ceiling:")
    # H100 HBM3: 3.35 TB/s
    x, y = (
        np.asarray(v, dtype=float)
        for v in _lines(axes[1], "ceiling:tier:hbm")["ceiling:tier:hbm"].get_data()
    )
    assert y[0] / x[0] == pytest.approx(3.35e12)


def test_result_without_system_needs_one(fake_result: FakeResult) -> None:
    pts = roofline_points(fake_result)
    with pytest.raises(SpecError, match="system"):
        roofline(pts)
    assert len(roofline(pts, system=fake_result.system).collections) >= 1


def test_unknown_tier_is_a_spec_error(plot_system: System) -> None:
    with pytest.raises(SpecError, match="unknown tier 'l3'"):
        ceilings_frame(plot_system, tiers=["l3"])


@settings(max_examples=15, deadline=None)
@given(
    hbm=st.floats(min_value=1e9, max_value=1e13),
    ddr=st.floats(min_value=1e8, max_value=1e12),
    peak=st.floats(min_value=1e12, max_value=1e16),
)
def test_any_system_ceiling_slopes_match_bandwidth(hbm: float, ddr: float, peak: float) -> None:
    data = plot_system_data()
    data["tiers"]["hbm"]["read_bandwidth_bytes_per_s"] = hbm
    data["tiers"]["ddr"]["read_bandwidth_bytes_per_s"] = ddr
    data["compute"]["core"]["peak_flops_per_s"] = {"bf16": peak}
    system = load_system_dict(data)
    ax = roofline(system)
    lines = _lines(ax, "ceiling:")
    for gid, bw in (("ceiling:tier:hbm", hbm), ("ceiling:tier:ddr", ddr)):
        x, y = (np.asarray(v, dtype=float) for v in lines[gid].get_data())
        assert y / x == pytest.approx([bw, bw], rel=1e-9)
        assert y[-1] == pytest.approx(peak)  # meets the roof
    ax.get_figure(root=True).clear()
