"""On-chip residency of intermediates under the ``dataflow`` execution model.

A fused group (``Op.fuse_group``, else a segment: one layer of one step) runs
as a pipeline, so a value it produces and consumes itself never has to leave
the chip. Residency is decided per **access interval**, not per tensor: an
interval is a write of a transient tensor (with any writes right after it)
and the reads that follow before the tensor's next write. Builders reuse one
tensor name per activation across layers and steps (``q``, ``attn_out``, ...),
so a tensor's lifetime spans the whole run while each of its values lives in
one layer.

An interval goes to the on-chip SRAM tier when

* its tensor is transient (not a weight, KV cache or optimizer state), not
  staged by the placement, and not already homed in that SRAM tier;
* it starts with a write and has at least one read (an unread write is an
  output: it goes home), and all its accesses fall in one group;
* the group's on-chip intervals fit: the largest sum of intervals live at
  once (from the op writing it to the last op reading it) is at most the SRAM
  capacity left by what the placement already keeps there (persistent tensors
  homed there, the peak of transient tensors homed there, the largest staged
  working set of one segment). A group whose intervals do not fit keeps them
  all at home (no partial spilling).

Everything else keeps its tier.

Occupancy (:func:`transient_spans`): a group with on-chip intervals holds its
on-chip peak (the largest sum of its intervals live at once, at most the
capacity above) in SRAM from its start to its end; a transient tensor keeps
its home-tier reservation only for the span of its off-chip accesses, from the
group of the first to the group of the last, and none when all are on chip.

Vectorised: accesses sorted by (tensor, op,
read-before-write); the result is computed once per plan layout and cached
with it (:func:`memsim.plan._layout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw_models import System
from memsim.compiled import (
    BoolArray,
    CompiledGraph,
    FloatArray,
    IntArray,
    segment_max_bytes,
    transient_peak,
)

__all__ = ["OnChip", "onchip_residency", "sram_tier", "transient_spans"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OnChip:
    """Which accesses a dataflow run keeps on chip, and the intervals they form.

    ``acc_onchip`` is aligned with ``cg.acc_op``; the interval arrays have one
    entry per on-chip interval (its group, tensor, bytes held, first and last op).
    """

    tier: int  # index of the SRAM tier (into the plan's tier names)
    capacity_bytes: float  # SRAM left for intervals after the placement's own use
    acc_onchip: BoolArray
    iv_group: IntArray
    iv_tensor: IntArray
    iv_bytes: FloatArray
    iv_first_op: IntArray
    iv_last_op: IntArray
    group_peak_bytes: FloatArray  # per group: peak of its candidate intervals (kept or not)
    whole_tensors: IntArray  # tensors whose every access is on chip within one group


def sram_tier(system: System, tier_names: tuple[str, ...]) -> int | None:
    """Index of the largest SRAM tier in ``tier_names``, or ``None`` without one."""
    sram = [i for i, t in enumerate(tier_names) if system.tiers[t].kind == "sram"]
    if not sram:
        return None
    return max(sram, key=lambda i: system.tiers[tier_names[i]].capacity_bytes)


def onchip_residency(
    system: System,
    cg: CompiledGraph,
    *,
    tier_names: tuple[str, ...],
    tensor_tier: IntArray,
    staged_mask: BoolArray,
    op_group: IntArray,
    group_start: IntArray,
) -> OnChip | None:
    """The accesses of ``cg`` a dataflow run serves from on-chip SRAM (module docstring).

    ``tensor_tier`` is where each tensor is accessed without dataflow (home, or
    the staging tier of staged tensors); ``op_group``/``group_start`` are the
    fused groups. Returns ``None`` when the system has no SRAM tier.
    """
    si = sram_tier(system, tier_names)
    if si is None or cg.acc_op.size == 0:
        return None
    n = cg.n_ops
    cap = float(system.tiers[tier_names[si]].capacity_bytes)
    in_sram = tensor_tier == si
    pers = cg.t_persistent | staged_mask
    cap -= float(cg.t_bytes[in_sram & cg.t_persistent & ~staged_mask].sum())
    cap -= transient_peak(cg, in_sram & ~pers)
    cap -= segment_max_bytes(cg, in_sram & staged_mask)
    eligible = (cg.first_use >= 0) & ~pers & ~in_sram

    order = np.lexsort((cg.acc_write, cg.acc_op, cg.acc_tensor))
    t = cg.acc_tensor[order]
    op = cg.acc_op[order]
    w = cg.acc_write[order]
    new_t = np.ones(t.size, dtype=bool)
    new_t[1:] = t[1:] != t[:-1]
    prev_w = np.zeros(t.size, dtype=bool)
    prev_w[1:] = w[:-1]
    start = new_t | (w & ~prev_w)  # a write after a read opens a new interval
    starts = np.flatnonzero(start)
    iv = np.cumsum(start) - 1
    g = op_group[op]
    iv_t = t[starts]
    same_group = np.minimum.reduceat(g, starts) == np.maximum.reduceat(g, starts)
    reads = np.add.reduceat((~w).astype(np.int64), starts)
    cand = w[starts] & (reads > 0) & same_group & eligible[iv_t]
    iv_first = op[starts]
    iv_last = np.maximum.reduceat(op, starts)
    iv_bytes = cg.t_bytes[iv_t]
    iv_group = g[starts]

    # per group: largest sum of candidate intervals live at once
    delta = np.zeros(n + 1)
    np.add.at(delta, iv_first[cand], iv_bytes[cand])
    np.add.at(delta, iv_last[cand] + 1, -iv_bytes[cand])
    live = np.cumsum(delta)[:n]
    peak = np.maximum.reduceat(live, group_start) if n else np.zeros(0)
    keep = cand & (peak[iv_group] <= cap * (1 + 1e-12))

    acc_onchip = np.zeros(t.size, dtype=bool)
    acc_onchip[order] = keep[iv]
    off = np.bincount(cg.acc_tensor, weights=(~acc_onchip).astype(np.float64))
    off = np.concatenate([off, np.zeros(len(cg.tensor_names) - off.size)])
    used = cg.first_use >= 0
    one_group = np.zeros(len(cg.tensor_names), dtype=bool)
    one_group[used] = op_group[cg.first_use[used]] == op_group[cg.last_use[used]]
    whole = np.flatnonzero(used & one_group & (off == 0) & eligible)
    return OnChip(
        tier=si,
        capacity_bytes=cap,
        acc_onchip=acc_onchip,
        iv_group=iv_group[keep],
        iv_tensor=iv_t[keep],
        iv_bytes=iv_bytes[keep],
        iv_first_op=iv_first[keep],
        iv_last_op=iv_last[keep],
        group_peak_bytes=np.asarray(peak, dtype=np.float64),
        whole_tensors=whole.astype(np.int64),
    )


def transient_spans(
    cg: CompiledGraph,
    *,
    tensor_tier: IntArray,
    staged_mask: BoolArray,
    op_group: IntArray,
    onchip: OnChip | None,
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Transient allocations as ``(first group, last group, tier, bytes)`` arrays.

    Without on-chip intervals (``onchip`` is ``None``, as in ``kernel``
    execution) each transient tensor that is used holds its ``tensor_tier`` from
    the group of its first use to the group of its last. With them, a tensor
    holds ``tensor_tier`` only from the group of its first off-chip access to the
    group of its last (nothing when every access is on chip), and each group
    with on-chip intervals holds its on-chip peak in the SRAM tier for the
    group. Allocating each interval for its whole group would count intervals
    the capacity check saw at different ops as live together, above capacity.
    Persistent and staged tensors are not included (the caller reserves them).
    """
    tr = ~cg.t_persistent & ~staged_mask & (cg.first_use >= 0)
    if onchip is None:
        idx = np.flatnonzero(tr)
        return (
            op_group[cg.first_use[idx]],
            op_group[cg.last_use[idx]],
            tensor_tier[idx],
            cg.t_bytes[idx],
        )
    n_t = len(cg.tensor_names)
    off = ~onchip.acc_onchip
    first = np.full(n_t, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_t, -1, dtype=np.int64)
    np.minimum.at(first, cg.acc_tensor[off], cg.acc_op[off])
    np.maximum.at(last, cg.acc_tensor[off], cg.acc_op[off])
    idx = np.flatnonzero(tr & (last >= 0))
    groups = np.unique(onchip.iv_group)
    return (
        np.concatenate([op_group[first[idx]], groups]),
        np.concatenate([op_group[last[idx]], groups]),
        np.concatenate([tensor_tier[idx], np.full(groups.size, onchip.tier, dtype=np.int64)]),
        np.concatenate([cg.t_bytes[idx], onchip.group_peak_bytes[groups]]),
    )
