"""Figures from memsim results: roofline, memory wall, timeline, occupancy, breakdowns,
sensitivity curves, DRAM device plots, and a one-page HTML report.

Every plot is ``f(data, *, ax=None, ...) -> Axes`` (a ``Figure`` for multi-panel ones);
``data`` is a ``SimResult``, a :class:`RunTables` (e.g. read back from a ``memsim run
--out`` folder) or the DataFrame with the documented columns. Plots never run a
simulation. Looks (colour, hatch, line style, marker per tier, link, phase and tensor
kind) come from :mod:`plots.style`, the same in every figure.

Importing this package imports matplotlib; nothing in ``memsim``, ``hw_models`` or
``workloads`` imports it. Figures are made without pyplot (headless, Agg).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plots.breakdown import breakdown, energy_breakdown, stacked_bars, time_breakdown
from plots.dram import dram, dram_latency, dram_row_breakdown, row_outcomes
from plots.memory_wall import (
    PUBLISHED_GROWTH_PER_2Y,
    GrowthFit,
    fit_growth,
    load_memory_wall,
    memory_wall,
    model_memory,
    system_row,
)
from plots.occupancy import occupancy
from plots.pareto import parallel_coordinates, pareto_scatter
from plots.report import render_report, write_report
from plots.roofline import ceilings_frame, roofline, roofline_grid, roofline_points
from plots.sensitivity import sensitivity, sensitivity_bars, sensitivity_panels
from plots.serving import (
    kv_occupancy,
    latency_cdf,
    latency_vs_load,
    write_load_curve_figure,
    write_serve_figures,
)
from plots.style import save_figure
from plots.tables import RunTables
from plots.timeline import timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RUN_FIGURES = ("roofline", "timeline", "occupancy")


def write_run_figures(result: Any, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the roofline, timeline and occupancy of ``result`` into ``out_dir`` as
    ``roofline.png``, ``timeline.png``, ``occupancy.png`` (each written atomically);
    returns the paths written. Called by ``memsim run --out DIR``.
    """
    tables = RunTables.of(result)
    out = Path(out_dir)
    drawers: dict[str, Callable[[RunTables], Axes]] = {
        "roofline": roofline,
        "timeline": timeline,
        "occupancy": occupancy,
    }
    written = []
    for name in RUN_FIGURES:
        ax = drawers[name](tables)
        fig = ax.get_figure(root=True)
        assert fig is not None
        written.append(save_figure(fig, out / f"{name}.png"))
    return written


__all__ = [
    "PUBLISHED_GROWTH_PER_2Y",
    "RUN_FIGURES",
    "GrowthFit",
    "RunTables",
    "breakdown",
    "ceilings_frame",
    "dram",
    "dram_latency",
    "dram_row_breakdown",
    "energy_breakdown",
    "fit_growth",
    "kv_occupancy",
    "latency_cdf",
    "latency_vs_load",
    "load_memory_wall",
    "memory_wall",
    "model_memory",
    "occupancy",
    "parallel_coordinates",
    "pareto_scatter",
    "render_report",
    "roofline",
    "roofline_grid",
    "roofline_points",
    "row_outcomes",
    "save_figure",
    "sensitivity",
    "sensitivity_bars",
    "sensitivity_panels",
    "stacked_bars",
    "system_row",
    "time_breakdown",
    "timeline",
    "write_load_curve_figure",
    "write_report",
    "write_run_figures",
    "write_serve_figures",
]
