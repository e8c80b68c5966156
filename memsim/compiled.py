"""A graph compiled once into columnar numpy arrays (hardware-free, cached per graph).

Both fidelities, the placement policies and the invariants read these arrays
instead of walking the ``Op`` objects again: a Llama-2-13B generation graph has
about 80 000 ops, and a design-space sweep reuses one graph across many systems.
"""

from __future__ import annotations

import hashlib
import itertools
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from memsim.memo import memo
from workloads.graph import Graph, GraphMeta

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PERSISTENT_KINDS: frozenset[str] = frozenset({"weight", "kv", "optimizer"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledGraph:
    """Columnar view of a :class:`~workloads.graph.Graph`.

    Ops: ``kind``/``phase``/``dtype`` as codes into the ``*_names`` tuples;
    accesses in flat arrays (``acc_op``, ``acc_tensor``, ``acc_bytes``,
    ``acc_write``) sorted by op. Segments are maximal runs of ops with the same
    (stage, layer, step, phase): the unit of weight streaming and of default
    dataflow fusion.
    """

    n_ops: int
    op_names: tuple[str, ...]
    kind: IntArray
    kind_names: tuple[str, ...]
    phase: IntArray
    phase_names: tuple[str, ...]
    dtype: IntArray
    dtype_names: tuple[str, ...]
    layer: IntArray
    step: IntArray
    stage: IntArray
    flops: FloatArray
    gemm_m: FloatArray
    gemm_n: FloatArray
    gemm_k: FloatArray
    gemm_batch: FloatArray
    coll_kind: tuple[str | None, ...]
    coll_bytes: FloatArray
    coll_group: IntArray
    fuse_group: tuple[str | None, ...]
    unit_attr: tuple[str | None, ...]
    any_unit_attr: bool
    tensor_names: tuple[str, ...]
    tensor_index: dict[str, int]
    t_bytes: FloatArray
    t_kind: tuple[str, ...]
    t_persistent: BoolArray
    acc_op: IntArray
    acc_tensor: IntArray
    acc_bytes: FloatArray
    acc_write: BoolArray
    first_use: IntArray
    last_use: IntArray
    segment: IntArray
    n_segments: int
    sequential: bool
    # the ops each op waits for; empty when ``sequential`` (each waits for the previous)
    deps: tuple[tuple[int, ...], ...]
    tp: int
    fingerprint: str
    # attention ops: query and key lengths from ``Op.attrs`` (0 elsewhere; calibrated cost)
    attn_q_len: FloatArray = field(default_factory=lambda: np.zeros(0))
    attn_kv_len: FloatArray = field(default_factory=lambda: np.zeros(0))
    # GEMMs an engine profile may fuse (FUSABLE_GEMM_CODES): family code (-1: none)
    # and a code of the op-name prefix (``L3`` of ``L3.q``)
    gemm_family: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gemm_prefix: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # weight-only quantised GEMMs (weights int8/int4, math in a wider dtype): the bytes of
    # quantised weights each reads, and their element bytes (0: none) for dequant costs
    gemm_qweight_bytes: FloatArray = field(default_factory=lambda: np.zeros(0))
    gemm_qweight_elem: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def op_bytes_read(self) -> FloatArray:
        """Logical bytes read per op (the graph's ``Op.bytes_read``)."""
        w = np.where(self.acc_write, 0.0, self.acc_bytes)
        return np.asarray(np.bincount(self.acc_op, weights=w, minlength=self.n_ops), np.float64)

    @property
    def op_bytes_written(self) -> FloatArray:
        """Logical bytes written per op (the graph's ``Op.bytes_written``)."""
        w = np.where(self.acc_write, self.acc_bytes, 0.0)
        return np.asarray(np.bincount(self.acc_op, weights=w, minlength=self.n_ops), np.float64)


#: GEMMs an engine profile may fuse, by op-name suffix: 0 = QKV, 1 = gate-up
FUSABLE_GEMM_FAMILIES: tuple[str, ...] = ("qkv", "gate_up")
FUSABLE_GEMM_CODES: dict[str, int] = {"q": 0, "k": 0, "v": 0, "gate": 1, "up": 1}
#: weight dtypes that a wider-math GEMM dequantises, with their bytes per element
QUANT_WEIGHT_BYTES: dict[str, float] = {"int8": 1.0, "int4": 0.5}


def _codes(values: list[str]) -> tuple[IntArray, tuple[str, ...]]:
    names: dict[str, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), np.int64, len(values))
    return codes, tuple(names)


def _compile(graph: Graph) -> CompiledGraph:
    ops = graph.ops
    n = len(ops)
    tensor_names = tuple(graph.tensors)
    tindex = {name: i for i, name in enumerate(tensor_names)}
    # typed buffers, not lists: a list holds a Python int or float object per access
    acc_op = array("q")
    acc_t = array("q")
    acc_b = array("d")
    acc_w = array("B")
    gm = np.zeros(n)
    gn = np.zeros(n)
    gk = np.zeros(n)
    gb = np.zeros(n)
    cb = np.zeros(n)
    cg = np.ones(n, dtype=np.int64)
    aq = np.zeros(n)
    akv = np.zeros(n)
    fam = np.full(n, -1, dtype=np.int64)
    pre = np.zeros(n, dtype=np.int64)
    prefixes: dict[str, int] = {}
    qwb = np.zeros(n)
    qwe = np.zeros(n)
    ck: list[str | None] = [None] * n
    sequential = True
    for i, op in enumerate(ops):
        for acc in op.reads:
            acc_op.append(i)
            acc_t.append(tindex[acc.tensor])
            acc_b.append(acc.bytes)
            acc_w.append(False)
        for acc in op.writes:
            acc_op.append(i)
            acc_t.append(tindex[acc.tensor])
            acc_b.append(acc.bytes)
            acc_w.append(True)
        g = op.gemm
        if g is not None:
            gm[i], gn[i], gk[i], gb[i] = g.m, g.n, g.k, g.batch
            prefix, _, suffix = op.name.rpartition(".")
            f = FUSABLE_GEMM_CODES.get(suffix)
            if f is not None:
                fam[i] = f
                pre[i] = prefixes.setdefault(prefix, len(prefixes))
            for acc in op.reads:
                t = graph.tensors[acc.tensor]
                if t.kind == "weight" and t.dtype in QUANT_WEIGHT_BYTES and t.dtype != op.dtype:
                    qwb[i] += acc.bytes
                    qwe[i] = QUANT_WEIGHT_BYTES[t.dtype]
        c = op.collective
        if c is not None:
            ck[i], cb[i], cg[i] = c.kind, c.bytes, c.group
        if op.kind == "attention" and op.attrs:
            aq[i] = float(op.attrs.get("q_len", 0) or 0)
            akv[i] = float(op.attrs.get("kv_len", 0) or 0)
        if sequential and op.deps is not None and op.deps != ((i - 1,) if i else ()):
            sequential = False
    kind, kind_names = _codes([op.kind for op in ops])
    phase, phase_names = _codes([op.phase for op in ops])
    dtype, dtype_names = _codes([op.dtype for op in ops])
    layer = np.fromiter((-1 if op.layer is None else op.layer for op in ops), np.int64, n)
    step = np.fromiter((op.step for op in ops), np.int64, n)
    stage = np.fromiter((op.stage for op in ops), np.int64, n)
    flops = np.fromiter((op.flops for op in ops), np.float64, n)
    a_op = np.frombuffer(acc_op, dtype=np.int64) if acc_op else np.zeros(0, dtype=np.int64)
    a_t = np.frombuffer(acc_t, dtype=np.int64) if acc_t else np.zeros(0, dtype=np.int64)
    a_b = np.frombuffer(acc_b, dtype=np.float64) if acc_b else np.zeros(0)
    a_w = np.frombuffer(acc_w, dtype=np.bool_) if acc_w else np.zeros(0, dtype=bool)
    # per-op dependency tuples are kept only where the graph is not one chain (the
    # only case that reads them)
    deps = () if sequential else tuple(graph.dependencies(i) for i in range(n))
    n_t = len(tensor_names)
    first = np.full(n_t, -1, dtype=np.int64)
    last = np.full(n_t, -1, dtype=np.int64)
    if a_op.size:
        # accesses are sorted by op: the last write per tensor wins for `last`,
        # reversing gives the first.
        last[a_t] = a_op
        first[a_t[::-1]] = a_op[::-1]
    if n:
        key_change = np.ones(n, dtype=bool)
        key_change[1:] = (
            (layer[1:] != layer[:-1])
            | (step[1:] != step[:-1])
            | (stage[1:] != stage[:-1])
            | (phase[1:] != phase[:-1])
        )
        segment = np.cumsum(key_change) - 1
        n_seg = int(segment[-1]) + 1
    else:
        segment = np.zeros(0, dtype=np.int64)
        n_seg = 0
    unit_attr = tuple(_unit_attr(op.attrs) for op in ops)
    t_bytes = np.fromiter((t.bytes for t in graph.tensors.values()), np.float64, n_t)
    t_kind = tuple(t.kind for t in graph.tensors.values())
    # The fingerprint keys cached plan layouts: it must cover everything a layout can
    # depend on (traffic, grouping, stages, shapes, dtypes, collectives, dependencies).
    h = hashlib.sha256()
    arrays: list[np.ndarray] = [flops, a_b, a_w, a_op, a_t]
    arrays += [t_bytes, kind, phase, step, stage, layer, segment, dtype, gm, gn, gk, gb, cb, cg]
    arrays += [aq, akv, qwb, qwe]
    for arr in arrays:
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr((phase_names, kind_names, dtype_names, t_kind, tensor_names)).encode())
    # repr((fuse groups, collective kinds, dependencies)), streamed: no string of the
    # whole graph, and no dependency tuple per op kept for a sequential graph
    h.update(b"(")
    _update_repr(h, (op.fuse_group for op in ops), n)
    h.update(b", ")
    _update_repr(h, iter(ck), n)
    h.update(b", ")
    _update_repr(h, (graph.dependencies(i) for i in range(n)), n)
    h.update(b")")
    h.update(repr(unit_attr).encode())
    h.update(repr(sorted((str(k), repr(v)) for k, v in graph.meta.items())).encode())
    return CompiledGraph(
        n_ops=n,
        op_names=tuple(op.name for op in ops),
        kind=kind,
        kind_names=kind_names,
        phase=phase,
        phase_names=phase_names,
        dtype=dtype,
        dtype_names=dtype_names,
        layer=layer,
        step=step,
        stage=stage,
        flops=flops,
        gemm_m=gm,
        gemm_n=gn,
        gemm_k=gk,
        gemm_batch=gb,
        coll_kind=tuple(ck),
        coll_bytes=cb,
        coll_group=cg,
        attn_q_len=aq,
        attn_kv_len=akv,
        gemm_family=fam,
        gemm_prefix=pre,
        gemm_qweight_bytes=qwb,
        gemm_qweight_elem=qwe,
        fuse_group=tuple(op.fuse_group for op in ops),
        unit_attr=unit_attr,
        any_unit_attr=any(u is not None for u in unit_attr),
        tensor_names=tensor_names,
        tensor_index=tindex,
        t_bytes=t_bytes,
        t_kind=t_kind,
        t_persistent=np.fromiter((k in PERSISTENT_KINDS for k in t_kind), bool, n_t),
        acc_op=a_op,
        acc_tensor=a_t,
        acc_bytes=a_b,
        acc_write=a_w,
        first_use=first,
        last_use=last,
        segment=segment,
        n_segments=n_seg,
        sequential=sequential,
        deps=deps,
        tp=_tp(GraphMeta.of(graph.meta).tp, cg[cb > 0]),
        fingerprint=h.hexdigest()[:16],
    )


def _update_repr(h: Any, items: Iterator[Any], n: int, chunk: int = 4096) -> None:
    """``h.update(repr(tuple(items)).encode())`` without building the tuple or its repr."""
    h.update(b"(")
    done = 0
    while done < n:
        part = [repr(x) for x in itertools.islice(items, chunk)]
        if done:
            h.update(b", ")
        h.update(", ".join(part).encode())
        done += len(part)
        if not part:
            break
    if n == 1:
        h.update(b",")
    h.update(b")")


def _tp(meta_tp: Any, groups: IntArray) -> int:
    if isinstance(meta_tp, int) and meta_tp > 0:
        return meta_tp
    return int(groups.max()) if groups.size else 1


def _unit_attr(attrs: Any) -> str | None:
    unit = attrs.get("unit") if attrs else None
    return unit if isinstance(unit, str) else None


def compile_graph(graph: Graph) -> CompiledGraph:
    """The columnar form of ``graph``: compiled once per graph object within the active
    :class:`~memsim.memo.SimCache` (see :func:`memsim.memo.using`), else afresh."""
    return memo("compiled", id(graph), lambda: _compile(graph), pin=graph)


def transient_peak(cg: CompiledGraph, mask: BoolArray) -> float:
    """Largest sum of the tensors selected by ``mask`` alive at once (first to last use)."""
    sel = mask & (cg.first_use >= 0)
    if not sel.any():
        return 0.0
    delta = np.zeros(cg.n_ops + 1)
    np.add.at(delta, cg.first_use[sel], cg.t_bytes[sel])
    np.add.at(delta, cg.last_use[sel] + 1, -cg.t_bytes[sel])
    return float(np.max(np.cumsum(delta)))


def segment_max_bytes(cg: CompiledGraph, mask: BoolArray) -> float:
    """Largest sum of distinct selected tensors one segment touches."""
    sel = mask[cg.acc_tensor]
    if not sel.any():
        return 0.0
    seg = cg.segment[cg.acc_op[sel]]
    t = cg.acc_tensor[sel]
    pairs = np.unique(seg * len(cg.tensor_names) + t)
    seg_u = pairs // len(cg.tensor_names)
    t_u = pairs % len(cg.tensor_names)
    per_seg = np.bincount(seg_u, weights=cg.t_bytes[t_u])
    return float(per_seg.max())
