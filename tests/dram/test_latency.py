"""Unloaded latencies, derived by hand from each preset's JEDEC timing.

One read to a precharged bank: ACT at 0, RD at nRCD, data ends nCL + nBL later,
so latency = nRCD + nCL + nBL. A read that hits the open row: RD at arrival,
latency = nCL + nBL. A conflict (another row open long enough for tRAS): PRE at
arrival, ACT nRP later, so latency = nRP + nRCD + nCL + nBL. (The second request
arrives at cycle 1000, long after the first finished and before the first
refresh is due at nREFI > 3000 cycles for every preset.)
"""

from __future__ import annotations

import pytest

from hw_models import DRAMDevice, load_dram_device
from memsim.dram import ControllerConfig, RequestTrace, simulate_requests
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
