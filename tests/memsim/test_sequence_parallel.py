"""Megatron sequence parallelism (Korthikanti et al., MLSys 2023): link bytes and memory.

Llama-2-7B (h 4096, FFN 11008, 32 layers), bf16. With ``tp = t`` tensor parallelism
each layer all-reduces ``N = tokens x h x 2`` bytes twice in the forward (after the
attention-output and FFN-down projections) and twice in the backward; a ring
all-reduce sends ``2 (t-1)/t N`` per device. Sequence parallelism replaces each by a
reduce-scatter (after the projection) and an all-gather (before the next block's
first GEMM), ``(t-1)/t N`` each: the same bytes. Its backward mirrors them and, as
only the norm's sharded output is saved, all-gathers the two GEMM inputs again:
``2 (t-1)/t N`` more per layer.
"""

from __future__ import annotations

import pytest

import memsim
from hw_models import load_system
from hw_models.errors import SpecError
from memsim.cost import collective_link_bytes
from memsim.stages import stage_peak_bytes
from workloads import Graph, generate, load_model, prefill, train_step

L7 = load_model("llama2_7b")
SEQ, TP = 512, 4
N = SEQ * 4096 * 2


def _layer_link_bytes(g: Graph, phase: str) -> float:
    """Link bytes per device of the collectives of layer 5 in ``phase``."""
    return sum(
        collective_link_bytes(op.collective.kind, op.collective.bytes, op.collective.group)
        for op in g.ops
        if op.collective is not None and op.layer == 5 and op.phase == phase
    )


def test_sequence_parallel_moves_the_all_reduces_bytes() -> None:
    tp = train_step(L7, batch=1, seq_len=SEQ, tp=TP)
    sp = train_step(L7, batch=1, seq_len=SEQ, tp=TP, sequence_parallel=True)
    frac = (TP - 1) / TP
    assert _layer_link_bytes(tp, "forward") == pytest.approx(2 * 2 * frac * N)
    assert _layer_link_bytes(sp, "forward") == pytest.approx(2 * 2 * frac * N)
    assert _layer_link_bytes(tp, "backward") == pytest.approx(2 * 2 * frac * N)
    assert _layer_link_bytes(sp, "backward") == pytest.approx(2 * 2 * frac * N + 2 * frac * N)
    kinds = [op.collective.kind for op in sp.ops if op.collective and op.layer == 5]
    assert sorted(kinds) == sorted(["all_gather", "reduce_scatter"] * 4 + ["all_gather"] * 2)
    # prefill: the same forward collectives, and norms over a quarter of the rows
    p_tp = prefill(L7, batch=1, prompt_len=SEQ, tp=TP)
    p_sp = prefill(L7, batch=1, prompt_len=SEQ, tp=TP, sequence_parallel=True)
    assert _layer_link_bytes(p_sp, "prefill") == pytest.approx(_layer_link_bytes(p_tp, "prefill"))
    norm = {g is p_sp: sum(op.flops for op in g.ops if op.kind == "norm") for g in (p_tp, p_sp)}
    assert norm[True] == pytest.approx(norm[False] / TP, rel=1e-3)


@pytest.mark.parametrize(
    ("options", "hand"),
    [
        ({}, "8A + 3F"),
        ({"tp": TP}, "4A + 4A/t + 3F/t"),
        ({"tp": TP, "sequence_parallel": True}, "(8A + 3F)/t"),
    ],
)
def test_saved_activations_per_layer(options: dict[str, object], hand: str) -> None:
    """Per layer a Llama block saves two residual sums and two normed GEMM inputs
    (4 A, whole under TP), Q, K, V, O (4 A) and gate, up, SiLU·up (3 F), the last two
    groups split over t by TP; SP splits the first group too (the norms' sharded
    outputs are kept and re-gathered in the backward)."""
    A, F, t = SEQ * 4096 * 2, SEQ * 11008 * 2, TP
    expected = {
        "8A + 3F": 8 * A + 3 * F,
        "4A + 4A/t + 3F/t": 4 * A + (4 * A + 3 * F) / t,
        "(8A + 3F)/t": (8 * A + 3 * F) / t,
    }[hand]
    system = load_system("dgx_h100", overrides={"tiers.hbm.capacity_bytes": 1e12})
    peaks = []
    for layers in (2, 4):
        cfg = L7.model_copy(update={"num_hidden_layers": layers})
        g = train_step(cfg, batch=1, seq_len=SEQ, **options)  # type: ignore[arg-type]
        peaks.append(stage_peak_bytes(memsim.simulate(system, g, fidelity="analytic"), g)[0])
    assert (peaks[1] - peaks[0]) / 2 == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_sequence_parallel_graph_flows(recompute: str) -> None:
    g = train_step(L7, batch=4, seq_len=32, micro_batches=2, pp=2, tp=2, recompute=recompute,
                   sequence_parallel=True, schedule="zb_h1")  # fmt: skip
    written: set[str] = set()
    for op in g.ops:
        for a in op.reads:
            if g.tensors[a.tensor].kind in ("activation", "gradient", "logits"):
                assert a.tensor in written, (op.name, a.tensor)
        written.update(a.tensor for a in op.writes)
    none = train_step(L7, batch=4, seq_len=32, micro_batches=2, pp=2, tp=2, recompute=recompute)
    norms = sum(op.flops for op in none.ops if op.kind == "norm")
    sp_norms = sum(op.flops for op in g.ops if op.kind == "norm")
    assert g.total_flops == pytest.approx(none.total_flops - norms + sp_norms, rel=1e-9)


def test_bad_sequence_parallel() -> None:
    with pytest.raises(SpecError, match=r"sequence_parallel.*split over tp=4"):
        train_step(L7, batch=1, seq_len=6, tp=4, sequence_parallel=True)
    with pytest.raises(SpecError, match=r"sequence_parallel.*mixtral"):
        train_step(load_model("mixtral_8x7b"), batch=1, seq_len=8, tp=2, sequence_parallel=True)
    prefill(L7, batch=1, prompt_len=8, tp=2, sequence_parallel=True)  # prefill is fine,
    with pytest.raises(SpecError, match=r"sequence_parallel.*decode"):  # decode steps are not
        generate(L7, batch=1, prompt_len=8, gen_len=2, tp=2, sequence_parallel=True)
