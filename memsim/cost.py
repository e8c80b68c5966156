"""Pure cost functions shared by both fidelities (analytic and event-driven).

Every function here is a pure function of hardware specs and op shapes; the
analytic path sums their results with overlap rules, the event engine schedules
them under contention. Array versions (``*_array``) take numpy arrays and are
what the simulator uses; the scalar versions call them, so both agree exactly.

Formulas (see docs/engine.md for the derivations and sources):

* GEMM time = flops / (peak(dtype) x u_pad x u_wave), where
  ``u_pad = M N / (ceil(M/r) r x ceil(N/c) c)`` (padding of the output to the
  ``r x c`` array tile) and ``u_wave = tiles / (ceil(tiles/count) x count)``
  (the last wave of tiles over ``count`` units is partly empty).
* Non-GEMM time = flops / vector_flops_per_s (matrix peak if not given).
* Tiled GEMM traffic (output-stationary, buffer holds the output tile):
  ``e (M K ceil(N/Tn) + K N ceil(M/Tm) + M N)`` with ``Tm = min(M, floor(sqrt(B/e)))``,
  ``Tn = min(N, floor(B/(e Tm)))``; equals the compulsory ``e (MK + KN + MN)``
  when the output fits.
* Per-kernel cost of a dataflow unit (serial with the kernel's work, once per kernel
  call): ``launch + pipeline fill/drain + barrier (+ cross-socket sync when the graph
  spans more than one socket) + kernel_launch_overhead_s``
  (:func:`dataflow_kernel_seconds`).
* Transfer time = latency + ceil(bytes/g) g / (bandwidth x achievable fraction).
* Collectives of ``B`` bytes per device among ``p`` devices over a device-to-device
  link of per-direction bandwidth ``bw`` and per-step latency ``a``: time
  ``sent / bw + steps x a`` (:func:`collective_cost_array`). All-reduce:
  ring ``sent = 2 (p-1)/p B``, ``steps = 2 (p-1)``; one-shot ``(p-1) B``, 1 step;
  two-shot ``2 (p-1)/p B``, 2 steps; ``auto`` = the cheapest per message.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models import DTYPE_BYTES, ComputeUnit, Link, MemoryTier, System
from hw_models.efficiency import GemmShapeTable
from hw_models.engine_profile import MEMORY_BOUND_KINDS, EngineProfile, KernelGroup
from hw_models.errors import Problem, SpecError
from memsim.compiled import FUSABLE_GEMM_FAMILIES
from workloads.graph import GemmShape

FloatArray = npt.NDArray[np.float64]

MATRIX_OP_KINDS: frozenset[str] = frozenset({"gemm", "attention"})


def elem_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (int4 = 0.5); :class:`SpecError` if unknown."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        known = ", ".join(DTYPE_BYTES)
        raise SpecError([Problem("dtype", f"unknown dtype {dtype!r} (known: {known})")]) from None


def unit_peak(unit: ComputeUnit, dtype: str, *, unit_name: str = "compute") -> float:
    """Dense peak FLOP/s of ``unit`` for ``dtype``; :class:`SpecError` if unsupported."""
    try:
        return unit.peak(dtype)
    except KeyError:
        raise SpecError(
            [
                Problem(
                    f"compute.{unit_name}.peak_flops_per_s",
                    f"no throughput for {dtype} (has {', '.join(unit.peak_flops_per_s)})",
                )
            ]
        ) from None


def gemm_utilization_array(
    unit: ComputeUnit, m: FloatArray, n: FloatArray, batch: FloatArray
) -> FloatArray:
    """Fraction of peak a GEMM of output ``m x n`` (x ``batch``) reaches on ``unit``.

    Padding to the ``array_rows x array_cols`` tile times wave quantisation of
    the tiles over ``unit.count`` units. Units without array dimensions: 1.
    """
    m = np.maximum(np.asarray(m, dtype=np.float64), 1.0)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    batch = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
    if unit.array_rows is None or unit.array_cols is None:
        return np.ones_like(m)
    r, c = float(unit.array_rows), float(unit.array_cols)
    tm, tn = np.ceil(m / r), np.ceil(n / c)
    u_pad = (m * n) / (tm * r * tn * c)
    tiles = tm * tn * batch
    waves = np.ceil(tiles / unit.count)
    u_wave = tiles / (waves * unit.count)
    return np.asarray(u_pad * u_wave, dtype=np.float64)


def gemm_time(unit: ComputeUnit, shape: GemmShape, dtype: str) -> float:
    """Seconds for one GEMM (``shape``, ``dtype``) on ``unit`` at its utilisation."""
    util = gemm_utilization_array(
        unit, np.array([shape.m]), np.array([shape.n]), np.array([shape.batch])
    )[0]
    return shape.flops / (unit_peak(unit, dtype) * float(util))


def vector_rate(unit: ComputeUnit, dtype: str) -> float:
    """FLOP/s for non-matrix work: ``vector_flops_per_s``, else the matrix peak."""
    if unit.vector_flops_per_s is not None:
        return float(unit.vector_flops_per_s)
    return unit_peak(unit, dtype)


def vector_time(unit: ComputeUnit, flops: float, dtype: str = "bf16") -> float:
    """Seconds for ``flops`` of non-matrix work (norms, softmax, elementwise) on ``unit``."""
    return flops / vector_rate(unit, dtype)


def dataflow_kernel_terms(unit: ComputeUnit, *, sockets: int) -> dict[str, float]:
    """The seconds one kernel call costs a dataflow ``unit``, term by term.

    ``launch``, ``pipeline_fill_drain`` and ``barrier`` from ``unit.kernel_cost``,
    ``cross_socket_sync`` when the graph is sharded over ``sockets > 1``, and
    ``kernel_launch_overhead_s`` (a lump per-kernel cost without a breakdown). All
    zero for a unit that gives none. The PCUs idle through each term, so they add.
    """
    kc = unit.kernel_cost
    terms = {
        "launch": kc.launch.seconds if kc else 0.0,
        "pipeline_fill_drain": kc.pipeline_fill_drain.seconds if kc else 0.0,
        "barrier": kc.barrier.seconds if kc else 0.0,
        "cross_socket_sync": kc.cross_socket_sync.seconds if kc and sockets > 1 else 0.0,
        "kernel_launch_overhead": float(unit.kernel_launch_overhead_s),
    }
    return {k: float(v) for k, v in terms.items()}


def dataflow_kernel_seconds(unit: ComputeUnit, *, sockets: int) -> float:
    """Seconds one kernel call of a dataflow ``unit`` costs besides its work.

    The sum of :func:`dataflow_kernel_terms`: paid per op kernel by kernel and once per
    fused group in dataflow execution (``memsim/plan.py`` adds it to the kernel's
    latency, which a fused group takes once).
    """
    return math.fsum(dataflow_kernel_terms(unit, sockets=sockets).values())


def tiled_gemm_traffic_array(
    m: FloatArray, n: FloatArray, k: FloatArray, elem: FloatArray, buffer_bytes: float
) -> FloatArray:
    """Off-chip bytes of output-stationary tiled GEMMs (vectorised; see module doc)."""
    m = np.maximum(np.asarray(m, dtype=np.float64), 1.0)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    k = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    elem = np.asarray(elem, dtype=np.float64)
    if not math.isfinite(buffer_bytes):
        return np.asarray(elem * (m * k + k * n + m * n), dtype=np.float64)
    cap = np.maximum(np.floor(buffer_bytes / elem), 1.0)
    t_m = np.minimum(m, np.maximum(np.floor(np.sqrt(cap)), 1.0))
    t_n = np.minimum(n, np.maximum(np.floor(cap / t_m), 1.0))
    reads = m * k * np.ceil(n / t_n) + k * n * np.ceil(m / t_m)
    return np.asarray(elem * (reads + m * n), dtype=np.float64)


def tiled_gemm_traffic(shape: GemmShape, elem_bytes: float, buffer_bytes: float) -> float:
    """Off-chip bytes of one GEMM (x ``shape.batch``) tiled to fit ``buffer_bytes``.

    Never below the compulsory ``elem (MK + KN + MN)``; equal to it when the
    whole output fits in the buffer.
    """
    one = tiled_gemm_traffic_array(
        np.array([shape.m]),
        np.array([shape.n]),
        np.array([shape.k]),
        np.array([elem_bytes]),
        buffer_bytes,
    )[0]
    return float(one) * shape.batch


def round_to_granularity(nbytes: float, granularity: float) -> float:
    """``nbytes`` rounded up to whole accesses of ``granularity`` bytes."""
    if nbytes <= 0:
        return 0.0
    return math.ceil(nbytes / granularity - 1e-9) * granularity


def transfer_time(
    nbytes: float, *, bandwidth: float, latency: float = 0.0, granularity: float = 1.0
) -> float:
    """Seconds to move ``nbytes`` at ``bandwidth`` (already achievable), after ``latency``.

    Bytes are rounded up to whole accesses of ``granularity`` (DRAM bursts,
    flash pages).
    """
    if nbytes <= 0:
        return 0.0
    return latency + round_to_granularity(nbytes, granularity) / bandwidth


def tier_read_time(tier: MemoryTier, nbytes: float) -> float:
    """Seconds to read ``nbytes`` from ``tier`` at its achievable bandwidth (no latency)."""
    return transfer_time(
        nbytes,
        bandwidth=tier.effective_read_bandwidth_bytes_per_s,
        granularity=tier.access_granularity_bytes,
    )


def tier_write_time(tier: MemoryTier, nbytes: float) -> float:
    """Seconds to write ``nbytes`` to ``tier`` at its achievable bandwidth (no latency)."""
    return transfer_time(
        nbytes,
        bandwidth=tier.effective_write_bandwidth_bytes_per_s,
        granularity=tier.access_granularity_bytes,
    )


def link_time(link: Link, nbytes: float) -> float:
    """Seconds to carry ``nbytes`` one way over ``link`` (achievable bandwidth, no latency)."""
    return transfer_time(nbytes, bandwidth=link.effective_bandwidth_bytes_per_s)


def ring_all_reduce_time(nbytes: float, *, group: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce of ``nbytes`` per device among ``group`` devices.

    ``2 (p-1)/p x bytes / bandwidth + 2 (p-1) x latency`` (reduce-scatter then
    all-gather, each ``p-1`` steps of ``bytes/p``; Patarasuk & Yuan 2009).
    """
    if group <= 1 or nbytes <= 0:
        return 0.0
    p = float(group)
    return 2.0 * (p - 1.0) / p * nbytes / bandwidth + 2.0 * (p - 1.0) * latency


COLLECTIVE_ALGORITHMS: tuple[str, ...] = ("ring", "one_shot", "two_shot", "auto")


def _collective_terms(kind: str, group: int, algorithm: str) -> tuple[float, int]:
    """(bytes sent per payload byte, latency steps) of one algorithm (not ``auto``)."""
    p = float(group)
    frac = (p - 1.0) / p
    if kind == "send_recv":
        return 1.0, 1
    if algorithm == "ring":
        return collective_link_bytes(kind, 1.0, group), collective_steps(kind, group)
    if kind == "all_reduce":
        if algorithm == "one_shot":
            return p - 1.0, 1
        return 2.0 * frac, 2  # two_shot
    # all_gather / reduce_scatter / all_to_all through a switch: every device writes
    # each peer's share directly, all at once: the ring's bytes in one step
    return frac, 1


def collective_cost_array(
    kind: str,
    nbytes: FloatArray,
    *,
    group: int,
    algorithm: str,
    bandwidth: float,
    latency: float,
) -> tuple[FloatArray, FloatArray, list[str]]:
    """Bytes each device sends and latency seconds of collectives of ``nbytes`` each.

    ``nbytes`` is the payload per device, ``group`` the devices, ``bandwidth`` the
    achievable per-direction bandwidth each device injects into the fabric and
    ``latency`` the one-way latency of one step. Time = ``sent / bandwidth + latency``.
    Per algorithm (``p = group``, ``B = nbytes``):

    * ``ring``: all-reduce = reduce-scatter + all-gather around a ring, ``2 (p-1)``
      steps of ``B/p``: ``sent = 2 (p-1)/p B``, ``2 (p-1)`` latencies (Patarasuk &
      Yuan, JPDC 2009; NCCL's ring). Other kinds ``(p-1)/p B`` in ``p-1`` steps.
    * ``one_shot``: each device pushes its whole buffer to every peer (or reads the
      peers' buffers) and reduces locally: ``sent = (p-1) B``, one latency.
    * ``two_shot``: reduce-scatter by direct exchange (the ``B/p`` shard of each peer
      goes straight to it), local reduce, then all-gather by direct exchange:
      ``sent = 2 (p-1)/p B`` (bandwidth-optimal), two latencies.
      One-/two-shot are TensorRT-LLM's custom all-reduce kernels for NVSwitch / fully
      connected systems (``AllReduceStrategy.ONESHOT/TWOSHOT``, chosen by size);
      they need every pair of devices to be one hop apart.
    * ``auto``: per message, the cheapest of the three (NCCL and TensorRT-LLM pick
      the algorithm by message size with a tuned cost model).

    All-gather / reduce-scatter / all-to-all with a direct algorithm send the ring's
    ``(p-1)/p B`` in one step; ``send_recv`` is ``B`` in one step for every algorithm.
    Returns ``(sent bytes, latency seconds, algorithm chosen)`` per message.
    """
    nb = np.asarray(nbytes, dtype=np.float64)
    if algorithm not in COLLECTIVE_ALGORITHMS:
        known = ", ".join(COLLECTIVE_ALGORITHMS)
        raise SpecError(
            [Problem("collective_algorithm", f"unknown algorithm {algorithm!r} (known: {known})")]
        )
    if group <= 1:
        return np.zeros_like(nb), np.zeros_like(nb), ["none"] * nb.size
    names = [a for a in COLLECTIVE_ALGORITHMS[:-1] if algorithm in (a, "auto")]
    if len(names) == 1:
        per_byte, steps = _collective_terms(kind, group, names[0])
        return per_byte * nb, np.full(nb.size, steps * latency), names * nb.size
    sent = np.zeros((len(names), nb.size))
    lat = np.zeros((len(names), nb.size))
    for i, a in enumerate(names):
        per_byte, steps = _collective_terms(kind, group, a)
        sent[i] = per_byte * nb
        lat[i] = steps * latency
    best = np.argmin(sent / bandwidth + lat, axis=0)  # first = ring on ties
    cols = np.arange(nb.size)
    chosen = np.asarray(names, dtype=object)[best].tolist()
    return (
        np.asarray(sent[best, cols], dtype=np.float64),
        np.asarray(lat[best, cols], dtype=np.float64),
        chosen,
    )


def collective_time(
    kind: str, nbytes: float, *, group: int, algorithm: str, bandwidth: float, latency: float
) -> float:
    """Seconds of one collective of ``nbytes`` per device (see :func:`collective_cost_array`)."""
    if nbytes <= 0:
        return 0.0
    sent, lat, _ = collective_cost_array(
        kind,
        np.array([float(nbytes)]),
        group=group,
        algorithm=algorithm,
        bandwidth=bandwidth,
        latency=latency,
    )
    return float(sent[0] / bandwidth + lat[0])


def collective_link_bytes(kind: str, nbytes: float, group: int) -> float:
    """Bytes each device sends over its link for one collective (ring algorithms).

    all_reduce: ``2 (p-1)/p x bytes``; all_gather / reduce_scatter / all_to_all:
    ``(p-1)/p x bytes``; send_recv: ``bytes``.
    """
    if group <= 1:
        return 0.0
    frac = (group - 1) / group
    if kind == "all_reduce":
        return 2.0 * frac * nbytes
    if kind == "send_recv":
        return float(nbytes)
    return frac * nbytes


def collective_steps(kind: str, group: int) -> int:
    """Latency-bound steps of a ring collective: ``2 (p-1)`` for all-reduce, else ``p-1``."""
    if group <= 1:
        return 0
    if kind == "all_reduce":
        return 2 * (group - 1)
    if kind == "send_recv":
        return 1
    return group - 1


def tier_energy(tier: MemoryTier, *, read_bytes: float, written_bytes: float) -> float:
    """Joules to read and write the given bytes of ``tier``."""
    return read_bytes * tier.read_energy_j_per_byte + written_bytes * tier.write_energy


def compute_energy(unit: ComputeUnit, flops: float, dtype: str = "bf16") -> float:
    """Joules for ``flops`` in ``dtype`` on ``unit`` (:meth:`ComputeUnit.energy_per_flop`)."""
    return flops * unit.energy_per_flop(dtype)


# ---- calibrated efficiency models (hw_models/efficiency.py; docs/calibration.md) ----------
#
# Every function below takes the parameter values ``p`` (``Efficiency.values()``: name ->
# value) and returns *device* seconds of real kernels. They never beat the roofline: every
# efficiency is <= 1 and fixed costs only add. The same functions price the graph in
# ``memsim.plan`` and predict the microbenchmarks in ``memsim.calibration`` (one model).


def smooth_max_array(a: FloatArray, b: FloatArray, sharpness: float) -> FloatArray:
    """``(a^p + b^p)^(1/p)``: a smooth ``max(a, b)`` (never below it; ``p -> inf`` is max).

    Real kernels near the ridge point are slower than either bound alone (neither the
    memory nor the math pipe is saturated while the other drains); ``p`` is fitted.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    hi = np.maximum(a, b)
    safe = np.where(hi > 0, hi, 1.0)
    out = safe * ((a / safe) ** sharpness + (b / safe) ** sharpness) ** (1.0 / sharpness)
    return np.asarray(np.where(hi > 0, out, 0.0), dtype=np.float64)


def wave_utilization_array(
    p: Mapping[str, float], m: FloatArray, n: FloatArray, batch: FloatArray, sms: int
) -> FloatArray:
    """Soft wave quantisation of ``tile_m x tile_n`` CTA tiles over ``sms`` multiprocessors.

    ``u = 1 - w (1 - tiles / (ceil(tiles / sms) sms))``: ``w = gemm.wave_weight`` (cuBLAS
    softens the last-wave loss with split-K / stream-K, so the hard loss is weighted).
    """
    tm, tn = p["gemm.tile_m"], p["gemm.tile_n"]
    tiles = np.ceil(np.maximum(m, 1.0) / tm) * np.ceil(np.maximum(n, 1.0) / tn)
    tiles = tiles * np.maximum(batch, 1.0)
    hard = tiles / (np.ceil(tiles / sms) * sms)
    return np.asarray(1.0 - p["gemm.wave_weight"] * (1.0 - hard), dtype=np.float64)


def calibrated_gemm_time_array(
    p: Mapping[str, float],
    *,
    m: FloatArray,
    n: FloatArray,
    k: FloatArray,
    batch: FloatArray,
    elem: FloatArray | float,
    peak: FloatArray | float,
    mem_bw: float,
    sms: int,
    fp8: npt.NDArray[np.bool_] | None = None,
    nbytes: FloatArray | None = None,
) -> FloatArray:
    """Device seconds of GEMMs ``(batch x) m x n x k``: fixed cost + smooth roofline.

    ``t = gemm.fixed_s + smooth_max(2mnk / (peak eff u_wave), bytes /
    (mem_bw gemm.bandwidth_fraction); gemm.sharpness)``, ``eff`` =
    ``gemm.fp8_efficiency`` for 8-bit and narrower GEMMs, else ``gemm.efficiency``;
    ``bytes`` = ``nbytes`` (what the op really moves, e.g. int4 weights) or
    ``e (mk + nk + mn)``.
    """
    m = np.maximum(np.asarray(m, dtype=np.float64), 1.0)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    k = np.maximum(np.asarray(k, dtype=np.float64), 1.0)
    batch = np.maximum(np.asarray(batch, dtype=np.float64), 1.0)
    eff: FloatArray | float = p["gemm.efficiency"]
    if fp8 is not None:
        eff = np.where(fp8, p["gemm.fp8_efficiency"], eff)
    u = wave_utilization_array(p, m, n, batch, sms)
    t_math = 2.0 * m * n * k * batch / (np.asarray(peak) * eff * u)
    if nbytes is None:
        t_mem = np.asarray(elem) * (m * k + n * k + m * n) * batch
    else:
        t_mem = np.asarray(nbytes, dtype=np.float64)
    t_mem = t_mem / (mem_bw * p["gemm.bandwidth_fraction"])
    return np.asarray(
        p["gemm.fixed_s"] + smooth_max_array(t_math, t_mem, p["gemm.sharpness"]),
        dtype=np.float64,
    )


def gemm_shape_ratio_array(
    shapes: Sequence[GemmShapeTable], dtype: str, *, m: FloatArray, n: FloatArray, k: FloatArray
) -> FloatArray:
    """Measured/model ratio of each GEMM from the shape tables (1 where none applies).

    Interpolated linearly in ``log m`` between the measured ``m``, held at the end
    values outside them (:class:`hw_models.efficiency.GemmShapeTable`).
    """
    out = np.ones(np.shape(m))
    if not shapes or not out.size:
        return out
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    for tab in shapes:
        if tab.dtype != dtype:
            continue
        sel = (n == tab.n) & (k == tab.k)
        if sel.any():
            lm = np.log(np.maximum(m[sel], 1.0))
            out[sel] = np.exp(np.interp(lm, np.log(tab.m), np.log(tab.ratio)))
    return out


def _corrected_gemm(
    t: FloatArray,
    shapes: Sequence[GemmShapeTable],
    dtype: str,
    *,
    m: FloatArray,
    n: FloatArray,
    k: FloatArray,
    batch: FloatArray,
    nbytes: FloatArray,
    peak: float,
    mem_bw: float,
) -> FloatArray:
    """``t`` times the shape tables' ratio (single GEMMs only), never below the roofline."""
    if not shapes:
        return t
    r = gemm_shape_ratio_array(shapes, dtype, m=m, n=n, k=k)
    r = np.where(np.asarray(batch) > 1.0, 1.0, r)
    bound = np.maximum(2.0 * m * n * k * batch / peak, np.asarray(nbytes) / mem_bw)
    return np.asarray(np.maximum(t * r, bound), dtype=np.float64)


def calibrated_prefill_attention_time_array(
    p: Mapping[str, float], *, flops: FloatArray, kv_len: FloatArray, peak: float
) -> FloatArray:
    """Device seconds of fused (flash) attention with many queries.

    ``t = attention.fixed_s + flops / (peak eff L / (L + L_half))``: per query tile the
    kernel's pipeline start-up is amortised over the ``L`` keys it streams.
    """
    kv = np.maximum(np.asarray(kv_len, dtype=np.float64), 1.0)
    half = p["attention.prefill_half_tokens"]
    unknown = np.isinf(kv)
    if unknown.any():  # no roll-off (and no inf / inf)
        kv = np.where(unknown, 1.0, kv)
        roll = np.where(unknown, 1.0, kv / (kv + half))
    else:
        roll = kv / (kv + half)
    eff = p["attention.prefill_efficiency"] * roll
    return np.asarray(p["attention.fixed_s"] + np.asarray(flops) / (peak * eff), np.float64)


def calibrated_decode_attention_time_array(
    p: Mapping[str, float], *, nbytes: FloatArray, mem_bw: float
) -> FloatArray:
    """Device seconds of decode attention (one query per sequence): reads K and V once.

    ``t = attention.decode_fixed_s + bytes / (mem_bw attention.decode_bandwidth_fraction)``.
    """
    bw = mem_bw * p["attention.decode_bandwidth_fraction"]
    return np.asarray(p["attention.decode_fixed_s"] + np.asarray(nbytes) / bw, dtype=np.float64)


#: memory-bound kernel class -> (bandwidth-fraction parameter, fixed-cost parameter)
KERNEL_CLASSES: dict[str, tuple[str, str]] = {
    "elementwise": ("elementwise.bandwidth_fraction", "kernel.graph_s"),
    "norm": ("norm.bandwidth_fraction", "kernel.graph_s"),
    "activation": ("activation.bandwidth_fraction", "kernel.graph_s"),
    "strided": ("strided.bandwidth_fraction", "strided.graph_s"),
    "copy": ("memory.copy_bandwidth_fraction", "memory.copy_fixed_s"),
    "read": ("memory.read_bandwidth_fraction", "memory.read_fixed_s"),
}

#: kernel class -> eager host time per kernel parameter
EAGER_HOST: dict[str, str] = {
    "elementwise": "eager.elementwise_s",
    "norm": "eager.norm_s",
    "activation": "eager.activation_s",
    "strided": "eager.elementwise_s",
    "copy": "eager.copy_s",
    "read": "eager.read_s",
    "attention": "eager.attention_s",
    "decode_attention": "eager.decode_attention_s",
    "gemm": "kernel.eager_s",
    "fp8_gemm": "eager.fp8_gemm_s",
}


def memory_bound_time_array(
    p: Mapping[str, float],
    kernel_class: str,
    *,
    traffic: FloatArray,
    kernels: FloatArray,
    mem_bw: float,
) -> FloatArray:
    """Device seconds of memory-bound kernels: fixed costs **add** to the streaming time.

    ``t = kernels x fixed + traffic / (mem_bw x fraction)`` with the class's
    parameters (:data:`KERNEL_CLASSES`): the effective bandwidth grows with size.
    """
    frac_name, fixed_name = KERNEL_CLASSES[kernel_class]
    return np.asarray(
        np.asarray(kernels) * p[fixed_name] + np.asarray(traffic) / (mem_bw * p[frac_name]),
        dtype=np.float64,
    )


def eager_time_array(
    p: Mapping[str, float], kernel_class: str, *, kernels: FloatArray, device: FloatArray
) -> FloatArray:
    """Seconds of back-to-back eager calls: the host launches while the device runs.

    ``max(kernels x host time per kernel, device time)`` (host and device overlap; the
    slower one sets the rate).
    """
    host = np.asarray(kernels, dtype=np.float64) * p[EAGER_HOST[kernel_class]]
    return np.asarray(np.maximum(host, np.asarray(device)), dtype=np.float64)


def eager_pipeline_durations(
    host: FloatArray, device: FloatArray, starts: npt.NDArray[np.int64]
) -> FloatArray:
    """Per-kernel durations when a host launches kernels into one stream ahead of the device.

    The host spends ``host[i]`` seconds launching kernel ``i`` and goes straight on to the
    next; the device starts kernel ``i`` once it is launched and kernel ``i - 1`` is
    done, and runs it for ``device[i]`` seconds (a two-stage flow line). With
    ``H`` and ``D`` the running sums from a segment's start, kernel ``i`` ends at
    ``E_i = D_i + max_{k <= i} (H_k - D_{k-1})``; its duration is ``E_i - E_{i-1}``
    (never below ``device[i]``). A long kernel lets the host run ahead, so a run of
    short kernels after it costs its device time, not its launch time. Each segment
    (``starts``: first index of each; the host waits for the device between them, as
    a decode step waits for its token) starts with both idle.
    """
    h = np.asarray(host, dtype=np.float64)
    d = np.asarray(device, dtype=np.float64)
    out = np.empty_like(d)
    bounds = [*np.asarray(starts, dtype=np.int64).tolist(), d.size]
    if not bounds or bounds[0] != 0:
        bounds = [0, *bounds]
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        big_d = np.cumsum(d[a:b])
        ends = big_d + np.maximum.accumulate(np.cumsum(h[a:b]) - (big_d - d[a:b]))
        out[a:b] = np.diff(ends, prepend=0.0)
    return out


def host_copy_time_array(
    p: Mapping[str, float], *, nbytes: FloatArray, link_bw: float, pinned: bool
) -> FloatArray:
    """Seconds of host<->device copies of ``nbytes`` over a link of ``link_bw`` (peak).

    Pinned: ``fixed + bytes / (bw x pinned fraction)``; pageable copies are staged
    through a pinned bounce buffer by the driver: ``bytes / (bw x pageable fraction)``
    after the same fixed cost.
    """
    frac = p[
        "host_link.pinned_bandwidth_fraction" if pinned else "host_link.pageable_bandwidth_fraction"
    ]
    nb = np.asarray(nbytes, dtype=np.float64)
    return np.asarray(p["host_link.pinned_fixed_s"] + nb / (link_bw * frac), dtype=np.float64)


def load_latency_array(
    p: Mapping[str, float], *, footprint: FloatArray, l2_bytes: float
) -> FloatArray:
    """Load-to-use latency of dependent loads over a ``footprint``: L2 hit if it fits."""
    fp = np.asarray(footprint, dtype=np.float64)
    return np.asarray(
        np.where(fp <= l2_bytes, p["latency.l2_s"], p["latency.memory_s"]), dtype=np.float64
    )


def device_memory_bandwidth(system: System) -> float:
    """Peak read bandwidth of the fastest device-scope memory that is not SRAM."""
    dev = [t for t in system.tiers_by_speed() if system.tiers[t].scope == "device"]
    drams = [t for t in dev if system.tiers[t].kind != "sram"] or dev
    if not drams:
        raise SpecError([Problem("tiers", "calibrated pricing needs a device memory tier")])
    return float(system.tiers[drams[0]].read_bandwidth_bytes_per_s)


def dequant_time_array(
    p: Mapping[str, float], *, weight_bytes: FloatArray, weight_elem: FloatArray, mem_bw: float
) -> FloatArray:
    """Extra seconds of weight-only quantised GEMMs: ``penalty x weight bytes / GEMM bw``.

    ``weight_elem`` is 0.5 (int4), 1 (int8) or 0 (not quantised: no extra time). The
    penalties are assumed (``dequant.*``; no microbenchmark measures them).
    """
    pen = np.where(
        weight_elem == 0.5,
        p["dequant.int4_bandwidth_penalty"],
        np.where(weight_elem == 1.0, p["dequant.int8_bandwidth_penalty"], 0.0),
    )
    bw = mem_bw * p["gemm.bandwidth_fraction"]
    return np.asarray(pen * np.asarray(weight_bytes) / bw, dtype=np.float64)


def dequant_penalty(p: Mapping[str, float], dtype: str) -> float:
    """Extra time per weight byte of weight-only ``int4``/``int8`` GEMMs (0 otherwise)."""
    if dtype == "int4":
        return p["dequant.int4_bandwidth_penalty"]
    if dtype == "int8":
        return p["dequant.int8_bandwidth_penalty"]
    return 0.0


def _fused_families(profile: EngineProfile) -> frozenset[int]:
    """Codes (``memsim.compiled.FUSABLE_GEMM_FAMILIES``) of the GEMM families fused."""
    fams = set()
    if profile.fused_qkv:
        fams.add(0)
    if profile.fused_gate_up:
        fams.add(1)
    return frozenset(fams)


def _fusion_groups(
    idx: npt.NDArray[np.int64],
    family: npt.NDArray[np.int64],
    prefix: npt.NDArray[np.int64],
    step: npt.NDArray[np.int64],
    phase: npt.NDArray[np.int64],
    families: frozenset[int],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Runs of adjacent GEMMs of one fused family in one layer and step (L3.q/k/v).

    ``family``/``prefix`` are per-op codes (``CompiledGraph.gemm_family/gemm_prefix``).
    Returns ``(members, lengths)``: the op indices of all groups of two or more, group
    after group, and each group's size.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not families or not idx.size:
        return empty, empty
    fam = family[idx]
    if len(families) < len(FUSABLE_GEMM_FAMILIES):  # keep only the fused families
        fam = np.where(fam == next(iter(families)), fam, -1)
    if not (fam >= 0).any():
        return empty, empty
    pre, st, ph = prefix[idx], step[idx], phase[idx]
    same = np.zeros(idx.size, dtype=bool)
    same[1:] = (
        (fam[1:] == fam[:-1])
        & (fam[1:] >= 0)
        & (pre[1:] == pre[:-1])
        & (st[1:] == st[:-1])
        & (ph[1:] == ph[:-1])
        & (idx[1:] == idx[:-1] + 1)
    )
    gid = np.cumsum(~same) - 1
    sizes = np.bincount(gid)
    keep = sizes[gid] > 1  # a run of two or more only forms of one family (>= 0)
    members = idx[keep]
    lens = sizes[sizes > 1]
    return members.astype(np.int64), lens.astype(np.int64)


def _shaped_gemm_time(
    p: Mapping[str, float],
    *,
    m: FloatArray,
    n: FloatArray,
    k: FloatArray,
    batch: FloatArray,
    nbytes: FloatArray,
    elem: float,
    peak: float,
    mem_bw: float,
    sms: int,
    narrow: bool,
    shapes: Sequence[GemmShapeTable],
    dtype: str,
) -> FloatArray:
    """Calibrated seconds of GEMMs of these shapes, with the measured per-shape ratios."""
    # one peak, element size and efficiency for all (scalars: the same products per GEMM)
    t = calibrated_gemm_time_array(
        p,
        m=m,
        n=n,
        k=k,
        batch=batch,
        elem=np.float64(elem),
        peak=np.float64(peak),
        mem_bw=mem_bw,
        sms=sms,
        fp8=np.full(np.asarray(m).size, True) if narrow else None,
        nbytes=nbytes,
    )
    return _corrected_gemm(
        t, shapes, dtype, m=m, n=n, k=k, batch=batch, nbytes=nbytes, peak=peak, mem_bw=mem_bw
    )


def _fused_inputs(
    prep: FusedGroups, gemm_m: FloatArray, gemm_k: FloatArray, gemm_batch: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(m, width, k, batch, bytes)`` of the fused GEMMs to price: one per distinct run."""
    first, width, fused_bytes = prep.first, prep.width, prep.fused_bytes
    if prep.distinct is not None:
        rep = prep.distinct[0]
        first, width, fused_bytes = first[rep], width[rep], fused_bytes[rep]
    return gemm_m[first], width, gemm_k[first], gemm_batch[first], fused_bytes


def _planned_gemm_time(
    p: Mapping[str, float],
    plan: PricingPlan,
    *,
    peak: float,
    mem_bw: float,
    sms: int,
    narrow: bool,
    shapes: Sequence[GemmShapeTable],
    dtype: str,
) -> FloatArray:
    """:func:`_shaped_gemm_time` of the plan's GEMMs, with its shape-only terms (the
    clamped dimensions, ``2 m n k batch``) taken from the plan: the same operations on
    the same values (:func:`calibrated_gemm_time_array` and
    :func:`wave_utilization_array`), so the same seconds bit for bit (tested)."""
    m, n, batch = plan.gemm_clamped
    nbytes = plan.gemm_bytes
    eff = p["gemm.fp8_efficiency" if narrow else "gemm.efficiency"]
    tiles = np.ceil(m / p["gemm.tile_m"]) * np.ceil(n / p["gemm.tile_n"])
    tiles = tiles * batch
    hard = tiles / (np.ceil(tiles / sms) * sms)
    u = 1.0 - p["gemm.wave_weight"] * (1.0 - hard)
    t_math = plan.gemm_work / (np.float64(peak) * eff * u)
    t_mem = nbytes / (mem_bw * p["gemm.bandwidth_fraction"])
    t = np.asarray(
        p["gemm.fixed_s"] + smooth_max_array(t_math, t_mem, p["gemm.sharpness"]), np.float64
    )
    return _corrected_gemm(
        t,
        shapes,
        dtype,
        m=plan.gemm_m,
        n=plan.gemm_n,
        k=plan.gemm_k,
        batch=plan.gemm_batch,
        nbytes=nbytes,
        peak=peak,
        mem_bw=mem_bw,
    )


@dataclass(frozen=True, slots=True)
class FusedGroups:
    """The shape-only part of pricing fused GEMM runs (:func:`fused_groups`)."""

    gid: npt.NDArray[np.int64]  # run of each member
    first: npt.NDArray[np.int64]  # first member of each run
    width: FloatArray  # summed n per run
    fused_bytes: FloatArray  # bytes of the fused GEMM (shared input read once)
    ok: npt.NDArray[np.bool_]  # per member: its run has one input (same m and k)
    share: FloatArray  # per member: its n over the run's width
    # one run per distinct fused GEMM (m, width, k, batch, bytes), and each run's index
    distinct: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None


def fused_groups(
    flat: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    gemm_m: FloatArray,
    gemm_n: FloatArray,
    gemm_k: FloatArray,
    gemm_batch: FloatArray,
    nbytes: FloatArray,
    *,
    elem: float,
) -> FusedGroups:
    """Runs of fused GEMMs: members, widths, fused bytes and each member's share."""
    gid = np.repeat(np.arange(lens.size), lens)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    first = flat[starts]
    # one input (same m and k as the group's first member), else left unfused
    odd = (gemm_m[flat] != gemm_m[first][gid]) | (gemm_k[flat] != gemm_k[first][gid])
    same = np.bincount(gid, weights=odd, minlength=lens.size) == 0
    width = np.asarray(np.bincount(gid, weights=gemm_n[flat], minlength=lens.size), np.float64)
    shared_x = gemm_m[first] * gemm_k[first] * elem * gemm_batch[first]
    member_bytes = nbytes[flat]
    fused_bytes = np.maximum(
        np.bincount(gid, weights=member_bytes, minlength=lens.size) - shared_x * (lens - 1),
        member_bytes[starts],
    )
    rows = np.stack([gemm_m[first], width, gemm_k[first], gemm_batch[first], fused_bytes])
    _, rep, inverse = np.unique(rows, axis=1, return_index=True, return_inverse=True)
    return FusedGroups(
        gid=gid,
        first=first,
        width=width,
        fused_bytes=fused_bytes,
        ok=same[gid],
        share=gemm_n[flat] / width[gid],
        distinct=(rep.astype(np.int64), inverse.reshape(-1).astype(np.int64)),
    )


@dataclass(frozen=True, slots=True)
class CalibratedSelection:
    """Which ops each calibrated cost function prices (a function of the ops' kinds and
    shapes and of the engine profile's fusions only: a sweep computes it once)."""

    gemm: npt.NDArray[np.int64]  # GEMMs with a shape
    fused: npt.NDArray[np.int64]  # members of fused runs, run after run
    fused_lens: npt.NDArray[np.int64]
    solo: npt.NDArray[np.int64]  # GEMMs priced alone
    attention: npt.NDArray[np.int64]
    memory_bound: tuple[tuple[str, npt.NDArray[np.int64]], ...]  # (kind, ops)
    fused_groups: FusedGroups | None = None  # given the shapes and bytes
    # given the shapes and bytes: one ``solo`` op per distinct (m, n, k, batch, bytes), and
    # the index of each ``solo`` op's among them
    solo_distinct: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
    quantised: npt.NDArray[np.int64] | None = None  # GEMMs with quantised weights, if known


def calibrated_selection(
    profile: EngineProfile,
    *,
    kind: npt.NDArray[np.int64],
    kind_names: Sequence[str],
    family: npt.NDArray[np.int64],
    prefix: npt.NDArray[np.int64],
    step: npt.NDArray[np.int64],
    phase: npt.NDArray[np.int64],
    gemm_m: FloatArray,
    shapes: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None,
    elem: float = 2.0,
    qweight_elem: FloatArray | None = None,
) -> CalibratedSelection:
    """The :class:`CalibratedSelection` of these ops under ``profile``.

    ``shapes``: the ops' GEMM ``(n, k, batch, bytes)``, to prepare the fused runs too
    (:func:`fused_groups`, with ``elem`` bytes per element).
    """
    n = kind.size

    def of_kind(name: str) -> npt.NDArray[np.bool_]:
        if name not in kind_names:
            return np.zeros(n, dtype=bool)
        return np.asarray(kind == kind_names.index(name), dtype=bool)

    gi = np.flatnonzero(of_kind("gemm") & (np.asarray(gemm_m) > 0))
    empty = np.zeros(0, dtype=np.int64)
    flat, lens, solo = empty, empty, gi
    if gi.size:
        flat, lens = _fusion_groups(gi, family, prefix, step, phase, _fused_families(profile))
        solo = np.setdiff1d(gi, flat, assume_unique=True) if lens.size else gi
    mem = tuple((k, np.flatnonzero(of_kind(k))) for k in MEMORY_BOUND_KINDS)
    return _with_shapes(
        CalibratedSelection(
            gemm=gi,
            fused=flat,
            fused_lens=lens,
            solo=solo,
            attention=np.flatnonzero(of_kind("attention")),
            memory_bound=tuple((k, ki) for k, ki in mem if ki.size),
            quantised=None if qweight_elem is None else gi[np.asarray(qweight_elem)[gi] != 0],
        ),
        gemm_m,
        shapes,
        elem,
    )


def _with_shapes(
    sel: CalibratedSelection,
    gemm_m: FloatArray,
    shapes: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None,
    elem: float,
) -> CalibratedSelection:
    """``sel`` with its fused runs prepared and its solo GEMMs deduplicated (given shapes)."""
    if shapes is None:
        return sel
    g_n, g_k, g_b, nb = shapes
    flat, lens, solo = sel.fused, sel.fused_lens, sel.solo
    prep = None
    distinct = None
    if lens.size:
        prep = fused_groups(flat, lens, np.asarray(gemm_m), g_n, g_k, g_b, nb, elem=elem)
    if solo.size:
        rows = np.stack([np.asarray(gemm_m)[solo], g_n[solo], g_k[solo], g_b[solo], nb[solo]])
        _, first, inverse = np.unique(rows, axis=1, return_index=True, return_inverse=True)
        distinct = (solo[first], inverse.reshape(-1).astype(np.int64))
    return dataclasses.replace(sel, fused_groups=prep, solo_distinct=distinct)


@dataclass(frozen=True, slots=True)
class DistinctOps:
    """The ops a calibrated pricing must evaluate: one per distinct set of inputs.

    Decode steps repeat the same kernels: an op's calibrated time is a function of its
    own inputs (kind, FLOPs, bytes, GEMM shape, attention lengths, quantised weights, KV
    bytes written) and, for a member of a fused GEMM run, of its run's fused GEMM and
    its share of it. ``ops`` holds one op per distinct such signature (with the whole
    run of each fused member, so runs are priced as runs); ``inverse`` maps every op to
    the position in ``ops`` of an op with the same signature, so that pricing ``ops``
    and gathering with ``inverse`` gives every op the same seconds, bit for bit, as
    pricing every op (:func:`calibrated_op_times` is elementwise per op and per run).
    """

    ops: npt.NDArray[np.int64]  # positions of the priced ops (sorted)
    inverse: npt.NDArray[np.int64]  # per op: its representative's position in ``ops``
    selection: CalibratedSelection  # of the ops ``ops`` (positions into ``ops``)


def distinct_ops(
    sel: CalibratedSelection,
    *,
    kind: npt.NDArray[np.int64],
    columns: Sequence[FloatArray],
    gemm_m: FloatArray,
    shapes: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    elem: float,
) -> DistinctOps:
    """:class:`DistinctOps` of the ops of ``sel`` (a :func:`calibrated_selection` with
    shapes); ``columns``: every per-op input of :func:`calibrated_op_times` (a function
    of the graph only)."""
    n = kind.size
    cls = np.zeros(n)  # 1: solo GEMM, 2: fused member
    cls[sel.solo] = 1.0
    run_of = np.full(n, -1, dtype=np.int64)  # the run of each fused member
    run_key = np.full(n, -1.0)  # its distinct fused GEMM
    share = np.zeros(n)
    ok = np.zeros(n)
    if sel.fused_lens.size:
        prep = sel.fused_groups
        assert prep is not None
        cls[sel.fused] = 2.0
        run_of[sel.fused] = prep.gid
        run_key[sel.fused] = prep.gid if prep.distinct is None else prep.distinct[1][prep.gid]
        share[sel.fused] = prep.share
        ok[sel.fused] = prep.ok
    rows = np.column_stack([np.asarray(kind, dtype=np.float64), cls, run_key, share, ok, *columns])
    if n:
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    else:
        first = inverse = np.zeros(0, dtype=np.int64)
    reps = first.astype(np.int64)
    runs = np.unique(run_of[reps][run_of[reps] >= 0])
    members = sel.fused[np.isin(run_of[sel.fused], runs)] if runs.size else reps[:0]
    ops = np.union1d(reps, members).astype(np.int64)
    where = np.searchsorted(ops, reps)
    inv = where[np.asarray(inverse).reshape(-1)].astype(np.int64)

    def remap(a: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        kept = a[np.isin(a, ops)]
        return np.searchsorted(ops, kept).astype(np.int64)

    flat = remap(sel.fused)
    lens = sel.fused_lens[runs] if runs.size else sel.fused_lens[:0]
    reduced = CalibratedSelection(
        gemm=remap(sel.gemm),
        fused=flat,
        fused_lens=np.asarray(lens, dtype=np.int64),
        solo=remap(sel.solo),
        attention=remap(sel.attention),
        memory_bound=tuple((k, r) for k, ki in sel.memory_bound if (r := remap(ki)).size),
        quantised=None if sel.quantised is None else remap(sel.quantised),
    )
    g_n, g_k, g_b, nb = shapes
    sub = (g_n[ops], g_k[ops], g_b[ops], nb[ops])
    return DistinctOps(
        ops=ops,
        inverse=inv,
        selection=_with_shapes(reduced, np.asarray(gemm_m)[ops], sub, elem),
    )


def calibrated_op_times(
    p: Mapping[str, float],
    profile: EngineProfile,
    *,
    kind: npt.NDArray[np.int64],
    kind_names: Sequence[str],
    family: npt.NDArray[np.int64],
    prefix: npt.NDArray[np.int64],
    step: npt.NDArray[np.int64],
    phase: npt.NDArray[np.int64],
    flops: FloatArray,
    nbytes: FloatArray,
    gemm_m: FloatArray,
    gemm_n: FloatArray,
    gemm_k: FloatArray,
    gemm_batch: FloatArray,
    q_len: FloatArray,
    kv_len: FloatArray,
    dtype: str,
    peak: float,
    mem_bw: float,
    sms: int,
    shapes: Sequence[GemmShapeTable] = (),
    qweight_bytes: FloatArray | None = None,
    qweight_elem: FloatArray | None = None,
    kv_written: FloatArray | None = None,
    selection: CalibratedSelection | None = None,
    plan: PricingPlan | None = None,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """(device seconds, eager host seconds, memory-bound?) of each op on a calibrated unit.

    ``selection``: :func:`calibrated_selection` of the same ops and profile, when the
    caller keeps it (computed here otherwise); ``plan``: :func:`pricing_plan` of that
    selection, these ops and profile, when the caller keeps it (a sweep: built once).

    GEMMs: :func:`calibrated_gemm_time_array` (GEMMs the profile fuses are priced as
    one GEMM of the summed width, its time shared by width); fused attention:
    :func:`calibrated_prefill_attention_time_array` or, with one query,
    :func:`calibrated_decode_attention_time_array`; memory-bound kinds: the
    profile's kernel groups (:func:`memory_bound_time_array`), whose traffic is a factor
    of the op's bytes or (``traffic_basis: kv_written``) of ``kv_written``, the bytes
    each op writes into KV-cache tensors (0 where not given). Other ops (collectives,
    optimizer) get 0 here and keep their analytic cost. The host seconds are the
    eager launch floor (0 under CUDA graphs). An op is memory-bound when its calibrated
    time is set by bytes (below the calibrated ridge point; decode attention; norms).
    """
    n = kind.size
    dev = np.zeros(n)
    host = np.zeros(n)
    mem = np.zeros(n, dtype=bool)
    eager = profile.launch == "eager"
    sel = selection or calibrated_selection(
        profile,
        kind=kind,
        kind_names=kind_names,
        family=family,
        prefix=prefix,
        step=step,
        phase=phase,
        gemm_m=gemm_m,
    )
    elem = elem_bytes(dtype)
    narrow = elem <= 1.0
    if sel.fused_lens.size and sel.fused_groups is None:  # prepare the fused runs
        sel = _with_shapes(sel, gemm_m, (gemm_n, gemm_k, gemm_batch, nbytes), elem)
    if plan is None:
        plan = pricing_plan(
            sel,
            profile,
            flops=flops,
            nbytes=nbytes,
            gemm_m=gemm_m,
            gemm_n=gemm_n,
            gemm_k=gemm_k,
            gemm_batch=gemm_batch,
            q_len=q_len,
            kv_len=kv_len,
            kv_written=kv_written,
        )
    gi = sel.gemm
    if gi.size:
        lens, solo = sel.fused_lens, sel.solo
        if eager:  # (0 under CUDA graphs: already)
            host[gi] = p[EAGER_HOST["fp8_gemm" if narrow else "gemm"]]
        eff = p["gemm.fp8_efficiency" if narrow else "gemm.efficiency"]
        ridge = peak * eff / (mem_bw * p["gemm.bandwidth_fraction"])
        mem[gi] = plan.gemm_flops < ridge * plan.gemm_op_bytes
        # one batch: the solo GEMMs, once per distinct (m, n, k, batch, bytes) (each op's
        # time is a function of its own row only: the decode steps repeat a few shapes),
        # then the fused runs, once per distinct fused GEMM (elementwise: the same seconds
        # as pricing either part alone)
        t = _planned_gemm_time(
            p, plan, peak=peak, mem_bw=mem_bw, sms=sms, narrow=narrow, shapes=shapes, dtype=dtype
        )
        inverse = None if sel.solo_distinct is None else sel.solo_distinct[1]
        dev[solo] = t[: plan.n_solo] if inverse is None else t[inverse]
        if lens.size:  # each fused run's time shared by width (runs of one input only)
            dev[plan.fused_ops] = t[plan.fused_run] * plan.fused_share
            if eager:
                host[plan.fused_ops] = host[plan.fused_ops] * plan.fused_share
    if gi.size and qweight_bytes is not None and qweight_elem is not None:
        # other GEMMs add 0 (no quantised weights): only the quantised ones, when known
        gq = gi if sel.quantised is None else sel.quantised
        if gq.size:
            dev[gq] += dequant_time_array(
                p, weight_bytes=qweight_bytes[gq], weight_elem=qweight_elem[gq], mem_bw=mem_bw
            )
    ai = sel.attention
    if ai.size:
        dec = plan.att_decode
        d_t = calibrated_decode_attention_time_array(p, nbytes=plan.att_bytes, mem_bw=mem_bw)
        if plan.att_kv_known:  # calibrated_prefill_attention_time_array, clamped lengths kept
            kv = plan.att_kv_clamped
            roll = kv / (kv + p["attention.prefill_half_tokens"])
            a_eff = p["attention.prefill_efficiency"] * roll
            p_t = p["attention.fixed_s"] + plan.att_flops / (peak * a_eff)
        else:
            p_t = calibrated_prefill_attention_time_array(
                p, flops=plan.att_flops, kv_len=plan.att_kv_len, peak=peak
            )
        dev[ai] = np.where(dec, d_t, p_t)
        mem[ai] = dec
        if eager:
            host[ai] = np.where(dec, p[EAGER_HOST["decode_attention"]], p[EAGER_HOST["attention"]])
    ki = plan.mb_ops
    if ki.size:
        # every kernel group of every memory-bound op in one pass: row g of the table is
        # each op's g-th group (:func:`memory_bound_time_array` elementwise, with the
        # class's parameters gathered per entry); the rows are added in group order, as
        # the groups are run, and padding rows add exactly 0
        mem[ki] = True
        frac, fixed = np.array([[p[f] for f in KERNEL_CLASSES[c]] for c in KERNEL_CLASS_ORDER])[
            plan.mb_class
        ].transpose(2, 0, 1)
        t_mb = plan.mb_kernels * fixed + plan.mb_traffic / (mem_bw * frac)
        acc = t_mb[0]
        for row in t_mb[1:]:
            acc = acc + row
        dev[ki] = acc
        if eager:
            per = np.array([p[EAGER_HOST[c]] for c in KERNEL_CLASS_ORDER])[plan.mb_class]
            h_mb = plan.mb_kernels * per
            acc = h_mb[0]
            for row in h_mb[1:]:
                acc = acc + row
            host[ki] = acc
    return dev, host, mem


#: the memory-bound kernel classes in a fixed order (:attr:`PricingPlan.mb_class`)
KERNEL_CLASS_ORDER: tuple[str, ...] = tuple(KERNEL_CLASSES)


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingPlan:
    """What :func:`calibrated_op_times` prices, one batch per cost function.

    A function of the ops (a :class:`CalibratedSelection` with shapes, and the per-op
    inputs of :func:`calibrated_op_times`) and of the engine profile's kernel groups
    only: a sweep over hardware points builds it once (:func:`pricing_plan`), so that
    pricing does no per-call work per kernel class or op kind. GEMMs: the solo GEMMs to
    price (one per distinct shape) then the distinct fused runs. Memory-bound ops: a
    table of ``groups x ops`` (row ``g``: each op's ``g``-th kernel group; ops with
    fewer groups padded by zero-kernel, zero-traffic entries, which add exactly 0).
    """

    gemm_m: FloatArray  # of the GEMMs to price
    gemm_n: FloatArray
    gemm_k: FloatArray
    gemm_batch: FloatArray
    gemm_bytes: FloatArray
    gemm_clamped: tuple[FloatArray, FloatArray, FloatArray]  # m, n, batch, each at least 1
    gemm_work: FloatArray  # 2 m n k batch of the clamped dimensions (their FLOPs)
    n_solo: int  # the first ``n_solo`` GEMMs are the solo ones
    fused_ops: npt.NDArray[np.int64]  # members of fused runs of one input (``ok``)
    fused_run: npt.NDArray[np.int64]  # each one's fused GEMM (position among the GEMMs)
    fused_share: FloatArray  # and its share of it (its n over the run's width)
    gemm_flops: FloatArray  # per GEMM op (``selection.gemm``): FLOPs and bytes
    gemm_op_bytes: FloatArray
    att_decode: npt.NDArray[np.bool_]  # per attention op: one query (decode)
    att_bytes: FloatArray
    att_flops: FloatArray
    att_kv_len: FloatArray  # key length (inf where unknown: no roll-off)
    att_kv_clamped: FloatArray  # the key length, at least 1
    att_kv_known: bool  # every key length is known
    mb_ops: npt.NDArray[np.int64]  # the memory-bound ops, kind after kind
    mb_kernels: FloatArray  # (groups, ops) kernels of each group
    mb_traffic: FloatArray  # (groups, ops) DRAM bytes of each group
    mb_class: npt.NDArray[np.int64]  # (groups, ops) index into KERNEL_CLASS_ORDER


def profile_groups(profile: EngineProfile, kinds: Sequence[str]) -> tuple[Hashable, ...]:
    """A hashable key of what :func:`pricing_plan` reads of ``profile`` for ``kinds``."""
    return tuple(
        (
            k,
            tuple(
                (g.kernel_class, g.kernels, g.traffic_factor, g.traffic_basis)
                for g in profile.ops.get(k) or ()
            ),
        )
        for k in kinds
    )


def pricing_plan(
    sel: CalibratedSelection,
    profile: EngineProfile,
    *,
    flops: FloatArray,
    nbytes: FloatArray,
    gemm_m: FloatArray,
    gemm_n: FloatArray,
    gemm_k: FloatArray,
    gemm_batch: FloatArray,
    q_len: FloatArray,
    kv_len: FloatArray,
    kv_written: FloatArray | None = None,
) -> PricingPlan:
    """The :class:`PricingPlan` of ``sel`` under ``profile``: ``sel`` is a
    :func:`calibrated_selection` with shapes (its fused runs prepared) and the arrays are
    the per-op inputs of :func:`calibrated_op_times`."""
    if sel.fused_lens.size and sel.fused_groups is None:
        raise ValueError("pricing_plan needs a selection with its fused runs prepared")
    rep = sel.solo if sel.solo_distinct is None else sel.solo_distinct[0]
    parts = [(gemm_m[rep], gemm_n[rep], gemm_k[rep], gemm_batch[rep], nbytes[rep])]
    if sel.fused_lens.size:
        assert sel.fused_groups is not None
        parts.append(_fused_inputs(sel.fused_groups, gemm_m, gemm_k, gemm_batch))
    cols = [np.concatenate([np.asarray(part[i], np.float64) for part in parts]) for i in range(5)]
    # m, n, k, batch clamped to 1, as calibrated_gemm_time_array takes them
    c_m, c_n, c_k, c_b = (np.maximum(c, 1.0) for c in cols[:4])
    ops: list[npt.NDArray[np.int64]] = []
    rows: list[list[tuple[float, float, int, bool]]] = []
    for kind_name, ki in sel.memory_bound:
        groups = profile.ops.get(kind_name) or [
            KernelGroup(kernel_class="elementwise", kernels=1, traffic_factor=1.0)
        ]
        ops.append(ki)
        rows.append(
            [
                (
                    float(g.kernels),
                    float(g.traffic_factor),
                    KERNEL_CLASS_ORDER.index(g.kernel_class),
                    g.traffic_basis == "kv_written",
                )
                for g in groups
            ]
        )
    depth = max((len(r) for r in rows), default=0)
    size = sum(ki.size for ki in ops)
    kernels, traffic = np.zeros((depth, size)), np.zeros((depth, size))
    cls = np.zeros((depth, size), dtype=np.int64)
    at = 0
    for ki, entries in zip(ops, rows, strict=True):
        for g, (k, factor, c, on_kv) in enumerate(entries):
            if on_kv:
                basis = np.zeros(ki.size) if kv_written is None else kv_written[ki]
            else:
                basis = nbytes[ki]
            kernels[g, at : at + ki.size] = k
            traffic[g, at : at + ki.size] = factor * basis
            cls[g, at : at + ki.size] = c
        at += ki.size
    gi, ai = sel.gemm, sel.attention
    fused_ops, fused_run, fused_share = sel.fused[:0], sel.fused[:0], np.zeros(0)
    if sel.fused_lens.size:
        prep = sel.fused_groups
        assert prep is not None
        gid = prep.gid if prep.distinct is None else prep.distinct[1][prep.gid]
        fused_ops = sel.fused[prep.ok]
        fused_run = (rep.size + gid[prep.ok]).astype(np.int64)
        fused_share = prep.share[prep.ok]
    kv_len_ai = np.where(kv_len[ai] > 0, kv_len[ai], np.inf)
    return PricingPlan(
        gemm_m=cols[0],
        gemm_n=cols[1],
        gemm_k=cols[2],
        gemm_batch=cols[3],
        gemm_bytes=cols[4],
        gemm_clamped=(c_m, c_n, c_b),
        gemm_work=2.0 * c_m * c_n * c_k * c_b,
        n_solo=int(rep.size),
        fused_ops=fused_ops,
        fused_run=fused_run,
        fused_share=fused_share,
        gemm_flops=flops[gi],
        gemm_op_bytes=nbytes[gi],
        att_decode=np.asarray(q_len[ai] <= 1.0, dtype=bool),
        att_bytes=nbytes[ai],
        att_flops=flops[ai],
        # key length unknown (a traced or hand-made op without attrs): no roll-off
        att_kv_len=kv_len_ai,
        att_kv_clamped=np.maximum(kv_len_ai, 1.0),
        att_kv_known=not bool(np.isinf(kv_len_ai).any()),
        mb_ops=np.concatenate(ops).astype(np.int64) if ops else np.zeros(0, dtype=np.int64),
        mb_kernels=kernels,
        mb_traffic=traffic,
        mb_class=cls,
    )
