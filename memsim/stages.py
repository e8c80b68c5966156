"""Per-device views of a simulated pipeline: the bytes each device holds at its peak.

:attr:`memsim.SimResult.tiers` reports, per tier, the largest peak over devices.
A pipeline schedule is judged by each device's own peak of activation memory
(Qi et al. 2024 compare schedules by it), so :func:`stage_peak_bytes` replays the
simulated op times: a tensor of the chosen kinds lives on the device of the op
that first touches it, from that op's start to the end of the last op that
touches it (the engine's own occupancy rule for transient tensors).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from memsim.result import SimResult
from workloads.graph import Graph


def stage_peak_bytes(
    result: SimResult, graph: Graph, *, kinds: Iterable[str] = ("activation",)
) -> dict[int, float]:
    """Per pipeline stage (device), the peak bytes of live tensors of ``kinds``.

    ``result`` must come from simulating ``graph`` (one row per op, in graph order).
    """
    start = np.asarray(result.op_column("start_s"), dtype=float)
    end = np.asarray(result.op_column("end_s"), dtype=float)
    stage = np.asarray(result.op_column("stage"), dtype=np.int64)
    if len(start) != len(graph.ops):
        raise ValueError(f"result has {len(start)} ops, graph {len(graph.ops)}")
    wanted = set(kinds)
    first: dict[str, tuple[float, int]] = {}
    last: dict[str, float] = {}
    for i, op in enumerate(graph.ops):
        t0, t1 = float(start[i]), float(end[i])
        for a in (*op.reads, *op.writes):
            name = a.tensor
            if graph.tensors[name].kind not in wanted:
                continue
            if name not in first or t0 < first[name][0]:
                first[name] = (t0, int(stage[i]))
            last[name] = max(last.get(name, t1), t1)
    events: dict[int, list[tuple[float, float]]] = {}
    for name, (t0, s) in first.items():
        nbytes = graph.tensors[name].bytes
        events.setdefault(s, []).extend([(t0, nbytes), (last[name], -nbytes)])
    peaks: dict[int, float] = {}
    for s, ev in sorted(events.items()):
        ev.sort(key=lambda e: (e[0], e[1] > 0))  # frees before allocations at one instant
        level = peak = 0.0
        for _, delta in ev:
            level += delta
            peak = max(peak, level)
        peaks[s] = peak
    return peaks
