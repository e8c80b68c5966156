"""Request-level NAND flash model: reads under queue depth, writes with an FTL and greedy GC.

Reads (:func:`simulate_flash_reads`) are an exact event-driven simulation of a
small queueing network, in numba. A read of ``S`` bytes at offset ``o`` covers
the logical pages ``o // page .. (o + S - 1) // page``; logical page ``l`` is
striped channel first (``channel = l % C``, then die, then plane), as a
sequentially written SSD lays data out. Each page goes through:

1. the controller: every request first holds the controller for
   ``controller_command_time_s`` (serial, FIFO: this is what caps IOPS), then
   waits ``command_overhead_s`` (host stack, driver, firmware: latency only);
2. its sensing unit for ``tR`` (a plane with ``multi_plane_read``, so planes of
   one die sense in parallel; else the die), FIFO;
3. its channel for ``bytes / channel_rate`` (only the requested bytes of the
   page leave the die: NAND column addressing), FIFO in order of sense end;
4. the host link for ``bytes / host_rate`` if the geometry has one, FIFO.

A request completes when its last page does; ``queue_depth`` requests are kept
outstanding (closed loop: a completion issues the next request at once).
Why an event simulation rather than a closed-form queueing formula: with
several pages per request fanned out over shared dies and channels, the
fork-join and the closed loop have no exact product-form solution, while the
event simulation is exact for the model above and fast (numba, ~1 µs per page).
Modelled simplifications: cache-read mode (a plane may sense its next page while
the previous one waits for the channel: register back-pressure is ignored); no
read cache in the controller (a page read twice is sensed twice); no read retry.

Writes (:func:`simulate_flash_writes`) run a log-structured FTL that maps
logical units of ``map_unit_bytes`` (4 KiB by default, as real FTLs map 4 KiB
sectors) with a write buffer packing units into pages, and greedy garbage
collection (victim = closed block with fewest valid units, valid units copied to
a separate GC frontier) on a device of at most ``max_simulated_blocks`` blocks
with the real ``pages_per_block`` and overprovisioning: write amplification
under uniform random writes depends on those two only, not on the number of
blocks (Hu et al., SYSTOR 2009; Desnoyers, SYSTOR 2012). A write smaller than
the unit read-modify-writes the unit; that factor is reported apart from the
FTL's write amplification. The time of the measured writes is the busiest
resource's occupancy (a fluid bound that a writer with enough queue depth
reaches; writes are acknowledged from the write buffer): page programs, GC page
reads and erases spread over all planes, host and GC bytes over the channels
(GC data crosses the channel twice, for ECC), host bytes over the host link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import lambertw

from hw_models.errors import Problem, SpecError
from hw_models.flash import FlashDevice, FlashGeometry
from memsim._jit import njit
from memsim.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

FlashPattern = Literal["random", "sequential"]

_SENSE, _XFER, _HOST = 0, 1, 2
_KNOWN = "random, sequential"

# --------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashStats:
    """What a read run measured. Throughput counts requested bytes over the makespan."""

    requests: int
    request_bytes: int
    queue_depth: int
    pattern: str
    total_bytes: int
    elapsed_s: float
    throughput_bytes_per_s: float
    iops: float
    mean_latency_s: float
    p50_latency_s: float
    p99_latency_s: float
    max_latency_s: float
    peak_bytes_per_s: float

    def to_dict(self) -> dict[str, float | int | str]:
        """A plain dict (for JSON and tables)."""
        return {name: getattr(self, name) for name in self.__slots__}


@njit()
def _push(ht, hs, ha, hb, n, t, s, a, b):
    i = n
    ht[i] = t
    hs[i] = s
    ha[i] = a
    hb[i] = b
    while i > 0:
        p = (i - 1) // 2
        if ht[p] < ht[i] or (ht[p] == ht[i] and hs[p] < hs[i]):
            break
        ht[p], ht[i] = ht[i], ht[p]
        hs[p], hs[i] = hs[i], hs[p]
        ha[p], ha[i] = ha[i], ha[p]
        hb[p], hb[i] = hb[i], hb[p]
        i = p
    return n + 1


@njit()
def _pop(ht, hs, ha, hb, n):
    t, a, b = ht[0], ha[0], hb[0]
    n -= 1
    ht[0], hs[0], ha[0], hb[0] = ht[n], hs[n], ha[n], hb[n]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        m = left
        right = left + 1
        if right < n and (ht[right] < ht[left] or (ht[right] == ht[left] and hs[right] < hs[left])):
            m = right
        if ht[i] < ht[m] or (ht[i] == ht[m] and hs[i] < hs[m]):
            break
        ht[m], ht[i] = ht[i], ht[m]
        hs[m], hs[i] = hs[i], hs[m]
        ha[m], ha[i] = ha[i], ha[m]
        hb[m], hb[i] = hb[i], hb[m]
        i = m
    return t, a, b, n


@njit()
def _simulate_reads(
    offsets,
    request_bytes,
    page_bytes,
    C,
    D,
    P,
    multi_plane,
    tR,
    chan_s_per_byte,
    host_s_per_byte,
    ctrl_time,
    overhead,
    qd,
):
    n = offsets.size
    units = C * D * P if multi_plane else C * D
    unit_free = np.zeros(units)
    chan_free = np.zeros(C)
    host_free = 0.0
    ctrl_free = 0.0
    issue = np.zeros(n)
    done = np.zeros(n)
    rem = np.zeros(n, dtype=np.int64)
    max_pages = (request_bytes + page_bytes - 1) // page_bytes + 1
    cap = qd * max_pages + 8
    ht = np.empty(cap)
    hs = np.empty(cap, dtype=np.int64)
    ha = np.empty(cap, dtype=np.int64)
    hb = np.empty(cap, dtype=np.int64)
    nh = 0
    seq = 0
    next_req = 0
    t = 0.0
    pending = min(qd, n)  # requests to issue at time t
    while True:
        # issue `pending` requests at time t
        for _ in range(pending):
            if next_req >= n:
                break
            r = next_req
            next_req += 1
            issue[r] = t
            start = max(t, ctrl_free)
            ctrl_free = start + ctrl_time
            ready = ctrl_free + overhead
            first = offsets[r] // page_bytes
            last = (offsets[r] + request_bytes - 1) // page_bytes
            rem[r] = last - first + 1
            for k in range(last - first + 1):
                lpn = first + k
                c = lpn % C
                d = (lpn // C) % D
                u = c * D + d
                if multi_plane:
                    u = u * P + (lpn // (C * D)) % P
                s = max(ready, unit_free[u])
                unit_free[u] = s + tR
                nh = _push(ht, hs, ha, hb, nh, s + tR, seq, r, k * 4 + _SENSE)
                seq += 1
        pending = 0
        if nh == 0:
            break
        t, r, code, nh = _pop(ht, hs, ha, hb, nh)
        kind = code % 4
        k = code // 4
        lpn = offsets[r] // page_bytes + k
        lo = max(offsets[r], lpn * page_bytes)
        hi = min(offsets[r] + request_bytes, (lpn + 1) * page_bytes)
        nbytes = hi - lo
        if kind == _SENSE:
            c = lpn % C
            s = max(t, chan_free[c])
            e = s + nbytes * chan_s_per_byte
            chan_free[c] = e
            nh = _push(ht, hs, ha, hb, nh, e, seq, r, k * 4 + _XFER)
            seq += 1
        elif kind == _XFER and host_s_per_byte > 0.0:
            s = max(t, host_free)
            e = s + nbytes * host_s_per_byte
            host_free = e
            nh = _push(ht, hs, ha, hb, nh, e, seq, r, k * 4 + _HOST)
            seq += 1
        else:
            rem[r] -= 1
            if rem[r] == 0:
                done[r] = t
                pending = 1
    return issue, done


def _geometry(device: FlashGeometry | FlashDevice) -> FlashGeometry:
    if isinstance(device, FlashDevice):
        return device.geometry
    if isinstance(device, FlashGeometry):
        return device
    raise SpecError(
        [Problem("device", f"expected a flash geometry, found {type(device).__name__}")]
    )


def _positive_int(value: object, path: str, problems: list[Problem]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        problems.append(Problem(path, f"expected an integer >= 1, found {value!r}"))
        return 1
    return int(value)


read_patterns: Registry[npt.NDArray[np.int64]] = Registry("flash read pattern")


@read_patterns.register("random")
def _random_offsets(
    n: int, request_bytes: int, capacity: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Uniform random offsets aligned to the request size."""
    slots = max(1, int(capacity // request_bytes))
    return rng.integers(0, slots, size=n, dtype=np.int64) * request_bytes


@read_patterns.register("sequential")
def _sequential_offsets(
    n: int, request_bytes: int, capacity: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Back-to-back requests from offset 0, wrapping at the capacity."""
    slots = max(1, int(capacity // request_bytes))
    return (np.arange(n, dtype=np.int64) % slots) * request_bytes


def simulate_flash_reads(
    device: FlashGeometry | FlashDevice,
    *,
    request_bytes: int,
    queue_depth: int,
    requests: int,
    pattern: str = "random",
    seed: int = 0,
) -> FlashStats:
    """Simulate ``requests`` reads of ``request_bytes`` with ``queue_depth`` outstanding.

    ``pattern`` is ``"random"`` (offsets uniform over the user capacity, aligned
    to the request size) or ``"sequential"``. Deterministic for a given ``seed``.

    >>> from hw_models.flash_presets import load_flash_device
    >>> ssd = load_flash_device("apple_m1_max_1tb")
    >>> st = simulate_flash_reads(ssd, request_bytes=1 << 20, queue_depth=8, requests=200)
    >>> 5.5e9 < st.throughput_bytes_per_s <= ssd.geometry.peak_read_bandwidth_bytes_per_s
    True
    """
    geo = _geometry(device)
    problems: list[Problem] = []
    size = _positive_int(request_bytes, "request_bytes", problems)
    qd = _positive_int(queue_depth, "queue_depth", problems)
    n = _positive_int(requests, "requests", problems)
    if pattern not in read_patterns:
        problems.append(
            Problem(
                "pattern", f"unknown flash read pattern {pattern!r} (known: random, sequential)"
            )
        )
    if size > geo.user_capacity_bytes:
        problems.append(Problem("request_bytes", "larger than the device's user capacity"))
    if problems:
        raise SpecError(problems)
    rng = np.random.default_rng(seed)
    offsets = read_patterns.create(pattern, n, size, geo.user_capacity_bytes, rng)
    host = geo.host_interface_bytes_per_s
    issue, done = _simulate_reads(
        offsets,
        size,
        int(geo.page_bytes),
        geo.channels,
        geo.dies_per_channel,
        geo.planes_per_die,
        geo.multi_plane_read,
        geo.tR_s,
        1.0 / geo.channel_rate_bytes_per_s,
        0.0 if host is None else 1.0 / host,
        geo.controller_command_time_s,
        geo.command_overhead_s,
        qd,
    )
    latency = done - issue
    elapsed = float(done.max())
    total = n * size
    return FlashStats(
        requests=n,
        request_bytes=size,
        queue_depth=qd,
        pattern=pattern,
        total_bytes=total,
        elapsed_s=elapsed,
        throughput_bytes_per_s=total / elapsed,
        iops=n / elapsed,
        mean_latency_s=float(latency.mean()),
        p50_latency_s=float(np.percentile(latency, 50)),
        p99_latency_s=float(np.percentile(latency, 99)),
        max_latency_s=float(latency.max()),
        peak_bytes_per_s=geo.peak_read_bandwidth_bytes_per_s,
    )


def read_throughput_curve(
    device: FlashGeometry | FlashDevice,
    sizes: list[int] | tuple[int, ...],
    queue_depths: list[int] | tuple[int, ...],
    *,
    requests: int = 2000,
    pattern: str = "random",
    seed: int = 0,
) -> pd.DataFrame:
    """Throughput, IOPS and latency for every (request size, queue depth) pair.

    One row per pair, columns as in :class:`FlashStats`.
    """
    rows = [
        simulate_flash_reads(
            device, request_bytes=s, queue_depth=q, requests=requests, pattern=pattern, seed=seed
        ).to_dict()
        for s in sizes
        for q in queue_depths
    ]
    import pandas as pd  # only here: keeps `import memsim.flash` (and the CLI) light

    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashWriteStats:
    """What a write run measured (preconditioning writes excluded).

    The FTL maps ``map_unit_bytes`` logical units (4 KiB by default, as real FTLs
    do) and a write buffer packs units into NAND pages, so a 4 KiB write to a
    16 KiB-page device programs a quarter of a page, not a whole page.

    ``write_amplification`` = NAND bytes programmed / host bytes at unit
    granularity (the FTL's own amplification: GC copies; what
    ``greedy_wa_estimate`` predicts under uniform random overwrite).
    ``rmw_factor`` = host bytes rounded up to whole units / host bytes requested:
    a write smaller than (or not a multiple of) the unit read-modify-writes the
    unit; 1.0 when requests are multiples of the unit.
    ``nand_bytes_per_host_byte`` = NAND bytes / requested bytes = the product.
    ``endurance_used_fraction`` = NAND bytes programmed / rated TBW (None without a TBW).
    """

    requests: int
    request_bytes: int
    pattern: str
    map_unit_bytes: int
    host_bytes: int
    nand_bytes_written: int
    write_amplification: float
    rmw_factor: float
    nand_bytes_per_host_byte: float
    gc_unit_moves: int
    gc_page_reads: int
    erases: int
    gc_time_s: float
    elapsed_s: float
    throughput_bytes_per_s: float
    endurance_used_fraction: float | None
    greedy_wa_estimate: float
    simulated_blocks: int

    def to_dict(self) -> dict[str, float | int | str | None]:
        """A plain dict (for JSON and tables)."""
        return {name: getattr(self, name) for name in self.__slots__}


@njit()
def _ftl(units, n_warm, n_blocks, spb, upp, user_units, reserve):
    # Log-structured FTL over unit slots: a block holds spb = pages_per_block x upp
    # slots (upp units per page). The host frontier fills slots in order (the write
    # buffer packing units into pages); GC copies valid units to its own frontier.
    # Returns host units, NAND units, GC unit moves, GC page reads, erases
    # (measured part only), or -1s if GC found no block to free.
    l2p = np.full(user_units, -1, dtype=np.int64)
    p2l = np.full(n_blocks * spb, -1, dtype=np.int64)
    valid = np.zeros(n_blocks, dtype=np.int64)
    state = np.zeros(n_blocks, dtype=np.int8)  # 0 free, 1 open, 2 closed
    free = np.arange(n_blocks - 1, -1, -1, dtype=np.int64)  # stack, lowest index on top
    n_free = n_blocks
    n_free -= 1
    hblk = free[n_free]
    state[hblk] = 1
    hwp = 0
    gblk = -1
    gwp = spb
    host = 0
    nand = 0
    moves = 0
    reads = 0
    erases = 0
    for i in range(units.size):
        measuring = i >= n_warm
        lu = units[i]
        old = l2p[lu]
        if old >= 0:
            p2l[old] = -1
            valid[old // spb] -= 1
        if hwp == spb:
            state[hblk] = 2
            n_free -= 1
            hblk = free[n_free]
            state[hblk] = 1
            hwp = 0
        slot = hblk * spb + hwp
        hwp += 1
        l2p[lu] = slot
        p2l[slot] = lu
        valid[hblk] += 1
        if measuring:
            host += 1
            nand += 1
        while n_free < reserve:
            victim = -1
            best = spb + 1
            for b in range(n_blocks):
                if state[b] == 2 and valid[b] < best:
                    best = valid[b]
                    victim = b
            if victim < 0 or best >= spb:
                return -1, -1, -1, -1, -1
            sensed_page = -1
            for j in range(spb):
                p = victim * spb + j
                lp = p2l[p]
                if lp < 0:
                    continue
                if measuring and j // upp != sensed_page:
                    sensed_page = j // upp
                    reads += 1
                if gwp == spb:
                    if gblk >= 0:
                        state[gblk] = 2
                    n_free -= 1
                    gblk = free[n_free]
                    state[gblk] = 1
                    gwp = 0
                q = gblk * spb + gwp
                gwp += 1
                p2l[q] = lp
                l2p[lp] = q
                valid[gblk] += 1
                p2l[p] = -1
                if measuring:
                    moves += 1
                    nand += 1
            valid[victim] = 0
            state[victim] = 0
            free[n_free] = victim
            n_free += 1
            if measuring:
                erases += 1
    return host, nand, moves, reads, erases


def greedy_write_amplification(overprovisioning: float) -> float:
    """Steady-state WA of greedy GC under uniform random page writes (large blocks).

    ``A = a / (a + W0(-a e^-a))`` with ``a`` = physical / logical pages
    ``= 1 / (1 - overprovisioning)`` and ``W0`` the principal Lambert W branch:
    the mean-field greedy result of Hu et al. (SYSTOR 2009), in closed form in
    Xiang & Kurkoski, "An improved analytic expression for write amplification
    in NAND flash" (arXiv 1110.4245, 2011) and Desnoyers (SYSTOR 2012). Their
    check: spare 0.3 of the *logical* size (a = 1.3) gives 2.36. The same
    formula holds for the FTL's mapping units (4 KiB sectors packed into pages):
    it depends only on the spare fraction, for blocks of many units.

    >>> round(greedy_write_amplification(1 - 1 / 1.3), 2)
    2.36
    """
    if not 0.0 <= overprovisioning < 1.0:
        raise SpecError(
            [Problem("overprovisioning", f"expected 0 <= x < 1, found {overprovisioning!r}")]
        )
    if overprovisioning == 0.0:
        return math.inf
    a = 1.0 / (1.0 - overprovisioning)
    w = float(np.real(lambertw(-a * math.exp(-a), 0)))
    return a / (a + w)


_GC_RESERVE = 3  # free blocks below which GC runs
DEFAULT_MAP_UNIT_BYTES = 4096


def _map_unit(value: int | None, page: int, problems: list[Problem]) -> int:
    if value is None:
        # 4 KiB when it divides the page, else the page (pages smaller than 4 KiB or odd sizes)
        return DEFAULT_MAP_UNIT_BYTES if page % DEFAULT_MAP_UNIT_BYTES == 0 else page
    unit = _positive_int(value, "map_unit_bytes", problems)
    if unit > page or page % unit:
        problems.append(
            Problem(
                "map_unit_bytes",
                f"expected a divisor of the page size ({page} B), found {value!r}",
            )
        )
        return page
    return unit


def simulate_flash_writes(
    device: FlashGeometry | FlashDevice,
    *,
    request_bytes: int,
    requests: int,
    pattern: str = "random",
    precondition: bool = True,
    map_unit_bytes: int | None = None,
    max_simulated_blocks: int = 1024,
    seed: int = 0,
) -> FlashWriteStats:
    """Simulate ``requests`` writes of ``request_bytes`` through a unit-mapped FTL.

    ``map_unit_bytes``: the FTL's mapping unit, a divisor of the page size
    (default 4 KiB, or the page if smaller); ``map_unit_bytes=page_bytes`` gives a
    page-mapped FTL in which sub-page writes read-modify-write whole pages
    (reported as ``rmw_factor``). ``pattern``: ``"random"`` (uniform over the
    user space, aligned to the request size rounded up to units) or
    ``"sequential"`` (from unit 0, wrapping). ``precondition``: first fill the
    whole user space sequentially and, for the random pattern, overwrite it once
    at random (steady state); those writes are not counted. Without it the
    device starts empty (fresh out of box).

    >>> from hw_models.flash_presets import load_flash_device
    >>> ssd = load_flash_device("samsung_pm9a3_7t68")
    >>> w = simulate_flash_writes(ssd, request_bytes=4096, requests=20_000)
    >>> abs(w.write_amplification / w.greedy_wa_estimate - 1) < 0.1, w.rmw_factor
    (True, 1.0)
    """
    geo = _geometry(device)
    problems: list[Problem] = []
    size = _positive_int(request_bytes, "request_bytes", problems)
    n = _positive_int(requests, "requests", problems)
    max_blocks = _positive_int(max_simulated_blocks, "max_simulated_blocks", problems)
    page = int(geo.page_bytes)
    unit = _map_unit(map_unit_bytes, page, problems)
    if pattern not in read_patterns:
        problems.append(
            Problem(
                "pattern", f"unknown flash write pattern {pattern!r} (known: random, sequential)"
            )
        )
    if problems:
        raise SpecError(problems)
    upp = page // unit  # units per page
    spb = geo.pages_per_block * upp  # unit slots per block
    n_blocks = min(geo.blocks, max_blocks)
    user_units = int(n_blocks * spb * (1.0 - geo.overprovisioning))
    upr = -(-size // unit)  # units per request (rounded up: read-modify-write)
    if user_units > (n_blocks - _GC_RESERVE - 2) * spb - 1:
        raise SpecError(
            [
                Problem(
                    "overprovisioning",
                    f"{geo.overprovisioning:g} leaves no room for garbage collection on "
                    f"{n_blocks} simulated blocks (raise it or max_simulated_blocks)",
                )
            ]
        )
    if upr > user_units:
        raise SpecError([Problem("request_bytes", "larger than the simulated user space")])
    rng = np.random.default_rng(seed)
    slots = user_units // upr
    within = np.arange(upr, dtype=np.int64)

    def stream(count: int, kind: str, start: int = 0) -> npt.NDArray[np.int64]:
        if kind == "random":
            first = rng.integers(0, slots, size=count, dtype=np.int64) * upr
        else:
            first = ((start + np.arange(count, dtype=np.int64)) % slots) * upr
        return (first[:, None] + within[None, :]).ravel()

    warm: list[npt.NDArray[np.int64]] = []
    if precondition:
        warm.append(np.arange(user_units, dtype=np.int64))
        if pattern == "random":
            warm.append(stream(slots, "random"))
    measured = stream(n, pattern)
    seq = np.concatenate([*warm, measured]) if warm else measured
    n_warm = int(sum(w.size for w in warm))
    host_units, nand_units, moves, reads, erases = _ftl(
        seq, n_warm, n_blocks, spb, upp, user_units, _GC_RESERVE
    )
    if host_units < 0:  # pragma: no cover - guarded by the overprovisioning check
        raise SpecError([Problem("overprovisioning", "garbage collection found no block to free")])
    host_bytes = n * size
    unit_host_bytes = int(host_units) * unit
    nand_bytes = int(nand_units) * unit
    planes = geo.planes
    # programs are whole pages of packed units (fluid: a partly filled buffer page
    # at the end counts pro rata); GC senses each victim page holding a valid unit
    gc_time = (reads * geo.tR_s + moves / upp * geo.tPROG_s + erases * geo.tERASE_s) / planes
    plane_busy = (host_units / upp * geo.tPROG_s) / planes + gc_time
    chan_busy = (host_units + 2 * moves) * unit / (geo.channels * geo.channel_rate_bytes_per_s)
    host_busy = (
        host_bytes / geo.host_interface_bytes_per_s if geo.host_interface_bytes_per_s else 0.0
    )
    elapsed = max(plane_busy, chan_busy, host_busy)
    tbw = geo.rated_tbw_bytes
    return FlashWriteStats(
        requests=n,
        request_bytes=size,
        pattern=pattern,
        map_unit_bytes=unit,
        host_bytes=host_bytes,
        nand_bytes_written=nand_bytes,
        write_amplification=nand_bytes / unit_host_bytes,
        rmw_factor=unit_host_bytes / host_bytes,
        nand_bytes_per_host_byte=nand_bytes / host_bytes,
        gc_unit_moves=int(moves),
        gc_page_reads=int(reads),
        erases=int(erases),
        gc_time_s=gc_time,
        elapsed_s=elapsed,
        throughput_bytes_per_s=host_bytes / elapsed,
        endurance_used_fraction=None if tbw is None else nand_bytes / tbw,
        greedy_wa_estimate=greedy_write_amplification(geo.overprovisioning),
        simulated_blocks=n_blocks,
    )
