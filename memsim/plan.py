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
* **Solo duration** of a group: ``max(overhead, latency + max_r demand_r)``. A
  ``dataflow`` unit's per-kernel cost is part of the latency (serial: the fabric is
  reconfigured per kernel call), so it is paid per op in ``kernel`` execution and
  once per fused group in ``dataflow`` execution.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hw_models import ComputeUnit, Link, System
from hw_models.engine_profile import EngineProfile, load_engine_profile
from hw_models.errors import Problem, SpecError
from memsim import cost
from memsim.compiled import CompiledGraph, FloatArray, IntArray
from memsim.dataflow import OnChip, onchip_residency
from memsim.memo import memo
from memsim.policies.base import Placement

if TYPE_CHECKING:  # the DRAM controller (numba) loads only when a tier needs it
    from memsim.dram import ControllerConfig
    from memsim.request_fidelity import TierCalibration

EXECUTIONS: tuple[str, ...] = ("kernel", "dataflow")
#: the engine profile calibrated units are priced for when the system names none
DEFAULT_ENGINE = "cuda_graphs"
MATRIX_KINDS = ("gemm", "attention")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """A schedulable resource: ``label`` is what results report (``tier:hbm``).

    ``tier`` names the tier of a ``tier`` resource, ``link`` the link of a ``link``
    resource (``direction`` 0 carries data from ``between[0]``, 1 back; a half-duplex
    link has one resource, direction 0).
    """

    name: str
    label: str
    kind: str  # "compute" | "tier" | "link"
    tier: str | None = None
    link: str | None = None
    direction: int = 0


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
    # resources that may have demand (every other row of op_demand is 0), and per op the
    # largest demand over resources (op_demand.max(axis=0))
    active_res: tuple[int, ...] = ()
    op_work: FloatArray = field(default_factory=lambda: np.zeros(0))

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceTable:
    """Step 1: every resource, and where each compute unit, tier and link direction sits."""

    resources: tuple[Resource, ...]
    unit_res: Mapping[str, int]
    tier_names: tuple[str, ...]
    tier_res: tuple[int, ...]
    link_names: tuple[str, ...]
    link_res: tuple[tuple[int, ...], ...]

    def link_dir_res(self, name: str, direction: int) -> int:
        """Resource index of link ``name`` carrying data in ``direction`` (0: as listed)."""
        ids = self.link_res[self.link_names.index(name)]
        return ids[direction] if len(ids) == 2 else ids[0]


def _resources(system: System) -> ResourceTable:
    """Each compute unit, each tier, each link direction (a duplex link has two)."""
    resources: list[Resource] = []
    unit_res = {}
    for u in system.compute:
        unit_res[u] = len(resources)
        resources.append(Resource(name=f"compute:{u}", label=f"compute:{u}", kind="compute"))
    tier_names = tuple(system.tiers)
    tier_res = []
    for t in tier_names:
        tier_res.append(len(resources))
        resources.append(Resource(name=f"tier:{t}", label=f"tier:{t}", kind="tier", tier=t))
    link_res: list[tuple[int, ...]] = []
    for name, lk in system.links.items():
        ids: tuple[int, ...]
        if lk.duplex:
            ids = (len(resources), len(resources) + 1)
            for arrow, direction in ((">", 0), ("<", 1)):
                resources.append(
                    Resource(
                        name=f"link:{name}{arrow}",
                        label=f"link:{name}",
                        kind="link",
                        link=name,
                        direction=direction,
                    )
                )
        else:
            ids = (len(resources),)
            resources.append(
                Resource(name=f"link:{name}", label=f"link:{name}", kind="link", link=name)
            )
        link_res.append(ids)
    return ResourceTable(
        resources=tuple(resources),
        unit_res=unit_res,
        tier_names=tier_names,
        tier_res=tuple(tier_res),
        link_names=tuple(system.links),
        link_res=tuple(link_res),
    )


def _link_shared(system: System, name: str, tp: int) -> float:
    """How many flows share link ``name``: ``tp`` between two host tiers, else 1."""
    a, b = system.links[name].between
    host = system.tiers[a].scope == "host" and system.tiers[b].scope == "host"
    return float(tp) if host else 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TierRoutes:
    """Step 2: how an access from compute reaches each tier (seconds per byte per hop)."""

    read: tuple[tuple[tuple[int, float], ...], ...]  # per tier: (resource, s/B) hops
    write: tuple[tuple[tuple[int, float], ...], ...]
    latency: FloatArray  # per tier: its latency plus the links' on the way
    granularity: FloatArray  # per tier: access granularity in bytes
    links: tuple[tuple[int, ...], ...]  # per tier: link indices between compute and it
    request_tiers: tuple[int, ...]  # tiers at request fidelity (DRAM controller)


def _tier_routes(system: System, res: ResourceTable, tp: int) -> TierRoutes:
    """Each tier's read and write hops from its anchor device tier, and their latency."""
    n_t = len(res.tier_names)
    read_route: list[tuple[tuple[int, float], ...]] = []
    write_route: list[tuple[tuple[int, float], ...]] = []
    route_lat = np.zeros(n_t)
    gran = np.zeros(n_t)
    tier_links: list[tuple[int, ...]] = []
    request_tiers = tuple(
        ti for ti, t in enumerate(res.tier_names) if system.tiers[t].fidelity == "request"
    )
    for ti, t in enumerate(res.tier_names):
        spec = system.tiers[t]
        mult = float(tp) if spec.scope == "host" else 1.0
        r_hops = [(res.tier_res[ti], mult / spec.effective_read_bandwidth_bytes_per_s)]
        w_hops = [(res.tier_res[ti], mult / spec.effective_write_bandwidth_bytes_per_s)]
        lat = spec.latency_s
        if ti in request_tiers:  # the tier's own time and latency come per access class
            r_hops = [(res.tier_res[ti], 0.0)]
            w_hops = [(res.tier_res[ti], 0.0)]
            lat = 0.0
        on_route = []
        for name, direction in _walk(system, _anchor(system, t), t):
            on_route.append(res.link_names.index(name))
            lk = system.links[name]
            sec = _link_shared(system, name, tp) / lk.effective_bandwidth_bytes_per_s
            w_hops.append((res.link_dir_res(name, direction), sec))
            r_hops.append((res.link_dir_res(name, 1 - direction), sec))
            lat += lk.latency_s
        read_route.append(tuple(r_hops))
        tier_links.append(tuple(on_route))
        write_route.append(tuple(w_hops))
        route_lat[ti] = lat
        gran[ti] = spec.access_granularity_bytes
    return TierRoutes(
        read=tuple(read_route),
        write=tuple(write_route),
        latency=route_lat,
        granularity=gran,
        links=tuple(tier_links),
        request_tiers=request_tiers,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeCost:
    """Step 3: the compute unit, compute seconds, launch overhead and GEMM tiling per op."""

    op_unit: IntArray  # compute resource index per op
    seconds: FloatArray
    overhead: FloatArray
    tiling: FloatArray  # read traffic of tiled GEMMs over their compulsory reads (>= 1)
    # per-kernel cost of dataflow units, serial with the kernel's work (configuration
    # load and synchronisation): added to the op's latency, so once per fused group
    serial: FloatArray | None = None
    # calibrated units: the engine profile they were priced for (None: none calibrated),
    # the calibrated device seconds per op (0: priced analytically), and which ops'
    # calibrated seconds (> 0) are set by their compute or by their bytes
    profile: EngineProfile | None = None
    calibrated: FloatArray | None = None
    calibrated_compute: npt.NDArray[np.bool_] | None = None
    calibrated_memory: npt.NDArray[np.bool_] | None = None


def _calibrated_times(
    system: System,
    cg: CompiledGraph,
    uname: str,
    m: npt.NDArray[np.bool_] | None,
    dtype: str,
    profile: EngineProfile,
    nbytes: FloatArray,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(device s, eager host s, compute-set?, bytes-set?) of the ops ``m`` (None: every
    op) on a calibrated ``unit``; the two masks hold only ops with calibrated seconds > 0.

    Priced once per distinct op (:func:`memsim.cost.distinct_ops`, graph-only and kept
    in the active :class:`~memsim.memo.SimCache`), then gathered for every op.
    """
    unit = system.compute[uname]
    assert unit.efficiency is not None
    every = m is None or bool(m.all())
    prep = memo(
        "graph_facts",
        (
            "calibrated_distinct",
            id(cg),
            None if every or m is None else m.tobytes(),
            _fused_key(profile),
            dtype,
            id(nbytes),
        ),
        partial(
            _calibrated_inputs,
            cg,
            None if every or m is None else np.flatnonzero(m),
            profile,
            dtype,
            nbytes,
        ),
        pin=(cg, nbytes),
    )
    red, inputs = prep
    # graph-only given the profile's kernel groups: the batches the pricing runs
    kinds = tuple(k for k, _ in red.selection.memory_bound)
    plan = memo(
        "graph_facts",
        ("calibrated_plan", id(red), cost.profile_groups(profile, kinds)),
        partial(_pricing_plan, red, profile, inputs),
        pin=red,
    )
    efficiency = unit.efficiency
    # a function of the distinct ops and of the whole system spec (its hash: the unit's
    # parameters, peak, memory bandwidth and engine profile): kept for the points of a
    # sweep that change none of them (capacities, links, policies, DRAM)
    dev, host, mem = memo(
        "calibrated_prices",
        (id(red), system.spec_hash, uname, dtype),
        lambda: cost.calibrated_op_times(
            efficiency.values(),
            profile,
            **inputs,
            dtype=dtype,
            peak=cost.unit_peak(unit, dtype),
            mem_bw=cost.device_memory_bandwidth(system),
            sms=unit.count,
            shapes=efficiency.gemm_shapes,
            selection=red.selection,
            plan=plan,
        ),
        pin=red,
    )
    inv = red.inverse
    on = dev > 0  # per distinct op, then gathered
    cu, mb = on & ~mem, on & mem
    # the gathered masks: a function of the distinct ops' masks, which the points of a
    # sweep mostly share (read-only: shared by the calls that hit)
    cu_all, mb_all = memo(
        "calibrated_prices",
        ("masks", id(red), cu.tobytes(), mb.tobytes()),
        partial(_gathered_masks, cu, mb, inv),
        pin=red,
    )
    # no eager launch cost (a CUDA-graph profile): zeros, without a gather
    return dev.take(inv), host.take(inv) if host.any() else np.zeros(inv.size), cu_all, mb_all


def _gathered_masks(
    cu: npt.NDArray[np.bool_], mb: npt.NDArray[np.bool_], inv: IntArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The per-op masks of the distinct ops' ``cu`` and ``mb`` (read-only)."""
    out = cu.take(inv), mb.take(inv)
    for a in out:
        a.setflags(write=False)
    return out


def _calibrated_inputs(
    cg: CompiledGraph,
    idx: IntArray | None,
    profile: EngineProfile,
    dtype: str,
    nbytes: FloatArray,
) -> tuple[cost.DistinctOps, dict[str, Any]]:
    """Graph-only: the distinct ops of ``idx`` (None: every op) and their pricing inputs."""
    at: Any = slice(None) if idx is None else idx
    cols: dict[str, Any] = {
        "kind": cg.kind[at],
        "family": cg.gemm_family[at],
        "prefix": cg.gemm_prefix[at],
        "step": cg.step[at],
        "phase": cg.phase[at],
        "flops": cg.flops[at],
        "nbytes": nbytes[at],
        "gemm_m": cg.gemm_m[at],
        "gemm_n": cg.gemm_n[at],
        "gemm_k": cg.gemm_k[at],
        "gemm_batch": cg.gemm_batch[at],
        "q_len": cg.attn_q_len[at],
        "kv_len": cg.attn_kv_len[at],
        "qweight_bytes": cg.gemm_qweight_bytes[at],
        "qweight_elem": cg.gemm_qweight_elem[at],
        "kv_written": memo("graph_facts", ("kv_written", id(cg)), partial(_kv_written, cg), pin=cg)[
            at
        ],
    }
    elem = cost.elem_bytes(dtype)
    shapes = (cols["gemm_n"], cols["gemm_k"], cols["gemm_batch"], cols["nbytes"])
    selection = cost.calibrated_selection(
        profile,
        kind=cols["kind"],
        kind_names=cg.kind_names,
        family=cols["family"],
        prefix=cols["prefix"],
        step=cols["step"],
        phase=cols["phase"],
        gemm_m=cols["gemm_m"],
        shapes=shapes,
        elem=elem,
        qweight_elem=cols["qweight_elem"],
    )
    # every per-op input of the pricing (family/prefix/step/phase only select fused runs)
    priced = [
        *("flops", "nbytes", "gemm_m", "gemm_n", "gemm_k", "gemm_batch", "q_len"),
        *("kv_len", "qweight_bytes", "qweight_elem", "kv_written"),
    ]
    red = cost.distinct_ops(
        selection,
        kind=cols["kind"],
        columns=[cols[k] for k in priced],
        gemm_m=cols["gemm_m"],
        shapes=shapes,
        elem=elem,
    )
    inputs: dict[str, Any] = {k: np.ascontiguousarray(v[red.ops]) for k, v in cols.items()}
    inputs["kind_names"] = cg.kind_names
    return red, inputs


def _pricing_plan(
    red: cost.DistinctOps, profile: EngineProfile, inputs: dict[str, Any]
) -> cost.PricingPlan:
    """:func:`memsim.cost.pricing_plan` of the distinct ops ``red`` (graph-only)."""
    return cost.pricing_plan(
        red.selection,
        profile,
        **{k: inputs[k] for k in _PLAN_INPUTS},
    )


_PLAN_INPUTS = (
    *("flops", "nbytes", "gemm_m", "gemm_n", "gemm_k", "gemm_batch", "q_len", "kv_len"),
    "kv_written",
)


def _fused_key(profile: EngineProfile) -> tuple[bool, bool]:
    """What of an engine profile the calibrated selection reads."""
    return (bool(profile.fused_qkv), bool(profile.fused_gate_up))


def step_starts(cg: CompiledGraph) -> IntArray:
    """Index of the first op of every (phase, step) of ``cg``."""
    if not cg.n_ops:
        return np.zeros(0, dtype=np.int64)
    change = np.ones(cg.n_ops, dtype=bool)
    change[1:] = (cg.step[1:] != cg.step[:-1]) | (cg.phase[1:] != cg.phase[:-1])
    return np.flatnonzero(change).astype(np.int64)


def _step_starts(cg: CompiledGraph) -> IntArray:
    """:func:`step_starts`, memoised in the active :class:`~memsim.memo.SimCache`."""
    return memo("graph_facts", ("step_starts", id(cg)), partial(step_starts, cg), pin=cg)


@dataclass(frozen=True, slots=True, kw_only=True)
class _UnitOps:
    """Graph-only facts: the ops of one dtype on one compute unit, by cost class."""

    dtype: str
    unit: str | None  # an op's ``attrs.unit``; None: the dtype's main unit
    ops: IntArray  # every op of this (dtype, unit)
    gemm: IntArray  # matrix ops with a GEMM shape
    matrix: IntArray  # matrix ops without one
    vector: IntArray  # everything else
    compulsory_reads: FloatArray  # per ``gemm`` op: e (M K + K N)
    flops_gemm: FloatArray  # FLOPs of the ``gemm``, ``matrix`` and ``vector`` ops
    flops_matrix: FloatArray
    flops_vector: FloatArray


def _unit_ops(cg: CompiledGraph) -> list[_UnitOps]:
    """The ops of ``cg`` split by (dtype, named unit) and cost class (graph-only)."""
    n = cg.n_ops
    kind_is_matrix = np.array([k in MATRIX_KINDS for k in cg.kind_names], dtype=bool)
    is_matrix = kind_is_matrix[cg.kind] if n else np.zeros(0, dtype=bool)
    out = []
    for di, dtype in enumerate(cg.dtype_names):
        sel = cg.dtype == di
        if cg.any_unit_attr:
            idx = np.flatnonzero(sel)
            named = np.array([cg.unit_attr[i] or "" for i in idx], dtype=object)
            parts = [(u or None, idx[named == u]) for u in sorted(set(named.tolist()))]
        else:
            parts = [(None, np.flatnonzero(sel))]
        e = cost.elem_bytes(dtype)
        for unit, ops in parts:
            mat = ops[is_matrix[ops]]
            gemm = mat[cg.gemm_m[mat] > 0]
            gm, gn, gk = cg.gemm_m[gemm], cg.gemm_n[gemm], cg.gemm_k[gemm]
            matrix, vector = mat[cg.gemm_m[mat] <= 0], ops[~is_matrix[ops]]
            out.append(
                _UnitOps(
                    dtype=dtype,
                    unit=unit,
                    ops=ops,
                    gemm=gemm,
                    matrix=matrix,
                    vector=vector,
                    compulsory_reads=e * (gm * gk + gk * gn),
                    flops_gemm=cg.flops[gemm],
                    flops_matrix=cg.flops[matrix],
                    flops_vector=cg.flops[vector],
                )
            )
    return out


def _compute_cost(system: System, cg: CompiledGraph, res: ResourceTable) -> ComputeCost:
    """Compute time per op on its unit (GEMM utilisation, vector rate) and GEMM re-reads."""
    n = cg.n_ops
    compute_s = np.zeros(n)
    overhead = np.zeros(n)
    serial = np.zeros(n)
    profile: EngineProfile | None = None
    nbytes = np.zeros(0)
    calibrated: FloatArray | None = None
    calibrated_compute: npt.NDArray[np.bool_] | None = None
    calibrated_memory: npt.NDArray[np.bool_] | None = None
    if any(u.efficiency is not None for u in system.compute.values()):
        profile = system.engine or load_engine_profile(DEFAULT_ENGINE)
        nbytes = memo("graph_facts", ("op_bytes", id(cg)), partial(_op_bytes, cg), pin=cg)
    parts = memo("graph_facts", ("unit_ops", id(cg)), partial(_unit_ops, cg), pin=cg)
    on_unit: dict[tuple[str, str], list[IntArray]] = {}  # (dtype, unit) -> its ops
    units: list[int] = []
    tilings: list[tuple[_UnitOps, float]] = []
    for part in parts:
        dtype = part.dtype
        try:
            main = system.main_compute(dtype)
        except KeyError:
            raise SpecError(
                [Problem("compute", f"no compute unit of {system.name} supports dtype {dtype}")]
            ) from None
        uname = part.unit or main
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
        units.append(res.unit_res[uname])
        if unit.kind == "dataflow":  # a kernel call reconfigures the fabric: not hidden
            serial[part.ops] = cost.dataflow_kernel_seconds(unit, sockets=cg.tp)
        else:  # a launch queue hides launches behind running kernels: a floor
            overhead[part.ops] = unit.kernel_launch_overhead_s
        peak = cost.unit_peak(unit, dtype, unit_name=uname)
        vec = cost.vector_rate(unit, dtype)
        g = part.gemm
        util = memo(
            "graph_facts",
            ("gemm_util", id(part), unit.array_rows, unit.array_cols, unit.count),
            partial(_gemm_util, cg, part, unit),
            pin=part,
        )
        compute_s[g] = part.flops_gemm / (peak * util)
        compute_s[part.matrix] = part.flops_matrix / peak
        compute_s[part.vector] = part.flops_vector / vec
        # tiled GEMM re-reads: reads scaled by tiled / compulsory operand traffic
        tilings.append((part, _on_chip_buffer(system, uname)))
        on_unit.setdefault((dtype, uname), []).append(part.ops)
    # graph-only given the units chosen and their buffers: one array per sweep
    op_unit = memo(
        "graph_facts",
        ("op_unit", id(cg), tuple(units)),
        partial(_op_unit, cg, parts, tuple(units)),
        pin=cg,
    )
    tiling = memo(
        "graph_facts",
        ("tiling", id(cg), tuple((id(p), b) for p, b in tilings)),
        partial(_tiling_all, cg, tuple(tilings)),
        pin=(cg, *(p for p, _ in tilings)),
    )
    if profile is not None:  # calibrated kernels, per (dtype, unit) as one selection
        for (dtype, uname), chunks in on_unit.items():
            unit = system.compute[uname]
            if unit.efficiency is None:
                continue
            if len(chunks) == 1 and chunks[0].size == n:  # this unit runs every op
                dev, host, cu, mb = _calibrated_times(
                    system, cg, uname, None, dtype, profile, nbytes
                )
                calibrated, overhead = dev, host
                calibrated_compute, calibrated_memory = cu, mb
            else:
                m = np.zeros(n, dtype=bool)
                for ops in chunks:
                    m[ops] = True
                dev, host, cu, mb = _calibrated_times(system, cg, uname, m, dtype, profile, nbytes)
                if calibrated is None or calibrated_compute is None or calibrated_memory is None:
                    calibrated = np.zeros(n)
                    calibrated_compute = np.zeros(n, dtype=bool)
                    calibrated_memory = np.zeros(n, dtype=bool)
                calibrated[m] = dev
                calibrated_compute[m] = cu
                calibrated_memory[m] = mb
                overhead[m] = host
    return ComputeCost(
        op_unit=op_unit,
        seconds=compute_s,
        overhead=overhead,
        tiling=tiling,
        serial=serial,
        profile=profile,
        calibrated=calibrated,
        calibrated_compute=calibrated_compute,
        calibrated_memory=calibrated_memory,
    )


def _kv_written(cg: CompiledGraph) -> FloatArray:
    """Bytes each op writes into KV-cache tensors (graph-only)."""
    is_kv = np.array([k == "kv" for k in cg.t_kind], dtype=bool)
    if not is_kv.size or not cg.acc_op.size:
        return np.zeros(cg.n_ops)
    w = np.where(cg.acc_write & is_kv[cg.acc_tensor], cg.acc_bytes, 0.0)
    return np.asarray(np.bincount(cg.acc_op, weights=w, minlength=cg.n_ops), np.float64)


def _op_bytes(cg: CompiledGraph) -> FloatArray:
    """Bytes each op reads and writes (graph-only)."""
    return np.asarray(np.bincount(cg.acc_op, weights=cg.acc_bytes, minlength=cg.n_ops), np.float64)


def _apply_calibrated(comp: ComputeCost, res: ResourceTable, dem: OpDemand) -> None:
    """Raise each calibrated op's busiest resource to its calibrated device time.

    Compute-bound ops (by the calibrated model) raise their compute unit; memory-bound
    ones raise the tier they move the most through, so time is reported where it is
    spent and a faster tier (more bandwidth) never makes them slower.
    """
    demand = dem.demand
    t, cu, mb = comp.calibrated, comp.calibrated_compute, comp.calibrated_memory
    if t is None or cu is None or mb is None or not t.size:
        return
    # dense passes over every op, writing only the selected ones (``where=``): faster
    # than gathering and scattering the selected ops by index
    units = list(res.unit_res.values())
    for u in units:
        sel = cu if len(units) == 1 else cu & (comp.op_unit == u)
        if sel.any():
            np.maximum(demand[u], t, out=demand[u], where=sel)
    if not mb.any():
        return
    # the busiest tier per op, the first on ties (argmax): tiers without demand never win
    # over the first tier, which wins where no tier has any
    tiers = res.tier_res
    rows = [tiers[0], *(r for r in tiers[1:] if dem.active[r])]
    owners: list[tuple[int, npt.NDArray[np.bool_]]]
    if len(rows) == 1:
        owners = [(rows[0], mb)]
    elif len(rows) == 2:
        second = mb & (demand[rows[1]] > demand[rows[0]])
        owners = [(rows[0], mb ^ second), (rows[1], second)]  # mb & ~more, mb & more
    else:
        busiest = np.full(t.size, rows[0], dtype=np.int64)
        most = demand[rows[0]]
        for r in rows[1:]:
            v = demand[r]
            more = v > most
            busiest[more] = r
            most = np.where(more, v, most)
        owners = [(r, mb & (busiest == r)) for r in rows]
    for r, sel in owners:
        if sel.any():
            np.maximum(demand[r], t, out=demand[r], where=sel)
            dem.active[r] = True


def _gemm_util(cg: CompiledGraph, part: _UnitOps, unit: ComputeUnit) -> FloatArray:
    """Fraction of peak each GEMM of ``part`` reaches on ``unit`` (its tile and count)."""
    g = part.gemm
    return cost.gemm_utilization_array(unit, cg.gemm_m[g], cg.gemm_n[g], cg.gemm_batch[g])


def _op_unit(cg: CompiledGraph, parts: list[_UnitOps], units: tuple[int, ...]) -> IntArray:
    """Compute resource index per op, from each part's unit (read-only)."""
    op_unit = np.zeros(cg.n_ops, dtype=np.int64)
    for part, u in zip(parts, units, strict=True):
        op_unit[part.ops] = u
    op_unit.setflags(write=False)
    return op_unit


def _tiling_all(cg: CompiledGraph, tilings: tuple[tuple[_UnitOps, float], ...]) -> FloatArray:
    """Per op: tiled over compulsory GEMM reads (1 for other ops; read-only)."""
    tiling = np.ones(cg.n_ops)
    for part, buf in tilings:
        tiling[part.gemm] = _tiling(cg, part, buf)
    tiling.setflags(write=False)
    return tiling


def _tiling(cg: CompiledGraph, part: _UnitOps, buf: float) -> FloatArray:
    """Tiled over compulsory read traffic of ``part``'s GEMMs with ``buf`` bytes on chip."""
    e = cost.elem_bytes(part.dtype)
    g = part.gemm
    gm, gn, gk = cg.gemm_m[g], cg.gemm_n[g], cg.gemm_k[g]
    full = cost.tiled_gemm_traffic_array(gm, gn, gk, np.full(gm.shape, e), buf)
    compulsory_reads = part.compulsory_reads
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(compulsory_reads > 0, (full - e * gm * gn) / compulsory_reads, 1.0)
    return np.asarray(np.maximum(f, 1.0), dtype=np.float64)


@dataclass(slots=True, kw_only=True)
class OpDemand:
    """Steps 5-7 fill these (R x n_ops): seconds and bytes of each resource per op.

    ``read`` and ``written`` do not depend on bandwidths or FLOP/s: they are shared
    (read-only) between the hardware points of a sweep; a step that changes them
    replaces them. ``active[r]``: resource ``r`` may have demand (all other rows are 0).
    """

    demand: FloatArray
    read: FloatArray
    written: FloatArray
    tier_latency: FloatArray  # (tiers, n_ops): latency of each tier an op touches
    active: npt.NDArray[np.bool_]


def _route_bytes(
    lay: Layout, hops: tuple[tuple[int, int, tuple[int, ...]], ...], n_res: int
) -> tuple[FloatArray, FloatArray]:
    """Bytes read and written through each resource per op, from the layout's rows and
    the resources on each (tier, direction)'s route (hardware bandwidth-free)."""
    n = lay.per.shape[1]
    res_read = np.zeros((n_res, n))
    res_write = np.zeros((n_res, n))
    for ti, w, route in hops:
        row = lay.per[2 * ti + w]
        for r in route:
            (res_write if w else res_read)[r] += row
    res_read.setflags(write=False)
    res_write.setflags(write=False)
    return res_read, res_write


def _access_demand(
    cg: CompiledGraph, res: ResourceTable, routes: TierRoutes, lay: Layout, comp: ComputeCost
) -> OpDemand:
    """Demand and bytes through each resource: one vector op per (tier, direction, hop)."""
    n, n_res = cg.n_ops, len(res.resources)
    op_demand = np.zeros((n_res, n))
    active = np.zeros(n_res, dtype=bool)
    hops = []
    for ti in range(len(res.tier_names)):
        for w, route in ((0, routes.read[ti]), (1, routes.write[ti])):
            if not lay.tier_used[2 * ti + w]:
                continue
            row = lay.per[2 * ti + w]
            for r, sec in route:
                if active[r]:
                    op_demand[r] += row * sec
                else:  # 0 + x: the first term alone
                    np.multiply(row, sec, out=op_demand[r])
                    active[r] = True
            hops.append((ti, w, tuple(r for r, _ in route)))
    # the bytes depend on the layout and the routes' resources only: shared by a sweep
    key = (id(lay), tuple(hops), n_res)
    read, written = memo(
        "op_tables", ("route_bytes", key), lambda: _route_bytes(lay, tuple(hops), n_res), pin=lay
    )
    # compute rows carry no transfer demand: each op's seconds on its unit (0 + x)
    op_demand[comp.op_unit, op_range(cg)] = comp.seconds
    active[list(res.unit_res.values())] = True
    return OpDemand(
        demand=op_demand,
        read=read,
        written=written,
        tier_latency=lay.touched * routes.latency[:, None],
        active=active,
    )


def _flash_request_sizes(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    res: ResourceTable,
    lay: Layout,
    dem: OpDemand,
    tp: int,
) -> None:
    """Reads of tensors with a ``placement.read_request_bytes`` size from a flash tier
    with a geometry: the tier's time per byte at that request size, not at the tier's.

    :func:`_access_demand` charged every read at the tier's effective bandwidth; this
    adds ``bytes x (1 / bw(request) - 1 / bw(tier))`` to the tier's row for each such
    access (negative when the tensor's requests are larger than the tier's).
    """
    sizes = placement.read_request_bytes
    if not sizes or not cg.n_ops:
        return
    req = np.full(len(cg.tensor_names), np.nan)
    for name, nbytes in sizes.items():
        req[cg.tensor_index[name]] = float(nbytes)
    sel = np.flatnonzero(~cg.acc_write & np.isfinite(req[cg.acc_tensor]))
    for ti, t in enumerate(res.tier_names):
        spec = system.tiers[t]
        if spec.flash_geometry is None:
            continue
        acc = sel[lay.acc_tier[sel] == ti]
        if not acc.size:
            continue
        mult = float(tp) if spec.scope == "host" else 1.0
        base = 1.0 / spec.effective_read_bandwidth_bytes_per_s
        per_size = {r: 1.0 / spec.read_bandwidth_at(r) for r in np.unique(req[cg.acc_tensor[acc]])}
        extra = np.array([per_size[r] for r in req[cg.acc_tensor[acc]]]) - base
        row = np.zeros(cg.n_ops)
        np.add.at(row, cg.acc_op[acc], lay.moved[acc] * extra * mult)
        dem.demand[res.tier_res[ti]] += row


def _reroute_attached_units(
    system: System,
    cg: CompiledGraph,
    res: ResourceTable,
    routes: TierRoutes,
    lay: Layout,
    comp: ComputeCost,
    dem: OpDemand,
    tp: int,
) -> None:
    """Ops on a unit with its own ``memory`` tier (a host CPU) reach tiers from there.

    :func:`_access_demand` routes every access from the device; for these ops the
    device route's link hops are taken back and the links from the unit's tier
    put in (none for its own tier: a CPU reads host DRAM without PCIe).
    """
    attached = {res.unit_res[u]: unit.memory for u, unit in system.compute.items() if unit.memory}
    if not attached or not cg.n_ops:
        return
    for r_unit, mem in attached.items():
        ops = np.flatnonzero(comp.op_unit == r_unit)
        if not len(ops):
            continue
        if not dem.read.flags.writeable:  # shared bytes tables: this point gets its own
            dem.read, dem.written = dem.read.copy(), dem.written.copy()
        for ti, t in enumerate(res.tier_names):
            try:
                walk = _walk(system, mem, t) if t != mem else []
            except ValueError:
                raise SpecError(
                    [Problem(f"tiers.{t}", f"no link path from {mem!r} (a unit's memory) to {t!r}")]
                ) from None
            alt_w: list[tuple[int, float]] = []
            alt_r: list[tuple[int, float]] = []
            for name, direction in walk:
                sec = (
                    _link_shared(system, name, tp)
                    / system.links[name].effective_bandwidth_bytes_per_s
                )
                alt_w.append((res.link_dir_res(name, direction), sec))
                alt_r.append((res.link_dir_res(name, 1 - direction), sec))
            for w, route, alt in ((0, routes.read[ti], alt_r), (1, routes.write[ti], alt_w)):
                if not lay.tier_used[2 * ti + w]:
                    continue
                row = lay.per[2 * ti + w][ops]
                moved = dem.written if w else dem.read
                for r, sec in route[1:]:  # the links from the device (the tier's own hop stays)
                    dem.demand[r, ops] -= row * sec
                    moved[r, ops] -= row
                for r, sec in alt:
                    dem.demand[r, ops] += row * sec
                    moved[r, ops] += row
                    dem.active[r] = True
            own = 0.0 if ti in routes.request_tiers else system.tiers[t].latency_s
            lat = own + sum(system.links[n].latency_s for n, _ in walk)
            dem.tier_latency[ti, ops] = lay.touched[ti, ops] * lat


def op_range(cg: CompiledGraph) -> IntArray:
    """``np.arange(cg.n_ops)`` (graph-only, memoised)."""
    return memo("graph_facts", ("arange", id(cg)), partial(_readonly_arange, cg.n_ops), pin=cg)


def _readonly_arange(n: int) -> IntArray:
    out = np.arange(n)
    out.setflags(write=False)
    return out


def _request_fidelity(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    res: ResourceTable,
    routes: TierRoutes,
    lay: Layout,
    dem: OpDemand,
    tp: int,
    dram_config: ControllerConfig | None,
) -> dict[str, TierCalibration]:
    """Tiers at request fidelity: their demand and latency per access class (in ``dem``)."""
    calibration: dict[str, TierCalibration] = {}
    if not routes.request_tiers:
        return calibration
    from memsim.request_fidelity import calibrate_tier, resolve_config, tier_config, tier_demand

    config = resolve_config(dram_config)
    for ti in routes.request_tiers:
        spec = system.tiers[res.tier_names[ti]]
        td = tier_demand(
            res.tier_names[ti],
            spec,
            cg,
            acc_tier=lay.acc_tier,
            moved=lay.moved,
            tier_index=ti,
            config=tier_config(res.tier_names[ti], spec, config),
        )
        mult = float(tp) if spec.scope == "host" else 1.0
        dem.demand[res.tier_res[ti]] += td.demand * mult
        dem.active[res.tier_res[ti]] = True
        dem.tier_latency[ti] += td.latency
        if td.calibration.classes:
            calibration[res.tier_names[ti]] = td.calibration
    for ti in routes.request_tiers:  # tiers only DMA touches
        name = res.tier_names[ti]
        if name not in calibration and placement.staged:
            spec = system.tiers[name]
            calibration[name] = calibrate_tier(name, spec, config=tier_config(name, spec, config))
    return calibration


def _collective_batches(
    cg: CompiledGraph,
) -> tuple[IntArray, list[tuple[str, int, IntArray]]] | None:
    """Graph-only facts of the collectives: the ops that need a link (group > 1), and
    them batched by (kind, group). None when the graph has no collective."""
    coll = np.flatnonzero(cg.coll_bytes > 0)
    if not coll.size:
        return None
    needs = coll[cg.coll_group[coll] > 1]
    kinds = np.array([cg.coll_kind[i] or "all_reduce" for i in needs.tolist()], dtype=object)
    groups = cg.coll_group[needs]
    batches = []
    for kind in sorted(set(kinds.tolist())):
        for group in np.unique(groups).tolist():
            sel = needs[(kinds == kind) & (groups == group)]
            if sel.size:
                batches.append((str(kind), int(group), sel))
    return needs, batches


def _collectives(
    system: System, cg: CompiledGraph, res: ResourceTable, dem: OpDemand, op_latency: FloatArray
) -> None:
    """Collectives over the device-to-device link: link demand, bytes and step latency."""
    batches = memo("graph_facts", ("collectives", id(cg)), lambda: _collective_batches(cg), pin=cg)
    if batches is None:
        return
    needs, by_kind_group = batches
    peers = [name for name, lk in system.links.items() if lk.peer_to_peer]
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
    ids = res.link_res[res.link_names.index(lk_name)] if peers else ()
    peer: Link | None = system.links[lk_name] if peers else None
    sent_by_batch: list[tuple[IntArray, FloatArray]] = []
    sent_key: list[bytes] = []
    for kind, group, sel in by_kind_group:
        if peer is None:
            continue
        # bytes each device sends and the latency steps of the link's algorithm
        # (ring, one_shot, two_shot, or auto = the cheapest per message)
        bw = peer.effective_bandwidth_bytes_per_s
        # priced once per distinct message size (a decode step repeats a few sizes)
        sizes, inverse = memo(
            "graph_facts", ("message_sizes", id(sel)), partial(_unique_sizes, cg, sel), pin=sel
        )
        sent_u, lat_u, _ = cost.collective_cost_array(
            kind,
            sizes,
            group=group,
            algorithm=peer.collective_algorithm,
            bandwidth=bw,
            latency=peer.latency_s,
        )
        sent, steps_lat = sent_u[inverse], lat_u[inverse]
        link_sec = (sent_u / bw)[inverse]
        for r in ids:
            dem.demand[r, sel] += link_sec
            dem.active[r] = True
        op_latency[sel] = np.maximum(op_latency[sel], steps_lat)
        sent_by_batch.append((sel, sent))
        sent_key.append(sent_u.tobytes())
    if sent_by_batch and ids:
        # the bytes each device sends (shared by the points that send the same)
        base = dem.written
        key = ("collective_bytes", id(base), ids, tuple(sent_key))
        dem.written = memo(
            "op_tables", key, partial(_collective_written, base, ids, sent_by_batch), pin=base
        )


def _unique_sizes(cg: CompiledGraph, sel: IntArray) -> tuple[FloatArray, IntArray]:
    """The distinct message sizes of the collectives ``sel``, and each one's index."""
    sizes, inverse = np.unique(cg.coll_bytes[sel], return_inverse=True)
    return sizes, inverse.reshape(-1)


def _collective_written(
    base: FloatArray, ids: tuple[int, ...], sent_by_batch: list[tuple[IntArray, FloatArray]]
) -> FloatArray:
    """``base`` plus the bytes each collective sends, split over the link's directions."""
    written = base.copy()
    for sel, sent in sent_by_batch:
        for r in ids:
            written[r, sel] += sent / len(ids)
    written.setflags(write=False)
    return written


@dataclass(frozen=True, slots=True, kw_only=True)
class Groups:
    """Step 8: per group (unit of execution) its demand, latency, overhead and solo time."""

    demand: FloatArray  # (R, G)
    latency: FloatArray
    overhead: FloatArray
    duration: FloatArray
    lane: IntArray
    deps: tuple[tuple[int, ...], ...]
    sequential: bool


def _groups(
    cg: CompiledGraph,
    execution: str,
    lay: Layout,
    op_demand: FloatArray,
    op_latency: FloatArray,
    overhead: FloatArray,
    work: FloatArray,
    active_res: tuple[int, ...],
) -> Groups:
    """Sum the ops of each group (``dataflow``: a pipeline) and find what each waits for."""
    n, n_res = cg.n_ops, op_demand.shape[0]
    group_start = lay.group_start
    if n and execution == "kernel":
        group_demand, group_latency, group_overhead = op_demand, op_latency, overhead
        group_duration = np.maximum(overhead, op_latency + work)
    elif n:
        group_demand = np.add.reduceat(op_demand, group_start, axis=1)
        group_latency = np.maximum.reduceat(op_latency, group_start)
        group_overhead = overhead[group_start]
        group_work = max_over_rows(group_demand, active_res)
        group_duration = np.maximum(group_overhead, group_latency + group_work)
    else:
        group_demand = np.zeros((n_res, 0))
        group_latency = group_overhead = group_duration = np.zeros(0)
    group_lane = cg.stage[group_start] if n else np.zeros(0, dtype=np.int64)
    deps, sequential = _group_deps(cg, lay, group_lane)
    return Groups(
        demand=group_demand,
        latency=group_latency,
        overhead=group_overhead,
        duration=group_duration,
        lane=group_lane,
        deps=deps,
        sequential=sequential,
    )


def _group_deps(
    cg: CompiledGraph, lay: Layout, group_lane: IntArray
) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """The groups each group waits for, and whether they form one chain in index order."""
    n_groups = len(lay.group_start)
    if cg.sequential:
        # every op waits for the previous one: a chain. Inside a lane the order is
        # implicit; where the chain crosses to another lane (pipeline stage) the group
        # must wait for its predecessor explicitly, else the lanes would run at once.
        if n_groups > 1 and np.any(group_lane[1:] != group_lane[:-1]):
            cross = np.flatnonzero(group_lane[1:] != group_lane[:-1]) + 1
            chain: list[tuple[int, ...]] = [()] * n_groups
            for gi in cross.tolist():
                chain[gi] = (gi - 1,)
            return tuple(chain), True
        return (), True
    deps_list = []
    for gi in range(n_groups):
        first = int(lay.group_start[gi])
        last = int(lay.group_start[gi + 1]) if gi + 1 < n_groups else cg.n_ops
        ds = {int(lay.op_group[d]) for i in range(first, last) for d in cg.deps[i]}
        ds.discard(gi)
        deps_list.append(tuple(sorted(ds)))
    return tuple(deps_list), False


def _check_plan_inputs(system: System, cg: CompiledGraph, execution: str) -> None:
    if execution not in EXECUTIONS:
        raise SpecError(
            [
                Problem(
                    "execution", f"unknown execution model {execution!r} (known: kernel, dataflow)"
                )
            ]
        )
    if cg.tp > system.devices:
        raise SpecError(
            [
                Problem(
                    "tp",
                    f"the graph is sharded over {cg.tp} devices, "
                    f"{system.name} has {system.devices}",
                )
            ]
        )


def build_plan(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    execution: str,
    *,
    dram_config: ControllerConfig | None = None,
) -> Plan:
    """The :class:`Plan` of ``cg`` on ``system`` under ``placement`` and ``execution``.

    The steps, in order: resources, routes (how compute reaches each tier), compute
    (time per op), layout (where each access goes), demand (per resource and op),
    request-fidelity tiers, collectives, groups, DMA jobs.

    Tiers with ``fidelity: request`` take their bandwidth and latency from the DRAM
    controller configured by ``dram_config`` (see :mod:`memsim.request_fidelity`).
    """
    _check_plan_inputs(system, cg, execution)
    tp = cg.tp
    res = _resources(system)
    routes = _tier_routes(system, res, tp)
    comp = _compute_cost(system, cg, res)
    # where each access goes: cached per (graph, placement, execution, granularity,
    # tiling), so a sweep over bandwidths and FLOP/s reuses it
    lay = _layout(system, cg, placement, execution, res.tier_names, routes.granularity, comp.tiling)
    dem = _access_demand(cg, res, routes, lay, comp)
    _flash_request_sizes(system, cg, placement, res, lay, dem, tp)
    _reroute_attached_units(system, cg, res, routes, lay, comp, dem, tp)
    calibration = _request_fidelity(system, cg, placement, res, routes, lay, dem, tp, dram_config)
    _apply_calibrated(comp, res, dem)
    op_latency = dem.tier_latency.max(axis=0) if cg.n_ops else np.zeros(0)
    if comp.profile is not None:  # the runtime's per-step overhead, before each step's first op
        op_latency[_step_starts(cg)] += comp.profile.step_overhead_s
    _collectives(system, cg, res, dem, op_latency)
    if comp.serial is not None and cg.n_ops:  # dataflow units' per-kernel cost, serial: after
        op_latency = op_latency + comp.serial  # a collective's steps, never hidden by them
    active_res = tuple(np.flatnonzero(dem.active).tolist())
    work = max_over_rows(dem.demand, active_res)
    overhead = _launch_overhead(cg, comp, execution, op_latency, work)
    grp = _groups(cg, execution, lay, dem.demand, op_latency, overhead, work, active_res)
    dma_routes, jobs = _dma_jobs(system, cg, placement, res, lay.op_group, tp, calibration)
    return Plan(
        system=system,
        cg=cg,
        placement=placement,
        execution=execution,
        tp=tp,
        resources=res.resources,
        tier_names=res.tier_names,
        tier_res=np.asarray(res.tier_res, dtype=np.int64),
        link_names=res.link_names,
        link_res=res.link_res,
        tier_links=routes.links,
        op_unit=comp.op_unit,
        op_demand=dem.demand,
        op_latency=op_latency,
        op_overhead=overhead,
        acc_tier=lay.acc_tier,
        acc_moved=lay.moved,
        tensor_tier=lay.tensor_tier,
        tensor_home=lay.tensor_home,
        layout=lay,
        res_bytes_read=dem.read,
        res_bytes_written=dem.written,
        group_start=lay.group_start,
        op_group=lay.op_group,
        group_demand=grp.demand,
        group_duration=grp.duration,
        group_latency=grp.latency,
        group_overhead=grp.overhead,
        group_lane=grp.lane,
        group_deps=grp.deps,
        group_sequential=grp.sequential,
        jobs=jobs,
        routes=dma_routes,
        tier_calibration=calibration,
        active_res=active_res,
        op_work=work,
    )


def max_over_rows(demand: FloatArray, rows: tuple[int, ...]) -> FloatArray:
    """``demand.max(axis=0)`` when every row not in ``rows`` is 0 (demand is >= 0)."""
    if not rows or not demand.shape[1]:
        return np.asarray(
            demand.max(axis=0, initial=0.0) if demand.shape[0] else np.zeros(demand.shape[1])
        )
    out = demand[rows[0]].copy()
    for r in rows[1:]:
        np.maximum(out, demand[r], out=out)
    return out


def _launch_overhead(
    cg: CompiledGraph,
    comp: ComputeCost,
    execution: str,
    op_latency: FloatArray,
    work: FloatArray,
) -> FloatArray:
    """Per-op launch floor: eager launches pipelined with the device, else as priced.

    Under an eager engine profile the host launches kernels ahead of the device
    (:func:`memsim.cost.eager_pipeline_durations`), per step of a one-stage graph run
    kernel by kernel; the floor becomes each op's pipelined duration, so its solo
    duration ``max(floor, latency + demand)`` is that duration.
    """
    eager = comp.profile is not None and comp.profile.launch == "eager"
    if not eager or execution != "kernel" or not cg.n_ops or int(cg.stage.max()) > 0:
        return comp.overhead
    device = op_latency + work
    return cost.eager_pipeline_durations(comp.overhead, device, _step_starts(cg))


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


def _layout(
    system: System,
    cg: CompiledGraph,
    placement: Placement,
    execution: str,
    tier_names: tuple[str, ...],
    gran: FloatArray,
    tiling: FloatArray,
) -> Layout:
    """Memoised in the active :class:`~memsim.memo.SimCache` (pure: a function of the key)."""
    srams = tuple(
        (t, system.tiers[t].capacity_bytes) for t in tier_names if system.tiers[t].kind == "sram"
    )
    # the graph and placement by identity (both frozen; the placement is memoised per
    # graph and capacities, so a sweep over bandwidths and FLOP/s hits this entry)
    key = (
        id(cg),
        id(placement),
        execution,
        tier_names,
        gran.tobytes(),
        srams,
        hash(tiling.tobytes()),
    )
    return memo(
        "layout",
        key,
        lambda: _compute_layout(system, cg, placement, execution, tier_names, gran, tiling),
        pin=(cg, placement),
    )


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
    res: ResourceTable,
    op_group: IntArray,
    tp: int,
    calibration: Mapping[str, TierCalibration],
) -> tuple[tuple[Route, ...], tuple[DMAJob, ...]]:
    """Step 9: one fetch / write-back job per segment that uses staged tensors."""
    if not placement.staged:
        return (), ()
    tier_names, tier_res, n_res = res.tier_names, res.tier_res, len(res.resources)
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
                r = res.link_dir_res(name, direction)
                hops.append(
                    (r, _link_shared(system, name, tp) / lk.effective_bandwidth_bytes_per_s)
                )
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
