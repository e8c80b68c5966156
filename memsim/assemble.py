"""Turn a schedule (group and DMA start/end times) into a :class:`SimResult`.

Both fidelities produce a :class:`Schedule`; everything derived from it (per-op
records, bounds, traffic, tier and link totals, energy, LLM metrics) is computed
here once, so the two fidelities cannot disagree in their bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from memsim.compiled import CompiledGraph, FloatArray, IntArray
from memsim.dataflow import transient_spans
from memsim.memo import memo
from memsim.plan import Plan, Resource, max_over_rows, op_range
from memsim.result import Coded, LinkStats, SimResult, TierStats, Transfer, peak_of, stepwise
from workloads.graph import GraphMeta


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """When each group and each DMA transfer ran, and the tiers' allocation events."""

    group_t0: FloatArray
    group_t1: FloatArray
    fetch_t0: FloatArray
    fetch_t1: FloatArray
    wb_t0: FloatArray
    wb_t1: FloatArray
    occ_time: FloatArray
    occ_tier: IntArray
    occ_delta: FloatArray


def occupancy_events(
    plan: Plan,
    group_t0: FloatArray,
    group_t1: FloatArray,
    fetch_t0: FloatArray,
    wb_t1: FloatArray,
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Allocation events (time, tier, +/- bytes), sorted by time with frees first.

    Persistent tensors occupy their home tier from time 0; transient ones their
    tier from the start of the group of their first use to the end of the group
    of their last use, except, in ``dataflow`` execution, the on-chip intervals:
    a group holds their peak in SRAM while it runs and a tensor keeps its tier
    only over its off-chip accesses (:func:`memsim.dataflow.transient_spans`);
    a staging buffer from its fetch's start to the end of its
    segment (read-only data) or to the end of its write-back. Host tiers hold
    the ``tp`` shards.
    """
    t, k, d, _ = _occupancy_events(plan, group_t0, group_t1, fetch_t0, wb_t1)
    return t, k, d


def _occupancy_events(
    plan: Plan,
    group_t0: FloatArray,
    group_t1: FloatArray,
    fetch_t0: FloatArray,
    wb_t1: FloatArray,
) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """:func:`occupancy_events` plus the pipeline stage of each event (-1: a host tier)."""
    cg = plan.cg
    t_stage = np.zeros(len(cg.tensor_names), dtype=np.int64)  # unused tensors: stage 0
    used = cg.first_use >= 0
    t_stage[used] = cg.stage[cg.first_use[used]]
    g_stage = np.zeros(len(group_t0), dtype=np.int64)
    g_stage[plan.op_group] = cg.stage
    stages: list[IntArray] = []
    mult = np.array(
        [plan.tp if plan.system.tiers[t].scope == "host" else 1 for t in plan.tier_names], float
    )
    staged = np.zeros(len(cg.tensor_names), dtype=bool)
    for name in plan.placement.staged:
        staged[cg.tensor_index[name]] = True
    times: list[FloatArray] = []
    tiers: list[IntArray] = []
    deltas: list[FloatArray] = []
    pers = cg.t_persistent | staged
    times.append(np.zeros(int(pers.sum())))
    tiers.append(plan.tensor_home[pers])
    deltas.append(cg.t_bytes[pers])
    stages.append(t_stage[pers])
    g0, g1, tr_tier, tr_bytes = transient_spans(
        cg,
        tensor_tier=plan.tensor_tier,
        staged_mask=staged,
        op_group=plan.op_group,
        onchip=plan.layout.onchip,
    )
    if g0.size:
        times += [group_t0[g0], group_t1[g1]]
        tiers += [tr_tier, tr_tier]
        deltas += [tr_bytes, -tr_bytes]
        stages += [g_stage[g0], g_stage[g0]]
    for j, job in enumerate(plan.jobs):
        held = list(job.fetch_tensors) + list(job.produce_tensors)
        if not held:
            continue
        wb = set(job.writeback_tensors)
        size = float(cg.t_bytes[held].sum())
        kept = float(cg.t_bytes[list(wb)].sum()) if wb else 0.0
        times.append(np.array([fetch_t0[j], group_t1[job.last_group]]))
        tiers.append(np.array([job.stage_tier, job.stage_tier]))
        deltas.append(np.array([size, -(size - kept)]))
        stages.append(np.full(2, g_stage[job.first_group]))
        if wb:
            times.append(np.array([wb_t1[j]]))
            tiers.append(np.array([job.stage_tier]))
            deltas.append(np.array([-kept]))
            stages.append(np.full(1, g_stage[job.first_group]))
    t = np.concatenate(times) if times else np.zeros(0)
    k = np.concatenate(tiers).astype(np.int64) if tiers else np.zeros(0, dtype=np.int64)
    d = np.concatenate(deltas) if deltas else np.zeros(0)
    d = d * mult[k]
    st = np.concatenate(stages).astype(np.int64) if stages else np.zeros(0, dtype=np.int64)
    host = np.array([plan.system.tiers[n].scope == "host" for n in plan.tier_names], bool)
    st = np.where(host[k], -1, st)
    order = np.lexsort((d > 0, t))
    return t[order], k[order], d[order], st[order]


class LazyMapping(Mapping[str, Any]):
    """A read-only mapping whose items are computed on first access (then kept).

    Sweeps read a result's summary, not its per-(op, resource) traffic table: the
    table is built only if something reads it, so the result's contents (and type)
    do not depend on a flag.
    """

    def __init__(self, make: Callable[[], Mapping[str, Any]]) -> None:
        self._make: Callable[[], Mapping[str, Any]] | None = make
        self._data: Mapping[str, Any] | None = None

    def _get(self) -> Mapping[str, Any]:
        if self._data is None:
            assert self._make is not None
            self._data, self._make = self._make(), None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a result sent to another process) as the plain dict it stands for."""
        return (dict, (dict(self._get()),))


def device_peaks(plan: Plan, sched: Schedule, peaks: FloatArray) -> FloatArray:
    """Per tier, the peak one device holds: a device-scope tier's largest peak over
    pipeline stages (each stage has its own devices); ``peaks`` (all stages
    together) for host tiers and single-stage graphs."""
    stage = plan.cg.stage
    if not stage.size or stage.min() == stage.max():
        return peaks
    t, k, d, st = _occupancy_events(
        plan, sched.group_t0, sched.group_t1, sched.fetch_t0, sched.wb_t1
    )
    out = peaks.copy()
    for ti, tname in enumerate(plan.tier_names):
        if plan.system.tiers[tname].scope != "device":
            continue
        sel = k == ti
        out[ti] = max(
            (peak_of(t[sel & (st == s)], d[sel & (st == s)]) for s in np.unique(st[sel])),
            default=0.0,
        )
    return out


def _code(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


def _bounds(plan: Plan) -> tuple[IntArray, list[str]]:
    """Bound label code per op (kernel: its own terms; dataflow: its group's)."""
    labels = ["compute", "overhead", "latency"]
    res_label = []
    for r in plan.resources:
        lab = "compute" if r.kind == "compute" else r.label
        if lab not in labels:
            labels.append(lab)
        res_label.append(labels.index(lab))
    res_label_arr = np.asarray(res_label, dtype=np.int64)
    if plan.execution == "kernel":
        dem, lat, ovh = plan.op_demand, plan.op_latency, plan.op_overhead
        work = plan.op_work
    else:
        dem, lat, ovh = plan.group_demand, plan.group_latency, plan.group_overhead
        work = max_over_rows(dem, plan.active_res)
    if dem.shape[1] == 0:
        return np.zeros(0, dtype=np.int64), labels
    # the first resource reaching the max wins; rows not in active_res are 0, and the
    # first row (a compute unit, always active) wins where every demand is 0
    rows = plan.active_res or tuple(range(dem.shape[0]))
    code = np.zeros(dem.shape[1], dtype=np.int64)
    for ri in rows[::-1]:
        np.copyto(code, res_label_arr[ri], where=dem[ri] == work)
    code = np.where(lat > work, 2, code)
    code = np.where(ovh >= lat + work, 1, code)
    if plan.execution != "kernel":
        code = code[plan.op_group]
    return code, labels


def build_result(
    plan: Plan,
    sched: Schedule,
    *,
    fidelity: str,
    seed: int,
    meta: Mapping[str, Any],
    detail: str = "full",
) -> SimResult:
    """The :class:`SimResult` of ``plan`` executed as ``sched``.

    The steps, in order: op times, the per-op table, traffic (per resource and DMA),
    busy time, energy, tiers and links, LLM metrics. ``detail="summary"`` computes the
    same summary (the same arithmetic on the same arrays) but keeps no per-op table,
    traffic table or occupancy step functions, and nothing of ``plan`` or ``sched``.
    """
    from memsim import __version__

    system = plan.system
    summary_only = detail == "summary"
    start, end = _op_times(plan, sched, copy=not summary_only)
    makespan = float(
        max(
            end.max(initial=0.0),
            sched.fetch_t1.max(initial=0.0) if sched.fetch_t1.size else 0.0,
            np.nanmax(sched.wb_t1, initial=0.0) if sched.wb_t1.size else 0.0,
        )
    )
    off_read, off_write, intensity = _offchip_columns(plan)
    code, labels = _bounds(plan)
    dma = _dma_transfers(plan, sched)
    busy = _busy(plan)
    energy = _energy(plan, dma, makespan)
    energy_rows = tuple((c, k, p, float(e)) for (c, k, p), e in energy.items() if e)
    occupancy, tiers, links = _tiers_and_links(plan, sched, dma, busy, energy)
    duration = end - start
    metrics = _llm_metrics(
        plan,
        _OpFigures(
            start=start,
            end=end,
            duration=duration,
            bound=Coded(codes=code, names=tuple(labels)),
            off_read=off_read,
            off_write=off_write,
        ),
        makespan,
        energy_rows,
        meta,
        busy,
    )
    ops: Mapping[str, np.ndarray | Coded]
    traffic: Mapping[str, Any]
    if summary_only:  # nothing per op is kept (the plan is not referenced either)
        ops, traffic, occupancy = {}, {}, {}
    else:
        offchip = (off_read, off_write, intensity)
        ops = _ops_table(plan, (start, end, duration), offchip, (code, labels))
        # per-op tables, built when read from the bytes tables alone (not the whole plan,
        # which the result then does not keep alive)
        traffic = LazyMapping(
            partial(
                _traffic,
                plan.cg.n_ops,
                plan.resources,
                plan.res_bytes_read,
                plan.res_bytes_written,
                dma.rows,
            )
        )
    full_meta = {
        "system": system.name,
        "system_hash": system.spec_hash,
        "model": GraphMeta.of(meta).model,
        "graph_hash": plan.cg.fingerprint,
        "version": __version__,
        "seed": seed,
        "fidelity": fidelity,
        "policy": plan.placement.policy,
        "execution": plan.execution,
        # tp x pipeline stages x data-parallel ranks (training graphs' ``dp``)
        "devices": plan.tp
        * (int(plan.cg.stage.max()) + 1 if plan.cg.n_ops else 1)
        * int(meta.get("dp", 1)),
    }
    return SimResult(
        system=system,
        graph_meta=dict(meta),
        fidelity=fidelity,
        execution=plan.execution,
        policy=plan.placement.policy,
        seed=seed,
        version=__version__,
        makespan_s=makespan,
        ops=ops,
        traffic=traffic,
        tiers=tiers,
        links=links,
        occupancy=occupancy,
        transfers=dma.transfers,
        energy=energy_rows,
        metrics=metrics,
        meta=full_meta,
        detail=detail,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _OpFigures:
    """The per-op arrays the LLM metrics read (the same in both details)."""

    start: FloatArray
    end: FloatArray
    duration: FloatArray
    bound: Coded
    off_read: FloatArray
    off_write: FloatArray


def _op_times(plan: Plan, sched: Schedule, *, copy: bool = True) -> tuple[FloatArray, FloatArray]:
    """Op start and end: a group's span shared by its ops in proportion to their solo work.

    ``copy=False``: one op per group returns the schedule's own arrays (not kept).
    """
    n = plan.cg.n_ops
    if not n:
        return np.zeros(0), np.zeros(0)
    if plan.n_groups == n:  # one op per group (kernel execution): the group's own span
        if not copy:
            return sched.group_t0, sched.group_t1
        return sched.group_t0.copy(), sched.group_t1.copy()
    solo = plan.op_latency + plan.op_work
    solo = np.maximum(solo, plan.op_overhead if plan.execution == "kernel" else 0.0)
    g = plan.op_group
    tot = np.bincount(g, weights=solo, minlength=plan.n_groups)
    count = np.bincount(g, minlength=plan.n_groups).astype(float)
    share = np.where(tot[g] > 0, solo / np.where(tot[g] > 0, tot[g], 1.0), 1.0 / count[g])
    cum = np.cumsum(share)
    first_cum = cum[plan.group_start] - share[plan.group_start]
    frac1 = cum - first_cum[g]
    frac0 = frac1 - share
    span = sched.group_t1 - sched.group_t0
    start = sched.group_t0[g] + frac0 * span[g]
    end = sched.group_t0[g] + frac1 * span[g]
    end[np.r_[plan.group_start[1:] - 1, n - 1]] = sched.group_t1
    return start, end


def _offchip_columns(plan: Plan) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per op: off-chip bytes read and written, and intensity (read-only, memoised)."""
    cg, system = plan.cg, plan.system
    offchip_res = tuple(
        r.kind == "tier" and system.tiers[str(r.tier)].kind != "sram" for r in plan.resources
    )
    read, written = plan.res_bytes_read, plan.res_bytes_written
    # bandwidth- and FLOP/s-free: shared by the points of a sweep (the bytes tables are)
    return memo(
        "op_tables",
        ("offchip", id(read), id(written), id(cg), offchip_res),
        lambda: _offchip(cg, read, written, np.array(offchip_res, dtype=bool)),
        pin=(read, written, cg),
    )


def _ops_table(
    plan: Plan,
    times: tuple[FloatArray, FloatArray, FloatArray],
    offchip: tuple[FloatArray, FloatArray, FloatArray],
    bounds: tuple[IntArray, list[str]],
) -> dict[str, np.ndarray | Coded]:
    """The per-op columns: identity, times, FLOPs, off-chip bytes, intensity, bound."""
    cg = plan.cg
    start, end, duration = times
    off_read, off_write, intensity = offchip
    code, labels = bounds
    unit_names = tuple(r.name.split(":", 1)[1] for r in plan.resources)
    index = op_range(cg)
    ops: dict[str, np.ndarray | Coded] = {
        "op": index,
        "name": Coded(codes=index, names=cg.op_names),
        "kind": Coded(codes=cg.kind, names=cg.kind_names),
        "phase": Coded(codes=cg.phase, names=cg.phase_names),
        "layer": cg.layer,
        "step": cg.step,
        "stage": cg.stage,
        "device": cg.stage,
        "unit": Coded(codes=plan.op_unit, names=unit_names),
        "dtype": Coded(codes=cg.dtype, names=cg.dtype_names),
        "start_s": start,
        "end_s": end,
        "duration_s": duration,
        "flops": cg.flops,
        "bytes_read": off_read,
        "bytes_written": off_write,
        "intensity_flop_per_byte": intensity,
        "bound": Coded(codes=code, names=tuple(labels)),
    }
    for arr in ops.values():
        if isinstance(arr, np.ndarray):
            arr.setflags(write=False)
    return ops


def _offchip(
    cg: CompiledGraph, read: FloatArray, written: FloatArray, offchip_res: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per op: off-chip bytes read and written, and FLOPs per off-chip byte (read-only)."""
    n = cg.n_ops
    off_read = read[offchip_res].sum(axis=0) if n else np.zeros(0)
    off_write = written[offchip_res].sum(axis=0) if n else np.zeros(0)
    moved = off_read + off_write
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(moved > 0, cg.flops / np.where(moved > 0, moved, 1.0), np.inf)
    for arr in (off_read, off_write, intensity):
        arr.setflags(write=False)
    return off_read, off_write, intensity


@dataclass(slots=True, kw_only=True)
class DMATotals:
    """What the DMA jobs moved: transfers, bytes per tier and link, traffic rows, energy."""

    transfers: tuple[Transfer, ...]
    tier_read: FloatArray
    tier_written: FloatArray
    link_bytes: FloatArray
    rows: list[tuple[str, float, float]]  # (resource label, bytes read, bytes written)
    energy: dict[tuple[str, str, str], float]


def _dma_transfers(plan: Plan, sched: Schedule) -> DMATotals:
    """Every DMA transfer with its times, and what it moved through tiers and links."""
    cg, system = plan.cg, plan.system
    transfers: list[Transfer] = []
    out = DMATotals(
        transfers=(),
        tier_read=np.zeros(len(plan.tier_names)),
        tier_written=np.zeros(len(plan.tier_names)),
        link_bytes=np.zeros(len(plan.link_names)),
        rows=[],
        energy={},
    )
    res_to_link = {r: li for li, ids in enumerate(plan.link_res) for r in ids}
    energy = out.energy
    for j, job in enumerate(plan.jobs):
        phase = cg.phase_names[cg.phase[plan.group_start[job.first_group]]]
        for parts, t0, t1, engine, tensors in (
            (job.fetch, sched.fetch_t0[j], sched.fetch_t1[j], "dma:prefetch", job.fetch_tensors),
            (job.writeback, sched.wb_t0[j], sched.wb_t1[j], "dma:writeback", job.writeback_tensors),
        ):
            kind = cg.t_kind[tensors[0]] if tensors else "activation"
            for route_id, nbytes in parts:
                rt = plan.routes[route_id]
                src, dst = plan.tier_names[rt.src], plan.tier_names[rt.dst]
                label = f"{engine.split(':')[1]} seg {job.segment}"
                transfers.append(
                    Transfer(
                        engine=engine,
                        job=j,
                        start_s=float(t0),
                        end_s=float(t1),
                        bytes=nbytes,
                        src=src,
                        dst=dst,
                        phase=phase,
                        label=label,
                    )
                )
                out.tier_read[rt.src] += nbytes
                out.tier_written[rt.dst] += nbytes
                out.rows += [(f"tier:{src}", nbytes, 0.0), (f"tier:{dst}", 0.0, nbytes)]
                for r in rt.links:
                    li = res_to_link[r]
                    out.link_bytes[li] += nbytes
                    out.rows.append((f"link:{plan.link_names[li]}", 0.0, nbytes))
                    e = nbytes * system.links[plan.link_names[li]].energy_j_per_byte * plan.tp
                    key = (f"link:{plan.link_names[li]}", kind, phase)
                    energy[key] = energy.get(key, 0.0) + e
                for tname, e in (
                    (src, nbytes * system.tiers[src].read_energy_j_per_byte),
                    (dst, nbytes * system.tiers[dst].write_energy),
                ):
                    key = (f"tier:{tname}", kind, phase)
                    energy[key] = energy.get(key, 0.0) + e * plan.tp
    out.transfers = tuple(transfers)
    return out


def _traffic(
    n: int,
    resources: tuple[Resource, ...],
    res_bytes_read: FloatArray,
    res_bytes_written: FloatArray,
    dma_rows: list[tuple[str, float, float]],
) -> dict[str, Any]:
    """(op, resource) bytes aggregated per resource label, plus the DMA rows (op -1)."""
    labels_res = [r.label for r in resources]
    io_res = [i for i, r in enumerate(resources) if r.kind != "compute"]
    uniq = sorted({labels_res[i] for i in io_res}, key=labels_res.index)
    per_label_r = np.zeros((len(uniq), n))
    per_label_w = np.zeros((len(uniq), n))
    for i in io_res:
        j = uniq.index(labels_res[i])
        per_label_r[j] += res_bytes_read[i]
        per_label_w[j] += res_bytes_written[i]
    res_names = list(uniq)
    codes = np.array([_code(res_names, label) for label, _, _ in dma_rows], dtype=np.int64)
    return {
        "labels": tuple(res_names),
        "read": per_label_r,
        "written": per_label_w,
        "dma_op": np.full(len(dma_rows), -1, dtype=np.int64),
        "dma_resource": codes,
        "dma_read": np.array([r for _, r, _ in dma_rows], dtype=float),
        "dma_written": np.array([w for _, _, w in dma_rows], dtype=float),
    }


def _busy(plan: Plan) -> FloatArray:
    """Busy seconds per resource: the ops' demand plus the DMA jobs' demand."""
    if plan.cg.n_ops and plan.active_res:  # rows not in active_res are 0
        busy = np.zeros(len(plan.resources))
        rows = list(plan.active_res)
        busy[rows] = plan.op_demand[rows].sum(axis=1)
    else:
        busy = plan.op_demand.sum(axis=1) if plan.cg.n_ops else np.zeros(len(plan.resources))
    for job in plan.jobs:
        busy = busy + job.fetch_demand + job.writeback_demand
    return busy


def _energy(plan: Plan, dma: DMATotals, makespan: float) -> dict[tuple[str, str, str], float]:
    """Joules per (component, tensor kind, phase): accesses, DMA, collectives, FLOPs, static."""
    cg, system = plan.cg, plan.system
    energy: dict[tuple[str, str, str], float] = dict(dma.energy)
    n_ph = len(cg.phase_names)
    kind_list = list(plan.layout.kind_names)
    if cg.acc_op.size:
        moved_by = plan.layout.energy_bytes * plan.tp
        for ti, tname in enumerate(plan.tier_names):
            spec = system.tiers[tname]
            per = (
                moved_by[ti, 0] * spec.read_energy_j_per_byte + moved_by[ti, 1] * spec.write_energy
            )
            by_bytes = moved_by[ti, 0] + moved_by[ti, 1]
            for kk in np.flatnonzero(by_bytes):
                comp = (f"tier:{tname}", kind_list[kk // n_ph], cg.phase_names[kk % n_ph])
                energy[comp] = energy.get(comp, 0.0) + float(per[kk])
                for li in plan.tier_links[ti]:
                    lk = system.links[plan.link_names[li]]
                    lc = (f"link:{plan.link_names[li]}", comp[1], comp[2])
                    energy[lc] = energy.get(lc, 0.0) + float(by_bytes[kk]) * lk.energy_j_per_byte
    written = plan.res_bytes_written
    sent_by_phase = memo(
        "op_tables",
        ("collective_sent", id(cg), id(written), plan.link_res),
        lambda: _collective_sent(cg, written, plan.link_res),
        pin=(cg, written),
    )
    for li, by_phase in sent_by_phase:
        lname = plan.link_names[li]
        for ph in np.flatnonzero(by_phase):
            comp = (f"link:{lname}", "collective", cg.phase_names[ph])
            e = float(by_phase[ph]) * system.links[lname].energy_j_per_byte * plan.tp
            energy[comp] = energy.get(comp, 0.0) + e
    on_unit = memo(
        "graph_facts",
        ("flops_on_unit", id(cg), id(plan.op_unit)),
        lambda: _flops_on_unit(cg, plan.op_unit, len(system.compute)),
        pin=(cg, plan.op_unit),
    )
    for ui, uname in enumerate(system.compute):
        unit = system.compute[uname]
        mine = on_unit[ui]
        if (unit.energy_j_per_flop or unit.energy_j_per_flop_by_dtype) and mine is not None:
            flops, dtype, phase = mine
            j_per_flop = np.array([unit.energy_per_flop(d) for d in cg.dtype_names])
            joules = flops * j_per_flop[dtype]
            per = np.bincount(phase, weights=joules, minlength=n_ph)
            for p in np.flatnonzero(per):
                comp = (f"compute:{uname}", "none", cg.phase_names[p])
                energy[comp] = float(per[p]) * plan.tp
    static = sum(
        t.background_power_w * (plan.tp if t.scope == "device" else 1)
        for t in system.tiers.values()
    ) + sum(u.idle_power_w * plan.tp for u in system.compute.values())
    if static:
        energy[("static", "none", "all")] = static * makespan
    return energy


def _link_total(read: FloatArray, written: FloatArray, ids: list[int]) -> float:
    """Bytes through a link's resources (both directions), all ops."""
    return float(read[ids].sum() + written[ids].sum())


def _collective_sent(
    cg: CompiledGraph, written: FloatArray, link_res: tuple[tuple[int, ...], ...]
) -> list[tuple[int, FloatArray]]:
    """Per link: the bytes its collective ops wrote, by phase (bandwidth-free)."""
    coll = np.flatnonzero(cg.coll_bytes > 0)
    out: list[tuple[int, FloatArray]] = []
    if not coll.size:
        return out
    for li, ids in enumerate(link_res):
        rows = np.asarray(ids, dtype=np.int64)
        sent = written[np.ix_(rows, coll)].sum(axis=0)
        by_phase = np.bincount(cg.phase[coll], weights=sent, minlength=len(cg.phase_names))
        out.append((li, np.asarray(by_phase, dtype=np.float64)))
    return out


def _flops_on_unit(
    cg: CompiledGraph, op_unit: IntArray, n_units: int
) -> list[tuple[FloatArray, IntArray, IntArray] | None]:
    """Per compute unit: the FLOPs, dtype and phase of its ops (None: no op)."""
    out: list[tuple[FloatArray, IntArray, IntArray] | None] = []
    for ui in range(n_units):
        sel = op_unit == ui
        if sel.all():  # one unit runs every op: the graph's own arrays, not copies
            out.append((cg.flops, cg.dtype, cg.phase))
        else:
            out.append((cg.flops[sel], cg.dtype[sel], cg.phase[sel]) if sel.any() else None)
    return out


def _tiers_and_links(
    plan: Plan,
    sched: Schedule,
    dma: DMATotals,
    busy: FloatArray,
    energy: Mapping[tuple[str, str, str], float],
) -> tuple[Mapping[str, Any], tuple[TierStats, ...], tuple[LinkStats, ...]]:
    """Occupancy per tier, and each tier's and link's totals (bytes, busy, peak, energy)."""
    system = plan.system
    peaks = np.zeros(len(plan.tier_names))
    occ_time, occ_tier, occ_delta = sched.occ_time, sched.occ_tier, sched.occ_delta
    for ti in range(len(plan.tier_names)):
        sel = occ_tier == ti
        peaks[ti] = peak_of(occ_time[sel], occ_delta[sel])
    # the step functions (a frame's worth per tier) are built when read
    names = plan.tier_names
    occupancy = LazyMapping(
        lambda: {
            tname: stepwise(occ_time[occ_tier == ti], occ_delta[occ_tier == ti])
            for ti, tname in enumerate(names)
        }
    )
    read, written = plan.res_bytes_read, plan.res_bytes_written
    read_sum, written_sum = memo(
        "op_tables",
        ("row_sums", id(read), id(written)),
        lambda: (
            [float(read[r].sum()) for r in range(read.shape[0])],
            [float(written[r].sum()) for r in range(written.shape[0])],
        ),
        pin=(read, written),
    )
    # occupancy (the frame) is all stages together; peak_bytes is per device
    peaks = device_peaks(plan, sched, peaks)
    tier_energy: dict[str, float] = {}
    link_energy: dict[str, float] = {}
    for (c, _k, _p), e in energy.items():
        if c.startswith("tier:"):
            tier_energy[c[5:]] = tier_energy.get(c[5:], 0.0) + e
        elif c.startswith("link:"):
            link_energy[c[5:]] = link_energy.get(c[5:], 0.0) + e
    tiers = []
    for ti, tname in enumerate(plan.tier_names):
        spec = system.tiers[tname]
        r = plan.tier_res[ti]
        tiers.append(
            TierStats(
                tier=tname,
                kind=spec.kind,
                capacity_bytes=spec.capacity_bytes,
                instances=system.tier_instances(tname),
                bytes_read=read_sum[r] + dma.tier_read[ti],
                bytes_written=written_sum[r] + dma.tier_written[ti],
                busy_s=float(busy[r]),
                peak_bytes=float(peaks[ti]),
                energy_j=tier_energy.get(tname, 0.0),
                peak_bandwidth_bytes_per_s=spec.read_bandwidth_bytes_per_s,
            )
        )
    links = []
    for li, lname in enumerate(plan.link_names):
        ids = list(plan.link_res[li])
        lk = system.links[lname]
        nbytes: float = memo(
            "op_tables",
            ("link_bytes", id(read), id(written), tuple(ids)),
            partial(_link_total, read, written, ids),
            pin=(read, written),
        )
        links.append(
            LinkStats(
                link=lname,
                kind=lk.kind,
                bytes=nbytes + float(dma.link_bytes[li]),
                busy_s=float(busy[ids].max()),
                energy_j=link_energy.get(lname, 0.0),
                bandwidth_bytes_per_s=lk.bandwidth_bytes_per_s,
            )
        )
    return occupancy, tuple(tiers), tuple(links)


def _llm_metrics(
    plan: Plan,
    ops: _OpFigures,
    makespan: float,
    energy_rows: tuple[tuple[str, str, str, float], ...],
    meta: Mapping[str, Any],
    busy: np.ndarray,
) -> dict[str, Any]:
    cg = plan.cg
    end = ops.end
    start = ops.start
    facts = memo("graph_facts", ("llm_facts", id(cg)), lambda: _llm_facts(cg), pin=cg)
    pre, dec, steps, common, flops = facts
    ttft = float(end[pre].max()) if pre.size else None
    tpot = None
    if dec.size:
        t0 = ttft if ttft is not None else float(start[dec].min())
        tpot = (float(end[dec].max()) - t0) / max(steps, 1)
    info = GraphMeta.of(meta)
    batch, gen, tokens = info.batch, info.gen_len, info.tokens
    if tokens is None and batch is not None and gen is not None:
        tokens = batch * gen
    tokens_per_s = tokens / makespan if tokens and makespan > 0 else None
    bound = ops.bound
    duration = ops.duration
    per = np.bincount(bound.codes, weights=duration, minlength=len(bound.names))
    by_bound = {bound.names[i]: float(per[i]) for i in np.flatnonzero(per)}
    # The bottleneck is the busiest resource over the whole run (DMA streams included, so
    # a run that waits on a weight stream is bound by that stream's link), or the fixed
    # per-op overhead or latency when those add up to more.
    busiest: dict[str, float] = {
        k: by_bound[k] for k in ("overhead", "latency") if by_bound.get(k, 0.0) > 0
    }
    for r, res in enumerate(plan.resources):
        label = "compute" if res.kind == "compute" else res.label
        busiest[label] = max(busiest.get(label, 0.0), float(busy[r]))
    busiest = {k: v for k, v in busiest.items() if v > 0}
    bottleneck = max(busiest, key=lambda k: busiest[k]) if busiest else None
    dtype = info.dtype or common
    try:
        peak = plan.system.peak_flops_per_s(dtype)
    except KeyError:
        peak = float("nan")
    read, written = ops.off_read, ops.off_write
    offchip = memo(
        "op_tables",
        ("offchip_total", id(read), id(written)),
        lambda: float(np.sum(read) + np.sum(written)),
        pin=(read, written),
    )
    total_energy = float(sum(e for *_, e in energy_rows))
    return {
        "ttft_s": ttft,
        "tpot_s": tpot,
        "tokens_per_s": tokens_per_s,
        "energy_j": total_energy,
        "bottleneck": bottleneck,
        "bound_time_s": by_bound,
        "mfu": flops / (makespan * peak) if makespan > 0 else None,
        "achieved_bandwidth_bytes_per_s": offchip / makespan if makespan > 0 else None,
        "flops": flops * plan.tp,
        "offchip_bytes": offchip,
        "energy_per_token_j": total_energy / tokens if tokens else None,
    }


def _llm_facts(cg: CompiledGraph) -> tuple[IntArray, IntArray, int, str, float]:
    """Graph-only: prefill and decode ops, decode steps, the commonest dtype, FLOPs."""
    names = cg.phase_names
    pre = cg.phase == names.index("prefill") if "prefill" in names else np.zeros(cg.n_ops, bool)
    dec = cg.phase == names.index("decode") if "decode" in names else np.zeros(cg.n_ops, bool)
    steps = int(np.count_nonzero(np.bincount(cg.step[dec]))) if dec.any() else 0
    common = cg.dtype_names[int(np.bincount(cg.dtype).argmax())] if cg.n_ops else "bf16"
    return np.flatnonzero(pre), np.flatnonzero(dec), steps, common, float(cg.flops.sum())
