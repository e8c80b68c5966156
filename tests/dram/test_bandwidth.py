"""Bandwidth and scheduling behaviour under load, against hand-derived bounds."""

from __future__ import annotations

import pytest

from hw_models import DRAMDevice, load_dram_device
from memsim.dram import ControllerConfig, simulate_requests, traffic
from tests.dram.conftest import DEVICES

N = 12_000


@pytest.mark.parametrize("name", DEVICES)
def test_stream_interleaved_across_bank_groups_reaches_90_percent(name: str) -> None:
    # RoCoBaRaCh sends consecutive lines to different bank groups: bursts can follow
    # each other at tCCD_S = nBL, so only refresh (nRFC/nREFI, 4.5 % on DDR4 up to 9 %
    # on HBM) and row switches keep the bus idle.
    dev = load_dram_device(name)
    st = simulate_requests(
        dev, traffic.stream(dev, N), config=ControllerConfig(mapping="RoCoBaRaCh"), check=False
    )
    assert st.peak_fraction >= 0.90
    assert st.peak_fraction <= 1.0


@pytest.mark.parametrize("name", DEVICES)
def test_stream_in_one_bank_group_is_capped_by_tccd_l(name: str) -> None:
    # RoBaRaCoCh keeps consecutive lines in one row of one bank: back-to-back reads
    # are tCCD_L apart but hold the bus nBL cycles, so the channel is busy
    # nBL / nCCD_L of the time (DDR4: 4/8 = 50 %), less refresh (x (1 - nRFC/nREFI)).
    # A small read queue keeps the controller from reaching into the next bank
    # (another bank group) before a row is done.
    dev = load_dram_device(name)
    t = dev.timing
    cap = t.nBL / t.nCCD_L * (1 - t.nRFC / t.nREFI)
    cfg = ControllerConfig(mapping="RoBaRaCoCh", read_queue_size=4)
    st = simulate_requests(dev, traffic.stream(dev, N), config=cfg, check=False)
    assert st.peak_fraction == pytest.approx(cap, rel=0.06)
    assert st.peak_fraction <= t.nBL / t.nCCD_L


def test_a_deep_queue_overlaps_the_next_bank_group(ddr4: DRAMDevice) -> None:
    # With 32 entries and 128 bursts per DDR4 row, the queue holds the next row's
    # first bursts (next bank, next bank group) for the last 32 bursts of every
    # row: FR-FCFS interleaves the two groups there, so the stream beats the
    # one-group cap of 50 % (about 1/4 of the time at full rate: ~0.6).
    tr = traffic.stream(ddr4, N)
    deep = simulate_requests(ddr4, tr, config=ControllerConfig(mapping="RoBaRaCoCh"), check=False)
    assert 0.55 < deep.peak_fraction < 0.7


def test_frfcfs_beats_fcfs_on_random_traffic_under_load(ddr4: DRAMDevice) -> None:
    # In-order FCFS opens one bank at a time (ACT, tRCD, RD, then the next
    # request's PRE/ACT): about tRP + tRCD + ... per 4-cycle burst. FR-FCFS keeps
    # 16 banks busy and is limited by tFAW (4 ACTs per 34 cycles -> at most
    # 4 x 4 / 34 = 47 % of peak).
    tr = traffic.random_uniform(ddr4, 6000, seed=3)
    fr = simulate_requests(ddr4, tr, config=ControllerConfig(scheduler="frfcfs"), check=False)
    fc = simulate_requests(ddr4, tr, config=ControllerConfig(scheduler="fcfs"), check=False)
    assert fr.bandwidth_bytes_per_s > 3 * fc.bandwidth_bytes_per_s
    assert fr.peak_fraction <= 4 * 4 / 34


def test_closed_page_wins_at_light_load_and_ties_at_saturation(ddr4: DRAMDevice) -> None:
    # Uniform random traffic almost never hits an open row. At light load open
    # page pays a conflict (nRP + nRCD + nCL + nBL = 70 cycles) where closed page
    # pays a miss (48 cycles); at saturation the precharge is hidden behind other
    # banks' work either way, and tFAW sets the pace.
    light = traffic.random_uniform(ddr4, 4000, interval_cycles=400, seed=5)
    lo = simulate_requests(ddr4, light, config=ControllerConfig(row_policy="open"), check=False)
    lc = simulate_requests(ddr4, light, config=ControllerConfig(row_policy="closed"), check=False)
    assert lc.avg_read_latency_ns < 0.9 * lo.avg_read_latency_ns
    busy = traffic.random_uniform(ddr4, 6000, seed=5)
    so = simulate_requests(ddr4, busy, config=ControllerConfig(row_policy="open"), check=False)
    sc = simulate_requests(ddr4, busy, config=ControllerConfig(row_policy="closed"), check=False)
    assert sc.avg_read_latency_ns == pytest.approx(so.avg_read_latency_ns, rel=0.05)
    assert sc.bandwidth_bytes_per_s == pytest.approx(so.bandwidth_bytes_per_s, rel=0.05)


def test_row_hit_cap_bounds_the_wait_of_a_conflicting_request(ddr4: DRAMDevice) -> None:
    # One old request to row B waits behind a long run of younger hits to row A of
    # the same bank. Plain FR-FCFS serves all 63 hits first (rows opened: A, B);
    # with a cap of 4 the conflict gets its precharge after a few hits and row A
    # is opened again for the rest (rows opened: A, B, A).
    org = ddr4.organization
    hits = [i * org.access_bytes for i in range(1, 64)]
    addrs = [0, org.row_bytes * org.banks, *hits]  # RoBaRaCoCh: +banks*row = next row, bank 0
    from memsim.dram import RequestTrace

    arrivals = [0, 1] + [2] * len(hits)
    tr = RequestTrace.from_arrays(addrs, arrival_cycle=arrivals)
    plain = simulate_requests(ddr4, tr, config=ControllerConfig(scheduler="frfcfs"))
    capped = simulate_requests(
        ddr4, tr, config=ControllerConfig(scheduler="frfcfs_cap", row_hit_cap=4)
    )
    assert plain.commands["ACT"] == 2
    assert capped.commands["ACT"] == 3
    assert plain.violations == capped.violations == 0


def test_write_drain_serves_writes_in_batches(ddr4: DRAMDevice) -> None:
    tr = traffic.mix(ddr4, 6000, write_fraction=0.5, seed=1)
    st = simulate_requests(ddr4, tr, config=ControllerConfig(write_queue_size=16))
    assert st.writes > 2500 and st.commands["WR"] == st.writes
    assert st.max_write_queue <= 16
    assert st.violations == 0
