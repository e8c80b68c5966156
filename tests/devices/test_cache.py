"""Cache model: hand-traced sequences per policy, write policies, hierarchy, streams, errors."""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pytest

from hw_models import CacheSpec, SpecError
from hw_models.cache import ReplacementPolicy
from memsim.cache import (
    CacheHierarchy,
    CacheSim,
    graph_address_stream,
    read_address_trace,
    replacement_policies,
    synthetic_stream,
)

LINE = 64


def one_set(ways: int, policy: str, **over: object) -> CacheSim:
    """A fully associative cache of ``ways`` 64 B lines."""
    spec = CacheSpec(capacity_bytes=ways * LINE, line_bytes=LINE, ways=ways, policy=policy, **over)
    return CacheSim(spec)


def trace(cache: CacheSim, lines: str, writes: str | None = None) -> str:
    """Access lines named by letters (A = line 0, B = line 1, ...); 'H'/'M' per access."""
    addrs = np.array([(ord(c) - ord("A")) * LINE for c in lines], dtype=np.int64)
    w = None if writes is None else np.array([c == "W" for c in writes])
    res = cache.access(addrs, w)
    return "".join("H" if h else "M" for h in res.hits)


def test_policy_registry_matches_the_spec_literal() -> None:
    assert replacement_policies.names() == sorted(typing.get_args(ReplacementPolicy))
    with pytest.raises(SpecError, match="known: fifo, lru, random, srrip"):
        replacement_policies.get("plru")


# Hand traces, 2-way fully associative cache, sequence A B A C B A:
#   LRU : A miss, B miss, A hit (A now MRU), C miss evicts B (LRU), B miss evicts A
#         (A used before C), A miss evicts C                                   -> MMHMMM
#   FIFO: A miss, B miss, A hit (no reorder), C miss evicts A (filled first), B hit,
#         A miss evicts B (filled before C)                                    -> MMHMHM
#   SRRIP (M = 2: insert at RRPV 2, hit -> 0, evict at 3, age all if none):
#         A miss [A2 -], B miss [A2 B2], A hit [A0 B2],
#         C miss: no RRPV 3 -> age [A1 B3] -> evict B -> [A1 C2],
#         B miss: no 3 -> age [A2 C3] -> evict C -> [A2 B2], A hit             -> MMHMMH
@pytest.mark.parametrize(
    ("policy", "expected"), [("lru", "MMHMMM"), ("fifo", "MMHMHM"), ("srrip", "MMHMMH")]
)
def test_hand_traced_sequences(policy: str, expected: str) -> None:
    assert trace(one_set(2, policy), "ABACBA") == expected


def test_random_policy_hand_trace_and_fairness() -> None:
    # A B A B C C: fills of empty ways are not random; the C re-access hits whichever way
    # C took -> MMHHMH for every seed
    for seed in range(20):
        c = CacheSim(CacheSpec(capacity_bytes=2 * LINE, ways=2, policy="random"), seed=seed)
        assert trace(c, "ABABCC") == "MMHHMH"
    # the victim of C is A or B with probability 1/2 each: over 400 seeds, A survives
    # Binomial(400, 0.5) times: mean 200, sd 10; accept 200 +- 4 sd
    survived = 0
    for seed in range(400):
        c = CacheSim(CacheSpec(capacity_bytes=2 * LINE, ways=2, policy="random"), seed=seed)
        trace(c, "ABC")
        survived += 0 in c.contents()
    assert 160 <= survived <= 240


def test_random_policy_is_deterministic_per_seed() -> None:
    addrs, _ = synthetic_stream("random", 5000, footprint_bytes=64 * LINE, seed=1)
    spec = CacheSpec(capacity_bytes=16 * LINE, ways=4, policy="random")
    a = CacheSim(spec, seed=7).access(addrs).hits
    b = CacheSim(spec, seed=7).access(addrs).hits
    c = CacheSim(spec, seed=8).access(addrs).hits
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_set_index_is_line_modulo_sets() -> None:
    # direct mapped, 2 sets: lines 0 and 2 share set 0, line 1 is set 1
    c = CacheSim(CacheSpec(capacity_bytes=2 * LINE, ways=1))
    assert trace(c, "ABACBA") == "MMHMHM"


def test_write_back_write_allocate_counts_and_next_level_stream() -> None:
    c = CacheSim(CacheSpec(capacity_bytes=LINE, ways=1))
    # W A (miss: fill A, dirty), R B (miss: fill B, write back dirty A), R A (miss: fill A,
    # B clean: no write-back)
    res = c.access(np.array([0, 64, 0]), np.array([True, False, False]))
    s = res.stats
    assert (s.hits, s.misses, s.write_misses, s.read_misses) == (0, 3, 1, 2)
    assert (s.evictions, s.dirty_evictions, s.writebacks, s.fills) == (2, 1, 1, 3)
    assert res.next_addresses.tolist() == [0, 64, 0, 0]
    assert res.next_is_write.tolist() == [False, False, True, False]


def test_write_through_no_allocate() -> None:
    spec = CacheSpec(capacity_bytes=LINE, ways=1, write_back=False, write_allocate=False)
    c = CacheSim(spec)
    # W A: miss, not allocated, forwarded; R A: miss, filled; W A: hit, forwarded
    res = c.access(np.array([0, 0, 0]), np.array([True, False, True]))
    assert "".join("H" if h else "M" for h in res.hits) == "MMH"
    s = res.stats
    assert (s.writebacks, s.write_throughs, s.fills, s.dirty_evictions) == (0, 2, 1, 0)
    assert res.next_addresses.tolist() == [0, 0, 0]
    assert res.next_is_write.tolist() == [True, False, True]


def test_write_back_no_allocate_keeps_write_misses_out() -> None:
    spec = CacheSpec(capacity_bytes=LINE, ways=1, write_allocate=False)
    res = CacheSim(spec).access(np.array([0, 0, 0]), np.array([True, False, True]))
    # W A forwarded, R A filled, W A hit -> dirty, stays in the cache
    assert "".join("H" if h else "M" for h in res.hits) == "MMH"
    assert res.next_is_write.tolist() == [True, False]
    assert res.stats.writebacks == 0


def test_state_persists_across_calls_and_stats_accumulate() -> None:
    c = one_set(2, "lru")
    assert trace(c, "AB") == "MM"
    assert trace(c, "AB") == "HH"
    assert c.stats.accesses == 4 and c.stats.hits == 2


def test_lru_thrashes_on_a_loop_one_line_larger_than_the_cache() -> None:
    # cyclic over C + 1 = 9 lines in an 8-line fully associative LRU cache: every access
    # finds its line evicted 8 distinct lines ago -> 0 hits
    c = one_set(8, "lru")
    addrs = (np.arange(9 * 50) % 9) * LINE
    assert c.access(addrs).stats.hits == 0


def test_srrip_keeps_a_reused_working_set_through_scans() -> None:
    # 4-way fully associative; warm-up A B A B, then P periods of [s, s, s, A, B] with
    # never-reused scan lines s.
    # LRU: between two A's come B and 3 scan lines = 4 distinct lines -> A and B miss in
    #      every period: hits = 2 (warm-up only).
    # SRRIP: after warm-up [A0 B0 - -]. Period 1: s1, s2 fill the empty ways at RRPV 2;
    #      s3: age all -> [A1 B1 s1:3 s2:3] -> evicts s1; A, B hit -> [A0 B0 s3:2 s2:3].
    #      Period 2: s4 evicts s2; s5: age -> [A1 B1 3 3] evicts s3; s6 evicts s4; A, B hit
    #      -> [A0 B0 2 2]. Period 3: s7 ages -> [A1 B1 3 3], evicts; s8 evicts; s9 ages
    #      [A2 B2 3 3] evicts; A, B hit -> [A0 B0 s9:2 s8:3] = the state after period 1.
    #      So A and B hit in every period: hits = 2 + 2 P.
    periods = 40
    seq = [0, 1, 0, 1]
    nxt = 10
    for _ in range(periods):
        seq += [nxt, nxt + 1, nxt + 2, 0, 1]
        nxt += 3
    addrs = np.array(seq) * LINE
    assert one_set(4, "lru").access(addrs).stats.hits == 2
    srrip = one_set(4, "srrip").access(addrs).stats
    assert srrip.hits == 2 + 2 * periods
    assert srrip.hit_rate == pytest.approx((2 + 2 * periods) / (4 + 5 * periods))


def test_hierarchy_feeds_each_level_the_previous_levels_stream() -> None:
    l1 = CacheSpec(capacity_bytes=1024, ways=2, policy="lru")
    l2 = CacheSpec(capacity_bytes=128 * 1024, ways=8, policy="srrip")
    h = CacheHierarchy([l1, l2])
    addrs, writes = synthetic_stream(
        "zipf", 20_000, footprint_bytes=64 * 1024, write_fraction=0.3, seed=5
    )
    r = h.access(addrs, writes)
    s1, s2 = r.levels
    assert s1.accesses == 20_000
    assert s2.accesses == s1.fills + s1.writebacks + s1.write_throughs
    assert s2.writes == s1.writebacks
    assert len(r.memory_addresses) == s2.fills + s2.writebacks
    assert r.memory_writes == s2.writebacks
    assert r.memory_reads == s2.fills
    # the same L1 on its own sees exactly the same thing
    alone = CacheSim(l1).access(addrs, writes).stats
    assert alone == s1
    # an L2 larger than the footprint misses each line at most once
    assert s2.misses <= 64 * 1024 // LINE


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"capacity_bytes": 32768, "line_bytes": 48, "ways": 8}, "line_bytes"),
        ({"capacity_bytes": 1000, "line_bytes": 64, "ways": 8}, "capacity_bytes"),
        ({"capacity_bytes": 32768, "policy": "plru"}, "policy"),
        ({"capacity_bytes": 32768, "ways": 0}, "ways"),
    ],
)
def test_bad_cache_specs_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as err:
        CacheSpec.parse(data)
    assert any(field in p.path or field in p.message for p in err.value.problems)


def test_bad_access_arrays_are_spec_errors() -> None:
    c = one_set(2, "lru")
    with pytest.raises(SpecError, match="is_write"):
        c.access(np.array([0, 64]), np.array([True]))
    with pytest.raises(SpecError, match="addresses"):
        c.access(np.array([-64]))


# ----------------------------------------------------------------------------- streams


def test_synthetic_patterns() -> None:
    a, w = synthetic_stream("stream", 10, footprint_bytes=4 * LINE)
    assert a.tolist() == [0, 64, 128, 192, 0, 64, 128, 192, 0, 64]
    assert not w.any()
    # 8 lines, stride 4 lines: 0, 4 then the next sweep shifted by one line
    s, _ = synthetic_stream("strided", 6, footprint_bytes=8 * LINE, stride_bytes=4 * LINE)
    assert (s // LINE).tolist() == [0, 4, 1, 5, 2, 6]
    r, w = synthetic_stream("random", 10_000, footprint_bytes=1024 * LINE, write_fraction=0.25)
    assert r.min() >= 0 and r.max() < 1024 * LINE and (r % LINE == 0).all()
    assert w.mean() == pytest.approx(0.25, abs=0.02)  # sd = 0.0043
    # zipf s = 1 over 100 lines: the top line has probability 1 / H_100 = 0.193
    z, _ = synthetic_stream("zipf", 50_000, footprint_bytes=100 * LINE, zipf_s=1.0)
    top = np.bincount(z // LINE).max() / 50_000
    assert top == pytest.approx(1 / sum(1 / k for k in range(1, 101)), abs=0.01)
    with pytest.raises(SpecError, match="known: random, stream, strided, zipf"):
        synthetic_stream("spiral", 10, footprint_bytes=1024)


def test_trace_reader(tmp_path: Path) -> None:
    p = tmp_path / "t.trace"
    p.write_text("# comment\nR 0x40\n0x80 W\n\n4096   # read by default\nst 64\n")
    a, w = read_address_trace(p)
    assert a.tolist() == [64, 128, 4096, 64]
    assert w.tolist() == [False, True, False, True]
    bad = tmp_path / "bad.trace"
    bad.write_text("R 0x40\nR zz\nX 1 2\n")
    with pytest.raises(SpecError) as err:
        read_address_trace(bad)
    assert [pr.path for pr in err.value.problems] == ["line 2", "line 3"]
    assert str(bad) in str(err.value)
    with pytest.raises(SpecError, match="file not found"):
        read_address_trace(tmp_path / "missing")


def test_trace_addresses_beyond_64_bits_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "big.trace"
    bad.write_text("R 0x40\nR 0x10000000000000000\nW 99999999999999999999999\n")
    with pytest.raises(SpecError) as err:
        read_address_trace(bad)
    assert [pr.path for pr in err.value.problems] == ["line 2", "line 3"]
    assert "64 bits" in str(err.value)


def test_graph_stream_lays_out_tensors_and_walks_them_line_by_line() -> None:
    from workloads.graph import Access, Graph, Op, Tensor

    g = Graph(
        tensors={
            "w": Tensor(name="w", bytes=256, kind="weight"),
            "x": Tensor(name="x", bytes=128, kind="activation"),
            "y": Tensor(name="y", bytes=64, kind="activation"),
        },
        ops=(
            Op(
                name="mm",
                kind="gemm",
                reads=(Access(tensor="w", bytes=256), Access(tensor="x", bytes=128)),
                writes=(Access(tensor="y", bytes=64),),
            ),
            Op(name="again", kind="other", reads=(Access(tensor="x", bytes=256),)),
        ),
    )
    a, w = graph_address_stream(g, line_bytes=64, align_bytes=4096)
    # w at 0 (4 lines), x at 4096 (2 lines), y at 8192; the second op re-reads x twice
    assert a.tolist() == [0, 64, 128, 192, 4096, 4160, 8192, 4096, 4160, 4096, 4160]
    assert w.tolist() == [False] * 6 + [True] + [False] * 4
    capped, _ = graph_address_stream(g, max_accesses=5)
    assert capped.size == 5
