"""Compute units: GPU-like SIMT cores, systolic arrays, streaming dataflow units."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from hw_models.base import Spec
from hw_models.efficiency import Efficiency, ProvenanceKind
from hw_models.units import Bytes, FlopsPerS, Hertz, Seconds

ComputeKind = Literal["simt", "systolic", "dataflow", "cpu", "vector"]
DType = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"]
DTYPES: tuple[DType, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5,
    "int8": 1.0,
    "int4": 0.5,
}


class KernelTerm(Spec):
    """One per-kernel cost of a dataflow unit: seconds, and where the figure came from."""

    seconds: Seconds
    provenance: ProvenanceKind
    source: str = Field(
        min_length=1, description="published: source and table; assumed: the reasoning"
    )


class DataflowKernelCost(Spec):
    """What one kernel call costs a dataflow unit besides its work (all serial with it).

    A kernel is configured, launched, fills and drains its pipeline, and ends at a
    whole-chip barrier; sharded over several sockets it also synchronises them. The
    PCUs idle through all of it, so every term is paid once per kernel call: per op
    kernel by kernel, per fused group in dataflow execution. Priced by
    :func:`memsim.cost.dataflow_kernel_seconds`.
    """

    launch: KernelTerm = Field(
        description="configure and start one kernel (Program Load, Argument Load, Kernel "
        "Execute, as orchestrated by the host)"
    )
    pipeline_fill_drain: KernelTerm = Field(
        description="the first tile's trip through the kernel's pipeline and the last "
        "tile's drain, during which the kernel's other units idle"
    )
    barrier: KernelTerm = Field(
        description="the whole-chip barrier that ends a kernel before the next may start"
    )
    cross_socket_sync: KernelTerm = Field(
        description="synchronising the sockets a graph is sharded over, once per kernel "
        "(only when the graph spans more than one socket)"
    )


class ComputeUnit(Spec):
    """One kind of compute on one device, with dense peak throughput per dtype.

    ``peak_flops_per_s`` is the whole device's dense peak (all ``count`` units
    together), in FLOP/s (OP/s for integer types). ``array_rows`` /
    ``array_cols`` give the systolic (or tensor-core tile) shape used to model
    padding losses of small GEMMs.
    """

    kind: ComputeKind
    count: PositiveInt = Field(default=1, description="units per device (SMs, cores, PCUs)")
    peak_flops_per_s: dict[DType, FlopsPerS] = Field(min_length=1)
    clock_hz: Hertz | None = None
    array_rows: PositiveInt | None = None
    array_cols: PositiveInt | None = None
    local_sram_bytes: Bytes | None = Field(default=None, description="on-chip buffer per unit")
    kernel_launch_overhead_s: Seconds = Field(
        default=0.0,
        description="fixed cost per kernel: a floor under each kernel's duration (a launch "
        "queue hides it behind running kernels), except on `dataflow` units, where it is "
        "serial (configuration load and synchronisation) and charged once per kernel call: "
        "per op in `kernel` execution, per fused group in `dataflow` execution",
    )
    kernel_cost: DataflowKernelCost | None = Field(
        default=None,
        description="per-kernel-call cost of a `dataflow` unit, term by term with provenance "
        "(added to kernel_launch_overhead_s); only on dataflow units",
    )
    vector_flops_per_s: FlopsPerS | None = Field(
        default=None, description="non-matrix throughput (norms, softmax, elementwise)"
    )
    idle_power_w: float = Field(default=0.0, ge=0)
    energy_j_per_flop: float = Field(
        default=0.0,
        ge=0,
        description="energy per FLOP in the reference dtype (bf16, else fp16, else the "
        "fastest); other dtypes scale by peak ratio unless energy_j_per_flop_by_dtype says",
    )
    energy_j_per_flop_by_dtype: dict[DType, float] = Field(
        default_factory=dict, description="measured energy per FLOP (OP) of given dtypes"
    )
    memory: str | None = Field(
        default=None,
        description="the tier this unit reaches without crossing a link (a host CPU: its DRAM); "
        "None: the device's own memory. Its accesses to other tiers follow the links from it",
    )
    efficiency: Efficiency | None = Field(
        default=None,
        description="calibrated efficiency parameters with provenance (None: uncalibrated, "
        "priced by the analytic roofline); see hw_models/efficiency.py",
    )

    @model_validator(mode="after")
    def _array_dims(self) -> ComputeUnit:
        if (self.array_rows is None) != (self.array_cols is None):
            raise ValueError("array_rows and array_cols are given together or not at all")
        if self.kernel_cost is not None and self.kind != "dataflow":
            raise ValueError(f"kernel_cost is for dataflow units, this unit is {self.kind}")
        return self

    def reference_dtype(self) -> str:
        """The dtype ``energy_j_per_flop`` refers to: bf16, else fp16, else the fastest."""
        for d in ("bf16", "fp16"):
            if d in self.peak_flops_per_s:
                return d
        return max(self.peak_flops_per_s, key=lambda d: self.peak_flops_per_s[d])

    def energy_per_flop(self, dtype: str) -> float:
        """Joules per FLOP (OP) in ``dtype``.

        A measured figure from ``energy_j_per_flop_by_dtype`` if given; otherwise
        ``energy_j_per_flop`` x peak(reference) / peak(dtype), i.e. the unit draws the
        same power at peak in every dtype (the power-limited regime of modern
        accelerators: fp8 at twice the bf16 rate costs half the energy per FLOP).
        """
        if dtype in self.energy_j_per_flop_by_dtype:
            return float(self.energy_j_per_flop_by_dtype[dtype])
        if not self.energy_j_per_flop:
            return 0.0
        try:
            return self.energy_j_per_flop * self.peak(self.reference_dtype()) / self.peak(dtype)
        except KeyError:
            return self.energy_j_per_flop

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; falls back to the nearest wider type it has.

        Raises ``KeyError`` if the unit supports neither ``dtype`` nor a wider one.
        """
        if dtype in self.peak_flops_per_s:
            return float(self.peak_flops_per_s[dtype])
        fallbacks = {
            "fp4": ["fp6", "fp8", "fp16", "bf16"],
            "fp6": ["fp8", "fp16", "bf16"],
            "int4": ["int8", "fp8", "fp16", "bf16"],
            "int8": ["fp8", "fp16", "bf16"],
            "fp8": ["fp16", "bf16"],
            "fp16": ["bf16", "tf32", "fp32"],
            "bf16": ["fp16", "tf32", "fp32"],
            "tf32": ["fp32"],
            "fp32": [],
        }
        for alt in fallbacks.get(dtype, []):
            if alt in self.peak_flops_per_s:
                return float(self.peak_flops_per_s[alt])
        raise KeyError(
            f"compute unit has no throughput for {dtype} (has {list(self.peak_flops_per_s)})"
        )
