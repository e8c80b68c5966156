"""One self-contained HTML page for a run folder written by ``memsim run --out DIR``.

The page holds the run's summary table, its tiers, the time bound by each resource,
the slowest op groups, and every figure of the folder (PNG embedded as base64, SVG
inline), plus a time breakdown (and energy breakdown) drawn from the tables. Nothing
is fetched from the network when the page is opened.

>>> write_report("out/demo", "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write_text
from plots.tables import RunTables

FIGURE_ORDER = ("roofline", "timeline", "occupancy", "breakdown")
SUMMARY_FIELDS: Sequence[tuple[str, str, str]] = (  # key, label, unit
    ("makespan_s", "Makespan", "s"),
    ("ttft_s", "Time to first token", "s"),
    ("tpot_s", "Time per output token", "s"),
    ("tokens_per_s", "Throughput", "tokens/s"),
    ("energy_j", "Energy", "J"),
    ("bottleneck", "Bottleneck", ""),
    ("mfu", "Model FLOP utilisation", ""),
    ("achieved_bandwidth_bytes_per_s", "Achieved bandwidth", "B/s"),
)

_CSS = """
body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
color:#111;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:right}th{background:#f2f2f2}td:first-child,th:first-child
{text-align:left}figure{margin:1em 0}figure img,figure svg{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#444}.meta{color:#555;font-size:.85em}
"""


def fmt_value(value: Any, unit: str = "") -> str:
    """A number with an SI prefix and ``unit`` (``3.35 TB/s``, ``12.5 ms``); text as is."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    if unit == "":
        return f"{v:.4g}"
    prefixes = (
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
    )
    if v == 0:
        return f"0 {unit}"
    for div, p in prefixes:
        if abs(v) >= div:
            return f"{v / div:.4g} {p}{unit}"
    return f"{v:.3g} {unit}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure_html(path: Path) -> str:
    caption = html.escape(path.stem.replace("_", " "))
    if path.suffix.lower() == ".png":
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body = f'<img alt="{caption}" src="data:image/png;base64,{data}"/>'
    else:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^\s*<\?xml[^>]*>\s*", "", text)
        text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
        body = text
    return f"<figure>{body}<figcaption>{caption}</figcaption></figure>"


def _png_of(fig: Any, caption: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _figures(root: Path) -> list[Path]:
    found = [
        p
        for p in root.iterdir()
        if p.suffix.lower() in (".png", ".svg") and p.is_file() and not p.name.startswith(".")
    ]
    rank = {name: i for i, name in enumerate(FIGURE_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def _summary_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key, label, unit in SUMMARY_FIELDS:
        if key in summary:
            v = summary[key]
            if key == "mfu" and isinstance(v, int | float) and math.isfinite(float(v)):
                rows.append([label, f"{100 * float(v):.1f} %"])
            else:
                rows.append([label, fmt_value(v, unit)])
    return rows


def _tier_rows(tables: RunTables) -> tuple[list[str], list[list[str]]]:
    if tables.tiers is not None:
        t = tables.tiers
        header = ["tier", "kind", "capacity", "read", "written", "peak use", "busy", "energy"]
        rows = [
            [
                r["tier"],
                r["kind"],
                fmt_value(r.get("capacity_bytes"), "B"),
                fmt_value(r.get("bytes_read"), "B"),
                fmt_value(r.get("bytes_written"), "B"),
                fmt_value(r.get("peak_bytes"), "B"),
                fmt_value(r.get("busy_s"), "s"),
                fmt_value(r.get("energy_j"), "J"),
            ]
            for _, r in t.iterrows()
        ]
        return header, rows
    tiers = tables.summary.get("tiers") or {}
    header = ["tier", "read", "written", "peak use"]
    rows = [
        [
            n,
            fmt_value(v.get("bytes_read"), "B"),
            fmt_value(v.get("bytes_written"), "B"),
            fmt_value(v.get("peak_bytes"), "B"),
        ]
        for n, v in tiers.items()
        if isinstance(v, Mapping)
    ]
    return header, rows


def _op_group_rows(ops: pd.DataFrame, *, top: int = 12) -> list[list[str]]:
    cols = [c for c in ("phase", "kind") if c in ops.columns]
    if not cols:
        return []
    g = ops.groupby(cols, as_index=False).agg(
        ops=("duration_s", "size"), time=("duration_s", "sum"), flops=("flops", "sum")
    )
    total = float(ops["duration_s"].sum()) or 1.0
    g = g.sort_values("time", ascending=False).head(top)
    return [
        [
            *[str(r[c]) for c in cols],
            str(int(r["ops"])),
            fmt_value(r["time"], "s"),
            f"{100 * r['time'] / total:.1f} %",
            fmt_value(r["flops"], "FLOP"),
        ]
        for _, r in g.iterrows()
    ]


def render_report(result_dir: str | Path, *, title: str | None = None) -> str:
    """The report page of ``result_dir`` as an HTML string (see :func:`write_report`)."""
    root = Path(result_dir)
    tables = RunTables.from_dir(root)
    summary = tables.summary
    meta = summary.get("meta") if isinstance(summary.get("meta"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = title or f"memsim run: {meta.get('model', '?')} on {meta.get('system', '?')}"
    parts = [f"<h1>{html.escape(str(name))}</h1>"]
    if meta:
        parts.append(
            '<p class="meta">'
            + " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in meta.items())
            + "</p>"
        )
    parts += ["<h2>Summary</h2>", _table(["metric", "value"], _summary_rows(summary))]
    header, rows = _tier_rows(tables)
    if rows:
        parts += ["<h2>Memory tiers</h2>", _table(header, rows)]
    if tables.ops is not None and len(tables.ops):
        from plots.breakdown import tier_time_table

        tt = tier_time_table(tables.ops)
        parts += [
            "<h2>Op time by bound</h2>",
            _table(
                ["bound", "op time", "share"],
                [
                    [r["bound"], fmt_value(r["duration_s"], "s"), f"{100 * r['share']:.1f} %"]
                    for _, r in tt.iterrows()
                ],
            ),
        ]
        grp = _op_group_rows(tables.ops)
        if grp:
            cols = [c for c in ("phase", "kind") if c in tables.ops.columns]
            parts += [
                "<h2>Slowest op groups</h2>",
                _table([*cols, "ops", "time", "share", "FLOPs"], grp),
            ]
    parts.append("<h2>Figures</h2>")
    figs = _figures(root)
    parts += [_figure_html(p) for p in figs]
    have = {p.stem for p in figs}
    if "breakdown" not in have and tables.ops is not None and len(tables.ops):
        parts.append(_breakdown_figure(tables))
    if not figs and (tables.ops is None or not len(tables.ops)):
        parts.append("<p>No figures in this folder.</p>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(str(name))}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _breakdown_figure(tables: RunTables) -> str:
    from plots.breakdown import energy_breakdown, time_breakdown
    from plots.style import new_figure

    n = 2 if tables.energy is not None and len(tables.energy) else 1
    fig, axes = new_figure(figsize=(6.0 * n, 3.8), ncols=n)
    time_breakdown(tables, ax=axes[0])
    if n == 2:
        energy_breakdown(tables, ax=axes[1])
    return _png_of(fig, "breakdown (from the tables)")


def write_report(result_dir: str | Path, out: str | Path, *, title: str | None = None) -> Path:
    """Write the report of ``result_dir`` to ``out`` (one HTML file) atomically.

    A missing folder, a folder without ``summary.json`` or an unreadable table is a
    :class:`SpecError`.
    """
    target = Path(out)
    if target.suffix.lower() not in (".html", ".htm"):
        raise SpecError([Problem("output", f"expected an .html file, found {target}")])
    page = render_report(result_dir, title=title)
    return atomic_write_text(target, page)
