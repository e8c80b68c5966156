"""Bytes per element of every dtype a workload uses, with quantization overhead.

Weights may be stored quantized with per-group scales (GPTQ/AWQ style): every
``group_size`` weights share one ``scale_bytes``-byte scale (fp16 by default),
plus, optionally, one zero point of the weight's own width. So int4 with groups
of 128 and fp16 scales costs ``0.5 + 2/128 = 0.515625`` bytes per weight.
Activations and the KV cache use plain element sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw_models.errors import Problem, SpecError

#: Element size in bytes of every dtype a graph may carry.
ELEMENT_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "int32": 4.0,
    "int64": 8.0,
    "bool": 1.0,
}
#: Dtypes that need a scale per group of weights when used for weights.
GROUP_QUANTIZED: frozenset[str] = frozenset({"int8", "int4"})
#: Dtypes the builders accept for weights, activations and the KV cache.
MODEL_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")


def check_dtype(dtype: str, *, field: str = "dtype") -> str:
    """Return ``dtype`` if it is a model dtype, else raise :class:`SpecError`."""
    if dtype not in MODEL_DTYPES:
        known = ", ".join(MODEL_DTYPES)
        raise SpecError([Problem(field, f"unknown dtype {dtype!r} (known: {known})")])
    return dtype


def element_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (no quantization overhead)."""
    try:
        return ELEMENT_BYTES[dtype]
    except KeyError:
        known = ", ".join(ELEMENT_BYTES)
        raise SpecError([Problem("dtype", f"unknown dtype {dtype!r} (known: {known})")]) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantization:
    """How weights are stored: dtype, and for int8/int4 the per-group scale layout.

    >>> Quantization(dtype="int4").bytes_per_weight
    0.515625
    """

    dtype: str = "bf16"
    group_size: int = 128
    scale_bytes: float = 2.0
    zero_point: bool = False

    def __post_init__(self) -> None:
        check_dtype(self.dtype, field="dtype")
        if self.group_size <= 0:
            raise SpecError([Problem("quant_group_size", f"expected > 0, found {self.group_size}")])

    @property
    def bytes_per_weight(self) -> float:
        """Storage per weight including scales (and zero points) of its group."""
        base = ELEMENT_BYTES[self.dtype]
        if self.dtype not in GROUP_QUANTIZED:
            return base
        per_group = self.scale_bytes + (base if self.zero_point else 0.0)
        return base + per_group / self.group_size


def default_act_dtype(weight_dtype: str) -> str:
    """Activations stay in 16-bit unless the weights are fp32 (or 16-bit themselves)."""
    return weight_dtype if weight_dtype in ("fp32", "bf16", "fp16") else "bf16"


def default_compute_dtype(weight_dtype: str, act_dtype: str) -> str:
    """The dtype GEMMs run in: W8A8/FP8 run natively, int4 is weight-only (dequantized)."""
    if weight_dtype in ("fp8", "int8"):
        return weight_dtype
    if weight_dtype == "int4":
        return act_dtype
    return weight_dtype
