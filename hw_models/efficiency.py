"""Calibrated efficiency parameters of a compute unit, each with its provenance.

A :class:`ComputeUnit` may carry an :class:`Efficiency`: the fitted (or
published, or assumed) parameters with which ``memsim/cost.py`` turns work into
time for real kernels (GEMM tile and wave losses, achievable bandwidth by kernel
class, per-kernel fixed cost, attention kernel efficiency, host copies, eager
launch rates). Without it a unit is *uncalibrated* and priced by the analytic
roofline as before.

Every parameter is a :class:`Fitted` value: ``value``, a one-sigma ``std`` and
where it came from (``measured``: the file, rows and date of the microbenchmarks
it was fitted on; ``published``: the source and table; ``assumed``: the reason).
The meaning and unit of every name is in :data:`EFFICIENCY_PARAMETERS`
(``docs/calibration.md`` derives the model forms).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from hw_models.base import Spec

ProvenanceKind = Literal["measured", "published", "assumed"]

#: name -> (unit, meaning). The only names an ``efficiency.params`` mapping may use.
EFFICIENCY_PARAMETERS: dict[str, tuple[str, str]] = {
    # GEMM: t = fixed + smooth_max(flops / (peak eff u_wave), bytes / (bw frac); sharpness)
    "gemm.efficiency": ("fraction", "fraction of dense peak a large 16-bit GEMM reaches"),
    "gemm.fp8_efficiency": ("fraction", "fraction of dense fp8 peak a large fp8 GEMM reaches"),
    "gemm.bandwidth_fraction": ("fraction", "of peak memory bandwidth for GEMM operands"),
    "gemm.fixed_s": ("s", "fixed cost of one GEMM kernel (adds to its work)"),
    "gemm.sharpness": ("1", "exponent p of the smooth roofline (a^p + b^p)^(1/p)"),
    "gemm.wave_weight": ("fraction", "weight of the hard wave-quantisation loss (0: none)"),
    "gemm.tile_m": ("rows", "CTA tile rows used for wave quantisation"),
    "gemm.tile_n": ("cols", "CTA tile columns used for wave quantisation"),
    # attention (flash, fused): prefill by FLOPs, decode by KV bytes
    "attention.prefill_efficiency": ("fraction", "of dense peak a long causal prefill reaches"),
    "attention.prefill_half_tokens": ("tokens", "key length at which prefill reaches half"),
    "attention.fixed_s": ("s", "fixed cost of one prefill attention kernel"),
    "attention.decode_fixed_s": ("s", "fixed cost of one decode attention kernel"),
    "attention.decode_bandwidth_fraction": ("fraction", "of peak bandwidth reading K/V"),
    # memory-bound kernels by class: t = kernels x fixed + traffic / (bw x fraction)
    "memory.copy_bandwidth_fraction": ("fraction", "device copy (read + write bytes)"),
    "memory.copy_fixed_s": ("s", "fixed cost of one copy kernel"),
    "memory.read_bandwidth_fraction": ("fraction", "read-only reduction kernel"),
    "memory.read_fixed_s": ("s", "fixed cost of one reduction kernel"),
    "elementwise.bandwidth_fraction": ("fraction", "streaming elementwise kernels (add, copy)"),
    "norm.bandwidth_fraction": ("fraction", "the kernels of an unfused RMSNorm"),
    "activation.bandwidth_fraction": ("fraction", "the kernels of an unfused SiLU x mul"),
    "kernel.graph_s": ("s", "device time of a tiny kernel inside a CUDA graph"),
    "strided.bandwidth_fraction": (
        "fraction",
        "elementwise kernels on strided views (RoPE on q/k views of the QKV output, K/V "
        "cache copies)",
    ),
    "strided.graph_s": ("s", "device time per strided elementwise kernel inside a CUDA graph"),
    "kernel.eager_s": ("s", "host time to launch one tiny kernel eagerly"),
    # eager host time per kernel of each class (the host-bound floor of eager code)
    "eager.norm_s": ("s", "host time per kernel of an eager unfused norm"),
    "eager.activation_s": ("s", "host time per kernel of an eager activation"),
    "eager.elementwise_s": ("s", "host time per eager elementwise kernel"),
    "eager.attention_s": ("s", "host time of one eager prefill SDPA call"),
    "eager.decode_attention_s": ("s", "host time of one eager decode SDPA call"),
    "eager.copy_s": ("s", "host time of one eager device copy"),
    "eager.read_s": ("s", "host time of one eager reduction"),
    "eager.fp8_gemm_s": ("s", "host time of one eager scaled fp8 GEMM"),
    # host links by size and memory kind
    "host_link.pinned_bandwidth_fraction": ("fraction", "of the link's bandwidth, pinned"),
    "host_link.pinned_fixed_s": ("s", "fixed cost of one pinned host copy"),
    "host_link.pageable_bandwidth_fraction": ("fraction", "of the link's bandwidth, pageable"),
    # load-to-use latency
    "latency.l2_s": ("s", "load-to-use latency of an L2 hit"),
    "latency.memory_s": ("s", "load-to-use latency of the device memory (incl. TLB misses)"),
    # weight-only quantisation
    "dequant.int4_bandwidth_penalty": ("fraction", "extra time per int4 weight byte"),
    "dequant.int8_bandwidth_penalty": ("fraction", "extra time per int8 weight byte"),
}


#: parameters added after presets were first calibrated: a preset that lacks them gets
#: these (name -> (parameter whose value it copies, why)), marked ``assumed``
LATER_PARAMETERS: dict[str, tuple[str, str]] = {
    "strided.bandwidth_fraction": (
        "elementwise.bandwidth_fraction",
        "no layer_ops rows in this calibration: strided kernels priced as contiguous "
        "elementwise kernels (optimistic: on an H200 they reach about a third of it)",
    ),
    "strided.graph_s": (
        "kernel.graph_s",
        "no layer_ops rows in this calibration: the in-graph cost of a tiny kernel",
    ),
}


class Fitted(Spec):
    """One efficiency parameter: value, one-sigma uncertainty and provenance."""

    value: float
    std: float = Field(default=0.0, ge=0, description="one-sigma uncertainty (same unit)")
    provenance: ProvenanceKind
    source: str = Field(
        min_length=1,
        description="measured: file, rows, date; published: source and table; assumed: why",
    )

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("expected a finite number")
        return v


class FitSummary(Spec):
    """How the measured parameters were fitted (printed by ``memsim calibrate``)."""

    measurements: str = Field(min_length=1, description="the CSV the fit used")
    date: str = Field(min_length=1, description="when the measurements were taken")
    sections: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per section: rows and median |relative error|"
    )


class GemmShapeTable(Spec):
    """Measured/modelled time ratios of one GEMM shape (``n x k``, dtype) by ``m``.

    The parametric GEMM model misses kernel-selection effects of particular shapes
    (cuBLAS picks a slow kernel for Llama-2-7B's 4096 x 4096 projection at small M).
    For a GEMM of this ``n``, ``k`` and ``dtype`` the model's time is multiplied by the
    ratio interpolated linearly in ``log m`` (held at the end values outside the
    measured range); other shapes keep the model.
    """

    dtype: str = Field(min_length=1)
    n: int = Field(gt=0)
    k: int = Field(gt=0)
    m: list[float] = Field(min_length=1)
    ratio: list[float] = Field(min_length=1, description="measured time / model time")
    source: str = Field(min_length=1, description="file, lines and date of the rows")

    @model_validator(mode="after")
    def _aligned(self) -> GemmShapeTable:
        if len(self.m) != len(self.ratio):
            raise ValueError("m and ratio have different lengths")
        if any(b <= a for a, b in zip(self.m, self.m[1:], strict=False)):
            raise ValueError("m must increase")
        if any(not (r > 0 and math.isfinite(r)) for r in self.ratio):
            raise ValueError("ratios must be finite and > 0")
        return self


class Efficiency(Spec):
    """Calibrated efficiency parameters of one compute unit (see module doc)."""

    params: dict[str, Fitted] = Field(min_length=1)
    gemm_shapes: list[GemmShapeTable] = Field(
        default_factory=list, description="per-shape corrections measured on the GEMM rows"
    )
    fit: FitSummary | None = None

    @model_validator(mode="after")
    def _known(self) -> Efficiency:
        unknown = sorted(set(self.params) - set(EFFICIENCY_PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown efficiency parameter(s) {', '.join(unknown)} "
                f"(known: {', '.join(EFFICIENCY_PARAMETERS)})"
            )
        for name, (like, why) in LATER_PARAMETERS.items():
            if name not in self.params and like in self.params:
                value = self.params[like].value
                self.params[name] = Fitted(value=value, provenance="assumed", source=why)
        missing = sorted(set(EFFICIENCY_PARAMETERS) - set(self.params))
        if missing:
            raise ValueError(f"missing efficiency parameter(s): {', '.join(missing)}")
        for name, p in self.params.items():
            unit = EFFICIENCY_PARAMETERS[name][0]
            bounded = unit == "fraction" and not name.endswith("penalty")
            if p.value < 0 or (bounded and p.value > 1):
                raise ValueError(f"{name}: {p.value} is outside its range")
        return self

    def values(self) -> dict[str, float]:
        """``name -> value`` of every parameter."""
        return {k: p.value for k, p in self.params.items()}

    def stds(self) -> dict[str, float]:
        """``name -> one-sigma`` of every parameter."""
        return {k: p.std for k, p in self.params.items()}
