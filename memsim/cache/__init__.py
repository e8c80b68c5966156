"""Set-associative cache models driven by address streams.

* :class:`CacheSim` — one level; :class:`CacheHierarchy` — L1 -> L2 -> memory.
* Replacement policies registered by name in :data:`replacement_policies`:
  ``lru``, ``fifo``, ``random`` (seeded), ``srrip``.
* Write-back + write-allocate by default; write-through and no-write-allocate
  via :class:`hw_models.CacheSpec`.
* Streams: :func:`synthetic_stream` (``stream``, ``random``, ``strided``,
  ``zipf``), :func:`read_address_trace`, :func:`graph_address_stream`.

The per-access loop is numba-compiled (tens of millions of accesses per second).
"""

from memsim.cache.sim import (
    CacheHierarchy,
    CacheResult,
    CacheSim,
    CacheStats,
    HierarchyResult,
    ReplacementPolicy,
    replacement_policies,
)
from memsim.cache.streams import (
    address_patterns,
    graph_address_stream,
    read_address_trace,
    synthetic_stream,
)

__all__ = [
    "CacheHierarchy",
    "CacheResult",
    "CacheSim",
    "CacheStats",
    "HierarchyResult",
    "ReplacementPolicy",
    "address_patterns",
    "graph_address_stream",
    "read_address_trace",
    "replacement_policies",
    "synthetic_stream",
]
