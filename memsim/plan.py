"""From (system, graph, placement, execution model) to resource demands.

The :class:`Plan` is what both fidelities execute. It is built with the pure
cost functions of :mod:`memsim.cost`, vectorised over the ops:

* **Resources**: each compute unit, each tier, each link direction. A demand is
  the seconds of a resource's time an op needs (bytes / achievable bandwidth,
  FLOPs / attainable FLOP/s); a resource has capacity 1 (one second per second).
* **Groups**: the units of execution. ``kernel``: one op per group; ``dataflow``:
  a fused group (``Op.fuse_group``, else a segment = one layer of one step) runs
  as a pipeline, so its demand on each resource is the sum of its ops', and its
  intermediates stay in on-chip SRAM when they fit.
* **Solo duration** of a group: ``max(overhead, latency + max_r demand_r)``.
* **DMA jobs**: for streamed (staged) tensors, one fetch per segment that uses
  them (home tier -> links -> staging tier) and one write-back per segment that
  produces data used later; a job belongs to its segment's pipeline stage, whose
  own DMA engines copy it.

Host-scope tiers (and links between two host tiers) are shared by the ``tp``
identical devices of an SPMD graph; their demand is multiplied by ``tp``
(fair sharing among ``tp`` equal flows gives each ``1/tp`` of the bandwidth).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hw_models import Link, System
from hw_models.errors import Problem, SpecError
from memsim import cost
from memsim.compiled import CompiledGraph, FloatArray, IntArray
from memsim.dataflow import OnChip, onchip_residency
from memsim.policies.base import Placement

if TYPE_CHECKING:  # the DRAM controller (numba) loads only when a tier needs it
    from memsim.dram import ControllerConfig
    from memsim.request_fidelity import TierCalibration

EXECUTIONS: tuple[str, ...] = ("kernel", "dataflow")
MATRIX_KINDS = ("gemm", "attention")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """A schedulable resource: ``label`` is what results report (``tier:hbm``)."""

    name: str
    label: str
    kind: str  # "compute" | "tier" | "link"


@dataclass(frozen=True, slots=True, kw_only=True)
class DMAJob:
    """Copies for one segment: fetch home -> staging before it, write back after it."""

    segment: int
    stage: int  # pipeline stage (device) whose DMA engines copy this segment's data
    first_group: int
    last_group: int
    fetch: tuple[tuple[int, float], ...]  # (route index, bytes)
    fetch_tensors: tuple[int, ...]
    produce_tensors: tuple[int, ...]
    writeback: tuple[tuple[int, float], ...]
    writeback_tensors: tuple[int, ...]
    waits_for_writeback: tuple[int, ...]  # indices of earlier jobs
    stage_tier: int
    fetch_demand: FloatArray  # seconds per resource
    fetch_latency: float
    writeback_demand: FloatArray
    writeback_latency: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A DMA route from tier ``src`` to tier ``dst`` over the link directions in ``links``."""

    src: int
    dst: int
    links: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything the engines need, as arrays over ops, groups and resources."""

    system: System
    cg: CompiledGraph
    placement: Placement
    execution: str
    tp: int
    resources: tuple[Resource, ...]
    tier_names: tuple[str, ...]
    tier_res: IntArray  # resource index per tier
    link_names: tuple[str, ...]
    link_res: tuple[tuple[int, ...], ...]  # resource indices per link (1 or 2 directions)
    tier_links: tuple[tuple[int, ...], ...]  # link indices between compute and each tier
    op_unit: IntArray  # compute resource index per op
    op_demand: FloatArray  # (R, n_ops) seconds of each resource per op
    op_latency: FloatArray
    op_overhead: FloatArray
    acc_tier: IntArray  # tier index each access hits (after dataflow redirection)
    acc_moved: FloatArray  # bytes moved per access (tiling, granularity)
    tensor_tier: IntArray  # tier ops access each tensor in (staging, SRAM for kept intermediates)
    tensor_home: IntArray  # tier holding each tensor's home copy
    layout: Layout
    res_bytes_read: FloatArray  # (R, n_ops) bytes read through each tier/link resource
    res_bytes_written: FloatArray
    group_start: IntArray  # first op of each group
    op_group: IntArray
    group_demand: FloatArray  # (R, G)
    group_duration: FloatArray  # solo duration
    group_latency: FloatArray
    group_overhead: FloatArray
    group_lane: IntArray
    # groups each group waits for; sequential graphs: only where the chain changes lane
    group_deps: tuple[tuple[int, ...], ...]
    group_sequential: bool  # the groups form one chain in index order
    jobs: tuple[DMAJob, ...]
    routes: tuple[Route, ...]
    # request-fidelity tiers: what the DRAM controller measured (memsim/request_fidelity.py)
    tier_calibration: Mapping[str, TierCalibration] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        """Number of groups (units of execution)."""
        return len(self.group_start)

    def resource_labels(self) -> list[str]:
        """``label`` of every resource, by index."""
        return [r.label for r in self.resources]


def _on_chip_buffer(system: System, unit_name: str) -> float:
    srams = [t for t in system.tiers.values() if t.kind == "sram" and t.scope == "device"]
    if srams:
        return max(t.capacity_bytes for t in srams)
    unit = system.compute[unit_name]
    if unit.local_sram_bytes:
        return float(unit.local_sram_bytes) * unit.count
    return math.inf


def _link_direction(system: System, link: str, src: str) -> int:
    return 0 if system.links[link].between[0] == src else 1


def _walk(system: System, src: str, dst: str) -> list[tuple[str, int]]:
    """(link, direction) pairs along the path carrying data from ``src`` to ``dst``."""
    out: list[tuple[str, int]] = []
    node = src
    for name in system.path(src, dst):
        a, b = system.links[name].between
        out.append((name, _link_direction(system, name, node)))
        node = b if node == a else a
    return out


def _anchor(system: System, tier: str) -> str:
    """The device tier compute reaches ``tier`` from (itself for device tiers)."""
    if system.tiers[tier].scope == "device":
        return tier
    best: tuple[int, int, str] | None = None
    for rank, cand in enumerate(system.tiers_by_speed()):
        if system.tiers[cand].scope != "device":
            continue
        try:
            hops = len(system.path(cand, tier))
        except ValueError:
            continue
        if best is None or (hops, rank) < best[:2]:
            best = (hops, rank, cand)
    if best is None:
        raise SpecError(
            [Problem(f"tiers.{tier}", f"no link path from any device tier to host tier {tier!r}")]
        )
    return best[2]


def build_plan(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    execution: str,
    *,
    dram_config: ControllerConfig | None = None,
) -> Plan:
    """The :class:`Plan` of ``cg`` on ``system`` under ``placement`` and ``execution``.

    Tiers with ``fidelity: request`` take their bandwidth and latency from the DRAM
    controller configured by ``dram_config`` (see :mod:`memsim.request_fidelity`).
    """
    if execution not in EXECUTIONS:
        raise SpecError(
            [
                Problem(
                    "execution", f"unknown execution model {execution!r} (known: kernel, dataflow)"
                )
            ]
        )
    tp = cg.tp
    if tp > system.devices:
        raise SpecError(
            [
                Problem(
                    "tp",
                    f"the graph is sharded over {tp} devices, {system.name} has {system.devices}",
                )
            ]
        )
    # ---- resources
    resources: list[Resource] = []
    unit_names = list(system.compute)
    unit_res = {}
    for u in unit_names:
        unit_res[u] = len(resources)
        resources.append(Resource(name=f"compute:{u}", label=f"compute:{u}", kind="compute"))
    tier_names = tuple(system.tiers)
    tier_res = []
    for t in tier_names:
        tier_res.append(len(resources))
        resources.append(Resource(name=f"tier:{t}", label=f"tier:{t}", kind="tier"))
    link_names = tuple(system.links)
    link_res: list[tuple[int, ...]] = []
    for name, lk in system.links.items():
        ids: tuple[int, ...]
        if lk.duplex:
            ids = (len(resources), len(resources) + 1)
            resources.append(Resource(name=f"link:{name}>", label=f"link:{name}", kind="link"))
            resources.append(Resource(name=f"link:{name}<", label=f"link:{name}", kind="link"))
        else:
            ids = (len(resources),)
            resources.append(Resource(name=f"link:{name}", label=f"link:{name}", kind="link"))
        link_res.append(ids)
    n_res = len(resources)

    def link_dir_res(name: str, direction: int) -> int:
        ids = link_res[link_names.index(name)]
        return ids[direction] if len(ids) == 2 else ids[0]

    def link_shared(name: str) -> float:
        a, b = system.links[name].between
        host = system.tiers[a].scope == "host" and system.tiers[b].scope == "host"
        return float(tp) if host else 1.0

    # ---- per tier: how an access from compute reaches it
    n_t = len(tier_names)
    read_route: list[list[tuple[int, float]]] = []
    write_route: list[list[tuple[int, float]]] = []
    route_lat = np.zeros(n_t)
    gran = np.zeros(n_t)
    tier_links: list[tuple[int, ...]] = []
    request_tiers = [ti for ti, t in enumerate(tier_names) if system.tiers[t].fidelity == "request"]
    for ti, t in enumerate(tier_names):
        spec = system.tiers[t]
        mult = float(tp) if spec.scope == "host" else 1.0
        r_hops = [(tier_res[ti], mult / spec.effective_read_bandwidth_bytes_per_s)]
        w_hops = [(tier_res[ti], mult / spec.effective_write_bandwidth_bytes_per_s)]
        lat = spec.latency_s
        if ti in request_tiers:  # the tier's own time and latency come per access class
            r_hops = [(tier_res[ti], 0.0)]
            w_hops = [(tier_res[ti], 0.0)]
            lat = 0.0
        anchor = _anchor(system, t)
        on_route = []
        for name, direction in _walk(system, anchor, t):
            on_route.append(link_names.index(name))
            lk = system.links[name]
            sec = link_shared(name) / lk.effective_bandwidth_bytes_per_s
            w_hops.append((link_dir_res(name, direction), sec))
            r_hops.append((link_dir_res(name, 1 - direction), sec))
            lat += lk.latency_s
        read_route.append(r_hops)
        tier_links.append(tuple(on_route))
        write_route.append(w_hops)
        route_lat[ti] = lat
        gran[ti] = spec.access_granularity_bytes

    # ---- compute time per op
    n = cg.n_ops
    kind_is_matrix = np.array([k in MATRIX_KINDS for k in cg.kind_names], dtype=bool)
    is_matrix = kind_is_matrix[cg.kind] if n else np.zeros(0, dtype=bool)
    op_unit = np.zeros(n, dtype=np.int64)
    compute_s = np.zeros(n)
    overhead = np.zeros(n)
    tiling = np.ones(n)
    for di, dtype in enumerate(cg.dtype_names):
        sel = cg.dtype == di
        try:
            main = system.main_compute(dtype)
        except KeyError:
            raise SpecError(
                [Problem("compute", f"no compute unit of {system.name} supports dtype {dtype}")]
            ) from None
        if cg.any_unit_attr:
            named = [cg.unit_attr[i] or main for i in np.flatnonzero(sel)]
            units = np.array(named, dtype=object)
        else:
            units = None
        for uname in set(units.tolist()) if units is not None else {main}:
            if uname not in system.compute:
                raise SpecError(
                    [
                        Problem(
                            "ops.attrs.unit",
                            f"unknown compute unit {uname!r} (known: {', '.join(system.compute)})",
                        )
                    ]
                )
            unit = system.compute[uname]
            if units is None:
                m = sel
            else:
                m = np.zeros(n, dtype=bool)
                m[np.flatnonzero(sel)[units == uname]] = True
            op_unit[m] = unit_res[uname]
            overhead[m] = unit.kernel_launch_overhead_s
            peak = cost.unit_peak(unit, dtype, unit_name=uname)
            vec = cost.vector_rate(unit, dtype)
            mm = m & is_matrix
            has_shape = mm & (cg.gemm_m > 0)
            util = cost.gemm_utilization_array(
                unit, cg.gemm_m[has_shape], cg.gemm_n[has_shape], cg.gemm_batch[has_shape]
            )
            compute_s[has_shape] = cg.flops[has_shape] / (peak * util)
            compute_s[mm & ~has_shape] = cg.flops[mm & ~has_shape] / peak
            compute_s[m & ~is_matrix] = cg.flops[m & ~is_matrix] / vec
            # tiled GEMM re-reads: reads scaled by tiled / compulsory operand traffic
            e = cost.elem_bytes(dtype)
            gm, gn, gk = cg.gemm_m[has_shape], cg.gemm_n[has_shape], cg.gemm_k[has_shape]
            buf = _on_chip_buffer(system, uname)
            full = cost.tiled_gemm_traffic_array(gm, gn, gk, np.full(gm.shape, e), buf)
            compulsory_reads = e * (gm * gk + gk * gn)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(compulsory_reads > 0, (full - e * gm * gn) / compulsory_reads, 1.0)
            tiling[has_shape] = np.maximum(f, 1.0)

    # ---- where each access goes: cached per (graph, placement, execution, granularity,
    # tiling), so a sweep over bandwidths and FLOP/s reuses it
    lay = _layout(system, cg, placement, execution, tier_names, gran, tiling)
    tensor_tier, tensor_home = lay.tensor_tier, lay.tensor_home
    acc_tier, moved = lay.acc_tier, lay.moved
    group_start, op_group, per, touched = lay.group_start, lay.op_group, lay.per, lay.touched
    n_groups = len(group_start)
    # demand and bytes through each resource: one vector op per (tier, direction, hop)
    op_demand = np.zeros((n_res, n))
    res_read = np.zeros((n_res, n))
    res_write = np.zeros((n_res, n))
    for ti in range(n_t):
        for w, route in ((0, read_route[ti]), (1, write_route[ti])):
            row = per[2 * ti + w]
            if not lay.tier_used[2 * ti + w]:
                continue
            for r, sec in route:
                op_demand[r] += row * sec
                (res_write if w else res_read)[r] += row
    op_demand[op_unit, np.arange(n)] += compute_s
    tier_lat = touched * route_lat[:, None]
    calibration: dict[str, TierCalibration] = {}
    if request_tiers:
        from memsim.request_fidelity import (
            calibrate_tier,
            resolve_config,
            tier_config,
            tier_demand,
        )

        config = resolve_config(dram_config)
        for ti in request_tiers:
            spec = system.tiers[tier_names[ti]]
            td = tier_demand(
                tier_names[ti],
                spec,
                cg,
                acc_tier=acc_tier,
                moved=moved,
                tier_index=ti,
                config=tier_config(tier_names[ti], spec, config),
            )
            mult = float(tp) if spec.scope == "host" else 1.0
            op_demand[tier_res[ti]] += td.demand * mult
            tier_lat[ti] += td.latency
            if td.calibration.classes:
                calibration[tier_names[ti]] = td.calibration
        for ti in request_tiers:  # tiers only DMA touches
            name = tier_names[ti]
            if name not in calibration and placement.staged:
                spec = system.tiers[name]
                calibration[name] = calibrate_tier(
                    name, spec, config=tier_config(name, spec, config)
                )
    op_latency = tier_lat.max(axis=0) if n else np.zeros(0)

    # ---- collectives over the device-to-device link
    coll = np.flatnonzero(cg.coll_bytes > 0)
    if coll.size:
        peers = [name for name, lk in system.links.items() if lk.peer_to_peer]
        needs = coll[cg.coll_group[coll] > 1]
        if needs.size and not peers:
            raise SpecError(
                [
                    Problem(
                        "links",
                        f"the graph has collectives over {int(cg.coll_group[needs].max())} "
                        f"devices but {system.name} has no device-to-device link",
                    )
                ]
            )
        lk_name = peers[0] if peers else ""
        ids = link_res[link_names.index(lk_name)] if peers else ()
        peer: Link | None = system.links[lk_name] if peers else None
        kinds = np.array([cg.coll_kind[i] or "all_reduce" for i in needs.tolist()], dtype=object)
        groups = cg.coll_group[needs]
        for kind in set(kinds.tolist()):
            for group in np.unique(groups).tolist():
                sel = needs[(kinds == kind) & (groups == group)]
                if not sel.size or peer is None:
                    continue
                # bytes each device sends and the latency steps of the link's algorithm
                # (ring, one_shot, two_shot, or auto = the cheapest per message)
                bw = peer.effective_bandwidth_bytes_per_s
                sent, steps_lat, _ = cost.collective_cost_array(
                    kind,
                    cg.coll_bytes[sel],
                    group=group,
                    algorithm=peer.collective_algorithm,
                    bandwidth=bw,
                    latency=peer.latency_s,
                )
                link_sec = sent / bw
                for r in ids:
                    op_demand[r, sel] += link_sec
                    res_write[r, sel] += sent / len(ids)
                op_latency[sel] = np.maximum(op_latency[sel], steps_lat)

    # ---- groups: demand, latency, overhead, solo duration
    if n and execution == "kernel":
        group_demand, group_latency, group_overhead = op_demand, op_latency, overhead
        group_duration = np.maximum(overhead, op_latency + op_demand.max(axis=0))
    elif n:
        group_demand = np.add.reduceat(op_demand, group_start, axis=1)
        group_latency = np.maximum.reduceat(op_latency, group_start)
        group_overhead = overhead[group_start]
        group_duration = np.maximum(group_overhead, group_latency + group_demand.max(axis=0))
    else:
        group_demand = np.zeros((n_res, 0))
        group_latency = group_overhead = group_duration = np.zeros(0)

    group_lane = cg.stage[group_start] if n else np.zeros(0, dtype=np.int64)
    if cg.sequential:
        # every op waits for the previous one: a chain. Inside a lane the order is
        # implicit; where the chain crosses to another lane (pipeline stage) the group
        # must wait for its predecessor explicitly, else the lanes would run at once.
        group_sequential = True
        if n_groups > 1 and np.any(group_lane[1:] != group_lane[:-1]):
            cross = np.flatnonzero(group_lane[1:] != group_lane[:-1]) + 1
            chain: list[tuple[int, ...]] = [()] * n_groups
            for gi in cross.tolist():
                chain[gi] = (gi - 1,)
            group_deps: tuple[tuple[int, ...], ...] = tuple(chain)
        else:
            group_deps = ()
    else:
        deps_list = []
        for gi in range(n_groups):
            first = int(group_start[gi])
            last = int(group_start[gi + 1]) if gi + 1 < n_groups else n
            ds = {int(op_group[d]) for i in range(first, last) for d in cg.deps[i]}
            ds.discard(gi)
            deps_list.append(tuple(sorted(ds)))
        group_deps = tuple(deps_list)
        group_sequential = False

    routes, jobs = _dma_jobs(
        system,
        cg,
        placement,
        tier_names,
        tier_res,
        link_names,
        link_dir_res,
        link_shared,
        op_group,
        tp,
        n_res,
        calibration,
    )
    return Plan(
        system=system,
        cg=cg,
        placement=placement,
        execution=execution,
        tp=tp,
        resources=tuple(resources),
        tier_names=tier_names,
        tier_res=np.asarray(tier_res, dtype=np.int64),
        link_names=link_names,
        link_res=tuple(link_res),
        tier_links=tuple(tier_links),
        op_unit=op_unit,
        op_demand=op_demand,
        op_latency=op_latency,
        op_overhead=overhead,
        acc_tier=acc_tier,
        acc_moved=moved,
        tensor_tier=tensor_tier,
        tensor_home=tensor_home,
        layout=lay,
        res_bytes_read=res_read,
        res_bytes_written=res_write,
        group_start=group_start,
        op_group=op_group,
        group_demand=group_demand,
        group_duration=group_duration,
        group_latency=group_latency,
        group_overhead=group_overhead,
        group_lane=group_lane,
        group_deps=group_deps,
        group_sequential=group_sequential,
        jobs=jobs,
        routes=routes,
        tier_calibration=calibration,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where each access goes and how many bytes it moves (hardware bandwidth-free)."""

    tensor_tier: IntArray
    tensor_home: IntArray
    acc_tier: IntArray
    moved: FloatArray
    group_start: IntArray
    op_group: IntArray
    per: FloatArray  # (2 x tiers, n_ops): bytes read (even rows) / written (odd rows)
    tier_used: npt.NDArray[np.bool_]  # (2 x tiers,): any bytes in that row
    touched: npt.NDArray[np.bool_]  # (tiers, n_ops)
    kind_names: tuple[str, ...]
    energy_bytes: FloatArray  # (tiers, 2, kinds x phases) bytes moved
    onchip: OnChip | None = None  # dataflow: the intervals kept in SRAM (memsim/dataflow.py)


_LAYOUTS: OrderedDict[tuple[Any, ...], Layout] = OrderedDict()


def _layout(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    execution: str,
    tier_names: tuple[str, ...],
    gran: FloatArray,
    tiling: FloatArray,
) -> Layout:
    """Memoised (LRU of 4; pure: the result depends only on the key)."""
    srams = tuple(
        (t, system.tiers[t].capacity_bytes) for t in tier_names if system.tiers[t].kind == "sram"
    )
    key = (
        cg.fingerprint,
        tuple(placement.home.items()),
        tuple(placement.staged.items()),
        execution,
        tier_names,
        gran.tobytes(),
        srams,
        hash(tiling.tobytes()),
    )
    hit = _LAYOUTS.get(key)
    if hit is not None:
        _LAYOUTS.move_to_end(key)
        return hit
    lay = _compute_layout(system, cg, placement, execution, tier_names, gran, tiling)
    _LAYOUTS[key] = lay
    while len(_LAYOUTS) > 4:
        _LAYOUTS.popitem(last=False)
    return lay


def _compute_layout(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    execution: str,
    tier_names: tuple[str, ...],
    gran: FloatArray,
    tiling: FloatArray,
) -> Layout:
    n = cg.n_ops
    n_t = len(tier_names)
    tier_idx = {t: i for i, t in enumerate(tier_names)}
    home_tier = (
        np.array([tier_idx[placement.tier_of(name)] for name in cg.tensor_names], dtype=np.int64)
        if cg.tensor_names
        else np.zeros(0, dtype=np.int64)
    )
    tensor_tier = home_tier.copy()
    tensor_home = home_tier.copy()
    staged_mask = np.zeros(len(cg.tensor_names), dtype=bool)
    for name in placement.staged:
        tensor_home[cg.tensor_index[name]] = tier_idx[placement.home[name]]
        staged_mask[cg.tensor_index[name]] = True

    # groups: one op each (kernel), or fused groups / segments (dataflow)
    if execution == "kernel":
        group_start = np.arange(n, dtype=np.int64)
    else:
        keys = [
            fg if fg is not None else f"\x00seg{s}"
            for fg, s in zip(cg.fuse_group, cg.segment.tolist(), strict=True)
        ]
        change = np.ones(n, dtype=bool)
        if n:
            change[1:] = [keys[i] != keys[i - 1] for i in range(1, n)]
        group_start = np.flatnonzero(change).astype(np.int64)
    op_group = np.zeros(n, dtype=np.int64)
    if n:
        op_group[group_start[1:]] = 1
        op_group = np.cumsum(op_group)

    # dataflow: a value produced and consumed inside one fused group stays in on-chip
    # SRAM when the group's live intermediates fit (per access interval: memsim/dataflow.py)
    acc_tier = tensor_tier[cg.acc_tensor] if cg.acc_tensor.size else np.zeros(0, dtype=np.int64)
    onchip: OnChip | None = None
    if execution == "dataflow" and n:
        onchip = onchip_residency(
            system,
            cg,
            tier_names=tier_names,
            tensor_tier=tensor_tier,
            staged_mask=staged_mask,
            op_group=op_group,
            group_start=group_start,
        )
        if onchip is not None:
            acc_tier[onchip.acc_onchip] = onchip.tier
            tensor_tier[onchip.whole_tensors] = onchip.tier

    factor = np.where(cg.acc_write, 1.0, tiling[cg.acc_op]) if n else np.zeros(0)
    raw = cg.acc_bytes * factor
    g = gran[acc_tier]
    moved = np.where(raw > 0, np.ceil(raw / g - 1e-9) * g, 0.0)
    # bytes per (tier, read/write, op) in one pass (resource-major layout)
    slot = (acc_tier * 2 + cg.acc_write) * n + cg.acc_op
    per = np.asarray(
        np.bincount(slot, weights=moved, minlength=n * n_t * 2), dtype=np.float64
    ).reshape(2 * n_t, n)
    # bytes per (tier, read/write, tensor kind, phase), for the energy breakdown
    kind_names = tuple(sorted(set(cg.t_kind)))
    codes = {k: i for i, k in enumerate(kind_names)}
    t_kind = np.array([codes[k] for k in cg.t_kind], dtype=np.int64)
    n_k, n_ph = len(kind_names), len(cg.phase_names)
    if cg.acc_op.size:
        key = ((acc_tier * 2 + cg.acc_write) * n_k + t_kind[cg.acc_tensor]) * n_ph
        key = key + cg.phase[cg.acc_op]
        energy_bytes = np.asarray(
            np.bincount(key, weights=moved, minlength=n_t * 2 * n_k * n_ph), dtype=np.float64
        )
    else:
        energy_bytes = np.zeros(n_t * 2 * n_k * n_ph)
    return Layout(
        tensor_tier=tensor_tier,
        tensor_home=tensor_home,
        acc_tier=acc_tier,
        moved=moved,
        group_start=group_start,
        op_group=op_group,
        per=per,
        tier_used=np.asarray(per.any(axis=1), dtype=bool),
        touched=(per[0::2] + per[1::2]) > 0,
        kind_names=kind_names,
        energy_bytes=energy_bytes.reshape(n_t, 2, n_k * n_ph),
        onchip=onchip,
    )


def _dma_jobs(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    tier_names: tuple[str, ...],
    tier_res: list[int],
    link_names: tuple[str, ...],
    link_dir_res: object,
    link_shared: object,
    op_group: IntArray,
    tp: int,
    n_res: int,
    calibration: Mapping[str, TierCalibration],
) -> tuple[tuple[Route, ...], tuple[DMAJob, ...]]:
    if not placement.staged:
        return (), ()
    tindex = cg.tensor_index
    tier_idx = {t: i for i, t in enumerate(tier_names)}
    staged = {
        tindex[n]: (tier_idx[placement.home[n]], tier_idx[s]) for n, s in placement.staged.items()
    }
    route_ids: dict[tuple[int, int], int] = {}
    routes: list[Route] = []
    route_sec: list[list[tuple[int, float]]] = []
    route_lat: list[float] = []

    def route(src: int, dst: int) -> int:
        key = (src, dst)
        if key not in route_ids:
            s_name, d_name = tier_names[src], tier_names[dst]
            s_spec, d_spec = system.tiers[s_name], system.tiers[d_name]
            hops = []
            # request-fidelity tiers: a bulk copy is a long sequential stream
            s_cal, d_cal = calibration.get(s_name), calibration.get(d_name)
            s_sec = (
                s_cal.seconds_per_byte(write=False)
                if s_cal
                else 1.0 / s_spec.effective_read_bandwidth_bytes_per_s
            )
            d_sec = (
                d_cal.seconds_per_byte(write=True)
                if d_cal
                else 1.0 / d_spec.effective_write_bandwidth_bytes_per_s
            )
            lat = (s_cal.stream(write=False).read_latency_s if s_cal else s_spec.latency_s) + (
                d_cal.stream(write=True).read_latency_s if d_cal else d_spec.latency_s
            )
            s_mult = float(tp) if s_spec.scope == "host" else 1.0
            d_mult = float(tp) if d_spec.scope == "host" else 1.0
            hops.append((tier_res[src], s_mult * s_sec))
            links = []
            for name, direction in _walk(system, s_name, d_name):
                lk = system.links[name]
                r = link_dir_res(name, direction)  # type: ignore[operator]
                hops.append((r, link_shared(name) / lk.effective_bandwidth_bytes_per_s))  # type: ignore[operator]
                links.append(r)
                lat += lk.latency_s
            hops.append((tier_res[dst], d_mult * d_sec))
            route_ids[key] = len(routes)
            routes.append(Route(src=src, dst=dst, links=tuple(links)))
            route_sec.append(hops)
            route_lat.append(lat)
        return route_ids[key]

    sel = np.isin(cg.acc_tensor, np.fromiter(staged, np.int64, len(staged)))
    a_op = cg.acc_op[sel]
    a_t = cg.acc_tensor[sel]
    a_w = cg.acc_write[sel]
    seg = cg.segment[a_op]
    # per (segment, tensor): first access is a write? written at all?
    by_seg: dict[int, dict[int, tuple[bool, bool]]] = {}
    for s, t, w in zip(seg.tolist(), a_t.tolist(), a_w.tolist(), strict=True):
        d = by_seg.setdefault(s, {})
        if t not in d:
            d[t] = (w, w)
        elif w:
            d[t] = (d[t][0], True)
    later_read: dict[int, int] = {}  # tensor -> last segment reading it
    for s, t, w in zip(seg.tolist(), a_t.tolist(), a_w.tolist(), strict=True):
        if not w:
            later_read[t] = s
    seg_first_op = np.full(cg.n_segments, -1, dtype=np.int64)
    seg_last_op = np.zeros(cg.n_segments, dtype=np.int64)
    seg_first_op[cg.segment[::-1]] = np.arange(cg.n_ops)[::-1]
    seg_last_op[cg.segment] = np.arange(cg.n_ops)
    valid_at_home: dict[int, int] = {}  # tensor -> job index that wrote it back (-1: always)
    for t in staged:
        if cg.t_persistent[t]:
            valid_at_home[t] = -1
    jobs: list[DMAJob] = []
    for s in sorted(by_seg):
        fetch_b: dict[int, float] = {}
        fetch_t, prod_t, wb_t = [], [], []
        wb_b: dict[int, float] = {}
        waits: set[int] = set()
        stage_tier = -1
        for t, (first_is_write, written) in by_seg[s].items():
            home, stage = staged[t]
            stage_tier = stage
            size = float(cg.t_bytes[t])
            if not first_is_write and t in valid_at_home:
                r = route(home, stage)
                fetch_b[r] = fetch_b.get(r, 0.0) + size
                fetch_t.append(t)
                if valid_at_home[t] >= 0:
                    waits.add(valid_at_home[t])
            else:
                prod_t.append(t)
            if written and later_read.get(t, -1) > s:
                r = route(stage, home)
                wb_b[r] = wb_b.get(r, 0.0) + size
                wb_t.append(t)
                valid_at_home[t] = len(jobs)

        def demand(parts: dict[int, float]) -> tuple[FloatArray, float]:
            vec = np.zeros(n_res)
            lat = 0.0
            for r_id, nbytes in parts.items():
                for res, sec in route_sec[r_id]:
                    vec[res] += nbytes * sec
                lat = max(lat, route_lat[r_id])
            return vec, lat

        fd, fl = demand(fetch_b)
        wd, wl = demand(wb_b)
        jobs.append(
            DMAJob(
                segment=s,
                stage=int(cg.stage[seg_first_op[s]]),
                first_group=int(op_group[seg_first_op[s]]),
                last_group=int(op_group[seg_last_op[s]]),
                fetch=tuple(fetch_b.items()),
                fetch_tensors=tuple(fetch_t),
                produce_tensors=tuple(prod_t),
                writeback=tuple(wb_b.items()),
                writeback_tensors=tuple(wb_t),
                waits_for_writeback=tuple(sorted(waits)),
                stage_tier=stage_tier,
                fetch_demand=fd,
                fetch_latency=fl,
                writeback_demand=wd,
                writeback_latency=wl,
            )
        )
    return tuple(routes), tuple(jobs)


def dma_duration(demand: FloatArray, latency: float) -> float:
    """Solo seconds of a DMA transfer: its latency plus its busiest resource's demand."""
    work = float(demand.max()) if demand.size else 0.0
    return latency + work if work > 0 else 0.0
