"""FlashAttention's IO complexity (Dao et al., NeurIPS 2022, Theorem 2).

Standard attention moves Θ(N d + N²) bytes between HBM and the chip; FlashAttention
Θ(N² d² / M) for an on-chip buffer of M elements. memsim's fused model
(:func:`workloads.attention.fused_traffic`) walks the paper's Algorithm 1 with its
block sizes ``Bc = ceil(M / 4d)``, ``Br = min(Bc, d)``; the case fits the exponent of
M in its HBM traffic over a range of buffers where the N² d² / M term dominates. The
block sizes are rounded up, so the exponent is held to ``close`` (±10 %), not exact.
"""

from __future__ import annotations

import numpy as np

from validation.core import Outcome, case
from workloads.attention import AttentionShape, fused_traffic

SOURCE = (
    'Dao et al., "FlashAttention: Fast and Memory-Efficient Exact Attention with '
    'IO-Awareness", NeurIPS 2022, Theorem 2'
)


def _shape(n: int) -> AttentionShape:
    return AttentionShape(
        batch=1, heads=1, kv_heads=1, head_dim=64, q_len=n, kv_len=n, causal=False
    )


@case(
    "flashattention_io_vs_sram",
    title="FlashAttention's HBM traffic falls as 1/M with the on-chip buffer M",
    source=SOURCE,
    quantity="exponent of M in HBM bytes (N = 16384, d = 64)",
    unit="",
    paper=-1.0,
    tolerance="close",
)
def io_vs_sram() -> Outcome:
    s = _shape(16384)
    sram = np.array([32, 48, 64, 96, 128, 192, 256], dtype=float) * 1024
    traffic = np.array([fused_traffic(s, float(m)).total for m in sram])
    slope = float(np.polyfit(np.log(sram), np.log(traffic), 1)[0])
    return Outcome(
        memsim=slope, note=f"buffers 32-256 KiB; fp16; traffic {traffic[0]:.3g} B at 32 KiB"
    )
