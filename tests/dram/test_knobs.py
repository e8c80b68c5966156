"""Each controller knob (the parameters an explorer tunes) changes behaviour in the
direction the DRAM literature expects, on DDR4-3200 (one channel, 16 banks).

Traffic is small (a few thousand requests) so that each comparison takes well under
a second; the directions hold by wide margins (measured, noted beside each test).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hw_models import DRAMDevice, SpecError
from memsim.dram import (
    ControllerConfig,
    DRAMStats,
    RequestTrace,
    simulate_request_times,
    simulate_requests,
    traffic,
)

N = 4000


def run(dev: DRAMDevice, trace: RequestTrace, **cfg: Any) -> DRAMStats:
    return simulate_requests(dev, trace, config=ControllerConfig(**cfg), check=False)


@pytest.fixture(scope="module")
def rnd(ddr4: DRAMDevice) -> RequestTrace:
    return traffic.random_uniform(ddr4, N, seed=1)


def test_page_policy_open_keeps_rows_for_spaced_hits(ddr4: DRAMDevice) -> None:
    # a stream spaced 100 cycles apart: no request waits while its row is open, so an
    # open page turns every access after a row's first into a hit; a closed page
    # precharges after each access, so every access is a miss (tRCD more latency).
    # (No refresh: reads queued behind a refresh would hit each other's rows.)
    trace = traffic.stream(ddr4, 500, interval_cycles=100)
    kw: dict[str, Any] = {"mapping": "RoBaRaCoCh", "refresh": "none"}
    opened = run(ddr4, trace, row_policy="open", **kw)
    closed = run(ddr4, trace, row_policy="closed", **kw)
    assert opened.row_hits > 0.9 * 500 and closed.row_hits == 0
    t = ddr4.timing
    assert closed.avg_read_latency_cycles == t.nRCD + t.nCL + t.nBL
    assert opened.avg_read_latency_cycles < closed.avg_read_latency_cycles


def test_scheduler_frfcfs_beats_fcfs_on_random_traffic(ddr4: DRAMDevice, rnd: RequestTrace) -> None:
    # in-order FCFS serialises bank conflicts (measured 2.1 GB/s vs 11.2 GB/s)
    fcfs = run(ddr4, rnd, scheduler="fcfs")
    fr = run(ddr4, rnd, scheduler="frfcfs")
    assert fr.bandwidth_bytes_per_s > 2 * fcfs.bandwidth_bytes_per_s


def test_buffer_organization_bank_wise_caps_each_banks_queue(ddr4: DRAMDevice) -> None:
    # every read to bank 0, each to another row (ChRaBaRoCo: the row is above the
    # column bits): a bank-wise buffer of 64 entries over 16 banks holds 4 per bank,
    # while separate read/write queues let 32 reads of the one bank wait
    trace = RequestTrace.from_arrays(np.arange(200) * ddr4.organization.row_bytes)
    rw = run(ddr4, trace, mapping="ChRaBaRoCo")
    bank = run(
        ddr4,
        trace,
        mapping="ChRaBaRoCo",
        buffer_organization="bank_wise",
        request_buffer_size=64,
    )
    assert rw.max_read_queue == 32 and bank.max_read_queue == 4
    for st in (rw, bank):  # the same work (a refresh may turn a conflict into a miss)
        assert st.row_hits == 0 and st.row_conflicts + st.row_misses == 200
    assert bank.avg_read_latency_cycles < rw.avg_read_latency_cycles / 4


def test_buffer_organization_shared_lets_reads_use_the_whole_buffer(ddr4: DRAMDevice) -> None:
    trace = traffic.mix(ddr4, N, seed=1)
    rw = run(ddr4, trace)  # 32 read + 32 write entries
    shared = run(ddr4, trace, buffer_organization="shared", request_buffer_size=64)
    assert rw.max_read_queue <= 32 and rw.max_write_queue <= 32
    assert shared.max_read_queue > 32  # reads may take write slots
    assert max(shared.max_read_queue, shared.max_write_queue) <= 64


def test_request_buffer_size_more_lookahead_more_bandwidth(
    ddr4: DRAMDevice, rnd: RequestTrace
) -> None:
    # measured: 6.6 GB/s with 4 entries, 11.1 GB/s with 64
    small = run(ddr4, rnd, buffer_organization="shared", request_buffer_size=4)
    large = run(ddr4, rnd, buffer_organization="shared", request_buffer_size=64)
    assert small.max_read_queue == 4
    assert large.bandwidth_bytes_per_s > 1.3 * small.bandwidth_bytes_per_s
    # read_write: half the buffer for reads unless read_queue_size says otherwise
    rw_small = run(ddr4, rnd, request_buffer_size=8)
    assert rw_small.max_read_queue == 4
    assert run(ddr4, rnd, request_buffer_size=8, read_queue_size=6).max_read_queue == 6
    assert run(ddr4, rnd).bandwidth_bytes_per_s > 1.3 * rw_small.bandwidth_bytes_per_s


def test_response_queue_fifo_delivers_in_admission_order(
    ddr4: DRAMDevice, rnd: RequestTrace
) -> None:
    reorder, t_re = simulate_request_times(ddr4, rnd, config=ControllerConfig())
    fifo, t_fifo = simulate_request_times(ddr4, rnd, config=ControllerConfig(response_queue="fifo"))
    order = np.argsort(t_fifo.admit, kind="stable")
    assert np.all(np.diff(t_fifo.completion[order]) >= 0)  # in order
    assert not np.all(np.diff(t_re.completion[order]) >= 0)  # FR-FCFS reorders
    # the same schedule; FIFO only holds data back: every read is as late or later
    assert np.array_equal(t_fifo.admit, t_re.admit)
    assert np.all(t_fifo.completion >= t_re.completion)
    assert fifo.avg_read_latency_cycles > reorder.avg_read_latency_cycles
    assert fifo.bandwidth_bytes_per_s == reorder.bandwidth_bytes_per_s


def test_refresh_policy(ddr4: DRAMDevice, ddr5: DRAMDevice, rnd: RequestTrace) -> None:
    none = run(ddr4, rnd, refresh="none")
    allb = run(ddr4, rnd, refresh="all_bank")
    assert none.commands["REF"] == 0 and none.refresh_busy_cycles == 0
    # one REF per tREFI of the run (the first is due at nREFI)
    assert allb.commands["REF"] == allb.duration_cycles // ddr4.timing.nREFI
    assert none.bandwidth_bytes_per_s > allb.bandwidth_bytes_per_s
    d5 = traffic.random_uniform(ddr5, N, seed=1)
    pb = run(ddr5, d5, refresh="per_bank")
    assert pb.commands["REF"] == 0 and pb.commands["REFpb"] > 0
    with pytest.raises(SpecError, match="nRFCpb"):
        run(ddr4, rnd, refresh="per_bank")  # DDR4 has no per-bank refresh


def test_refresh_postponing_defers_refreshes_of_a_busy_rank(
    ddr4: DRAMDevice, rnd: RequestTrace
) -> None:
    # backlogged for ~14 tREFI: with up to 8 postponed, refreshes wait while
    # requests are queued (measured 14 REF -> 6 REF, bandwidth up)
    now = run(ddr4, rnd, refresh_max_postponed=0)
    later = run(ddr4, rnd, refresh_max_postponed=8)
    assert later.commands["REF"] < now.commands["REF"]
    assert later.bandwidth_bytes_per_s > now.bandwidth_bytes_per_s


def test_refresh_pull_in_refreshes_ahead_while_idle(ddr4: DRAMDevice) -> None:
    # one read, then 5 tREFI of idleness, then another: 5 refreshes fall due; with
    # 4 pulled in, the idle rank refreshes 4 more ahead of time
    t = ddr4.timing
    trace = RequestTrace.from_arrays([0, 64], arrival_cycle=[0, 5 * t.nREFI + 100])
    base = simulate_requests(ddr4, trace, config=ControllerConfig())
    pulled = simulate_requests(ddr4, trace, config=ControllerConfig(refresh_max_pulled_in=4))
    assert (base.commands["REF"], pulled.commands["REF"]) == (5, 9)
    assert pulled.violations == base.violations == 0


def test_arbiter_priority_serves_the_lower_requestor_first(ddr4: DRAMDevice) -> None:
    # two backlogged requestors of 300 reads each
    a = traffic.random_uniform(ddr4, 300, seed=1)
    b = traffic.random_uniform(ddr4, 300, seed=2)
    trace = traffic.requestors([a, b])
    _, prio = simulate_request_times(ddr4, trace, config=ControllerConfig(arbiter="priority"))
    _, rr = simulate_request_times(ddr4, trace, config=ControllerConfig(arbiter="round_robin"))
    first = trace.requestor == 0
    # priority: requestor 0 is admitted entirely before requestor 1 gets a slot
    assert prio.admit[first].max() < prio.admit[~first].min()
    # round robin: they alternate, so their mean admission times are close
    mean0, mean1 = rr.admit[first].mean(), rr.admit[~first].mean()
    assert abs(mean0 - mean1) < 0.05 * max(mean0, mean1)


def test_max_active_transactions_limits_concurrency(ddr4: DRAMDevice, rnd: RequestTrace) -> None:
    one = run(ddr4, rnd, max_active_transactions=1)
    many = run(ddr4, rnd, max_active_transactions=128)
    assert one.max_read_queue == 1
    # one read at a time: each costs about a row miss (tRP + tRCD + tCL + burst)
    t = ddr4.timing
    per = one.duration_cycles / N
    assert t.nRCD + t.nCL + t.nBL <= per <= t.nRP + t.nRCD + t.nCL + t.nBL + 2
    assert many.bandwidth_bytes_per_s > 4 * one.bandwidth_bytes_per_s


def test_address_mapping_bank_group_interleaving_streams_faster(ddr4: DRAMDevice) -> None:
    # RoCoBaRaCh puts consecutive bursts in different bank groups (tCCD_S = 4 apart);
    # RoBaRaCoCh keeps a row's bursts in one bank (tCCD_L = 8 apart) and overlaps only
    # at row boundaries (measured 96 % vs 62 % of peak)
    trace = traffic.stream(ddr4, N)
    inter = run(ddr4, trace, mapping="RoCoBaRaCh")
    same = run(ddr4, trace, mapping="RoBaRaCoCh")
    assert inter.bandwidth_bytes_per_s > 1.4 * same.bandwidth_bytes_per_s


def test_new_knobs_are_validated() -> None:
    with pytest.raises(SpecError, match="buffer_organization"):
        ControllerConfig.parse({"buffer_organization": "per_rank"}, prefix="controller")
    with pytest.raises(SpecError, match="response_queue"):
        ControllerConfig.parse({"response_queue": "lifo"}, prefix="controller")
    with pytest.raises(SpecError, match="request_buffer_size"):
        ControllerConfig.parse({"request_buffer_size": 0}, prefix="controller")


def test_bank_wise_buffer_needs_an_entry_per_bank(ddr4: DRAMDevice, rnd: RequestTrace) -> None:
    with pytest.raises(SpecError, match="16 banks per channel"):
        run(ddr4, rnd, buffer_organization="bank_wise", request_buffer_size=8)


def test_search_space_values_are_all_valid_and_infeasibility_is_known_ahead(
    ddr4: DRAMDevice, ddr5: DRAMDevice
) -> None:
    from memsim.dram.config import search_space

    space = search_space()
    assert set(space) >= {
        "row_policy",
        "scheduler",
        "buffer_organization",
        "request_buffer_size",
        "response_queue",
        "refresh",
        "refresh_max_postponed",
        "refresh_max_pulled_in",
        "arbiter",
        "max_active_transactions",
        "mapping",
    }
    for key, values in space.items():
        for v in values:
            ControllerConfig.parse({key: v})  # every listed value validates
    assert space["refresh_max_postponed"][-1] == 8  # DDR4/DDR5 allow 8 postponed REFs
    per_bank = ControllerConfig(refresh="per_bank")
    assert [p.path for p in per_bank.problems_with(ddr4)] == ["refresh"]
    assert per_bank.problems_with(ddr5) == []
    tiny = ControllerConfig(buffer_organization="bank_wise", request_buffer_size=8)
    assert [p.path for p in tiny.problems_with(ddr4)] == ["request_buffer_size"]
