"""Sparse prefill (MInference patterns): the fraction computed, and the graph it scales."""

from __future__ import annotations

import pytest

import memsim
import workloads
from hw_models.errors import SpecError
from workloads.attention import AttentionShape, fused_fa2_traffic, sparse_traffic
from workloads.options import SparsePrefill


def test_fraction_by_hand() -> None:
    # 8 queries over 8 keys, causal: query i sees i + 1 keys; a budget of 4 computes
    # 1 + 2 + 3 + 4 + 4 x 4 = 26 of the 36 visible scores
    a = SparsePrefill(pattern="a_shape", sink=1, local=3)
    assert a.fraction(8, 8) == pytest.approx(26 / 36)
    vs = SparsePrefill(pattern="vertical_slash", vertical=2, slash=2)
    assert vs.fraction(8, 8) == pytest.approx(26 / 36)
    bs = SparsePrefill(pattern="block_sparse", blocks=2, block_size=2)
    assert bs.fraction(8, 8) == pytest.approx(26 / 36)
    # a chunk of 4 queries after 4 cached tokens sees 5..8 keys: min(n, 4) = 4 each
    assert a.fraction(4, 8) == pytest.approx(16 / 26)
    assert a.fraction(1, 8) == 1.0  # decode is never sparse
    assert SparsePrefill(pattern="density", density=0.05).fraction(1000, 1000) == 0.05
    # a budget covering every key is dense
    assert SparsePrefill(pattern="a_shape", sink=64, local=64).fraction(100, 100) == 1.0


def test_bad_patterns_name_the_field() -> None:
    with pytest.raises(SpecError, match=r"sparse_prefill\.pattern"):
        SparsePrefill(pattern="diagonal")
    with pytest.raises(SpecError, match=r"sparse_prefill\.density"):
        SparsePrefill(pattern="density", density=0.0)
    with pytest.raises(SpecError, match="computes no key"):
        SparsePrefill(pattern="a_shape")


def test_traffic_scales_with_a_floor() -> None:
    s = AttentionShape(batch=1, heads=8, kv_heads=8, head_dim=64, q_len=4096, kv_len=4096)
    dense = fused_fa2_traffic(s, 64 * 1024)
    half = sparse_traffic(dense, s, 0.5)
    assert half.flops == pytest.approx(dense.flops / 2)
    assert half.k_read == pytest.approx(dense.k_read / 2)
    assert half.q_read == dense.q_read  # Q read once either way (the floor)
    kv_once = 4096 * 64 * 2.0 * 8
    tiny = sparse_traffic(dense, s, 1e-6)
    assert tiny.k_read == kv_once and tiny.v_read == kv_once


def test_graph_and_both_fidelities_scale_attention() -> None:
    cfg = workloads.load_model("llama2_7b")
    sp = SparsePrefill(pattern="density", density=0.1)
    dense = workloads.prefill(cfg, batch=1, prompt_len=8192, attention="fused_fa2")
    sparse = workloads.prefill(
        cfg, batch=1, prompt_len=8192, attention="fused_fa2", sparse_prefill=sp
    )
    da = [op for op in dense.ops if op.kind == "attention"]
    sa = [op for op in sparse.ops if op.kind == "attention"]
    assert sum(o.flops or 0 for o in sa) == pytest.approx(0.1 * sum(o.flops or 0 for o in da))
    other = [o.flops for o in dense.ops if o.kind != "attention"]
    assert other == [o.flops for o in sparse.ops if o.kind != "attention"]
    for fid in ("analytic", "event"):
        d = memsim.simulate("a100_80gb_sxm", dense, fidelity=fid)
        s = memsim.simulate("a100_80gb_sxm", sparse, fidelity=fid)
        at = {
            name: sum(
                t
                for t, k in zip(r.op_column("duration_s"), r.op_column("kind"), strict=True)
                if k == "attention"
            )
            for name, r in (("dense", d), ("sparse", s))
        }
        assert at["sparse"] < 0.2 * at["dense"]
        assert s.makespan_s < d.makespan_s
