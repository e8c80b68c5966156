"""Bandwidth channels with processor sharing: concurrent transfers share fairly.

Every resource (a compute unit, a tier's port, a link direction) has capacity
1: one second of its time per second. A *flow* (an op's work, a DMA transfer)
needs ``d_r`` seconds of resource ``r`` per unit of progress and finishes at
progress 1; alone it runs at rate ``1 / max_r d_r``, so its duration is its
roofline time. When several flows are active, rates are the **max-min fair**
allocation (progressive filling): all flows' rates rise together, each flow's
usage of its own busiest resource growing at the same pace, until a resource
saturates; the flows crossing it are frozen and the others keep rising. Two
flows bound by one channel each get half of it; a flow bound elsewhere leaves
its unused share to the others.

Whenever a flow starts or ends, the remaining work of every active flow is
advanced and the next completion rescheduled (stale timers are ignored).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import simpy

ResourceKey = Hashable
_DONE = 1e-12  # remaining progress below which a flow counts as finished


class Flow:
    """One transfer or op in progress."""

    __slots__ = ("demand", "dmax", "done", "rate", "remaining")

    def __init__(self, demand: list[tuple[ResourceKey, float]], done: simpy.Event) -> None:
        self.demand = demand
        self.dmax = max(d for _, d in demand)
        self.remaining = 1.0
        self.rate = 0.0
        self.done = done


class Fabric:
    """All channels of one simulation, sharing bandwidth among concurrent flows."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.active: list[Flow] = []
        self._last = 0.0
        self._gen = 0

    def transfer(self, demand: Iterable[tuple[ResourceKey, float]]) -> simpy.Event:
        """Start a flow needing ``seconds`` of each resource; the event fires when it ends."""
        dem = [(r, s) for r, s in demand if s > 0]
        done = self.env.event()
        if not dem:
            done.succeed()
            return done
        self._advance()
        self.active.append(Flow(dem, done))
        self._reallocate()
        return done

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for f in self.active:
                f.remaining -= f.rate * dt
        self._last = now

    def _reallocate(self) -> None:
        flows = self.active
        if len(flows) == 1:
            flows[0].rate = 1.0 / flows[0].dmax
        else:
            max_min_fair(flows)
        t_next = min(f.remaining / f.rate for f in flows)
        self._gen += 1
        gen = self._gen
        timer = self.env.timeout(max(t_next, 0.0))
        timer.callbacks.append(lambda _ev: self._on_timer(gen))

    def _on_timer(self, gen: int) -> None:
        if gen != self._gen:
            return
        self._advance()
        finished = [f for f in self.active if f.remaining <= _DONE]
        if not finished:  # rounding: the flow the timer was set for
            finished = [min(self.active, key=lambda f: f.remaining / f.rate)]
        for f in finished:
            self.active.remove(f)
        if self.active:
            self._reallocate()
        for f in finished:
            f.done.succeed()


def max_min_fair(flows: list[Flow]) -> None:
    """Set each flow's progress rate to the max-min fair allocation (progressive filling).

    Level ``l``: a flow progresses at ``l / dmax`` so its busiest resource is used
    at rate ``l``. Raise ``l`` until a resource is full; freeze the flows on it.
    """
    load: dict[ResourceKey, float] = {}
    unfrozen = list(flows)
    while unfrozen:
        share: dict[ResourceKey, float] = {}
        for f in unfrozen:
            inv = 1.0 / f.dmax
            for r, d in f.demand:
                share[r] = share.get(r, 0.0) + d * inv
        level = min((1.0 - load.get(r, 0.0)) / s for r, s in share.items())
        level = max(level, 0.0)
        tol = level * 1e-12 + 1e-18
        full = {r for r, s in share.items() if (1.0 - load.get(r, 0.0)) / s <= level + tol}
        still = []
        for f in unfrozen:
            if any(r in full for r, _ in f.demand):
                f.rate = max(level / f.dmax, 1e-300)
                for r, d in f.demand:
                    load[r] = load.get(r, 0.0) + f.rate * d
            else:
                still.append(f)
        unfrozen = still
