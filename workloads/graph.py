"""The workload graph: tensors (with sizes and kinds) and ops (with FLOPs and traffic).

This is the contract between every workload source (config builders, PyTorch
tracing, trace files) and the simulator. It knows nothing about hardware.

* A :class:`Tensor` has a size in bytes, a kind (weight, kv, activation,
  gradient, optimizer, logits, input), a dtype, and optionally the layer it
  belongs to (placement policies stream weights layer by layer).
* An :class:`Op` has a kind, FLOPs, the bytes it reads from and writes to each
  tensor (``reads``/``writes``: tuples of :class:`Access`), a compute dtype, a
  GEMM shape where it is a matrix multiply, the layer, phase and decode step it
  belongs to, and the ops it depends on (``deps``, indices into
  ``Graph.ops``; ``None`` means "the previous op", the common sequential case).
* A :class:`Graph` holds both, in topological order, with metadata.

Bytes in ``reads``/``writes`` are what the op moves to or from the tensor's
home tier assuming nothing stays on chip between ops (the ``kernel`` model).
They may be smaller than the tensor (a decode step reads the KV cache only up
to its context) or larger (re-reads).

Tensor-parallel graphs describe one device's shard (SPMD): ops carry sharded
sizes, and ``collective`` ops carry :class:`Collective` records. Pipeline
parallel graphs put ops on ``stage`` s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from hw_models.errors import Problem, SpecError

TensorKind = Literal["weight", "kv", "activation", "gradient", "optimizer", "logits", "input"]
TENSOR_KINDS: tuple[TensorKind, ...] = get_args(TensorKind)
OpKind = Literal[
    "gemm",
    "attention",
    "norm",
    "elementwise",
    "softmax",
    "embedding",
    "rope",
    "collective",
    "optimizer",
    "other",
]
OP_KINDS: tuple[OpKind, ...] = get_args(OpKind)
Phase = Literal["prefill", "decode", "forward", "backward", "optimizer", "switch"]
PHASES: tuple[Phase, ...] = get_args(Phase)
CollectiveKind = Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Tensor:
    """A named buffer: its size, kind, dtype and (optionally) layer and stage."""

    name: str
    bytes: float
    kind: TensorKind
    dtype: str = "bf16"
    shape: tuple[int, ...] = ()
    layer: int | None = None
    stage: int = 0

    def __post_init__(self) -> None:
        if self.bytes < 0:
            raise ValueError(f"tensor {self.name!r}: bytes must be >= 0, found {self.bytes}")

    @property
    def persistent(self) -> bool:
        """Lives for the whole run (weights, KV cache, optimizer state)."""
        return self.kind in ("weight", "kv", "optimizer")


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """``bytes`` of ``tensor`` read or written by one op."""

    tensor: str
    bytes: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GemmShape:
    """``batch`` independent (M x K) @ (K x N) products."""

    m: int
    n: int
    k: int
    batch: int = 1

    @property
    def flops(self) -> float:
        """2 M N K per product."""
        return 2.0 * self.m * self.n * self.k * self.batch


@dataclass(frozen=True, slots=True, kw_only=True)
class Collective:
    """A collective among ``group`` devices over ``bytes`` of payload per device."""

    kind: CollectiveKind
    bytes: float
    group: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One unit of work (a kernel, or a node of a fused dataflow group)."""

    name: str
    kind: OpKind
    flops: float = 0.0
    reads: tuple[Access, ...] = ()
    writes: tuple[Access, ...] = ()
    dtype: str = "bf16"
    gemm: GemmShape | None = None
    collective: Collective | None = None
    layer: int | None = None
    phase: Phase = "forward"
    step: int = 0
    stage: int = 0
    micro_batch: int = 0
    fuse_group: str | None = None
    deps: tuple[int, ...] | None = None
    attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def bytes_read(self) -> float:
        """Sum of bytes read."""
        return sum(a.bytes for a in self.reads)

    @property
    def bytes_written(self) -> float:
        """Sum of bytes written."""
        return sum(a.bytes for a in self.writes)

    @property
    def bytes_moved(self) -> float:
        """Bytes read plus bytes written."""
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP per byte moved (inf if it moves nothing)."""
        moved = self.bytes_moved
        return self.flops / moved if moved else float("inf")


_META_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "kind": (str,),
    "dtype": (str,),
    "kv_dtype": (str,),
    "attention": (str,),
    "tp": (int,),
    "pp": (int,),
    "batch": (int,),
    "prompt_len": (int,),
    "gen_len": (int,),
    "tokens": (int,),
    "sram_bytes": (int, float),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphMeta:
    """The typed view of the ``Graph.meta`` entries the simulator reads.

    ``Graph.meta`` stays a free mapping (the builders and graph files may record more);
    :meth:`of` checks the entries below and :func:`memsim.simulate` reads only these.
    ``None``: not recorded. ``sram_bytes=None`` also means "left to the hardware".
    """

    model: str | None = None
    kind: str | None = None  # prefill, decode, generate, train, ...
    dtype: str | None = None  # weights / compute
    kv_dtype: str | None = None
    attention: str | None = None  # attention model name
    tp: int | None = None  # devices one shard stands for
    pp: int | None = None
    batch: int | None = None
    prompt_len: int | None = None
    gen_len: int | None = None
    tokens: int | None = None  # tokens the run produces (for tokens/s)
    sram_bytes: float | None = None  # fused-attention buffer

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> GraphMeta:
        """The typed entries of ``meta``; a wrongly typed one is a :class:`SpecError`
        naming it (``meta.tp``)."""
        values: dict[str, Any] = {}
        problems = []
        for key, types in _META_TYPES.items():
            v: Any = meta.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, types):
                want = " or ".join(t.__name__ for t in types)
                problems.append(Problem(f"meta.{key}", f"expected {want}, found {v!r}"))
            else:
                values[key] = float(cast(float, v)) if key == "sram_bytes" else v
        if problems:
            raise SpecError(problems)
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Tensors and ops in topological order, plus metadata (model, batch, lengths)."""

    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    meta: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: the builder call that made this graph, as ``rebuild(**changed_options) -> Graph``
    #: (set by the builders of :mod:`workloads.transformer`; None for graphs read from
    #: files, traced or selected). The simulator uses it to fit options a builder left
    #: to the hardware, such as the attention buffer (``sram_bytes=None``).
    rebuild: Callable[..., Graph] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for i, op in enumerate(self.ops):
            for acc in (*op.reads, *op.writes):
                if acc.tensor not in self.tensors:
                    raise ValueError(f"op {i} ({op.name}) uses unknown tensor {acc.tensor!r}")
            for d in op.deps or ():
                if not 0 <= d < i:
                    raise ValueError(f"op {i} ({op.name}) depends on op {d}, not an earlier op")

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def dependencies(self, i: int) -> tuple[int, ...]:
        """Indices of the ops op ``i`` waits for (the previous op when ``deps`` is None)."""
        deps = self.ops[i].deps
        if deps is None:
            return (i - 1,) if i > 0 else ()
        return deps

    @property
    def total_flops(self) -> float:
        """FLOPs of every op."""
        return sum(op.flops for op in self.ops)

    @property
    def total_bytes_moved(self) -> float:
        """Bytes read plus written by every op."""
        return sum(op.bytes_moved for op in self.ops)

    def tensor_bytes(self, kind: str | None = None) -> float:
        """Sum of tensor sizes (of ``kind``)."""
        return sum(t.bytes for t in self.tensors.values() if kind is None or t.kind == kind)

    def phases(self) -> list[str]:
        """Phases present, in order of first appearance."""
        seen: dict[str, None] = {}
        for op in self.ops:
            seen.setdefault(op.phase)
        return list(seen)

    def select(self, ops: Iterable[int]) -> Graph:
        """A sub-graph of the given ops (deps outside it dropped), sharing tensors."""
        idx = sorted(set(ops))
        remap = {old: new for new, old in enumerate(idx)}
        new_ops = []
        for old in idx:
            op = self.ops[old]
            deps = tuple(remap[d] for d in self.dependencies(old) if d in remap)
            new_ops.append(_replace_deps(op, deps))
        used = {a.tensor for op in new_ops for a in (*op.reads, *op.writes)}
        return Graph(
            tensors={n: t for n, t in self.tensors.items() if n in used},
            ops=tuple(new_ops),
            meta=dict(self.meta),
        )


def _replace_deps(op: Op, deps: tuple[int, ...]) -> Op:
    from dataclasses import replace

    return replace(op, deps=deps)
