"""Inference graphs of transformers: :func:`prefill`, :func:`decode`, :func:`generate`.

Every builder takes a :class:`~workloads.model_config.ModelConfig` and returns a
:class:`~workloads.graph.Graph` of ops (phase ``prefill``/``decode``; ``step`` 0
for prefill, 1..gen_len for decode steps) over tensors: per-layer weights, one
K and one V cache tensor per layer sized for the final context, and activation
buffers shared by the layers. With ``tp > 1`` the graph is one device's shard
with all-reduce collectives after the attention-output and FFN-down projections;
with ``pp > 1`` layers are spread evenly over stages with a send/recv at each
stage boundary.

Keywords shared by every builder:

``dtype`` weights (``fp32``, ``bf16``, ``fp16``, ``fp8``, ``int8``, ``int4``; int8/int4
with a scale per ``quant_group_size`` weights), ``kv_dtype`` (default: activations),
``act_dtype`` (default: 16-bit), ``tp``, ``pp``, ``attention`` (a name from
:func:`workloads.attention.attention_names`), ``sram_bytes`` (on-chip buffer per
core for the fused-attention IO model; None = unbounded), ``kv_budget``
(:class:`~workloads.options.KVBudget`), ``ffn_sparsity``
(:class:`~workloads.options.FFNSparsity`, decode only), ``moe``
(:class:`~workloads.options.MoERouting`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields, replace
from functools import partial
from typing import Any

from hw_models.errors import Problem, SpecError
from workloads._builder import (
    ID_BYTES,
    ROPE_FLOPS_PER_ELEMENT,
    ROPE_TABLE_FLOPS_PER_ELEMENT,
    Builder,
    Options,
    check_positive,
    resolve_options,
)
from workloads.graph import Access, Graph, Op
from workloads.model_config import ModelConfig


def declare_weights(b: Builder) -> None:
    """Declare every weight tensor of one device's shard."""
    cfg, h, d = b.cfg, b.h, b.d
    tp = b.o.tp
    embed_rows = b.V if tp > 1 else cfg.vocab_size
    b.plain_weight("embed", embed_rows * h, layer=None, stage=0)
    if cfg.position_embedding == "learned":
        b.plain_weight(
            "pos_embed", (cfg.max_position_embeddings + cfg.position_offset) * h, layer=None
        )
    if cfg.type_vocab_size:
        b.plain_weight("type_embed", cfg.type_vocab_size * h, layer=None)
    if cfg.architecture == "encoder":
        b.plain_weight("embed_norm.w", cfg.norm_params, layer=None)
    ab, mb = cfg.attention_bias, cfg.mlp_bias
    for li in range(cfg.num_hidden_layers):
        b.plain_weight(f"L{li}.attn_norm.w", cfg.norm_params, layer=li)
        if not cfg.parallel_attn:
            b.plain_weight(f"L{li}.ffn_norm.w", cfg.norm_params, layer=li)
        b.weight(f"L{li}.wq", h, b.H * d, layer=li, bias=ab)
        b.weight(f"L{li}.wk", h, b.KV * d, layer=li, bias=ab)
        b.weight(f"L{li}.wv", h, b.KV * d, layer=li, bias=ab)
        b.weight(f"L{li}.wo", b.H * d, h, layer=li, bias=ab)
        names = ("w_gate", "w_up") if cfg.gated_ffn else ("w_up",)
        if cfg.is_moe:
            b.plain_weight(f"L{li}.router", h * cfg.experts, layer=li)
            for e in range(cfg.experts):
                for n in names:
                    b.weight(f"L{li}.e{e}.{n}", h, b.f, layer=li, bias=mb)
                b.weight(f"L{li}.e{e}.w_down", b.f, h, layer=li, bias=mb)
        else:
            for n in names:
                b.weight(f"L{li}.{n}", h, b.f, layer=li, bias=mb)
            b.weight(f"L{li}.w_down", b.f, h, layer=li, bias=mb)
    last = b.head_stage
    if cfg.architecture == "decoder":
        b.plain_weight("final_norm.w", cfg.norm_params, layer=None, stage=last)
    if cfg.lm_head and not cfg.tie_word_embeddings:
        b.plain_weight("lm_head", b.V * h, layer=None, stage=last)
    if cfg.pooler:
        b.plain_weight("pooler", h * h + h, layer=None, stage=last)


def declare_kv_cache(b: Builder, *, batch: int, tokens: int) -> None:
    """One K and one V tensor per layer, holding ``tokens`` tokens of ``batch`` sequences."""
    nbytes = batch * tokens * b.KV * b.d * b.ekv
    for li in range(b.cfg.num_hidden_layers):
        for kv in ("k_cache", "v_cache"):
            b.tensor(
                f"L{li}.{kv}",
                nbytes,
                "kv",
                dtype=b.o.kv_dtype,
                shape=(batch, tokens, b.KV, b.d),
                layer=li,
                stage=b.stage_of[li],
            )


def forward(
    b: Builder,
    *,
    batch: int,
    q_len: int,
    kv_len: int,
    logits: str = "last",
    layers: range | None = None,
    with_embed: bool = True,
    with_head: bool = True,
    decode: bool = False,
    groups: tuple[tuple[int, int, int], ...] | None = None,
) -> None:
    """Emit one forward pass of ``batch`` x ``q_len`` new tokens over ``kv_len`` keys.

    ``groups`` (``(count, q_len, kv_len)`` each) replaces the single shape with
    sequences at different positions: the token-wise ops run over all their new
    tokens together, attention runs per group (see :func:`batch_step`).
    """
    cfg, h, ea = b.cfg, b.h, b.ea
    L = cfg.num_hidden_layers
    layers = range(L) if layers is None else layers
    if groups is not None:
        batch = sum(c for c, _, _ in groups)
        q_len = max(q for _, q, _ in groups)
        rows = sum(c * q for c, q, _ in groups)
    else:
        rows = batch * q_len
    row_bytes = rows * h * ea
    tp, encoder = b.o.tp, cfg.architecture == "encoder"
    sp = _check_sp(b, rows=rows, decode=decode)
    s_bytes = row_bytes / tp if sp else row_bytes  # the residual stream's share
    resid = b.act("resid", s_bytes)
    hn = b.act("h", row_bytes)
    acc = b.acc
    b.nolayer_stage = 0
    if with_embed:
        ids = b.tensor(
            f"{b.prefix}ids",
            rows * ID_BYTES,
            "input",
            dtype="int64",
            shape=(batch, q_len) if groups is None else (1, rows),
        )
        e_table = b.tensors["embed"].bytes / b.tensors["embed"].shape[0]  # bytes per element
        reads = [acc(ids, rows * ID_BYTES), acc("embed", rows * h * e_table / tp)]
        extra = [t for t in ("pos_embed", "type_embed") if t in b.tensors]
        for t in extra:
            reads.append(acc(t, rows * h * ea))
        b.op(
            "embed",
            "embedding",
            flops=len(extra) * rows * h,
            reads=tuple(reads),
            writes=(acc(b.act("embed_out", row_bytes) if sp else resid, row_bytes),),
        )
        if sp:  # Megatron-SP: the all-reduce becomes a reduce-scatter into the shard
            _sp_collective(
                b, "embed.reduce_scatter", "reduce_scatter", f"{b.prefix}embed_out", resid,
                row_bytes, layer=None,
            )  # fmt: skip
        elif tp > 1:
            b.collective("embed.all_reduce", "all_reduce", resid, row_bytes, layer=None, group=tp)
        if encoder:
            b.norm(
                "embed_norm",
                adds=(),
                resid=resid,
                out=resid,
                w="embed_norm.w",
                w_bytes=b.tensors["embed_norm.w"].bytes,
                rows=rows,
                layer=None,
            )
        if cfg.position_embedding == "rope":
            table = q_len * b.d * ea
            cos, sin = b.act("cos", table), b.act("sin", table)
            b.op(
                "rope_table",
                "rope",
                flops=ROPE_TABLE_FLOPS_PER_ELEMENT * q_len * b.d,
                writes=(acc(cos, table), acc(sin, table)),
            )
    # branch outputs not yet added to the residual (received from the previous stage)
    pending: tuple[str, ...] = ()
    if not with_embed and not encoder and layers:
        prev = layers[0] - 1
        pending = (b.act("ffn_out", s_bytes, layer=prev),)
        if cfg.parallel_attn:
            pending = (b.act("o", row_bytes, layer=prev), *pending)
    for li in layers:
        if li != layers[0] and b.stage_of[li] != b.stage_of[li - 1]:
            _send(b, li - 1, resid, pending, s_bytes)
        pending = _layer(
            b,
            li,
            batch=batch,
            q_len=q_len,
            kv_len=kv_len,
            resid=resid,
            hn=hn,
            pending=pending,
            decode=decode,
            groups=groups,
        )
    if layers and layers[-1] != L - 1 and b.stage_of[layers[-1] + 1] != b.stage_of[layers[-1]]:
        _send(b, layers[-1], resid, pending, s_bytes)  # (a V's turn stays on its device)
    if not with_head:
        return
    b.nolayer_stage = b.head_stage
    if not encoder:
        b.norm(
            "final_norm",
            adds=pending,
            resid=resid,
            out=b.act("h_sp", s_bytes) if sp else hn,
            w="final_norm.w",
            w_bytes=b.tensors["final_norm.w"].bytes,
            rows=rows / tp if sp else rows,
            layer=None,
            write_resid=False,
        )
        if sp:
            _sp_collective(
                b, "final_norm.all_gather", "all_gather", f"{b.prefix}h_sp", hn, row_bytes,
                layer=None,
            )  # fmt: skip
        if cfg.lm_head:
            out_rows = batch if logits == "last" else rows
            w = "embed" if cfg.tie_word_embeddings else "lm_head"
            lg = b.act("logits", out_rows * b.V * ea, kind="logits")
            b.gemm(
                "lm_head",
                x=hn,
                w=w,
                out=lg,
                m=out_rows,
                n=b.V,
                k=h,
                w_bytes=b.tensors[w].bytes,
                layer=None,
            )
            if tp > 1:
                b.collective(
                    "lm_head.all_gather",
                    "all_gather",
                    lg,
                    out_rows * b.V * ea,
                    layer=None,
                    group=tp,
                )
    if cfg.pooler:
        pooled = b.act("pooled", batch * h * ea)
        b.gemm(
            "pooler",
            x=resid,
            w="pooler",
            out=pooled,
            m=batch,
            n=h,
            k=h,
            w_bytes=b.tensors["pooler"].bytes,
            layer=None,
        )


def _check_sp(b: Builder, *, rows: float, decode: bool) -> bool:
    """Whether this pass is sequence-parallel; SpecError when it cannot be."""
    tp = b.o.tp
    if not (b.o.sequence_parallel and tp > 1):
        return False
    if decode:
        raise SpecError(
            [Problem("sequence_parallel", "applies to prefill and training, not decode steps")]
        )
    if rows % tp:
        raise SpecError(
            [Problem("sequence_parallel", f"{rows:g} token rows do not split over tp={tp}")]
        )
    return True


def _sp_collective(
    b: Builder, name: str, kind: str, src: str, dst: str, full_bytes: float, *, layer: int | None
) -> None:
    """A sequence-parallel all-gather (shard ``src`` -> whole ``dst``) or reduce-scatter
    (partial sums ``src`` -> shard ``dst``) of ``full_bytes`` whole tensor bytes: each
    moves ``(tp - 1)/tp x full_bytes`` per device, half an all-reduce (Korthikanti et
    al. 2023, Sec. 4.2.2)."""
    tp = b.o.tp
    src_bytes, dst_bytes = (
        (full_bytes / tp, full_bytes) if kind == "all_gather" else (full_bytes, full_bytes / tp)
    )
    b.op(
        name,
        "collective",
        reads=(b.acc(src, src_bytes),),
        writes=(b.acc(dst, dst_bytes),),
        collective=_collective(kind, full_bytes, tp),
        layer=layer,
        attrs={"sp": kind},
    )


def _send(b: Builder, li: int, resid: str, pending: tuple[str, ...], row_bytes: float) -> None:
    tensors = (resid, *pending)
    total = row_bytes * len(tensors)
    b.op(
        f"L{li}.send",
        "collective",
        reads=tuple(b.acc(t, row_bytes) for t in tensors),
        writes=tuple(b.acc(t, row_bytes) for t in tensors),
        layer=li,
        collective=_collective("send_recv", total, 2),
    )


def _collective(kind: Any, nbytes: float, group: int) -> Any:
    from workloads.graph import Collective

    return Collective(kind=kind, bytes=float(nbytes), group=group)


def _layer(
    b: Builder,
    li: int,
    *,
    batch: int,
    q_len: int,
    kv_len: int,
    resid: str,
    hn: str,
    pending: tuple[str, ...],
    decode: bool,
    groups: tuple[tuple[int, int, int], ...] | None = None,
) -> tuple[str, ...]:
    """One transformer block; returns the branch outputs still to be added to the residual."""
    cfg, h, d, ea, ekv = b.cfg, b.h, b.d, b.ea, b.ekv
    rows = batch * q_len if groups is None else sum(c * q for c, q, _ in groups)
    row_bytes = rows * h * ea
    tp, acc = b.o.tp, b.acc
    encoder = cfg.architecture == "encoder"
    sp = b.o.sequence_parallel and tp > 1  # (checked by forward)
    s_bytes = row_bytes / tp if sp else row_bytes
    if b.per_layer_acts:  # training keeps every layer's normalised input for the backward pass
        hn = b.act("h", row_bytes, layer=li)
    h_sp = b.act("h_sp", s_bytes, layer=li) if sp else hn  # the norms' (sharded) output
    if encoder:
        x = resid  # post-norm: the block reads the normalised residual stream
    else:
        b.norm(
            f"L{li}.attn_norm",
            adds=pending,
            resid=resid,
            out=h_sp,
            w=f"L{li}.attn_norm.w",
            w_bytes=b.tensors[f"L{li}.attn_norm.w"].bytes,
            rows=rows / tp if sp else rows,
            layer=li,
        )
        if sp:
            _sp_collective(b, f"L{li}.attn.all_gather", "all_gather", h_sp, hn, row_bytes, layer=li)
        x = hn
    q_bytes, kv_bytes_act = rows * b.H * d * ea, rows * b.KV * d * ea
    kv_write = rows * b.KV * d * ekv
    rope = cfg.position_embedding == "rope"
    q = b.act("q", q_bytes, layer=li)
    if encoder:
        k, v = b.act("k", kv_bytes_act, layer=li), b.act("v", kv_bytes_act, layer=li)
        k_out, v_out, kv_out_bytes = k, v, kv_bytes_act
    else:
        if b.per_layer_acts:  # training: K and V are saved activations of this micro-batch
            k, v = b.act("k_cache", kv_write, layer=li), b.act("v_cache", kv_write, layer=li)
        else:
            k, v = f"L{li}.k_cache", f"L{li}.v_cache"
        k_out = b.act("k", kv_bytes_act, layer=li) if rope else k
        v_out, kv_out_bytes = v, kv_write
    b.gemm(
        f"L{li}.q",
        x=x,
        w=f"L{li}.wq",
        out=q,
        m=rows,
        n=b.H * d,
        k=h,
        w_bytes=b.tensors[f"L{li}.wq"].bytes,
        layer=li,
    )
    b.gemm(
        f"L{li}.k",
        x=x,
        w=f"L{li}.wk",
        out=k_out,
        m=rows,
        n=b.KV * d,
        k=h,
        w_bytes=b.tensors[f"L{li}.wk"].bytes,
        layer=li,
        out_bytes=kv_bytes_act if k_out != k else kv_out_bytes,
    )
    b.gemm(
        f"L{li}.v",
        x=x,
        w=f"L{li}.wv",
        out=v_out,
        m=rows,
        n=b.KV * d,
        k=h,
        w_bytes=b.tensors[f"L{li}.wv"].bytes,
        layer=li,
        out_bytes=kv_out_bytes,
    )
    if rope and not encoder:
        q_rot = b.act("q_rot", q_bytes, layer=li)
        table = q_len * d * ea
        b.op(
            f"L{li}.rope",
            "rope",
            flops=ROPE_FLOPS_PER_ELEMENT * rows * (b.H + b.KV) * d,
            reads=(
                acc(q, q_bytes),
                acc(k_out, kv_bytes_act),
                acc(f"{b.prefix}cos", table),
                acc(f"{b.prefix}sin", table),
            ),
            writes=(acc(q_rot, q_bytes), acc(k, kv_write)),
            layer=li,
        )
        q = q_rot
    budget = b.o.kv_budget if decode else None
    if groups is not None:
        b.act("attn_out", rows * b.H * d * ea, layer=li)  # all groups' outputs together
        kept = tuple(
            (c, gq, budget.tokens(gkv) if budget is not None else gkv) for c, gq, gkv in groups
        )
        b.attention_groups(li, kept, q=q, k=k, v=v, causal=not encoder)
    kv_read = budget.tokens(kv_len) if budget is not None else kv_len
    start = len(b.ops)
    if groups is None:
        b.attention(li, batch=batch, q_len=q_len, kv_len=kv_read, q=q, k=k, v=v, causal=not encoder)
    if decode and groups is None:

        def regen(
            step: int, ctx: int, _l: int = li, _q: str = q, _k: str = k, _v: str = v
        ) -> list[Op]:
            n = budget.tokens(ctx) if budget is not None else ctx
            b.step = step
            before = len(b.ops)
            b.attention(_l, batch=batch, q_len=q_len, kv_len=n, q=_q, k=_k, v=_v, causal=True)
            made = b.ops[before:]
            del b.ops[before:]
            return made

        b.slots.append((start, len(b.ops) - start, regen))
    attn_out = f"{b.prefix}L{li}.attn_out" if b.per_layer_acts else f"{b.prefix}attn_out"
    o = b.act("o", s_bytes, layer=li)
    o_partial = b.act("o_partial", row_bytes, layer=li) if sp else o
    b.gemm(
        f"L{li}.o",
        x=attn_out,
        w=f"L{li}.wo",
        out=o_partial,
        m=rows,
        n=h,
        k=b.H * d,
        w_bytes=b.tensors[f"L{li}.wo"].bytes,
        layer=li,
    )
    if sp:
        _sp_collective(
            b, f"L{li}.o.reduce_scatter", "reduce_scatter", o_partial, o, row_bytes, layer=li
        )
    elif tp > 1:
        b.collective(f"L{li}.o.all_reduce", "all_reduce", o, row_bytes, layer=li, group=tp)
    if encoder:
        b.norm(
            f"L{li}.attn_norm",
            adds=(o,),
            resid=resid,
            out=None,
            w=f"L{li}.attn_norm.w",
            w_bytes=b.tensors[f"L{li}.attn_norm.w"].bytes,
            rows=rows,
            layer=li,
        )
        x = resid
    elif not cfg.parallel_attn:
        b.norm(
            f"L{li}.ffn_norm",
            adds=(o,),
            resid=resid,
            out=h_sp,
            w=f"L{li}.ffn_norm.w",
            w_bytes=b.tensors[f"L{li}.ffn_norm.w"].bytes,
            rows=rows / tp if sp else rows,
            layer=li,
        )
        if sp:
            _sp_collective(b, f"L{li}.ffn.all_gather", "all_gather", h_sp, hn, row_bytes, layer=li)
    ffn_out = b.act("ffn_out", s_bytes, layer=li)
    ffn_partial = b.act("ffn_partial", row_bytes, layer=li) if sp else ffn_out
    if cfg.is_moe:
        start = len(b.ops)
        b.moe(li, x=x, rows=rows, out=ffn_out)
        if decode and b.o.moe.seed is not None:

            def regen_moe(step: int, ctx: int, _l: int = li) -> list[Op]:
                b.step = step
                before = len(b.ops)
                b.moe(_l, x=x, rows=rows, out=ffn_out)
                made = b.ops[before:]
                del b.ops[before:]
                return made

            b.slots.append((start, len(b.ops) - start, regen_moe))
    else:
        b.ffn(li, x=x, rows=rows, out=ffn_partial, decode=decode)
    if sp:
        _sp_collective(
            b, f"L{li}.ffn.reduce_scatter", "reduce_scatter", ffn_partial, ffn_out, row_bytes,
            layer=li,
        )  # fmt: skip
    elif tp > 1:
        b.collective(f"L{li}.ffn.all_reduce", "all_reduce", ffn_out, row_bytes, layer=li, group=tp)
    if encoder:
        w = b.tensors[f"L{li}.ffn_norm.w"].bytes
        b.norm(
            f"L{li}.ffn_norm",
            adds=(ffn_out,),
            resid=resid,
            out=None,
            w=f"L{li}.ffn_norm.w",
            w_bytes=w,
            rows=rows,
            layer=li,
        )
        return ()
    return (o, ffn_out) if cfg.parallel_attn else (ffn_out,)


def _meta(cfg: ModelConfig, o: Options, **extra: Any) -> dict[str, Any]:
    return {
        "model": cfg.name,
        "dtype": o.dtype,
        "kv_dtype": o.kv_dtype,
        "act_dtype": o.act_dtype,
        "tp": o.tp,
        "pp": o.pp,
        "attention": o.attention,
        "sram_bytes": o.sram_bytes,
        "params": cfg.params,
        "active_params": cfg.active_params,
        **extra,
    }


def _kv_tokens(o: Options, context: int) -> int:
    return o.kv_budget.tokens(context) if o.kv_budget is not None else context


def _decoder_only(cfg: ModelConfig, what: str) -> None:
    if cfg.architecture != "decoder":
        raise SpecError([Problem("model", f"{cfg.name} is an encoder: it has no {what}")])


def prefill(cfg: ModelConfig, *, batch: int, prompt_len: int, **options: Any) -> Graph:
    """The prompt pass: ``batch`` prompts of ``prompt_len`` tokens, logits of the last token.

    For an encoder (BERT) this is its forward pass, bidirectional, without a KV cache.
    """
    check_positive(batch=batch, prompt_len=prompt_len)
    o = resolve_options(cfg, **options)
    b = Builder(cfg, o)
    declare_weights(b)
    if cfg.architecture == "decoder":
        declare_kv_cache(b, batch=batch, tokens=prompt_len)
    forward(b, batch=batch, q_len=prompt_len, kv_len=prompt_len)
    meta = _meta(cfg, o, kind="prefill", batch=batch, prompt_len=prompt_len, gen_len=0, tokens=0)
    again = partial(prefill, cfg, batch=batch, prompt_len=prompt_len, **options)
    return Graph(tensors=b.tensors, ops=tuple(b.ops), meta=meta, rebuild=again)


def decode(
    cfg: ModelConfig, *, batch: int, context_len: int | Sequence[int], **options: Any
) -> Graph:
    """One decode step: ``batch`` new tokens attending to ``context_len`` cached ones and self.

    ``context_len`` may give one context per sequence (``batch`` of them): a
    batch of requests at different positions, as a serving engine runs them.
    The token-wise ops (projections, FFN, norms) see ``batch`` rows either way;
    attention runs once per distinct context over the sequences that share it.
    """
    _decoder_only(cfg, "decode step")
    if not isinstance(context_len, int):
        contexts = [int(c) for c in context_len]
        if len(contexts) != batch:
            raise SpecError(
                [
                    Problem(
                        "context_len",
                        f"expected one context per sequence ({batch}), found {len(contexts)}",
                    )
                ]
            )
        check_positive(batch=batch, **{f"context_len[{i}]": c for i, c in enumerate(contexts)})
        if len(set(contexts)) > 1:
            return _step_graph(cfg, [(1, c) for c in contexts], options, kind="decode")
        context_len = contexts[0]
    check_positive(batch=batch, context_len=context_len)
    o = resolve_options(cfg, **options)
    b = Builder(cfg, o)
    declare_weights(b)
    declare_kv_cache(b, batch=batch, tokens=_kv_tokens(o, context_len + 1))
    b.phase, b.step, b.prefix = "decode", 1, "d."
    forward(b, batch=batch, q_len=1, kv_len=context_len + 1, decode=True)
    meta = _meta(
        cfg,
        o,
        kind="decode",
        batch=batch,
        prompt_len=context_len,
        gen_len=1,
        tokens=batch,
        context_len=context_len,
    )
    again = partial(decode, cfg, batch=batch, context_len=context_len, **options)
    return Graph(tensors=b.tensors, ops=tuple(b.ops), meta=meta, rebuild=again)


def batch_step(cfg: ModelConfig, *, sequences: Sequence[tuple[int, int]], **options: Any) -> Graph:
    """One iteration of a serving engine: each sequence feeds ``new`` tokens after ``past``.

    ``sequences`` holds ``(new, past)`` pairs: a prompt (or a chunk of one, as in
    chunked prefill) is ``(chunk, tokens already cached)``; a decode step is
    ``(1, context)``. The token-wise ops run over all new tokens together; causal
    attention runs per distinct ``(new, past)`` over ``past + new`` keys; each
    sequence yields the logits of its last token. One sequence ``(P, 0)`` builds
    the same ops as :func:`prefill` with ``batch=1, prompt_len=P``; sequences all
    ``(1, c)`` the same as :func:`decode` with ``context_len=c``.
    """
    _decoder_only(cfg, "serving step")
    seqs = [(int(n), int(p)) for n, p in sequences]
    if not seqs:
        raise SpecError([Problem("sequences", "expected at least one sequence")])
    problems = [
        Problem(f"sequences[{i}]", f"expected new >= 1 and past >= 0, found ({n}, {p})")
        for i, (n, p) in enumerate(seqs)
        if n < 1 or p < 0
    ]
    if problems:
        raise SpecError(problems)
    decoding = all(n == 1 for n, _ in seqs)
    if decoding and all(p >= 1 for _, p in seqs):
        return _step_graph(cfg, seqs, options, kind="decode")
    return _step_graph(cfg, seqs, options, kind="step")


def _step_graph(
    cfg: ModelConfig, seqs: list[tuple[int, int]], options: dict[str, Any], *, kind: str
) -> Graph:
    o = resolve_options(cfg, **options)
    b = Builder(cfg, o)
    declare_weights(b)
    counts = Counter(seqs)
    groups = tuple((c, n, p + n) for (n, p), c in sorted(counts.items()))
    decoding = kind == "decode"
    kv_tokens = [_kv_tokens(o, kv) if decoding else kv for _, _, kv in groups]
    if len(groups) == 1:
        declare_kv_cache(b, batch=groups[0][0], tokens=kv_tokens[0])
    else:
        total = sum(c * t for (c, _, _), t in zip(groups, kv_tokens, strict=True))
        declare_kv_cache(b, batch=1, tokens=total)
    if decoding:
        b.phase, b.step, b.prefix = "decode", 1, "d."
    if len(groups) == 1:
        c, n, kv = groups[0]
        forward(b, batch=c, q_len=n, kv_len=kv, decode=decoding)
    else:
        forward(b, batch=0, q_len=0, kv_len=0, decode=decoding, groups=groups)
    new = sum(n for n, _ in seqs)
    meta = _meta(
        cfg,
        o,
        kind=kind,
        batch=len(seqs),
        prompt_len=max(p for _, p in seqs) if decoding else max(n + p for n, p in seqs),
        gen_len=1 if decoding else 0,
        tokens=len(seqs) if decoding else 0,
        new_tokens=new,
        sequences=len(seqs),
    )
    again = partial(batch_step, cfg, sequences=seqs, **options)
    return Graph(tensors=b.tensors, ops=tuple(b.ops), meta=meta, rebuild=again)


_CLONED_FIELDS = (
    "name", "kind", "flops", "reads", "writes", "dtype", "gemm", "collective", "layer", "phase",
    "step", "stage", "micro_batch", "fuse_group", "deps", "attrs",
)  # fmt: skip
if tuple(f.name for f in fields(Op)) != _CLONED_FIELDS:  # pragma: no cover - guards graph.py edits
    raise ImportError("workloads.graph.Op changed: update _with_step in workloads/transformer.py")
_new = object.__new__
_set = object.__setattr__


def _with_step(op: Op, step: int) -> Op:
    """``dataclasses.replace(op, step=step)`` at a third of the cost (decode steps repeat)."""
    o = _new(Op)
    _set(o, "name", op.name)
    _set(o, "kind", op.kind)
    _set(o, "flops", op.flops)
    _set(o, "reads", op.reads)
    _set(o, "writes", op.writes)
    _set(o, "dtype", op.dtype)
    _set(o, "gemm", op.gemm)
    _set(o, "collective", op.collective)
    _set(o, "layer", op.layer)
    _set(o, "phase", op.phase)
    _set(o, "step", step)
    _set(o, "stage", op.stage)
    _set(o, "micro_batch", op.micro_batch)
    _set(o, "fuse_group", op.fuse_group)
    _set(o, "deps", op.deps)
    _set(o, "attrs", op.attrs)
    return o


def generate(
    cfg: ModelConfig,
    *,
    batch: int,
    prompt_len: int,
    gen_len: int,
    num_gpu_batches: int = 1,
    attention_unit: str | None = None,
    **options: Any,
) -> Graph:
    """Prefill, then ``gen_len`` decode steps, each with a KV cache one token longer.

    Decode step ``s`` (1-based) feeds the token generated by the previous pass at
    position ``prompt_len + s - 1`` and attends to ``prompt_len + s`` keys. The KV
    cache tensors are sized for ``prompt_len + gen_len`` tokens (or the KV budget).

    ``num_gpu_batches = K > 1`` is FlexGen's block schedule (Sheng et al., ICML 2023,
    Section 4.1): the ``batch`` sequences form one block of ``K`` GPU batches of
    ``batch / K`` sequences; every layer runs on the ``K`` GPU batches back to back
    (op ``micro_batch`` k, names prefixed ``b{k}.``), so a streamed layer's weights
    are fetched once per block and reused by the ``K`` batches, and each GPU batch
    has its own K/V tensors (``L{i}.k_cache.b{k}``). Activation buffers are shared by
    the GPU batches: one batch's activations are live at a time.

    ``attention_unit`` names a compute unit of the system (``cpu``) that runs the
    decode attention ops (their ``attrs.unit``): FlexGen's ``--cpu``, attention over
    a KV cache in host memory computed where it lives.
    """
    if attention_unit is not None:
        if not isinstance(attention_unit, str) or not attention_unit:
            raise SpecError([Problem("attention_unit", "expected a compute unit name")])
        inner = generate(
            cfg,
            batch=batch,
            prompt_len=prompt_len,
            gen_len=gen_len,
            num_gpu_batches=num_gpu_batches,
            **options,
        )
        on_unit = tuple(
            replace(op, attrs={**op.attrs, "unit": attention_unit})
            if op.kind == "attention" and op.phase == "decode"
            else op
            for op in inner.ops
        )
        again = partial(
            generate,
            cfg,
            batch=batch,
            prompt_len=prompt_len,
            gen_len=gen_len,
            num_gpu_batches=num_gpu_batches,
            attention_unit=attention_unit,
            **options,
        )
        meta = {**inner.meta, "attention_unit": attention_unit}
        return Graph(tensors=inner.tensors, ops=on_unit, meta=meta, rebuild=again)
    _decoder_only(cfg, "generation")
    check_positive(
        batch=batch, prompt_len=prompt_len, gen_len=gen_len, num_gpu_batches=num_gpu_batches
    )
    if num_gpu_batches > 1:
        return _block_schedule(
            cfg,
            batch=batch,
            prompt_len=prompt_len,
            gen_len=gen_len,
            num_gpu_batches=num_gpu_batches,
            **options,
        )
    o = resolve_options(cfg, **options)
    b = Builder(cfg, o)
    declare_weights(b)
    final = prompt_len + gen_len
    declare_kv_cache(b, batch=batch, tokens=max(prompt_len, _kv_tokens(o, final)))
    forward(b, batch=batch, q_len=prompt_len, kv_len=prompt_len)
    b.phase, b.step, b.prefix = "decode", 1, "d."
    first = len(b.ops)
    forward(b, batch=batch, q_len=1, kv_len=prompt_len + 1, decode=True)
    template = b.ops[first:]
    slots = {start - first: (n, regen) for start, n, regen in b.slots}
    # the regenerators close over the builder: kept in it, they would form a reference
    # cycle that holds every op of the graph until the garbage collector runs
    b.slots.clear()
    ops = b.ops
    _repeat_decode(ops, template, slots, prompt_len=prompt_len, gen_len=gen_len)
    meta = _meta(
        cfg,
        o,
        kind="generate",
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        tokens=batch * gen_len,
    )
    again = partial(generate, cfg, batch=batch, prompt_len=prompt_len, gen_len=gen_len, **options)
    return Graph(tensors=b.tensors, ops=tuple(ops), meta=meta, rebuild=again)


def _block_schedule(
    cfg: ModelConfig,
    *,
    batch: int,
    prompt_len: int,
    gen_len: int,
    num_gpu_batches: int,
    **options: Any,
) -> Graph:
    """FlexGen's block: each (phase, step, layer) run of ops repeated for the K GPU batches."""
    k_n = num_gpu_batches
    if batch % k_n:
        raise SpecError(
            [
                Problem(
                    "num_gpu_batches",
                    f"the batch ({batch}) must be a multiple of num_gpu_batches ({k_n})",
                )
            ]
        )
    one = generate(cfg, batch=batch // k_n, prompt_len=prompt_len, gen_len=gen_len, **options)
    if any(op.deps is not None for op in one.ops):
        raise SpecError(
            [Problem("num_gpu_batches", "the block schedule does not support explicit op deps")]
        )
    kv = {n for n, t in one.tensors.items() if t.kind == "kv"}
    tensors = {}
    for n, t in one.tensors.items():
        if n in kv:
            for k in range(k_n):
                tensors[f"{n}.b{k}"] = replace(t, name=f"{n}.b{k}")
        else:
            tensors[n] = t

    def copy(op: Op, k: int) -> Op:
        def ren(accs: tuple[Access, ...]) -> tuple[Access, ...]:
            return tuple(
                replace(a, tensor=f"{a.tensor}.b{k}") if a.tensor in kv else a for a in accs
            )

        return replace(
            op, name=f"b{k}.{op.name}", reads=ren(op.reads), writes=ren(op.writes), micro_batch=k
        )

    ops: list[Op] = []
    run: list[Op] = []

    def flush() -> None:
        for k in range(k_n):
            ops.extend(copy(op, k) for op in run)
        run.clear()

    for op in one.ops:
        if run and (op.phase, op.step, op.layer, op.stage) != (
            run[0].phase,
            run[0].step,
            run[0].layer,
            run[0].stage,
        ):
            flush()
        run.append(op)
    flush()
    meta = {
        **one.meta,
        "batch": batch,
        "tokens": batch * gen_len,
        "num_gpu_batches": k_n,
        "gpu_batch": batch // k_n,
    }
    again = partial(
        generate,
        cfg,
        batch=batch,
        prompt_len=prompt_len,
        gen_len=gen_len,
        num_gpu_batches=k_n,
        **options,
    )
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta, rebuild=again)


def _repeat_decode(
    ops: list[Op],
    template: list[Op],
    slots: dict[int, tuple[int, Any]],
    *,
    prompt_len: int,
    gen_len: int,
) -> None:
    for step in range(2, gen_len + 1):
        ctx = prompt_len + step
        i = 0
        while i < len(template):
            slot = slots.get(i)
            if slot is not None:
                ops.extend(slot[1](step, ctx))
                i += slot[0]
            else:
                ops.append(_with_step(template[i], step))
                i += 1


def weight_bytes(cfg: ModelConfig, *, dtype: str = "bf16", **options: Any) -> float:
    """Bytes of all weights stored in ``dtype`` (with group scales for int8/int4).

    Quantized checkpoints (GPTQ, AWQ) quantize the linear layers of the blocks; the
    embeddings, the output head and the norms stay in 16-bit.
    """
    b = Builder(cfg, resolve_options(cfg, dtype=dtype, **options))
    declare_weights(b)
    return sum(t.bytes for t in b.tensors.values() if t.kind == "weight")
