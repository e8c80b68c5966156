"""Passes over the attention input per softmax cascade, and the off-chip traffic they cost.

FuseMax (Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention
Accelerator Design", MICRO 2024, arXiv 2406.10491) writes attention as a cascade of
Einsums and counts the *passes* a cascade must make over the score row of a query
(the ``kv_len`` dimension): a pass must finish before the next can start, because the
next needs a reduction over the whole row (its maximum, its sum of exponentials).

=========  ======  ==========================================================
cascade    passes  Einsums per pass (row of scores ``S = Q K^T``)
=========  ======  ==========================================================
``3pass``  3       max ``m = max S``; sum ``l = sum exp(S - m)``; out ``exp(S - m) / l . V``
``2pass``  2       running max and rescaled sum together (online normaliser,
                   Milakov & Gimelshein 2018); then ``exp(S - m) / l . V``
``1pass``  1       running max, sum and output together, rescaled as the max grows
                   (online softmax fused with ``A V``: FlashAttention, FuseMax)
=========  ======  ==========================================================

What a pass costs depends on whether the score rows of a tile of queries fit the
on-chip buffer (``buffer_bytes``, elements of ``act_bytes``):

* a cascade of more than one pass keeps the score rows on chip between passes (the
  FLAT style: Kao et al., "FLAT: An Optimized Dataflow for Mitigating Attention
  Bottlenecks", ASPLOS 2023, tiles the queries in L-tiles whose whole rows are fused).
  Per query row it holds ``Q``, ``O`` and the ``kv_len`` scores:
  ``rows = floor((buffer - 2 d e) / ((kv_len + 2 d) e))`` rows per tile;
* when not one row fits, each pass after the first must get the scores again:
  ``recompute`` reads K again and recomputes ``Q K^T`` (the FLOPs count it), ``spill``
  writes the scores off chip once and reads them back in each later pass;
* the 1-pass cascade never holds a row: per query row ``Q``, ``O``, the running max and
  sum, ``rows = floor((buffer - 2 d e) / ((2 d + 2) e))`` (one key and value in flight:
  the ``2 d e``), whatever ``kv_len`` is.

Each tile of query rows reads K and V once per pass that needs them (K in every pass
that recomputes scores, V in the last). Counts are per (sequence, query head) and then
multiplied by ``batch x heads``; K and V are not shared between query heads of a group
(each head streams them), masks are ignored (every pair is computed).

>>> from workloads.attention import AttentionShape
>>> s = AttentionShape(batch=1, heads=1, kv_heads=1, head_dim=64, q_len=1024, kv_len=1024,
...                    causal=False)
>>> [cascade_traffic(s, 65536, c).passes for c in ("3pass", "2pass", "1pass")]
[3, 2, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw_models.errors import Problem, SpecError
from workloads.attention import AttentionShape

#: passes over the score row of each cascade
CASCADES: dict[str, int] = {"3pass": 3, "2pass": 2, "1pass": 1}
ROW_SPILL = ("recompute", "spill")


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadeTraffic:
    """Off-chip bytes and FLOPs of one attention call under one cascade."""

    cascade: str
    passes: int
    rows_per_tile: int
    tiles: int  # query tiles per (sequence, head)
    row_resident: bool  # the score rows stay on chip between passes
    q_bytes: float
    k_bytes: float
    v_bytes: float
    o_bytes: float
    score_bytes: float  # scores written and read back (``spill`` only)
    qk_flops: float  # including recomputation
    av_flops: float

    @property
    def total_bytes(self) -> float:
        """Every byte moved between the buffer and off-chip memory."""
        return self.q_bytes + self.k_bytes + self.v_bytes + self.o_bytes + self.score_bytes

    @property
    def flops(self) -> float:
        """QK and AV FLOPs (2 per multiply-add; softmax not counted)."""
        return self.qk_flops + self.av_flops


def cascade_passes(cascade: str) -> int:
    """Passes over the score row of ``cascade`` (``3pass``, ``2pass``, ``1pass``)."""
    if cascade not in CASCADES:
        raise SpecError(
            [Problem("cascade", f"unknown cascade {cascade!r} (known: {', '.join(CASCADES)})")]
        )
    return CASCADES[cascade]


def _rows(free: float, per_row: float) -> int:
    return max(0, math.floor(free / per_row + 1e-9))


def cascade_traffic(
    shape: AttentionShape, buffer_bytes: float, cascade: str, *, row_spill: str = "recompute"
) -> CascadeTraffic:
    """Off-chip traffic and FLOPs of ``shape`` under ``cascade`` with an on-chip buffer of
    ``buffer_bytes`` (rules in the module docstring)."""
    passes = cascade_passes(cascade)
    if row_spill not in ROW_SPILL:
        raise SpecError(
            [Problem("row_spill", f"expected one of {', '.join(ROW_SPILL)}, found {row_spill!r}")]
        )
    d, n_q, n_k, e = shape.head_dim, shape.q_len, shape.kv_len, float(shape.act_bytes)
    ekv = float(shape.kv_bytes)
    free = buffer_bytes - 2 * d * e
    stream_rows = _rows(free, (2 * d + 2) * e)  # Q, O, max, sum per row
    if stream_rows < 1:
        raise SpecError(
            [
                Problem(
                    "buffer_bytes",
                    f"{buffer_bytes:g} B holds not even one query row of head_dim {d} "
                    f"(needs {(4 * d + 2) * e:g} B)",
                )
            ]
        )
    resident_rows = _rows(free, (n_k + 2 * d) * e) if passes > 1 else 0
    row_resident = passes > 1 and resident_rows >= 1
    rows = resident_rows if row_resident else stream_rows
    rows = min(rows, n_q)
    tiles = math.ceil(n_q / rows)
    kv = n_k * d * ekv  # one head's K (or V)
    k_reads = 1 if (passes == 1 or row_resident or row_spill == "spill") else passes
    score = 0.0
    if passes > 1 and not row_resident and row_spill == "spill":
        score = n_q * n_k * e * passes  # written once, read back passes - 1 times
    pairs = float(n_q) * n_k
    heads = shape.batch * shape.heads
    return CascadeTraffic(
        cascade=cascade,
        passes=passes,
        rows_per_tile=rows,
        tiles=tiles,
        row_resident=row_resident,
        q_bytes=heads * n_q * d * e,
        k_bytes=heads * tiles * k_reads * kv,
        v_bytes=heads * tiles * kv,
        o_bytes=heads * n_q * d * e,
        score_bytes=heads * score,
        qk_flops=heads * 2.0 * pairs * d * k_reads,
        av_flops=heads * 2.0 * pairs * d,
    )


def flat_traffic(
    shape: AttentionShape, buffer_bytes: float, *, row_spill: str = "recompute"
) -> CascadeTraffic:
    """A FLAT-style baseline: fused L-tiles of whole score rows, softmax in 3 passes."""
    return cascade_traffic(shape, buffer_bytes, "3pass", row_spill=row_spill)


def fusemax_traffic(shape: AttentionShape, buffer_bytes: float) -> CascadeTraffic:
    """FuseMax's cascade: the 1-pass (online softmax fused with ``A V``)."""
    return cascade_traffic(shape, buffer_bytes, "1pass")
