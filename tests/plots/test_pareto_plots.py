"""Pareto scatter, parallel coordinates and sensitivity bars from a sweep's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hw_models.errors import SpecError
from plots import parallel_coordinates, pareto_scatter, sensitivity_bars

# five points; (1, 5), (2, 2), (4, 1) are the front of (min, min)
TABLE = pd.DataFrame(
    {
        "tiers.hbm.capacity_bytes": [80e9, 141e9, 80e9, 192e9, 141e9],
        "policy": ["fastest_fit", "fastest_fit", "stream_weights", "fastest_fit", "kv_offload"],
        "tpot_s": [1.0, 2.0, 3.0, 4.0, 5.0],
        "cost_usd": [5.0, 2.0, 3.0, 1.0, 6.0],
        "pareto": [True, True, False, True, False],
    }
)


def test_pareto_scatter_draws_the_front_sorted_over_the_rest() -> None:
    ax = pareto_scatter(TABLE, x="tpot_s", y="cost_usd")
    front = next(ln for ln in ax.get_lines() if ln.get_gid() == "pareto")
    x, y = front.get_data()
    assert list(x) == [1.0, 2.0, 4.0] and list(y) == [5.0, 2.0, 1.0]
    rest = next(c for c in ax.collections if c.get_gid() == "points")
    assert sorted(map(tuple, rest.get_offsets().tolist())) == [(3.0, 3.0), (5.0, 6.0)]
    assert ax.get_xlabel() == "tpot (s)"


def test_parallel_coordinates_scale_each_axis_and_highlight_the_front() -> None:
    cols = ["tiers.hbm.capacity_bytes", "policy", "tpot_s"]
    ax = parallel_coordinates(TABLE, columns=cols)
    front = [ln for ln in ax.get_lines() if ln.get_gid() == "pareto"]
    rest = [ln for ln in ax.get_lines() if ln.get_gid() == "points"]
    assert len(front) == 3 and len(rest) == 2
    ys = np.array([ln.get_ydata() for ln in front])
    # first front row: capacity 80 GB = the minimum (0), tpot 1 s = the minimum (0)
    assert ys[0][0] == pytest.approx(0.0) and ys[0][2] == pytest.approx(0.0)
    # categories spread evenly: fastest_fit is the first of three (1/6)
    assert ys[0][1] == pytest.approx(1 / 6)
    with pytest.raises(SpecError, match="at least two"):
        parallel_coordinates(TABLE, columns=["tpot_s"])


def test_sensitivity_bars_largest_on_top() -> None:
    table = pd.DataFrame(
        {
            "parameter": ["a", "b", "c", "a"],
            "objective": ["f", "f", "f", "g"],
            "ST": [0.2, 0.7, 0.1, 0.5],
            "ST_conf": [0.01, 0.02, 0.01, 0.03],
        }
    )
    ax = sensitivity_bars(table, objective="f", value="ST", error="ST_conf")
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    assert bars["sensitivity:b"].get_width() == pytest.approx(0.7)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    with pytest.raises(SpecError, match="no rows for 'h'"):
        sensitivity_bars(table, objective="h")
