"""Serving figures draw what their tables say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plots import kv_occupancy, latency_cdf, latency_vs_load, write_serve_figures


def _lines(ax: Any) -> dict[str, Any]:
    return {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}


def test_latency_vs_load_plots_each_percentile() -> None:
    curve = pd.DataFrame({"rate": [4.0, 1.0], "ttft_p50_s": [0.2, 0.01], "ttft_p99_s": [0.9, 0.02]})
    lines = _lines(latency_vs_load(curve, metrics=("ttft",)))
    assert set(lines) == {"load:ttft_p50", "load:ttft_p99"}
    x, y = lines["load:ttft_p99"].get_data()
    assert list(x) == [1.0, 4.0] and list(y) == [0.02, 0.9]  # sorted by rate


def test_latency_cdf_reaches_one_over_completed_requests() -> None:
    reqs = pd.DataFrame(
        {
            "dropped": [False, False, True, False],
            "ttft_s": [0.3, 0.1, np.nan, 0.2],
            "e2e_s": [1.0, 2.0, np.nan, 3.0],
            "tbt_mean_s": [0.01, 0.02, np.nan, 0.03],
        }
    )
    lines = _lines(latency_cdf(reqs))
    x, y = lines["cdf:ttft_s"].get_data()
    assert list(x) == [0.1, 0.2, 0.3] and list(y) == [1 / 3, 2 / 3, 1.0]


def test_kv_occupancy_steps_and_pool(tmp_path: Path) -> None:
    its = pd.DataFrame({"start_s": [0.0, 1.0], "duration_s": [1.0, 1.0], "kv_bytes": [2e9, 3e9]})
    ax = kv_occupancy(its, pool_bytes=4e9)
    lines = _lines(ax)
    _, y = lines["kv:used"].get_data()
    assert list(y) == [2.0, 3.0, 3.0]  # GB, held to the end of the last iteration
    assert lines["kv:pool"].get_ydata()[0] == 4.0
    reqs = pd.DataFrame({"dropped": [False], "ttft_s": [0.1], "e2e_s": [1.0], "tbt_mean_s": [0.01]})
    written = write_serve_figures(reqs, its, tmp_path, pool_bytes=4e9)
    assert sorted(p.name for p in written) == ["kv_occupancy.png", "latency_cdf.png"]


def test_kv_occupancy_one_line_per_pool() -> None:
    its = pd.DataFrame(
        {
            "start_s": [0.0, 0.5, 1.0],
            "duration_s": [0.5, 0.5, 0.5],
            "kv_bytes": [1e9, 2e9, 3e9],
            "pool": ["prefill", "decode", "prefill"],
        }
    )
    lines = _lines(kv_occupancy(its))
    assert set(lines) == {"kv:used:prefill", "kv:used:decode"}
    _, y = lines["kv:used:prefill"].get_data()
    assert list(y) == [1.0, 3.0, 3.0]
