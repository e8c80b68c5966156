"""Schedulers and row policies: the small interface the channel loop calls.

The channel loop (:mod:`memsim.dram.kernel`) owns timing, queues and refresh; what
a *scheduler* decides, and what a *row policy* decides, lives here as three
compiled functions that the loop calls (inlined, so the split costs nothing):

* :func:`in_order` — whether only the bank of the oldest queued request may be
  served (FCFS);
* :func:`bank_decision` — for one bank with an open row (or none), whether its
  next command is a column command (for its oldest request, or its oldest row
  hit) or a row command (ACT or PRE for its oldest request, or PRE for its oldest
  request that misses the row, closing a row that had its share);
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

SCHED_FCFS, SCHED_FRFCFS, SCHED_FRFCFS_CAP = 0, 1, 2
ROW_OPEN, ROW_CLOSED, ROW_TIMEOUT = 0, 1, 2

NEVER = np.int64(1) << np.int64(60)


@njit(inline="always")
def in_order(sched):
    """True when the scheduler serves only the oldest queued request's bank."""
    return sched == SCHED_FCFS


# what a bank's scheduler decision asks of the loop
ROW_CMD_HEAD = 0  # the row command (ACT on a closed bank, PRE on a conflict) for the oldest
COL_HEAD = 1  # a column command for the oldest request (it hits the open row)
COL_OLDEST_HIT = 2  # a column command for the oldest request that hits the open row
CLOSE_FOR_OLDEST_MISS = 3  # PRE for the oldest request that misses it; no more hits


@njit(inline="always")
def bank_decision(sched, row_open, head_hits, hits_queued, queued, hit_streak, hit_cap):
    """What one bank's next command is for: one of :data:`ROW_CMD_HEAD`,
    :data:`COL_HEAD`, :data:`COL_OLDEST_HIT`, :data:`CLOSE_FOR_OLDEST_MISS`.

    ``row_open``: the bank has an open row; ``head_hits``: its oldest queued request
    hits it; ``hits_queued`` of the ``queued`` requests hit it; the row has served
    ``hit_streak`` column commands since its ACT. (Scalars only: the loop walks its
    queues itself, so the call costs nothing once inlined.)
    """
    if not row_open:
        return ROW_CMD_HEAD
    if sched == SCHED_FCFS:
        return COL_HEAD if head_hits else ROW_CMD_HEAD
    if hits_queued == 0:
        return ROW_CMD_HEAD
    if sched == SCHED_FRFCFS_CAP and hit_streak >= hit_cap and queued > hits_queued:
        # the row had its share while another row of the bank waits: close it
        return CLOSE_FOR_OLDEST_MISS
    return COL_OLDEST_HIT


@njit(inline="always")
def row_close_ready(rowpol, last_access, timeout):
    """The cycle from which an open row that no queued request hits should be
    precharged (:data:`NEVER` to keep it open)."""
    if rowpol == ROW_OPEN:
        return NEVER
    if rowpol == ROW_TIMEOUT:
        return last_access + timeout
    return last_access
