"""Hierarchical roofline: ceilings of a system, and the ops of a run placed by their traffic.

On log-log axes (arithmetic intensity in FLOP/B against attainable FLOP/s) a system
gives one horizontal ceiling per compute dtype of its main unit and one slanted
ceiling ``y = bandwidth x intensity`` per memory tier and per link; the ridge point
of each (where it meets the reference dtype's peak) is marked. Each op of a result is
drawn once per tier or link it moved bytes over (x = op FLOPs / bytes over that
resource, y = op FLOPs / op duration): colour = phase, marker = resource kind, area =
the op's share of the total op time.

>>> from hw_models import load_system
>>> ax = roofline(load_system("h100_sxm"))          # ceilings only  # doctest: +SKIP
>>> ax = roofline(result)                            # a SimResult    # doctest: +SKIP

Tables (documented columns, so other tools can draw on the same axes):

* :func:`ceilings_frame` -> ``ceiling, type, name, kind, value, effective_value,
  ridge_flop_per_byte``
* :func:`roofline_points` -> ``op, name, phase, resource, resource_kind, flops,
  bytes, duration_s, intensity_flop_per_byte, flops_per_s, time_share``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hw_models.compute import DTYPES
from hw_models.errors import Problem, SpecError
from plots.style import (
    DTYPE_LOOKS,
    OTHER_LOOKS,
    PHASE_LOOKS,
    look,
    new_axes,
    new_figure,
    resource_look,
    styled,
)
from plots.tables import RunTables, check_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hw_models import System

X_LABEL = "Arithmetic intensity (FLOP/B)"
Y_LABEL = "Attainable performance (FLOP/s)"
POINT_AREA_MAX = 220.0
POINT_AREA_MIN = 6.0


# columns of the op-points table that roofline plots place (see roofline_points)
POINT_COLUMNS = (
    "op",
    "name",
    "phase",
    "resource",
    "resource_kind",
    "flops",
    "bytes",
    "duration_s",
    "intensity_flop_per_byte",
    "flops_per_s",
    "time_share",
)


def reference_dtype(system: System, ops: pd.DataFrame | None = None) -> str:
    """The dtype whose peak marks the ridge points: the one carrying most FLOPs of the
    run (if given and supported), else bf16, else the fastest the main unit has."""
    if ops is not None and len(ops) and "dtype" in ops.columns:
        by = ops.groupby("dtype")["flops"].sum().sort_values(ascending=False)
        for dtype in by.index:
            if _supported(system, str(dtype)):
                return str(dtype)
    if _supported(system, "bf16"):
        return "bf16"
    unit = next(iter(system.compute.values()))
    return max(unit.peak_flops_per_s, key=lambda d: unit.peak_flops_per_s[d])


def _supported(system: System, dtype: str) -> bool:
    try:
        system.main_compute(dtype)
    except KeyError:
        return False
    return True


def ceilings_frame(
    system: System,
    *,
    dtype: str | None = None,
    tiers: Sequence[str] | None = None,
    links: bool = True,
) -> pd.DataFrame:
    """One row per ceiling of ``system``.

    Columns: ``ceiling`` (``compute:<dtype>``, ``tier:<name>``, ``link:<name>``),
    ``type`` (compute/tier/link), ``name``, ``kind`` (dtype, tier kind or link kind),
    ``value`` (FLOP/s for compute, B/s per direction for tiers and links),
    ``effective_value`` (after the achievable fraction), ``ridge_flop_per_byte``
    (reference-dtype peak / value; NaN for compute rows).

    Compute rows: every dtype of the unit that is fastest for ``dtype`` (default
    :func:`reference_dtype`). Tiers: every tier (or ``tiers``), fastest first.
    """
    ref = dtype or reference_dtype(system)
    unit = system.compute[system.main_compute(ref)]
    peak_ref = system.peak_flops_per_s(ref)
    rows: list[dict[str, Any]] = []
    for d in DTYPES:
        if d in unit.peak_flops_per_s:
            v = float(unit.peak_flops_per_s[d])
            rows.append(_row(f"compute:{d}", "compute", d, d, v, v, math.nan))
    names = list(tiers) if tiers is not None else system.tiers_by_speed()
    for name in names:
        if name not in system.tiers:
            raise SpecError(
                [Problem("tiers", f"unknown tier {name!r} (known: {', '.join(system.tiers)})")]
            )
        t = system.tiers[name]
        rows.append(
            _row(
                f"tier:{name}",
                "tier",
                name,
                t.kind,
                t.read_bandwidth_bytes_per_s,
                t.effective_read_bandwidth_bytes_per_s,
                system.ridge_point(name, ref),
            )
        )
    if links:
        for name, lk in system.links.items():
            bw = lk.bandwidth_bytes_per_s
            rows.append(
                _row(
                    f"link:{name}",
                    "link",
                    name,
                    lk.kind,
                    bw,
                    lk.effective_bandwidth_bytes_per_s,
                    peak_ref / bw,
                )
            )
    return pd.DataFrame(rows)


def _row(
    ceiling: str, typ: str, name: str, kind: str, value: float, eff: float, ridge: float
) -> dict[str, Any]:
    return {
        "ceiling": ceiling,
        "type": typ,
        "name": name,
        "kind": kind,
        "value": float(value),
        "effective_value": float(eff),
        "ridge_flop_per_byte": float(ridge),
    }


def roofline_points(data: Any, *, hierarchical: bool = True) -> pd.DataFrame:
    """The points a result puts on the roofline (columns in the module docstring).

    ``hierarchical=True``: one point per (op, tier or link it moved bytes over), from
    the traffic table. ``False``: one point per op at ``intensity_flop_per_byte`` of the
    ops table (resource ``offchip``). Ops with no FLOPs, no duration or no bytes cannot
    sit on log axes and are left out; ``time_share`` is duration / total duration of
    all ops (left-out ones included).
    """
    tables = RunTables.of(data)
    ops = tables.need("ops")
    check_columns(ops, ("flops", "duration_s", "phase"), table="ops")
    ops = ops.copy()
    if "op" not in ops.columns:
        ops["op"] = ops.index
    if "name" not in ops.columns:
        ops["name"] = ops["op"].astype(str)
    total_time = float(ops["duration_s"].sum())
    if hierarchical:
        traffic = tables.need("traffic")
        check_columns(traffic, ("op", "resource", "bytes_read", "bytes_written"), table="traffic")
        both = traffic.assign(bytes=traffic["bytes_read"] + traffic["bytes_written"])
        moved = both.groupby(["op", "resource"], as_index=False).agg(bytes=("bytes", "sum"))
        pts = moved.merge(ops[["op", "name", "phase", "flops", "duration_s"]], on="op")
    else:
        check_columns(ops, ("intensity_flop_per_byte",), table="ops")
        pts = ops[["op", "name", "phase", "flops", "duration_s"]].copy()
        pts["resource"] = "offchip"
        with np.errstate(divide="ignore", invalid="ignore"):
            pts["bytes"] = ops["flops"] / ops["intensity_flop_per_byte"]
    kinds = tables.resource_kinds()
    pts["resource_kind"] = [kinds.get(r, r.partition(":")[2] or r) for r in pts["resource"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        pts["intensity_flop_per_byte"] = pts["flops"] / pts["bytes"]
        pts["flops_per_s"] = pts["flops"] / pts["duration_s"]
    pts["time_share"] = pts["duration_s"] / total_time if total_time > 0 else 0.0
    ok = (
        (pts["flops"] > 0)
        & (pts["duration_s"] > 0)
        & (pts["bytes"] > 0)
        & np.isfinite(pts["intensity_flop_per_byte"])
    )
    return pts.loc[ok, list(POINT_COLUMNS)].reset_index(drop=True)


def _system_of(data: Any, system: System | None) -> System:
    if system is not None:
        return system
    if hasattr(data, "tiers") and hasattr(data, "ridge_point"):
        return data
    sys_ = getattr(data, "system", None)
    if sys_ is None:
        raise SpecError(
            [
                Problem(
                    "system",
                    "the roofline needs the system for its ceilings: "
                    "pass system= (or --system on the CLI)",
                )
            ]
        )
    return sys_


@styled
def roofline(
    data: Any,
    *,
    ax: Axes | None = None,
    system: System | None = None,
    dtype: str | None = None,
    hierarchical: bool = True,
    effective: bool = False,
    tiers: Sequence[str] | None = None,
    links: bool = True,
    title: str | None = None,
    legend: bool = True,
) -> Axes:
    """Draw the hierarchical roofline of ``data`` and return the axes.

    ``data``: a ``hw_models.System`` (ceilings only), a ``SimResult`` or
    :class:`~plots.tables.RunTables` (ceilings from its system, or ``system=``), or a
    DataFrame of :func:`roofline_points` (needs ``system=``).
    ``dtype`` picks the peak used for ridge points (default :func:`reference_dtype`);
    ``effective=True`` adds a thin dotted ceiling at the achievable bandwidth of every
    tier and link whose achievable fraction is below 1.

    Artists carry ids for tools and tests: ``gid`` ``ceiling:compute:<dtype>``,
    ``ceiling:tier:<name>``, ``ceiling:link:<name>`` (+ ``:effective``),
    ``ridge:tier:<name>``, ``ridge:link:<name>``, ``points:<phase>:<resource>``.
    """
    sys_ = _system_of(data, system)
    is_system = data is sys_
    if is_system:
        pts = roofline_points_empty()
    elif isinstance(data, pd.DataFrame):
        check_columns(
            data,
            ("phase", "resource", "intensity_flop_per_byte", "flops_per_s", "time_share"),
            table="points",
        )
        pts = data
    else:
        pts = roofline_points(data, hierarchical=hierarchical)
    ops = None if is_system or isinstance(data, pd.DataFrame) else RunTables.of(data).ops
    ref = dtype or reference_dtype(sys_, ops)
    ceil = ceilings_frame(sys_, dtype=ref, tiers=tiers, links=links)
    ax = new_axes(ax, figsize=(7.2, 4.6))
    ax.set_xscale("log")
    ax.set_yscale("log")

    compute = ceil[ceil["type"] == "compute"]
    slanted = ceil[ceil["type"] != "compute"]
    peak_top = float(compute["value"].max())
    peak_ref = sys_.peak_flops_per_s(ref)
    bw_max = float(slanted["value"].max()) if len(slanted) else peak_top
    ridges = slanted["ridge_flop_per_byte"]
    xs = pts["intensity_flop_per_byte"] if len(pts) else pd.Series(dtype=float)
    ys = pts["flops_per_s"] if len(pts) else pd.Series(dtype=float)
    x_lo = min(0.1, peak_top / bw_max / 30)
    x_hi = float(ridges.max()) * 4 if len(ridges) else 1e3
    if len(xs):
        x_lo = min(x_lo, float(xs.min()) / 3)
        x_hi = max(x_hi, float(xs.max()) * 3)
    y_hi = peak_top * 2.5
    y_lo = float(slanted["value"].min()) * x_lo if len(slanted) else peak_top / 1e4
    if len(ys):
        y_lo = min(y_lo, float(ys.min()) / 3)
    y_lo = max(y_lo, y_hi / 1e9)

    from matplotlib.lines import Line2D

    handles: list[Any] = []
    for _, c in compute.iterrows():
        lk = look(DTYPE_LOOKS, str(c["name"]))
        x0 = c["value"] / bw_max
        (line,) = ax.plot(
            [x0, x_hi],
            [c["value"], c["value"]],
            color=lk.color,
            linestyle=lk.linestyle,
            linewidth=1.3,
            gid=f"ceiling:{c['ceiling']}",
            label=f"{lk.label} peak {_eng(c['value'], 'FLOP/s')}",
            zorder=2,
        )
        handles.append(line)
    for _, c in slanted.iterrows():
        lk = resource_look(str(c["ceiling"]), {str(c["ceiling"]): str(c["kind"])})
        bw = float(c["value"])
        x1 = peak_top / bw
        width = 1.8 if c["type"] == "tier" else 1.2
        (line,) = ax.plot(
            [x_lo, x1],
            [bw * x_lo, bw * x1],
            color=lk.color,
            linestyle=lk.linestyle,
            linewidth=width,
            gid=f"ceiling:{c['ceiling']}",
            label=f"{c['name']} ({c['kind']}) {_eng(bw, 'B/s')}",
            zorder=2,
        )
        handles.append(line)
        if effective and c["effective_value"] < bw:
            eb = float(c["effective_value"])
            ax.plot(
                [x_lo, peak_top / eb],
                [eb * x_lo, peak_top],
                color=lk.color,
                linestyle=":",
                linewidth=0.8,
                gid=f"ceiling:{c['ceiling']}:effective",
                zorder=2,
            )
        ax.plot(
            [c["ridge_flop_per_byte"]],
            [peak_ref],
            linestyle="none",
            marker=lk.marker,
            markersize=6,
            markerfacecolor="white",
            markeredgecolor=lk.color,
            markeredgewidth=1.3,
            gid=f"ridge:{c['ceiling']}",
            zorder=4,
        )

    if len(pts):
        share_max = float(pts["time_share"].max()) or 1.0
        kinds = dict(zip(pts["resource"], pts["resource_kind"], strict=False))
        for (phase, resource), grp in pts.groupby(["phase", "resource"], sort=False):
            plk = look(PHASE_LOOKS, str(phase))
            rlk = (
                OTHER_LOOKS["offchip"]
                if resource == "offchip"
                else resource_look(str(resource), kinds)
            )
            area = POINT_AREA_MIN + POINT_AREA_MAX * grp["time_share"] / share_max
            ax.scatter(
                grp["intensity_flop_per_byte"],
                grp["flops_per_s"],
                s=area,
                c=plk.color,
                marker=rlk.marker,
                alpha=0.75,
                edgecolors="black",
                linewidths=0.3,
                gid=f"points:{phase}:{resource}",
                zorder=3,
            )
        for phase in dict.fromkeys(pts["phase"]):
            plk = look(PHASE_LOOKS, str(phase))
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    color=plk.color,
                    markeredgecolor="black",
                    markeredgewidth=0.3,
                    label=f"{plk.label} ops",
                )
            )
        for resource in dict.fromkeys(pts["resource"]):
            rlk = (
                OTHER_LOOKS["offchip"]
                if resource == "offchip"
                else resource_look(str(resource), kinds)
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker=rlk.marker,
                    color="white",
                    markeredgecolor="black",
                    label=f"vs {resource}",
                )
            )

    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    ax.grid(True, which="major", linewidth=0.5)
    ax.set_title(title if title is not None else f"Roofline: {sys_.name} (ridges at {ref})")
    if legend:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def roofline_points_empty() -> pd.DataFrame:
    """An empty points table (a system without a result)."""
    return pd.DataFrame(columns=list(POINT_COLUMNS))


@styled
def roofline_grid(
    items: Sequence[Any],
    *,
    titles: Sequence[str] | None = None,
    dtype: str | None = None,
    hierarchical: bool = True,
    effective: bool = False,
) -> Figure:
    """Several systems (or results) side by side, one roofline panel each, shared y axis."""
    if not items:
        raise SpecError([Problem("systems", "nothing to draw: give at least one system")])
    fig, axes = new_figure(figsize=(4.6 * len(items) + 2.0, 4.6), ncols=len(items), sharey=True)
    for i, (item, ax) in enumerate(zip(items, axes, strict=True)):
        roofline(
            item,
            ax=ax,
            dtype=dtype,
            hierarchical=hierarchical,
            effective=effective,
            title=titles[i] if titles else None,
            legend=True,
        )
        if i:
            ax.set_ylabel("")
    lo = min(a.get_ylim()[0] for a in axes)
    hi = max(a.get_ylim()[1] for a in axes)
    for ax in axes:
        ax.set_ylim(lo, hi)
    return fig


def _eng(value: float, unit: str) -> str:
    for div, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
