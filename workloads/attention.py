"""Attention cost models, registered by name: what attention reads, writes and computes.

* ``unfused`` — three kernels: ``S = Q Kᵀ`` (written off chip), ``P = softmax(S)``
  (read and written), ``O = P V``. Off-chip bytes grow with ``Nq x Nk``. The full
  score matrix is computed even where a causal mask zeroes it.
* ``fused`` — FlashAttention (Dao et al. 2022, Algorithm 1): the outer loop walks
  blocks of ``Bc = ceil(M / 4d)`` keys, the inner loop blocks of ``Br = min(Bc, d)``
  queries; ``Q``, ``O`` and the softmax statistics ``l, m`` are re-read (and ``O, l,
  m`` re-written) once per key block, ``K`` and ``V`` read once. With ``M`` the
  on-chip buffer in elements this is Theorem 2's ``Θ(N² d² / M)``. Blocks wholly
  above the causal diagonal are skipped.
* ``fused_fa2`` — FlashAttention-2 (Dao 2023, Algorithm 1): the outer loop walks
  query blocks, ``Q`` is read and ``O`` written once, ``K`` and ``V`` are re-read
  per query block (only up to the diagonal when causal).

Backward IO (Dao et al. 2022, Appendix B.4): :func:`fused_backward_traffic` walks
Algorithm 4, :func:`unfused_backward_traffic` Algorithm 3 (the training graphs
still charge attention backward its compulsory bytes only).

``sram_bytes=None`` or ``math.inf`` means an unbounded buffer: the fused models then
move only the compulsory ``Q + K + V + O``. (The builders record ``None`` as "left to
the hardware": :func:`memsim.simulate` rebuilds such a graph with the buffer of the
system it runs on; ``math.inf`` stays unbounded there too.) Query heads sharing a
KV head (GQA/MQA) are packed into one block of ``group x Nq`` rows, position-major,
as GQA kernels do, so K and V are read per KV head. FLOPs count the matrix products, ``4 d`` per
(query, key) pair computed: all pairs for ``unfused``, the unmasked ones for the
fused models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

from hw_models.errors import Problem, SpecError

#: FLOPs per score element of the unfused softmax kernel: scale, mask, max, exp-sub, sum, divide
SOFTMAX_FLOPS_PER_ELEMENT = 5.0
#: bytes of one softmax statistic (fp32), two per query row (running max and sum)
STAT_BYTES = 4.0
#: bytes per element of an unfused dropout's saved keep-mask (PyTorch keeps a bool tensor)
DROPOUT_MASK_BYTES = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionShape:
    """One attention call: ``batch`` sequences, ``heads`` query and ``kv_heads`` KV heads.

    ``q_len`` queries attend to ``kv_len`` keys; with ``causal`` query ``i`` sees keys
    up to ``kv_len - q_len + i`` (queries are the last ``q_len`` positions).
    ``act_bytes``/``kv_bytes`` are element sizes of Q/O and of K/V. ``dropout``:
    attention dropout on the probabilities (training); the unfused models run it
    as a kernel of its own, the fused ones regenerate its mask on chip.
    """

    batch: int
    heads: int
    kv_heads: int
    head_dim: int
    q_len: int
    kv_len: int
    causal: bool = True
    act_bytes: float = 2.0
    kv_bytes: float = 2.0
    dropout: bool = False

    @property
    def group(self) -> int:
        """Query heads per KV head."""
        return self.heads // self.kv_heads

    def pairs(self) -> float:
        """(query, key) pairs not masked out, per head and sequence."""
        if not self.causal:
            return float(self.q_len) * self.kv_len
        offset = self.kv_len - self.q_len
        return float(self.q_len) * offset + self.q_len * (self.q_len + 1) / 2.0


#: fields of the traffic records that count work, not bytes
_NOT_BYTES = frozenset({"flops", "softmax_flops"})


def _byte_total(record: object) -> float:
    """Sum of a traffic record's byte fields, in declaration order."""
    return float(sum(getattr(record, f.name) for f in fields(record) if f.name not in _NOT_BYTES))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionTraffic:
    """Off-chip bytes of one attention call, per operand, and its FLOPs."""

    q_read: float
    k_read: float
    v_read: float
    o_read: float
    o_written: float
    stats_read: float = 0.0
    stats_written: float = 0.0
    scores_written: float = 0.0
    scores_read: float = 0.0
    probs_written: float = 0.0
    probs_read: float = 0.0
    dropout_bytes: float = 0.0
    flops: float = 0.0
    softmax_flops: float = 0.0

    @property
    def total(self) -> float:
        """Every byte read or written."""
        return _byte_total(self)


def _matmul_flops(s: AttentionShape, pairs: float) -> float:
    return 4.0 * s.head_dim * pairs * s.batch * s.heads


def _compulsory(s: AttentionShape) -> AttentionTraffic:
    q = s.batch * s.heads * s.q_len * s.head_dim * s.act_bytes
    kv = s.batch * s.kv_heads * s.kv_len * s.head_dim * s.kv_bytes
    return AttentionTraffic(
        q_read=q, k_read=kv, v_read=kv, o_read=0.0, o_written=q, flops=_matmul_flops(s, s.pairs())
    )


def block_sizes(s: AttentionShape, sram_bytes: float) -> tuple[int, int]:
    """FlashAttention's block sizes (Bc, Br) for ``sram_bytes`` on chip (Dao et al. 2022)."""
    m_elems = sram_bytes / s.act_bytes
    bc = math.ceil(m_elems / (4 * s.head_dim))
    if bc < 1 or m_elems < 4 * s.head_dim:
        raise SpecError(
            [Problem("sram_bytes", f"{sram_bytes:g} B cannot hold one row each of Q, K, V, O")]
        )
    return bc, min(bc, s.head_dim)


def _last_position(rows_end: int, s: AttentionShape) -> int:
    # rows are position-major over the group: row r is query position r // group
    return (rows_end - 1) // s.group + (s.kv_len - s.q_len)


def fused_traffic(s: AttentionShape, sram_bytes: float | None) -> AttentionTraffic:
    """FlashAttention (Algorithm 1) traffic: K, V once; Q, O, l, m once per key block."""
    if sram_bytes is None or math.isinf(sram_bytes):
        return _compulsory(s)
    bc, br = block_sizes(s, sram_bytes)
    rows = s.group * s.q_len
    tr, tc = math.ceil(rows / br), math.ceil(s.kv_len / bc)
    # query rows read, summed over the key blocks that visit them: a query block takes
    # part in key block j unless all its positions lie before the block's first key j * Bc
    if not s.causal:
        q_row_reads = float(rows) * tc
    else:
        q_row_reads = 0.0
        for i in range(tr):
            lo, hi = i * br, min(rows, (i + 1) * br)
            visits = min(tc, _last_position(hi, s) // bc + 1)
            q_row_reads += (hi - lo) * visits
    d = s.head_dim
    per_kv_head = s.batch * s.kv_heads
    q_read = per_kv_head * q_row_reads * d * s.act_bytes
    kv = per_kv_head * s.kv_len * d * s.kv_bytes
    init_o = per_kv_head * rows * d * s.act_bytes
    init_stats = per_kv_head * rows * 2 * STAT_BYTES
    stats = per_kv_head * q_row_reads * 2 * STAT_BYTES
    return AttentionTraffic(
        q_read=q_read,
        k_read=kv,
        v_read=kv,
        o_read=q_read,  # O_i is read wherever Q_i is
        o_written=init_o + q_read,
        stats_read=stats,
        stats_written=init_stats + stats,
        flops=_matmul_flops(s, s.pairs()),
    )


def fused_fa2_traffic(s: AttentionShape, sram_bytes: float | None) -> AttentionTraffic:
    """FlashAttention-2 traffic: Q read and O written once; K, V once per query block."""
    if sram_bytes is None or math.isinf(sram_bytes):
        return _compulsory(s)
    bc, br = block_sizes(s, sram_bytes)
    rows = s.group * s.q_len
    tr = math.ceil(rows / br)
    keys_read = 0.0
    for i in range(tr):
        hi = min(rows, (i + 1) * br)
        needed = _last_position(hi, s) + 1 if s.causal else s.kv_len
        keys_read += min(s.kv_len, math.ceil(needed / bc) * bc)
    per_kv_head = s.batch * s.kv_heads
    q = per_kv_head * rows * s.head_dim * s.act_bytes
    kv = per_kv_head * keys_read * s.head_dim * s.kv_bytes
    return AttentionTraffic(
        q_read=q, k_read=kv, v_read=kv, o_read=0.0, o_written=q, flops=_matmul_flops(s, s.pairs())
    )


def unfused_traffic(s: AttentionShape, sram_bytes: float | None = None) -> AttentionTraffic:
    """Unfused traffic: the ``Nq x Nk`` scores and probabilities go off chip and back."""
    del sram_bytes  # kernels do not keep anything on chip between them
    bh = s.batch * s.heads
    q = bh * s.q_len * s.head_dim * s.act_bytes
    # each query head's GEMM reads its KV head's K and V (a GQA group reads them group times)
    kv = bh * s.kv_len * s.head_dim * s.kv_bytes
    scores = bh * float(s.q_len) * s.kv_len * s.act_bytes
    full = float(s.q_len) * s.kv_len
    return AttentionTraffic(
        q_read=q,
        k_read=kv,
        v_read=kv,
        o_read=0.0,
        o_written=q,
        scores_written=scores,
        scores_read=scores,
        probs_written=scores,
        probs_read=scores,
        # dropout kernel: reads P, writes the dropped P (which P V then reads) and its mask
        dropout_bytes=(2 * scores + bh * full * DROPOUT_MASK_BYTES) if s.dropout else 0.0,
        flops=_matmul_flops(s, full),
        softmax_flops=SOFTMAX_FLOPS_PER_ELEMENT * bh * full,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionBackwardTraffic:
    """Off-chip bytes of one attention backward call, per operand, and its FLOPs.

    ``p_read`` and the ``dp_*``/``ds_*`` fields are the ``Nq x Nk`` matrices of the
    standard backward (zero for the fused one, which keeps them on chip).
    """

    q_read: float
    k_read: float
    v_read: float
    o_read: float
    do_read: float
    dq_read: float
    dq_written: float
    dk_written: float
    dv_written: float
    stats_read: float = 0.0
    p_read: float = 0.0
    dp_written: float = 0.0
    dp_read: float = 0.0
    ds_written: float = 0.0
    ds_read: float = 0.0
    dropout_bytes: float = 0.0
    flops: float = 0.0

    @property
    def total(self) -> float:
        """Every byte read or written."""
        return _byte_total(self)


def _query_row_visits(s: AttentionShape, bc: int, br: int) -> float:
    """Query rows loaded, summed over the key blocks of Algorithm 1/4 that visit them."""
    rows = s.group * s.q_len
    tr, tc = math.ceil(rows / br), math.ceil(s.kv_len / bc)
    if not s.causal:
        return float(rows) * tc
    visits_total = 0.0
    for i in range(tr):
        lo, hi = i * br, min(rows, (i + 1) * br)
        visits_total += (hi - lo) * min(tc, _last_position(hi, s) // bc + 1)
    return visits_total


def fused_backward_traffic(s: AttentionShape, sram_bytes: float | None) -> AttentionBackwardTraffic:
    """FlashAttention backward (Dao et al. 2022, Algorithm 4, dropout aside).

    ``dQ, dK, dV`` are zero-initialised in HBM; the outer loop over key blocks reads
    ``K_j, V_j`` once and writes ``dK_j, dV_j`` once; the inner loop over the query
    blocks that see key block ``j`` reads ``Q_i, O_i, dO_i, dQ_i, l_i, m_i`` and writes
    ``dQ_i`` (Theorem 5: ``Θ(N² d² / M)``). The block sizes are the forward's. An
    unbounded buffer reads each input once and writes each gradient once. FLOPs:
    five matrix products (``S`` recomputed, ``dV``, ``dP``, ``dQ``, ``dK``).
    """
    d = s.head_dim
    per_kv_head = s.batch * s.kv_heads
    rows = s.group * s.q_len
    flops = 2.5 * _matmul_flops(s, s.pairs())
    kv = per_kv_head * s.kv_len * d * s.kv_bytes
    if sram_bytes is None or math.isinf(sram_bytes):
        q = per_kv_head * rows * d * s.act_bytes
        return AttentionBackwardTraffic(
            q_read=q,
            k_read=kv,
            v_read=kv,
            o_read=q,
            do_read=q,
            dq_read=0.0,
            dq_written=q,
            dk_written=kv,
            dv_written=kv,
            stats_read=per_kv_head * rows * 2 * STAT_BYTES,
            flops=flops,
        )
    bc, br = block_sizes(s, sram_bytes)
    visits = per_kv_head * _query_row_visits(s, bc, br)
    q = visits * d * s.act_bytes
    init_q = per_kv_head * rows * d * s.act_bytes
    return AttentionBackwardTraffic(
        q_read=q,
        k_read=kv,
        v_read=kv,
        o_read=q,
        do_read=q,
        dq_read=q,
        dq_written=init_q + q,
        dk_written=2 * kv,  # zero-init, then the block's result
        dv_written=2 * kv,
        stats_read=visits * 2 * STAT_BYTES,
        flops=flops,
    )


def unfused_backward_traffic(
    s: AttentionShape, sram_bytes: float | None = None
) -> AttentionBackwardTraffic:
    """Standard attention backward (Dao et al. 2022, Algorithm 3), one kernel per step.

    ``dV = Pᵀ dO`` (reads ``P``, ``dO``); ``dP = dO Vᵀ`` (reads ``dO``, ``V``, writes
    ``dP``); ``dS = P ∘ (dP - rowsum(dO ∘ O))`` (reads ``P``, ``dP``, writes ``dS``);
    ``dQ = dS K`` and ``dK = dSᵀ Q`` (each reads ``dS``): seven ``Nq x Nk`` passes,
    ``dO`` read twice. FLOPs: four matrix products (no recomputation). With
    ``dropout``, ``dO Vᵀ`` is the gradient of the dropped probabilities and a
    dropout-backward kernel reads it and the saved mask and writes ``dP``.
    """
    del sram_bytes
    bh = s.batch * s.heads
    q = bh * s.q_len * s.head_dim * s.act_bytes
    kv = bh * s.kv_len * s.head_dim * s.kv_bytes
    full = float(s.q_len) * s.kv_len
    nn = bh * full * s.act_bytes
    return AttentionBackwardTraffic(
        q_read=q,
        k_read=kv,
        v_read=kv,
        o_read=0.0,
        do_read=2 * q,  # for dV and for dP
        dq_read=0.0,
        dq_written=q,
        dk_written=kv,
        dv_written=kv,
        p_read=2 * nn,
        dp_written=nn,
        dp_read=nn,
        ds_written=nn,
        ds_read=2 * nn,
        dropout_bytes=(2 * nn + bh * full * DROPOUT_MASK_BYTES) if s.dropout else 0.0,
        flops=2.0 * _matmul_flops(s, full),
    )


def sparse_traffic(t: AttentionTraffic, s: AttentionShape, fraction: float) -> AttentionTraffic:
    """``t`` of a call computing only ``fraction`` of its scores (sparse prefill).

    Every FLOP and every byte of the call scales by ``fraction`` (the blocks of
    scores not computed are skipped with their K/V loads and, in Algorithm 1, their
    Q/O/statistics re-reads), but Q, K and V are still read and O written at
    least once (the compulsory traffic is a floor).
    """
    if fraction >= 1.0:
        return t
    floor = _compulsory(s)
    out = {}
    for f in fields(AttentionTraffic):
        value = getattr(t, f.name) * fraction
        if f.name not in _NOT_BYTES:
            value = max(value, getattr(floor, f.name))
        out[f.name] = value
    return replace(t, **out)


TrafficModel = Callable[[AttentionShape, float | None], AttentionTraffic]

_MODELS: dict[str, TrafficModel] = {
    "fused": fused_traffic,
    "fused_fa2": fused_fa2_traffic,
    "unfused": unfused_traffic,
}
#: Every registered attention model, by name.
ATTENTION_MODELS: Mapping[str, TrafficModel] = MappingProxyType(_MODELS)


def attention_names() -> tuple[str, ...]:
    """Names of the registered attention models."""
    return tuple(_MODELS)


def register_attention(name: str, model: TrafficModel) -> None:
    """Register an attention traffic model under ``name`` (an existing name is an error)."""
    if name in _MODELS:
        raise ValueError(f"attention model {name!r} is already registered")
    _MODELS[name] = model


def get_attention(name: str) -> TrafficModel:
    """The attention model ``name``; unknown names raise :class:`SpecError` listing the known."""
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(_MODELS)
        raise SpecError(
            [Problem("attention", f"unknown attention {name!r} (known: {known})")]
        ) from None
