"""Schedulers and row policies: the small interface the channel loop calls.

The channel loop (:mod:`memsim.dram.kernel`) owns timing, queues and refresh; what
a *scheduler* decides, and what a *row policy* decides, lives here as three
compiled functions that the loop calls (inlined, so the split costs nothing):

* :func:`in_order` — whether only the bank of the oldest queued request may be
  served (FCFS);
* :func:`bank_candidates` — for one bank with an open row (or none), which queued
  request gets a column command now (a row hit) and which one the row command
  (ACT on a closed bank, PRE on a conflict) is for, and whether the hit loses its
  priority (a capped row);
* :func:`row_close_ready` — for a bank whose open row no queued request hits, the
  cycle from which the row policy wants it precharged (never, at once, or after a
  timeout).

The loop then issues, among every bank's candidates, the first to be ready
(ties: prioritised row hits, then the oldest request). Adding a scheduler or a
row policy means a new code and a branch in the function it concerns, plus one
:func:`register` line in :mod:`memsim.dram.policies`; the loop is not touched.
(numba's on-disk cache keys the compiled loop on ``kernel.py`` alone: after editing
this file, touch ``kernel.py`` or clear the cache so the loop is recompiled.)
"""

from __future__ import annotations

import numpy as np

from memsim.dram._jit import njit

# command codes the row command may take (shared with the kernel's log format)
ACT, PRE = 0, 1

SCHED_FCFS, SCHED_FRFCFS, SCHED_FRFCFS_CAP = 0, 1, 2
ROW_OPEN, ROW_CLOSED, ROW_TIMEOUT = 0, 1, 2

NEVER = np.int64(1) << np.int64(60)


@njit(inline="always")
def in_order(sched):
    """True when the scheduler serves only the oldest queued request's bank."""
    return sched == SCHED_FCFS


@njit(inline="always")
def bank_candidates(sched, h0, open_row, row, nxt, hits_queued, queued, hit_streak, hit_cap):
    """The candidates of one bank: ``(hit, other, row_cmd, demoted)``.

    ``h0`` is the oldest queued request of the bank (``nxt`` links the rest in
    admission order), ``open_row`` the open row (-1: precharged), ``row[h]`` a
    request's row; ``hits_queued`` of the ``queued`` requests hit the open row, and
    the row has served ``hit_streak`` column commands since its ACT. ``hit`` is the
    request to get a column command (-1: none), ``other`` the one the row command
    ``row_cmd`` (ACT or PRE) is for (-1: none); ``demoted`` lowers ``hit``'s
    priority below every row hit (unused when ``hit`` is -1).
    """
    hit = -1
    other = -1
    rc = -1
    demoted = False
    if open_row < 0:
        other = h0
        rc = ACT
    elif sched == SCHED_FCFS:
        if row[h0] == open_row:
            hit = h0
        else:
            other = h0
            rc = PRE
    elif hits_queued == 0:
        other = h0
        rc = PRE
    else:
        hit = h0
        while row[hit] != open_row:
            hit = nxt[hit]
        if sched == SCHED_FRFCFS_CAP and hit_streak >= hit_cap and queued > hits_queued:
            # the row had its share while another row of the bank waits: close it
            # for the oldest conflicting request
            hit = -1
            other = h0
            while row[other] == open_row:
                other = nxt[other]
            rc = PRE
            demoted = True
    return hit, other, rc, demoted


@njit(inline="always")
def row_close_ready(rowpol, last_access, timeout):
    """The cycle from which an open row that no queued request hits should be
    precharged (:data:`NEVER` to keep it open)."""
    if rowpol == ROW_OPEN:
        return NEVER
    if rowpol == ROW_TIMEOUT:
        return last_access + timeout
    return last_access
