"""Context parallelism (ring attention with the causal load balance): bytes and FLOPs.

Llama-2-7B (h 4096, 32 heads of 128, no GQA), bf16, one sequence of ``s = 1024``
tokens over ``cp`` ranks. A rank keeps ``l = s / cp`` tokens; its K and V for one
layer are ``2 x l x 4096 x 2`` bytes. The ring passes them ``cp - 1`` times, so a
rank sends ``(cp - 1)/cp`` of the whole sequence's K/V bytes, ``2 x s x 4096 x 2``,
per layer in the forward, and twice that in the backward (dK/dV back, K/V again).
"""

from __future__ import annotations

import pytest

import memsim
from hw_models import load_system
from hw_models.errors import SpecError
from memsim.cost import collective_link_bytes
from memsim.invariants import roofline_lower_bound
from workloads import Graph, load_model, train_step

L7 = load_model("llama2_7b")
S = 1024
KV_WHOLE = 2 * S * 4096 * 2


def _ring_bytes(g: Graph, phase: str) -> float:
    return sum(
        collective_link_bytes(op.collective.kind, op.collective.bytes, op.collective.group)
        for op in g.ops
        if op.collective is not None
        and op.collective.kind == "send_recv"
        and op.layer == 5
        and op.phase == phase
    )


@pytest.mark.parametrize("cp", [2, 4])
def test_ring_moves_cp_minus_one_over_cp_of_the_kv_bytes(cp: int) -> None:
    g = train_step(L7, batch=1, seq_len=S, cp=cp)
    assert _ring_bytes(g, "forward") == pytest.approx((cp - 1) / cp * KV_WHOLE)
    assert _ring_bytes(g, "backward") == pytest.approx(2 * (cp - 1) / cp * KV_WHOLE)


def test_causal_load_balance_gives_each_rank_a_cp_th_of_the_work() -> None:
    one = train_step(L7, batch=1, seq_len=S)
    attn = {op.name: op.flops for op in one.ops if op.kind == "attention"}
    for cp in (2, 4):
        g = train_step(L7, batch=1, seq_len=S, cp=cp)
        mine = {op.name: op.flops for op in g.ops if op.kind == "attention"}
        # 4 d per pair, s (s + 1) / 2 causal pairs over cp ranks: exactly 1/cp each
        assert mine == pytest.approx({n: f / cp for n, f in attn.items()}, rel=1e-12)
        gemm = sum(op.flops for op in g.ops if op.kind == "gemm")
        assert gemm == pytest.approx(sum(op.flops for op in one.ops if op.kind == "gemm") / cp)


def test_weight_gradients_reduce_over_dp_times_cp() -> None:
    # 2 data-parallel x 2 context-parallel ranks: each layer's gradients all-reduce over 4
    g = train_step(L7, batch=2, seq_len=256, dp=2, cp=2)
    groups = {op.collective.group for op in g.ops if op.collective and "grad" in op.name}
    assert groups == {4}
    flow: set[str] = set()
    for op in g.ops:
        for a in op.reads:
            if g.tensors[a.tensor].kind in ("activation", "gradient", "logits"):
                assert a.tensor in flow, (op.name, a.tensor)
        flow.update(a.tensor for a in op.writes)


def test_context_parallel_step_simulates_within_its_bound() -> None:
    # a 2-layer cut at 1024 tokens: the ring's sends run over NVLink between the ranks;
    # neither fidelity beats the roofline bound, and the two agree (nothing contends)
    g = train_step(L7.model_copy(update={"num_hidden_layers": 2}), batch=1, seq_len=S, cp=4)
    system = load_system("dgx_h100")
    a = memsim.simulate(system, g, fidelity="analytic")
    e = memsim.simulate(system, g, fidelity="event")
    bound = roofline_lower_bound(system, g, memsim.make_policy("fastest_fit").place(system, g))
    assert min(a.makespan_s, e.makespan_s) >= bound
    assert e.makespan_s == pytest.approx(a.makespan_s, rel=0.01)
    ring = a.ops_frame()
    ring = ring[ring["name"].str.endswith("cp_ring")]
    assert len(ring) == 2 * 2 and (ring["duration_s"] > 0).all()  # forward + re-run, 2 layers


def test_bad_context_parallel() -> None:
    with pytest.raises(SpecError, match=r"cp.*2 x cp = 8"):
        train_step(L7, batch=1, seq_len=100, cp=4)
    with pytest.raises(SpecError, match=r"cp.*fused attention"):
        train_step(L7, batch=1, seq_len=64, cp=2, attention="unfused")
    with pytest.raises(SpecError, match="cp"):
        train_step(L7, batch=1, seq_len=64, cp=0)
