"""Set-associative caches: one level (:class:`CacheSim`) and a chain (:class:`CacheHierarchy`).

>>> import numpy as np
>>> from hw_models import CacheSpec
>>> l1 = CacheSim(CacheSpec(capacity_bytes=256, line_bytes=64, ways=4, policy="lru"))
>>> r = l1.access(np.array([0, 64, 0, 4096, 8192, 12288, 64]))
>>> "".join("H" if h else "M" for h in r.hits)
'MMHMMMM'

A level takes byte addresses (and an optional ``is_write`` mask), returns per-
access hits, :class:`CacheStats`, and the stream it sends to the next level:
line fills (reads), write-backs of dirty victims, and writes passed through
(write-through, or write misses without write-allocate), as line-aligned byte
addresses. A hierarchy feeds each level's stream to the next (non-inclusive,
non-exclusive: a level knows nothing of the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models.cache import CacheSpec
from hw_models.errors import Problem, SpecError
from memsim.cache import _kernel as kern
from memsim.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplacementPolicy:
    """A replacement policy: its kernel code and what it does."""

    name: str
    code: int
    description: str


replacement_policies: Registry[ReplacementPolicy] = Registry("replacement policy")
for _name, _code, _desc in (
    ("lru", kern.LRU, "evict the least recently used line"),
    ("fifo", kern.FIFO, "evict the line filled first; hits do not reorder"),
    ("random", kern.RANDOM, "evict a uniformly random way (seeded xorshift64)"),
    (
        "srrip",
        kern.SRRIP,
        "static RRIP (Jaleel et al., ISCA 2010): M-bit RRPV, insert at 2^M-2, hit -> 0, "
        "evict the first way at 2^M-1, ageing all ways until one is",
    ),
):
    replacement_policies.add(
        _name, lambda n=_name, c=_code, d=_desc: ReplacementPolicy(name=n, code=c, description=d)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Counts of one level over some accesses. ``hits + misses == accesses``."""

    name: str
    accesses: int
    reads: int
    writes: int
    hits: int
    misses: int
    read_misses: int
    write_misses: int
    evictions: int
    dirty_evictions: int
    writebacks: int
    fills: int
    write_throughs: int

    @property
    def hit_rate(self) -> float:
        """hits / accesses (0 when there were none)."""
        return self.hits / self.accesses if self.accesses else 0.0

    @property
    def miss_rate(self) -> float:
        """misses / accesses (0 when there were none)."""
        return self.misses / self.accesses if self.accesses else 0.0

    def __add__(self, other: CacheStats) -> CacheStats:
        fields = {f: getattr(self, f) + getattr(other, f) for f in _COUNT_FIELDS}
        return CacheStats(name=self.name, **fields)

    def to_dict(self) -> dict[str, float | int | str]:
        """A plain dict with the rates (for JSON and tables)."""
        out: dict[str, float | int | str] = {f: getattr(self, f) for f in self.__slots__}
        out["hit_rate"] = self.hit_rate
        out["miss_rate"] = self.miss_rate
        return out


_COUNT_FIELDS = tuple(f for f in CacheStats.__slots__ if f != "name")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheResult:
    """One call's outcome: per-access hits, stats, and the next-level stream."""

    hits: npt.NDArray[np.bool_]
    stats: CacheStats
    next_addresses: npt.NDArray[np.int64]
    next_is_write: npt.NDArray[np.bool_]


def _as_arrays(
    addresses: npt.ArrayLike, is_write: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    addrs = np.ascontiguousarray(addresses, dtype=np.int64).ravel()
    problems = []
    if addrs.size and addrs.min() < 0:
        problems.append(Problem("addresses", "addresses must be >= 0"))
    if is_write is None:
        writes = np.zeros(addrs.size, dtype=np.bool_)
    else:
        writes = np.ascontiguousarray(is_write, dtype=np.bool_).ravel()
        if writes.size != addrs.size:
            msg = f"has {writes.size} entries for {addrs.size} addresses"
            problems.append(Problem("is_write", msg))
    if problems:
        raise SpecError(problems)
    return addrs, writes


class CacheSim:
    """One set-associative cache level with its state; ``access`` may be called repeatedly.

    ``seed`` seeds the random policy (two caches with the same seed and the same
    accesses behave identically; nothing global is used).
    """

    def __init__(self, spec: CacheSpec, *, name: str = "L1", seed: int = 0) -> None:
        if not isinstance(spec, CacheSpec):
            raise SpecError([Problem(name, f"expected a CacheSpec, found {type(spec).__name__}")])
        self.spec = spec
        self.name = name
        self.policy = replacement_policies.create(spec.policy, error_path=f"{name}.policy")
        self.sets = spec.sets
        self.ways = spec.ways
        self.line_shift = int(spec.line_bytes).bit_length() - 1
        self.rrpv_max = (1 << spec.rrpv_bits) - 1
        self._tags = np.full((self.sets, self.ways), -1, dtype=np.int64)
        self._dirty = np.zeros((self.sets, self.ways), dtype=np.bool_)
        self._meta = np.zeros((self.sets, self.ways), dtype=np.int64)
        self._clock = np.zeros(1, dtype=np.int64)
        # splitmix64 of the seed: a non-zero xorshift state
        z = (int(seed) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        self._rng = np.array([(z ^ (z >> 31)) or 1], dtype=np.uint64)
        self.stats = self._stats(np.zeros(kern.N_COUNTERS, dtype=np.int64), 0)

    def _stats(self, c: npt.NDArray[np.int64], n: int) -> CacheStats:
        return CacheStats(
            name=self.name,
            accesses=n,
            reads=n - int(c[kern.WRITES]),
            writes=int(c[kern.WRITES]),
            hits=int(c[kern.HITS]),
            misses=int(c[kern.MISSES]),
            read_misses=int(c[kern.READ_MISSES]),
            write_misses=int(c[kern.WRITE_MISSES]),
            evictions=int(c[kern.EVICTIONS]),
            dirty_evictions=int(c[kern.DIRTY_EVICTIONS]),
            writebacks=int(c[kern.WRITEBACKS]),
            fills=int(c[kern.FILLS]),
            write_throughs=int(c[kern.WRITE_THROUGHS]),
        )

    def access(
        self, addresses: npt.ArrayLike, is_write: npt.ArrayLike | None = None
    ) -> CacheResult:
        """Run byte ``addresses`` (reads unless ``is_write``) through this level."""
        addrs, writes = _as_arrays(addresses, is_write)
        n = addrs.size
        hits = np.zeros(n, dtype=np.bool_)
        out_addr = np.empty(2 * n, dtype=np.int64)
        out_write = np.empty(2 * n, dtype=np.bool_)
        counts, n_out = kern.run(
            addrs,
            writes,
            self.line_shift,
            self._tags,
            self._dirty,
            self._meta,
            self._clock,
            self._rng,
            self.policy.code,
            self.rrpv_max,
            self.spec.write_back,
            self.spec.write_allocate,
            hits,
            out_addr,
            out_write,
        )
        stats = self._stats(counts, n)
        self.stats = self.stats + stats
        return CacheResult(
            hits=hits,
            stats=stats,
            next_addresses=out_addr[:n_out],
            next_is_write=out_write[:n_out],
        )

    def contents(self) -> npt.NDArray[np.int64]:
        """Line numbers currently held, sorted (for inspection and tests)."""
        held = self._tags[self._tags >= 0]
        return np.sort(held)


@dataclass(frozen=True, slots=True, kw_only=True)
class HierarchyResult:
    """Per-level stats of one call and the stream that reached the backing memory."""

    levels: tuple[CacheStats, ...]
    memory_addresses: npt.NDArray[np.int64]
    memory_is_write: npt.NDArray[np.bool_]

    @property
    def memory_reads(self) -> int:
        """Line reads that reached the backing memory."""
        return int((~self.memory_is_write).sum())

    @property
    def memory_writes(self) -> int:
        """Writes (write-backs, write-throughs) that reached the backing memory."""
        return int(self.memory_is_write.sum())


class CacheHierarchy:
    """L1 -> L2 -> ... -> backing memory; each level sees the previous level's stream."""

    def __init__(self, levels: Sequence[CacheSpec], *, seed: int = 0) -> None:
        if not levels:
            raise SpecError([Problem("levels", "at least one cache level is needed")])
        self.levels = [
            CacheSim(spec, name=f"L{i + 1}", seed=seed + i) for i, spec in enumerate(levels)
        ]

    def access(
        self, addresses: npt.ArrayLike, is_write: npt.ArrayLike | None = None
    ) -> HierarchyResult:
        """Run the accesses through every level in turn."""
        addrs, writes = _as_arrays(addresses, is_write)
        stats = []
        for level in self.levels:
            res = level.access(addrs, writes)
            stats.append(res.stats)
            addrs, writes = res.next_addresses, res.next_is_write
        return HierarchyResult(levels=tuple(stats), memory_addresses=addrs, memory_is_write=writes)

    @property
    def stats(self) -> tuple[CacheStats, ...]:
        """Cumulative stats of every level."""
        return tuple(level.stats for level in self.levels)
