"""DRAM device plots: read-latency distribution and row-buffer hit/miss/conflict breakdown.

Input: the stats of one request-level DRAM run (``memsim.dram`` ``DRAMStats.to_dict()``
or any plain mapping), or a mapping ``{config name: stats}`` to compare runs. Keys read:

* row outcomes: ``row_hits``, ``row_misses``, ``row_conflicts`` (counts)
* latency, one of: ``read_latencies_ns`` / ``latency_samples_ns`` / ``latencies_ns``
  (samples in ns), ``read_latencies_s`` / ``latency_samples_s`` (samples in s), or
  ``latency_histogram`` = ``{"bin_edges_ns": [...], "counts": [...]}``
* optional markers: ``avg_read_latency_ns``, ``p99_read_latency_ns``

A DataFrame works too: one row per config (index = name) with the row-outcome columns,
or a column ``latency_ns`` of samples (with an optional ``config`` column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hw_models.errors import Problem, SpecError
from plots.style import (
    BLUE,
    GREEN,
    ORANGE,
    PHASE_LOOKS,
    VERMILLION,
    Look,
    draw_stack,
    new_axes,
    new_figure,
    styled,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ROW_OUTCOMES = ("row_hits", "row_misses", "row_conflicts")
ROW_LOOKS: Mapping[str, Look] = {
    "row_hits": Look(color=GREEN, hatch="", linestyle="-", marker="o", label="row hit"),
    "row_misses": Look(color=ORANGE, hatch="..", linestyle="--", marker="s", label="row miss"),
    "row_conflicts": Look(
        color=VERMILLION, hatch="xx", linestyle=":", marker="^", label="row conflict"
    ),
}
_SAMPLE_KEYS_NS = ("read_latencies_ns", "latency_samples_ns", "latencies_ns", "latency_ns")
_SAMPLE_KEYS_S = ("read_latencies_s", "latency_samples_s")
_CURVES = [BLUE, VERMILLION, GREEN, ORANGE]


def _runs(stats: Any) -> dict[str, Mapping[str, Any]]:
    """Normalise input to ``{name: stats mapping}``."""
    if hasattr(stats, "to_dict") and not isinstance(stats, pd.DataFrame | Mapping):
        stats = stats.to_dict()
    if isinstance(stats, pd.DataFrame):
        if "latency_ns" in stats.columns:
            key = "config" if "config" in stats.columns else None
            groups = stats.groupby(key, sort=False) if key else [("run", stats)]
            return {str(n): {"latency_ns": g["latency_ns"].to_numpy(float)} for n, g in groups}
        return {str(i): {str(k): v for k, v in row.items()} for i, row in stats.iterrows()}
    if not isinstance(stats, Mapping):
        raise SpecError(
            [Problem("stats", f"expected DRAM stats (a mapping), found {type(stats).__name__}")]
        )
    looks_single = any(
        k in stats for k in (*ROW_OUTCOMES, *_SAMPLE_KEYS_NS, *_SAMPLE_KEYS_S, "latency_histogram")
    )
    if looks_single:
        return {"run": stats}
    out = {}
    for name, s in stats.items():
        s = s.to_dict() if hasattr(s, "to_dict") and not isinstance(s, Mapping) else s
        if not isinstance(s, Mapping):
            raise SpecError([Problem(f"stats.{name}", "expected DRAM stats (a mapping)")])
        out[str(name)] = s
    return out


def row_outcomes(stats: Any) -> pd.DataFrame:
    """Rows ``config``; columns ``row_hits, row_misses, row_conflicts`` (counts) and the
    same as fractions (``*_fraction``). Missing counts are a :class:`SpecError`."""
    rows = []
    for name, s in _runs(stats).items():
        missing = [k for k in ROW_OUTCOMES if k not in s]
        if missing:
            raise SpecError(
                [Problem(f"stats.{name}.{k}", "required key is missing") for k in missing]
            )
        counts = {k: _count(s[k], f"stats.{name}.{k}") for k in ROW_OUTCOMES}
        total = sum(counts.values())
        rows.append(
            {
                "config": name,
                **counts,
                **{f"{k}_fraction": (v / total if total else 0.0) for k, v in counts.items()},
            }
        )
    return pd.DataFrame(rows).set_index("config")


def _count(value: Any, where: str) -> float:
    """A count from a stats file: a finite number >= 0 (not a boolean, not a string)."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(float(value)) or float(value) < 0:
        raise SpecError([Problem(where, f"expected a finite count >= 0, found {value!r:.60}")])
    return float(value)


def _floats(value: Any, where: str) -> np.ndarray:
    """A 1-D array of numbers from a stats file; :class:`SpecError` naming ``where``."""
    seq = value.tolist() if isinstance(value, np.ndarray | pd.Series) else value
    if not isinstance(seq, list | tuple) or any(
        isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating)
        for v in seq
    ):
        raise SpecError([Problem(where, "expected a list of numbers")])
    return np.asarray(seq, dtype=float)


def latency_histogram(s: Mapping[str, Any], *, bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """``(bin_edges_ns, counts)`` of one run's read latencies (samples or histogram)."""
    for key in _SAMPLE_KEYS_NS + _SAMPLE_KEYS_S:
        if key in s:
            samples = _floats(s[key], key) * (1e9 if key in _SAMPLE_KEYS_S else 1.0)
            samples = samples[np.isfinite(samples)]
            if samples.size == 0:
                raise SpecError([Problem(key, "no latency samples")])
            counts, edges = np.histogram(samples, bins=bins)
            return edges, counts.astype(float)
    hist = s.get("latency_histogram")
    if isinstance(hist, Mapping) and "bin_edges_ns" in hist and "counts" in hist:
        edges = _floats(hist["bin_edges_ns"], "latency_histogram.bin_edges_ns")
        counts = _floats(hist["counts"], "latency_histogram.counts")
        if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
            raise SpecError(
                [Problem("latency_histogram.bin_edges_ns", "expected finite, increasing edges")]
            )
        if not (np.all(np.isfinite(counts)) and np.all(counts >= 0)):
            raise SpecError([Problem("latency_histogram.counts", "expected finite counts >= 0")])
        if edges.size != counts.size + 1:
            raise SpecError(
                [Problem("latency_histogram", f"{edges.size} bin edges for {counts.size} counts")]
            )
        return edges, counts
    raise SpecError(
        [
            Problem(
                "stats",
                "no latency data: expected one of "
                f"{', '.join(_SAMPLE_KEYS_NS + _SAMPLE_KEYS_S)} or "
                "latency_histogram",
            )
        ]
    )


@styled
def dram_row_breakdown(stats: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Stacked bars (one per config) of the row-hit / miss / conflict fractions, in %.

    Segment ``gid``: ``bar:<outcome>:<config>``."""
    table = row_outcomes(stats)
    ax = new_axes(ax, figsize=(5.0, 1.4 + 0.45 * len(table)))
    percent = pd.DataFrame(
        {k: table[f"{k}_fraction"].to_numpy(float) * 100 for k in ROW_OUTCOMES}, index=table.index
    )
    draw_stack(ax, percent, look_of=lambda k: ROW_LOOKS[k], width=0.6, horizontal=True)
    pos = np.arange(len(table))
    ax.set_yticks(pos)
    ax.set_yticklabels(list(table.index))
    ax.set_xlim(0, 100)
    ax.set_xlabel("Requests (%)")
    ax.grid(False, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title if title is not None else "Row-buffer outcomes")
    return ax


@styled
def dram_latency(
    stats: Any,
    *,
    ax: Axes | None = None,
    cdf: bool = False,
    bins: int = 60,
    title: str | None = None,
) -> Axes:
    """Read-latency distribution per config: histogram (% of requests per bin) or CDF.

    Mean and p99 are marked when the stats give them. Line ``gid``: ``latency:<config>``.
    """
    runs = _runs(stats)
    ax = new_axes(ax, figsize=(5.5, 3.6))
    styles = list(PHASE_LOOKS.values())
    for i, (name, s) in enumerate(runs.items()):
        edges, counts = latency_histogram(s, bins=bins)
        total = counts.sum()
        share = counts / total * 100 if total else counts
        lk = styles[i % len(styles)]
        color = _CURVES[i % len(_CURVES)]
        if cdf:
            ax.plot(
                edges,
                np.concatenate([[0.0], np.cumsum(share)]),
                color=color,
                linestyle=lk.linestyle,
                label=name,
                gid=f"latency:{name}",
            )
        else:
            ax.stairs(
                share,
                edges,
                color=color,
                linestyle=lk.linestyle,
                linewidth=1.4,
                label=name,
                gid=f"latency:{name}",
            )
        for key, mark in (("avg_read_latency_ns", "mean"), ("p99_read_latency_ns", "p99")):
            if key in s and s[key] is not None:
                ax.axvline(
                    float(s[key]),
                    color=color,
                    linestyle=(0, (1.0, 2.0)),
                    linewidth=0.8,
                    gid=f"{mark}:{name}",
                )
    ax.set_xlabel("Read latency (ns)")
    ax.set_ylabel("Requests, cumulative (%)" if cdf else "Requests (%)")
    if len(runs) > 1 or next(iter(runs)) != "run":
        ax.legend()
    ax.set_title(title if title is not None else "DRAM read latency")
    return ax


@styled
def dram(stats: Any, *, cdf: bool = False, configs: Sequence[str] | None = None) -> Figure:
    """Two panels: the latency distribution and the row-buffer breakdown."""
    runs = _runs(stats)
    if configs is not None:
        runs = {k: v for k, v in runs.items() if k in configs}
    fig, axes = new_figure(figsize=(11.0, 3.8), ncols=2)
    dram_latency(runs, ax=axes[0], cdf=cdf)
    dram_row_breakdown(runs, ax=axes[1])
    return fig
