"""Request fidelity for a tier: bandwidth and latency measured by the DRAM controller.

A tier with ``fidelity: request`` (and a ``dram: {device, count, data_rate_mtps}``
attachment) does not use its spec's ``achievable_bandwidth_fraction`` and
``latency_s``. Instead, the plan's traffic in that tier is split into a few
*access classes*, and for each class the request-level controller of
:mod:`memsim.dram` runs ONCE on a window of representative requests on ONE device
of the tier (``count`` devices interleave addresses and behave alike):

==============  =========================================  ===============================
class           traffic                                    contiguous run per request run
==============  =========================================  ===============================
``weight_read``  reads of weights, optimizer state, grads   the access (a stream)
``weight_write`` writes of weights, optimizer state, grads  the access
``kv_read``      reads of the KV cache (a context)          ``KV_PAGE_BYTES`` (one page)
``kv_write``     KV writes outside decode (prefill fills)   ``KV_PAGE_BYTES``
``kv_append``    KV writes in decode (one token per head)   ``KV_TOKEN_BYTES``
``act_read``     reads of activations, inputs, logits       the access
``act_write``    writes of activations, inputs, logits      the access
==============  =========================================  ===============================

A class's run length is the bytes-weighted geometric mean of its accesses' runs,
rounded to a power of two and clipped to [one burst, the window]. Its window is
runs of that length at random run-aligned addresses of the device (fixed seed),
one run after the other, every request arriving at cycle 0 (a backlogged source),
long enough to span ``REFRESH_INTERVALS`` refresh intervals at full rate
(8192 to 262144 requests). It yields:

* ``bandwidth_fraction`` = achieved bandwidth / the device's peak (at the tier's
  data rate): the tier's demand for ``b`` bytes of the class is
  ``b / (count x device peak x fraction)``;
* ``read_latency_s`` = mean read latency of the first ``LATENCY_REQUESTS``
  requests of the same pattern issued one at a time (no queueing): the pipeline
  fill an op pays once. Write classes use the read latency of their pattern.

A ``data_rate_mtps`` below the preset's keeps the timings that JEDEC gives in ns
(tRCD, tRP, CL, ...) in ns and recomputes their cycles at the slower clock
(:func:`scaled_device`). Calibrations are memoised per (device, controller
config, direction, run length) in a per-process LRU: a pure function of its
inputs, so results never depend on the order of simulations.

>>> from hw_models import load_dram_device
>>> dev = load_dram_device("DDR4_3200")
>>> cfg = device_config(DEFAULT_CONFIG, dev)  # RoCoBaRaCh for DDR4
>>> cal = calibrate_class(dev, config=cfg, write=False, run_bytes=1 << 20)
>>> 0.9 < cal.bandwidth_fraction <= 1.0
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from hw_models import MemoryTier
from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError
from hw_models.loader import load_dram_device
from memsim.compiled import CompiledGraph, FloatArray, IntArray
from memsim.dram import ControllerConfig, RequestTrace, simulate_requests
from memsim.memo import memo

#: The engine's default controller for request-fidelity tiers: memsim.dram's defaults
#: (FR-FCFS, open page, 32-entry queues, all-bank refresh) with the address mapping of
#: :data:`DEFAULT_MAPPING` for the device's standard unless the user sets ``mapping``.
DEFAULT_CONFIG = ControllerConfig()
#: Address mapping by DRAM standard when none is given. Few-channel parts (DDR, LPDDR,
#: GDDR): consecutive bursts over bank groups, then banks (``RoCoBaRaCh``), so a stream
#: issues column commands tCCD_S apart, as CPU memory controllers interleave. Many-channel
#: HBM: one row-sized chunk (1 KiB) per pseudo-channel, then the next channel
#: (``RoRaBaChCo``), so a KV page or a stream keeps row hits in each channel. The
#: trade-offs behind this choice are measured in benchmarks/bench_request_fidelity.py.
DEFAULT_MAPPING: Mapping[str, str] = {
    "DDR4": "RoCoBaRaCh",
    "DDR5": "RoCoBaRaCh",
    "LPDDR4": "RoCoBaRaCh",
    "LPDDR5": "RoCoBaRaCh",
    "GDDR6": "RoCoBaRaCh",
    "HBM2": "RoRaBaChCo",
    "HBM2E": "RoRaBaChCo",
    "HBM3": "RoRaBaChCo",
    "HBM3E": "RoRaBaChCo",
}
#: One page of a paged KV cache: 16 tokens (vLLM's default block) x head_dim 128 x 2 B.
KV_PAGE_BYTES = 4096
#: One token of one KV head appended in decode: head_dim 128 x 2 B.
KV_TOKEN_BYTES = 256
#: Requests of the unloaded latency sample.
LATENCY_REQUESTS = 1024
#: The bandwidth window spans this many refresh intervals at full rate (within bounds).
REFRESH_INTERVALS = 2
MIN_WINDOW = 8192
MAX_WINDOW = 1 << 18
SEED = 0

#: (name, write) of each class, by code.
CLASSES: tuple[tuple[str, bool], ...] = (
    ("weight_read", False),
    ("weight_write", True),
    ("kv_read", False),
    ("kv_write", True),
    ("kv_append", True),
    ("act_read", False),
    ("act_write", True),
)
_WEIGHT_KINDS = frozenset({"weight", "optimizer", "gradient"})

DramConfigLike = ControllerConfig | Mapping[str, Any] | Iterable[str] | None


def resolve_config(dram_config: DramConfigLike) -> ControllerConfig:
    """A :class:`ControllerConfig` from ``None`` (:data:`DEFAULT_CONFIG`), a config, a
    mapping of its fields, or ``key=value`` strings (values read as YAML), e.g.
    ``["scheduler=fcfs", "row_policy=closed"]`` as ``memsim run --dram-config`` gives.

    Fields not given keep memsim.dram's defaults; the mapping, if not given, is chosen
    per device by :func:`device_config`. Bad keys or values raise :class:`SpecError`
    naming them (under ``dram_config``).
    """
    if dram_config is None:
        return DEFAULT_CONFIG
    if isinstance(dram_config, ControllerConfig):
        return dram_config
    if not isinstance(dram_config, Mapping):
        items = [dram_config] if isinstance(dram_config, str) else list(dram_config)
        data: dict[str, Any] = {}
        problems = []
        for item in items:
            key, sep, raw = str(item).partition("=")
            if not sep:
                problems.append(Problem("dram_config", f"expected key=value, found {item!r}"))
                continue
            try:
                data[key.strip()] = yaml.safe_load(raw)
            except yaml.YAMLError:
                data[key.strip()] = raw
        if problems:
            raise SpecError(problems)
        dram_config = data
    unknown = sorted(set(map(str, dram_config)) - set(ControllerConfig.model_fields))
    if unknown:
        known = ", ".join(ControllerConfig.model_fields)
        raise SpecError(
            [
                Problem(f"dram_config.{k}", f"unknown controller key (known: {known})")
                for k in unknown
            ]
        )
    return ControllerConfig.parse(dict(dram_config), prefix="dram_config")


def tier_config(tier: str, spec: MemoryTier, config: ControllerConfig) -> ControllerConfig:
    """The tier's own ``dram_controller`` settings (from its YAML) overridden by the keys
    ``config`` sets explicitly (``simulate(dram_config=...)``, ``--dram-config``)."""
    if not spec.dram_controller:
        return config
    prefix = f"tiers.{tier}.dram_controller"
    unknown = sorted(set(map(str, spec.dram_controller)) - set(ControllerConfig.model_fields))
    if unknown:
        known = ", ".join(ControllerConfig.model_fields)
        raise SpecError(
            [Problem(f"{prefix}.{k}", f"unknown controller key (known: {known})") for k in unknown]
        )
    data = {**spec.dram_controller, **{k: getattr(config, k) for k in config.model_fields_set}}
    return ControllerConfig.parse(data, prefix=prefix)


def device_config(config: ControllerConfig, device: DRAMDevice) -> ControllerConfig:
    """``config`` with :data:`DEFAULT_MAPPING`'s mapping for ``device`` unless ``config``
    sets ``mapping`` explicitly."""
    if "mapping" in config.model_fields_set:
        return config
    mapping = DEFAULT_MAPPING.get(device.standard, config.mapping)
    data = {**{k: getattr(config, k) for k in config.model_fields_set}, "mapping": mapping}
    return ControllerConfig.parse(data, prefix="dram_config")


# ---- devices -------------------------------------------------------------------------

_CYCLE_FIXED = frozenset({"tCK_ns", "nBL", "nCCD_S", "nRTRS"})


def scaled_device(device: DRAMDevice, data_rate_mtps: float | None) -> DRAMDevice:
    """``device`` run at ``data_rate_mtps``: same organisation, slower (or faster) clock.

    Timings JEDEC specifies in ns keep their ns value (cycles rounded up at the new
    tCK, the refresh interval rounded down); the burst (nBL), tCCD_S and the rank
    switch stay in cycles. Relations the loader checks (nRC >= nRAS + nRP, ...) hold.
    """
    if data_rate_mtps is None or math.isclose(data_rate_mtps, device.data_rate_mtps):
        return device
    old = device.timing
    tck = device.transfers_per_clock * 1e3 / data_rate_mtps
    timing = old.model_dump()
    for name, value in timing.items():
        if name in _CYCLE_FIXED or value is None:
            continue
        timing[name] = max(1, math.ceil(value * old.tCK_ns / tck - 1e-9))
    # tREFI is a maximum average interval: round down so refresh is never late
    timing["nREFI"] = max(1, math.floor(old.nREFI * old.tCK_ns / tck + 1e-9))
    timing["tCK_ns"] = tck
    timing["nCCD_L"] = max(timing["nCCD_L"], timing["nCCD_S"])
    timing["nRAS"] = max(timing["nRAS"], timing["nRCD"])
    timing["nRC"] = max(timing["nRC"], timing["nRAS"] + timing["nRP"])
    timing["nFAW"] = max(timing["nFAW"], timing["nRRD_S"])
    timing["nREFI"] = max(timing["nREFI"], timing["nRFC"] + 1)
    data = device.model_dump()
    data.update(
        name=f"{device.name}@{data_rate_mtps:g}",
        data_rate_mtps=data_rate_mtps,
        timing=timing,
        datasheet_bandwidth_bytes_per_s=None,
    )
    return DRAMDevice.parse(data, prefix=f"dram.{device.name}")


def window_requests(device: DRAMDevice) -> int:
    """Requests in a class's bandwidth window: ``REFRESH_INTERVALS`` x tREFI at full rate
    on every channel, within [``MIN_WINDOW``, ``MAX_WINDOW``]."""
    org, tm = device.organization, device.timing
    full_rate = REFRESH_INTERVALS * org.channels * org.ranks * tm.nREFI / tm.nBL
    return int(min(MAX_WINDOW, max(MIN_WINDOW, math.ceil(full_rate))))


# ---- one class ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassCalibration:
    """What the controller measured for one access pattern on one device."""

    write: bool
    run_bytes: int
    requests: int
    bandwidth_fraction: float
    read_latency_s: float
    row_hit_rate: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "write": self.write,
            "run_bytes": self.run_bytes,
            "requests": self.requests,
            "bandwidth_fraction": self.bandwidth_fraction,
            "read_latency_s": self.read_latency_s,
            "row_hit_rate": self.row_hit_rate,
        }


def class_trace(device: DRAMDevice, n: int, *, run_bytes: int, write: bool) -> RequestTrace:
    """``n`` bursts in runs of ``run_bytes`` at random run-aligned addresses (seeded),
    one run after the other, all arriving at cycle 0."""
    burst = device.organization.access_bytes
    run = max(burst, int(run_bytes) // burst * burst)
    lines = run // burst
    n_runs = -(-n // lines)
    rng = np.random.default_rng(SEED)
    bases = rng.integers(0, device.capacity_bytes // run, size=n_runs, dtype=np.int64) * run
    i = np.arange(n, dtype=np.int64)
    address = bases[i // lines] + (i % lines) * burst
    return RequestTrace.from_arrays(address, is_write=np.full(n, write))


def calibrate_class(
    device: DRAMDevice, *, config: ControllerConfig, write: bool, run_bytes: int
) -> ClassCalibration:
    """Run the controller on one class's window and unloaded sample (memoised)."""
    key = (device.model_dump_json(), config.model_dump_json(), bool(write), run_bytes)
    return memo("dram_calibration", key, lambda: _calibrate(*key))


def _calibrate(device_json: str, config_json: str, write: bool, run_bytes: int) -> ClassCalibration:
    device = DRAMDevice.model_validate_json(device_json)
    config = ControllerConfig.model_validate_json(config_json)
    n = window_requests(device)
    st = simulate_requests(
        device, class_trace(device, n, run_bytes=run_bytes, write=write), config=config, check=False
    )
    sample = class_trace(device, LATENCY_REQUESTS, run_bytes=run_bytes, write=False)
    tm = device.timing
    gap = tm.nRC + tm.nRCD + tm.nCL + tm.nBL  # longer than a row conflict's service
    spaced = RequestTrace.from_arrays(
        sample.address, arrival_cycle=np.arange(len(sample), dtype=np.int64) * gap
    )
    lat = simulate_requests(device, spaced, config=config, check=False)
    return ClassCalibration(
        write=write,
        run_bytes=run_bytes,
        requests=n,
        bandwidth_fraction=min(1.0, st.peak_fraction),
        read_latency_s=lat.avg_read_latency_ns * 1e-9,
        row_hit_rate=st.row_hit_rate,
    )


# ---- one tier -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TierCalibration:
    """A request-fidelity tier's classes, their measurements and byte shares."""

    tier: str
    device: DRAMDevice
    count: int
    peak_bandwidth_bytes_per_s: float
    config: ControllerConfig
    classes: Mapping[str, ClassCalibration]
    class_bytes: Mapping[str, float]

    @property
    def bandwidth_fraction(self) -> float:
        """Effective fraction over the tier's traffic: bytes / sum(bytes / fraction)
        (the stream-read fraction when the tier carries no op traffic)."""
        total = sum(self.class_bytes.values())
        if total <= 0:
            return self.stream(write=False).bandwidth_fraction
        time = sum(b / self.classes[c].bandwidth_fraction for c, b in self.class_bytes.items())
        return total / time

    @property
    def latency_s(self) -> float:
        """Bytes-weighted mean read latency of the tier's classes."""
        total = sum(self.class_bytes.values())
        if total <= 0:
            return self.stream(write=False).read_latency_s
        return sum(b * self.classes[c].read_latency_s for c, b in self.class_bytes.items()) / total

    @property
    def max_fraction(self) -> float:
        """The highest fraction of any class used (an upper bound on the tier's speed)."""
        used = [self.classes[c].bandwidth_fraction for c in self.class_bytes]
        used += [self.stream(write=w).bandwidth_fraction for w in (False, True)]
        return max(used)

    def stream(self, *, write: bool) -> ClassCalibration:
        """A long sequential stream (DMA copies of whole tensors)."""
        return calibrate_class(
            self.device,
            config=self.config,
            write=write,
            run_bytes=window_requests(self.device) * self.device.organization.access_bytes,
        )

    def seconds_per_byte(self, *, write: bool) -> float:
        """Tier seconds per byte of a bulk stream (DMA)."""
        return 1.0 / (self.peak_bandwidth_bytes_per_s * self.stream(write=write).bandwidth_fraction)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``SimResult.meta['tier_fidelity']``."""
        return {
            "fidelity": "request",
            "device": self.device.name,
            "count": self.count,
            "data_rate_mtps": self.device.data_rate_mtps,
            "peak_bandwidth_bytes_per_s": self.peak_bandwidth_bytes_per_s,
            "bandwidth_fraction": self.bandwidth_fraction,
            "latency_s": self.latency_s,
            "controller": self.config.model_dump(),
            "classes": {
                name: {**cal.to_dict(), "bytes": self.class_bytes.get(name, 0.0)}
                for name, cal in self.classes.items()
            },
        }


def bandwidth_tier_info(spec: MemoryTier) -> dict[str, Any]:
    """``SimResult.meta['tier_fidelity']`` entry of a bandwidth-fidelity tier."""
    return {
        "fidelity": "bandwidth",
        "bandwidth_fraction": spec.achievable_bandwidth_fraction,
        "latency_s": spec.latency_s,
    }


def tier_device(spec: MemoryTier, *, tier: str) -> tuple[DRAMDevice, int]:
    """One device of ``spec``'s DRAM attachment at its data rate, and the count."""
    if spec.dram is None:
        raise SpecError(
            [Problem(f"tiers.{tier}.fidelity", "`request` needs a `dram` attachment to simulate")]
        )
    key = (spec.dram.device, spec.dram.data_rate_mtps)
    return memo("dram_device", key, lambda: _device(*key)), spec.dram.count


def _device(name: str, data_rate_mtps: float | None) -> DRAMDevice:
    return scaled_device(load_dram_device(name), data_rate_mtps)


@dataclass(frozen=True, slots=True, kw_only=True)
class TierDemand:
    """A request tier's per-op demand (seconds, before host sharing) and DRAM latency."""

    calibration: TierCalibration
    demand: FloatArray  # (n_ops,) seconds of the tier per op
    latency: FloatArray  # (n_ops,) DRAM read latency per op (0 where untouched)


def _class_codes(cg: CompiledGraph, sel: IntArray) -> tuple[IntArray, FloatArray]:
    """Class code and contiguous run (bytes) of the accesses ``sel``."""
    kinds = np.array(
        [0 if k in _WEIGHT_KINDS else 1 if k == "kv" else 2 for k in cg.t_kind], dtype=np.int64
    )
    group = kinds[cg.acc_tensor[sel]] if kinds.size else np.zeros(0, dtype=np.int64)
    write = cg.acc_write[sel]
    decode_code = cg.phase_names.index("decode") if "decode" in cg.phase_names else -1
    decode = cg.phase[cg.acc_op[sel]] == decode_code
    logical = np.maximum(cg.acc_bytes[sel], 1.0)
    code = np.where(
        group == 0,
        write.astype(np.int64),
        np.where(group == 1, np.where(write, np.where(decode, 4, 3), 2), 5 + write),
    )
    run = np.where(
        code == 4,
        np.minimum(logical, KV_TOKEN_BYTES),
        np.where(group == 1, np.minimum(logical, KV_PAGE_BYTES), logical),
    )
    return code.astype(np.int64), run


@dataclass(frozen=True, slots=True, kw_only=True)
class _Classified:
    """A tier's accesses by class: bytes per (class, op), totals and mean log2 runs."""

    codes: tuple[int, ...]  # classes present
    per_op: FloatArray  # (len(codes), n_ops) bytes
    total: FloatArray  # (len(codes),) bytes
    mean_log_run: FloatArray  # (len(codes),) bytes-weighted mean of log2(run)


def _classify(
    cg: CompiledGraph, acc_tier: IntArray, moved: FloatArray, tier_index: int
) -> _Classified:
    n = cg.n_ops
    sel = np.flatnonzero(acc_tier == tier_index)
    code, run = _class_codes(cg, sel)
    b = moved[sel]
    n_c = len(CLASSES)
    per_class = np.asarray(np.bincount(code, weights=b, minlength=n_c), dtype=np.float64)
    log_run = np.bincount(code, weights=b * np.log2(run), minlength=n_c)
    present = np.flatnonzero(per_class > 0)
    slot = code * n + cg.acc_op[sel]
    per_op = np.asarray(np.bincount(slot, weights=b, minlength=n_c * n), dtype=np.float64)
    per_op = per_op.reshape(n_c, n)
    return _Classified(
        codes=tuple(present.tolist()),
        per_op=per_op[present],
        total=per_class[present],
        mean_log_run=log_run[present] / per_class[present],
    )


def tier_demand(
    tier: str,
    spec: MemoryTier,
    cg: CompiledGraph,
    *,
    acc_tier: IntArray,
    moved: FloatArray,
    tier_index: int,
    config: ControllerConfig,
) -> TierDemand:
    """Classify the accesses that hit ``tier`` (``acc_tier == tier_index``; ``moved``
    bytes each), calibrate each class, and return the per-op demand
    ``sum_c bytes_c / (peak x fraction_c)`` and latency ``max_c latency_c``."""
    device, count = tier_device(spec, tier=tier)
    config = device_config(config, device)
    peak = count * device.peak_bandwidth_bytes_per_s
    # the layout arrays are memoised per graph and placement (memsim.plan): a sweep over
    # hardware points classifies a graph's accesses once per active SimCache
    cls = memo(
        "classified",
        (id(acc_tier), id(moved), id(cg), tier_index),
        lambda: _classify(cg, acc_tier, moved, tier_index),
        pin=(acc_tier, moved, cg),
    )
    burst = device.organization.access_bytes
    window = window_requests(device) * burst
    demand = np.zeros(cg.n_ops)
    latency = np.zeros(cg.n_ops)
    classes: dict[str, ClassCalibration] = {}
    shares: dict[str, float] = {}
    for i, c in enumerate(cls.codes):
        name, write = CLASSES[c]
        run_c = int(min(window, max(burst, 2 ** round(float(cls.mean_log_run[i])))))
        cal = calibrate_class(device, config=config, write=write, run_bytes=run_c)
        classes[name] = cal
        shares[name] = float(cls.total[i])
        row = cls.per_op[i]
        demand += row * (1.0 / (peak * cal.bandwidth_fraction))
        np.maximum(latency, np.where(row > 0, cal.read_latency_s, 0.0), out=latency)
    calibration = TierCalibration(
        tier=tier,
        device=device,
        count=count,
        peak_bandwidth_bytes_per_s=peak,
        config=config,
        classes=classes,
        class_bytes=shares,
    )
    return TierDemand(calibration=calibration, demand=demand, latency=latency)


def calibrate_tier(tier: str, spec: MemoryTier, *, config: ControllerConfig) -> TierCalibration:
    """A tier's calibration with no op traffic (its DMA streams only)."""
    device, count = tier_device(spec, tier=tier)
    return TierCalibration(
        tier=tier,
        device=device,
        count=count,
        peak_bandwidth_bytes_per_s=count * device.peak_bandwidth_bytes_per_s,
        config=device_config(config, device),
        classes={},
        class_bytes={},
    )
