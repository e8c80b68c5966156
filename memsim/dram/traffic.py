"""Synthetic request generators: stream, uniform random, strided, read/write mix,
rate limiting, several requestors.

Every generator returns a :class:`~memsim.dram.trace.RequestTrace` of ``n``
accesses of the device's burst size. ``interval_cycles`` spaces arrivals (request
``i`` arrives at ``floor(i * interval_cycles)``; 0, the default, makes every
request arrive at cycle 0: a saturating, backlogged source). ``write_fraction``
makes each request a write with that probability. :func:`interval_for_rate`
turns an offered load given as a fraction of the device's peak bandwidth into
``interval_cycles``.

>>> from hw_models import load_dram_device
>>> dev = load_dram_device("DDR4_3200")
>>> tr = stream(dev, 4)
>>> tr.address.tolist()
[0, 64, 128, 192]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError
from memsim.dram.trace import RequestTrace
from memsim.registry import Registry

IntArray = npt.NDArray[np.int64]


def _check(n: int, interval_cycles: float, write_fraction: float) -> None:
    problems = []
    if n < 0:
        problems.append(Problem("requests", f"expected a count >= 0, found {n}"))
    if interval_cycles < 0:
        problems.append(Problem("interval_cycles", f"expected >= 0, found {interval_cycles}"))
    if not 0.0 <= write_fraction <= 1.0:
        problems.append(Problem("write_fraction", f"expected 0..1, found {write_fraction}"))
    if problems:
        raise SpecError(problems)


def interval_for_rate(device: DRAMDevice, rate_fraction: float) -> float:
    """Arrival spacing (cycles of tCK) that offers ``rate_fraction`` of peak bandwidth.

    One burst of ``access_bytes`` every ``access_bytes / (rate_fraction * peak)``
    seconds; e.g. DDR4-3200 x64 (25.6 GB/s, 64 B bursts, tCK 0.625 ns) at 0.5:
    64 / 12.8e9 = 5 ns = 8 cycles.

    >>> from hw_models import load_dram_device
    >>> interval_for_rate(load_dram_device("DDR4_3200"), 0.5)
    8.0
    """
    if not (isinstance(rate_fraction, int | float) and math.isfinite(rate_fraction)) or (
        rate_fraction <= 0
    ):
        raise SpecError(
            [Problem("rate", f"expected a fraction of peak > 0, found {rate_fraction}")]
        )
    seconds = device.organization.access_bytes / (rate_fraction * device.peak_bandwidth_bytes_per_s)
    return seconds / (device.timing.tCK_ns * 1e-9)


def _finish(
    addr: IntArray,
    *,
    interval_cycles: float,
    write_fraction: float,
    rng: np.random.Generator,
    requestor: int,
    start_cycle: int,
) -> RequestTrace:
    n = addr.shape[0]
    arrival = start_cycle + np.floor(np.arange(n) * interval_cycles).astype(np.int64)
    writes = rng.random(n) < write_fraction if write_fraction > 0 else np.zeros(n, bool)
    return RequestTrace.from_arrays(
        addr, arrival_cycle=arrival, is_write=writes, requestor=np.full(n, requestor)
    )


def stream(
    device: DRAMDevice,
    n: int,
    *,
    start_address: int = 0,
    interval_cycles: float = 0.0,
    write_fraction: float = 0.0,
    seed: int = 0,
    requestor: int = 0,
    start_cycle: int = 0,
) -> RequestTrace:
    """``n`` consecutive bursts from ``start_address`` (wrapping at the capacity)."""
    return strided(
        device,
        n,
        stride_bytes=device.organization.access_bytes,
        start_address=start_address,
        interval_cycles=interval_cycles,
        write_fraction=write_fraction,
        seed=seed,
        requestor=requestor,
        start_cycle=start_cycle,
    )


def strided(
    device: DRAMDevice,
    n: int,
    *,
    stride_bytes: int,
    start_address: int = 0,
    interval_cycles: float = 0.0,
    write_fraction: float = 0.0,
    seed: int = 0,
    requestor: int = 0,
    start_cycle: int = 0,
) -> RequestTrace:
    """``n`` bursts ``stride_bytes`` apart from ``start_address`` (wrapping at the capacity)."""
    _check(n, interval_cycles, write_fraction)
    if stride_bytes <= 0:
        raise SpecError([Problem("stride_bytes", f"expected > 0, found {stride_bytes}")])
    cap = device.capacity_bytes
    addr = (start_address + np.arange(n, dtype=np.int64) * stride_bytes) % cap
    rng = np.random.default_rng(seed)
    return _finish(
        addr,
        interval_cycles=interval_cycles,
        write_fraction=write_fraction,
        rng=rng,
        requestor=requestor,
        start_cycle=start_cycle,
    )


def random_uniform(
    device: DRAMDevice,
    n: int,
    *,
    interval_cycles: float = 0.0,
    write_fraction: float = 0.0,
    seed: int = 0,
    requestor: int = 0,
    start_cycle: int = 0,
    footprint_bytes: int | None = None,
) -> RequestTrace:
    """``n`` bursts at uniformly random aligned addresses (within ``footprint_bytes``)."""
    _check(n, interval_cycles, write_fraction)
    size = device.organization.access_bytes
    span = device.capacity_bytes if footprint_bytes is None else footprint_bytes
    if not 0 < span <= device.capacity_bytes:
        raise SpecError(
            [Problem("footprint_bytes", f"expected 0 < footprint <= capacity, found {span}")]
        )
    rng = np.random.default_rng(seed)
    addr = rng.integers(0, span // size, size=n, dtype=np.int64) * size
    return _finish(
        addr,
        interval_cycles=interval_cycles,
        write_fraction=write_fraction,
        rng=rng,
        requestor=requestor,
        start_cycle=start_cycle,
    )


def mix(
    device: DRAMDevice,
    n: int,
    *,
    write_fraction: float = 1 / 3,
    interval_cycles: float = 0.0,
    seed: int = 0,
    requestor: int = 0,
    start_cycle: int = 0,
) -> RequestTrace:
    """Uniform random traffic with a share of writes (one write in three by default)."""
    return random_uniform(
        device,
        n,
        interval_cycles=interval_cycles,
        write_fraction=write_fraction,
        seed=seed,
        requestor=requestor,
        start_cycle=start_cycle,
    )


def requestors(traces: Sequence[RequestTrace]) -> RequestTrace:
    """One trace from several sources, the ``i``-th tagged as requestor ``i``."""
    tagged = [
        RequestTrace.from_arrays(
            t.address,
            arrival_cycle=t.arrival_cycle,
            is_write=t.is_write,
            requestor=np.full(len(t), i),
        )
        for i, t in enumerate(traces)
    ]
    return RequestTrace.concat(tagged)


PATTERNS: Registry[RequestTrace] = Registry("traffic pattern")
PATTERNS.register("stream")(stream)
PATTERNS.register("random")(random_uniform)
PATTERNS.register("mix")(mix)


@PATTERNS.register("strided")
def _strided_rows(device: DRAMDevice, n: int, **kw: object) -> RequestTrace:
    """Strided by one row of one rank (every access opens a new row)."""
    stride = int(kw.pop("stride_bytes", device.organization.row_bytes))  # type: ignore[call-overload]
    return strided(device, n, stride_bytes=stride, **kw)  # type: ignore[arg-type]
