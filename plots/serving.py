"""Serving figures: latency against load, latency CDFs, KV-cache occupancy over time.

Each takes the tables a serving run produces (``memsim serve --out`` writes them;
``ServeResult.requests_frame()`` / ``iterations_frame()`` return them), never a
simulator:

* :func:`latency_vs_load`: the load-curve table (one row per arrival rate, with
  ``rate`` and the summary's ``*_p50_s`` / ``*_p99_s`` columns);
* :func:`latency_cdf`: the per-request table (``ttft_s``, ``e2e_s``, ``tbt_mean_s``);
* :func:`kv_occupancy`: the per-iteration table (``start_s``, ``duration_s``,
  ``kv_bytes``) and the pool size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from plots.style import bytes_scale, new_axes, save_figure, styled, time_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_NAMES = {"ttft": "TTFT", "tbt": "TBT", "e2e": "E2E"}


@styled
def latency_vs_load(
    curve: pd.DataFrame,
    *,
    ax: Axes | None = None,
    metrics: Sequence[str] = ("ttft", "tbt", "e2e"),
    percentiles: Sequence[int] = (50, 99),
    title: str | None = "Latency against load",
) -> Axes:
    """Latency percentiles (log y) against the arrival rate, one line per metric and
    percentile. Line ids: ``gid`` ``load:<metric>_p<q>``."""
    ax = new_axes(ax, figsize=(6.6, 4.2))
    frame = curve.sort_values("rate")
    for m in metrics:
        for q in percentiles:
            col = f"{m}_p{q}_s"
            if col not in frame:
                continue
            y = frame[col].to_numpy(float)
            ax.plot(
                frame["rate"].to_numpy(float),
                y,
                marker="o",
                linestyle="-" if q == 50 else "--",
                label=f"{_NAMES.get(m, m)} p{q}",
                gid=f"load:{m}_p{q}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate (requests/s)")
    ax.set_ylabel("latency (s)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


@styled
def latency_cdf(
    requests: pd.DataFrame,
    *,
    ax: Axes | None = None,
    metrics: Sequence[str] = ("ttft_s", "tbt_mean_s", "e2e_s"),
    title: str | None = "Latency CDF",
) -> Axes:
    """Empirical CDF of each latency column over completed requests (log x).
    Line ids: ``gid`` ``cdf:<column>``."""
    ax = new_axes(ax, figsize=(6.6, 4.2))
    done = requests[~requests["dropped"].astype(bool)]
    for col in metrics:
        x = np.sort(done[col].dropna().to_numpy(float))
        if not len(x):
            continue
        y = np.arange(1, len(x) + 1) / len(x)
        name = col.removesuffix("_s").removesuffix("_mean")
        ax.plot(x, y, drawstyle="steps-post", label=_NAMES.get(name, name), gid=f"cdf:{col}")
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


@styled
def kv_occupancy(
    iterations: pd.DataFrame,
    *,
    pool_bytes: float | None = None,
    ax: Axes | None = None,
    title: str | None = "KV cache occupancy",
) -> Axes:
    """KV bytes held on the device over time (a step per iteration), with the pool size.
    With a ``pool`` column (disaggregated serving) one line per pool.
    Line ids: ``gid`` ``kv:used`` (``kv:used:<pool>``) and ``kv:pool``."""
    ax = new_axes(ax, figsize=(7.0, 3.8))
    t_all = iterations["start_s"].to_numpy(float)
    end = float(t_all[-1] + iterations["duration_s"].iloc[-1]) if len(t_all) else 1.0
    b_all = iterations["kv_bytes"].to_numpy(float)
    top = max(float(b_all.max()) if len(b_all) else 1.0, pool_bytes or 0.0, 1.0)
    div, unit = bytes_scale(top)
    mult, t_unit = time_scale(end if end > 0 else 1.0)
    groups = (
        [
            (f"KV in use ({p})", f"kv:used:{p}", iterations[iterations["pool"] == p])
            for p in dict.fromkeys(iterations["pool"])
        ]
        if "pool" in iterations
        else [("KV in use", "kv:used", iterations)]
    )
    for label, gid, frame in groups:
        t = frame["start_s"].to_numpy(float)
        b = frame["kv_bytes"].to_numpy(float)
        ax.plot(
            np.append(t, end) * mult,
            np.append(b, b[-1] if len(b) else 0.0) / div,
            drawstyle="steps-post",
            linewidth=1.2,
            label=label,
            gid=gid,
        )
    if pool_bytes:
        ax.axhline(pool_bytes / div, linestyle=":", color="0.3", label="KV pool", gid="kv:pool")
    ax.set_xlabel(f"time ({t_unit})")
    ax.set_ylabel(f"KV cache ({unit})")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def write_serve_figures(
    requests: pd.DataFrame,
    iterations: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    pool_bytes: float | None = None,
) -> list[Path]:
    """``latency_cdf.png`` and ``kv_occupancy.png`` into ``out_dir`` (atomic writes)."""
    out = Path(out_dir)
    written = []
    for name, ax in (
        ("latency_cdf", latency_cdf(requests)),
        ("kv_occupancy", kv_occupancy(iterations, pool_bytes=pool_bytes)),
    ):
        fig = ax.get_figure(root=True)
        assert fig is not None
        written.append(save_figure(fig, out / f"{name}.png"))
    return written


def write_load_curve_figure(curve: pd.DataFrame, out_dir: str | os.PathLike[str]) -> Path:
    """``latency_vs_load.png`` into ``out_dir``."""
    ax = latency_vs_load(curve)
    fig = ax.get_figure(root=True)
    assert fig is not None
    return save_figure(fig, Path(out_dir) / "latency_vs_load.png")


__all__ = [
    "kv_occupancy",
    "latency_cdf",
    "latency_vs_load",
    "write_load_curve_figure",
    "write_serve_figures",
]
