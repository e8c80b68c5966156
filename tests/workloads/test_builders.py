"""Analytic graph builders: FLOPs and bytes against hand calculations."""

from __future__ import annotations

import pytest

from hw_models.errors import SpecError
from workloads import (
    FFNSparsity,
    KVBudget,
    MoERouting,
    decode,
    from_hf_dict,
    generate,
    load_model,
    prefill,
)
from workloads.transformer import weight_bytes

L7 = load_model("llama2_7b")
# llama2_7b: h=4096, f=11008, L=32, H=KV=32, d=128, V=32000
MATMUL_PARAMS_7B = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096  # 6,607,077,376


def _kind_flops(g, kind: str) -> float:
    return sum(op.flops for op in g.ops if op.kind == kind)


def _weight_reads(g) -> float:
    return sum(a.bytes for op in g.ops for a in op.reads if g.tensors[a.tensor].kind == "weight")


def tiny(**over: object):
    base = {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "intermediate_size": 512,
        "vocab_size": 1000,
    }
    return from_hf_dict({**base, **over}, name="tiny")


def test_decode_flops_are_two_per_parameter_plus_attention() -> None:
    g = decode(L7, batch=1, context_len=1023)
    # GEMMs: 2 FLOPs per matmul parameter (the embedding is a gather, not a GEMM)
    assert _kind_flops(g, "gemm") == 2 * MATMUL_PARAMS_7B
    # attention: 4 d FLOPs per (query, key) pair: 4 x 128 x 1024 keys x 32 heads x 32 layers
    attention = 4 * 128 * 1024 * 32 * 32
    assert _kind_flops(g, "attention") == attention
    assert g.total_flops == pytest.approx(2 * MATMUL_PARAMS_7B + attention, rel=1e-3)
    assert g.total_flops == pytest.approx(2 * L7.params + attention, rel=0.03)


def test_decode_reads_every_weight_once_and_the_kv_cache() -> None:
    g = decode(L7, batch=1, context_len=1023)
    # all weights in bf16 except the embedding table, of which one row is gathered
    weights = 2 * (L7.params - 32000 * 4096 + 4096)
    assert _weight_reads(g) == weights
    kv = sum(a.bytes for op in g.ops for a in op.reads if g.tensors[a.tensor].kind == "kv")
    assert kv == 1024 * L7.kv_bytes_per_token("bf16")  # K and V of 1024 tokens


def test_prefill_attention_flops_are_quadratic() -> None:
    def attn(n: int) -> float:
        return _kind_flops(prefill(L7, batch=2, prompt_len=n), "attention")

    # causal: n (n + 1) / 2 pairs per head; 4 d FLOPs each; 2 sequences, 32 heads, 32 layers
    for n in (512, 1024, 2048):
        assert attn(n) == 4 * 128 * (n * (n + 1) / 2) * 2 * 32 * 32
    assert attn(2048) / attn(1024) == pytest.approx(4.0, rel=1e-3)


def test_generate_structure_and_meta() -> None:
    cfg = tiny()
    g = generate(cfg, batch=2, prompt_len=16, gen_len=5)
    assert g.meta["tokens"] == 10 and g.meta["tp"] == 1 and g.meta["params"] == cfg.params
    assert {op.step for op in g.ops if op.phase == "prefill"} == {0}
    assert sorted({op.step for op in g.ops if op.phase == "decode"}) == [1, 2, 3, 4, 5]
    # one K and one V tensor per layer sized for the final context:
    # 2 sequences x 21 tokens x 4 KV heads x 32 x 2 B
    kv = [t for t in g.tensors.values() if t.kind == "kv"]
    assert len(kv) == 2 * 4 and {t.bytes for t in kv} == {2 * 21 * 4 * 32 * 2}
    # step s attends to 16 + s keys
    for op in g.ops:
        if op.kind == "attention" and op.phase == "decode":
            assert op.attrs["kv_len"] == 16 + op.step
    # each decode step equals a standalone decode at the same context
    step3 = [op for op in g.ops if op.step == 3]
    alone = decode(cfg, batch=2, context_len=18)
    assert sum(op.flops for op in step3) == alone.total_flops
    assert sum(op.bytes_moved for op in step3) == alone.total_bytes_moved


def test_tensor_parallel_shards_sum_to_the_whole() -> None:
    cfg = tiny()
    whole = prefill(cfg, batch=2, prompt_len=32)
    shard = prefill(cfg, batch=2, prompt_len=32, tp=4)
    for kind in ("gemm", "attention"):
        assert 4 * _kind_flops(shard, kind) == pytest.approx(_kind_flops(whole, kind))
    colls = [op for op in shard.ops if op.kind == "collective"]
    # an all-reduce after each attention-out and FFN-down projection (+ the embedding),
    # and an all-gather of the vocabulary-sharded logits
    assert sum(op.collective.kind == "all_reduce" for op in colls) == 2 * 4 + 1
    o = next(op for op in colls if op.name == "L0.o.all_reduce")
    assert o.collective.bytes == 2 * 32 * 256 * 2 and o.collective.group == 4


def test_bad_parallelism_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="tp"):
        prefill(tiny(), batch=1, prompt_len=8, tp=3)
    with pytest.raises(SpecError, match="batch"):
        prefill(tiny(), batch=0, prompt_len=8)


def test_quantized_weight_bytes_include_group_scales() -> None:
    # block linear params 32 x (4 h^2 + 3 h f) = 6,476,005,376 at 0.5 + 2/128 B
    # = 3,339,190,272 B; embedding and head 2 x 131,072,000 x 2 B; 65 RMSNorm gains x 4096 x 2 B
    assert weight_bytes(L7, dtype="int4") == 3_339_190_272 + 524_288_000 + 532_480
    # int8 with groups of 64: 1 + 2/64 B per weight
    assert weight_bytes(L7, dtype="int8", quant_group_size=64) == (
        6_476_005_376 * (1 + 2 / 64) + 524_288_000 + 532_480
    )
    assert weight_bytes(L7, dtype="fp32") == 4 * L7.params


def test_kv_budget_reduces_kv_reads() -> None:
    full = decode(L7, batch=1, context_len=4095)
    kept = decode(L7, batch=1, context_len=4095, kv_budget=KVBudget(sink=4, recent=1020))

    def kv_read(g) -> float:
        return sum(a.bytes for op in g.ops for a in op.reads if g.tensors[a.tensor].kind == "kv")

    # 4096 -> 4 + 1020 = 1024 tokens of K and V
    assert kv_read(full) == 4 * kv_read(kept) == 4096 * L7.kv_bytes_per_token("bf16")
    heavy = KVBudget(recent=100, heavy_fraction=0.25)
    assert heavy.tokens(4096) == 100 + 1024
    with pytest.raises(SpecError, match="heavy_fraction"):
        KVBudget(heavy_fraction=1.5)


def test_ffn_sparsity_sliding_window() -> None:
    cfg = tiny()
    sp = FFNSparsity(active_fraction=0.1, window=4)
    # loaded per step: p (1 - p)^k = 0.1 x 0.9^4 = 0.06561; cache: 1 - 0.9^5 = 0.40951
    assert sp.load_fraction == pytest.approx(0.06561)
    assert sp.cache_fraction == pytest.approx(0.40951)
    g = decode(cfg, batch=1, context_len=64, ffn_sparsity=sp)
    load = next(op for op in g.ops if op.name == "d.L0.ffn_load")
    ffn_weights = 3 * 256 * 512 * 2  # gate, up, down in bf16
    assert load.bytes_read == pytest.approx(ffn_weights * 0.06561)
    gate = next(op for op in g.ops if op.name == "d.L0.gate")
    assert gate.flops == 2 * 1 * round(512 * 0.1) * 256
    assert g.tensors["L0.ffn_cache"].bytes == pytest.approx(ffn_weights * 0.40951)


def test_moe_expected_routing_reads_active_experts() -> None:
    mix = load_model("mixtral_8x7b")
    g = decode(mix, batch=1, context_len=511)
    # uniform popularity, top-2 of 8: each expert is hit with probability 1/4, so on
    # average 2 experts' weights per layer are read: the active parameters
    assert _weight_reads(g) == pytest.approx(2 * (mix.active_params - 32000 * 4096 + 4096))


def test_moe_sampled_routing_hits_k_experts_per_token() -> None:
    mix = load_model("mixtral_8x7b")
    g = generate(mix, batch=1, prompt_len=8, gen_len=3, moe=MoERouting(seed=1))
    for step in (1, 2, 3):
        experts = {
            (op.layer, op.attrs["expert"])
            for op in g.ops
            if op.step == step and "expert" in op.attrs
        }
        assert len(experts) == 2 * 32  # exactly two experts per layer for one token


def test_moe_popularity_skews_tokens() -> None:
    cfg = tiny(num_local_experts=4, num_experts_per_tok=1)
    g = prefill(cfg, batch=1, prompt_len=100, moe=MoERouting(popularity=[0.7, 0.1, 0.1, 0.1]))
    tokens = {
        op.attrs["expert"]: op.attrs["tokens"]
        for op in g.ops
        if op.name.endswith("e0.up") or op.name.endswith("e1.up")
    }
    assert tokens == {0: pytest.approx(70.0), 1: pytest.approx(10.0)}
    with pytest.raises(SpecError, match="popularity"):
        prefill(cfg, batch=1, prompt_len=8, moe=MoERouting(popularity=[1.0, 1.0]))


def test_encoder_has_no_decode() -> None:
    bert = load_model("bert_large")
    g = prefill(bert, batch=1, prompt_len=128)
    # bidirectional: all 128 x 128 pairs, 4 d FLOPs each, 16 heads x 24 layers
    assert _kind_flops(g, "attention") == 4 * 64 * 128 * 128 * 16 * 24
    assert not any(t.kind == "kv" for t in g.tensors.values())
    with pytest.raises(SpecError, match="encoder"):
        decode(bert, batch=1, context_len=8)


def test_pipeline_stages_split_layers() -> None:
    g = prefill(tiny(), batch=1, prompt_len=16, pp=2)
    stages = {
        op.layer: op.stage for op in g.ops if op.layer is not None and op.kind != "collective"
    }
    assert stages == {0: 0, 1: 0, 2: 1, 3: 1}
    send = [op for op in g.ops if op.collective is not None and op.collective.kind == "send_recv"]
    assert len(send) == 1 and send[0].stage == 0
    assert g.tensors["L3.wq"].stage == 1


@pytest.mark.parametrize("attention", ["fused", "fused_fa2", "unfused"])
def test_every_attention_model_builds(attention: str) -> None:
    g = generate(
        tiny(), batch=1, prompt_len=64, gen_len=2, attention=attention, sram_bytes=64 * 1024
    )
    assert g.total_flops > 0 and g.meta["attention"] == attention


def test_unknown_attention_lists_known() -> None:
    with pytest.raises(SpecError, match="fused_fa2"):
        prefill(tiny(), batch=1, prompt_len=8, attention="flash9")
