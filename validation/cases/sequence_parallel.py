"""Sequence parallelism's activation memory (Korthikanti et al., MLSys 2023).

"Reducing Activation Recomputation in Large Transformer Models" (arXiv 2205.05198),
Table 2, activation memory per transformer layer in bytes (16-bit activations,
``s`` sequence, ``b`` micro-batch, ``h`` hidden, ``a`` heads, ``t`` tensor-parallel
ranks): no parallelism ``sbh (34 + 5as/h)``; tensor parallelism
``sbh (10 + 24/t + 5as/(ht))``; tensor + sequence parallelism ``sbh/t (34 + 5as/h)``.

memsim builds training steps of a GPT-3-175B-like stack (OPT architecture: pre-LN,
LayerNorm, 4h ReLU FFN, multi-head attention; h 12288, 96 heads, s 2048, b 1) with
``attention="unfused"`` (the paper's attention stores its score matrices), ``tp=8``
and ``sequence_parallel=True``, simulates them (analytic, DGX H100 with room for
everything) and takes the simulated peak of activation memory of a 4-layer and a
2-layer model; half their difference is one layer's saved activations
(:func:`memsim.stages.stage_peak_bytes`). Nothing is fitted.

memsim models no dropout: the paper's three dropout masks (one byte per element:
``sbh`` after attention, ``sbh`` after the MLP, ``as²b`` on the attention
probabilities) are not stored, so memsim's figure is the formula less
``sbh (2 + as/h)`` (sharded by ``t`` under sequence parallelism); the rest (4 sbh of
LayerNorm inputs, 11 - 1 of attention, 19 - 1 of MLP, 4 as²b of scores and
probabilities) is the same element for element. The note gives all three rows.
"""

from __future__ import annotations

from validation.core import Outcome, case

SOURCE = (
    'Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", '
    "MLSys 2023 (arXiv 2205.05198), Table 2"
)
S, H, HEADS, T = 2048, 12288, 96, 8
AS_H = HEADS * S / H  # 16
PAPER = {
    "none": 34 + 5 * AS_H,
    "tp": 10 + 24 / T + 5 * AS_H / T,
    "tp+sp": (34 + 5 * AS_H) / T,
}  # per layer, in units of sbh bytes


def _per_layer() -> dict[str, float]:
    """memsim's saved activation bytes per layer over ``sbh``, per configuration."""
    import memsim
    from hw_models import load_system
    from memsim.stages import stage_peak_bytes
    from workloads import from_hf_dict, train_step

    system = load_system("dgx_h100", overrides={"tiers.hbm.capacity_bytes": 1e13})

    def peak(layers: int, **kw: object) -> float:
        cfg = from_hf_dict(
            {
                "model_type": "opt",
                "hidden_size": H,
                "num_hidden_layers": layers,
                "num_attention_heads": HEADS,
                "ffn_dim": 4 * H,
                "vocab_size": 51200,
                "max_position_embeddings": S,
                "word_embed_proj_dim": H,
            },
            name="gpt3-175b-like",
        )
        g = train_step(cfg, batch=1, seq_len=S, attention="unfused", **kw)  # type: ignore[arg-type]
        return stage_peak_bytes(memsim.simulate(system, g, fidelity="analytic"), g)[0]

    runs = {"none": {}, "tp": {"tp": T}, "tp+sp": {"tp": T, "sequence_parallel": True}}
    return {k: (peak(4, **kw) - peak(2, **kw)) / 2 / (S * H) for k, kw in runs.items()}


@case(
    "sequence_parallel_activation_memory",
    title="Tensor + sequence parallelism: activation memory per layer sbh/t (34 + 5as/h)",
    source=SOURCE,
    quantity="saved activations per layer, GPT-3-175B-like, t = 8, s = 2048 (x sbh bytes)",
    unit="sbh",
    paper=PAPER["tp+sp"],
    tolerance="model",
)
def tp_sp() -> Outcome:
    m = _per_layer()
    masks = {"none": 2 + AS_H, "tp": 2 + AS_H / T, "tp+sp": (2 + AS_H) / T}
    rows = "; ".join(
        f"{k}: memsim {m[k]:.3f} vs paper {PAPER[k]:.3f} (paper less dropout masks "
        f"{PAPER[k] - masks[k]:.3f})"
        for k in PAPER
    )
    return Outcome(
        memsim=m["tp+sp"],
        note=f"memsim stores no dropout masks; {rows}",
        details={"memsim_sbh": m, "paper_sbh": PAPER},
    )


@case(
    "sequence_parallel_vs_tensor_parallel",
    title="Sequence parallelism cuts tensor parallelism's activation memory per layer",
    source=SOURCE,
    quantity="activations per layer, TP + SP / TP alone, GPT-3-175B-like, t = 8, s = 2048",
    unit="x",
    paper=PAPER["tp+sp"] / PAPER["tp"],
    tolerance="close",
)
def sp_over_tp() -> Outcome:
    m = _per_layer()
    return Outcome(
        memsim=m["tp+sp"] / m["tp"],
        note=f"memsim {m['tp+sp']:.3f} / {m['tp']:.3f} sbh (no dropout masks); paper "
        f"{PAPER['tp+sp']:.3f} / {PAPER['tp']:.3f} sbh",
    )
