"""`DRAMStats`: what one request-level simulation measured (a frozen value)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DRAMStats:
    """Results of :func:`memsim.dram.simulate_requests`.

    Bandwidth is bytes moved over the span from the first arrival to the last data
    transfer. Read latencies are from the request's admission into the controller's
    scheduler buffer to the end of its data burst (the convention of Ramulator 2 and
    DRAMsim3), in controller cycles (tCK) and ns; the time a request waited in the front
    end for a buffer slot (arrival to admission) is reported apart as the
    ``*_admission_wait_cycles`` figures (all requests). ``refreshes_skipped`` counts
    refreshes of idle gaps that were counted at once rather than issued one by one (they
    are in ``commands``, not in a command log). A request is a row hit when its first
    command was a column command, a miss when it was an ACT (bank precharged), a
    conflict when it was a PRE (another row open). ``latency_histogram`` holds the read
    latencies as ``{"bin_edges_ns": [...], "counts": [...]}`` (40 bins).
    """

    device: str
    requests: int
    reads: int
    writes: int
    bytes: int
    tck_ns: float
    duration_cycles: int
    duration_s: float
    bandwidth_bytes_per_s: float
    peak_bandwidth_bytes_per_s: float
    avg_read_latency_cycles: float
    p50_read_latency_cycles: float
    p99_read_latency_cycles: float
    max_read_latency_cycles: float
    min_read_latency_cycles: float
    avg_admission_wait_cycles: float
    p99_admission_wait_cycles: float
    max_admission_wait_cycles: float
    row_hits: int
    row_misses: int
    row_conflicts: int
    commands: dict[str, int]
    avg_read_queue: float
    avg_write_queue: float
    max_read_queue: int
    max_write_queue: int
    refresh_busy_cycles: int
    refreshes_skipped: int
    background_cycles: dict[str, int]
    energy_by_command_j: dict[str, float]
    energy_background_j: dict[str, float]
    violations: int
    checked: bool
    latency_histogram: dict[str, list[float]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def bandwidth_gbps(self) -> float:
        """Achieved bandwidth in GB/s (1e9 bytes per second)."""
        return self.bandwidth_bytes_per_s / 1e9

    @property
    def peak_fraction(self) -> float:
        """Achieved / peak bandwidth."""
        return self.bandwidth_bytes_per_s / self.peak_bandwidth_bytes_per_s

    @property
    def avg_read_latency_ns(self) -> float:
        """Mean read latency in ns."""
        return self.avg_read_latency_cycles * self.tck_ns

    @property
    def p50_read_latency_ns(self) -> float:
        """Median read latency in ns."""
        return self.p50_read_latency_cycles * self.tck_ns

    @property
    def p99_read_latency_ns(self) -> float:
        """99th-percentile read latency in ns."""
        return self.p99_read_latency_cycles * self.tck_ns

    @property
    def avg_admission_wait_ns(self) -> float:
        """Mean wait for a scheduler-buffer slot, in ns."""
        return self.avg_admission_wait_cycles * self.tck_ns

    @property
    def energy_j(self) -> float:
        """Total energy: commands plus background."""
        return sum(self.energy_by_command_j.values()) + sum(self.energy_background_j.values())

    @property
    def row_hit_rate(self) -> float:
        """Row hits / requests."""
        return self.row_hits / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the derived figures (``bandwidth_gbps`` is GB/s)."""
        out = asdict(self)
        out.update(
            bandwidth_gbps=self.bandwidth_gbps,
            peak_fraction=self.peak_fraction,
            avg_read_latency_ns=self.avg_read_latency_ns,
            p50_read_latency_ns=self.p50_read_latency_ns,
            p99_read_latency_ns=self.p99_read_latency_ns,
            avg_admission_wait_ns=self.avg_admission_wait_ns,
            energy_j=self.energy_j,
            row_hit_rate=self.row_hit_rate,
        )
        return out
