"""The microbenchmarks predicted by :mod:`memsim.cost` (the one model, fitted here).

Each section maps rows to seconds with the cost functions the simulator uses, so a
fitted parameter means the same thing in the fit and in a simulation. The rows are
eager PyTorch calls timed back to back: a call costs ``max(host launch, device)``
(:func:`memsim.cost.eager_time_array`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hw_models import System
from hw_models.efficiency import ProvenanceKind
from hw_models.errors import Problem, SpecError
from memsim import cost
from memsim.calibration.measurements import Measurement
from memsim.compiled import FloatArray

#: the PyTorch implementations the ``elementwise`` rows time, as kernel class, kernels and
#: DRAM traffic per byte of the row's ``bytes`` (assumed from the op sequences):
#: RMSNorm (HF ``LlamaRMSNorm``): to(fp32), pow, mean, add eps, rsqrt, mul, to(bf16), x
#: weight -> 8 kernels (counted with the profiler on an H200) moving 36 B per element
#: against the row's 4 (bf16 in + out);
#: SiLU x mul: silu(gate) (r1 w1) then x up (r2 w1) -> 2 kernels, 5/3 of the row's bytes;
#: residual add: one kernel, exactly the row's bytes.
UNFUSED_OPS: dict[str, tuple[str, int, float]] = {
    "rmsnorm": ("norm", 8, 9.0),
    "silu_mul": ("activation", 2, 5.0 / 3.0),
    "residual_add": ("elementwise", 1, 1.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    """The peak figures of the system the parameters are fitted against."""

    peak: Mapping[str, float]  # dtype -> dense FLOP/s of the main unit
    mem_bw: float  # peak read bandwidth of the fastest device tier
    sms: int
    link_bw: float  # per-direction peak of the host link (0: none)
    l2_bytes: float
    unit: str  # the compute unit the efficiency belongs to


def hardware_of(system: System) -> Hardware:
    """:class:`Hardware` of ``system``: its bf16 unit, fastest device DRAM, host link."""
    unit_name = system.main_compute("bf16")
    unit = system.compute[unit_name]
    peak = {}
    for d in ("bf16", "fp16", "fp8", "fp32"):
        try:
            peak[d] = unit.peak(d)
        except KeyError:
            continue
    dev = [t for t in system.tiers_by_speed() if system.tiers[t].scope == "device"]
    drams = [t for t in dev if system.tiers[t].kind != "sram"] or dev
    main = drams[0]
    srams = [system.tiers[t].capacity_bytes for t in dev if system.tiers[t].kind == "sram"]
    link_bw = 0.0
    for lk in system.links.values():
        if main in lk.between and any(system.tiers[t].scope == "host" for t in lk.between):
            link_bw = lk.bandwidth_bytes_per_s
    return Hardware(
        peak=peak,
        mem_bw=system.tiers[main].read_bandwidth_bytes_per_s,
        sms=unit.count,
        link_bw=link_bw,
        l2_bytes=float(max(srams)) if srams else 0.0,
        unit=unit_name,
    )


def _arr(rows: Sequence[Measurement], key: str) -> FloatArray:
    return np.array([float(r.params[key]) for r in rows], dtype=np.float64)


def _gemm(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    dtypes = [str(r.params["dtype"]) for r in rows]
    for r, d in zip(rows, dtypes, strict=True):
        if d not in hw.peak:
            raise SpecError([Problem(f"line {r.line}", f"no peak for dtype {d!r} in the system")])
    fp8 = np.array([d == "fp8" for d in dtypes])
    peak = np.array([hw.peak[d] for d in dtypes])
    elem = np.array([cost.elem_bytes(d) for d in dtypes])
    dev = cost.calibrated_gemm_time_array(
        p,
        m=_arr(rows, "m"),
        n=_arr(rows, "n"),
        k=_arr(rows, "k"),
        batch=np.array([float(r.params.get("b", 1)) for r in rows], dtype=np.float64),
        elem=elem,
        peak=peak,
        mem_bw=hw.mem_bw,
        sms=hw.sms,
        fp8=fp8,
    )
    ones = np.ones(len(rows))
    plain = cost.eager_time_array(p, "gemm", kernels=ones, device=dev)
    scaled = cost.eager_time_array(p, "fp8_gemm", kernels=ones, device=dev)
    eager = np.where(fp8, scaled, plain)
    # rows timed on the device alone (a published kernel-time table) pay no host launch
    device_only = np.array([_device_timed(r) for r in rows])
    return np.asarray(np.where(device_only, dev, eager), dtype=np.float64)


def _device_timed(row: Measurement) -> bool:
    """True for a row whose ``params_json.timing`` is ``"device"`` (kernel time only)."""
    timing = row.params.get("timing", "eager")
    if timing not in ("eager", "device"):
        raise SpecError(
            [
                Problem(
                    f"line {row.line}",
                    f"params_json.timing: expected eager or device, found {timing!r}",
                )
            ]
        )
    return timing == "device"


def _memory(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    out = np.zeros(len(rows))
    nb = _arr(rows, "bytes")
    for i, r in enumerate(rows):
        cls = "copy" if "copy" in r.name else "read"
        traffic = 2.0 * nb[i] if cls == "copy" else nb[i]
        dev = cost.memory_bound_time_array(
            p, cls, traffic=np.array([traffic]), kernels=np.ones(1), mem_bw=hw.mem_bw
        )
        out[i] = cost.eager_time_array(p, cls, kernels=np.ones(1), device=dev)[0]
    return out


def _pcie(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    if hw.link_bw <= 0:
        raise SpecError([Problem("links", "pcie rows need a host link to the device memory")])
    pinned = np.array(["pageable" not in r.name for r in rows])
    nb = _arr(rows, "bytes")
    a = cost.host_copy_time_array(p, nbytes=nb, link_bw=hw.link_bw, pinned=True)
    b = cost.host_copy_time_array(p, nbytes=nb, link_bw=hw.link_bw, pinned=False)
    return np.asarray(np.where(pinned, a, b), dtype=np.float64)


def _launch(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    return np.array(
        [p["kernel.graph_s"] if r.name.startswith("graph") else p["kernel.eager_s"] for r in rows]
    )


def _elementwise(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    out = np.zeros(len(rows))
    for i, r in enumerate(rows):
        key = next((k for k in UNFUSED_OPS if r.name.startswith(k)), None)
        if key is None:
            known = ", ".join(UNFUSED_OPS)
            raise SpecError(
                [
                    Problem(
                        f"line {r.line}", f"unknown elementwise row {r.name!r} (known: {known}_*)"
                    )
                ]
            )
        cls, kernels, factor = UNFUSED_OPS[key]
        k = np.array([float(kernels)])
        dev = cost.memory_bound_time_array(
            p,
            cls,
            traffic=np.array([factor * float(r.params["bytes"])]),
            kernels=k,
            mem_bw=hw.mem_bw,
        )
        out[i] = cost.eager_time_array(p, cls, kernels=k, device=dev)[0]
    return out


#: ``layer_ops`` rows (kernels of an unfused layer inside a CUDA graph) -> kernel class;
#: each row carries its kernel count (from the profiler) and ``bytes`` (hand count)
LAYER_OPS: dict[str, str] = {
    "rope_qk": "strided",
    "kv_write": "strided",
    "rmsnorm": "norm",
    "silu_mul": "activation",
    "residual_add": "elementwise",
}


def layer_op_class(line: int, name: str) -> str:
    """The kernel class of a ``layer_ops`` row (:data:`LAYER_OPS`); SpecError if unknown."""
    key = next((k for k in LAYER_OPS if name.startswith(k)), None)
    if key is None:
        known = ", ".join(f"{k}*" for k in LAYER_OPS)
        raise SpecError([Problem(f"line {line}", f"unknown layer_ops row {name!r} ({known})")])
    return LAYER_OPS[key]


def _layer_ops(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    out = np.zeros(len(rows))
    for i, r in enumerate(rows):
        cls = layer_op_class(r.line, r.name)
        k = np.array([float(r.params["kernels"])])
        dev = cost.memory_bound_time_array(
            p, cls, traffic=np.array([float(r.params["bytes"])]), kernels=k, mem_bw=hw.mem_bw
        )
        # rows measured inside a CUDA graph are device time; eager rows pay launches too
        graphed = r.params.get("graph", True) is not False
        out[i] = dev[0] if graphed else cost.eager_time_array(p, cls, kernels=k, device=dev)[0]
    return out


def _attention(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    out = np.zeros(len(rows))
    one = np.ones(1)
    for i, r in enumerate(rows):
        q = r.params
        if r.name.startswith("decode"):
            dev = cost.calibrated_decode_attention_time_array(
                p, nbytes=np.array([float(q["kv_bytes"])]), mem_bw=hw.mem_bw
            )
            out[i] = cost.eager_time_array(p, "decode_attention", kernels=one, device=dev)[0]
        else:
            s = float(q["s"])
            causal = "causal" in r.name
            pairs = s * (s + 1) / 2.0 if causal else s * s
            flops = 4.0 * q["b"] * q["h"] * q["d"] * pairs
            dev = cost.calibrated_prefill_attention_time_array(
                p, flops=np.array([flops]), kv_len=np.array([s]), peak=hw.peak["bf16"]
            )
            out[i] = cost.eager_time_array(p, "attention", kernels=one, device=dev)[0]
    return out


def _latency(p: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware) -> FloatArray:
    return cost.load_latency_array(p, footprint=_arr(rows, "bytes"), l2_bytes=hw.l2_bytes)


Predictor = Callable[[Mapping[str, float], Sequence[Measurement], Hardware], FloatArray]


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """How one section is predicted and which parameters it fits (with start, bounds)."""

    predict: Predictor
    # name -> (start, low, high)
    free: Mapping[str, tuple[float, float, float]]


US = 1e-6
#: fitted in this order: later sections use the values fitted by earlier ones
SECTION_MODELS: dict[str, Section] = {
    "launch": Section(
        predict=_launch,
        free={"kernel.graph_s": (2 * US, 1e-8, 1e-3), "kernel.eager_s": (10 * US, 1e-8, 1e-2)},
    ),
    "latency": Section(
        predict=_latency,
        free={"latency.l2_s": (200e-9, 1e-9, 1e-5), "latency.memory_s": (500e-9, 1e-9, 1e-4)},
    ),
    "pcie": Section(
        predict=_pcie,
        free={
            "host_link.pinned_bandwidth_fraction": (0.8, 0.01, 1.0),
            "host_link.pinned_fixed_s": (5 * US, 1e-8, 1e-2),
            "host_link.pageable_bandwidth_fraction": (0.4, 0.01, 1.0),
        },
    ),
    "memory": Section(
        predict=_memory,
        free={
            "memory.copy_bandwidth_fraction": (0.9, 0.05, 1.0),
            "memory.copy_fixed_s": (3 * US, 1e-8, 1e-3),
            "memory.read_bandwidth_fraction": (0.8, 0.05, 1.0),
            "memory.read_fixed_s": (5 * US, 1e-8, 1e-3),
            "eager.copy_s": (13 * US, 1e-7, 1e-2),
            "eager.read_s": (20 * US, 1e-7, 1e-2),
        },
    ),
    "elementwise": Section(
        predict=_elementwise,
        free={
            "elementwise.bandwidth_fraction": (0.85, 0.05, 1.0),
            "norm.bandwidth_fraction": (0.7, 0.05, 1.0),
            "activation.bandwidth_fraction": (0.5, 0.05, 1.0),
            "eager.elementwise_s": (12 * US, 1e-7, 1e-2),
            "eager.norm_s": (20 * US, 1e-7, 1e-2),
            "eager.activation_s": (20 * US, 1e-7, 1e-2),
        },
    ),
    "layer_ops": Section(
        predict=_layer_ops,
        free={
            "strided.bandwidth_fraction": (0.4, 0.05, 1.0),
            "strided.graph_s": (2 * US, 1e-8, 1e-3),
        },
    ),
    "attention": Section(
        predict=_attention,
        free={
            "attention.prefill_efficiency": (0.65, 0.05, 1.0),
            "attention.prefill_half_tokens": (300.0, 1.0, 1e5),
            "attention.fixed_s": (5 * US, 1e-8, 1e-3),
            "attention.decode_fixed_s": (5 * US, 1e-8, 1e-3),
            "attention.decode_bandwidth_fraction": (0.9, 0.05, 1.0),
            "eager.attention_s": (30 * US, 1e-7, 1e-2),
            "eager.decode_attention_s": (50 * US, 1e-7, 1e-2),
        },
    ),
    "gemm": Section(
        predict=_gemm,
        free={
            "gemm.efficiency": (0.72, 0.05, 1.0),
            "gemm.fp8_efficiency": (0.65, 0.05, 1.0),
            "gemm.bandwidth_fraction": (0.8, 0.05, 1.0),
            "gemm.fixed_s": (5 * US, 1e-8, 1e-3),
            "gemm.sharpness": (3.0, 1.0, 50.0),
            "gemm.wave_weight": (0.3, 1e-4, 1.0),
            "eager.fp8_gemm_s": (35 * US, 1e-7, 1e-2),
        },
    ),
}

#: parameters no section fits: value, provenance kind, source
ASSUMED: dict[str, tuple[float, ProvenanceKind, str]] = {
    "gemm.tile_m": (
        128.0,
        "assumed",
        "CTA tile of Hopper cuBLAS bf16 kernels (128 x 128 or larger); the fitted "
        "wave_weight absorbs the difference",
    ),
    "gemm.tile_n": (128.0, "assumed", "as gemm.tile_m"),
    "dequant.int4_bandwidth_penalty": (
        0.25,
        "assumed",
        "no int4 microbenchmark: weight-only int4 GEMV kernels unpack 2 weights per byte "
        "and scale by group in registers; charged 25 % extra time per weight byte",
    ),
    "dequant.int8_bandwidth_penalty": (
        0.1,
        "assumed",
        "no int8 microbenchmark: one conversion and scale per weight byte, 10 % extra",
    ),
}
