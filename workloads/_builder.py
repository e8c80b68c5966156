"""The op emitter behind every builder: one forward pass of a transformer as ops.

The accounting (documented with its derivation in ``docs/workloads.md``) follows
what an eager PyTorch implementation such as Hugging Face's moves when every
GEMM, embedding and attention call is its own kernel and the pointwise work
between two of them is one fused kernel (a residual add is fused into the next
norm, RoPE is one kernel, SiLU-and-multiply is one kernel). Intermediate tensors
of a fused kernel stay on chip; everything a kernel reads or writes goes to the
tensor's home tier.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from hw_models.errors import Problem, SpecError
from workloads.attention import (
    AttentionShape,
    AttentionTraffic,
    get_attention,
    sparse_traffic,
)
from workloads.dtypes import (
    Quantization,
    check_dtype,
    default_act_dtype,
    default_compute_dtype,
    element_bytes,
)
from workloads.graph import Access, Collective, GemmShape, Op, Phase, Tensor
from workloads.model_config import ModelConfig
from workloads.moe import expert_loads
from workloads.options import FFNSparsity, KVBudget, MoERouting, SparsePrefill

#: FLOPs of RMSNorm per element (square, mean, scale, gain) plus 2 per row (eps, rsqrt)
RMSNORM_FLOPS_PER_ELEMENT = 4.0
#: LayerNorm per element: mean, subtract, square, mean, scale, gain, bias
LAYERNORM_FLOPS_PER_ELEMENT = 7.0
#: RoPE per element: x*cos, -x2 on half (0.5), rotate*sin, add
ROPE_FLOPS_PER_ELEMENT = 3.5
#: cos/sin table per element: angles on half (0.5), cos, sin, and two scalings
ROPE_TABLE_FLOPS_PER_ELEMENT = 4.5
#: token ids are int64 as in PyTorch
ID_BYTES = 8.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Resolved builder options (dtypes, parallelism, attention model, memory savers)."""

    dtype: str = "bf16"
    act_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    compute_dtype: str = "bf16"
    quant: Quantization = field(default_factory=Quantization)
    tp: int = 1
    pp: int = 1
    sequence_parallel: bool = False
    attention: str = "fused"
    sram_bytes: float | None = None
    kv_budget: KVBudget | None = None
    ffn_sparsity: FFNSparsity | None = None
    moe: MoERouting = field(default_factory=MoERouting)
    sparse_prefill: SparsePrefill | None = None


def resolve_options(cfg: ModelConfig, **options: Any) -> Options:
    """Check the builder keywords against ``cfg`` and fill the defaults.

    An unknown keyword (a misspelt option) is a :class:`SpecError` naming it and the
    closest known option, not a ``TypeError``.
    """
    known = _OPTION_NAMES
    unknown = [k for k in options if k not in known]
    if unknown:
        problems = []
        for k in unknown:
            close = difflib.get_close_matches(k, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                Problem(k, f"unknown builder option {k!r}{hint} (known: {', '.join(known)})")
            )
        raise SpecError(problems)
    return _resolve_options(cfg, **options)


def _resolve_options(
    cfg: ModelConfig,
    *,
    dtype: str = "bf16",
    kv_dtype: str | None = None,
    act_dtype: str | None = None,
    tp: int = 1,
    pp: int = 1,
    sequence_parallel: bool = False,
    attention: str = "fused",
    sram_bytes: float | None = None,
    kv_budget: KVBudget | None = None,
    ffn_sparsity: FFNSparsity | None = None,
    moe: MoERouting | None = None,
    sparse_prefill: SparsePrefill | None = None,
    quant_group_size: int = 128,
    quant_zero_point: bool = False,
) -> Options:
    check_dtype(dtype, field="dtype")
    act = act_dtype or default_act_dtype(dtype)
    check_dtype(act, field="act_dtype")
    kv = kv_dtype or act
    check_dtype(kv, field="kv_dtype")
    get_attention(attention)
    problems: list[Problem] = []
    if tp < 1:
        problems.append(Problem("tp", f"expected >= 1, found {tp}"))
    else:
        if cfg.num_attention_heads % tp:
            problems.append(
                Problem(
                    "tp", f"{cfg.num_attention_heads} attention heads do not split over tp={tp}"
                )
            )
        if cfg.intermediate_size % tp:
            problems.append(
                Problem(
                    "tp", f"intermediate_size {cfg.intermediate_size} does not split over tp={tp}"
                )
            )
        if cfg.kv_heads % tp and tp % cfg.kv_heads:
            problems.append(Problem("tp", f"{cfg.kv_heads} KV heads do not split over tp={tp}"))
    if pp < 1 or pp > cfg.num_hidden_layers:
        problems.append(Problem("pp", f"expected 1..{cfg.num_hidden_layers} stages, found {pp}"))
    if not isinstance(sequence_parallel, bool):
        problems.append(
            Problem("sequence_parallel", f"expected true or false, found {sequence_parallel!r}")
        )
    elif sequence_parallel and (cfg.architecture != "decoder" or cfg.parallel_attn or cfg.is_moe):
        problems.append(
            Problem(
                "sequence_parallel",
                "supported for decoder models with sequential attention and dense FFN "
                f"({cfg.name} is not)",
            )
        )
    if sram_bytes is not None and not sram_bytes > 0:
        problems.append(Problem("sram_bytes", f"expected > 0 or None, found {sram_bytes}"))
    if problems:
        raise SpecError(problems)
    return Options(
        dtype=dtype,
        act_dtype=act,
        kv_dtype=kv,
        compute_dtype=default_compute_dtype(dtype, act),
        quant=Quantization(dtype=dtype, group_size=quant_group_size, zero_point=quant_zero_point),
        tp=tp,
        pp=pp,
        sequence_parallel=sequence_parallel,
        attention=attention,
        sram_bytes=sram_bytes,
        kv_budget=kv_budget,
        ffn_sparsity=ffn_sparsity,
        moe=moe or MoERouting(),
        sparse_prefill=sparse_prefill,
    )


#: every keyword a builder accepts besides its own sizes (batch, lengths, ...)
_OPTION_NAMES: tuple[str, ...] = tuple(
    p.name
    for p in inspect.signature(_resolve_options).parameters.values()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)


def check_positive(**values: int) -> None:
    """SpecError naming every argument that is not a positive integer."""
    bad = [Problem(k, f"expected an integer > 0, found {v!r}") for k, v in values.items()]
    bad = [
        p for p, v in zip(bad, values.values(), strict=True) if not (isinstance(v, int) and v > 0)
    ]
    if bad:
        raise SpecError(bad)


Regen = Callable[[int, int], list[Op]]


class Builder:
    """Accumulates tensors and ops; one instance per graph."""

    def __init__(self, cfg: ModelConfig, opts: Options, *, per_layer_acts: bool = False) -> None:
        self.cfg, self.o = cfg, opts
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.per_layer_acts = per_layer_acts
        self._acc: dict[tuple[str, float], Access] = {}
        self._attn_cache: dict[tuple[AttentionShape, float | None], AttentionTraffic] = {}
        self.slots: list[tuple[int, int, Regen]] = []  # ops re-made per decode step
        tp = opts.tp
        self.H = cfg.num_attention_heads // tp
        self.KV = cfg.kv_heads // tp if cfg.kv_heads % tp == 0 else 1
        self.d = cfg.d_head
        self.h = cfg.hidden_size
        self.f = cfg.intermediate_size // tp
        self.V = math.ceil(cfg.vocab_size / tp)
        self.ew = opts.quant.bytes_per_weight
        self.ea = element_bytes(opts.act_dtype)
        self.ekv = element_bytes(opts.kv_dtype)
        L = cfg.num_hidden_layers
        self.stage_of = [li * opts.pp // L for li in range(L)]
        self.head_stage = opts.pp - 1  # the device of the final norm and LM head
        # context of the ops being emitted
        self.phase: Phase = "prefill"
        self.step = 0
        self.mb = 0
        self.prefix = ""
        self.nolayer_stage = 0  # stage of ops outside the layers (embedding 0, head last)
        self.traffic = get_attention(opts.attention)

    # ----- tensors and accesses ----------------------------------------------------------
    def tensor(
        self,
        name: str,
        nbytes: float,
        kind: Any,
        *,
        dtype: str | None = None,
        shape: tuple[int, ...] = (),
        layer: int | None = None,
        stage: int = 0,
    ) -> str:
        """Declare a tensor (or grow it to ``nbytes``); returns its name."""
        old = self.tensors.get(name)
        if old is None or old.bytes < nbytes:
            self.tensors[name] = Tensor(
                name=name,
                bytes=float(nbytes),
                kind=kind,
                dtype=dtype or self.o.act_dtype,
                shape=shape,
                layer=layer,
                stage=stage,
            )
        return name

    def act(
        self, base: str, nbytes: float, *, layer: int | None = None, kind: Any = "activation"
    ) -> str:
        """An activation buffer: shared by all layers, or per layer when training."""
        if self.per_layer_acts and layer is not None:
            name = f"{self.prefix}L{layer}.{base}"
        else:
            name = f"{self.prefix}{base}"
        stage = self.stage_of[layer] if layer is not None else 0
        return self.tensor(name, nbytes, kind, layer=layer, stage=stage)

    def acc(self, name: str, nbytes: float) -> Access:
        """A (cached) :class:`Access`."""
        key = (name, nbytes)
        a = self._acc.get(key)
        if a is None:
            a = self._acc[key] = Access(tensor=name, bytes=float(nbytes))
        return a

    def op(
        self,
        name: str,
        kind: Any,
        *,
        flops: float = 0.0,
        reads: tuple[Access, ...] = (),
        writes: tuple[Access, ...] = (),
        layer: int | None = None,
        gemm: GemmShape | None = None,
        collective: Collective | None = None,
        dtype: str | None = None,
        stage: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> Op:
        """Append an op in the current phase/step/micro-batch context."""
        if stage is None:
            stage = self.stage_of[layer] if layer is not None else self.nolayer_stage
        kw: dict[str, Any] = {}
        if attrs:
            kw["attrs"] = attrs
        op = Op(
            name=f"{self.prefix}{name}",
            kind=kind,
            flops=float(flops),
            reads=reads,
            writes=writes,
            dtype=dtype or self.o.act_dtype,
            gemm=gemm,
            collective=collective,
            layer=layer,
            phase=self.phase,
            step=self.step,
            stage=stage,
            micro_batch=self.mb,
            **kw,
        )
        self.ops.append(op)
        return op

    # ----- weights -----------------------------------------------------------------------
    def weight(self, name: str, k: int, n: int, *, layer: int | None, bias: bool = False) -> float:
        """Declare a (k x n) linear weight (quantized if the dtype says so); returns its bytes."""
        nbytes = k * n * self.ew + (n * self.ea if bias else 0.0)
        stage = self.stage_of[layer] if layer is not None else self.head_stage
        self.tensor(
            name, nbytes, "weight", dtype=self.o.dtype, shape=(k, n), layer=layer, stage=stage
        )
        return nbytes

    def plain_weight(self, name: str, numel: float, *, layer: int | None, stage: int = 0) -> float:
        """A weight kept in the activation dtype (norms, embeddings of quantized models)."""
        dtype = self.o.dtype if self.o.dtype in ("fp32", "bf16", "fp16") else self.o.act_dtype
        nbytes = numel * element_bytes(dtype)
        if layer is not None:
            stage = self.stage_of[layer]
        self.tensor(
            name, nbytes, "weight", dtype=dtype, shape=(int(numel),), layer=layer, stage=stage
        )
        return nbytes

    # ----- building blocks ---------------------------------------------------------------
    def gemm(
        self,
        name: str,
        *,
        x: str,
        w: str,
        out: str,
        m: float,
        n: int,
        k: int,
        w_bytes: float,
        layer: int | None,
        out_bytes: float | None = None,
        x_bytes: float | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> Op:
        """``out (m x n) = x (m x k) @ w (k x n)``: reads x and w, writes out."""
        ea = self.ea
        return self.op(
            name,
            "gemm",
            flops=2.0 * m * n * k,
            reads=(self.acc(x, m * k * ea if x_bytes is None else x_bytes), self.acc(w, w_bytes)),
            writes=(self.acc(out, m * n * ea if out_bytes is None else out_bytes),),
            gemm=GemmShape(m=max(1, round(m)), n=n, k=k),
            layer=layer,
            dtype=self.o.compute_dtype,
            attrs=attrs,
        )

    def norm_flops(self, rows: float) -> float:
        """FLOPs of one norm over ``rows`` rows of ``hidden_size``."""
        if self.cfg.norm == "rmsnorm":
            return rows * (RMSNORM_FLOPS_PER_ELEMENT * self.h + 2.0)
        return rows * LAYERNORM_FLOPS_PER_ELEMENT * self.h

    def norm(
        self,
        name: str,
        *,
        adds: tuple[str, ...],
        resid: str,
        out: str | None,
        w: str,
        w_bytes: float,
        rows: float,
        layer: int | None,
        write_resid: bool = True,
    ) -> Op:
        """(residual add of ``adds`` +) norm; writes the new residual and the normed output."""
        row_bytes = rows * self.h * self.ea
        reads = (self.acc(resid, row_bytes), *(self.acc(a, row_bytes) for a in adds))
        writes: tuple[Access, ...] = ()
        if adds and write_resid:
            writes += (self.acc(resid, row_bytes),)
        if out is not None:
            writes += (self.acc(out, row_bytes),)
        return self.op(
            name,
            "norm",
            flops=self.norm_flops(rows) + len(adds) * rows * self.h,
            reads=(*reads, self.acc(w, w_bytes)),
            writes=writes,
            layer=layer,
        )

    def collective(
        self, name: str, kind: Any, tensor: str, nbytes: float, *, layer: int | None, group: int
    ) -> Op:
        """A collective over ``nbytes`` per device, in place on ``tensor``."""
        a = self.acc(tensor, nbytes)
        return self.op(
            name,
            "collective",
            reads=(a,),
            writes=(a,),
            collective=Collective(kind=kind, bytes=float(nbytes), group=group),
            layer=layer,
        )

    # ----- attention ---------------------------------------------------------------------
    def attention_traffic(self, shape: AttentionShape) -> AttentionTraffic:
        """Traffic of one attention call under the chosen model (cached per shape).

        With ``sparse_prefill``, a call of several queries computes only a fraction
        of its scores (:func:`workloads.attention.sparse_traffic`).
        """
        key = (shape, self.o.sram_bytes)
        t = self._attn_cache.get(key)
        if t is None:
            t = self.traffic(shape, self.o.sram_bytes)
            sp = self.o.sparse_prefill
            if sp is not None and shape.q_len > 1:
                t = sparse_traffic(
                    t, shape, sp.fraction(shape.q_len, shape.kv_len, causal=shape.causal)
                )
            self._attn_cache[key] = t
        return t

    def attention(
        self,
        li: int,
        *,
        batch: int,
        q_len: int,
        kv_len: int,
        q: str,
        k: str,
        v: str,
        causal: bool,
    ) -> list[Op]:
        """The attention op(s) of layer ``li``: one fused op, or QKᵀ, softmax, PV unfused."""
        shape = AttentionShape(
            batch=batch,
            heads=self.H,
            kv_heads=self.KV,
            head_dim=self.d,
            q_len=q_len,
            kv_len=kv_len,
            causal=causal,
            act_bytes=self.ea,
            kv_bytes=self.ekv,
        )
        t = self.attention_traffic(shape)
        out = self.act("attn_out", batch * q_len * self.H * self.d * self.ea, layer=li)
        attrs = {"q_len": q_len, "kv_len": kv_len, "attention": self.o.attention}
        acc = self.acc
        if self.o.attention != "unfused":
            stats_bytes = batch * self.H * q_len * 8.0
            return [self._fused_attention(li, t, q, k, v, out, stats_bytes, attrs)]
        bh = batch * self.H
        scores = self.act("attn_scores", t.scores_written, layer=li)
        probs = self.act("attn_probs", t.probs_written, layer=li)
        half = t.flops / 2.0
        return [
            self.op(
                f"L{li}.attn_qk",
                "gemm",
                flops=half,
                reads=(acc(q, t.q_read), acc(k, t.k_read)),
                writes=(acc(scores, t.scores_written),),
                gemm=GemmShape(m=q_len, n=kv_len, k=self.d, batch=bh),
                layer=li,
                attrs=attrs,
            ),
            self.op(
                f"L{li}.attn_softmax",
                "softmax",
                flops=t.softmax_flops,
                reads=(acc(scores, t.scores_read),),
                writes=(acc(probs, t.probs_written),),
                layer=li,
                attrs=attrs,
            ),
            self.op(
                f"L{li}.attn_pv",
                "gemm",
                flops=half,
                reads=(acc(probs, t.probs_read), acc(v, t.v_read)),
                writes=(acc(out, t.o_written),),
                gemm=GemmShape(m=q_len, n=self.d, k=kv_len, batch=bh),
                layer=li,
                attrs=attrs,
            ),
        ]

    def _fused_attention(
        self,
        li: int,
        t: AttentionTraffic,
        q: str,
        k: str,
        v: str,
        out: str,
        stats_bytes: float,
        attrs: dict[str, Any],
    ) -> Op:
        acc = self.acc
        reads = [acc(q, t.q_read), acc(k, t.k_read), acc(v, t.v_read)]
        writes = [acc(out, t.o_written)]
        if t.o_read:
            reads.append(acc(out, t.o_read))
        if t.stats_written:
            stats = self.act("attn_stats", stats_bytes, layer=li)
            reads.append(acc(stats, t.stats_read))
            writes.append(acc(stats, t.stats_written))
        return self.op(
            f"L{li}.attention",
            "attention",
            flops=t.flops,
            reads=tuple(reads),
            writes=tuple(writes),
            layer=li,
            attrs=attrs,
        )

    def attention_groups(
        self,
        li: int,
        groups: tuple[tuple[int, int, int], ...],
        *,
        q: str,
        k: str,
        v: str,
        causal: bool,
    ) -> list[Op]:
        """Attention of sequences at different positions (``(count, q_len, kv_len)`` groups).

        Fused attention is one kernel over the whole batch (as vLLM's paged
        attention and FlashAttention's variable-length kernel are): one op whose
        bytes and FLOPs are the sums of each group's. Unfused attention is
        emitted per group.
        """
        if self.o.attention == "unfused":
            ops: list[Op] = []
            for count, q_len, kv_len in groups:
                ops += self.attention(
                    li, batch=count, q_len=q_len, kv_len=kv_len, q=q, k=k, v=v, causal=causal
                )
            return ops
        parts = [
            self.attention_traffic(
                AttentionShape(
                    batch=count,
                    heads=self.H,
                    kv_heads=self.KV,
                    head_dim=self.d,
                    q_len=q_len,
                    kv_len=kv_len,
                    causal=causal,
                    act_bytes=self.ea,
                    kv_bytes=self.ekv,
                )
            )
            for count, q_len, kv_len in groups
        ]
        total = AttentionTraffic(
            **{f.name: sum(getattr(p, f.name) for p in parts) for f in fields(AttentionTraffic)}
        )
        rows = sum(c * q for c, q, _ in groups)
        out = self.act("attn_out", rows * self.H * self.d * self.ea, layer=li)
        attrs = {
            "q_len": max(q for _, q, _ in groups),
            "kv_len": max(kv for _, _, kv in groups),
            "sequences": sum(c for c, _, _ in groups),
            "attention": self.o.attention,
        }
        return [self._fused_attention(li, total, q, k, v, out, rows * self.H * 8.0, attrs)]

    # ----- feed-forward ------------------------------------------------------------------
    def ffn(self, li: int, *, x: str, rows: float, out: str, decode: bool) -> None:
        """Dense FFN of layer ``li`` (gated or not), sparse in decode if asked."""
        cfg, f, h, ea = self.cfg, self.f, self.h, self.ea
        gated = cfg.gated_ffn
        names = ("w_gate", "w_up") if gated else ("w_up",)
        sp = self.o.ffn_sparsity if decode else None
        frac = sp.active_fraction if sp is not None else 1.0
        active = max(1, round(f * frac)) if sp is not None else f
        w_up_bytes = self.tensors[f"L{li}.w_up"].bytes
        w_down_bytes = self.tensors[f"L{li}.w_down"].bytes
        src = {n: f"L{li}.{n}" for n in (*names, "w_down")}
        if sp is not None:
            total = w_up_bytes * len(names) + w_down_bytes
            cache = self.tensor(
                f"L{li}.ffn_cache",
                total * sp.cache_fraction,
                "weight",
                dtype=self.o.dtype,
                layer=li,
                stage=self.stage_of[li],
            )
            load = sp.load_fraction
            self.op(
                f"L{li}.ffn_load",
                "other",
                reads=tuple(self.acc(src[n], self.tensors[src[n]].bytes * load) for n in src),
                writes=(self.acc(cache, total * load),),
                layer=li,
                attrs={"ffn_sparsity": frac, "window": sp.window},
            )
            src = dict.fromkeys(src, cache)
        inter = []
        for n in names:
            o = self.act(n.replace("w_", ""), rows * f * ea, layer=li)
            inter.append(o)
            self.gemm(
                f"L{li}.{n[2:]}",
                x=x,
                w=src[n],
                out=o,
                m=rows,
                n=active,
                k=h,
                w_bytes=w_up_bytes * frac,
                layer=li,
            )
        a = self.act("act", rows * f * ea, layer=li)
        self.op(
            f"L{li}.act",
            "elementwise",
            flops=rows * active * (2.0 if gated else 1.0),
            reads=tuple(self.acc(t, rows * active * ea) for t in inter),
            writes=(self.acc(a, rows * active * ea),),
            layer=li,
        )
        self.gemm(
            f"L{li}.down",
            x=a,
            w=src["w_down"],
            out=out,
            m=rows,
            n=h,
            k=active,
            w_bytes=w_down_bytes * frac,
            layer=li,
        )

    def moe(self, li: int, *, x: str, rows: int, out: str) -> None:
        """Router, per-expert FFNs on their share of tokens, and the weighted combine."""
        cfg, f, h, ea = self.cfg, self.f, self.h, self.ea
        E, k = cfg.experts, cfg.active_experts
        logits = self.act("router_logits", rows * E * ea, layer=li)
        self.gemm(
            f"L{li}.router",
            x=x,
            w=f"L{li}.router",
            out=logits,
            m=rows,
            n=E,
            k=h,
            w_bytes=self.tensors[f"L{li}.router"].bytes,
            layer=li,
        )
        route = self.act("route", rows * k * 8.0, layer=li)
        self.op(
            f"L{li}.route",
            "softmax",
            flops=5.0 * rows * E,
            reads=(self.acc(logits, rows * E * ea),),
            writes=(self.acc(route, rows * k * 8.0),),
            layer=li,
        )
        expert_out = self.act("expert_out", rows * k * h * ea, layer=li)
        probs = self.o.moe.probabilities(E)
        seed = (
            None
            if self.o.moe.seed is None
            else hash((self.o.moe.seed, li, self.step, self.mb)) & 0xFFFFFFFF
        )
        tokens, hit = expert_loads(probs, tokens=rows, k=k, seed=seed)
        gated = cfg.gated_ffn
        for e in range(E):
            t_e = tokens[e]
            if t_e <= 0:
                continue
            names = ("w_gate", "w_up") if gated else ("w_up",)
            inter = []
            for n in names:
                w = f"L{li}.e{e}.{n}"
                o = self.act(f"e{e}.{n[2:]}", rows * k * f * ea, layer=li)
                inter.append(o)
                self.gemm(
                    f"L{li}.e{e}.{n[2:]}",
                    x=x,
                    w=w,
                    out=o,
                    m=t_e,
                    n=f,
                    k=h,
                    w_bytes=self.tensors[w].bytes * hit[e],
                    layer=li,
                    attrs={"expert": e, "tokens": t_e},
                )
            a = self.act(f"e{e}.act", rows * k * f * ea, layer=li)
            self.op(
                f"L{li}.e{e}.act",
                "elementwise",
                flops=t_e * f * (2.0 if gated else 1.0),
                reads=tuple(self.acc(t, t_e * f * ea) for t in inter),
                writes=(self.acc(a, t_e * f * ea),),
                layer=li,
            )
            w = f"L{li}.e{e}.w_down"
            self.gemm(
                f"L{li}.e{e}.down",
                x=a,
                w=w,
                out=expert_out,
                m=t_e,
                n=h,
                k=f,
                w_bytes=self.tensors[w].bytes * hit[e],
                layer=li,
                attrs={"expert": e, "tokens": t_e},
            )
        self.op(
            f"L{li}.moe_combine",
            "elementwise",
            flops=2.0 * rows * k * h,
            reads=(self.acc(expert_out, rows * k * h * ea), self.acc(route, rows * k * 8.0)),
            writes=(self.acc(out, rows * h * ea),),
            layer=li,
        )
