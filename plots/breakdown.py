"""Breakdowns as stacked bars: time by what bounds each op, energy by component (tier,
link, compute, static) and by tensor kind, each per phase.

:func:`stacked_bars` is the generic piece: any long table with a category column for
the bars, one for the stacks and a value column; the explorers use it for their own
breakdowns. Stacks keep their project-wide look (a tier's colour and hatch, a
tensor kind's), so a breakdown reads next to a roofline and in black and white.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hw_models.errors import Problem, SpecError
from plots.style import (
    PHASE_LOOKS,
    TENSOR_LOOKS,
    Look,
    draw_stack,
    look,
    new_axes,
    new_figure,
    resource_look,
    styled,
    time_scale,
)
from plots.tables import RunTables, check_columns, frame_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


NO_TENSOR_LOOK = Look(
    color="#D9D9D9", hatch="", linestyle=":", marker=".", label="not tied to a tensor"
)


def tensor_look(kind: str) -> Look:
    """A tensor kind's look; ``none`` (compute, static energy) is a light grey."""
    return NO_TENSOR_LOOK if kind in ("none", "") else look(TENSOR_LOOKS, kind)


def energy_scale(max_j: float) -> tuple[float, str]:
    """``(multiplier, unit)`` for energies up to ``max_j``: J, mJ, µJ or kJ."""
    if max_j >= 1e3:
        return 1e-3, "kJ"
    if max_j >= 1.0:
        return 1.0, "J"
    if max_j >= 1e-3:
        return 1e3, "mJ"
    return 1e6, "µJ"


@styled
def stacked_bars(
    frame: pd.DataFrame,
    *,
    x: str,
    stack: str,
    value: str,
    ax: Axes | None = None,
    look_of: Callable[[str], Look] | None = None,
    x_order: Sequence[str] | None = None,
    multiplier: float = 1.0,
    ylabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """One bar per value of column ``x``, stacked by column ``stack``, height = sum of
    ``value`` (times ``multiplier``). Each segment's ``gid`` is ``bar:<stack>:<x>``.

    ``look_of`` gives a stack's colour/hatch/label (default: a stable fallback look).
    """
    check_columns(frame, (x, stack, value), table="breakdown")
    table = frame.pivot_table(index=x, columns=stack, values=value, aggfunc="sum", fill_value=0.0)
    if x_order is not None:
        table = table.reindex([o for o in x_order if o in table.index])
    table = table.loc[:, table.sum(axis=0) > 0]
    ax = new_axes(ax, figsize=(5.5, 3.8))
    lookup = look_of or (lambda k: look({}, k))
    draw_stack(ax, table * multiplier, look_of=lookup, width=0.65)
    pos = np.arange(len(table))
    ax.set_xticks(pos)
    ax.set_xticklabels([str(i) for i in table.index])
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(ylabel or value)
    ax.grid(False, axis="x")
    if len(table.columns):
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    return ax


def _phase_order(phases: Sequence[str]) -> list[str]:
    known = [p for p in PHASE_LOOKS if p in set(phases)]
    return known + sorted(set(phases) - set(known))


@styled
def time_breakdown(data: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Op time per phase, stacked by what bounds the op (``compute``, ``tier:<name>``,
    ``link:<name>``, ``latency``, ``overhead``); bars sum the ops' ``duration_s``."""
    ops = frame_of(data, "ops")
    kinds = {} if isinstance(data, pd.DataFrame) else RunTables.of(data).resource_kinds()
    total = float(ops.groupby("phase")["duration_s"].sum().max()) if len(ops) else 0.0
    mult, unit = time_scale(total if total > 0 else 1.0)
    return stacked_bars(
        ops,
        x="phase",
        stack="bound",
        value="duration_s",
        ax=ax,
        look_of=lambda r: resource_look(r, kinds),
        multiplier=mult,
        x_order=_phase_order(list(ops["phase"].astype(str))),
        ylabel=f"Op time ({unit})",
        title=title or "Time by bound",
    )


EnergyBy = Literal["component", "tensor_kind"]


@styled
def energy_breakdown(
    data: Any, *, ax: Axes | None = None, by: EnergyBy = "component", title: str | None = None
) -> Axes:
    """Energy per phase, stacked by ``component`` (``tier:<name>``, ``link:<name>``,
    ``compute:<name>``, ``static``) or by ``tensor_kind``."""
    if by not in ("component", "tensor_kind"):
        raise SpecError([Problem("by", f"expected component or tensor_kind, found {by!r}")])
    energy = frame_of(data, "energy")
    kinds = {} if isinstance(data, pd.DataFrame) else RunTables.of(data).resource_kinds()
    total = float(energy.groupby("phase")["energy_j"].sum().max()) if len(energy) else 0.0
    mult, unit = energy_scale(total if total > 0 else 1.0)
    look_of: Callable[[str], Look] = (
        (lambda r: resource_look(r, kinds)) if by == "component" else tensor_look
    )
    frame = energy.assign(**{by: energy[by].fillna("none").astype(str)})
    return stacked_bars(
        frame,
        x="phase",
        stack=by,
        value="energy_j",
        ax=ax,
        look_of=look_of,
        multiplier=mult,
        x_order=_phase_order(list(energy["phase"].astype(str))),
        ylabel=f"Energy ({unit})",
        title=title or f"Energy by {by.replace('_', ' ')}",
    )


@styled
def breakdown(data: Any) -> Figure:
    """Three panels: time by bound, energy by component, energy by tensor kind."""
    tables = RunTables.of(data)
    fig, axes = new_figure(figsize=(15.0, 4.0), ncols=3)
    time_breakdown(tables, ax=axes[0])
    energy_breakdown(tables, ax=axes[1], by="component")
    energy_breakdown(tables, ax=axes[2], by="tensor_kind")
    return fig


def tier_time_table(data: Any) -> pd.DataFrame:
    """Op time bound by each tier and link, summed over phases (``bound, duration_s,
    share``): the text form of the time breakdown, used by the report."""
    ops = frame_of(data, "ops")
    out = ops.groupby("bound", as_index=False).agg(duration_s=("duration_s", "sum"))
    total = float(out["duration_s"].sum())
    out["share"] = out["duration_s"] / total if total > 0 else 0.0
    return out.sort_values("duration_s", ascending=False).reset_index(drop=True)
