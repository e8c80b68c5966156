"""The analytic fast path: roofline per group, summed with the overlap rules, no contention.

Rules (the event engine follows the same ones, with contention added):

1. A group (one op in the ``kernel`` model, a fused group in ``dataflow``) takes
   its solo duration ``max(overhead, latency + max_r demand_r)`` (:mod:`memsim.plan`).
2. Groups of one lane (device / pipeline stage) run one after another; a group
   also waits for the groups it depends on.
3. One prefetch DMA engine per device (pipeline stage) copies the streamed data
   of that stage's segments, in order: the fetch for the stage's ``k``-th segment
   starts when the engine's previous fetch is done, when compute has reached the
   stage's segment ``k - prefetch_depth``, and when the write-backs it depends on
   are done. A segment starts when its fetch is done.
4. One write-back DMA engine per device copies produced data home after its
   segment ends, in order. Engines of different stages run at once (no
   contention here, even on a shared host tier: the event engine adds it).

With a sequential graph (one chain, on one lane or hopping between pipeline
stages), the schedule is a cumulative sum of the solo durations (vectorised),
with fetch waits inserted where streamed segments start.
"""

from __future__ import annotations

import numpy as np

from memsim.assemble import Schedule, occupancy_events
from memsim.compiled import FloatArray
from memsim.plan import Plan, dma_duration


class _DMA:
    """Prefetch and write-back engines' clocks, one pair per pipeline stage (no contention)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        n = len(plan.jobs)
        self.fetch_t0 = np.full(n, np.nan)
        self.fetch_t1 = np.full(n, np.nan)
        self.wb_t0 = np.full(n, np.nan)
        self.wb_t1 = np.full(n, np.nan)
        self.arrival = np.full(n, np.nan)
        self.fetch_free: dict[int, float] = {}  # stage -> when its prefetch engine is free
        self.wb_free: dict[int, float] = {}
        self.wb_next = 0
        # the k-th job of a stage waits for compute to reach that stage's job k - depth
        self.prev: list[int] = []
        seen: dict[int, list[int]] = {}
        depth = plan.placement.prefetch_depth
        for j, job in enumerate(plan.jobs):
            mine = seen.setdefault(job.stage, [])
            if depth <= 0:  # no prefetch ahead: the fetch starts when compute arrives
                self.prev.append(j)
            else:
                self.prev.append(mine[-depth] if len(mine) >= depth else -1)
            mine.append(j)
        self.fetch_dur = [dma_duration(j.fetch_demand, j.fetch_latency) for j in plan.jobs]
        self.wb_dur = [dma_duration(j.writeback_demand, j.writeback_latency) for j in plan.jobs]

    def fetch(self, j: int, arrival: float) -> float:
        """Record compute's arrival at job ``j``'s segment; returns when its data is ready."""
        job = self.plan.jobs[j]
        self.arrival[j] = arrival
        if not job.fetch:
            self.fetch_t0[j] = self.fetch_t1[j] = arrival
            return arrival
        start = self.fetch_free.get(job.stage, 0.0)
        if self.prev[j] >= 0:
            start = max(start, float(self.arrival[self.prev[j]]))
        for k in job.waits_for_writeback:
            start = max(start, float(self.wb_t1[k]))
        self.fetch_t0[j] = start
        self.fetch_t1[j] = start + self.fetch_dur[j]
        self.fetch_free[job.stage] = float(self.fetch_t1[j])
        return float(self.fetch_t1[j])

    def writebacks_until(self, group: int, group_t1: FloatArray) -> None:
        """Issue the write-backs of every job whose segment ended before ``group``."""
        jobs = self.plan.jobs
        while self.wb_next < len(jobs) and jobs[self.wb_next].last_group < group:
            i = self.wb_next
            end = float(group_t1[jobs[i].last_group])
            if jobs[i].writeback:
                st = jobs[i].stage
                self.wb_t0[i] = max(end, self.wb_free.get(st, 0.0))
                self.wb_t1[i] = self.wb_t0[i] + self.wb_dur[i]
                self.wb_free[st] = float(self.wb_t1[i])
            self.wb_next += 1


def schedule_analytic(plan: Plan) -> Schedule:
    """The uncontended schedule of ``plan``."""
    dur = plan.group_duration
    n_g = plan.n_groups
    dma = _DMA(plan)
    if plan.group_sequential:
        csum = np.concatenate(([0.0], np.cumsum(dur)))
        t0 = np.empty(n_g)
        t1 = np.empty(n_g)
        t = 0.0
        g = 0
        for j, job in enumerate(plan.jobs):
            gf = job.first_group
            if gf > g:
                t0[g:gf] = t + (csum[g:gf] - csum[g])
                t1[g:gf] = t + (csum[g + 1 : gf + 1] - csum[g])
                t = float(t1[gf - 1])
                g = gf
            dma.writebacks_until(gf, t1)
            ready = dma.fetch(j, t if gf == g else float(t0[gf]))
            if gf == g:
                t = max(t, ready)
        if g < n_g:
            t0[g:] = t + (csum[g:n_g] - csum[g])
            t1[g:] = t + (csum[g + 1 :] - csum[g])
        dma.writebacks_until(n_g, t1)
    else:
        t0, t1 = _general(plan, dma)
    occ = occupancy_events(plan, t0, t1, dma.fetch_t0, dma.wb_t1)
    return Schedule(
        group_t0=t0,
        group_t1=t1,
        fetch_t0=dma.fetch_t0,
        fetch_t1=dma.fetch_t1,
        wb_t0=dma.wb_t0,
        wb_t1=dma.wb_t1,
        occ_time=occ[0],
        occ_tier=occ[1],
        occ_delta=occ[2],
    )


def _general(plan: Plan, dma: _DMA) -> tuple[FloatArray, FloatArray]:
    """Groups with explicit dependencies (pipeline stages as lanes)."""
    n_g = plan.n_groups
    t0 = np.zeros(n_g)
    t1 = np.zeros(n_g)
    lane_free: dict[int, float] = {}
    job_at: dict[int, list[int]] = {}
    for j, job in enumerate(plan.jobs):
        job_at.setdefault(job.first_group, []).append(j)
    dur = plan.group_duration.tolist()
    lanes = plan.group_lane.tolist()
    for g in range(n_g):
        start = lane_free.get(lanes[g], 0.0)
        for d in plan.group_deps[g]:
            start = max(start, t1[d])
        dma.writebacks_until(g, t1)
        for j in job_at.get(g, ()):
            start = max(start, dma.fetch(j, start))
        t0[g] = start
        t1[g] = lane_free[lanes[g]] = start + dur[g]
    dma.writebacks_until(n_g, t1)
    return t0, t1
