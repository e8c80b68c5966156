"""Unloaded latencies, derived by hand from each preset's JEDEC timing.

One read to a precharged bank: ACT at 0, RD at nRCD, data ends nCL + nBL later,
so latency = nRCD + nCL + nBL. A read that hits the open row: RD at arrival,
latency = nCL + nBL. A conflict (another row open long enough for tRAS): PRE at
arrival, ACT nRP later, so latency = nRP + nRCD + nCL + nBL. (The second request
arrives at cycle 1000, long after the first finished and before the first
refresh is due at nREFI > 3000 cycles for every preset.)
"""

from __future__ import annotations

import numpy as np
import pytest

from hw_models import DRAMDevice, SpecError, load_dram_device
from memsim.dram import ControllerConfig, RequestTrace, simulate_request_times, simulate_requests
from tests.dram.conftest import DEVICES

LATER = 1000


@pytest.mark.parametrize("name", DEVICES)
def test_read_to_precharged_bank_is_rcd_cl_bl(name: str) -> None:
    dev = load_dram_device(name)
    t = dev.timing
    st = simulate_requests(dev, RequestTrace.from_arrays([0]))
    # e.g. DDR4-3200: 22 + 22 + 4 = 48 cycles = 30 ns
    assert st.avg_read_latency_cycles == t.nRCD + t.nCL + t.nBL
    assert st.avg_read_latency_ns == pytest.approx((t.nRCD + t.nCL + t.nBL) * t.tCK_ns)
    assert (st.row_misses, st.row_hits, st.row_conflicts) == (1, 0, 0)
    assert st.violations == 0


@pytest.mark.parametrize("name", DEVICES)
def test_read_hitting_open_row_is_cl_bl(name: str) -> None:
    dev = load_dram_device(name)
    t = dev.timing
    org = dev.organization
    # RoBaRaCoCh: the channel bits sit just above the burst offset, so the next
    # burst of the same channel, bank and row is `channels` bursts further
    nxt = org.access_bytes * org.channels
    trace = RequestTrace.from_arrays([0, nxt], arrival_cycle=[0, LATER])
    st = simulate_requests(dev, trace, config=ControllerConfig(mapping="RoBaRaCoCh"))
    assert st.max_read_latency_cycles == t.nRCD + t.nCL + t.nBL
    assert st.min_read_latency_cycles == t.nCL + t.nBL  # DDR4: 22 + 4 = 26
    assert (st.row_misses, st.row_hits) == (1, 1)


@pytest.mark.parametrize("name", DEVICES)
def test_row_conflict_adds_precharge(name: str) -> None:
    dev = load_dram_device(name)
    t = dev.timing
    org = dev.organization
    # ChRaBaRoCo: the row sits above the column bits; +row_bytes = same bank, next row
    trace = RequestTrace.from_arrays([0, org.row_bytes], arrival_cycle=[0, LATER])
    st = simulate_requests(dev, trace, config=ControllerConfig(mapping="ChRaBaRoCo"))
    assert st.row_conflicts == 1
    assert st.max_read_latency_cycles == t.nRP + t.nRCD + t.nCL + t.nBL
    assert st.violations == 0


def test_closed_page_turns_the_conflict_into_a_miss(ddr4: DRAMDevice) -> None:
    t = ddr4.timing
    trace = RequestTrace.from_arrays([0, ddr4.organization.row_bytes], arrival_cycle=[0, LATER])
    st = simulate_requests(
        ddr4, trace, config=ControllerConfig(mapping="ChRaBaRoCo", row_policy="closed")
    )
    # the row was closed right after the first read: the second is a plain miss, 48 cycles
    assert st.max_read_latency_cycles == t.nRCD + t.nCL + t.nBL == 48
    assert st.row_misses == 2


def test_arrival_during_refresh_waits_for_trfc(ddr4: DRAMDevice) -> None:
    t = ddr4.timing
    # the first all-bank refresh of rank 0 is issued at nREFI = 12480 (all banks idle);
    # a read arriving then must wait for tRFC = 560 cycles before its ACT
    trace = RequestTrace.from_arrays([0], arrival_cycle=[t.nREFI])
    st = simulate_requests(ddr4, trace)
    assert st.commands["REF"] == 1
    assert st.avg_read_latency_cycles == t.nRFC + t.nRCD + t.nCL + t.nBL


# -- the latency convention of Ramulator 2 and DRAMsim3: from admission to data -----


def test_front_end_offers_one_request_per_cycle(ddr4: DRAMDevice) -> None:
    # four reads at cycle 0 to four bank groups (RoCoBaRaCh): admitted at 0, 1, 2, 3;
    # ACTs tRRD_S = 4 apart, each RD nRCD after its ACT, so read i ends at
    # 4 i + nRCD + nCL + nBL = 48, 52, 56, 60 and its latency from admission is that
    # minus i: 48, 51, 54, 57 cycles
    t = ddr4.timing
    st, times = simulate_request_times(
        ddr4,
        RequestTrace.from_arrays(np.arange(4) * 64),
        config=ControllerConfig(mapping="RoCoBaRaCh"),
    )
    assert times.admit.tolist() == [0, 1, 2, 3]
    i = np.arange(4)
    assert times.completion.tolist() == (i * t.nRRD_S + t.nRCD + t.nCL + t.nBL).tolist()
    assert st.avg_read_latency_cycles == pytest.approx((48 + 51 + 54 + 57) / 4)
    assert st.avg_admission_wait_cycles == pytest.approx(1.5)


def test_wait_for_a_buffer_slot_is_not_read_latency(ddr4: DRAMDevice) -> None:
    # a one-entry read queue, two reads of one row at cycle 0: the first is admitted at
    # 0 (ACT 0, RD at nRCD = 22); its RD frees the slot, so the second enters the next
    # cycle (23) and hits the open row; its RD waits for tCCD_L after the first
    # (22 + 8 = 30) and ends nCL + nBL = 26 later, at 56: latency 56 - 23 = 33 cycles,
    # of which none is the 23 cycles it waited outside
    t = ddr4.timing
    trace = RequestTrace.from_arrays([0, 64])
    st, times = simulate_request_times(
        ddr4, trace, config=ControllerConfig(mapping="RoBaRaCoCh", read_queue_size=1)
    )
    assert times.admit.tolist() == [0, t.nRCD + 1]
    assert times.completion.tolist() == [48, t.nRCD + t.nCCD_L + t.nCL + t.nBL]
    assert st.max_read_latency_cycles == 48
    assert st.min_read_latency_cycles == t.nRCD + t.nCCD_L + t.nCL + t.nBL - (t.nRCD + 1)
    assert st.max_admission_wait_cycles == t.nRCD + 1


# -- idle gaps: refreshes are counted, not visited --------------------------------


def test_far_future_arrival_costs_constant_time(ddr4: DRAMDevice) -> None:
    import time

    t = ddr4.timing
    gap = 10**13  # ~1.7 hours of DDR4 time: 8e8 refreshes
    trace = RequestTrace.from_arrays([0, 64], arrival_cycle=[0, gap])
    simulate_requests(ddr4, RequestTrace.from_arrays([0]))  # compiled code loaded
    t0 = time.perf_counter()
    st = simulate_requests(ddr4, trace)
    assert time.perf_counter() - t0 < 2.0
    # one REF falls due every nREFI; all of them before the second read are issued
    # (counted), and gap % nREFI = 3520 > nRFC, so the second read finds the bank idle
    assert st.commands["REF"] == gap // t.nREFI
    assert st.refreshes_skipped > 0.99 * st.commands["REF"]
    assert st.max_read_latency_cycles == t.nRCD + t.nCL + t.nBL
    assert st.refresh_busy_cycles == st.commands["REF"] * t.nRFC
    assert st.violations == 0


def test_far_future_arrival_with_power_down_costs_constant_time(ddr4: DRAMDevice) -> None:
    import time

    t = ddr4.timing
    gap = 10**13
    trace = RequestTrace.from_arrays([0, 64], arrival_cycle=[0, gap])
    config = ControllerConfig(powerdown_idle_cycles=100)
    simulate_requests(ddr4, RequestTrace.from_arrays([0]), config=config)
    t0 = time.perf_counter()
    st = simulate_requests(ddr4, trace, config=config)
    assert time.perf_counter() - t0 < 2.0
    # every refresh wakes the rank (PDX), refreshes it and powers it down again
    ticks = gap // t.nREFI
    assert st.commands["REF"] == ticks
    assert ticks <= st.commands["PDX"] <= ticks + 1 and ticks <= st.commands["PDE"] <= ticks + 1
    # it spends most of the gap powered down: tRFC + tXP awake per tREFI at most
    awake = st.background_cycles["precharge_standby"]
    assert awake < ticks * (t.nXP + t.nRFC + 100 + 1) + 10**6
    assert st.violations == 0


@pytest.mark.parametrize(
    ("name", "cfg"),
    [
        ("DDR4_3200", {}),
        ("DDR4_3200", {"refresh_max_pulled_in": 3, "row_policy": "closed"}),
        ("DDR5_4800", {"refresh": "per_bank"}),
        ("DDR4_3200", {"powerdown_idle_cycles": 20}),
        ("DDR4_3200", {"powerdown_idle_cycles": 20, "refresh_max_postponed": 4}),
        ("DDR5_4800", {"refresh": "per_bank", "powerdown_idle_cycles": 50}),
        ("HBM3", {"powerdown_idle_cycles": 1000, "row_policy": "closed"}),
    ],
)
def test_skipping_an_idle_gap_changes_nothing_but_the_log(name: str, cfg: dict[str, int]) -> None:
    from memsim.dram.controller import _run

    dev = load_dram_device(name)
    n_ref = dev.timing.nREFI
    rng = np.random.default_rng(3)
    # 20 bursts of 10 requests, 15 refresh intervals apart
    arrival = np.sort(np.repeat(np.arange(20) * 15 * n_ref, 10) + rng.integers(0, 2000, 200))
    trace = RequestTrace.from_arrays(
        rng.integers(0, 1 << 24, 200) * 64, arrival_cycle=arrival, is_write=rng.random(200) < 0.3
    )
    config = ControllerConfig(**cfg)
    fast, _, t_fast = _run(dev, trace, config, log=False, idle_skip=True)
    slow, _, t_slow = _run(dev, trace, config, log=False, idle_skip=False)
    assert fast.refreshes_skipped > 0 and slow.refreshes_skipped == 0
    assert fast.refreshes_skipped > 0.5 * (fast.commands["REF"] + fast.commands["REFpb"])
    assert np.array_equal(t_fast.completion, t_slow.completion)
    assert np.array_equal(t_fast.kind, t_slow.kind)
    a, b = fast.to_dict(), slow.to_dict()
    a.pop("refreshes_skipped"), b.pop("refreshes_skipped")
    assert a == b


def test_arrivals_beyond_the_ceiling_are_refused() -> None:
    from memsim.dram.trace import MAX_ARRIVAL_CYCLE

    with pytest.raises(SpecError, match=r"arrival_cycle\[1\].*MAX_ARRIVAL_CYCLE"):
        RequestTrace.from_arrays([0, 64], arrival_cycle=[0, MAX_ARRIVAL_CYCLE + 1])
    with pytest.raises(SpecError, match="64-bit"):
        RequestTrace.from_arrays([2**70])


def test_absurd_timing_is_refused() -> None:
    from hw_models.dram import MAX_TIMING_CYCLES, DRAMTiming

    good = load_dram_device("DDR4_3200").timing.model_dump()
    with pytest.raises(SpecError, match=rf"timing\.nRFC.*{MAX_TIMING_CYCLES}"):
        DRAMTiming.parse(good | {"nRFC": 10**18}, prefix="timing")
