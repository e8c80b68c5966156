"""Timeline: a Gantt chart with one row per compute unit, DMA engine and channel.

Bars are coloured and hatched by phase (:data:`plots.style.PHASE_LOOKS`); rows are
grouped compute first, then DMA engines, then channels, each group in order of
first activity. Reads the timeline table: ``resource, resource_kind, start_s, end_s,
label, phase``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from plots.style import PHASE_LOOKS, look, new_axes, styled, time_scale
from plots.tables import frame_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

KIND_ORDER = ("compute", "dma", "channel")
MAX_ROWS = 60
MAX_BARS = 100  # per row and phase; beyond this, bars closer than a pixel are merged


def merge_spans(starts: Any, ends: Any, *, gap: float) -> list[tuple[float, float]]:
    """(start, width) spans with runs separated by at most ``gap`` merged into one.

    A long run has tens of thousands of back-to-back kernels: drawn one by one, their
    edges alone paint the row black. Merged, the row shows when the unit was busy.
    """
    out: list[tuple[float, float]] = []
    cur_s = cur_e = None
    for s, e in sorted(zip(starts, ends, strict=True)):
        if cur_e is not None and s <= cur_e + gap:
            cur_e = max(cur_e, e)
            continue
        if cur_s is not None and cur_e is not None:
            out.append((cur_s, cur_e - cur_s))
        cur_s, cur_e = s, e
    if cur_s is not None and cur_e is not None:
        out.append((cur_s, cur_e - cur_s))
    return out


@styled
def timeline(
    data: Any,
    *,
    ax: Axes | None = None,
    kinds: tuple[str, ...] = KIND_ORDER,
    max_rows: int = MAX_ROWS,
    title: str | None = "Timeline",
) -> Axes:
    """Draw the Gantt chart of ``data`` (SimResult, RunTables or the timeline DataFrame).

    ``kinds`` picks and orders the resource kinds shown; at most ``max_rows`` rows are
    drawn (the busiest ones; the title says how many were left out). A row with more
    than ``MAX_BARS`` bars of one phase has bars less than a pixel apart merged. Each row is one
    ``broken_barh`` collection per phase with ``gid`` ``timeline:<resource>:<phase>``;
    the time axis is in s, ms, µs or ns, whichever suits the makespan.
    """
    frame = frame_of(data, "timeline")
    frame = frame[frame["resource_kind"].isin(kinds)]
    ax = new_axes(
        ax, figsize=(8.0, 1.2 + 0.28 * min(max_rows, max(frame["resource"].nunique(), 1)))
    )
    if frame.empty:
        ax.set_xlabel("Time (s)")
        ax.set_title(title or "")
        ax.text(0.5, 0.5, "no activity", transform=ax.transAxes, ha="center", va="center")
        return ax
    end = float(frame["end_s"].max())
    mult, unit = time_scale(end)
    rank = {k: i for i, k in enumerate(kinds)}
    first = frame.groupby("resource").agg(kind=("resource_kind", "first"), start=("start_s", "min"))
    busy = (frame["end_s"] - frame["start_s"]).groupby(frame["resource"]).sum()
    rows = list(first.assign(r=first["kind"].map(rank)).sort_values(["r", "start"]).index)
    dropped = 0
    if len(rows) > max_rows:
        keep = set(busy.sort_values(ascending=False).index[:max_rows])
        dropped = len(rows) - max_rows
        rows = [r for r in rows if r in keep]
    y_of = {r: i for i, r in enumerate(rows)}
    phases_drawn: dict[str, None] = {}
    for (resource, phase), grp in frame[frame["resource"].isin(y_of)].groupby(
        ["resource", "phase"], sort=False
    ):
        lk = look(PHASE_LOOKS, str(phase))
        many = len(grp) > MAX_BARS
        if many:
            spans = merge_spans(grp["start_s"] * mult, grp["end_s"] * mult, gap=end * mult / 2000)
        else:
            spans = list(
                zip(grp["start_s"] * mult, (grp["end_s"] - grp["start_s"]) * mult, strict=True)
            )
        ax.broken_barh(
            spans,
            (y_of[resource] - 0.4, 0.8),
            facecolors=lk.color,
            edgecolor="black",
            linewidth=0.0 if many else 0.2,
            hatch=lk.hatch,
            gid=f"timeline:{resource}:{phase}",
        )
        phases_drawn.setdefault(str(phase))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r} [{first.loc[r, 'kind']}]" for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0.0, end * mult)
    ax.set_xlabel(f"Time ({unit})")
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    from matplotlib.patches import Patch

    handles = [
        Patch(
            facecolor=look(PHASE_LOOKS, p).color,
            hatch=look(PHASE_LOOKS, p).hatch,
            edgecolor="black",
            linewidth=0.3,
            label=look(PHASE_LOOKS, p).label,
        )
        for p in phases_drawn
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="phase")
    if title:
        ax.set_title(title + (f" ({dropped} idle-most rows not shown)" if dropped else ""))
    return ax


def busy_fraction(frame: pd.DataFrame) -> pd.Series:
    """Busy time / makespan per resource of a timeline table (overlapping bars merged)."""
    end = float(frame["end_s"].max()) if len(frame) else 0.0
    out = {}
    for resource, grp in frame.groupby("resource"):
        total, cur_s, cur_e = 0.0, None, None
        for s, e in sorted(zip(grp["start_s"], grp["end_s"], strict=True)):
            if cur_e is None or s > cur_e:
                if cur_e is not None and cur_s is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None and cur_s is not None:
            total += cur_e - cur_s
        out[resource] = total / end if end > 0 else 0.0
    return pd.Series(out, name="busy_fraction")
