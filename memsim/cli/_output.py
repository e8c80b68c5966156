"""Shared output helpers for subcommands: JSON and aligned tables."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
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


@contextlib.contextmanager
def stage_progress(total: int, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A progress line on stderr for work in ``total`` named stages.

    Yields ``stage(description)``, to call as each stage starts: the line shows the
    stage, how many are done and the time spent. It shows only when stderr is a
    terminal (tqdm's own check), never with ``quiet``, and is cleared at the end.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        disable=True if quiet else None,
        leave=False,
        file=sys.stderr,
        bar_format="{desc}: stage {n_fmt}/{total_fmt} [{elapsed}]",
    )
    started = [False]

    def stage(description: str) -> None:
        if started[0]:
            bar.update(1)
        started[0] = True
        bar.set_description_str(description)

    try:
        yield stage
    finally:
        bar.close()


@contextlib.contextmanager
def work_progress(unit: str, *, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A second progress line on stderr, for the items of one long stage.

    Yields ``update(done, total)`` (the ``progress`` hook of :func:`memsim.simulate`):
    the line shows ``done/total`` ``unit`` with rate and ETA. Like
    :func:`stage_progress` it shows only on a terminal, never with ``quiet``, and
    is cleared at the end.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=0,
        disable=True if quiet else None,
        leave=False,
        file=sys.stderr,
        unit=unit,
        mininterval=0.2,
    )

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
