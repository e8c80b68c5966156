"""Capacity pools: one per tier, with an occupancy timeline; never exceeded silently."""

from __future__ import annotations

from collections import deque

import simpy

from hw_models.errors import Problem
from hw_models.units import fmt_bytes
from memsim.policies.base import CapacityError


class Pool:
    """Bytes allocated in one tier (all instances the simulation models).

    :meth:`alloc` raises :class:`CapacityError` when the request does not fit;
    :meth:`alloc_wait` (used by DMA engines) waits until it does, first come
    first served. Every change is recorded as ``(time, delta)``.
    """

    def __init__(self, env: simpy.Environment, name: str, capacity_bytes: float) -> None:
        self.env = env
        self.name = name
        self.capacity = capacity_bytes
        self.level = 0.0
        self.times: list[float] = []
        self.deltas: list[float] = []
        self._waiting: deque[tuple[float, simpy.Event]] = deque()

    def _fits(self, nbytes: float) -> bool:
        return self.level + nbytes <= self.capacity * (1 + 1e-9)

    def _take(self, nbytes: float) -> None:
        self.level += nbytes
        self.times.append(self.env.now)
        self.deltas.append(nbytes)

    def alloc(self, nbytes: float) -> None:
        """Allocate now or raise :class:`CapacityError` naming the tier and the shortfall."""
        if nbytes <= 0:
            return
        if not self._fits(nbytes):
            short = self.level + nbytes - self.capacity
            raise CapacityError(
                [
                    Problem(
                        f"tiers.{self.name}.capacity_bytes",
                        f"at t = {self.env.now:.6g} s, allocating {fmt_bytes(nbytes)} in "
                        f"{self.name} with {fmt_bytes(self.level)} of {fmt_bytes(self.capacity)} "
                        f"in use: short by {fmt_bytes(short)}",
                    )
                ],
                tier=self.name,
                shortfall_bytes=short,
            )
        self._take(nbytes)

    def alloc_wait(self, nbytes: float) -> simpy.Event:
        """An event that fires once ``nbytes`` are allocated (waits for room, FIFO)."""
        ev = self.env.event()
        if nbytes > self.capacity * (1 + 1e-9):
            self.alloc(nbytes)  # can never fit: raise now
        if not self._waiting and self._fits(nbytes):
            self._take(nbytes)
            ev.succeed()
        else:
            self._waiting.append((nbytes, ev))
        return ev

    def free(self, nbytes: float) -> None:
        """Release ``nbytes`` and serve waiting allocations that now fit."""
        if nbytes <= 0:
            return
        self.level -= nbytes
        self.times.append(self.env.now)
        self.deltas.append(-nbytes)
        while self._waiting and self._fits(self._waiting[0][0]):
            size, ev = self._waiting.popleft()
            self._take(size)
            ev.succeed()
