"""Cache properties (hypothesis): stack distance, a plain reference model, count invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models import CacheSpec
from memsim.cache import CacheSim, replacement_policies

LINE = 64

line_seqs = st.lists(st.integers(0, 23), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(capacity_lines=st.integers(1, 12), lines=line_seqs)
def test_fully_associative_lru_hits_iff_fewer_than_c_distinct_lines_between(
    capacity_lines: int, lines: list[int]
) -> None:
    spec = CacheSpec(capacity_bytes=capacity_lines * LINE, ways=capacity_lines, policy="lru")
    hits = CacheSim(spec).access(np.array(lines) * LINE).hits.tolist()
    # brute force: look back to the previous access of the same line and count the
    # distinct lines touched in between
    expected = []
    for i, line in enumerate(lines):
        prev = [j for j in range(i) if lines[j] == line]
        if not prev:
            expected.append(False)
            continue
        between = set(lines[prev[-1] + 1 : i])
        expected.append(len(between) < capacity_lines)
    assert hits == expected


class ReferenceCache:
    """A plainly written set-associative cache (lists of dicts), for comparison."""

    def __init__(self, sets: int, ways: int, policy: str, write_back: bool, allocate: bool):
        self.sets = [[] for _ in range(sets)]  # type: list[list[dict[str, int]]]
        self.nsets, self.ways, self.policy = sets, ways, policy
        self.write_back, self.allocate = write_back, allocate
        self.tick = 0
        self.out: list[tuple[int, bool]] = []
        self.writebacks = 0
        self.evictions = 0

    def access(self, line: int, write: bool) -> bool:
        blocks = self.sets[line % self.nsets]
        self.tick += 1
        for b in blocks:
            if b["line"] == line:
                if self.policy == "lru":
                    b["t"] = self.tick
                if self.policy == "srrip":
                    b["rrpv"] = 0
                if write and self.write_back:
                    b["dirty"] = 1
                elif write:
                    self.out.append((line, True))
                return True
        if write and not self.allocate:
            self.out.append((line, True))
            return False
        self.out.append((line, False))
        if len(blocks) == self.ways:
            if self.policy in ("lru", "fifo"):
                victim = min(blocks, key=lambda b: b["t"])
            else:  # srrip: first way (in way order) with RRPV 3, ageing until one exists
                while not any(b["rrpv"] == 3 for b in blocks):
                    for b in blocks:
                        b["rrpv"] += 1
                victim = next(b for b in blocks if b["rrpv"] == 3)
            self.evictions += 1
            if victim["dirty"]:
                self.writebacks += 1
                self.out.append((victim["line"], True))
            # replace in place: the way keeps its position
            victim.update(line=line, dirty=int(write and self.write_back), t=self.tick, rrpv=2)
        else:
            blocks.append(
                {"line": line, "dirty": int(write and self.write_back), "t": self.tick, "rrpv": 2}
            )
        if write and not self.write_back:
            self.out.append((line, True))
        return False


@settings(max_examples=120, deadline=None)
@given(
    policy=st.sampled_from(["lru", "fifo", "srrip"]),
    sets=st.sampled_from([1, 2, 4]),
    ways=st.integers(1, 4),
    write_back=st.booleans(),
    allocate=st.booleans(),
    ops=st.lists(st.tuples(st.integers(0, 31), st.booleans()), min_size=1, max_size=300),
)
def test_matches_the_plain_reference_model(
    policy: str,
    sets: int,
    ways: int,
    write_back: bool,
    allocate: bool,
    ops: list[tuple[int, bool]],
) -> None:
    spec = CacheSpec(
        capacity_bytes=sets * ways * LINE,
        ways=ways,
        policy=policy,
        write_back=write_back,
        write_allocate=allocate,
    )
    lines = np.array([o[0] for o in ops])
    writes = np.array([o[1] for o in ops])
    res = CacheSim(spec).access(lines * LINE, writes)
    ref = ReferenceCache(sets, ways, policy, write_back, allocate)
    expected = [ref.access(int(line), bool(w)) for line, w in ops]
    assert res.hits.tolist() == expected
    got_out = list(
        zip((res.next_addresses // LINE).tolist(), res.next_is_write.tolist(), strict=True)
    )
    assert got_out == ref.out
    assert res.stats.writebacks == ref.writebacks
    assert res.stats.evictions == ref.evictions


@settings(max_examples=60, deadline=None)
@given(
    policy=st.sampled_from(replacement_policies.names()),
    ways=st.sampled_from([1, 2, 4, 8]),
    sets=st.sampled_from([1, 4, 16]),
    write_back=st.booleans(),
    allocate=st.booleans(),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 3000),
)
def test_count_invariants_for_every_policy(
    policy: str, ways: int, sets: int, write_back: bool, allocate: bool, seed: int, n: int
) -> None:
    rng = np.random.default_rng(seed)
    addrs = rng.integers(0, 4 * sets * ways, size=n) * LINE
    writes = rng.random(n) < 0.4
    spec = CacheSpec(
        capacity_bytes=sets * ways * LINE,
        ways=ways,
        policy=policy,
        write_back=write_back,
        write_allocate=allocate,
    )
    cache = CacheSim(spec, seed=seed)
    s = cache.access(addrs, writes).stats
    assert s.hits + s.misses == s.accesses == n
    assert s.read_misses + s.write_misses == s.misses
    assert s.writebacks <= s.dirty_evictions <= s.evictions <= s.misses
    assert s.evictions <= s.fills
    if not write_back:
        assert s.writebacks == 0
        # every write leaves the cache at once
        assert s.write_throughs == s.writes
    # no more lines held than the cache has, and every held line in its own set
    held = cache.contents()
    assert held.size == s.fills - s.evictions <= sets * ways
    assert len(set(held.tolist())) == held.size
