"""Physics every result must obey, computed independently of the engine's bookkeeping.

* :func:`roofline_lower_bound`: no schedule can beat the busiest resource's
  total work (FLOPs at peak, logical bytes at achievable bandwidth), with
  device resources totalled per pipeline stage.
* :func:`check_conservation`: bytes never vanish between the graph, the
  per-op traffic, the tier and link totals and the DMA transfers.
* :func:`check_capacity`: no tier's occupancy exceeds its capacity or drops
  below zero.

The check functions return a list of problems (empty when all is well), so a
test can show every violation at once.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from hw_models import System
from memsim import cost
from memsim.policies.base import Placement, graph_tp
from memsim.result import SimResult
from workloads.graph import Graph

_MATRIX = ("gemm", "attention")


def roofline_lower_bound(
    system: System, graph: Graph, placement: Placement, *, execution: str = "kernel"
) -> float:
    """Seconds: the slowest of work / capacity over every compute unit, tier and link.

    Compute: matrix FLOPs at the dtype's peak plus other FLOPs at the vector
    rate. Tiers: the logical bytes the graph's ops move in the tier each tensor
    is accessed in, plus streamed tensors' copies, at achievable bandwidth (at peak
    for tiers at request fidelity; host tiers serve all ``tp`` devices). Links: bytes
    between the devices and host tiers. In ``dataflow`` execution transient tensors
    may stay on chip, so only persistent and streamed tensors count there.

    Pipeline stages (``Op.stage``) run on different devices: compute units, device
    tiers and links with a device end are totalled per stage (a streamed tensor's
    copy on the stage of the first op that uses it); host tiers and links between
    host tiers are shared, so their totals cover every stage.
    """
    tp = graph_tp(graph)
    compute_s: dict[tuple[int, str], float] = defaultdict(float)
    tier_s: dict[tuple[int, str], float] = defaultdict(float)
    link_b: dict[tuple[int, str], float] = defaultdict(float)
    first_stage: dict[str, int] = {}
    for op in graph.ops:
        stage = op.stage
        unit_name = system.main_compute(op.dtype)
        unit = system.compute[unit_name]
        if op.kind in _MATRIX:
            compute_s[stage, unit_name] += op.flops / cost.unit_peak(unit, op.dtype)
        else:
            compute_s[stage, unit_name] += op.flops / cost.vector_rate(unit, op.dtype)
        for accesses, write in ((op.reads, False), (op.writes, True)):
            for acc in accesses:
                first_stage.setdefault(acc.tensor, stage)
                tensor = graph.tensors[acc.tensor]
                if execution == "dataflow" and not (
                    tensor.persistent or acc.tensor in placement.staged
                ):
                    continue
                tier = placement.tier_of(acc.tensor)
                _add_tier(system, tier, acc.bytes, write, tp, stage, tier_s)
                for name in _links_to(system, tier):
                    link_b[_link_key(system, name, stage)] += acc.bytes
    for name, staging in placement.staged.items():
        stage = first_stage.get(name, graph.tensors[name].stage)
        home = placement.home[name]
        size = graph.tensors[name].bytes
        _add_tier(system, home, size, False, tp, stage, tier_s)
        _add_tier(system, staging, size, True, tp, stage, tier_s)
        for link in system.path(home, staging):
            link_b[_link_key(system, link, stage)] += size
    bounds = [*compute_s.values(), *tier_s.values()]
    for (_, name), nbytes in link_b.items():
        lk = system.links[name]
        # a duplex link carries reads and writes in separate directions: at least half
        # of the bytes cross the busier one
        halves = 2.0 if lk.duplex else 1.0
        mult = tp if _link_shared(system, name) else 1
        bounds.append(nbytes * mult / halves / lk.effective_bandwidth_bytes_per_s)
    return max(bounds, default=0.0)


def _link_shared(system: System, name: str) -> bool:
    """A link between two host tiers serves every device (and every pipeline stage)."""
    a, b = system.links[name].between
    return system.tiers[a].scope == "host" and system.tiers[b].scope == "host"


def _link_key(system: System, name: str, stage: int) -> tuple[int, str]:
    return (-1 if _link_shared(system, name) else stage, name)


def _add_tier(
    system: System,
    tier: str,
    nbytes: float,
    write: bool,
    tp: int,
    stage: int,
    acc: dict[tuple[int, str], float],
) -> None:
    spec = system.tiers[tier]
    if spec.fidelity == "request":
        # the DRAM controller, not the spec's fraction, sets this tier's bandwidth: bound it
        # by the physical peak, which no controller can beat
        bw = spec.write_bandwidth if write else spec.read_bandwidth_bytes_per_s
    elif not write and spec.flash_geometry is not None:
        # a placement may read a tensor in larger requests than the tier's
        # (Placement.read_request_bytes): bound by what any request size can reach
        bw = spec.read_bandwidth_bytes_per_s * spec.achievable_bandwidth_fraction
    else:
        bw = (
            spec.effective_write_bandwidth_bytes_per_s
            if write
            else spec.effective_read_bandwidth_bytes_per_s
        )
    host = spec.scope == "host"
    acc[-1 if host else stage, tier] += nbytes * (tp if host else 1) / bw


def _links_to(system: System, tier: str) -> list[str]:
    if system.tiers[tier].scope == "device":
        return []
    for cand in system.tiers_by_speed():
        if system.tiers[cand].scope == "device":
            try:
                return system.path(cand, tier)
            except ValueError:
                continue
    return []


def check_conservation(result: SimResult, graph: Graph, *, rel: float = 1e-9) -> list[str]:
    """Problems with byte conservation (empty list: conserved).

    1. Every op moves at least the bytes the graph says it reads and writes
       (tiling re-reads and access granularity only add).
    2. Each tier's and link's totals equal the sum of its traffic rows.
    3. Every DMA transfer leaves its source with the bytes its destination receives.
    """
    problems: list[str] = []
    tr = result.traffic_frame()
    tiers_only = tr[tr["resource"].str.startswith("tier:") & (tr["op"] >= 0)]
    per_op = tiers_only.groupby("op")[["bytes_read", "bytes_written"]].sum()
    got_r = per_op["bytes_read"].reindex(range(len(graph.ops)), fill_value=0.0).to_numpy()
    got_w = per_op["bytes_written"].reindex(range(len(graph.ops)), fill_value=0.0).to_numpy()
    want_r = np.array([op.bytes_read for op in graph.ops])
    want_w = np.array([op.bytes_written for op in graph.ops])
    for name, got, want in (("read", got_r, want_r), ("written", got_w, want_w)):
        short = np.flatnonzero(got < want * (1 - rel) - 1e-6)
        for i in short[:5]:
            problems.append(
                f"op {i} ({graph.ops[i].name}): {got[i]:.6g} B {name} < graph's {want[i]:.6g}"
            )
    grouped = tr.groupby("resource")[["bytes_read", "bytes_written"]].sum()
    sums: dict[str, tuple[float, float]] = {
        str(k): (float(a), float(b))
        for k, a, b in zip(
            grouped.index, grouped["bytes_read"], grouped["bytes_written"], strict=True
        )
    }
    for t in result.tiers:
        r, w = sums.get(f"tier:{t.tier}", (0.0, 0.0))
        ok = np.isclose(r, t.bytes_read, rtol=rel) and np.isclose(w, t.bytes_written, rtol=rel)
        if not ok:
            problems.append(
                f"tier {t.tier}: totals {t.bytes_read:.6g}/{t.bytes_written:.6g} "
                f"!= rows {r:.6g}/{w:.6g}"
            )
    for lk in result.links:
        b = sum(sums.get(f"link:{lk.link}", (0.0, 0.0)))
        if not np.isclose(b, lk.bytes, rtol=rel):
            problems.append(f"link {lk.link}: total {lk.bytes:.6g} != rows {b:.6g}")
    dma = tr[tr["op"] < 0]
    if len(dma):
        out = dma["bytes_read"].sum()
        into = dma[dma["resource"].str.startswith("tier:")]["bytes_written"].sum()
        if not np.isclose(out, into, rtol=rel):
            problems.append(f"DMA: {out:.6g} B read from sources but {into:.6g} B written")
    return problems


def check_capacity(result: SimResult) -> list[str]:
    """Problems with occupancy: above a tier's capacity (all its modelled instances) or negative."""
    problems: list[str] = []
    for tier, (times, level) in result.occupancy.items():
        spec = result.system.tiers[tier]
        cap = spec.capacity_bytes
        peak = next(t.peak_bytes for t in result.tiers if t.tier == tier)
        if peak > cap * (1 + 1e-9):
            problems.append(f"tier {tier}: peak {peak:.6g} B exceeds capacity {cap:.6g} B")
        if np.any(level < -1e-6 * max(cap, 1.0)):
            problems.append(
                f"tier {tier}: negative occupancy at t = {times[np.argmin(level)]:.6g} s"
            )
    return problems
