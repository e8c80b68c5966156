"""Shared output helpers for subcommands: JSON and aligned tables."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (non-finite floats become null)."""
    json.dump(_clean(obj), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def print_table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> None:
    """Print rows as a left-aligned text table."""
    table = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for j, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def add_format_option(parser: Any, *, choices: Sequence[str] = ("table", "json")) -> None:
    """Add ``--format`` with ``table`` as default."""
    parser.add_argument("--format", choices=list(choices), default=choices[0], help="output format")
