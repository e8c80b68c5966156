"""Occupancy: bytes allocated in each tier over time, with each tier's capacity.

Reads the occupancy table (``time_s, tier, bytes, capacity_bytes``: a step function,
``bytes`` allocated from ``time_s`` on). Each tier is drawn with its kind's colour and
line style (:data:`plots.style.TIER_LOOKS`); its capacity is a thin line of the same
colour. ``capacity_bytes`` is per tier instance as in ``tiers_frame``; occupancy is
what the engine reports for the tier, so both are drawn as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from plots.style import bytes_scale, new_axes, resource_look, styled, time_scale
from plots.tables import RunTables, frame_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@styled
def occupancy(
    data: Any,
    *,
    ax: Axes | None = None,
    tiers: Sequence[str] | None = None,
    tier_kinds: Mapping[str, str] | None = None,
    scale: Literal["auto", "linear", "log"] = "auto",
    title: str | None = "Memory occupancy",
) -> Axes:
    """Draw each tier's occupancy as a step line and its capacity as a flat line.

    ``data``: SimResult, RunTables or the occupancy DataFrame (then ``tier_kinds``
    maps tier names to kinds for their looks; a tier named after a kind needs none).
    ``scale="auto"`` uses a log y axis when capacities differ by more than 100x.
    Line ids: ``gid`` ``occupancy:<tier>`` and ``capacity:<tier>``.
    """
    frame = frame_of(data, "occupancy")
    kinds = dict(tier_kinds or {})
    if not isinstance(data, pd.DataFrame):
        kinds = RunTables.of(data).tier_kinds() | kinds
    names = list(tiers) if tiers is not None else list(dict.fromkeys(frame["tier"]))
    frame = frame[frame["tier"].isin(names)]
    ax = new_axes(ax, figsize=(7.0, 3.8))
    t_end = float(frame["time_s"].max()) if len(frame) else 1.0
    caps = frame.groupby("tier")["capacity_bytes"].max()
    top = float(max(caps.max() if len(caps) else 1.0, frame["bytes"].max() if len(frame) else 1.0))
    mult, t_unit = time_scale(t_end if t_end > 0 else 1.0)
    log = scale == "log" or (
        scale == "auto" and len(caps) > 1 and caps.max() > 100 * max(caps.min(), 1.0)
    )
    div, b_unit = (1.0, "B") if log else bytes_scale(top)
    for tier in names:
        grp = frame[frame["tier"] == tier].sort_values("time_s", kind="stable")
        if grp.empty:
            continue
        lk = resource_look(f"tier:{tier}", {f"tier:{tier}": kinds.get(tier, tier)})
        t = np.append(grp["time_s"].to_numpy(float), t_end) * mult
        b = np.append(grp["bytes"].to_numpy(float), float(grp["bytes"].iloc[-1])) / div
        ax.plot(
            t,
            b,
            drawstyle="steps-post",
            color=lk.color,
            linestyle=lk.linestyle,
            linewidth=1.6,
            label=f"{tier} ({kinds.get(tier, tier)})",
            gid=f"occupancy:{tier}",
        )
        cap = float(grp["capacity_bytes"].max()) / div
        ax.axhline(
            cap, color=lk.color, linestyle=(0, (1.0, 1.5)), linewidth=0.9, gid=f"capacity:{tier}"
        )
        ax.annotate(
            f"{tier} capacity",
            (1.0, cap),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color=lk.color,
        )
    if log:
        ax.set_yscale("log", nonpositive="mask")
    else:
        ax.set_ylim(bottom=0.0)
    ax.set_xlim(0.0, t_end * mult if t_end > 0 else 1.0)
    ax.set_xlabel(f"Time ({t_unit})")
    ax.set_ylabel(f"Allocated ({b_unit})")
    if names:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="tier")
    if title:
        ax.set_title(title)
    return ax
