"""The event-driven executor: one simpy process per lane (device / pipeline stage).

Each lane runs its groups in order. A group waits for the groups it depends on
and for the DMA prefetch of its segment, allocates its transient tensors in
their tiers' pools, runs, frees what dies with it and hands finished segments
to the write-back engine.

Lanes: a sequential graph is one chain even when its groups sit on several
lanes (pipeline stages without micro-batches): the plan makes the first group
of each lane change wait for its predecessor.

Speed: where nothing can run concurrently (one lane or one chain, no DMA), a group's
duration is exactly its solo duration and the schedule is the analytic one:
:func:`schedule_event` then takes it from :func:`memsim.analytic.schedule_analytic`
without a simpy process, and checks the tiers' capacities over its occupancy events
as the pools would (same :class:`CapacityError`). Otherwise each group is
a flow in the processor-sharing :class:`~memsim.engine.channel.Fabric`, then
waits ``max(overhead - work, latency)``, which equals the solo duration
``max(overhead, latency + work)`` when it runs alone.

SPMD tensor parallelism: the graph is one device's shard and every device runs
the same shard at the same time, so one device is simulated; collectives are
costed as ring algorithms over the device link inside their op's demand, and
the barrier they imply is free because all devices arrive together. Host
tiers shared by the ``tp`` devices carry ``tp`` x the shard's demand.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from memsim.assemble import Schedule
from memsim.compiled import FloatArray
from memsim.dataflow import transient_spans
from memsim.engine.channel import Fabric
from memsim.engine.dma import DMAEngines
from memsim.engine.pool import Pool
from memsim.plan import Plan


def _transient_events(
    plan: Plan,
) -> tuple[dict[int, list[tuple[int, float]]], dict[int, list[tuple[int, float]]]]:
    """Per group: the (tier, bytes) allocated at its start and freed at its end.

    The same spans as the analytic path (:func:`memsim.dataflow.transient_spans`),
    host tiers holding the ``tp`` shards.
    """
    cg = plan.cg
    staged = np.zeros(len(cg.tensor_names), dtype=bool)
    for name in plan.placement.staged:
        staged[cg.tensor_index[name]] = True
    g0, g1, tier, size = transient_spans(
        cg,
        tensor_tier=plan.tensor_tier,
        staged_mask=staged,
        op_group=plan.op_group,
        onchip=plan.layout.onchip,
    )
    mult = np.array(
        [plan.tp if plan.system.tiers[t].scope == "host" else 1 for t in plan.tier_names], float
    )
    allocs: dict[int, list[tuple[int, float]]] = {}
    frees: dict[int, list[tuple[int, float]]] = {}
    sizes = (size * mult[tier]).tolist()
    for a, b, t, s in zip(g0.tolist(), g1.tolist(), tier.tolist(), sizes, strict=True):
        allocs.setdefault(a, []).append((t, s))
        frees.setdefault(b, []).append((t, s))
    return allocs, frees


Progress = Callable[[int, int], None]
"""A progress hook: called with (groups of ops done, groups in all) as the work goes."""


def schedule_event(plan: Plan, *, progress: Progress | None = None) -> Schedule:
    """Run ``plan`` in a fresh simpy environment; returns the observed schedule.

    Where nothing can contend (no DMA, and one lane or one chain of groups) the
    schedule is the analytic one, checked against the tiers' capacities.
    ``progress(done, total)`` is called as groups of ops finish (about 200 times in
    all, and once at the end); it must not touch the simulation.
    """
    total = plan.n_groups
    if not plan.jobs and (len(set(plan.group_lane.tolist())) <= 1 or plan.group_sequential):
        from memsim.analytic import schedule_analytic

        sched = schedule_analytic(plan)
        _check_capacity(plan, sched)
        if progress is not None:
            progress(total, total)
        return sched
    on_done = None
    if progress is not None:
        every = max(1, total // 200)
        count = [0]

        def on_done() -> None:
            count[0] += 1
            if count[0] % every == 0 or count[0] == total:
                progress(count[0], total)

    env, finish = prepare_event(plan, on_group_done=on_done)
    env.run()
    return finish()


def _check_capacity(plan: Plan, sched: Schedule) -> None:
    """Raise :class:`CapacityError` where the occupancy exceeds a tier's capacity, as
    :meth:`Pool.alloc` would at that allocation (frees before allocations at one time)."""
    lanes = len(set(plan.group_lane.tolist())) or 1
    for ti, tname in enumerate(plan.tier_names):
        spec = plan.system.tiers[tname]
        capacity = spec.capacity_bytes * (lanes if spec.scope == "device" else 1)
        sel = np.flatnonzero(sched.occ_tier == ti)
        if not sel.size:
            continue
        level = np.cumsum(sched.occ_delta[sel])
        over = np.flatnonzero((level > capacity * (1 + 1e-9)) & (sched.occ_delta[sel] > 0))
        if over.size:
            i = int(over[0])
            nbytes = float(sched.occ_delta[sel[i]])
            before = float(level[i]) - nbytes
            pool = Pool(simpy.Environment(initial_time=float(sched.occ_time[sel[i]])), tname, 0.0)
            pool.capacity, pool.level = capacity, before
            pool.alloc(nbytes)  # raises the pools' CapacityError


def prepare_event(
    plan: Plan, *, on_group_done: Callable[[], None] | None = None
) -> tuple[simpy.Environment, Callable[[], Schedule]]:
    """A fresh environment with the simulation's processes, and the function that
    collects the schedule once the environment has run dry. Lets a caller step
    several simulations alternately (``env.step()``) to check they do not interact.
    ``on_group_done()`` is called as each group of ops finishes.
    """
    env = simpy.Environment()
    fabric = Fabric(env)
    n_g = plan.n_groups
    lanes = sorted(set(plan.group_lane.tolist())) or [0]
    multi_lane = len(lanes) > 1
    device_res = _device_resources(plan)

    def key(lane: int, r: int) -> Any:
        return (lane, r) if (multi_lane and device_res[r]) else r

    def demand_of(vec: FloatArray, lane: int = 0) -> list[tuple[Any, float]]:
        nz = np.flatnonzero(vec)
        return [(key(lane, int(r)), float(vec[r])) for r in nz]

    pools = []
    for t in plan.tier_names:
        spec = plan.system.tiers[t]
        inst = len(lanes) if spec.scope == "device" else 1
        pools.append(Pool(env, t, spec.capacity_bytes * inst))
    # persistent data (and home copies of streamed data) from time 0
    cg = plan.cg
    staged = np.zeros(len(cg.tensor_names), dtype=bool)
    for name in plan.placement.staged:
        staged[cg.tensor_index[name]] = True
    pers = cg.t_persistent | staged
    mult = [plan.tp if plan.system.tiers[t].scope == "host" else 1 for t in plan.tier_names]
    per_tier = np.bincount(plan.tensor_home[pers], weights=cg.t_bytes[pers], minlength=len(pools))
    for ti, b in enumerate(per_tier.tolist()):
        pools[ti].alloc(b * mult[ti])

    dma = DMAEngines(env, plan, fabric, pools, demand_of)
    allocs, frees = _transient_events(plan)
    jobs_at: dict[int, list[int]] = {}
    jobs_end: dict[int, list[int]] = {}
    for j, job in enumerate(plan.jobs):
        jobs_at.setdefault(job.first_group, []).append(j)
        jobs_end.setdefault(job.last_group, []).append(j)
    t0 = np.zeros(n_g)
    t1 = np.zeros(n_g)
    # nothing can overlap: one lane, or one chain of groups (a sequential graph whose
    # groups hop from stage to stage), and no DMA beside compute
    fast = not plan.jobs and (not multi_lane or plan.group_sequential)
    needed = {d for deps in plan.group_deps for d in deps}
    done = {g: env.event() for g in needed}

    def lane_proc(lane: int, groups: list[int]) -> Generator[simpy.Event, Any, None]:
        dur = plan.group_duration.tolist()
        lat = plan.group_latency.tolist()
        ovh = plan.group_overhead.tolist()
        gdem = plan.group_demand
        deps = plan.group_deps
        for g in groups:
            if deps:
                for d in deps[g]:
                    ev = done[d]
                    if not ev.triggered:
                        yield ev
            for j in jobs_at.get(g, ()):
                ready = dma.arrive(j)
                if not ready.triggered:
                    yield ready
            for ti, b in allocs.get(g, ()):
                pools[ti].alloc(b)
            t0[g] = env.now
            if fast:
                yield env.timeout(dur[g])
            else:
                w0 = env.now
                yield fabric.transfer(demand_of(gdem[:, g], lane))
                extra = max(ovh[g] - (env.now - w0), lat[g])
                if extra > 0:
                    yield env.timeout(extra)
            t1[g] = env.now
            for ti, b in frees.get(g, ()):
                pools[ti].free(b)
            for j in jobs_end.get(g, ()):
                dma.segment_end(j)
            if g in done:
                done[g].succeed()
            if on_group_done is not None:
                on_group_done()

    lane_groups: dict[int, list[int]] = {ln: [] for ln in lanes}
    for g, ln in enumerate(plan.group_lane.tolist()):
        lane_groups[ln].append(g)
    for ln in lanes:
        env.process(lane_proc(ln, lane_groups[ln]))
    return env, lambda: _collect(t0, t1, dma, pools)


def _collect(t0: FloatArray, t1: FloatArray, dma: DMAEngines, pools: list[Pool]) -> Schedule:
    times: list[float] = []
    tiers: list[int] = []
    deltas: list[float] = []
    for ti, p in enumerate(pools):
        times += p.times
        tiers += [ti] * len(p.times)
        deltas += p.deltas
    t_arr = np.asarray(times, dtype=float)
    k_arr = np.asarray(tiers, dtype=np.int64)
    d_arr = np.asarray(deltas, dtype=float)
    order = np.argsort(t_arr, kind="stable")  # per tier, recorded order is kept
    return Schedule(
        group_t0=t0,
        group_t1=t1,
        fetch_t0=dma.fetch_t0,
        fetch_t1=dma.fetch_t1,
        wb_t0=dma.wb_t0,
        wb_t1=dma.wb_t1,
        occ_time=t_arr[order],
        occ_tier=k_arr[order],
        occ_delta=d_arr[order],
    )


def _device_resources(plan: Plan) -> list[bool]:
    """Whether each resource exists once per device (else shared by all devices)."""
    out = []
    sys_ = plan.system
    for r in plan.resources:
        if r.kind == "compute":
            out.append(True)
        elif r.kind == "tier":
            out.append(sys_.tiers[str(r.tier)].scope == "device")
        else:
            a, b = sys_.links[str(r.link)].between
            out.append(sys_.tiers[a].scope == "device" or sys_.tiers[b].scope == "device")
    return out
