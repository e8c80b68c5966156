"""Timeline, occupancy and breakdowns draw the run's numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from hw_models.errors import SpecError
from plots import breakdown, energy_breakdown, occupancy, time_breakdown, timeline
from plots.style import LINK_LOOKS, PHASE_LOOKS, TIER_LOOKS
from plots.timeline import busy_fraction
from tests.plots.conftest import FakeResult, synthetic_frames


def test_timeline_rows_bars_and_units(fake_result: FakeResult) -> None:
    ax = timeline(fake_result)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["core [compute]", "dma0 [dma]", "hbm.ch0 [channel]"]
    assert ax.get_xlabel() == "Time (ms)"  # makespan 91 ms
    bars = {c.get_gid(): c for c in ax.collections}
    assert set(bars) == {
        "timeline:core:prefill",
        "timeline:core:decode",
        "timeline:dma0:decode",
        "timeline:hbm.ch0:prefill",
        "timeline:hbm.ch0:decode",
    }
    # 2 prefill ops and 3 decode ops on the compute unit
    assert len(bars["timeline:core:prefill"].get_paths()) == 2
    assert len(bars["timeline:core:decode"].get_paths()) == 3
    assert (
        to_hex(bars["timeline:core:decode"].get_facecolor()[0])
        == PHASE_LOOKS["decode"].color.lower()
    )
    assert bars["timeline:core:decode"].get_hatch() == PHASE_LOOKS["decode"].hatch
    # DMA bar from 40 ms to 90 ms
    ext = bars["timeline:dma0:decode"].get_paths()[0].get_extents()
    assert (ext.x0, ext.x1) == pytest.approx((40.0, 90.0))
    assert ax.get_xlim() == pytest.approx((0.0, 91.0))


def test_timeline_keeps_the_busiest_rows() -> None:
    tl = synthetic_frames()["timeline"]
    ax = timeline(tl, max_rows=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["core [compute]", "dma0 [dma]"]
    assert "1 idle-most rows not shown" in ax.get_title()


def test_busy_fraction_merges_overlaps() -> None:
    tl = synthetic_frames()["timeline"]
    busy = busy_fraction(tl)
    assert busy["core"] == pytest.approx(1.0)  # back-to-back ops over the whole 91 ms
    assert busy["hbm.ch0"] == pytest.approx(11 / 91)


def test_occupancy_steps_and_capacity_lines(fake_result: FakeResult) -> None:
    ax = occupancy(fake_result)
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    assert {g for g in lines if g.startswith("occupancy:")} == {
        "occupancy:hbm",
        "occupancy:sram",
        "occupancy:ddr",
    }
    # capacities span 64 MB .. 256 GB (> 100x): log scale in bytes
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "Allocated (B)"
    assert lines["capacity:hbm"].get_ydata()[0] == pytest.approx(16e9)
    assert lines["capacity:ddr"].get_ydata()[0] == pytest.approx(256e9)
    t, b = (np.asarray(v, dtype=float) for v in lines["occupancy:hbm"].get_data())
    assert lines["occupancy:hbm"].get_drawstyle() == "steps-post"
    assert list(t) == pytest.approx([0.0, 30.0, 90.0, 90.0])  # ms
    assert list(b) == pytest.approx([14e9, 15e9, 14e9, 14e9])
    assert ax.get_xlabel() == "Time (ms)"


def test_occupancy_linear_scale_in_gigabytes(fake_result: FakeResult) -> None:
    ax = occupancy(fake_result, tiers=["hbm"], scale="linear")
    assert ax.get_ylabel() == "Allocated (GB)"
    line = next(ln for ln in ax.get_lines() if ln.get_gid() == "capacity:hbm")
    assert line.get_ydata()[0] == pytest.approx(16.0)


def _bars(ax) -> dict[str, object]:
    return {p.get_gid(): p for p in ax.patches if p.get_gid()}


def test_time_breakdown_sums_op_time_by_bound(fake_result: FakeResult) -> None:
    ax = time_breakdown(fake_result)
    bars = _bars(ax)
    assert ax.get_ylabel() == "Op time (ms)"
    # prefill: compute 25 ms + hbm 5 ms; decode: hbm 10 ms, pcie 50 ms, overhead 1 ms
    assert bars["bar:compute:prefill"].get_height() == pytest.approx(25.0)
    assert bars["bar:tier:hbm:prefill"].get_height() == pytest.approx(5.0)
    assert bars["bar:link:pcie:decode"].get_height() == pytest.approx(50.0)
    tops = {
        x: max(p.get_y() + p.get_height() for g, p in bars.items() if g.endswith(f":{x}"))
        for x in ("prefill", "decode")
    }
    assert tops == pytest.approx({"prefill": 30.0, "decode": 61.0})
    assert bars["bar:tier:hbm:decode"].get_hatch() == TIER_LOOKS["hbm"].hatch
    assert bars["bar:link:pcie:decode"].get_hatch() == LINK_LOOKS["pcie"].hatch
    assert [t.get_text() for t in ax.get_xticklabels()] == ["prefill", "decode"]


def test_energy_breakdowns(fake_result: FakeResult) -> None:
    ax = energy_breakdown(fake_result, by="component")
    bars = _bars(ax)
    assert ax.get_ylabel() == "Energy (J)"
    # decode: hbm 0.2 + ddr 0.12 + pcie 0.02 + core 0.01 + static 0.05 = 0.40 J
    decode = [p for g, p in bars.items() if g.endswith(":decode")]
    assert max(p.get_y() + p.get_height() for p in decode) == pytest.approx(0.40)
    assert to_hex(bars["bar:tier:ddr:decode"].get_facecolor()) == TIER_LOOKS["ddr"].color.lower()
    ax2 = energy_breakdown(fake_result, by="tensor_kind")
    bars2 = _bars(ax2)
    assert bars2["bar:kv:decode"].get_height() == pytest.approx(0.2)
    assert bars2["bar:weight:prefill"].get_height() == pytest.approx(0.3)


def test_breakdown_has_three_panels(fake_result: FakeResult) -> None:
    fig = breakdown(fake_result)
    assert [a.get_title() for a in fig.get_axes()] == [
        "Time by bound",
        "Energy by component",
        "Energy by tensor kind",
    ]


def test_timeline_merges_thousands_of_back_to_back_bars() -> None:
    import pandas as pd

    from plots.timeline import MAX_BARS, merge_spans

    # 5,000 kernels of 1 ms back to back, then a 1 s gap, then 10 more: two busy periods
    starts = [i * 1e-3 for i in range(5000)] + [6.0 + i * 1e-3 for i in range(10)]
    frame = pd.DataFrame(
        {
            "resource": "gpu",
            "resource_kind": "compute",
            "start_s": starts,
            "end_s": [s + 1e-3 for s in starts],
            "label": "k",
            "phase": "decode",
        }
    )
    assert len(frame) > MAX_BARS
    ax = timeline(frame)
    (bars,) = ax.collections
    assert len(bars.get_paths()) == 2
    assert merge_spans([0.0, 1.0, 3.0], [1.0, 2.0, 4.0], gap=0.0) == [(0.0, 2.0), (3.0, 1.0)]


def test_an_ops_table_cut_at_a_row_boundary_is_refused(tmp_path: Path) -> None:
    """A table truncated between two rows parses; its FLOPs then fall short of the
    summary's total (the last ops, the LM head among them, carry FLOPs)."""
    from memsim.cli.main import main
    from plots.tables import RunTables

    out = tmp_path / "run"
    args = ["run", "--model", "llama2_7b", "--batch", "1", "--prompt", "64", "--gen", "2"]
    assert main([*args, "--fidelity", "analytic", "--out", str(out)]) == 0
    RunTables.from_dir(out)  # the whole table is accepted
    ops = out / "ops.csv"
    lines = ops.read_text(encoding="utf-8").splitlines(keepends=True)
    ops.write_text("".join(lines[:-5]), encoding="utf-8")  # 5 whole rows lost
    with pytest.raises(SpecError, match="truncated or from another run"):
        RunTables.from_dir(out)
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 2
