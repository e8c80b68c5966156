"""Tracing real PyTorch modules on meta tensors (extra ``trace``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workloads import from_hf_dict, prefill

pytestmark = pytest.mark.trace

SMALL = {
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 512,
}


def _llama(**over):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(**{**SMALL, **over})
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
    return torch, model


def _trace(model, torch, batch: int, seq: int, **kw):
    from workloads import trace_module

    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    return trace_module(model, (ids,), kwargs={"use_cache": False, "logits_to_keep": 1}, **kw)


@pytest.mark.slow  # a real model traced on meta tensors: tens of seconds
@pytest.mark.parametrize(("batch", "seq"), [(2, 64), (1, 256)])
def test_llama_trace_matches_the_analytic_builder(batch: int, seq: int) -> None:
    torch, model = _llama()
    traced = _trace(model, torch, batch, seq)
    analytic = prefill(
        from_hf_dict({**SMALL, "model_type": "llama"}, name="small"), batch=batch, prompt_len=seq
    )
    assert traced.total_flops == pytest.approx(analytic.total_flops, rel=0.02)
    assert traced.total_bytes_moved == pytest.approx(analytic.total_bytes_moved, rel=0.02)

    # same GEMMs, shape by shape
    def gemms(g):
        return sorted((op.gemm.m, op.gemm.n, op.gemm.k) for op in g.ops if op.kind == "gemm")

    assert gemms(traced) == gemms(analytic)
    weights = {n for n, t in traced.tensors.items() if t.kind == "weight"}
    assert "model.layers.1.mlp.down_proj.weight" in weights
    assert traced.tensors["model.layers.1.mlp.down_proj.weight"].layer == 1


@pytest.mark.slow
def test_unfused_trace_moves_more_bytes() -> None:
    torch, model = _llama(num_hidden_layers=1)
    fused, eager = _trace(model, torch, 1, 32), _trace(model, torch, 1, 32, fuse=False)
    assert eager.total_flops == pytest.approx(fused.total_flops)
    assert eager.total_bytes_moved > 1.2 * fused.total_bytes_moved


def test_import_workloads_does_not_import_torch() -> None:
    code = "import sys, workloads; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
