"""MoE inference with offloaded experts: pre-gated prefetch against on-demand fetching.

Pre-gated MoE (Hwang et al., ISCA 2024, arXiv 2308.12066) keeps the experts in CPU
memory and selects the next block's experts one block ahead, so their CPU-to-GPU copy
overlaps the current block. The figure used here, a latency reduction of "up to
~1.9x over CPU-offload baselines", comes from a secondary summary of the paper
(sciencestack.ai, arXiv 2308.12066); the paper's own figure and table were not
retrieved, and its models (SwitchTransformer, 8-128 experts) have no memsim preset.

memsim runs its expert cache (``memsim moe-cache``) on Mixtral-8x7B on one A100 80GB
with HBM holding as many experts per layer as one token uses (``slots = k = 2``,
Pre-gated MoE's memory-saving mode) and the rest in host DDR over PCIe, and compares
``--prefetch pregated`` with ``none`` on the same routing trace. The routing skew of
real traces is not published; the case samples uniform and Zipf (1.0, 2.0) routing
(seed 0, 32 tokens) and judges the median share of latency removed (``1 - 1/speed-up``,
so that a 1.02x speed-up is not "within 2x" of 1.9x); the others are in the note.
Expert Buffering (Huang et al., arXiv 2303.06182) is not a case: the figure found for
it (6.21-11.55x) is the throughput of dynamic gating, which memsim does not model.
"""

from __future__ import annotations

import statistics

from memsim.expert_cache import run_expert_cache, sample_routing
from validation.core import Outcome, case

ROUTINGS = (("uniform", 1.0), ("zipf", 1.0), ("zipf", 2.0))


@case(
    "pregated_moe_speedup",
    title="Pre-gated prefetch of offloaded experts cuts MoE latency up to ~1.9x vs on-demand",
    source='Hwang et al., "Pre-gated MoE: An Algorithm-System Co-Design for Fast and '
    'Scalable Mixture-of-Expert Inference", ISCA 2024 (arXiv 2308.12066); figure from '
    "a secondary summary (sciencestack.ai), the paper's table not retrieved",
    quantity="share of the on-demand decode latency removed by pre-gating (1 - 1/speed-up; "
    "paper 1 - 1/1.9), Mixtral-8x7B, A100 80GB, experts in DDR, 2 slots per layer, "
    "median over routing skews",
    unit="fraction",
    paper=1.0 - 1.0 / 1.9,
    tolerance="order",
    fitted="none fitted; routing skew not published (uniform, Zipf 1 and 2 shown); "
    "model differs from the paper's SwitchTransformer",
)
def pregated_speedup() -> Outcome:
    speedups: dict[str, float] = {}
    hit_rates: dict[str, float] = {}
    share = 0.0
    for dist, skew in ROUTINGS:
        trace = sample_routing(
            experts=8, layers=32, steps=32, k=2, distribution=dist, skew=skew, seed=0
        )
        runs = {
            pf: run_expert_cache(
                "a100_80gb_sxm", "mixtral_8x7b", trace, slots=2, policy="lru", prefetch=pf
            )
            for pf in ("none", "pregated")
        }
        label = dist if dist == "uniform" else f"zipf {skew:g}"
        speedups[label] = runs["none"].mean_step_s / runs["pregated"].mean_step_s
        hit_rates[label] = runs["none"].stats.hit_rate
        share = runs["none"].resident_step_s / runs["none"].mean_step_s
    per_expert_ms = runs["none"].expert_bytes / 25.6e9 * 1e3
    note = (
        ", ".join(f"{k}: {v:.3f}x (hit rate {hit_rates[k]:.2f})" for k, v in speedups.items())
        + f". A Mixtral expert is {runs['none'].expert_bytes / 1e6:.0f} MB, "
        f"{per_expert_ms:.1f} ms over PCIe (25.6 GB/s achievable), while a whole decode step "
        f"with every expert resident is {runs['none'].resident_step_s * 1e3:.1f} ms: compute "
        f"is {share:.0%} of the on-demand step, so overlapping copies with compute can hide "
        "at most that. The paper's small SwitchTransformer experts have copy and compute "
        "times of the same order, where overlap approaches 2x; memsim has no Switch preset"
    )
    # judged on the latency removed: a ratio test on speed-ups near 1 would pass 1.02x
    return Outcome(
        memsim=1.0 - 1.0 / statistics.median(speedups.values()),
        note=note,
        details={"speedup_by_routing": speedups, "hit_rate_by_routing": hit_rates},
    )
