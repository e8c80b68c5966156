"""Read microbenchmark measurements (``section,name,time_s,params_json`` CSV).

The format of ``memsim measure`` and of ``shared/calibration/*/microbenchmarks.csv``:
one row per measured call, ``time_s`` its median seconds, ``params_json`` a JSON
object with the shape (``m``, ``n``, ``k``, ``dtype``, ``bytes``, ``s``, ``L`` ...).
An optional ``source`` column names where a row's figure was published (paper or
page, table or figure, URL): a file whose rows are *published* figures rather than
measurements of one's own carries it on every row (``published.csv`` of the shipped
``*_calibrated`` presets), and the fitted parameters are then marked ``published``.
Every problem raises :class:`~hw_models.errors.SpecError` naming the line.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw_models.errors import Problem, SpecError

COLUMNS: tuple[str, ...] = ("section", "name", "time_s", "params_json")
#: optional column: where the row's figure was published (every row, when present)
SOURCE_COLUMN = "source"

#: section -> keys its ``params_json`` must have (beyond those chosen by name)
REQUIRED: dict[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k", "dtype"),
    "memory": ("bytes",),
    "pcie": ("bytes",),
    "launch": (),
    "elementwise": ("bytes", "m"),
    "attention": ("b", "h", "hkv", "d"),
    "latency": ("bytes",),
    # kernels of an unfused layer inside a CUDA graph (memsim measure --sections layer_ops)
    "layer_ops": ("bytes", "kernels"),
    # SDPA on model layouts, GEMMs in a graph, a long GEMM run: read, not fitted (checks)
    "graph_checks": (),
}
SECTIONS: tuple[str, ...] = tuple(REQUIRED)
#: section -> keys that ``params_json`` may have, numbers > 0 when present
OPTIONAL_NUMBERS: dict[str, tuple[str, ...]] = {"gemm": ("b",)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One measured row: ``line`` is its 1-based line in the file (header = 1)."""

    line: int
    section: str
    name: str
    time_s: float
    params: Mapping[str, Any]
    source: str = ""  # where the figure was published ("" for one's own measurement)


def _check_row(line: int, section: str, name: str, params: Mapping[str, Any]) -> list[Problem]:
    where = f"line {line}"
    need = list(REQUIRED[section])
    if section == "attention":
        need.append("L" if name.startswith("decode") else "s")
        if name.startswith("decode"):
            need.append("kv_bytes")
    missing = [k for k in need if k not in params]
    if missing:
        return [Problem(where, f"params_json of a {section} row lacks {', '.join(missing)}")]
    optional = [k for k in OPTIONAL_NUMBERS.get(section, ()) if k in params]
    for k in [*need, *optional]:
        if k == "dtype":
            continue
        v = params[k]
        if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
            return [Problem(where, f"params_json.{k}: expected a number > 0, found {v!r}")]
    if section == "launch" and name not in ("eager_tiny_kernel", "graph_tiny_kernel"):
        return [
            Problem(where, f"unknown launch row {name!r} (eager_tiny_kernel, graph_tiny_kernel)")
        ]
    return []


def read_measurements(path: str | Path) -> list[Measurement]:
    """Every row of the CSV at ``path``; :class:`SpecError` naming the first bad lines."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([Problem("measurements", f"cannot read {p}: {err.strerror}")]) from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise SpecError([Problem("line 1", "empty file: expected a header")], source=str(p))
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise SpecError(
            [
                Problem(
                    "line 1",
                    f"missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})",
                )
            ],
            source=str(p),
        )
    col = {c: header.index(c) for c in COLUMNS}
    src_col = header.index(SOURCE_COLUMN) if SOURCE_COLUMN in header else None
    rows: list[Measurement] = []
    problems: list[Problem] = []
    for i, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        where = f"line {i}"
        if len(fields) < len(header):
            problems.append(Problem(where, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        section, name = fields[col["section"]].strip(), fields[col["name"]].strip()
        if section not in REQUIRED:
            problems.append(
                Problem(where, f"unknown section {section!r} (known: {', '.join(SECTIONS)})")
            )
            continue
        try:
            t = float(fields[col["time_s"]])
        except ValueError:
            problems.append(
                Problem(where, f"time_s: expected a number, found {fields[col['time_s']]!r}")
            )
            continue
        if not (math.isfinite(t) and t > 0):
            problems.append(Problem(where, f"time_s: expected a number > 0, found {t}"))
            continue
        raw = fields[col["params_json"]]
        try:
            params = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as err:
            problems.append(Problem(where, f"params_json is not valid JSON ({err.msg})"))
            continue
        if not isinstance(params, dict):
            problems.append(Problem(where, "params_json: expected a JSON object"))
            continue
        bad = _check_row(i, section, name, params)
        if bad:
            problems += bad
            continue
        source = ""
        if src_col is not None:
            source = fields[src_col].strip()
            if not source:
                problems.append(Problem(where, "source: empty (a published row names its source)"))
                continue
        rows.append(
            Measurement(line=i, section=section, name=name, time_s=t, params=params, source=source)
        )
        if len(problems) >= 20:
            break
    if problems:
        raise SpecError(problems, source=str(p))
    if not rows:
        raise SpecError([Problem("line 2", "no measurement rows")], source=str(p))
    return rows
