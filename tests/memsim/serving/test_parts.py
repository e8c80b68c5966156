"""Arrival processes, length distributions and block managers on their own."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hw_models.errors import SpecError
from memsim.serving import (
    BLOCK_MANAGERS,
    Bucketing,
    ContiguousBlockManager,
    KVGeometry,
    PagedBlockManager,
    make_block_manager,
    make_requests,
    read_trace,
)


def test_poisson_and_gamma_gaps_have_the_asked_mean_and_cv() -> None:
    n = 40_000
    p = make_requests(arrival="poisson:8", requests=n, seed=1)
    gaps = np.diff(np.concatenate([[0.0], p.arrival_s]))
    # exponential: mean 1/8 s, CV 1; standard error of the mean 1/(8 sqrt(n)) = 0.06 %
    assert gaps.mean() == pytest.approx(1 / 8, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)
    g = make_requests(arrival="gamma:8:3", requests=n, seed=1)
    gaps = np.diff(np.concatenate([[0.0], g.arrival_s]))
    assert gaps.mean() == pytest.approx(1 / 8, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.08)


def test_length_distributions() -> None:
    r = make_requests(
        arrival="poisson:1",
        requests=20_000,
        prompt_len="uniform:10:20",
        output_len="lognormal:100:0.5:300",
        seed=4,
    )
    assert r.prompt_len.min() == 10 and r.prompt_len.max() == 20
    assert r.prompt_len.mean() == pytest.approx(15, rel=0.01)
    assert np.median(r.output_len) == pytest.approx(100, rel=0.03)
    assert r.output_len.max() == 300  # clipped at MAX
    same = make_requests(
        arrival="poisson:1",
        requests=20_000,
        prompt_len="uniform:10:20",
        output_len="lognormal:100:0.5:300",
        seed=4,
    )
    assert np.array_equal(same.arrival_s, r.arrival_s)  # a seed fixes everything


def test_lengths_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "lens.txt"
    f.write_text("5\n7\n")
    r = make_requests(arrival="poisson:1", requests=200, prompt_len=f"file:{f}", seed=0)
    assert set(r.prompt_len.tolist()) == {5, 7}
    f.write_text("5\nseven\n")
    with pytest.raises(SpecError, match=f"{f}:2"):
        make_requests(arrival="poisson:1", requests=2, prompt_len=f"file:{f}")


def test_trace_is_sorted_and_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(
        '{"arrival_s": 2, "prompt_len": 3, "output_len": 4}\n'
        '{"arrival_s": 1, "prompt_len": 5, "output_len": 6}\n'
    )
    t = read_trace(f)
    assert t.arrival_s.tolist() == [1.0, 2.0] and t.prompt_len.tolist() == [5, 3]
    f.write_text('{"arrival_s": 1, "prompt_len": 0, "output_len": 6}\n')
    with pytest.raises(SpecError, match=f"{f}:1"):
        read_trace(f)
    c = tmp_path / "t.csv"
    c.write_text("arrival,prompt_len,output_len\n0,1,1\n")
    with pytest.raises(SpecError, match="header lacks arrival_s"):
        read_trace(c)


GEO = KVGeometry(block_size=16, num_blocks=100, bytes_per_token=1000.0, swap_blocks=30)


def test_paged_blocks_follow_tokens_and_keep_the_watermark() -> None:
    m = PagedBlockManager(GEO, watermark=0.05)  # 5 blocks stay free for growth
    assert m.can_admit(95 * 16) and not m.can_admit(95 * 16 + 1)
    m.admit(1, 33)  # ceil(33 / 16) = 3 blocks
    assert (m.used_blocks, m.used_tokens) == (3, 33)
    assert m.try_grow(1, 48) and m.used_blocks == 3  # still 3 blocks
    assert m.try_grow(1, 49) and m.used_blocks == 4
    assert m.swap_out(1) == 4 * 16 * 1000.0
    assert (m.used_blocks, m.swapped_blocks) == (0, 4)
    assert m.can_swap_in(1) and m.swap_in(1) == 64_000.0
    m.free(1)
    assert (m.used_blocks, m.used_tokens, m.swapped_blocks) == (0, 0, 0)


def test_contiguous_reserves_max_seq_len() -> None:
    m = ContiguousBlockManager(GEO, max_seq_len=400)  # ceil(400 / 16) = 25 blocks each
    for rid in range(4):
        assert m.can_admit(10)
        m.admit(rid, 10)
    assert m.used_blocks == 100 and m.used_tokens == 40
    assert not m.can_admit(10)
    assert m.try_grow(0, 400) and not m.try_grow(0, 401)
    assert not m.fits_ever(401)


@pytest.mark.parametrize("name", BLOCK_MANAGERS.names())
def test_every_manager_never_overcommits(name: str) -> None:
    m = make_block_manager(name, GEO, watermark=0.0, max_seq_len=160)
    rid = 0
    while m.can_admit(150):
        m.admit(rid, 150)
        rid += 1
    assert m.used_blocks <= GEO.num_blocks
    assert rid == 10  # 150 tokens: 10 blocks (paged) or a 160-token = 10-block reservation
    with pytest.raises(RuntimeError):
        m.admit(rid, 150)  # asking without checking is a bug, not a silent overcommit


def test_bucket_brackets() -> None:
    b = Bucketing(exact_below=16, steps_per_octave=2)
    assert b.bracket(7) == (7, 7, 0.0)
    assert b.bracket(7.5) == (7, 8, 0.5)
    lo, hi, w = b.bracket(40)
    assert (lo, hi) == (32, 45) and w == pytest.approx(8 / 13)  # 16 * 2^(5/2) = 45.25
    lo, hi, _ = b.bracket(1000, context=True)
    assert (lo, hi) == (512, 1024)
    assert math.isclose(b.bracket(1024, context=True)[2], 0.0)


def test_swap_to_flash_is_bound_by_its_program_bandwidth() -> None:
    import workloads
    from hw_models import load_system
    from memsim.serving import IterationCost

    system = load_system("t4_flexgen")  # GDDR -> PCIe 3 x16 -> DDR -> NVMe -> local SSD
    cost = IterationCost(
        system, workloads.load_model("opt_6_7b"), device_tier="gddr", build_options={}
    )
    n = 64 * 2**20  # 64 MiB of blocks
    # FlexGen §6: the SSD writes 1 GB/s, reads 2 GB/s; links 13.8 GB/s (PCIe) and 15.75 GB/s
    # (NVMe) are faster; latencies 1 us + 10 us
    assert cost.swap_time(n, src="gddr", dst="ssd") == pytest.approx(n / 1e9 + 11e-6, rel=1e-12)
    assert cost.swap_time(n, src="ssd", dst="gddr") == pytest.approx(n / 2e9 + 11e-6, rel=1e-12)
    # to host DDR the PCIe link (16 GB/s x 0.865) is the slowest stage
    assert cost.swap_time(n, src="gddr", dst="ddr") == pytest.approx(
        n / (16e9 * 0.865) + 1e-6, rel=1e-12
    )
