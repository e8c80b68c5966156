"""DMA engines: prefetch streamed data ahead of compute, write produced data back.

One prefetch engine and one write-back engine per device (pipeline stage), each
serving its stage's jobs in order, concurrently with compute and with the other
stages' engines; their transfers share the channels with the ops' traffic
(:class:`~memsim.engine.channel.Fabric`), so stages streaming from one host tier
contend for it there.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from memsim.compiled import FloatArray
from memsim.engine.channel import Fabric
from memsim.engine.pool import Pool
from memsim.plan import DMAJob, Plan

Demand = Callable[[FloatArray, int], list[tuple[Any, float]]]  # (seconds, lane)


class DMAEngines:
    """Prefetch and write-back processes plus the events compute waits on."""

    def __init__(
        self, env: simpy.Environment, plan: Plan, fabric: Fabric, pools: list[Pool], demand: Demand
    ) -> None:
        self.env = env
        self.plan = plan
        self.fabric = fabric
        self.pools = pools
        self.demand = demand
        # a segment's copies use the device and the engines of its pipeline stage
        self._lane = [j.stage for j in plan.jobs]
        self._stage_jobs: dict[int, list[int]] = {}
        for j, st in enumerate(self._lane):
            self._stage_jobs.setdefault(st, []).append(j)
        n = len(plan.jobs)
        self.arrived = [env.event() for _ in range(n)]
        self.ready = [env.event() for _ in range(n)]
        self.wb_done = [env.event() for _ in range(n)]
        self.fetch_t0 = np.full(n, np.nan)
        self.fetch_t1 = np.full(n, np.nan)
        self.wb_t0 = np.full(n, np.nan)
        self.wb_t1 = np.full(n, np.nan)
        self._wb_queue: dict[int, simpy.Store] = {st: simpy.Store(env) for st in self._stage_jobs}
        cg = plan.cg
        self._held = [
            float(cg.t_bytes[list(j.fetch_tensors) + list(j.produce_tensors)].sum())
            for j in plan.jobs
        ]
        self._kept = [float(cg.t_bytes[list(j.writeback_tensors)].sum()) for j in plan.jobs]
        mult = [plan.tp if plan.system.tiers[t].scope == "host" else 1 for t in plan.tier_names]
        self._mult = mult
        for st, jobs in self._stage_jobs.items():
            env.process(self._prefetcher(jobs))
            env.process(self._writer(st, len(jobs)))

    def _stage_pool(self, job: DMAJob) -> Pool:
        return self.pools[job.stage_tier]

    def arrive(self, j: int) -> simpy.Event:
        """Compute reached job ``j``'s segment; returns the event its data is ready on."""
        job = self.plan.jobs[j]
        self.arrived[j].succeed()
        if not job.fetch:  # produce-only: the staging buffer is allocated on arrival
            self._stage_pool(job).alloc(self._held[j] * self._mult[job.stage_tier])
            self.fetch_t0[j] = self.fetch_t1[j] = self.env.now
            self.ready[j].succeed()
        return self.ready[j]

    def segment_end(self, j: int) -> None:
        """Job ``j``'s segment ended: free read-only staging, queue its write-back."""
        job = self.plan.jobs[j]
        m = self._mult[job.stage_tier]
        self._stage_pool(job).free((self._held[j] - self._kept[j]) * m)
        self._wb_queue[self._lane[j]].put(j)

    def _prefetcher(self, jobs: list[int]) -> Generator[simpy.Event, Any, None]:
        """One stage's prefetch engine: its ``k``-th job waits for its job ``k - depth``."""
        depth = self.plan.placement.prefetch_depth
        for k, j in enumerate(jobs):
            job = self.plan.jobs[j]
            if not job.fetch:
                continue
            if k >= depth:
                yield self.arrived[jobs[k - depth]]
            for k in job.waits_for_writeback:
                yield self.wb_done[k]
            yield self._stage_pool(job).alloc_wait(self._held[j] * self._mult[job.stage_tier])
            self.fetch_t0[j] = self.env.now
            yield self.fabric.transfer(self.demand(job.fetch_demand, self._lane[j]))
            if job.fetch_latency > 0 and job.fetch_demand.max() > 0:
                yield self.env.timeout(job.fetch_latency)
            self.fetch_t1[j] = self.env.now
            self.ready[j].succeed()

    def _writer(self, stage: int, n_jobs: int) -> Generator[simpy.Event, Any, None]:
        """One stage's write-back engine: its jobs' write-backs, in segment-end order."""
        for _ in range(n_jobs):
            j = yield self._wb_queue[stage].get()
            job = self.plan.jobs[j]
            if job.writeback:
                self.wb_t0[j] = self.env.now
                yield self.fabric.transfer(self.demand(job.writeback_demand, self._lane[j]))
                if job.writeback_latency > 0 and job.writeback_demand.max() > 0:
                    yield self.env.timeout(job.writeback_latency)
                self.wb_t1[j] = self.env.now
                self._stage_pool(job).free(self._kept[j] * self._mult[job.stage_tier])
            self.wb_done[j].succeed()
