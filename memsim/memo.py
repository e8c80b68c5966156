"""`SimCache`: memoised intermediate results that a caller owns and passes in.

:func:`memsim.simulate` keeps no state between calls: without a cache each call
compiles the graph, lays it out and calibrates DRAM tiers afresh. A caller that
simulates many hardware points (a sweep, an RL environment, a serving loop, a
calibration fit) creates one :class:`SimCache` and passes it to every call::

    cache = SimCache()
    for system in points:
        simulate(system, graph, fidelity="analytic", cache=cache)

What it holds is pure memoisation: every entry is a function of its key, so results
are bit-identical with or without it, in any call order (tested). It holds strong
references to the graphs it has seen (an identity key is never reused while its
entry lives) and bounds each shelf's size (least recently used first out). One
cache may be shared by threads (a lock guards it); a process pool keeps one per
worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

#: entries kept per shelf (graphs are large: a few per shelf)
DEFAULT_SIZES: dict[str, int] = {
    "compiled": 8,
    "fitted_graph": 8,
    "layout": 8,
    # graph-only facts of the graphs seen (a dozen or two per graph)
    "graph_facts": 64,
    # bandwidth-free per-op tables (R x n_ops bytes per resource, and what is derived from
    # them: about eight entries per graph and route topology)
    "op_tables": 32,
    "classified": 16,
    "dram_calibration": 256,
    "dram_device": 32,
    "placement": 16,
    # calibrated seconds of a graph's distinct ops per system spec (small arrays)
    "calibrated_prices": 64,
}


class SimCache:
    """Named LRU shelves of memoised values (see the module docstring)."""

    def __init__(self, *, sizes: dict[str, int] | None = None) -> None:
        self._sizes = {**DEFAULT_SIZES, **(sizes or {})}
        self._shelves: dict[str, OrderedDict[Hashable, tuple[Any, Any]]] = {}
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0

    def memo(self, shelf: str, key: Hashable, make: Callable[[], T], *, pin: Any = None) -> T:
        """The value stored under ``key`` on ``shelf``, made by ``make()`` on a miss.

        ``pin``: objects whose identity is part of ``key`` (``id(obj)``); they are kept
        alive with the entry and checked on a hit, so a recycled id never matches.
        """
        with self._lock:
            items = self._shelves.setdefault(shelf, OrderedDict())
            hit = items.get(key)
            if hit is not None and _same(hit[0], pin):
                items.move_to_end(key)
                self.hits += 1
                return hit[1]
        value = make()
        with self._lock:
            self.misses += 1
            items[key] = (pin, value)
            while len(items) > self._sizes.get(shelf, 8):
                items.popitem(last=False)
        return value

    def clear(self, shelf: str | None = None) -> None:
        """Forget everything, or only what ``shelf`` holds."""
        with self._lock:
            if shelf is None:
                self._shelves.clear()
            else:
                self._shelves.pop(shelf, None)

    def __len__(self) -> int:
        return sum(len(s) for s in self._shelves.values())


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
    return a is b


_ACTIVE: ContextVar[SimCache | None] = ContextVar("memsim_active_cache", default=None)


def active() -> SimCache | None:
    """The cache of the :func:`using` block this thread (or task) is in, else None."""
    return _ACTIVE.get()


@contextmanager
def using(cache: SimCache | None) -> Iterator[SimCache | None]:
    """Make ``cache`` the active one inside the block (per thread and task: a ContextVar).

    :func:`memsim.simulate` wraps each call in ``using(cache)`` so that the helpers it
    calls (graph compilation, placement, layout, DRAM calibration) share the caller's
    cache without a module-level one; outside any block, :func:`memo` just computes.
    """
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def memo(shelf: str, key: Hashable, make: Callable[[], T], *, pin: Any = None) -> T:
    """:meth:`SimCache.memo` on the active cache, or ``make()`` when there is none."""
    cache = _ACTIVE.get()
    return make() if cache is None else cache.memo(shelf, key, make, pin=pin)
