"""Attention IO models: unfused grows with N², fused follows FlashAttention's tiling count."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models.errors import SpecError
from workloads.attention import (
    AttentionShape,
    attention_names,
    block_sizes,
    fused_backward_traffic,
    fused_fa2_traffic,
    fused_traffic,
    get_attention,
    unfused_backward_traffic,
    unfused_traffic,
)


def shape(
    n: int, *, causal: bool = False, d: int = 64, heads: int = 1, kv_heads: int = 1
) -> AttentionShape:
    return AttentionShape(
        batch=1, heads=heads, kv_heads=kv_heads, head_dim=d, q_len=n, kv_len=n, causal=causal
    )


def test_unfused_score_traffic_grows_with_n_squared() -> None:
    a, b = unfused_traffic(shape(1024)), unfused_traffic(shape(2048))
    # S written + read, P written + read: 4 x N^2 x 2 B
    assert a.scores_written + a.scores_read + a.probs_written + a.probs_read == 4 * 1024**2 * 2
    assert (b.total - 2 * (b.q_read + b.k_read + b.v_read + b.o_written) / 2) > 0
    assert b.scores_written == 4 * a.scores_written


def test_fused_algorithm1_tiling_count_by_hand() -> None:
    s = shape(1024)
    # M = 64 KiB = 32768 bf16 elements; Bc = ceil(32768 / (4 x 64)) = 128; Br = min(128, 64) = 64
    assert block_sizes(s, 64 * 1024) == (128, 64)
    t = fused_traffic(s, 64 * 1024)
    # Tc = 1024 / 128 = 8 key blocks; Q and O are read once per key block:
    # 8 x 1024 x 64 x 2 B = 1,048,576 B = 4 N^2 d^2 / M elements (Theorem 2) x 2 B
    assert t.q_read == t.o_read == 8 * 1024 * 64 * 2 == 4 * 1024**2 * 64**2 / 32768 * 2
    assert t.k_read == t.v_read == 1024 * 64 * 2  # K, V once
    assert t.o_written == 1024 * 64 * 2 + t.q_read  # zero-init, then once per key block
    assert t.stats_read == 8 * 1024 * 2 * 4  # l and m (fp32) per row per key block
    assert t.stats_written == 1024 * 8 + t.stats_read
    assert t.total == 3_678_208


def test_fused_traffic_halves_when_the_buffer_doubles() -> None:
    small, big = fused_traffic(shape(4096), 64 * 1024), fused_traffic(shape(4096), 128 * 1024)
    assert small.q_read == 2 * big.q_read  # Θ(N² d² / M)
    assert small.k_read == big.k_read


def test_fused_causal_skips_blocks_above_the_diagonal() -> None:
    t = fused_traffic(shape(1024, causal=True), 64 * 1024)
    # query block i (64 rows) ends at position 64 (i + 1) - 1 and meets key blocks
    # 0 .. that // 128: 1, 1, 2, 2, ..., 8, 8 -> 72 visits of 64 rows
    assert t.q_read == 72 * 64 * 64 * 2
    assert t.flops == 4 * 64 * (1024 * 1025 / 2)


def test_fa2_reads_kv_once_per_query_block() -> None:
    t = fused_fa2_traffic(shape(1024), 64 * 1024)
    # Br = 64 -> 16 query blocks, each streams all of K and V
    assert t.k_read == 16 * 1024 * 64 * 2 and t.q_read == t.o_written == 1024 * 64 * 2


def test_gqa_decode_reads_each_kv_head_once() -> None:
    s = AttentionShape(batch=1, heads=32, kv_heads=8, head_dim=128, q_len=1, kv_len=4096)
    for name in ("fused", "fused_fa2"):
        t = get_attention(name)(s, 192 * 1024)
        assert t.k_read == 8 * 4096 * 128 * 2  # the 4 query heads of a group share one pass


def test_unbounded_buffer_is_compulsory_traffic() -> None:
    s = shape(2048, causal=True, heads=4, kv_heads=2)
    for name in ("fused", "fused_fa2"):
        t = get_attention(name)(s, None)
        assert t.total == (4 + 4) * 2048 * 64 * 2 + 2 * 2 * 2048 * 64 * 2


def test_too_small_buffer_is_an_error() -> None:
    with pytest.raises(SpecError, match="sram_bytes"):
        fused_traffic(shape(128), 100)


@pytest.mark.parametrize("name", attention_names())
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3000),
    q=st.integers(1, 64),
    group=st.sampled_from([1, 2, 8]),
    d=st.sampled_from([64, 128]),
    kib=st.integers(16, 512),
    causal=st.booleans(),
)
def test_never_below_compulsory_and_more_buffer_never_hurts(
    name: str, n: int, q: int, group: int, d: int, kib: int, causal: bool
) -> None:
    s = AttentionShape(
        batch=1, heads=group * 2, kv_heads=2, head_dim=d, q_len=min(q, n), kv_len=n, causal=causal
    )
    model = get_attention(name)
    floor = model(s, None) if name != "unfused" else fused_traffic(s, None)
    small, big = model(s, kib * 1024), model(s, 2 * kib * 1024)
    assert small.total >= floor.total - 1e-6
    if not causal:  # causal tiles on the diagonal are loaded whole: bigger tiles can load more
        assert big.total <= small.total + 1e-6
    assert small.flops >= floor.flops - 1e-6


def test_fused_backward_algorithm4_by_hand() -> None:
    # M = 64 KiB: Bc = 128, Br = 64, Tc = 8 key blocks (as the forward above). Algorithm 4
    # reads Q_i, O_i, dO_i, dQ_i and writes dQ_i once per key block (8 x 1024 x 64 x 2 B),
    # zero-initialises dQ, dK, dV, reads K, V once and writes dK, dV once more.
    t = fused_backward_traffic(shape(1024), 64 * 1024)
    per_pass = 8 * 1024 * 64 * 2
    nd = 1024 * 64 * 2
    assert t.q_read == t.o_read == t.do_read == t.dq_read == per_pass == 1_048_576
    assert t.dq_written == nd + per_pass
    assert t.k_read == t.v_read == nd
    assert t.dk_written == t.dv_written == 2 * nd
    assert t.stats_read == 8 * 1024 * 2 * 4
    assert t.p_read == t.ds_written == 0.0  # nothing N x N leaves the chip
    assert t.total == 4 * 1_048_576 + 1_179_648 + 2 * 131_072 + 2 * 262_144 + 65_536 == 6_225_920
    # five matrix products (S recomputed, dV, dP, dQ, dK) of 2 N^2 d FLOPs each
    assert t.flops == 5 * 2 * 1024**2 * 64


def test_fused_backward_rereads_halve_when_the_buffer_doubles() -> None:
    small = fused_backward_traffic(shape(4096), 64 * 1024)
    big = fused_backward_traffic(shape(4096), 128 * 1024)
    assert small.dq_read == 2 * big.dq_read  # Theorem 5: Θ(N² d² / M)
    assert small.k_read == big.k_read and small.dk_written == big.dk_written
    unbounded = fused_backward_traffic(shape(4096), None)
    assert unbounded.dq_read == 0.0 and unbounded.total < big.total


def test_unfused_backward_algorithm3_by_hand() -> None:
    t = unfused_backward_traffic(shape(1024))
    nn = 1024**2 * 2  # one N x N fp16 matrix
    nd = 1024 * 64 * 2
    # P read twice (dV, dS), dP written and read, dS written and read twice: 7 passes
    assert t.p_read + t.dp_written + t.dp_read + t.ds_written + t.ds_read == 7 * nn
    # Q, K, V read, dO read twice, dQ, dK, dV written
    assert t.total == 7 * nn + 8 * nd == 15_728_640
    assert t.flops == 4 * 2 * 1024**2 * 64
    # dropout as its own kernel: dP_dropped read, dP written, the 1-byte mask read
    d = unfused_backward_traffic(replace(shape(1024), dropout=True))
    assert d.total - t.total == 2 * nn + 1024**2 == 5_242_880
    f = unfused_traffic(replace(shape(1024), dropout=True))
    assert f.total - unfused_traffic(shape(1024)).total == 2 * nn + 1024**2
    # the fused kernels regenerate the mask on chip: no extra traffic
    assert fused_traffic(replace(shape(1024), dropout=True), 64 * 1024) == fused_traffic(
        shape(1024), 64 * 1024
    )
