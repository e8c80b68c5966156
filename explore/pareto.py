"""Pareto fronts and hypervolume over two or three objectives.

Values are an ``(n, m)`` array and one sense per column (``min`` or ``max``). A point is
on the front when no other point is at least as good in every objective and strictly
better in one; equal points are all on the front.

>>> import numpy as np
>>> pareto_front(np.array([[1, 4], [2, 2], [3, 3], [4, 1]]), ["min", "min"]).tolist()
[0, 1, 3]
>>> hypervolume(np.array([[1, 4], [2, 2], [4, 1]]), ["min", "min"], reference=[5, 5])
11.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hw_models.errors import Problem, SpecError


def _as_min(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(senses):
        raise SpecError([Problem("objectives", f"expected {len(senses)} columns, found {v.shape}")])
    signs = np.array([1.0 if s == "min" else -1.0 for s in senses])
    return v * signs


def pareto_front(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of ``values``."""
    v = _as_min(values, senses)
    n = len(v)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        # rows that i dominates: >= everywhere and > somewhere
        dominated = np.all(v[i] <= v, axis=1) & np.any(v[i] < v, axis=1)
        keep &= ~dominated
    return np.flatnonzero(keep)


def default_reference(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """The worst value of each objective, pushed 10 % of its range (or of its size) further."""
    v = _as_min(values, senses)
    worst = v.max(axis=0)
    span = v.max(axis=0) - v.min(axis=0)
    pad = np.where(span > 0, 0.1 * span, np.maximum(0.1 * np.abs(worst), 1e-12))
    ref = worst + pad
    signs = np.array([1.0 if s == "min" else -1.0 for s in senses])
    return ref * signs


def hypervolume(
    values: np.ndarray, senses: Sequence[str], *, reference: Sequence[float] | None = None
) -> float:
    """The volume dominated by ``values`` up to ``reference`` (default
    :func:`default_reference`), exact for two and three objectives."""
    v = _as_min(values, senses)
    m = v.shape[1]
    if m not in (2, 3):
        raise SpecError([Problem("objectives", f"hypervolume needs 2 or 3 objectives, found {m}")])
    if len(v) == 0:
        return 0.0
    ref = (
        _as_min(np.asarray([reference], dtype=float), senses)[0]
        if reference is not None
        else _as_min(default_reference(values, senses)[None, :], senses)[0]
    )
    v = v[np.all(v < ref, axis=1)]
    if len(v) == 0:
        return 0.0
    v = v[pareto_front(v, ["min"] * m)]
    if m == 2:
        return _hv2(v, ref)
    # 3-D: slabs between consecutive third coordinates, each a 2-D hypervolume
    order = np.argsort(v[:, 2], kind="stable")
    v = v[order]
    total = 0.0
    for i in range(len(v)):
        z_next = v[i + 1, 2] if i + 1 < len(v) else ref[2]
        if z_next > v[i, 2]:
            total += _hv2(v[: i + 1, :2], ref[:2]) * (z_next - v[i, 2])
    return float(total)


def _hv2(v: np.ndarray, ref: np.ndarray) -> float:
    pts = v[np.argsort(v[:, 0], kind="stable")]
    total, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            total += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(total)


def front_ids(
    rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]]
) -> list[str]:
    """Ids of the stored rows (``Store.rows()``) on the front of ``objectives`` ((name,
    sense) pairs); rows not ``ok`` or missing an objective are left out."""
    ok = [
        r
        for r in rows
        if r["status"] == "ok"
        and all(isinstance(r["objectives"].get(n), int | float) for n, _ in objectives)
    ]
    if not ok:
        return []
    values = np.array([[float(r["objectives"][n]) for n, _ in objectives] for r in ok])
    return [str(ok[i]["id"]) for i in pareto_front(values, [s for _, s in objectives])]
