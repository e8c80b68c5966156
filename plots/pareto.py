"""Design-space figures from a sweep's table: Pareto scatter and parallel coordinates.

Both read the table ``memsim sweep export`` writes (``explore.Store.to_frame``): one row
per point, a column per parameter (its dotted path) and per objective, and a boolean
``pareto`` column marking the front. They never run a simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hw_models.errors import Problem, SpecError
from plots.style import BLUE, GREY, VERMILLION, column_label, new_axes, styled
from plots.tables import check_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _numeric(frame: pd.DataFrame, cols: Sequence[str]) -> None:
    for c in cols:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise SpecError([Problem(c, "expected a numeric column")])


@styled
def pareto_scatter(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    front: str = "pareto",
    ax: Axes | None = None,
    logx: bool = False,
    logy: bool = False,
    title: str | None = None,
) -> Axes:
    """Every point as a grey dot, the front (rows where ``front`` is true) as a line of
    vermillion markers sorted by ``x`` (``gid`` ``points`` and ``pareto``)."""
    check_columns(frame, [x, y, front], table="sweep")
    _numeric(frame, [x, y])
    ax = new_axes(ax, figsize=(5.5, 4.0))
    rest = frame[~frame[front].astype(bool)]
    ax.scatter(rest[x], rest[y], s=14, color=GREY, alpha=0.7, label="points", gid="points")
    on = frame[frame[front].astype(bool)].sort_values(x, kind="stable")
    ax.plot(
        on[x],
        on[y],
        color=VERMILLION,
        marker="D",
        markersize=6,
        linestyle="--" if len(on) > 1 else "none",
        label=f"Pareto front ({len(on)})",
        gid="pareto",
    )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(column_label(x))
    ax.set_ylabel(column_label(y))
    ax.legend()
    ax.set_title(title if title is not None else f"{column_label(y)} vs {column_label(x)}")
    return ax


@styled
def parallel_coordinates(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str],
    front: str | None = "pareto",
    ax: Axes | None = None,
    title: str | None = "Design points",
) -> Axes:
    """One vertical axis per column (scaled to its own range; log when it spans more than
    50x and is positive; categories spread evenly), one line per point; points on the
    front (``front`` column) in blue over the others in grey."""
    if len(columns) < 2:
        raise SpecError([Problem("columns", "parallel coordinates need at least two columns")])
    check_columns(frame, [*columns, *([front] if front else [])], table="sweep")
    ax = new_axes(ax, figsize=(max(5.0, 1.4 * len(columns)), 4.0))
    scaled = np.zeros((len(frame), len(columns)))
    ticks: list[tuple[str, str]] = []
    for j, c in enumerate(columns):
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(float)
            lo, hi = np.nanmin(v), np.nanmax(v)
            if lo > 0 and hi > 50 * lo:
                v, lo, hi = np.log10(v), np.log10(lo), np.log10(hi)
            scaled[:, j] = (v - lo) / (hi - lo) if hi > lo else 0.5
            ticks.append((f"{col.min():.3g}", f"{col.max():.3g}"))
        else:
            cats = list(dict.fromkeys(col.astype(str)))
            pos = {k: (i + 0.5) / len(cats) for i, k in enumerate(cats)}
            scaled[:, j] = [pos[k] for k in col.astype(str)]
            ticks.append((cats[0], cats[-1]))
    on = frame[front].astype(bool).to_numpy() if front else np.zeros(len(frame), bool)
    xs = np.arange(len(columns))
    for i in np.flatnonzero(~on):
        ax.plot(xs, scaled[i], color=GREY, alpha=0.4, linewidth=0.8, gid="points")
    for i in np.flatnonzero(on):
        ax.plot(xs, scaled[i], color=BLUE, alpha=0.9, linewidth=1.6, gid="pareto")
    for j, (lo, hi) in enumerate(ticks):
        ax.axvline(j, color="black", linewidth=0.6)
        ax.annotate(
            lo, (j, 0), xytext=(0, -12), textcoords="offset points", ha="center", fontsize=7
        )
        ax.annotate(hi, (j, 1), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(xs, [column_label(c) for c in columns], rotation=20, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    if title:
        ax.set_title(title)
    return ax
