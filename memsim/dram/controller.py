"""The request-level DRAM controller: validate, decode, run the compiled loop, measure.

>>> from memsim.dram import simulate_requests, traffic
>>> from hw_models import load_dram_device
>>> dev = load_dram_device("DDR4_3200")
>>> stats = simulate_requests(dev, traffic.random_uniform(dev, 2000, seed=1))
>>> stats.violations
0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models.dram import DRAMDevice, command_distance
from hw_models.errors import Problem, SpecError
from hw_models.loader import load_dram_device
from memsim.dram import kernel as k
from memsim.dram.config import ControllerConfig
from memsim.dram.mapping import get_mapping
from memsim.dram.policies import ARBITERS, REFRESH_MODES, ROW_POLICIES, SCHEDULERS
from memsim.dram.power import BACKGROUND_STATES, energy_breakdown
from memsim.dram.stats import DRAMStats
from memsim.dram.trace import RequestTrace

IntArray = npt.NDArray[np.int64]
COMMAND_NAMES = ("ACT", "PRE", "RD", "WR", "REF", "REFpb", "PDE", "PDX")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimes:
    """Per request of the trace (in its order), in cycles of tCK: ``arrival``,
    ``admit`` (entered the scheduler buffer), ``completion`` (end of its data burst,
    or of its response under a FIFO response queue) and ``kind`` (0 row hit,
    1 miss, 2 conflict). Read latency is ``completion - admit``."""

    arrival: IntArray
    admit: IntArray
    completion: IntArray
    kind: npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandLog:
    """Every issued command, columnar: channel, cycle, command code, rank, bank group,
    bank (within the group; -1 for rank commands), row (-1 where none).

    Command codes index :data:`COMMAND_NAMES`. Sorted by channel, then cycle.
    """

    channel: IntArray
    cycle: IntArray
    command: IntArray
    rank: IntArray
    bank_group: IntArray
    bank: IntArray
    row: IntArray

    def __len__(self) -> int:
        return int(self.cycle.shape[0])

    def replace_rows(self, index: int, **values: int) -> CommandLog:
        """A copy with entry ``index`` changed (for tests and what-ifs)."""
        arrays = {
            name: getattr(self, name).copy()
            for name in ("channel", "cycle", "command", "rank", "bank_group", "bank", "row")
        }
        for name, v in values.items():
            arrays[name][index] = v
        return CommandLog(**arrays)


#: kernel codes of :attr:`ControllerConfig.buffer_organization`
BUFFER_ORGANIZATIONS = {
    "read_write": k.BUF_READ_WRITE,
    "shared": k.BUF_SHARED,
    "bank_wise": k.BUF_BANK_WISE,
}


def _params(
    device: DRAMDevice, config: ControllerConfig, *, log: bool, idle_skip: bool = True
) -> IntArray:
    org, tm = device.organization, device.timing
    refresh = REFRESH_MODES.create(config.refresh)
    problems = config.problems_with(device)
    if problems:
        raise SpecError(problems)
    banks = org.ranks * org.banks

    def dist(prev: str, nxt: str, scope: str) -> int:
        return command_distance(tm, prev, nxt, scope)

    p = np.zeros(k.N_PARAMS, dtype=np.int64)
    values = {
        k.P_RANKS: org.ranks,
        k.P_BG: org.bank_groups,
        k.P_BPG: org.banks_per_group,
        k.P_BL: tm.nBL,
        k.P_CL: tm.nCL,
        k.P_CWL: tm.nCWL,
        k.P_RCD: dist("ACT", "RD", "same bank"),
        k.P_RP: dist("PRE", "ACT", "same bank"),
        k.P_RAS: dist("ACT", "PRE", "same bank"),
        k.P_RC: dist("ACT", "ACT", "same bank"),
        k.P_WR: tm.nWR,
        k.P_RTP: dist("RD", "PRE", "same bank"),
        k.P_CCD_S: dist("RD", "RD", "same rank"),
        k.P_CCD_L: dist("RD", "RD", "same bank group"),
        k.P_RRD_S: dist("ACT", "ACT", "same rank"),
        k.P_RRD_L: dist("ACT", "ACT", "same bank group"),
        k.P_FAW: tm.nFAW,
        k.P_WTR_S: tm.nWTR_S,
        k.P_WTR_L: tm.nWTR_L,
        k.P_RFC: dist("REF", "ACT", "same rank"),
        k.P_REFI: tm.nREFI,
        k.P_RFCPB: dist("REFpb", "ACT", "same bank"),
        k.P_RTRS: tm.nRTRS,
        k.P_CKE: dist("PDE", "PDX", "same rank"),
        k.P_XP: dist("PDX", "ACT", "same rank"),
        k.P_SCHED: SCHEDULERS.create(config.scheduler).code,
        k.P_ROWPOL: ROW_POLICIES.create(config.row_policy).code,
        k.P_ROW_TIMEOUT: config.row_timeout_cycles,
        k.P_HIT_CAP: config.row_hit_cap,
        k.P_REFMODE: refresh.code,
        k.P_REF_POSTPONE: config.refresh_max_postponed,
        k.P_REF_PULLIN: config.refresh_max_pulled_in,
        k.P_RQ: config.read_capacity,
        k.P_WQ: config.write_capacity,
        k.P_WHIGH: config.write_high,
        k.P_WLOW: config.write_low,
        k.P_MAXACT: config.max_active_transactions,
        k.P_PD_IDLE: config.powerdown_idle_cycles,
        k.P_ARB: ARBITERS.create(config.arbiter).code,
        k.P_LOG: int(log),
        k.P_RTW_SAME: dist("RD", "WR", "same rank"),
        k.P_RTW_OTHER: dist("RD", "WR", "other rank"),
        k.P_WTR_OTHER: dist("WR", "RD", "other rank"),
        k.P_RR_OTHER: dist("RD", "RD", "other rank"),
        k.P_WTR_SAME_L: dist("WR", "RD", "same bank group"),
        k.P_WTR_SAME_S: dist("WR", "RD", "same rank"),
        k.P_WR_PRE: dist("WR", "PRE", "same bank"),
        k.P_RD_PDE: dist("RD", "PDE", "same rank"),
        k.P_WR_PDE: dist("WR", "PDE", "same rank"),
        k.P_REFPB_GAP: dist("REFpb", "ACT", "same rank"),
        k.P_BUFORG: BUFFER_ORGANIZATIONS[config.buffer_organization],
        k.P_BUFCAP: config.request_buffer_size,
        k.P_BANKCAP: max(1, config.request_buffer_size // banks),
        k.P_IDLE_SKIP: int(idle_skip),
    }
    for idx, v in values.items():
        p[idx] = v
    return p


def _run(
    device: DRAMDevice | str,
    trace: RequestTrace,
    config: ControllerConfig,
    *,
    log: bool,
    idle_skip: bool = True,
) -> tuple[DRAMStats, CommandLog | None, RequestTimes]:
    dev = device if isinstance(device, DRAMDevice) else load_dram_device(device)
    if not isinstance(trace, RequestTrace):
        raise SpecError(
            [Problem("trace", f"expected a RequestTrace, found {type(trace).__name__}")]
        )
    org = dev.organization
    p = _params(dev, config, log=log, idle_skip=idle_skip)
    mapping = get_mapping(config.mapping, bank_xor=config.bank_xor)
    d = mapping.decode(dev, trace.address)
    n = len(trace)
    fbank = (d.rank * org.bank_groups + d.bank_group) * org.banks_per_group + d.bank
    req = trace.requestor
    if n == 0 or req.min() == req.max():
        n_req = 1
        req_dense = np.zeros(n, dtype=np.int64)
    else:
        req_ids, inverse = np.unique(req, return_inverse=True)
        n_req = len(req_ids)
        req_dense = inverse.astype(np.int64).reshape(-1)
    arrival = trace.arrival_cycle
    in_order = n_req == 1 and bool(np.all(arrival[1:] >= arrival[:-1]))
    is_write = trace.is_write.astype(np.int64)
    completion = np.full(n, -1, dtype=np.int64)
    admit = np.full(n, -1, dtype=np.int64)
    kind = np.full(n, -1, dtype=np.int8)
    fifo = config.response_queue == "fifo"
    totals = np.zeros(k.N_COUNTERS, dtype=np.int64)
    end = 0
    used_channels = 0
    logs: list[tuple[int, IntArray]] = []
    for ch in range(org.channels):
        if org.channels == 1:
            order = np.arange(n, dtype=np.int64)
        else:
            order = np.flatnonzero(d.channel == ch)
        if order.size == 0:
            continue
        if not in_order:
            order = order[np.lexsort((arrival[order], req_dense[order]))]
        starts = np.searchsorted(req_dense[order], np.arange(n_req + 1)).astype(np.int64)
        whole = order.size == n and in_order
        comp, adm, knd, cnt, clog = k.simulate_channel(
            p,
            arrival if whole else np.ascontiguousarray(arrival[order]),
            np.ascontiguousarray(fbank if whole else fbank[order], dtype=np.int64),
            np.ascontiguousarray(d.row if whole else d.row[order], dtype=np.int64),
            is_write if whole else np.ascontiguousarray(is_write[order]),
            starts,
        )
        if cnt[k.C_STUCK]:
            raise RuntimeError(f"DRAM controller made no progress on channel {ch} (a bug)")
        if fifo:
            _in_order_responses(comp, adm, is_write if whole else is_write[order])
        if whole:
            completion = comp
            admit = adm
            kind = knd
        else:
            completion[order] = comp
            admit[order] = adm
            kind[order] = knd
        end = max(end, int(cnt[k.C_END]))
        totals[: k.C_MAX_R] += cnt[: k.C_MAX_R]
        totals[k.C_MAX_R] = max(totals[k.C_MAX_R], cnt[k.C_MAX_R])
        totals[k.C_MAX_W] = max(totals[k.C_MAX_W], cnt[k.C_MAX_W])
        totals[k.C_REF_BUSY] += cnt[k.C_REF_BUSY]
        totals[k.C_ITER] += cnt[k.C_ITER]
        totals[k.C_REF_SKIPPED] += cnt[k.C_REF_SKIPPED]
        used_channels += 1
        if log:
            logs.append((ch, clog))
    cmd_log = _merge_logs(logs) if log else None
    stats = _stats(dev, trace, config, completion, admit, kind, totals, end, max(1, used_channels))
    times = RequestTimes(arrival=trace.arrival_cycle, admit=admit, completion=completion, kind=kind)
    return stats, cmd_log, times


def _in_order_responses(completion: IntArray, admit: IntArray, is_write: IntArray) -> None:
    """A FIFO response queue: each read's data leaves once every read admitted before
    it on the channel has left, so its completion is the running maximum in admission
    order (admission cycles are distinct on a channel: one request per cycle). Writes
    are acknowledged when written. Transactions still retire (free their max-active
    slot) when their data is read from the device."""
    reads = np.flatnonzero(is_write == 0)
    if reads.size < 2:
        return
    order = reads[np.argsort(admit[reads], kind="stable")]
    completion[order] = np.maximum.accumulate(completion[order])


def _merge_logs(logs: list[tuple[int, IntArray]]) -> CommandLog:
    if not logs:
        e = np.zeros(0, dtype=np.int64)
        return CommandLog(channel=e, cycle=e, command=e, rank=e, bank_group=e, bank=e, row=e)
    chans = np.concatenate([np.full(lg.shape[0], ch, dtype=np.int64) for ch, lg in logs])
    body = np.concatenate([lg for _, lg in logs])
    return CommandLog(
        channel=chans,
        cycle=body[:, 0].copy(),
        command=body[:, 1].copy(),
        rank=body[:, 2].copy(),
        bank_group=body[:, 3].copy(),
        bank=body[:, 4].copy(),
        row=body[:, 5].copy(),
    )


def _stats(
    dev: DRAMDevice,
    trace: RequestTrace,
    config: ControllerConfig,
    completion: IntArray,
    admit: IntArray,
    kind: npt.NDArray[np.int8],
    totals: IntArray,
    end: int,
    channels: int,
) -> DRAMStats:
    n = len(trace)
    reads = ~trace.is_write
    # read latency from admission into the controller to the data (the convention of
    # Ramulator 2 and DRAMsim3); the wait for a buffer slot is reported on its own
    lat = (completion - admit)[reads].astype(np.float64)
    wait = (admit - trace.arrival_cycle).astype(np.float64)
    first = int(trace.arrival_cycle.min()) if n else 0
    span = max(1, end - first) if n else 0
    tck = dev.timing.tCK_ns
    nbytes = n * dev.organization.access_bytes
    cmds = {name: int(totals[i]) for i, name in enumerate(COMMAND_NAMES)}
    bg = {s: int(totals[k.C_BG_PRE_STBY + i]) for i, s in enumerate(BACKGROUND_STATES)}
    by_cmd, by_bg = energy_breakdown(dev, commands=cmds, background_cycles=bg)
    duration_cycles = end - first if n else 0
    return DRAMStats(
        device=dev.name,
        requests=n,
        reads=int(reads.sum()),
        writes=int(n - reads.sum()),
        bytes=nbytes,
        tck_ns=tck,
        duration_cycles=duration_cycles,
        duration_s=duration_cycles * tck * 1e-9,
        bandwidth_bytes_per_s=nbytes / (span * tck * 1e-9) if n else 0.0,
        peak_bandwidth_bytes_per_s=dev.peak_bandwidth_bytes_per_s,
        avg_read_latency_cycles=float(lat.mean()) if lat.size else 0.0,
        p50_read_latency_cycles=float(np.percentile(lat, 50)) if lat.size else 0.0,
        p99_read_latency_cycles=float(np.percentile(lat, 99)) if lat.size else 0.0,
        max_read_latency_cycles=float(lat.max()) if lat.size else 0.0,
        min_read_latency_cycles=float(lat.min()) if lat.size else 0.0,
        avg_admission_wait_cycles=float(wait.mean()) if n else 0.0,
        p99_admission_wait_cycles=float(np.percentile(wait, 99)) if n else 0.0,
        max_admission_wait_cycles=float(wait.max()) if n else 0.0,
        row_hits=int((kind == 0).sum()),
        row_misses=int((kind == 1).sum()),
        row_conflicts=int((kind == 2).sum()),
        commands=cmds,
        avg_read_queue=float(totals[k.C_OCC_R]) / span / channels if n else 0.0,
        avg_write_queue=float(totals[k.C_OCC_W]) / span / channels if n else 0.0,
        max_read_queue=int(totals[k.C_MAX_R]),
        max_write_queue=int(totals[k.C_MAX_W]),
        refresh_busy_cycles=int(totals[k.C_REF_BUSY]),
        refreshes_skipped=int(totals[k.C_REF_SKIPPED]),
        background_cycles=bg,
        energy_by_command_j=by_cmd,
        energy_background_j=by_bg,
        violations=0,
        checked=False,
        latency_histogram=_histogram(lat * tck),
        config=config.model_dump(),
    )


def _histogram(lat_ns: npt.NDArray[np.float64]) -> dict[str, list[float]]:
    if lat_ns.size == 0:
        return {"bin_edges_ns": [], "counts": []}
    counts, edges = np.histogram(lat_ns, bins=40)
    return {"bin_edges_ns": edges.tolist(), "counts": counts.astype(float).tolist()}


def simulate_with_log(
    device: DRAMDevice | str,
    trace: RequestTrace,
    *,
    config: ControllerConfig | None = None,
    check: bool = True,
) -> tuple[DRAMStats, CommandLog]:
    """Like :func:`simulate_requests`, also returning the issued :class:`CommandLog`."""
    from dataclasses import replace

    from memsim.dram.checker import check_commands

    cfg = config or ControllerConfig()
    stats, log, _ = _run(device, trace, cfg, log=True)
    assert log is not None
    if check:
        dev = device if isinstance(device, DRAMDevice) else load_dram_device(device)
        violations = check_commands(dev, log)
        stats = replace(stats, violations=len(violations), checked=True)
    return stats, log


def simulate_requests(
    device: DRAMDevice | str,
    trace: RequestTrace,
    *,
    config: ControllerConfig | None = None,
    check: bool = True,
) -> DRAMStats:
    """Simulate ``trace`` on ``device`` behind a controller configured by ``config``.

    With ``check`` the issued commands are replayed by the independent protocol
    checker (:mod:`memsim.dram.checker`) and ``violations`` counts what it found
    (0 for a correct controller); without it no command log is kept (faster).
    Bad input (unknown names, addresses outside the device, per-bank refresh on a
    device without tRFCpb) raises :class:`hw_models.SpecError`.
    """
    if check:
        return simulate_with_log(device, trace, config=config, check=True)[0]
    return _run(device, trace, config or ControllerConfig(), log=False)[0]


def simulate_request_times(
    device: DRAMDevice | str,
    trace: RequestTrace,
    *,
    config: ControllerConfig | None = None,
) -> tuple[DRAMStats, RequestTimes]:
    """Like :func:`simulate_requests` (unchecked), also returning each request's
    admission and completion cycles (:class:`RequestTimes`)."""
    stats, _, times = _run(device, trace, config or ControllerConfig(), log=False)
    return stats, times
