"""Physics invariants of the controller, as hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw_models import DRAMDevice, load_dram_device
from memsim.dram import (
    ControllerConfig,
    RequestTrace,
    simulate_requests,
    simulate_with_log,
    traffic,
)
from memsim.dram.controller import COMMAND_NAMES

DDR4 = load_dram_device("DDR4_3200")
HBM3 = load_dram_device("HBM3")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def traces(draw: st.DrawFn, dev: DRAMDevice = DDR4) -> RequestTrace:
    n = draw(st.integers(1, 150))
    lines = dev.capacity_bytes // dev.organization.access_bytes
    # a few hot rows and some random lines, so hits, misses and conflicts all occur
    hot = draw(st.lists(st.integers(0, lines - 1), min_size=1, max_size=6))
    idx = draw(st.lists(st.integers(0, len(hot) + 40), min_size=n, max_size=n))
    rnd = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    line = np.array([hot[i] + (i % 3) if i < len(hot) else rnd.integers(0, lines) for i in idx])
    addr = np.minimum(line, lines - 1) * dev.organization.access_bytes
    gaps = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    writes = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    req = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    return RequestTrace.from_arrays(
        addr, arrival_cycle=np.cumsum(gaps), is_write=writes, requestor=req
    )


configs = st.builds(
    ControllerConfig,
    scheduler=st.sampled_from(["fcfs", "frfcfs", "frfcfs_cap"]),
    row_policy=st.sampled_from(["open", "closed", "timeout"]),
    mapping=st.sampled_from(["RoBaRaCoCh", "RoRaBaChCo", "ChRaBaRoCo", "RoCoBaRaCh"]),
    bank_xor=st.booleans(),
    arbiter=st.sampled_from(["round_robin", "fifo", "priority"]),
    read_queue_size=st.integers(1, 16),
    write_queue_size=st.integers(2, 16),
    max_active_transactions=st.integers(1, 64),
    powerdown_idle_cycles=st.sampled_from([0, 10]),
    refresh_max_postponed=st.integers(0, 2),
    refresh_max_pulled_in=st.integers(0, 2),
    buffer_organization=st.sampled_from(["read_write", "shared", "bank_wise"]),
    request_buffer_size=st.integers(16, 48),
    response_queue=st.sampled_from(["reorder", "fifo"]),
)


@SETTINGS
@given(trace=traces(), cfg=configs)
def test_every_request_is_served_exactly_once_and_bytes_are_conserved(
    trace: RequestTrace, cfg: ControllerConfig
) -> None:
    stats, log = simulate_with_log(DDR4, trace, config=cfg)
    n_rd = int((log.command == COMMAND_NAMES.index("RD")).sum())
    n_wr = int((log.command == COMMAND_NAMES.index("WR")).sum())
    assert (n_rd, n_wr) == (stats.reads, stats.writes)
    assert stats.reads + stats.writes == len(trace)
    assert stats.bytes == len(trace) * DDR4.organization.access_bytes
    assert stats.row_hits + stats.row_misses + stats.row_conflicts == len(trace)
    assert stats.violations == 0


@SETTINGS
@given(trace=traces(), cfg=configs)
def test_no_read_is_faster_than_an_unloaded_row_hit(
    trace: RequestTrace, cfg: ControllerConfig
) -> None:
    stats = simulate_requests(DDR4, trace, config=cfg, check=False)
    if stats.reads:
        t = DDR4.timing
        assert stats.min_read_latency_cycles >= t.nCL + t.nBL
        assert stats.p99_read_latency_cycles >= stats.p50_read_latency_cycles


def _with(dev: DRAMDevice, **org: int) -> DRAMDevice:
    data = dev.model_dump()
    data["organization"].update(org)
    data.pop("datasheet_bandwidth_bytes_per_s", None)
    return DRAMDevice.model_validate(data)


def _at_rate(dev: DRAMDevice, rate_mtps: float) -> DRAMDevice:
    """``dev`` at another data rate, its timings held constant in ns (cycle counts
    rounded up, as JEDEC speed bins do), burst cycles fixed by the burst length."""
    t = dev.timing.model_dump()
    tck = 2000.0 / rate_mtps
    fixed = {"tCK_ns", "nBL", "nCCD_S", "nRTRS"}
    new = {
        k: (v if k in fixed else max(1, math.ceil(v * dev.timing.tCK_ns / tck - 1e-9)))
        for k, v in t.items()
        if v is not None
    }
    new["tCK_ns"] = tck
    new["nCCD_L"] = max(new["nCCD_L"], new["nCCD_S"])
    new["nRC"] = max(new["nRC"], new["nRAS"] + new["nRP"])
    data = dev.model_dump()
    data["timing"] = new
    data["data_rate_mtps"] = rate_mtps
    data.pop("datasheet_bandwidth_bytes_per_s", None)
    return DRAMDevice.model_validate(data)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(200, 2000), log2_ch=st.integers(0, 4))
def test_more_channels_never_lower_stream_bandwidth(n: int, log2_ch: int) -> None:
    fewer = _with(HBM3, channels=2**log2_ch)
    more = _with(HBM3, channels=2 ** (log2_ch + 1))
    cfg = ControllerConfig(mapping="RoCoBaRaCh")
    a = simulate_requests(fewer, traffic.stream(fewer, n), config=cfg, check=False)
    b = simulate_requests(more, traffic.stream(more, n), config=cfg, check=False)
    assert b.bandwidth_bytes_per_s >= a.bandwidth_bytes_per_s * (1 - 1e-9)


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(200, 3000),
    rates=st.lists(st.sampled_from([1600, 2133.33, 2400, 2666.67, 3200]), min_size=2, max_size=2),
)
def test_higher_data_rate_never_lowers_stream_bandwidth(n: int, rates: list[float]) -> None:
    # a stream spread over the bank groups is bound by the data bus, which a faster
    # clock always widens
    slow, fast = (_at_rate(DDR4, r) for r in sorted(rates))
    tr = traffic.stream(DDR4, n)
    cfg = ControllerConfig(mapping="RoCoBaRaCh")
    a = simulate_requests(slow, tr, config=cfg, check=False)
    b = simulate_requests(fast, tr, config=cfg, check=False)
    assert b.bandwidth_bytes_per_s >= a.bandwidth_bytes_per_s * (1 - 1e-9)


def test_a_one_bank_group_stream_can_be_slower_at_a_higher_data_rate() -> None:
    # Found by the property above when it also tried RoBaRaCoCh: a stream kept in one
    # bank group runs at one burst per tCCD_L, and tCCD_L = 5 ns rounds up to 6 cycles
    # at DDR4-2400 (5.0 ns) but to 7 cycles at DDR4-2666 (5.25 ns). JEDEC's own speed
    # bins do the same, so this is the hardware, not a model artefact.
    slow, fast = _at_rate(DDR4, 2400), _at_rate(DDR4, 2666.67)
    assert (slow.timing.nCCD_L, fast.timing.nCCD_L) == (6, 7)
    tr = traffic.stream(DDR4, 2000)
    cfg = ControllerConfig(mapping="RoBaRaCoCh", read_queue_size=4, refresh="none")
    a = simulate_requests(slow, tr, config=cfg, check=False)
    b = simulate_requests(fast, tr, config=cfg, check=False)
    assert b.bandwidth_bytes_per_s < a.bandwidth_bytes_per_s
    # each close to 64 B per tCCD_L: 12.8 GB/s and 12.19 GB/s
    assert a.bandwidth_gbps == pytest.approx(64 / 5.0, rel=0.03)
    assert b.bandwidth_gbps == pytest.approx(64 / 5.25, rel=0.03)
