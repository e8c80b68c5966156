"""Training steps: forward, backward, optimizer update, with micro-batches and 1F1B pipelining.

:func:`train_step` emits, per micro-batch and pipeline stage, the forward ops
(phase ``forward``, all positions' logits, a fused cross-entropy that writes the
logits' gradient), the backward ops derived from them (phase ``backward``), and
an Adam update per layer (phase ``optimizer``). Units of work are ordered by the
1F1B schedule (Narayanan et al. 2021, PipeDream-Flush): stage ``s`` of ``p`` runs
``p - s - 1`` warm-up forwards, then alternates one forward and one backward,
then drains the remaining backwards. ``deps`` encode that order and the data
dependencies between stages.

Backward rules (each derived from the forward op it mirrors):

* GEMM ``Y = X W``: ``dX = dY Wᵀ`` and ``dW = Xᵀ dY``, each as many FLOPs as
  the forward; two activations (``Q Kᵀ``, ``P V``): one GEMM per operand.
* fused attention: 2.5x the forward FLOPs (recomputes ``S``, then ``dV``, ``dP``,
  ``dQ``, ``dK``: five products for two, Dao et al. 2022, Sec. 3.1 / App. B);
  reads what the forward read plus ``O`` and ``dO``, writes ``dQ``, ``dK``, ``dV``.
* anything else: 2x the forward FLOPs, reads the forward's inputs and the
  gradients of its outputs, writes the gradients of its inputs.
* collectives mirror themselves (all-reduce of the input gradient, Megatron's
  ``f``/``g`` pair).

Saved activations. Every write of an activation is its own tensor (the
in-place residual stream and the twice-written normalised input become one
tensor per version, ``resid#3``), so a tensor lives exactly from the op that
writes it to the last op that reads it. A backward op reads what autograd
saves for it: a GEMM its input and weight, attention ``Q, K, V, O``, a fused
add-and-norm the residual sum it wrote (not the addends), RoPE only its
cos/sin tables (the rotation is linear); the cos/sin table itself has no
gradient.

Recomputation (Korthikanti et al. 2022): ``"full"`` re-runs each layer's
forward before its backward from one checkpoint, the layer's input (the
residual sum its first norm wrote, or the residual it read); ``"selective"``
re-runs only the attention core (the fused kernel, or ``QKᵀ``, softmax and
``PV`` unfused). The re-run ops write fresh ``rc.`` tensors that the layer's
backward reads, so the forward's copies die during the forward: only the
checkpoints (and, selective, what attention reads) stay live until the
backward.
Adam (mixed precision, Rajbhandari et al. 2020): fp32 master weights and two
fp32 moments, 12 bytes per parameter beside the weights and gradients. The update
reads the gradient, the master copy and the moments, writes them back and casts
the master into the 16-bit weight (written, not read).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

from hw_models.errors import Problem, SpecError
from workloads._builder import Builder, check_positive, resolve_options
from workloads.dtypes import element_bytes
from workloads.graph import Access, Collective, GemmShape, Graph, Op
from workloads.model_config import ModelConfig
from workloads.schedules import (
    SPLIT_SCHEDULES,
    check_schedule,
    chunk_devices,
    one_f_one_b,
    schedule_order,
)
from workloads.transformer import declare_weights, forward
from workloads.zero import ZERO_STAGES, apply_zero, grad_name

#: FLOPs of one Adam update per parameter (moments, bias corrections, sqrt, divide, decay)
ADAM_FLOPS_PER_PARAM = 12.0
#: fused attention backward FLOPs over forward FLOPs (5 matrix products for 2)
ATTENTION_BACKWARD_FACTOR = 2.5
FP32 = 4.0

Recompute = Literal["none", "selective", "full"]
Unit = tuple[str, int, int]  # ("F" | "B" | "W", model chunk, micro-batch)

__all__ = ["one_f_one_b", "train_step"]


def train_step(
    cfg: ModelConfig,
    *,
    batch: int,
    seq_len: int,
    micro_batches: int = 1,
    recompute: Recompute = "none",
    dp: int = 1,
    zero: int = 0,
    optimizer_unit: str | None = None,
    schedule: str = "1f1b",
    chunks: int | None = None,
    cp: int = 1,
    **options: Any,
) -> Graph:
    """One optimizer step over ``batch`` sequences of ``seq_len`` tokens.

    ``dp`` data-parallel ranks share the batch (the graph is one rank's share, SPMD)
    with ZeRO stage ``zero`` (0-3, :mod:`workloads.zero`); ``micro_batches`` splits a
    rank's share (it must divide it); with ``pp`` devices the work follows pipeline
    ``schedule`` (:mod:`workloads.schedules`: ``1f1b``, ``interleaved`` with ``chunks``
    model chunks per device, default 2, ``zb_h1``, ``v_min``, ``v_half``, ``v_zb``);
    the split schedules emit each backward's weight-gradient GEMMs as a separate unit
    (``attrs.pass == "W"``) that the schedule defers. ``optimizer_unit`` names a
    compute unit (``cpu``) that runs the Adam updates (their ``attrs.unit``): with the
    optimizer states placed in host memory this is ZeRO-Offload (Ren et al., USENIX
    ATC 2021): gradients go to the host, the update runs there, the updated weights
    come back. ``cp`` context-parallel ranks split every sequence (the graph is one
    rank's share, see :func:`_context_parallel`). Other keywords as for
    :func:`workloads.prefill`.
    """
    if optimizer_unit is not None:
        if not isinstance(optimizer_unit, str) or not optimizer_unit:
            raise SpecError([Problem("optimizer_unit", "expected a compute unit name")])
        inner = train_step(
            cfg,
            batch=batch,
            seq_len=seq_len,
            micro_batches=micro_batches,
            recompute=recompute,
            dp=dp,
            zero=zero,
            schedule=schedule,
            chunks=chunks,
            cp=cp,
            **options,
        )
        on_unit = tuple(
            replace(op, attrs={**op.attrs, "unit": optimizer_unit})
            if op.kind == "optimizer"
            else op
            for op in inner.ops
        )
        meta = {**inner.meta, "optimizer_unit": optimizer_unit}
        return Graph(tensors=inner.tensors, ops=on_unit, meta=meta, rebuild=inner.rebuild)
    check_positive(batch=batch, seq_len=seq_len, micro_batches=micro_batches, dp=dp, cp=cp)
    if cp > 1 and seq_len % (2 * cp):
        raise SpecError(
            [
                Problem(
                    "cp",
                    f"seq_len {seq_len} does not split into 2 x cp = {2 * cp} equal chunks "
                    "(the causal load balance)",
                )
            ]
        )
    if zero not in ZERO_STAGES:
        raise SpecError([Problem("zero", f"expected a ZeRO stage 0, 1, 2 or 3, found {zero!r}")])
    if batch % dp:
        raise SpecError([Problem("dp", f"{dp} ranks do not split batch {batch}")])
    if (batch // dp) % micro_batches:
        raise SpecError(
            [
                Problem(
                    "micro_batches",
                    f"{micro_batches} does not divide batch {batch}"
                    + (f" / dp {dp} = {batch // dp}" if dp > 1 else ""),
                )
            ]
        )
    if recompute not in ("none", "selective", "full"):
        raise SpecError(
            [Problem("recompute", f"unknown {recompute!r} (known: none, selective, full)")]
        )
    o = resolve_options(cfg, **options)
    if o.dtype in ("int8", "int4"):
        raise SpecError([Problem("dtype", f"cannot train with {o.dtype} weights")])
    mb_batch, pp, L = batch // dp // micro_batches, o.pp, cfg.num_hidden_layers
    per_device = check_schedule(schedule, pp=pp, chunks=chunks, micro_batches=micro_batches)
    n_chunks = pp * per_device
    if n_chunks > L:
        raise SpecError(
            [
                Problem(
                    "chunks" if per_device > 1 else "pp",
                    f"{pp} devices x {per_device} chunks = {n_chunks} model chunks "
                    f"need at least as many layers, found {L}",
                )
            ]
        )
    if cp > 1 and (cfg.architecture != "decoder" or o.attention == "unfused"):
        raise SpecError(
            [Problem("cp", "context parallelism needs a decoder model with fused attention")]
        )
    local_len = seq_len // cp
    b = Builder(cfg, o, per_layer_acts=True)
    devices = chunk_devices(schedule, pp=pp, chunks=per_device)
    chunk_of = [li * n_chunks // L for li in range(L)]
    b.stage_of = [devices[c] for c in chunk_of]
    b.head_stage = devices[-1]
    declare_weights(b)
    chunk_layers = [range(chunk_of.index(c), L - chunk_of[::-1].index(c)) for c in range(n_chunks)]
    split = schedule in SPLIT_SCHEDULES
    units: dict[Unit, list[Op]] = {}
    for m in range(micro_batches):
        b.mb, b.prefix = m, (f"m{m}." if micro_batches > 1 else "")
        versions = _Versions()
        for s in range(n_chunks):
            b.phase = "forward"
            start = len(b.ops)
            last = s == n_chunks - 1
            forward(
                b,
                batch=mb_batch,
                q_len=local_len,
                kv_len=local_len,
                logits="all",
                layers=chunk_layers[s],
                with_embed=s == 0,
                with_head=last,
            )
            if cp > 1:
                b.ops[start:] = _context_parallel(b, b.ops[start:], cp=cp, seq_len=seq_len)
            fwd = versions.rename(b, b.ops[start:])
            del b.ops[start:]
            if last and cfg.lm_head and cfg.architecture == "decoder":
                logits = f"{b.prefix}logits"  # its last version (all-gathered under tp)
                fwd.append(
                    _loss(b, logits=versions.current.get(logits, logits), rows=mb_batch * local_len)
                )
            units[("F", s, m)] = fwd
            b.phase = "backward"
            bwd = _backward(b, fwd, recompute=recompute)
            if split:
                units[("W", s, m)] = [
                    replace(op, attrs={**op.attrs, "pass": "W"})
                    for op in bwd
                    if _weight_grad(b, op)
                ]
                bwd = [op for op in bwd if not _weight_grad(b, op)]
            units[("B", s, m)] = bwd
            del b.ops[:]
    # context-parallel ranks hold partial weight gradients too: they reduce (and shard
    # states, with ZeRO) over dp x cp ranks, as Megatron folds cp into data parallelism
    apply_zero(b, units, dp=dp * cp, zero=zero, micro_batches=micro_batches)
    cost = {u: sum(op.flops for op in body) for u, body in units.items()}
    order = schedule_order(
        schedule, pp=pp, chunks=per_device, micro_batches=micro_batches, cost=cost
    )
    ops = _order(units, order, devices)
    _optimizer(b, ops, dp=dp * cp, zero=zero)
    meta = {
        "model": cfg.name,
        "kind": "train",
        "batch": batch,
        "seq_len": seq_len,
        "prompt_len": seq_len,
        "gen_len": 0,
        "micro_batches": micro_batches,
        "recompute": recompute,
        "dp": dp,
        "cp": cp,
        "zero": zero,
        "dtype": o.dtype,
        "kv_dtype": o.kv_dtype,
        "act_dtype": o.act_dtype,
        "tp": o.tp,
        "pp": pp,
        "schedule": schedule,
        "chunks": per_device,
        "attention": o.attention,
        "sram_bytes": o.sram_bytes,
        "params": cfg.params,
        "active_params": cfg.active_params,
        "tokens": batch * seq_len,
    }
    return Graph(tensors=b.tensors, ops=tuple(ops), meta=meta)


def _context_parallel(b: Builder, ops: list[Op], *, cp: int, seq_len: int) -> list[Op]:
    """One context-parallel rank's forward ops (built for its ``seq_len / cp`` tokens).

    Ring attention with the causal load balance of Megatron's context parallelism:
    the sequence is cut into ``2 cp`` chunks and rank ``i`` keeps chunks ``i`` and
    ``2 cp - 1 - i``, so every rank computes exactly ``1/cp`` of the causal pairs,
    ``s (s + 1) / (2 cp)``; its attention FLOPs are scaled from the local causal
    ``l (l + 1) / 2`` pairs it was built with (``l = s / cp``). Before each layer's
    attention a ring passes K and V around the ``cp`` ranks: ``cp - 1`` steps, each
    sending the rank's ``l`` tokens of K and V, ``(cp - 1)/cp`` of the whole
    sequence's K/V bytes per rank per layer (a ``send_recv`` over group ``cp``,
    ``attrs.cp == "kv"``). The backward mirrors it (dK, dV travel back) and runs it
    again to bring K and V back (only the local shard is saved): twice the bytes.
    K/V stay the local shard in memory (blocks stream through the ring); the
    attention op's HBM traffic stays that of the local shard (an approximation).
    """
    local = seq_len // cp
    factor = (seq_len * (seq_len + 1) / (2 * cp)) / (local * (local + 1) / 2)
    out: list[Op] = []
    for op in ops:
        if op.kind == "attention":
            kv = [a for a in op.reads if a.tensor.endswith(("k_cache", "v_cache"))]
            nbytes = sum(a.bytes for a in kv)
            out.append(
                Op(
                    name=f"{b.prefix}L{op.layer}.cp_ring",
                    kind="collective",
                    reads=tuple(kv),
                    writes=tuple(kv),
                    collective=Collective(kind="send_recv", bytes=(cp - 1) * nbytes, group=cp),
                    layer=op.layer,
                    phase=op.phase,
                    stage=op.stage,
                    micro_batch=op.micro_batch,
                    dtype=op.dtype,
                    attrs={"cp": "kv"},
                )
            )
            op = replace(op, flops=op.flops * factor)
        out.append(op)
    return out


def _weight_grad(b: Builder, op: Op) -> bool:
    """Whether ``op`` is a weight-gradient GEMM (``dW = Xᵀ dY`` of a weight), a W pass."""
    return (
        op.kind == "gemm"
        and op.name.endswith(".dw")
        and any(
            b.tensors[a.tensor].kind == "gradient" and a.tensor.startswith("grad.")
            for a in op.writes
        )
    )


def _loss(b: Builder, *, logits: str, rows: int) -> Op:
    """Fused softmax cross-entropy: reads the logits, writes their gradient."""
    nbytes = rows * b.V * b.ea
    grad = b.tensor(f"d.{logits}", nbytes, "gradient")
    op = b.op(
        "loss",
        "softmax",
        flops=5.0 * rows * b.V,
        reads=(b.acc(logits, nbytes),),
        writes=(b.acc(grad, nbytes),),
    )
    b.ops.pop()
    return op


def _grad(b: Builder, name: str) -> str:
    """The gradient tensor of ``name`` (``grad.W`` for weights, ``d.X`` for activations)."""
    t = b.tensors[name]
    if t.kind == "weight":
        gname = f"grad.{name}"
        if gname not in b.tensors:
            params = math.prod(t.shape) if t.shape else t.bytes / element_bytes(t.dtype)
            b.tensor(gname, params * b.ea, "gradient", layer=t.layer, stage=t.stage)
        return gname
    gname = name if name.startswith("d.") else f"d.{name}"
    b.tensor(gname, t.bytes, "gradient", layer=t.layer, stage=t.stage)
    return gname


class _Versions:
    """Renames re-writes of activations so that each version is its own tensor.

    One instance per micro-batch, fed the forward ops of its stages in order: a
    read refers to the latest version of a tensor; a write of a non-persistent
    tensor that was read since it was last written (an in-place update, or a
    buffer reused once consumed) makes the next version (``resid``, ``resid#1``,
    ...). Writes with no read in between (experts filling their rows of one
    output) stay one tensor.
    """

    def __init__(self) -> None:
        self.current: dict[str, str] = {}
        self.count: dict[str, int] = {}
        self.read: set[str] = set()  # tensors read since their last write

    def rename(self, b: Builder, ops: list[Op]) -> list[Op]:
        """``ops`` reading and writing versions (new version tensors declared in ``b``)."""
        out: list[Op] = []
        for op in ops:
            reads = tuple(b.acc(self.current.get(a.tensor, a.tensor), a.bytes) for a in op.reads)
            self.read.update(a.tensor for a in op.reads)
            writes: list[Access] = []
            for a in op.writes:
                t = b.tensors[a.tensor]
                if a.tensor in self.current and a.tensor in self.read and not t.persistent:
                    k = self.count[a.tensor] = self.count.get(a.tensor, 0) + 1
                    self.current[a.tensor] = b.tensor(
                        f"{a.tensor}#{k}",
                        t.bytes,
                        t.kind,
                        dtype=t.dtype,
                        shape=t.shape,
                        layer=op.layer,
                        stage=op.stage,
                    )
                else:
                    self.current.setdefault(a.tensor, a.tensor)
                self.read.discard(a.tensor)
                writes.append(b.acc(self.current[a.tensor], a.bytes))
            if reads != op.reads or tuple(writes) != op.writes:
                op = _copy(op, reads=reads, writes=tuple(writes))
            out.append(op)
        return out


def _base(name: str) -> str:
    """The tensor ``name`` is a version of (``resid#3`` -> ``resid``)."""
    return name.split("#", 1)[0]


def _norm_sum(op: Op) -> Access | None:
    """The residual sum a fused add-and-norm wrote (a new version of what it read), if any."""
    if op.kind != "norm" or not op.reads:
        return None
    x = _base(op.reads[0].tensor)
    return next((a for a in op.writes if _base(a.tensor) == x), None)


def _recomputed(op: Op, recompute: Recompute) -> bool:
    if op.attrs.get("sp") == "all_gather" or op.attrs.get("cp") == "kv":
        return True  # sequence / context parallelism save only the local shard
    if recompute == "none":
        return False
    if recompute == "full":
        return not (op.collective is not None and op.collective.kind == "send_recv")
    return op.kind == "attention" or op.name.endswith(("attn_qk", "attn_softmax", "attn_pv"))


def _recompute(
    b: Builder, layer_ops: list[Op], recompute: Recompute
) -> tuple[list[Op], dict[str, str]]:
    """Re-run ops of one layer (forward order) writing ``rc.`` tensors; returns them and
    the map from each re-created tensor to its ``rc.`` twin."""
    rc: dict[str, str] = {}
    out: list[Op] = []
    for i, op in enumerate(o for o in layer_ops if _recomputed(o, recompute)):
        reads = tuple(b.acc(rc.get(a.tensor, a.tensor), a.bytes) for a in op.reads)
        flops = op.flops
        boundary = _norm_sum(op) if i == 0 and recompute == "full" else None
        if boundary is not None:  # checkpoint: the layer's input, the residual sum
            adds = len(op.reads) - 2
            reads = (boundary, op.reads[-1])
            flops -= adds * boundary.bytes / b.ea  # the adds are not re-done
        writes: list[Access] = []
        for a in op.writes:
            if boundary is not None and a.tensor == boundary.tensor:
                continue
            t = b.tensors[a.tensor]
            rc[a.tensor] = b.tensor(
                f"rc.{a.tensor}",
                t.bytes,
                t.kind,
                dtype=t.dtype,
                shape=t.shape,
                layer=t.layer,
                stage=t.stage,
            )
            writes.append(b.acc(rc[a.tensor], a.bytes))
        out.append(
            _copy(
                op,
                phase="backward",
                flops=flops,
                reads=reads,
                writes=tuple(writes),
                deps=None,
                attrs={**op.attrs, "recompute": True},
            )
        )
    return out, rc


def _backward(b: Builder, fwd: list[Op], *, recompute: Recompute) -> list[Op]:
    """Backward ops of a forward unit, layer by layer in reverse, with recomputation."""
    out: list[Op] = []
    by_layer: dict[int | None, list[Op]] = {}
    for op in fwd:
        by_layer.setdefault(op.layer, []).append(op)
    rc: dict[str, str] = {}
    current: int | None = None
    # sequence / context parallelism re-gather what they saved as a shard
    reshare = any(op.attrs.get("sp") == "all_gather" or op.attrs.get("cp") for op in fwd)
    for op in reversed(fwd):
        if op.layer != current:
            current, rc = op.layer, {}
            if op.layer is not None and (recompute != "none" or reshare):
                copies, rc = _recompute(b, by_layer[op.layer], recompute)
                out.extend(copies)
        if op.name.endswith("loss") or not op.reads:
            continue  # the loss wrote its gradient; an op without inputs has none
        for bop in _backward_op(b, op):
            if rc and any(a.tensor in rc for a in bop.reads):
                reads = tuple(b.acc(rc.get(a.tensor, a.tensor), a.bytes) for a in bop.reads)
                bop = _copy(bop, reads=reads)
            out.append(bop)
    return out


def _copy(op: Op, **changes: Any) -> Op:
    return replace(op, **changes)


#: the collective that carries a collective's gradient back
_MIRROR = {"all_gather": "reduce_scatter", "reduce_scatter": "all_gather"}


def _backward_op(b: Builder, op: Op) -> list[Op]:
    acc, kind = b.acc, b.tensors
    base: dict[str, Any] = {
        "layer": op.layer,
        "phase": "backward",
        "stage": op.stage,
        "micro_batch": op.micro_batch,
        "dtype": op.dtype,
    }
    name = f"{op.name}.bwd"
    if op.kind == "collective":  # the gradient of what it wrote comes back to what it read
        coll = op.collective
        if coll is not None and coll.kind in _MIRROR:  # all-gather <-> reduce-scatter
            coll = replace(coll, kind=_MIRROR[coll.kind])  # type: ignore[arg-type]
        return [
            Op(
                name=name,
                kind="collective",
                reads=tuple(acc(_grad(b, a.tensor), a.bytes) for a in op.writes),
                writes=tuple(acc(_grad(b, a.tensor), a.bytes) for a in op.reads),
                collective=coll,
                **base,
            )
        ]
    d_out = tuple(acc(_grad(b, a.tensor), a.bytes) for a in op.writes)
    if op.kind == "gemm" and op.gemm is not None and len(op.reads) == 2:
        x, w = op.reads
        g = op.gemm
        w_is_weight = kind[w.tensor].kind == "weight"
        dx = Op(
            name=f"{name}.dx",
            kind="gemm",
            flops=op.flops,
            reads=(*d_out, w),
            writes=(acc(_grad(b, x.tensor), x.bytes),),
            gemm=GemmShape(m=g.m, n=g.k, k=g.n, batch=g.batch),
            **base,
        )
        gw = _grad(b, w.tensor)
        w_bytes = b.tensors[gw].bytes * (w.bytes / kind[w.tensor].bytes) if w_is_weight else w.bytes
        reads_w = (x, *d_out)
        if w_is_weight and op.micro_batch > 0:  # accumulate into the gradient
            reads_w += (acc(gw, w_bytes),)
        dw = Op(
            name=f"{name}.dw",
            kind="gemm",
            flops=op.flops,
            reads=reads_w,
            writes=(acc(gw, w_bytes),),
            gemm=GemmShape(m=g.k, n=g.n, k=g.m, batch=g.batch),
            **base,
        )
        return [dx, dw]
    if op.kind == "attention":
        o_acc = op.writes[0]
        reads = (*(a for a in op.reads if a.tensor != o_acc.tensor), o_acc, *d_out)
        grads = tuple(
            acc(_grad(b, a.tensor), a.bytes)
            for a in op.reads
            if a.tensor != o_acc.tensor and kind[a.tensor].kind != "weight"
        )
        return [
            Op(
                name=name,
                kind="attention",
                flops=ATTENTION_BACKWARD_FACTOR * op.flops,
                reads=reads,
                writes=grads,
                attrs=op.attrs,
                **base,
            )
        ]
    saved, inputs = op.reads, op.reads
    total = _norm_sum(op)
    if total is not None:  # the sum it wrote, and its weight
        saved = (total, op.reads[-1])
    elif op.kind == "rope" and len(op.reads) > 2:  # a rotation: only cos/sin, no table gradient
        saved, inputs = op.reads[2:], op.reads[:2]
    writes: list[Access] = []
    for a in inputs:
        t = kind[a.tensor]
        if t.kind == "input":
            continue
        if t.kind == "weight":
            gw = _grad(b, a.tensor)
            writes.append(acc(gw, b.tensors[gw].bytes * a.bytes / t.bytes))
        else:
            writes.append(acc(_grad(b, a.tensor), a.bytes))
    flops = (op.flops if op.kind == "embedding" else 2.0 * op.flops) or 0.0
    if op.kind == "embedding":
        flops = sum(a.bytes for a in d_out) / b.ea  # scatter-add of the rows' gradients
    return [
        Op(
            name=name,
            kind=op.kind,
            flops=flops,
            reads=(*saved, *d_out),
            writes=tuple(writes),
            **base,
        )
    ]


def _order(units: dict[Unit, list[Op]], schedule: list[list[Unit]], devices: list[int]) -> list[Op]:
    """Lay units out in a topological order of the per-device ``schedule``, with explicit
    deps: a unit's first op waits for the device's previous unit and for the units whose
    data it needs (the previous chunk's forward, the next chunk's backward, its own
    forward; a W its B). A schedule that reads data before it is made never finishes:
    RuntimeError."""
    ops: list[Op] = []
    last: dict[Unit, int | None] = {}
    pos = [0] * len(schedule)
    stage_last: list[int | None] = [None] * len(schedule)
    n_chunks = len(devices)
    remaining = sum(len(s) for s in schedule)
    while remaining:
        progressed = False
        for s, seq in enumerate(schedule):
            if pos[s] >= len(seq):
                continue
            kind, c, m = unit = seq[pos[s]]
            if devices[c] != s:
                raise RuntimeError(f"unit {unit} scheduled on device {s}, not its chunk's")
            needs: list[Unit] = []
            if kind == "F" and c > 0:
                needs.append(("F", c - 1, m))
            elif kind == "B":
                needs.append(("F", c, m))
                if c + 1 < n_chunks:
                    needs.append(("B", c + 1, m))
            elif kind == "W":
                needs.append(("B", c, m))
            if any(n not in last for n in needs):
                continue
            deps = tuple(
                sorted({d for d in (stage_last[s], *(last[n] for n in needs)) if d is not None})
            )
            body = units[unit]
            start = len(ops)
            for i, op in enumerate(body):
                ops.append(_copy(op, deps=deps) if i == 0 else op)
            if body:
                stage_last[s] = start + len(body) - 1
            last[unit] = stage_last[s]
            pos[s] += 1
            remaining -= 1
            progressed = True
        if not progressed:
            raise RuntimeError("pipeline schedule deadlocked (a unit waits for data never made)")
    return ops


def _optimizer(b: Builder, ops: list[Op], *, dp: int = 1, zero: int = 0) -> None:
    """One Adam update per layer (and one for other weights) after the stage's last backward.

    With ZeRO stage >= 1 a rank updates its ``1/dp`` shard (its optimizer states and
    gradient shard, its part of the weights); at stages 1 and 2 it then all-gathers
    the layer's updated weights (at stage 3 each rank keeps only its shard).
    """
    mixed = b.o.dtype != "fp32"
    part = dp if zero >= 1 else 1  # the share of a layer's parameters a rank updates
    groups: dict[tuple[int, int | None], list[str]] = {}
    for t in list(b.tensors.values()):
        if t.kind == "weight" and not t.name.endswith("ffn_cache"):
            groups.setdefault((t.stage, t.layer), []).append(t.name)
    last_of_stage = {op.stage: i for i, op in enumerate(ops)}
    prev: dict[int, int] = {}
    for (stage, layer), names in sorted(
        groups.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])
    ):
        reads: list[Access] = []
        writes: list[Access] = []
        gathered: list[tuple[str, float]] = []  # (weight, whole bytes) to all-gather
        params = 0.0
        for n in names:
            t = b.tensors[n]
            whole = t.bytes * (dp if zero == 3 else 1)  # stage 3 keeps a shard only
            p = (math.prod(t.shape) if t.shape else whole / element_bytes(t.dtype)) / part
            params += p
            g = grad_name(f"grad.{n}", zero=zero)
            if g not in b.tensors:  # a weight the backward left without gradient
                g = _grad(b, n) if zero == 0 else b.tensor(g, p * b.ea, "gradient", layer=t.layer)
            states = ["m", "v"] + (["master"] if mixed else [])
            # mixed precision updates the fp32 master copy and casts it into the 16-bit
            # weight, which is only written (ZeRO-Offload: 2 psi of gradients go to the
            # host, 2 psi of weights come back); in fp32 the weight is the master
            if not mixed:
                reads.append(b.acc(n, whole / part))
            reads.append(b.acc(g, b.tensors[g].bytes))
            writes.append(b.acc(n, whole / part))
            if zero in (1, 2) and dp > 1:
                gathered.append((n, whole))
            for st in states:
                sn = b.tensor(
                    f"opt.{st}.{n}", p * FP32, "optimizer", dtype="fp32", layer=t.layer, stage=stage
                )
                reads.append(b.acc(sn, p * FP32))
                writes.append(b.acc(sn, p * FP32))
        dep = prev.get(stage, last_of_stage.get(stage, -1))
        label = "L" + str(layer) if layer is not None else "other"
        ops.append(
            Op(
                name=f"optimizer.{label}",
                kind="optimizer",
                flops=ADAM_FLOPS_PER_PARAM * params,
                reads=tuple(reads),
                writes=tuple(writes),
                dtype="fp32",
                layer=layer,
                phase="optimizer",
                stage=stage,
                deps=(dep,) if dep >= 0 else (),
            )
        )
        if gathered:
            ops.append(
                Op(
                    name=f"optimizer.{label}.all_gather",
                    kind="collective",
                    collective=Collective(
                        kind="all_gather", bytes=sum(w for _, w in gathered), group=dp
                    ),
                    reads=tuple(b.acc(n, w / dp) for n, w in gathered),
                    writes=tuple(b.acc(n, w) for n, w in gathered),
                    layer=layer,
                    phase="optimizer",
                    stage=stage,
                    deps=(len(ops) - 1,),
                )
            )
        prev[stage] = len(ops) - 1
