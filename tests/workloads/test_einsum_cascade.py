"""FuseMax's pass counts and the traffic of each cascade, by hand (bf16, d = 64)."""

from __future__ import annotations

import pytest

from hw_models.errors import SpecError
from workloads.attention import AttentionShape
from workloads.einsum_cascade import (
    cascade_passes,
    cascade_traffic,
    flat_traffic,
    fusemax_traffic,
)

D, E = 64, 2
BUF = 65536  # 64 KiB


def _shape(n: int, *, heads: int = 1) -> AttentionShape:
    return AttentionShape(
        batch=1, heads=heads, kv_heads=heads, head_dim=D, q_len=n, kv_len=n, causal=False
    )


def test_pass_counts() -> None:
    assert [cascade_passes(c) for c in ("3pass", "2pass", "1pass")] == [3, 2, 1]
    with pytest.raises(SpecError, match="cascade"):
        cascade_passes("4pass")


def test_one_pass_tiles_do_not_depend_on_the_sequence() -> None:
    # rows = floor((65536 - 2*64*2) / ((2*64 + 2) * 2)) = floor(65280 / 260) = 251
    for n in (1024, 65536):
        t = fusemax_traffic(_shape(n), BUF)
        assert t.rows_per_tile == 251
    t = fusemax_traffic(_shape(1024), BUF)
    assert t.tiles == 5  # ceil(1024 / 251)
    kv = 1024 * D * E  # 131,072 B
    assert t.k_bytes == t.v_bytes == 5 * kv
    assert t.q_bytes == t.o_bytes == kv
    assert t.total_bytes == 12 * kv  # 1,572,864 B
    assert t.qk_flops == t.av_flops == 2 * 1024 * 1024 * D


def test_three_pass_keeps_whole_rows_when_they_fit() -> None:
    # rows = floor(65280 / ((1024 + 128) * 2)) = floor(65280 / 2304) = 28 -> 37 tiles
    t = flat_traffic(_shape(1024), BUF)
    assert t.row_resident and t.rows_per_tile == 28 and t.tiles == 37
    kv = 1024 * D * E
    assert t.k_bytes == t.v_bytes == 37 * kv  # scores stay on chip: K read once per tile
    assert t.qk_flops == 2 * 1024 * 1024 * D
    two = cascade_traffic(_shape(1024), BUF, "2pass")
    assert two.total_bytes == t.total_bytes  # same resident rows: passes cost no traffic


def test_three_pass_rereads_k_when_a_row_does_not_fit() -> None:
    # a row of 65536 bf16 scores (128 KiB) exceeds the buffer: 251-row tiles, 262 of them;
    # K is read (and QK recomputed) in each of the 3 passes, V once
    n = 65536
    t = flat_traffic(_shape(n), BUF)
    kv = n * D * E
    assert not t.row_resident and t.tiles == 262
    assert t.k_bytes == 3 * 262 * kv and t.v_bytes == 262 * kv
    assert t.qk_flops == 3 * 2 * n * n * D
    two = cascade_traffic(_shape(n), BUF, "2pass")
    assert two.k_bytes == 2 * 262 * kv
    one = fusemax_traffic(_shape(n), BUF)
    assert one.k_bytes == 262 * kv
    assert t.total_bytes > two.total_bytes > one.total_bytes


def test_spilled_scores_are_written_once_and_read_back_per_later_pass() -> None:
    n = 65536
    t = flat_traffic(_shape(n, heads=2), BUF, row_spill="spill")
    assert t.k_bytes == 2 * 262 * n * D * E
    assert t.score_bytes == 2 * 3 * n * n * E  # per head: write 1 + read 2 score matrices
    assert t.qk_flops == 2 * 2 * n * n * D


def test_a_buffer_without_room_for_a_row_is_refused() -> None:
    with pytest.raises(SpecError, match="buffer_bytes"):
        fusemax_traffic(_shape(1024), 500)  # needs (4 d + 2) e = 516 B
