"""DMA engines: prefetch streamed data ahead of compute, write produced data back.

One prefetch engine and one write-back engine per device, each serving its
jobs in order, concurrently with compute; their transfers share the channels
with the ops' traffic (:class:`~memsim.engine.channel.Fabric`).
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
        # a segment's copies use the device of its pipeline stage (the lane of its groups)
        self._lane = [int(plan.group_lane[j.first_group]) for j in plan.jobs]
        n = len(plan.jobs)
        self.arrived = [env.event() for _ in range(n)]
        self.ready = [env.event() for _ in range(n)]
        self.wb_done = [env.event() for _ in range(n)]
        self.fetch_t0 = np.full(n, np.nan)
        self.fetch_t1 = np.full(n, np.nan)
        self.wb_t0 = np.full(n, np.nan)
        self.wb_t1 = np.full(n, np.nan)
        self._wb_queue: simpy.Store = simpy.Store(env)
        cg = plan.cg
        self._held = [
            float(cg.t_bytes[list(j.fetch_tensors) + list(j.produce_tensors)].sum())
            for j in plan.jobs
        ]
        self._kept = [float(cg.t_bytes[list(j.writeback_tensors)].sum()) for j in plan.jobs]
        mult = [plan.tp if plan.system.tiers[t].scope == "host" else 1 for t in plan.tier_names]
        self._mult = mult
        if n:
            env.process(self._prefetcher())
            env.process(self._writer())

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
        self._wb_queue.put(j)

    def _prefetcher(self) -> Generator[simpy.Event, Any, None]:
        depth = self.plan.placement.prefetch_depth
        for j, job in enumerate(self.plan.jobs):
            if not job.fetch:
                continue
            if j >= depth:
                yield self.arrived[j - depth]
            for k in job.waits_for_writeback:
                yield self.wb_done[k]
            yield self._stage_pool(job).alloc_wait(self._held[j] * self._mult[job.stage_tier])
            self.fetch_t0[j] = self.env.now
            yield self.fabric.transfer(self.demand(job.fetch_demand, self._lane[j]))
            if job.fetch_latency > 0 and job.fetch_demand.max() > 0:
                yield self.env.timeout(job.fetch_latency)
            self.fetch_t1[j] = self.env.now
            self.ready[j].succeed()

    def _writer(self) -> Generator[simpy.Event, Any, None]:
        for _ in self.plan.jobs:
            j = yield self._wb_queue.get()
            job = self.plan.jobs[j]
            if job.writeback:
                self.wb_t0[j] = self.env.now
                yield self.fabric.transfer(self.demand(job.writeback_demand, self._lane[j]))
                if job.writeback_latency > 0 and job.writeback_demand.max() > 0:
                    yield self.env.timeout(job.writeback_latency)
                self.wb_t1[j] = self.env.now
                self._stage_pool(job).free(self._kept[j] * self._mult[job.stage_tier])
            self.wb_done[j].succeed()
