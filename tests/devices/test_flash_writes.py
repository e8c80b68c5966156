"""Flash write path: unit-mapped FTL with a packing write buffer, greedy GC, write
amplification, read-modify-write factor, endurance, timing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models import SpecError
from hw_models.flash import FlashGeometry
from memsim.flash import greedy_write_amplification, simulate_flash_writes

KiB = 1024


def geometry(**over: object) -> FlashGeometry:
    """2 x 2 x 1 = 4 planes of 256 blocks of 64 x 4 KiB pages (1024 blocks, 256 MiB raw)."""
    data: dict[str, object] = {
        "channels": 2,
        "dies_per_channel": 2,
        "planes_per_die": 1,
        "page_bytes": 4 * KiB,
        "pages_per_block": 64,
        "blocks_per_plane": 256,
        "tR_s": 50e-6,
        "tPROG_s": 500e-6,
        "tERASE_s": 3e-3,
        "channel_rate_bytes_per_s": 400e6,
        "overprovisioning": 0.07,
        "rated_tbw_bytes": 1e12,
    }
    data.update(over)
    return FlashGeometry.parse(data)


def test_sequential_writes_without_overwrite_have_no_amplification() -> None:
    g = geometry()
    # 40,000 pages < user space of int(1024 x 64 x 0.93) = 60,948 pages: nothing is overwritten
    s = simulate_flash_writes(
        g, request_bytes=4 * KiB, requests=40_000, pattern="sequential", precondition=False
    )
    assert s.write_amplification == 1.0
    assert s.gc_unit_moves == 0
    assert s.nand_bytes_written == 40_000 * 4096
    # time: 40,000 programs over 4 planes x 500 us = 5.0 s; channel 163.84 MB / 800 MB/s = 0.2 s
    assert s.elapsed_s == pytest.approx(40_000 * 500e-6 / 4, rel=1e-12)
    assert s.gc_time_s == 0.0
    # endurance: NAND bytes / rated TBW
    assert s.endurance_used_fraction == pytest.approx(40_000 * 4096 / 1e12, rel=1e-12)


def test_sequential_overwrite_of_a_full_device_invalidates_whole_blocks() -> None:
    # after a sequential fill, overwriting in the same order empties the oldest blocks
    # completely, so greedy GC finds victims with no valid page: WA stays 1
    s = simulate_flash_writes(
        geometry(), request_bytes=16 * KiB, requests=30_000, pattern="sequential"
    )
    assert s.write_amplification == 1.0
    assert s.gc_unit_moves == 0
    assert s.erases > 0


def test_random_overwrite_at_7_percent_op_matches_the_greedy_estimate() -> None:
    # Greedy GC under uniform random page writes: A = a / (a + W0(-a e^-a)),
    # a = 1 / (1 - 0.07) = 1.0753 -> A = 7.32 (Hu et al. 2009; Xiang & Kurkoski 2011).
    # The estimate is for infinitely large blocks; with 64-page blocks the simulated
    # greedy GC amplifies a few per cent less. Stated tolerance: 10 %.
    est = greedy_write_amplification(0.07)
    assert est == pytest.approx(7.32, abs=0.01)
    s = simulate_flash_writes(geometry(), request_bytes=4 * KiB, requests=150_000, seed=1)
    assert s.write_amplification > 3
    assert s.write_amplification == pytest.approx(est, rel=0.10)
    assert s.greedy_wa_estimate == est
    # bookkeeping: every NAND page programmed is a host page or a GC move
    assert s.nand_bytes_written == (150_000 + s.gc_unit_moves) * 4096
    assert s.endurance_used_fraction == pytest.approx(s.nand_bytes_written / 1e12)


def test_more_overprovisioning_means_less_amplification() -> None:
    was = [
        simulate_flash_writes(
            geometry(overprovisioning=op), request_bytes=4 * KiB, requests=60_000
        ).write_amplification
        for op in (0.07, 0.15, 0.28)
    ]
    assert was[0] > was[1] > was[2] > 1.0
    for op, wa in zip((0.15, 0.28), was[1:], strict=True):
        assert wa == pytest.approx(greedy_write_amplification(op), rel=0.10)


def test_greedy_formula_reproduces_the_published_value() -> None:
    # Xiang & Kurkoski (arXiv 1110.4245): overprovisioning factor 0.3 of the user size
    # (physical / logical = 1.3) gives 2.36 (simulation: 2.35)
    assert greedy_write_amplification(1 - 1 / 1.3) == pytest.approx(2.36, abs=0.005)
    assert greedy_write_amplification(0.0) == float("inf")


def test_random_write_timing_counts_gc_work() -> None:
    g = geometry()
    s = simulate_flash_writes(g, request_bytes=4 * KiB, requests=50_000, seed=2)
    moves, erases = s.gc_unit_moves, s.erases
    # one unit per page here, so every moved unit is one page sensed and one programmed
    assert s.gc_page_reads == moves
    gc = (moves * (50e-6 + 500e-6) + erases * 3e-3) / 4
    assert s.gc_time_s == pytest.approx(gc, rel=1e-12)
    plane = 50_000 * 500e-6 / 4 + gc
    chan = (50_000 + 2 * moves) * 4096 / 800e6
    assert s.elapsed_s == pytest.approx(max(plane, chan), rel=1e-12)
    assert s.throughput_bytes_per_s == pytest.approx(50_000 * 4096 / s.elapsed_s)


def test_sub_unit_writes_read_modify_write_the_unit() -> None:
    # 2 KiB writes to 4 KiB units: each rewrites a whole unit (RMW factor 2), but the
    # FTL itself amplifies nothing on a fresh sequential fill (WA 1)
    s = simulate_flash_writes(
        geometry(), request_bytes=2 * KiB, requests=1000, pattern="sequential", precondition=False
    )
    assert s.map_unit_bytes == 4 * KiB
    assert s.rmw_factor == 2.0
    assert s.write_amplification == 1.0
    assert s.nand_bytes_per_host_byte == 2.0
    assert s.nand_bytes_written == 1000 * 4096


def big_page_geometry(**over: object) -> FlashGeometry:
    """As above with 16 KiB pages: 1024 blocks of 64 x 16 KiB pages (256 x 4 KiB units)."""
    return geometry(page_bytes=16 * KiB, **over)


def test_4k_writes_are_packed_into_16k_pages() -> None:
    g = big_page_geometry()
    s = simulate_flash_writes(
        g, request_bytes=4 * KiB, requests=40_000, pattern="sequential", precondition=False
    )
    assert (s.map_unit_bytes, s.write_amplification, s.rmw_factor) == (4 * KiB, 1.0, 1.0)
    assert s.nand_bytes_written == 40_000 * 4096
    # the write buffer packs 4 units a page: 10,000 programs over 4 planes x 500 us
    # = 1.25 s (a page-per-write FTL would need 5.0 s); channel 163.84 MB / 800 MB/s = 0.2 s
    assert s.elapsed_s == pytest.approx(10_000 * 500e-6 / 4, rel=1e-12)


def test_random_4k_overwrite_on_16k_pages_matches_the_greedy_estimate() -> None:
    # Acceptance finding: with whole-page rewrites the PM9A3 reported WA 16.8 beside a
    # greedy estimate of 4.1. Mapping 4 KiB units, the FTL is the greedy model over
    # units: A = a / (a + W0(-a e^-a)), a = 1 / 0.93 -> 7.32 at 7 % spare, 10 % tolerance
    # (blocks of finitely many units amplify a few per cent less than the formula).
    g = big_page_geometry()
    s = simulate_flash_writes(g, request_bytes=4 * KiB, requests=150_000, seed=1)
    est = greedy_write_amplification(0.07)
    assert s.rmw_factor == 1.0
    assert s.write_amplification == pytest.approx(est, rel=0.10)
    assert s.nand_bytes_written == (150_000 + s.gc_unit_moves) * 4096
    # GC senses a victim page once for all its valid units: never more reads than moves,
    # never fewer than moves / 4
    assert s.gc_unit_moves / 4 <= s.gc_page_reads <= s.gc_unit_moves
    # page-mapped mode (unit = page, 64-page blocks): the greedy FTL amplification over
    # pages (same formula, same tolerance as the 4 KiB-page test above), plus a 4x
    # read-modify-write reported separately, so NAND bytes per host byte ~ 4 x 7.32
    p = simulate_flash_writes(
        g, request_bytes=4 * KiB, requests=40_000, seed=1, map_unit_bytes=16 * KiB
    )
    assert p.rmw_factor == 4.0
    assert p.write_amplification == pytest.approx(est, rel=0.10)
    assert p.nand_bytes_per_host_byte == pytest.approx(4 * p.write_amplification, rel=1e-12)


def test_preset_random_4k_writes_agree_with_their_own_estimate() -> None:
    from hw_models.flash_presets import load_flash_device

    # PM9A3 7.68 TB: spare 1 - 7.68 TB / 8 TiB = 0.1268 -> a = 1.145, greedy A = 4.13
    dev = load_flash_device("samsung_pm9a3_7t68")
    s = simulate_flash_writes(dev, request_bytes=4 * KiB, requests=50_000)
    assert s.greedy_wa_estimate == pytest.approx(4.13, abs=0.01)
    assert s.write_amplification == pytest.approx(s.greedy_wa_estimate, rel=0.10)
    assert s.rmw_factor == 1.0


@pytest.mark.parametrize("unit", [0, 3000, 32 * KiB])
def test_map_unit_must_divide_the_page(unit: int) -> None:
    with pytest.raises(SpecError) as err:
        simulate_flash_writes(
            big_page_geometry(), request_bytes=4096, requests=10, map_unit_bytes=unit
        )
    assert err.value.problems[0].path == "map_unit_bytes"


def test_no_tbw_means_no_endurance_figure() -> None:
    g = geometry(rated_tbw_bytes=None)
    s = simulate_flash_writes(g, request_bytes=4 * KiB, requests=100, pattern="sequential")
    assert s.endurance_used_fraction is None


def test_too_little_spare_for_gc_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as err:
        simulate_flash_writes(geometry(overprovisioning=0.001), request_bytes=4096, requests=10)
    assert err.value.problems[0].path == "overprovisioning"
    with pytest.raises(SpecError) as err2:
        simulate_flash_writes(geometry(), request_bytes=4096, requests=10, pattern="zipf")
    assert err2.value.problems[0].path == "pattern"


@settings(max_examples=20, deadline=None)
@given(
    units_per_page=st.sampled_from([1, 2, 4]),
    request_units=st.integers(1, 6),
    half_unit=st.booleans(),
    op=st.floats(0.08, 0.4),
    pattern=st.sampled_from(["random", "sequential"]),
    seed=st.integers(0, 10),
)
def test_write_accounting_invariants(
    units_per_page: int, request_units: int, half_unit: bool, op: float, pattern: str, seed: int
) -> None:
    # conservation: every NAND unit programmed is a host unit or a GC move; the FTL never
    # writes less than the host asked; RMW is exactly the round-up to whole units
    g = geometry(page_bytes=units_per_page * 4 * KiB, overprovisioning=op)
    size = request_units * 4 * KiB - (2 * KiB if half_unit else 0)
    s = simulate_flash_writes(
        g, request_bytes=size, requests=3000, pattern=pattern, seed=seed, max_simulated_blocks=64
    )
    host_units = 3000 * request_units
    assert s.nand_bytes_written == (host_units + s.gc_unit_moves) * 4 * KiB
    assert s.write_amplification >= 1.0
    assert s.rmw_factor == pytest.approx(request_units * 4 * KiB / size, rel=1e-12)
    assert s.gc_unit_moves / units_per_page <= s.gc_page_reads <= s.gc_unit_moves
    assert s.throughput_bytes_per_s <= g.peak_write_bandwidth_bytes_per_s * (1 + 1e-12)
