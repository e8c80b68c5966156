"""The shipped hardware table reproduces the published memory-wall trends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hw_models import load_system
from hw_models.errors import SpecError
from plots import PUBLISHED_GROWTH_PER_2Y, fit_growth, load_memory_wall, memory_wall, system_row
from plots.memory_wall import model_memory


def test_every_row_cites_a_source_and_two_decades_are_covered() -> None:
    data = load_memory_wall()
    assert data["source"].str.len().min() > 20
    for col in PUBLISHED_GROWTH_PER_2Y:
        years = data.dropna(subset=[col])["year"]
        assert years.max() - years.min() >= 20, col


@pytest.mark.parametrize("column", list(PUBLISHED_GROWTH_PER_2Y))
def test_fit_reproduces_published_growth_within_0_3x(column: str) -> None:
    # Gholami et al. 2024: FLOP/s 3.0x, DRAM bandwidth 1.6x, interconnect 1.4x per 2 years.
    fit = fit_growth(load_memory_wall(), column)
    assert abs(fit.per_two_years - PUBLISHED_GROWTH_PER_2Y[column]) <= 0.3


def test_fit_of_an_exact_exponential() -> None:
    # doubling every year is 4x per two years; value 1 in 2000 -> intercept ln(2) * -2000
    frame = pd.DataFrame({"year": [2000, 2001, 2002, 2005], "v": [1.0, 2.0, 4.0, 32.0]})
    fit = fit_growth(frame, "v")
    assert fit.per_two_years == pytest.approx(4.0)
    assert fit.predict(2003) == pytest.approx(8.0)


def test_fit_needs_two_years() -> None:
    with pytest.raises(SpecError, match="two different years"):
        fit_growth(pd.DataFrame({"year": [2000, 2000], "v": [1.0, 2.0]}), "v")


def test_bad_rows_are_reported_with_their_line(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "plots/data/memory_wall.csv").read_text()
    lines = text.splitlines()
    lines[3] = "2006,Cell,processor,-5,fp32,25.6e9,,,"  # negative peak, no source
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError) as err:
        load_memory_wall(bad)
    msg = str(err.value)
    assert "line 4.source: every row must cite its source" in msg
    assert "line 4.peak_flops_per_s: expected > 0" in msg


def test_drawn_fit_and_published_lines_and_overlay() -> None:
    data = load_memory_wall()
    systems = pd.DataFrame([system_row(load_system("h100_sxm"), year=2022)])
    ax = memory_wall(data, systems=systems)
    gids = {ln.get_gid(): ln for ln in ax.get_lines()}
    for col, rate in PUBLISHED_GROWTH_PER_2Y.items():
        x, y = (np.asarray(v, dtype=float) for v in gids[f"published:{col}"].get_data())
        # the published trend grows by `rate` every two years on the drawn line
        assert y[-1] / y[0] == pytest.approx(rate ** ((x[-1] - x[0]) / 2))
        fx, fy = (np.asarray(v, dtype=float) for v in gids[f"fit:{col}"].get_data())
        assert fy[-1] / fy[0] == pytest.approx(
            fit_growth(data, col).per_two_years ** ((fx[-1] - fx[0]) / 2)
        )
        points = next(c for c in ax.collections if c.get_gid() == f"data:{col}")
        assert len(points.get_offsets()) == data[col].notna().sum()
    stars = [c for c in ax.collections if (c.get_gid() or "").startswith("system:")]
    assert len(stars) == 3  # H100's FLOP/s, HBM bandwidth and link bandwidth
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "Year"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("Peak FLOP/s: 3.0") for t in labels)


def test_system_row_reads_the_preset() -> None:
    row = system_row(load_system("h100_sxm"), year=2022)
    assert row["dram_bandwidth_bytes_per_s"] == pytest.approx(3.35e12)
    assert row["memory_capacity_bytes"] == pytest.approx(80e9)


def test_model_sizes_against_memory() -> None:
    models = pd.DataFrame(
        {"name": ["7B", "70B"], "year": [2023, 2023], "parameter_bytes": [14e9, 140e9]}
    )
    ax = model_memory(models=models)
    pts = next(c for c in ax.collections if c.get_gid() == "models")
    assert sorted(np.asarray(pts.get_offsets())[:, 1]) == [14e9, 140e9]
    assert ax.get_ylabel() == "Bytes (B)"
