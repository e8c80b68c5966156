"""Engine profiles: the software stack a calibrated prediction is for.

The same GPU runs a model at very different speeds depending on which ops are
fused, whether each step is one CUDA graph or eager launches, and the runtime's
per-step overhead. An :class:`EngineProfile` states this explicitly; ``memsim
run --engine NAME|FILE.yaml`` picks one (presets in ``presets/engines/``).
Profiles only change the pricing of compute units that carry calibrated
``efficiency`` parameters (uncalibrated units keep the analytic roofline).

How a graph op becomes kernels (``ops``): each memory-bound op kind (``norm``,
``rope``, ``elementwise``, ``embedding``, ``softmax``) runs as a list of
:class:`KernelGroup` -- a kernel class (which fitted bandwidth and eager host cost
apply), a number of kernels (each pays the fixed per-kernel cost) and the DRAM
traffic per byte the graph op accesses (unfused intermediates move more bytes).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, NonNegativeInt

from hw_models.base import Spec
from hw_models.units import Seconds

if TYPE_CHECKING:
    from hw_models.system import System

KernelClass = Literal["elementwise", "norm", "activation", "copy", "strided"]
MEMORY_BOUND_KINDS: tuple[str, ...] = ("norm", "rope", "elementwise", "embedding", "softmax")
ENGINE_DIR = Path(__file__).parent / "presets" / "engines"


class KernelGroup(Spec):
    """Kernels of one class that an op runs as, and the traffic they move."""

    kernel_class: KernelClass
    kernels: NonNegativeInt
    traffic_factor: float = Field(
        ge=0, description="DRAM bytes moved per byte of the basis (below)"
    )
    traffic_basis: Literal["op", "kv_written"] = Field(
        default="op",
        description="op: the bytes the graph op reads and writes; kv_written: the bytes it "
        "writes into KV-cache tensors (for K/V cache copies, whose size does not follow the "
        "op's: grouped-query attention has fewer K/V heads than query heads)",
    )
    why: str = Field(default="", description="the op sequence these numbers come from")


class EngineProfile(Spec):
    """Which ops are fused, how kernels are launched, and the per-step overhead."""

    name: str = Field(min_length=1)
    description: str = ""
    launch: Literal["cuda_graph", "eager"] = Field(
        description="cuda_graph: each step is one graph replay (device time per kernel); "
        "eager: every kernel is launched by the host (max of host and device time)"
    )
    step_overhead_s: Seconds = Field(default=0.0, description="host time per step (replay, sync)")
    step_overhead_source: str = Field(default="", description="where step_overhead_s comes from")
    fused_qkv: bool = Field(description="Q, K and V projections run as one GEMM")
    fused_gate_up: bool = Field(description="gate and up projections run as one GEMM")
    ops: dict[str, list[KernelGroup]] = Field(
        default_factory=dict,
        description="per memory-bound op kind; kinds not listed run as one elementwise "
        "kernel moving exactly the op's bytes",
    )


_SHIPPED_NAMES = frozenset(p.stem for p in ENGINE_DIR.glob("*.yaml"))


def engine_names() -> list[str]:
    """Names of the shipped engine profiles."""
    return sorted(p.stem for p in ENGINE_DIR.glob("*.yaml"))


def load_engine_profile(name_or_path: str | Path) -> EngineProfile:
    """An :class:`EngineProfile` from a preset name or a YAML file (SpecError if bad).

    Shipped presets are read once per process (read-only files: the cache cannot
    change a result); user files are read every time.
    """
    if isinstance(name_or_path, str) and name_or_path in _SHIPPED_NAMES:
        return _shipped_by_name(name_or_path)
    from hw_models.loader import resolve_preset

    path = resolve_preset(name_or_path, ENGINE_DIR, what="engine profile", error_path="engine")
    if path.parent == ENGINE_DIR:
        return _load_shipped(path)
    return _load(path)


def _load(path: Path) -> EngineProfile:
    from hw_models.loader import load_document

    return load_document(EngineProfile, path)


@cache
def _load_shipped(path: Path) -> EngineProfile:
    return _load(path)


@cache
def _shipped_by_name(name: str) -> EngineProfile:
    return _load_shipped(ENGINE_DIR / f"{name}.yaml")


def with_engine(system: System, engine: str | Path | None) -> System:
    """``system`` priced for the engine profile ``engine`` (a name or a YAML file).

    ``None`` returns ``system`` unchanged (a calibrated preset keeps the profile it
    ships with). The result is a validated copy: the one place a profile is attached,
    shared by the API, the CLI and the validation scripts.
    """
    if engine is None:
        return system
    from hw_models.loader import load_system_dict

    profile = load_engine_profile(engine)
    data = system.model_dump(mode="json", exclude_none=True)
    data["engine"] = profile.model_dump(mode="json", exclude_none=True)
    return load_system_dict(data, source=system.name)
