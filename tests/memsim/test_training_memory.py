"""Peak device memory of a training step against a hand-computed ledger, per recompute mode.

Llama-2-7B (h 4096, 32 layers of 32 heads of 128, FFN 11008, vocabulary 32000),
one sequence of 8192 tokens in bf16, on an MI300X (192 GB HBM: everything fits,
so the HBM peak is the whole footprint). The ledger is derived here from those
dimensions, not from the code under test:

* static: bf16 weights (2 B/param) and Adam's fp32 master copy and two moments
  (12 B/param), live all step;
* saved per layer for the backward: the two residual sums the fused add-and-norm
  kernels write (their backward needs the sum), the two normalised inputs of the
  GEMMs, Q and K after RoPE, V, the attention output (FlashAttention saves
  Q, K, V, O), and the FFN's gate, up and SiLU(gate)·up; RoPE's backward needs
  only its cos/sin tables, and the o/down projections' outputs are only added;
* the peak is either at the start of the backward (every saved activation, the
  logits and their gradient, no weight gradient yet) or at its end (every weight
  gradient but layer 0's, and layer 0's backward working set); it is the larger.

Selective recompute drops the attention output from the saved set (re-made
before the layer's backward); full recompute keeps one checkpoint per layer, its
input. Tolerance: 1 MB absolute, far below the smallest term that matters
(one 8192 x 4096 bf16 activation is 67 MB).
"""

from __future__ import annotations

import pytest

from memsim.simulate import simulate
from workloads import load_model, train_step

H, LAYERS, FFN, VOCAB, HEAD_DIM, T, BF16 = 4096, 32, 11008, 32000, 128, 8192, 2
LAYER_PARAMS = 4 * H * H + 3 * H * FFN + 2 * H  # q, k, v, o; gate, up, down; two norms
EMBED = VOCAB * H
PARAMS = LAYERS * LAYER_PARAMS + 2 * EMBED + H  # untied embedding and head, final norm
A = T * H * BF16  # one hidden-sized activation: 67 108 864 B
F = T * FFN * BF16  # one FFN-sized activation
LOGITS = T * VOCAB * BF16
SMALL = T * 8 + 2 * T * HEAD_DIM * BF16  # int64 token ids; the cos/sin tables

SAVED_PER_LAYER = {
    "none": 8 * A + 3 * F,  # 2 sums, 2 normed inputs, Q, K, V, O; gate, up, act
    "selective": 7 * A + 3 * F,  # the attention output is re-made
    "full": 1 * A,  # the layer's input
}


def ledger(recompute: str) -> float:
    """Peak bytes on the device, from the dimensions above."""
    static = (BF16 + 12) * PARAMS
    # start of the backward, at the loss: the saved activations; the final norm's inputs
    # (the last layer's FFN output, and its residual sum where that is not saved anyway),
    # its output, the logits and their gradient
    final_norm_inputs = A if recompute != "full" else 2 * A
    start = static + LAYERS * SAVED_PER_LAYER[recompute] + final_norm_inputs + A
    start += 2 * LOGITS + SMALL
    # end of the backward, at layer 0's SiLU backward: every weight gradient except
    # layer 0's (but its down projection's, just made) and the embedding's; layer 0's
    # input, the residual gradient flowing in, the seven hidden-sized activations its
    # remaining backward reads (sum after attention, 2 normed inputs, Q, K, V, O), gate
    # and up, and three FFN-sized gradients (of the SiLU output, of gate, of up)
    grads = BF16 * (PARAMS - EMBED - LAYER_PARAMS + H * FFN)
    end = static + grads + A + A + 7 * A + 2 * F + 3 * F + SMALL
    return max(start, end)


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_training_peak_memory_matches_the_ledger(recompute: str, fidelity: str) -> None:
    g = train_step(load_model("llama2_7b"), batch=1, seq_len=T, recompute=recompute)
    r = simulate("mi300x", g, fidelity=fidelity)
    hbm = next(t for t in r.tiers if t.tier == "hbm")
    assert hbm.peak_bytes == pytest.approx(ledger(recompute), abs=1e6)


def test_recompute_lowers_the_peak() -> None:
    """Simulated: none > selective > full (130.0, 127.9 and 108.7 GB); selective saves
    exactly one attention output per layer."""
    cfg = load_model("llama2_7b")
    peak = {}
    for mode in ("none", "selective", "full"):
        r = simulate("mi300x", train_step(cfg, batch=1, seq_len=T, recompute=mode))
        peak[mode] = next(t.peak_bytes for t in r.tiers if t.tier == "hbm")
    assert peak["none"] > peak["selective"] > peak["full"]
    assert peak["none"] - peak["selective"] == pytest.approx(LAYERS * A, abs=1e6)
