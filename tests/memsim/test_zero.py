"""ZeRO stages 0-3: model states and simulated peak memory per rank, by hand.

Llama-2-7B (h 4096, 32 layers, FFN 11008, vocabulary 32000) on 8 data-parallel
ranks of a DGX H100, 4096 tokens per rank, full recomputation (so activations are
small beside the model states). Ledgers derived here from those dimensions:
bf16 weights and gradients (2 B/param), Adam's fp32 master and moments
(K = 12 B/param), Rajbhandari et al. 2020, Sec. 5 and Fig. 1.
"""

from __future__ import annotations

import pytest

from hw_models import load_system
from hw_models.errors import SpecError
from memsim.simulate import simulate
from workloads import load_model, train_step

H, LAYERS, FFN, VOCAB, HEAD_DIM, BF16, K = 4096, 32, 11008, 32000, 128, 2, 12
LAYER = 4 * H * H + 3 * H * FFN + 2 * H
EMBED = VOCAB * H
PSI = LAYERS * LAYER + 2 * EMBED + H  # 6 738 415 616 parameters
DP, T = 8, 4096
A, F = T * H * BF16, T * FFN * BF16  # one hidden-sized / FFN-sized activation
SMALL = T * 8 + 2 * T * HEAD_DIM * BF16  # token ids, cos/sin tables
# layer 0's SiLU backward (the last layer's backward, where the gradients are all
# made): its input and the residual gradient, the 7 hidden-sized activations and
# gate and up it re-made and still reads, 3 FFN-sized gradients in flight
WORKING = A + A + 7 * A + 2 * F + 3 * F + SMALL


def model_states(stage: int, psi: float, dp: int) -> float:
    """The paper's per-rank model states: (2 + 2 + K) Psi sharded by stage."""
    return {
        0: (2 + 2 + K) * psi,
        1: 2 * psi + 2 * psi + K * psi / dp,
        2: 2 * psi + (2 + K) * psi / dp,
        3: (2 + 2 + K) * psi / dp,
    }[stage]


def test_the_formula_gives_the_papers_figure_1() -> None:
    # 7.5 B parameters on 64 ranks: 120, 31.4, 16.6 and 1.9 GB
    got = [model_states(s, 7.5e9, 64) / 1e9 for s in range(4)]
    assert got == pytest.approx([120, 31.4, 16.6, 1.9], abs=0.05)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_model_states_per_rank(stage: int) -> None:
    g = train_step(load_model("llama2_7b"), batch=64, seq_len=16, dp=64, zero=stage)
    weights, optimizer = g.tensor_bytes("weight"), g.tensor_bytes("optimizer")
    whole = sum(t.bytes for n, t in g.tensors.items() if n.startswith("grad.") and "@" not in n)
    shards = sum(t.bytes for n, t in g.tensors.items() if n.startswith("shard.grad."))
    assert weights == pytest.approx(2 * PSI / (64 if stage == 3 else 1))
    assert optimizer == pytest.approx(K * PSI / (64 if stage >= 1 else 1))
    assert whole == pytest.approx(2 * PSI if stage <= 1 else 0)
    assert shards == pytest.approx(2 * PSI / 64 if stage >= 1 else 0)
    kept = whole if stage <= 1 else shards  # the gradient memory the paper counts
    assert weights + optimizer + kept == pytest.approx(model_states(stage, PSI, 64))


def ledger(stage: int) -> float:
    """Peak bytes per rank: at layer 0's SiLU backward, when every gradient but layer
    0's (except its down projection's, just made) and the embedding's exists."""
    grads_so_far = PSI - EMBED - LAYER  # parameters whose gradient is complete
    if stage <= 1:  # whole gradients, the down projection's included
        grads = BF16 * (grads_so_far + H * FFN)
    else:  # shards, and the down projection's whole gradient before its reduce-scatter
        grads = BF16 * grads_so_far / DP + BF16 * H * FFN
    weights = BF16 * PSI / (DP if stage == 3 else 1)
    if stage == 3:  # layer 0's gathered weights its remaining backward reads (not w_down)
        weights += BF16 * (4 * H * H + 2 * H * FFN + 2 * H)
    optimizer = K * PSI / (DP if stage >= 1 else 1)
    return weights + optimizer + grads + WORKING


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_peak_memory_per_rank_matches_the_ledger(stage: int) -> None:
    # HBM enlarged to 200 GB so that stage 0 (108 GB of model states) fits too: the
    # peak is then the whole footprint
    system = load_system("dgx_h100", overrides={"tiers.hbm.capacity_bytes": 200e9})
    g = train_step(
        load_model("llama2_7b"), batch=DP, seq_len=T, dp=DP, zero=stage, recompute="full"
    )
    r = simulate(system, g, fidelity="analytic")
    hbm = next(t for t in r.tiers if t.tier == "hbm")
    assert hbm.peak_bytes == pytest.approx(ledger(stage), abs=1e6)


def test_zero_fits_what_plain_data_parallelism_cannot() -> None:
    """On a real DGX H100 (80 GB), stage 0 spills to host memory; stages 1-3 fit, each
    below the last (ledgers 37.2, 26.0, 14.6 GB), and stage 3 communicates more."""
    g = {
        s: train_step(load_model("llama2_7b"), batch=DP, seq_len=T, dp=DP, zero=s, recompute="full")
        for s in range(4)
    }  # fmt: skip
    r = {s: simulate("dgx_h100", g[s], fidelity="analytic") for s in range(4)}
    hbm = {s: next(t.peak_bytes for t in r[s].tiers if t.tier == "hbm") for s in range(4)}
    ddr = next(t.peak_bytes for t in r[0].tiers if t.tier == "ddr")
    assert ddr > 0 and hbm[0] <= 80e9
    assert hbm[1] > hbm[2] > hbm[3]
    assert r[1].meta["devices"] == DP  # one rank simulated, standing for 8
    nvlink = {s: next(lk.bytes for lk in r[s].links if lk.link == "nvlink") for s in (1, 2, 3)}
    # stages 1 and 2 move the gradients (reduce-scatter) and the weights (all-gather)
    # once: 2 x 7/8 x 2 Psi; stage 3 gathers the weights again for every forward and
    # backward: 3 x 7/8 x 2 Psi in all (the paper's 1.5x of plain data parallelism)
    assert nvlink[1] == pytest.approx(2 * 7 / 8 * 2 * PSI, rel=1e-9)
    assert nvlink[2] == pytest.approx(nvlink[1], rel=1e-9)
    assert nvlink[3] == pytest.approx(3 * 7 / 8 * 2 * PSI, rel=1e-9)


def test_bad_zero_arguments() -> None:
    cfg = load_model("llama2_7b")
    with pytest.raises(SpecError, match="zero"):
        train_step(cfg, batch=8, seq_len=8, dp=8, zero=4)
    with pytest.raises(SpecError, match="dp"):
        train_step(cfg, batch=6, seq_len=8, dp=4)
    with pytest.raises(SpecError, match="micro_batches"):
        train_step(cfg, batch=8, seq_len=8, dp=4, micro_batches=4)
