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
* Transfer time = latency + ceil(bytes/g) g / (bandwidth x achievable fraction).
* Collectives of ``B`` bytes per device among ``p`` devices over a device-to-device
  link of per-direction bandwidth ``bw`` and per-step latency ``a``: time
  ``sent / bw + steps x a`` (:func:`collective_cost_array`). All-reduce:
  ring ``sent = 2 (p-1)/p B``, ``steps = 2 (p-1)``; one-shot ``(p-1) B``, 1 step;
  two-shot ``2 (p-1)/p B``, 2 steps; ``auto`` = the cheapest per message.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hw_models import DTYPE_BYTES, ComputeUnit, Link, MemoryTier
from hw_models.errors import Problem, SpecError
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
    sent = np.zeros((len(names), nb.size))
    lat = np.zeros((len(names), nb.size))
    for i, a in enumerate(names):
        per_byte, steps = _collective_terms(kind, group, a)
        sent[i] = per_byte * nb
        lat[i] = steps * latency
    best = np.argmin(sent / bandwidth + lat, axis=0)  # first = ring on ties
    cols = np.arange(nb.size)
    chosen = [names[int(b)] for b in best]
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
