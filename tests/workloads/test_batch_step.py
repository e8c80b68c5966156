"""Per-request decode contexts and the serving-iteration builder (``batch_step``)."""

from __future__ import annotations

import pytest

import workloads
from hw_models.errors import SpecError


@pytest.fixture(scope="module")
def cfg() -> workloads.ModelConfig:
    return workloads.load_model("llama2_7b")


def _attn(graph: workloads.Graph) -> list[workloads.Op]:
    return [op for op in graph.ops if op.kind == "attention"]


def test_one_prompt_is_the_prefill_graph(cfg: workloads.ModelConfig) -> None:
    a = workloads.prefill(cfg, batch=1, prompt_len=300)
    b = workloads.batch_step(cfg, sequences=[(300, 0)])
    assert [op.name for op in a.ops] == [op.name for op in b.ops]
    assert a.total_flops == b.total_flops
    assert a.total_bytes_moved == b.total_bytes_moved


def test_uniform_decodes_are_the_decode_graph(cfg: workloads.ModelConfig) -> None:
    a = workloads.decode(cfg, batch=3, context_len=700)
    b = workloads.batch_step(cfg, sequences=[(1, 700)] * 3)
    c = workloads.decode(cfg, batch=3, context_len=[700, 700, 700])
    for g in (b, c):
        assert g.total_flops == a.total_flops
        assert g.total_bytes_moved == a.total_bytes_moved


def test_per_sequence_contexts_read_each_sequences_kv(cfg: workloads.ModelConfig) -> None:
    contexts = [100, 700, 1900]
    g = workloads.decode(cfg, batch=3, context_len=contexts)
    attn = _attn(g)
    assert len(attn) == cfg.num_hidden_layers  # one kernel per layer for the whole batch
    # bf16 K of one token in one layer: kv_heads x d_head x 2 bytes = 32 x 128 x 2 = 8 KiB
    k_tensor = "L0.k_cache"
    k_read = sum(a.bytes for a in attn[0].reads if a.tensor == k_tensor)
    assert k_read == pytest.approx(sum(c + 1 for c in contexts) * 32 * 128 * 2)
    # the projections see 3 rows: the q projection reads 3 x 4096 x 2 bytes of input
    q_proj = next(op for op in g.ops if op.name.endswith("L0.q"))
    assert q_proj.gemm is not None and q_proj.gemm.m == 3
    # the KV cache holds every sequence's tokens: sum(c + 1) x 32 layers' worth per layer
    assert g.tensors[k_tensor].bytes == pytest.approx(sum(c + 1 for c in contexts) * 32 * 128 * 2)


def test_mixed_iteration_rows_and_logits(cfg: workloads.ModelConfig) -> None:
    g = workloads.batch_step(cfg, sequences=[(1, 50), (1, 60), (128, 0), (64, 256)])
    q_proj = next(op for op in g.ops if op.name.endswith("L0.q"))
    assert q_proj.gemm is not None and q_proj.gemm.m == 1 + 1 + 128 + 64
    head = next(op for op in g.ops if op.name.endswith("lm_head"))
    assert head.gemm is not None and head.gemm.m == 4  # one last-token logit per sequence
    assert g.meta["new_tokens"] == 194


def test_bad_contexts_name_the_field(cfg: workloads.ModelConfig) -> None:
    with pytest.raises(SpecError, match="context_len"):
        workloads.decode(cfg, batch=2, context_len=[10, 20, 30])
    with pytest.raises(SpecError, match=r"context_len\[1\]"):
        workloads.decode(cfg, batch=2, context_len=[10, 0])
    with pytest.raises(SpecError, match=r"sequences\[0\]"):
        workloads.batch_step(cfg, sequences=[(0, 5)])
