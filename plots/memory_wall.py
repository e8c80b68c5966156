"""The memory wall: peak FLOP/s against DRAM and interconnect bandwidth across two decades.

Ships ``plots/data/memory_wall.csv`` (every row cites its datasheet or standard), fits
the growth per two years of each series (least squares on log value against year)
and draws it beside the trends published by Gholami et al., "AI and Memory Wall",
IEEE Micro 44(3), 2024 (arXiv:2403.14123): peak FLOP/s 3.0x, DRAM bandwidth 1.6x,
interconnect bandwidth 1.4x per two years. The user's systems and model sizes can be
overlaid.

Data columns: ``year, name, category, peak_flops_per_s, peak_dtype,
dram_bandwidth_bytes_per_s, interconnect_bandwidth_bytes_per_s, memory_capacity_bytes,
source`` (empty cells where a row does not describe that quantity: interconnect
standards have no FLOP/s). Overlay tables: ``systems`` has ``name, year`` and any of
the three series columns plus ``memory_capacity_bytes`` (:func:`system_row` builds a
row from a ``hw_models.System``); ``models`` has ``name, year, parameter_bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hw_models.errors import Problem, SpecError
from plots.style import BLUE, BROWN, GREEN, VERMILLION, new_axes, styled
from plots.tables import check_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hw_models import System

DATA_PATH = Path(__file__).parent / "data" / "memory_wall.csv"
SERIES: Mapping[str, str] = {
    "peak_flops_per_s": "Peak FLOP/s",
    "dram_bandwidth_bytes_per_s": "DRAM bandwidth",
    "interconnect_bandwidth_bytes_per_s": "Interconnect bandwidth",
}
PUBLISHED_GROWTH_PER_2Y: Mapping[str, float] = {
    "peak_flops_per_s": 3.0,
    "dram_bandwidth_bytes_per_s": 1.6,
    "interconnect_bandwidth_bytes_per_s": 1.4,
}
"""Gholami et al. 2024, Fig. 1 and abstract: growth per two years, ~1998-2022 data."""
SERIES_STYLE: Mapping[str, tuple[str, str, str]] = {  # colour, marker, line style
    "peak_flops_per_s": (VERMILLION, "o", "-"),
    "dram_bandwidth_bytes_per_s": (BLUE, "s", "--"),
    "interconnect_bandwidth_bytes_per_s": (GREEN, "^", "-."),
    "memory_capacity_bytes": (BROWN, "D", ":"),
}
COLUMNS = ("year", "name", "category", *SERIES, "memory_capacity_bytes", "source")


@dataclass(frozen=True, slots=True, kw_only=True)
class GrowthFit:
    """``log(value) = intercept + slope * year`` fitted over ``n`` points."""

    column: str
    slope_per_year: float
    intercept: float
    n: int
    first_year: float
    last_year: float

    @property
    def per_two_years(self) -> float:
        """Growth factor per two years: ``exp(2 * slope)``."""
        return math.exp(2.0 * self.slope_per_year)

    def predict(self, year: float | np.ndarray) -> Any:
        """The fitted value at ``year``."""
        return np.exp(self.intercept + self.slope_per_year * np.asarray(year, dtype=float))


def load_memory_wall(path: str | Path | None = None) -> pd.DataFrame:
    """Read the hardware-generation table (default: the shipped one) and validate it.

    Every row needs a year, a name, a non-empty ``source`` and at least one positive
    value; problems are reported as ``<file> line <n>`` in one :class:`SpecError`.
    """
    p = Path(path) if path is not None else DATA_PATH
    if not p.exists():
        raise SpecError([Problem("data", f"{p} does not exist")])
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpecError([Problem("data", f"cannot read: {err}")], source=str(p)) from None
    check_columns(frame, COLUMNS, table=p.name)
    problems = []
    values = [*SERIES, "memory_capacity_bytes"]
    for i, row in frame.iterrows():
        line = f"line {int(str(i)) + 2}"
        if not isinstance(row["source"], str) or not row["source"].strip():
            problems.append(Problem(f"{line}.source", "every row must cite its source"))
        if not isinstance(row["name"], str) or not row["name"].strip():
            problems.append(Problem(f"{line}.name", "missing name"))
        if not (pd.notna(row["year"]) and 1950 <= float(row["year"]) <= 2100):
            problems.append(Problem(f"{line}.year", f"expected a year, found {row['year']!r}"))
        present = [c for c in values if pd.notna(row[c])]
        if not present:
            problems.append(Problem(line, "no value in any series column"))
        for c in present:
            if not float(row[c]) > 0:
                problems.append(Problem(f"{line}.{c}", f"expected > 0, found {row[c]!r}"))
    if problems:
        raise SpecError(problems, source=str(p))
    return frame


def fit_growth(frame: pd.DataFrame, column: str) -> GrowthFit:
    """Least-squares fit of ``log(column)`` against ``year`` over the rows that have it."""
    check_columns(frame, ("year", column), table="memory wall")
    s = frame[["year", column]].dropna()
    s = s[s[column] > 0]
    if len(s) < 2 or s["year"].nunique() < 2:
        raise SpecError([Problem(column, "need values in at least two different years to fit")])
    slope, intercept = np.polyfit(s["year"].to_numpy(float), np.log(s[column].to_numpy(float)), 1)
    return GrowthFit(
        column=column,
        slope_per_year=float(slope),
        intercept=float(intercept),
        n=len(s),
        first_year=float(s["year"].min()),
        last_year=float(s["year"].max()),
    )


def system_row(system: System, *, year: int, dtype: str | None = None) -> dict[str, Any]:
    """A row for the ``systems`` overlay from a ``hw_models.System`` (per device).

    Peak: the headline dtype (``dtype``, default the fastest the main unit has, as the
    data's rows use); DRAM: the fastest DRAM-built tier (HBM/GDDR/DDR/LPDDR/CXL);
    interconnect: the fastest link; capacity: that DRAM tier's capacity.
    """
    from hw_models.tier import DRAM_KINDS

    if dtype is None:
        peak = max(float(v) for u in system.compute.values() for v in u.peak_flops_per_s.values())
    else:
        peak = system.peak_flops_per_s(dtype)
    dram = [t for t in system.tiers.values() if t.kind in DRAM_KINDS]
    fastest = max(dram, key=lambda t: t.read_bandwidth_bytes_per_s) if dram else None
    links = [lk.bandwidth_bytes_per_s for lk in system.links.values()]
    return {
        "name": system.name,
        "year": year,
        "peak_flops_per_s": peak,
        "dram_bandwidth_bytes_per_s": fastest.read_bandwidth_bytes_per_s if fastest else math.nan,
        "interconnect_bandwidth_bytes_per_s": max(links) if links else math.nan,
        "memory_capacity_bytes": fastest.capacity_bytes if fastest else math.nan,
    }


@styled
def memory_wall(
    data: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    systems: pd.DataFrame | None = None,
    published: bool = True,
    title: str | None = "The memory wall",
) -> Axes:
    """Growth of each series since the first year of the data, on a log axis.

    Points are the data rows; the solid/dashed/dash-dot line of the series' colour is
    the fit (its legend gives the fitted growth per two years); thin grey lines are the
    published trends. Values are divided by the series' fitted value at the base year,
    so the three series share one axis (x growth). ``systems`` rows are drawn as
    stars with the same normalisation. Ids: ``gid`` ``data:<col>``, ``fit:<col>``,
    ``published:<col>``, ``system:<col>``.
    """
    frame = load_memory_wall() if data is None else data
    ax = new_axes(ax, figsize=(7.0, 4.4))
    base = float(frame["year"].min())
    end = float(
        max(
            frame["year"].max(),
            systems["year"].max() if systems is not None and len(systems) else 0,
        )
    )
    years = np.linspace(base, end, 50)
    for col, label in SERIES.items():
        if col not in frame.columns or frame[col].notna().sum() < 2:
            continue
        fit = fit_growth(frame, col)
        scale = float(fit.predict(base))
        color, marker, ls = SERIES_STYLE[col]
        s = frame[["year", col]].dropna()
        ax.scatter(
            s["year"],
            s[col] / scale,
            color=color,
            marker=marker,
            s=22,
            edgecolors="black",
            linewidths=0.3,
            zorder=3,
            gid=f"data:{col}",
        )
        ax.plot(
            years,
            fit.predict(years) / scale,
            color=color,
            linestyle=ls,
            linewidth=1.6,
            label=f"{label}: {fit.per_two_years:.2f}x / 2 yrs",
            gid=f"fit:{col}",
        )
        if published:
            rate = PUBLISHED_GROWTH_PER_2Y[col]
            ax.plot(
                years,
                rate ** ((years - base) / 2.0),
                color="#777777",
                linestyle=ls,
                linewidth=0.8,
                label=f"{label}, published {rate:.1f}x / 2 yrs",
                gid=f"published:{col}",
            )
        if systems is not None and col in systems.columns:
            o = systems[["name", "year", col]].dropna()
            ax.scatter(
                o["year"],
                o[col] / scale,
                color=color,
                marker="*",
                s=110,
                edgecolors="black",
                linewidths=0.6,
                zorder=5,
                gid=f"system:{col}",
            )
            for _, r in o.iterrows():
                ax.annotate(
                    str(r["name"]),
                    (r["year"], r[col] / scale),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=7,
                )
    ax.set_yscale("log")
    ax.set_xlabel("Year")
    ax.set_ylabel(f"Growth since {int(base)} (x, fitted value at {int(base)} = 1)")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


@styled
def model_memory(
    data: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    models: pd.DataFrame | None = None,
    systems: pd.DataFrame | None = None,
    title: str | None = "Model size against accelerator memory",
) -> Axes:
    """Accelerator memory capacity per device over the years (with its fitted growth),
    against the user's model sizes (``models``: ``name, year, parameter_bytes``) and
    systems (``systems``: ``memory_capacity_bytes``). Y axis in bytes, log scale."""
    frame = load_memory_wall() if data is None else data
    ax = new_axes(ax, figsize=(6.0, 4.0))
    col = "memory_capacity_bytes"
    color, marker, ls = SERIES_STYLE[col]
    s = frame[["year", col]].dropna()
    ax.scatter(
        s["year"],
        s[col],
        color=color,
        marker=marker,
        s=22,
        edgecolors="black",
        linewidths=0.3,
        gid=f"data:{col}",
        label="accelerator memory (data)",
    )
    if len(s) >= 2:
        fit = fit_growth(frame, col)
        yrs = np.linspace(float(s["year"].min()), float(s["year"].max()), 30)
        ax.plot(
            yrs,
            fit.predict(yrs),
            color=color,
            linestyle=ls,
            gid=f"fit:{col}",
            label=f"memory capacity: {fit.per_two_years:.2f}x / 2 yrs",
        )
    if models is not None and len(models):
        check_columns(models, ("name", "year", "parameter_bytes"), table="models")
        ax.scatter(
            models["year"],
            models["parameter_bytes"],
            color=VERMILLION,
            marker="P",
            s=60,
            edgecolors="black",
            linewidths=0.5,
            zorder=5,
            gid="models",
            label="model weights",
        )
        for _, r in models.iterrows():
            ax.annotate(
                str(r["name"]),
                (r["year"], r["parameter_bytes"]),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
            )
    if systems is not None and col in systems.columns:
        o = systems[["name", "year", col]].dropna()
        ax.scatter(
            o["year"],
            o[col],
            color=color,
            marker="*",
            s=110,
            edgecolors="black",
            linewidths=0.6,
            zorder=5,
            gid=f"system:{col}",
            label="your systems",
        )
        for _, r in o.iterrows():
            ax.annotate(
                str(r["name"]),
                (r["year"], r[col]),
                xytext=(4, -9),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set_yscale("log")
    ax.set_xlabel("Year")
    ax.set_ylabel("Bytes (B)")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax
