"""Sensitivity curves: one knob of a system against one or more objectives.

Reads a DataFrame with one row per run: a knob column (``hbm_bandwidth_bytes_per_s``),
objective columns (``tpot_s``, ``tokens_per_s``, ``energy_j``...) and optionally a
group column (one curve per system or model). Axis labels and units come from the
unit-suffixed column names (:func:`plots.style.column_label`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hw_models.errors import Problem, SpecError
from plots.style import PHASE_LOOKS, column_label, fallback_look, new_axes, new_figure, styled
from plots.tables import check_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_CURVE_LOOKS = list(PHASE_LOOKS.values())


@styled
def sensitivity(
    frame: pd.DataFrame,
    *,
    knob: str,
    objective: str,
    ax: Axes | None = None,
    group: str | None = None,
    logx: bool | None = None,
    logy: bool = False,
    title: str | None = None,
) -> Axes:
    """One curve of ``objective`` against ``knob`` (per value of ``group`` if given).

    Points are sorted by the knob; each curve has its own colour, line style and marker
    (``gid`` ``sensitivity:<group>``). ``logx=None`` chooses a log x axis when the knob
    spans more than 50x and is positive.
    """
    cols = [knob, objective] + ([group] if group else [])
    check_columns(frame, cols, table="sensitivity")
    for c in (knob, objective):
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise SpecError([Problem(c, "expected a numeric column")])
    ax = new_axes(ax, figsize=(5.5, 3.8))
    groups = [(None, frame)] if group is None else list(frame.groupby(group, sort=False))
    for i, (name, grp) in enumerate(groups):
        grp = grp.sort_values(knob, kind="stable")
        lk = _CURVE_LOOKS[i] if i < len(_CURVE_LOOKS) else fallback_look(str(name))
        label = str(name) if name is not None else column_label(objective)
        ax.plot(
            grp[knob],
            grp[objective],
            color=lk.color,
            linestyle=lk.linestyle,
            marker=lk.marker,
            markersize=5,
            label=label,
            gid=f"sensitivity:{label}",
        )
    k = frame[knob].to_numpy(float)
    if logx is None:
        logx = bool(len(k) and np.nanmin(k) > 0 and np.nanmax(k) > 50 * np.nanmin(k))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(column_label(knob))
    ax.set_ylabel(column_label(objective))
    if group is not None:
        ax.legend(title=group.replace("_", " "))
    ax.set_title(
        title if title is not None else f"{column_label(objective)} vs {knob.replace('_', ' ')}"
    )
    return ax


@styled
def sensitivity_panels(
    frame: pd.DataFrame,
    *,
    knob: str,
    objectives: Sequence[str],
    group: str | None = None,
    logx: bool | None = None,
) -> Figure:
    """One :func:`sensitivity` panel per objective, side by side, sharing the knob axis."""
    if not objectives:
        raise SpecError([Problem("objectives", "give at least one objective column")])
    fig, axes = new_figure(figsize=(4.2 * len(objectives), 3.6), ncols=len(objectives))
    for obj, ax in zip(objectives, axes, strict=True):
        sensitivity(
            frame, knob=knob, objective=obj, ax=ax, group=group, logx=logx, title=column_label(obj)
        )
    return fig


@styled
def sensitivity_bars(
    frame: pd.DataFrame,
    *,
    objective: str,
    value: str = "ST",
    error: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Horizontal bars of ``value`` per parameter for one objective, largest on top.

    Reads a sensitivity table (``parameter, objective`` and the value column): Sobol
    indices (``S1``, ``ST`` with ``S1_conf``/``ST_conf`` as ``error``) or one-at-a-time
    swings (``relative``, ``swing``). Bars have ``gid`` ``sensitivity:<parameter>``.
    """
    cols = ["parameter", "objective", value] + ([error] if error else [])
    check_columns(frame, cols, table="sensitivity")
    rows = frame[frame["objective"] == objective]
    if rows.empty:
        known = ", ".join(dict.fromkeys(frame["objective"].astype(str)))
        raise SpecError([Problem("objective", f"no rows for {objective!r} (known: {known})")])
    rows = rows.sort_values(value, kind="stable")
    ax = new_axes(ax, figsize=(5.5, 0.5 * len(rows) + 1.5))
    lk = _CURVE_LOOKS[0]
    y = np.arange(len(rows))
    bars = ax.barh(
        y,
        rows[value].to_numpy(float),
        xerr=rows[error].to_numpy(float) if error else None,
        color=lk.color,
        hatch=lk.hatch,
        edgecolor="black",
        linewidth=0.5,
    )
    for bar, name in zip(bars, rows["parameter"], strict=True):
        bar.set_gid(f"sensitivity:{name}")
    ax.set_yticks(y, list(rows["parameter"].astype(str)))
    ax.set_xlabel(value)
    ax.set_title(title if title is not None else f"Sensitivity of {column_label(objective)}")
    return ax
