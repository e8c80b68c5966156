"""Memory-reuse MIP (as MEMO does for activations): static offsets that minimise the peak.

Given buffers with known lifetimes (from a graph's op order), choose a byte offset
for each so that buffers alive at the same time never overlap, minimising the
highest address used (the arena a runtime must reserve):

    minimise P,   P >= o_i + s_i,
    o_i + s_i <= o_j + M (1 - z_ij),   o_j + s_j <= o_i + M z_ij   (i, j alive together)

with ``M`` the peak of the best-fit caching allocator on the same lifetimes, whose
layout is also the warm start, so the plan never exceeds it. Two reference points:
the **lower bound** (the most bytes alive at one moment, which no layout beats) and
the **best-fit allocator** (at each op, free what died, then put each new buffer,
largest first, in the smallest free gap that holds it, else on top). The plan
states how much of the best-fit allocator's fragmentation (its peak above the lower
bound) the MIP removes.

Lifetimes come from :func:`buffers_from_graph`: each *value* of a transient tensor
(a write and the reads that follow it before the next write) is one buffer, alive
from the op that writes it to the op that last reads it, inclusive.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from explore.mip._solve import solve
from hw_models.errors import Problem, SpecError
from workloads.graph import Graph


@dataclass(frozen=True, slots=True, kw_only=True)
class Buffer:
    """``size`` bytes alive from op ``start`` to op ``end``, both included."""

    name: str
    size: float
    start: int
    end: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPlan:
    """Offsets per buffer, the peak, and the two references it is measured against."""

    offsets: dict[str, float]
    peak_bytes: float
    lower_bound_bytes: float  # the most bytes alive at once
    best_fit_bytes: float  # the best-fit caching allocator's peak
    gap: float | None
    status: str
    solve_s: float
    n_buffers: int

    @property
    def fragmentation_removed(self) -> float:
        """Share of the best-fit allocator's waste (peak above the bound) the plan removes."""
        waste = self.best_fit_bytes - self.lower_bound_bytes
        return 1.0 if waste <= 0 else (self.best_fit_bytes - self.peak_bytes) / waste

    def to_dict(self) -> dict[str, Any]:
        """Figures and offsets as plain values (the CLI's JSON)."""
        return {
            "peak_bytes": self.peak_bytes,
            "lower_bound_bytes": self.lower_bound_bytes,
            "best_fit_bytes": self.best_fit_bytes,
            "fragmentation_removed": self.fragmentation_removed,
            "gap": self.gap,
            "status": self.status,
            "solve_s": self.solve_s,
            "n_buffers": self.n_buffers,
            "offsets": dict(self.offsets),
        }


def _check(buffers: Sequence[Buffer]) -> None:
    problems = []
    names = set()
    for k, b in enumerate(buffers):
        if b.size < 0 or b.start < 0 or b.end < b.start:
            problems.append(
                Problem(f"buffers[{k}]", f"expected size >= 0 and 0 <= start <= end, found {b}")
            )
        if b.name in names:
            problems.append(Problem(f"buffers[{k}].name", f"duplicate name {b.name!r}"))
        names.add(b.name)
    if problems:
        raise SpecError(problems)


def buffers_from_graph(graph: Graph, *, kinds: Iterable[str] | None = None) -> list[Buffer]:
    """One buffer per value of each transient tensor (write to last read), in op order.

    ``kinds`` selects tensor kinds (default: every non-persistent kind).
    """
    want = set(kinds) if kinds is not None else None
    out: list[Buffer] = []
    live: dict[str, list[int]] = {}  # tensor -> [start, end] of its current value
    counter: dict[str, int] = {}

    def close(name: str) -> None:
        span = live.pop(name, None)
        if span is not None:
            k = counter.get(name, 0)
            counter[name] = k + 1
            out.append(
                Buffer(
                    name=f"{name}#{k}",
                    size=graph.tensors[name].bytes,
                    start=span[0],
                    end=span[1],
                )
            )

    for i, op in enumerate(graph.ops):
        for acc in op.reads:
            t = graph.tensors[acc.tensor]
            if t.persistent or (want is not None and t.kind not in want):
                continue
            live.setdefault(acc.tensor, [i, i])[1] = i
        for acc in op.writes:
            t = graph.tensors[acc.tensor]
            if t.persistent or (want is not None and t.kind not in want):
                continue
            if acc.tensor in live and live[acc.tensor][1] < i:
                close(acc.tensor)
            live.setdefault(acc.tensor, [i, i])[1] = i
    for name in list(live):
        close(name)
    return out


def max_live_bytes(buffers: Sequence[Buffer]) -> float:
    """The most bytes alive at one op: a lower bound on any layout's peak."""
    if not buffers:
        return 0.0
    horizon = max(b.end for b in buffers) + 2
    delta = np.zeros(horizon)
    for b in buffers:
        delta[b.start] += b.size
        delta[b.end + 1] -= b.size
    return float(np.cumsum(delta).max())


def best_fit(buffers: Sequence[Buffer]) -> tuple[dict[str, float], float]:
    """Offsets and peak of a best-fit caching allocator (no moving, no splitting).

    At each op, buffers whose life ended are freed (adjacent gaps merge); then new
    buffers, largest first, go into the smallest free gap that holds them, at its
    low end, or on top of the highest address in use.
    """
    _check(buffers)
    by_start: dict[int, list[Buffer]] = {}
    for b in buffers:
        by_start.setdefault(b.start, []).append(b)
    used: dict[str, tuple[float, float, int]] = {}  # name -> (offset, size, end)
    offsets: dict[str, float] = {}
    peak = 0.0
    for t in sorted(by_start):
        for name in [n for n, (_o, _s, e) in used.items() if e < t]:
            del used[name]
        for b in sorted(by_start[t], key=lambda b: (-b.size, b.name)):
            blocks = sorted((o, o + s) for o, s, _e in used.values() if s > 0)
            gaps: list[tuple[float, float]] = []
            cursor = 0.0
            for lo, hi in blocks:
                if lo > cursor:
                    gaps.append((cursor, lo - cursor))
                cursor = max(cursor, hi)
            fits = [g for g in gaps if g[1] >= b.size]
            off = min(fits, key=lambda g: (g[1], g[0]))[0] if fits else cursor
            used[b.name] = (off, b.size, b.end)
            offsets[b.name] = off
            peak = max(peak, off + b.size)
    return offsets, peak


def _overlapping(buffers: Sequence[Buffer]) -> list[tuple[int, int]]:
    order = sorted(range(len(buffers)), key=lambda i: buffers[i].start)
    pairs = []
    active: list[int] = []
    for i in order:
        b = buffers[i]
        active = [j for j in active if buffers[j].end >= b.start]
        pairs += [(j, i) for j in active if buffers[j].size > 0 and b.size > 0]
        active.append(i)
    return pairs


def plan_memory(
    buffers: Sequence[Buffer],
    *,
    time_limit_s: float = 10.0,
    gap: float = 0.0,
    solver: str = "auto",
) -> MemoryPlan:
    """Static offsets minimising the peak; never above the best-fit allocator's peak."""
    _check(buffers)
    t0 = time.perf_counter()
    lb = max_live_bytes(buffers)
    bf_offsets, bf_peak = best_fit(buffers)
    if not buffers or bf_peak <= lb * (1 + 1e-12):
        return MemoryPlan(
            offsets=bf_offsets,
            peak_bytes=bf_peak,
            lower_bound_bytes=lb,
            best_fit_bytes=bf_peak,
            gap=0.0,
            status="optimal",
            solve_s=time.perf_counter() - t0,
            n_buffers=len(buffers),
        )
    scale = max(b.size for b in buffers)
    sizes = [b.size / scale for b in buffers]
    big_m = bf_peak / scale
    prob = pulp.LpProblem("memory_reuse", pulp.LpMinimize)
    peak = pulp.LpVariable("peak", lowBound=lb / scale, upBound=big_m)
    off = [pulp.LpVariable(f"o_{i}", lowBound=0, upBound=big_m) for i in range(len(buffers))]
    prob += peak
    for i, s in enumerate(sizes):
        prob += off[i] + s <= peak
    z: dict[tuple[int, int], pulp.LpVariable] = {}
    for i, j in _overlapping(buffers):
        v = pulp.LpVariable(f"z_{i}_{j}", cat=pulp.LpBinary)
        z[(i, j)] = v
        prob += off[i] + sizes[i] <= off[j] + big_m * (1 - v)
        prob += off[j] + sizes[j] <= off[i] + big_m * v

    def warm() -> dict[pulp.LpVariable, float]:
        """The best-fit layout's order of every pair (z = 1: i below j)."""
        return {
            v: float(bf_offsets[buffers[i].name] < bf_offsets[buffers[j].name])
            for (i, j), v in z.items()
        }

    out = solve(prob, solver=solver, time_limit_s=time_limit_s, gap=gap, rounding=warm)
    if out.objective is None or out.objective * scale >= bf_peak:
        offsets, value = bf_offsets, bf_peak
    else:
        offsets = {b.name: float(off[i].varValue or 0.0) * scale for i, b in enumerate(buffers)}
        value = float(out.objective) * scale
    gap_v = max(0.0, (value - max(lb, (out.bound or 0.0) * scale)) / value) if value else 0.0
    status = "optimal" if gap_v <= 1e-6 else ("gap_reached" if gap_v <= gap else "time_limit")
    return MemoryPlan(
        offsets=offsets,
        peak_bytes=value,
        lower_bound_bytes=lb,
        best_fit_bytes=bf_peak,
        gap=gap_v,
        status=status,
        solve_s=time.perf_counter() - t0,
        n_buffers=len(buffers),
    )


def check_layout(buffers: Sequence[Buffer], offsets: dict[str, float]) -> float:
    """The peak of ``offsets``; :class:`ValueError` if two live buffers overlap."""
    for i, j in _overlapping(buffers):
        a, b = buffers[i], buffers[j]
        oa, ob = offsets[a.name], offsets[b.name]
        if oa < ob + b.size - 1e-6 * max(a.size, b.size) and ob < oa + a.size - 1e-6 * max(
            a.size, b.size
        ):
            raise ValueError(f"{a.name} and {b.name} are alive together and overlap")
    return max((offsets[b.name] + b.size for b in buffers), default=0.0)
