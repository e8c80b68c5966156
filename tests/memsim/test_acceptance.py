"""The issue's acceptance points, on shipped presets with the workload builders.

Expected numbers are derived by hand from the preset figures in the comments.
"""

from __future__ import annotations

import pytest

import memsim
from hw_models import load_system
from memsim.invariants import roofline_lower_bound
from workloads import generate, load_model, train_step


@pytest.fixture(scope="module")
def h100():  # type: ignore[no-untyped-def]
    return load_system("h100_sxm")


def _decode_step_weight_bytes(graph) -> float:  # type: ignore[no-untyped-def]
    return graph.tensor_bytes("weight")


def test_llama2_7b_decode_is_memory_bound_near_the_weight_bound(h100) -> None:  # type: ignore[no-untyped-def]
    g = generate(load_model("llama2_7b"), batch=1, prompt_len=128, gen_len=8)
    r = memsim.simulate(h100, g, fidelity="analytic")
    # Llama-2-7B bf16: 6.74e9 params x 2 B = 13.5 GB of weights, all read every
    # decode step; H100 HBM3 peak 3.35 TB/s -> lower bound 4.02 ms per token
    weights = _decode_step_weight_bytes(g)
    assert weights == pytest.approx(6.74e9 * 2, rel=0.01)
    bound = weights / 3.35e12
    tpot = r.summary()["tpot_s"]
    assert bound <= tpot <= 1.5 * bound
    ops = r.ops_frame()
    decode = ops[ops.phase == "decode"].groupby("bound")["duration_s"].sum()
    assert decode.idxmax() == "tier:hbm"


def test_prefill_of_2048_tokens_is_compute_bound(h100) -> None:  # type: ignore[no-untyped-def]
    g = generate(load_model("llama2_7b"), batch=1, prompt_len=2048, gen_len=1)
    ops = memsim.simulate(h100, g, fidelity="analytic").ops_frame()
    prefill_ops = ops[ops.phase == "prefill"]
    prefill = prefill_ops.groupby("bound")["duration_s"].sum()
    # 2 x 6.74e9 x 2048 FLOP = 27.6 TFLOP against 13.5 GB: 2048 FLOP/B, far above
    # the H100's ridge (989 TFLOP/s / 3.35 TB/s = 295 FLOP/B): the GEMMs are compute-bound
    assert prefill.idxmax() == "compute"
    gemm = prefill_ops[prefill_ops.kind == "gemm"].groupby("bound")["duration_s"].sum()
    assert gemm["compute"] > 0.95 * gemm.sum()
    # FlashAttention (FA1) tiles K/V through one SM's 228 KiB, re-reading Q and O once
    # per 228-key block (9 blocks at 2048 tokens), and the norms and pointwise kernels
    # are memory-bound: together about a fifth of prefill time
    assert prefill["compute"] > 0.7 * prefill.sum()


def test_kv_cache_in_host_ddr_slows_decode_by_the_bandwidth_ratio(h100) -> None:  # type: ignore[no-untyped-def]
    g = generate(load_model("llama2_7b"), batch=16, prompt_len=4096, gen_len=4)
    fast = memsim.simulate(h100, g, fidelity="analytic").summary()["tpot_s"]
    slow = memsim.simulate(h100, g, policy="kv_offload", fidelity="analytic").summary()["tpot_s"]
    # bytes per decode step: weights W (stay in HBM) and the KV read K (moves to DDR)
    steps = 4
    kv_read = sum(a.bytes for op in g.ops if op.phase == "decode" for a in op.reads
                  if g.tensors[a.tensor].kind == "kv") / steps  # fmt: skip
    w = g.tensor_bytes("weight")
    hbm = 3.35e12 * 0.9  # achievable HBM bandwidth
    pcie = 64e9 * 0.8  # achievable PCIe Gen5 x16, one direction
    predicted = (w / hbm + kv_read / pcie) / ((w + kv_read) / hbm)
    assert predicted > 10  # the KV cache dominates: ~16 x 4 KiB tokens x 512 KiB
    assert slow / fast == pytest.approx(predicted, rel=0.1)


def test_streaming_weights_that_do_not_fit_is_bounded_by_the_link(h100) -> None:  # type: ignore[no-untyped-def]
    g = generate(load_model("llama2_70b"), batch=1, prompt_len=16, gen_len=2)
    w = g.tensor_bytes("weight")
    assert w > h100.tiers["hbm"].capacity_bytes  # 69e9 x 2 B = 138 GB > 80 GB
    with pytest.raises(memsim.CapacityError):
        memsim.simulate(h100, g, policy=memsim.make_policy("explicit", mapping={"weight": "hbm"}))
    r = memsim.simulate(h100, g, policy="stream_weights", fidelity="event")
    # every pass (prefill + 2 decode steps) streams all weights over PCIe at
    # 64 GB/s x 0.8: 3 x 138 GB / 51.2 GB/s = 8.1 s; HBM would need only 0.14 s
    link_time = 3 * w / (64e9 * 0.8)
    assert r.makespan_s == pytest.approx(link_time, rel=0.05)
    pcie = r.links_frame().set_index("link").loc["pcie"]
    assert pcie["busy_s"] > 0.95 * r.makespan_s
    hbm_busy = r.tiers_frame().set_index("tier").loc["hbm", "busy_s"]
    assert hbm_busy < 0.1 * r.makespan_s


CASES = {
    # one lane, no DMA: the event engine's fast path (a check of bookkeeping, not of overlap)
    "h100": ("h100_sxm", "generate", {"tp": 1}),
    "dgx_tp8": ("dgx_h100", "generate", {"tp": 8}),
    "sn40l": ("sn40l", "generate", {"tp": 1}),
    # four lanes in one chain: the event engine once ran the stages at once (4x too fast)
    "dgx_pp4": ("dgx_h100", "generate", {"pp": 4}),
    # four lanes overlapping under 1F1B, each on its own GPU: the processor-sharing path,
    # with nothing shared between the stages (weights and activations in each GPU's HBM)
    "dgx_1f1b": ("dgx_h100", "train", {"pp": 4, "tp": 2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_event_engine_equals_the_analytic_path_without_contention(case: str) -> None:
    system, kind, kw = CASES[case]
    model = load_model("llama2_7b")
    if kind == "generate":
        g = generate(model, batch=2, prompt_len=64, gen_len=3, **kw)
    else:
        g = train_step(model, batch=4, seq_len=128, micro_batches=4, **kw)
    a = memsim.simulate(system, g, fidelity="analytic")
    e = memsim.simulate(system, g, fidelity="event")
    assert e.makespan_s == pytest.approx(a.makespan_s, rel=0.01)
    if kind == "generate":
        assert e.summary()["tpot_s"] == pytest.approx(a.summary()["tpot_s"], rel=0.01)
    sys_ = load_system(system)
    bound = roofline_lower_bound(
        sys_, g, memsim.make_policy("fastest_fit").place(sys_, g), execution=a.execution
    )
    assert min(a.makespan_s, e.makespan_s) >= bound


def test_tensor_parallel_collectives_cost_a_ring_all_reduce() -> None:
    # the preset picks the cheapest algorithm per message (tests/memsim/test_collectives.py);
    # here the NVLink is forced to a ring to check the ring formula on the real preset
    dgx = load_system("dgx_h100", overrides={"links.nvlink.collective_algorithm": "ring"})
    g = generate(load_model("llama2_7b"), batch=1, prompt_len=32, gen_len=1, tp=8)
    r = memsim.simulate(dgx, g, fidelity="analytic")
    ops = r.ops_frame()
    coll = ops[ops.kind == "collective"]
    assert len(coll) > 0
    op = next(o for o in g.ops if o.collective is not None)
    # 2 (p-1)/p x bytes / (450 GB/s x 0.85) + 2 (p-1) x 2 us
    ring = 2 * 7 / 8 * op.collective.bytes / (450e9 * 0.85) + 14 * 2e-6
    assert coll["duration_s"].iloc[0] == pytest.approx(ring, rel=0.05)
