"""The per-channel DRAM controller loop, compiled with numba.

One call simulates one channel: requests (already decoded into flat bank and row)
enter a read or a write queue through an arbiter between requestors, and the
controller issues at most one command per cycle (ACT, PRE, RD, WR, REF, REFpb,
PDE, PDX). The loop is event driven: when no command can issue at cycle ``t``
it jumps to the earliest cycle at which one could (a timing constraint expires,
a request arrives, a refresh falls due, ...), which is exact because nothing in
the state changes in between.

Timing is kept as "earliest cycle the next X may issue" per bank and command
(``next_act``, ``next_pre``, ``next_rd``, ``next_wr``, ``next_ref``), raised by
every issued command for the banks in its scope, plus a per-rank window of the
last four ACTs (tFAW). Everything is a plain integer or numpy array so that the
loop compiles to machine code; :mod:`memsim.dram.controller` validates and
names things. The independent protocol checker is in :mod:`memsim.dram.checker`.
"""

from __future__ import annotations

import numpy as np

from memsim.dram._jit import njit
from memsim.dram.schedulers import (
    CLOSE_FOR_OLDEST_MISS,
    COL_HEAD,
    COL_OLDEST_HIT,
    ROW_CMD_HEAD,
    ROW_OPEN,
    bank_decision,
    in_order,
    row_close_ready,
)

# command codes (shared with the log format, not with the checker's timing rules)
ACT, PRE, RD, WR, REF, REFPB, PDE, PDX = 0, 1, 2, 3, 4, 5, 6, 7
N_CMD = 8

# refresh / arbiter codes (scheduler and row-policy codes: memsim.dram.schedulers)
REF_NONE, REF_ALL_BANK, REF_PER_BANK = 0, 1, 2
ARB_ROUND_ROBIN, ARB_FIFO, ARB_PRIORITY = 0, 1, 2
# scheduler buffer organisation: separate read and write queues, one queue shared by
# reads and writes, or one queue per bank
BUF_READ_WRITE, BUF_SHARED, BUF_BANK_WISE = 0, 1, 2

# indices into the integer parameter vector
(
    P_RANKS,
    P_BG,
    P_BPG,
    P_BL,
    P_CL,
    P_CWL,
    P_RCD,
    P_RP,
    P_RAS,
    P_RC,
    P_WR,
    P_RTP,
    P_CCD_S,
    P_CCD_L,
    P_RRD_S,
    P_RRD_L,
    P_FAW,
    P_WTR_S,
    P_WTR_L,
    P_RFC,
    P_REFI,
    P_RFCPB,
    P_RTRS,
    P_CKE,
    P_XP,
    P_SCHED,
    P_ROWPOL,
    P_ROW_TIMEOUT,
    P_HIT_CAP,
    P_REFMODE,
    P_REF_POSTPONE,
    P_REF_PULLIN,
    P_RQ,
    P_WQ,
    P_WHIGH,
    P_WLOW,
    P_MAXACT,
    P_PD_IDLE,
    P_ARB,
    P_LOG,
    P_RTW_SAME,
    P_RTW_OTHER,
    P_WTR_OTHER,
    P_RR_OTHER,
    P_WTR_SAME_L,
    P_WTR_SAME_S,
    P_WR_PRE,
    P_RD_PDE,
    P_WR_PDE,
    P_REFPB_GAP,
    P_BUFORG,
    P_BUFCAP,
    P_BANKCAP,
    P_IDLE_SKIP,
) = range(54)
N_PARAMS = 54

# indices into the counter vector returned by the kernel
(
    C_ACT,
    C_PRE,
    C_RD,
    C_WR,
    C_REF,
    C_REFPB,
    C_PDE,
    C_PDX,
    C_BG_PRE_STBY,
    C_BG_ACT_STBY,
    C_BG_PRE_PD,
    C_BG_ACT_PD,
    C_OCC_R,
    C_OCC_W,
    C_MAX_R,
    C_MAX_W,
    C_REF_BUSY,
    C_END,
    C_STUCK,
    C_NLOG,
    C_ITER,
    C_JUMP,
    C_SCAN,
    C_REF_SKIPPED,
) = range(24)
N_COUNTERS = 24

BIG = np.int64(1) << np.int64(60)
# a candidate's priority key: its admission sequence number, with KEY_OTHER set for
# anything but a prioritised row hit; packed under the (clamped) delay in one int64
KEY_BITS = np.int64(40)
KEY_OTHER = np.int64(1) << np.int64(39)
DELAY_CAP = (np.int64(1) << np.int64(22)) - np.int64(1)


@njit()
def _grow(log: np.ndarray) -> np.ndarray:
    new = np.empty((log.shape[0] * 2, log.shape[1]), dtype=np.int64)
    new[: log.shape[0]] = log
    return new


@njit(inline="always")
def _set_state(r, new_state, t, bg_state, state_since, counters):
    old = bg_state[r]
    if old != new_state:
        counters[C_BG_PRE_STBY + old] += t - state_since[r]
        state_since[r] = t
        bg_state[r] = new_state


@njit()
def simulate_channel(p, arrival, fbank, row, is_write, req_start):
    """Simulate one channel; returns (completion, admit, kind, counters, log).

    ``arrival`` (cycles), ``fbank`` (flat bank = (rank*BG + bg)*BPG + bank),
    ``row``, ``is_write`` (0/1) are per request, grouped by requestor: requestor
    ``k`` owns positions ``req_start[k]:req_start[k+1]``, sorted by arrival.
    ``admit`` is the cycle each request entered the scheduler buffer (the front
    end offers at most one request per cycle, when the buffer has room for it).
    ``kind`` is 0 for a row hit, 1 for a miss (bank closed), 2 for a conflict.

    (Helpers are written out inline: numba reference-counts every array passed
    to a function call, which costs more than the work in this loop.)
    """
    n = arrival.shape[0]
    n_req = req_start.shape[0] - 1
    NR = p[P_RANKS]
    NBG = p[P_BG]
    NBPG = p[P_BPG]
    BPR = NBG * NBPG
    NBANK = NR * BPR
    NG = NR * NBG
    nBL = p[P_BL]
    nCL = p[P_CL]
    nCWL = p[P_CWL]
    nRCD = p[P_RCD]
    nRP = p[P_RP]
    nRAS = p[P_RAS]
    nRC = p[P_RC]
    nRTP = p[P_RTP]
    nCCD_S = p[P_CCD_S]
    nCCD_L = p[P_CCD_L]
    nRRD_S = p[P_RRD_S]
    nRRD_L = p[P_RRD_L]
    nFAW = p[P_FAW]
    nRFC = p[P_RFC]
    nREFI = p[P_REFI]
    nRFCPB = p[P_RFCPB]
    nCKE = p[P_CKE]
    nXP = p[P_XP]
    sched = p[P_SCHED]
    rowpol = p[P_ROWPOL]
    row_timeout = p[P_ROW_TIMEOUT]
    hit_cap = p[P_HIT_CAP]
    refmode = p[P_REFMODE]
    max_post = p[P_REF_POSTPONE]
    max_pull = p[P_REF_PULLIN]
    qcap0 = p[P_RQ]
    qcap1 = p[P_WQ]
    whigh = p[P_WHIGH]
    wlow = p[P_WLOW]
    maxact = p[P_MAXACT]
    pd_idle = p[P_PD_IDLE]
    arb = p[P_ARB]
    log_on = p[P_LOG]
    buforg = p[P_BUFORG]
    bufcap = p[P_BUFCAP]
    bankcap = p[P_BANKCAP]
    idle_skip = p[P_IDLE_SKIP]

    # spacings from the timing table (hw_models.dram.COMMAND_CONSTRAINTS): bus
    # turnarounds, rank switches, write recovery, power-down entry
    rtw_same = max(1, p[P_RTW_SAME])
    rtw_other = max(1, p[P_RTW_OTHER])
    wtr_other = max(1, p[P_WTR_OTHER])
    rr_other = p[P_RR_OTHER]
    wtr_same_l = p[P_WTR_SAME_L]
    wtr_same_s = p[P_WTR_SAME_S]
    wr_pre = p[P_WR_PRE]
    rd_pde = p[P_RD_PDE]
    wr_pde = p[P_WR_PDE]
    refpb_gap = p[P_REFPB_GAP]

    completion = np.full(n, -1, dtype=np.int64)
    admit = np.full(n, -1, dtype=np.int64)
    kind = np.full(n, -1, dtype=np.int8)
    counters = np.zeros(N_COUNTERS, dtype=np.int64)

    # Earliest cycle for the next ACT / PRE / RD / WR: the max of a per-bank part
    # (nRC, nRP, nRAS, nRCD, refresh) and, for ACT/RD/WR, a per-bank-group part
    # (nRRD, tFAW, nCCD, turnarounds, power-down exit), so that a command updates
    # a few groups rather than every bank. All live in one table T: a candidate's
    # ready time is max(T[a], T[b]) for two precomputed indices.
    O_ACT = 0
    O_PRE = NBANK
    O_RD = 2 * NBANK
    O_WR = 3 * NBANK
    O_GACT = 4 * NBANK
    O_GRD = O_GACT + NG
    O_GWR = O_GRD + NG
    O_ZERO = O_GWR + NG
    O_NEVER = O_ZERO + 1
    T = np.zeros(O_NEVER + 1, dtype=np.int64)
    T[O_NEVER] = BIG
    next_act = T[O_ACT:O_PRE]
    next_pre = T[O_PRE:O_RD]
    next_rd = T[O_RD:O_WR]
    next_wr = T[O_WR:O_GACT]
    g_act = T[O_GACT:O_GRD]
    g_rd = T[O_GRD:O_GWR]
    g_wr = T[O_GWR:O_ZERO]
    next_ref = np.zeros(NBANK, dtype=np.int64)

    open_row = np.full(NBANK, -1, dtype=np.int64)
    last_col = np.full(NBANK, -BIG, dtype=np.int64)
    last_act = np.full(NBANK, -BIG, dtype=np.int64)
    hit_streak = np.zeros(NBANK, dtype=np.int64)
    bq = np.zeros((2, NBANK), dtype=np.int64)  # queued requests per type and bank
    hp = np.zeros((2, NBANK), dtype=np.int64)  # ... of which hit the open row

    b_rank = np.empty(NBANK, dtype=np.int64)
    b_bg = np.empty(NBANK, dtype=np.int64)
    b_bank = np.empty(NBANK, dtype=np.int64)
    b_grp = np.empty(NBANK, dtype=np.int64)
    for j in range(NBANK):
        b_rank[j] = j // BPR
        b_bg[j] = (j // NBPG) % NBG
        b_bank[j] = j % NBPG
        b_grp[j] = j // NBPG

    rank_q = np.zeros(NR, dtype=np.int64)
    open_cnt = np.zeros(NR, dtype=np.int64)
    act_hist = np.full((NR, 4), -BIG, dtype=np.int64)
    act_ptr = np.zeros(NR, dtype=np.int64)
    next_refpb = np.zeros(NR, dtype=np.int64)
    debt = np.zeros(NR, dtype=np.int64)
    next_tick = np.full(NR, BIG, dtype=np.int64)
    ref_active = np.zeros(NR, dtype=np.int64)
    ref_bank = np.zeros(NR, dtype=np.int64)
    pd = np.zeros(NR, dtype=np.int64)
    pde_t = np.zeros(NR, dtype=np.int64)
    next_pde = np.zeros(NR, dtype=np.int64)
    last_cmd = np.zeros(NR, dtype=np.int64)
    bg_state = np.zeros(NR, dtype=np.int64)
    state_since = np.zeros(NR, dtype=np.int64)

    interval = nREFI
    if refmode == REF_PER_BANK:
        interval = max(1, nREFI // BPR)
    if refmode != REF_NONE:
        for r in range(NR):
            next_tick[r] = interval + (r * interval) // NR

    # per queue type (0 read, 1 write) and bank: a doubly linked list of queued
    # requests in admission order (``seq``)
    qlen = np.zeros(2, dtype=np.int64)
    qcap = np.empty(2, dtype=np.int64)
    qcap[0] = qcap0
    qcap[1] = qcap1
    bhead = np.full((2, NBANK), -1, dtype=np.int64)
    btail = np.full((2, NBANK), -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    seq = np.zeros(n, dtype=np.int64)
    seq_next = 0

    # two candidate slots per bank: 2*fb (column command for its oldest row hit)
    # and 2*fb+1 (ACT or PRE for its oldest other request); recomputed only when
    # the bank is dirty
    NS = 2 * NBANK
    s_a = np.full(NS, O_NEVER, dtype=np.int64)
    s_b = np.full(NS, O_NEVER, dtype=np.int64)
    s_h = np.full(NS, -1, dtype=np.int64)
    s_cmd = np.full(NS, -1, dtype=np.int64)
    s_key = np.zeros(NS, dtype=np.int64)
    dirty = np.ones(NBANK, dtype=np.int64)
    cache_y = 0
    fast_ok = False
    fast_slot = -1

    heads = req_start[:-1].copy()
    rr_ptr = 0
    done_ring = np.empty((2, maxact), dtype=np.int64)
    done_head = np.zeros(2, dtype=np.int64)
    done_len = np.zeros(2, dtype=np.int64)
    inflight = 0

    log = np.empty((3 * n + 64 if log_on else 1, 6), dtype=np.int64)
    nlog = 0

    write_mode = 0
    served = 0
    t = np.int64(0)
    last_done = np.int64(0)
    while served < n:
        counters[C_ITER] += 1
        changed = False
        # -- retire completed transactions (frees max-active slots)
        for y in range(2):
            while done_len[y] > 0 and done_ring[y, done_head[y]] <= t:
                done_head[y] += 1
                if done_head[y] == maxact:
                    done_head[y] = 0
                done_len[y] -= 1
                inflight -= 1
        # -- admit arrived requests through the arbiter: the front end offers one
        # request per cycle while the scheduler buffer has room for it
        pick = -1
        if inflight < maxact:
            best_arr = BIG
            for j in range(n_req):
                k = j
                if arb == ARB_ROUND_ROBIN:
                    k = rr_ptr + j
                    if k >= n_req:
                        k -= n_req
                h = heads[k]
                if h >= req_start[k + 1] or arrival[h] > t:
                    continue
                if buforg == BUF_READ_WRITE:
                    if qlen[is_write[h]] >= qcap[is_write[h]]:
                        continue
                elif buforg == BUF_SHARED:
                    if qlen[0] + qlen[1] >= bufcap:
                        continue
                elif bq[0, fbank[h]] + bq[1, fbank[h]] >= bankcap:
                    continue
                if arb == ARB_FIFO:
                    if arrival[h] < best_arr:
                        best_arr = arrival[h]
                        pick = k
                else:
                    pick = k
                    break
        if pick >= 0:
            changed = True
            h = heads[pick]
            heads[pick] += 1
            if arb == ARB_ROUND_ROBIN:
                rr_ptr = pick + 1
                if rr_ptr == n_req:
                    rr_ptr = 0
            y = is_write[h]
            qlen[y] += 1
            inflight += 1
            fb = fbank[h]
            dirty[fb] = 1
            seq[h] = seq_next
            seq_next += 1
            admit[h] = t
            tl = btail[y, fb]
            prv[h] = tl
            nxt[h] = -1
            if tl >= 0:
                nxt[tl] = h
            else:
                bhead[y, fb] = h
            btail[y, fb] = h
            bq[y, fb] += 1
            rank_q[b_rank[fb]] += 1
            if open_row[fb] == row[h]:
                hp[y, fb] += 1
            if qlen[0] > counters[C_MAX_R]:
                counters[C_MAX_R] = qlen[0]
            if qlen[1] > counters[C_MAX_W]:
                counters[C_MAX_W] = qlen[1]
        # -- refresh bookkeeping: a refresh falls due every `interval`; it may be
        # postponed while the rank is busy, or pulled in while it is idle
        if refmode != REF_NONE:
            for r in range(NR):
                while next_tick[r] <= t:
                    debt[r] += 1
                    next_tick[r] += interval
                if ref_active[r] == 0 and pd[r] == 0:
                    idle = rank_q[r] == 0
                    if debt[r] > max_post or (
                        idle and debt[r] > -max_pull and (debt[r] >= 1 or max_pull > 0)
                    ):
                        ref_active[r] = 1
                        changed = True
                        dirty[r * BPR : (r + 1) * BPR] = 1
        # -- read/write mode (write drain between watermarks)
        if write_mode == 1:
            if qlen[1] == 0 or (qlen[1] <= wlow and qlen[0] > 0):
                write_mode = 0
                changed = True
        elif qlen[1] >= whigh or (qlen[0] == 0 and qlen[1] > 0):
            write_mode = 1
            changed = True

        tmin = BIG
        c_cmd = -1
        c_fb = -1
        c_rank = -1
        c_h = -1
        # (1) power-down exit where a rank has work
        for r in range(NR):
            if pd[r] == 1 and (rank_q[r] > 0 or (refmode != REF_NONE and debt[r] >= 1)):
                ready = pde_t[r] + nCKE
                if ready <= t:
                    c_cmd = PDX
                    c_rank = r
                    break
                if ready < tmin:
                    tmin = ready
        # (2) refresh: precharge the rank (or the target bank), then REF / REFpb
        if c_cmd < 0 and refmode != REF_NONE:
            for r in range(NR):
                if ref_active[r] == 0 or pd[r] == 1:
                    continue
                if refmode == REF_ALL_BANK:
                    if open_cnt[r] > 0:
                        for j in range(r * BPR, (r + 1) * BPR):
                            if open_row[j] >= 0:
                                if next_pre[j] <= t:
                                    c_cmd = PRE
                                    c_fb = j
                                    break
                                if next_pre[j] < tmin:
                                    tmin = next_pre[j]
                    else:
                        ready = np.int64(0)
                        for j in range(r * BPR, (r + 1) * BPR):
                            if next_ref[j] > ready:
                                ready = next_ref[j]
                        if ready <= t:
                            c_cmd = REF
                            c_rank = r
                        elif ready < tmin:
                            tmin = ready
                else:
                    j = r * BPR + ref_bank[r]
                    if open_row[j] >= 0:
                        if next_pre[j] <= t:
                            c_cmd = PRE
                            c_fb = j
                        elif next_pre[j] < tmin:
                            tmin = next_pre[j]
                    else:
                        ready = max(next_ref[j], next_refpb[r])
                        if ready <= t:
                            c_cmd = REFPB
                            c_fb = j
                        elif ready < tmin:
                            tmin = ready
                if c_cmd >= 0:
                    break
        # (3) the scheduler over the active queue. Each bank's candidates sit in two
        # slots, recomputed only when the bank changed. The first slot to become
        # ready (ties: row hits first, then the oldest request) is issued now, or
        # remembered for the cycle it becomes ready: if nothing else happens in
        # between, that cycle issues it without another pass (the fast path).
        use_fast = fast_ok and not changed and c_cmd < 0
        fast_ok = False
        sched_slot = -1
        if use_fast:
            c_cmd = s_cmd[fast_slot]
            c_h = s_h[fast_slot]
            c_fb = fast_slot >> 1
        elif c_cmd < 0 and qlen[write_mode] > 0:
            counters[C_SCAN] += 1
            y = write_mode
            if y != cache_y:
                cache_y = y
                dirty[:] = 1
            only = -1
            if in_order(sched):
                oldest = BIG
                for fb in range(NBANK):
                    h0 = bhead[y, fb]
                    if h0 >= 0 and seq[h0] < oldest:
                        oldest = seq[h0]
                        only = fb
                dirty[:] = 1
            for fb in range(NBANK):
                if dirty[fb] == 0:
                    continue
                dirty[fb] = 0
                # -- the bank's candidates (decided in memsim.dram.schedulers): hh gets
                # a column command, rh the row command rc; cp: a capped row
                hh = -1
                rh = -1
                rc = -1
                cp = False
                r = b_rank[fb]
                h0 = bhead[y, fb]
                blocked = (
                    h0 < 0
                    or (only >= 0 and fb != only)
                    or pd[r] == 1
                    or (
                        ref_active[r] == 1
                        and (refmode == REF_ALL_BANK or fb == r * BPR + ref_bank[r])
                    )
                )
                if not blocked:
                    orow = open_row[fb]
                    dec = bank_decision(
                        sched,
                        orow >= 0,
                        row[h0] == orow,
                        hp[y, fb],
                        bq[y, fb],
                        hit_streak[fb],
                        hit_cap,
                    )
                    if dec == ROW_CMD_HEAD:
                        rh = h0
                        rc = ACT if orow < 0 else PRE
                    elif dec == COL_HEAD:
                        hh = h0
                    elif dec == COL_OLDEST_HIT:
                        hh = h0
                        while row[hh] != orow:
                            hh = nxt[hh]
                    elif dec == CLOSE_FOR_OLDEST_MISS:
                        rh = h0
                        while row[rh] == orow:
                            rh = nxt[rh]
                        rc = PRE
                        cp = True
                # -- write its two slots
                gq = b_grp[fb]
                i = 2 * fb
                if hh >= 0:
                    if y == 1:
                        s_a[i] = O_WR + fb
                        s_b[i] = O_GWR + gq
                        s_cmd[i] = WR
                    else:
                        s_a[i] = O_RD + fb
                        s_b[i] = O_GRD + gq
                        s_cmd[i] = RD
                    s_h[i] = hh
                    s_key[i] = seq[hh] | (KEY_OTHER if cp else 0)
                else:
                    s_a[i] = O_NEVER
                    s_b[i] = O_NEVER
                i += 1
                if rh >= 0:
                    if rc == ACT:
                        s_a[i] = O_ACT + fb
                        s_b[i] = O_GACT + gq
                    else:
                        s_a[i] = O_PRE + fb
                        s_b[i] = O_ZERO
                    s_cmd[i] = rc
                    s_h[i] = rh
                    s_key[i] = seq[rh] | KEY_OTHER
                else:
                    s_a[i] = O_NEVER
                    s_b[i] = O_NEVER
            # -- the first slot to be ready, by (delay, priority key)
            best = BIG
            for i in range(NS):
                a = T[s_a[i]]
                b = T[s_b[i]]
                v = (a if a > b else b) - t
                if v < 0:
                    v = 0
                if v > DELAY_CAP:
                    v = DELAY_CAP
                comp = (v << KEY_BITS) | s_key[i]
                if comp < best:
                    best = comp
                    sched_slot = i
            if sched_slot >= 0:
                dly = best >> KEY_BITS
                if dly == 0:
                    c_cmd = s_cmd[sched_slot]
                    c_h = s_h[sched_slot]
                    c_fb = sched_slot >> 1
                elif dly < DELAY_CAP:
                    tmin_s = t + dly
                    if tmin_s < tmin:
                        tmin = tmin_s
                    else:
                        sched_slot = -1
                else:
                    sched_slot = -1
                    if t + DELAY_CAP < tmin:
                        tmin = t + DELAY_CAP
        # (4) row policy: close idle rows (closed page / timeout)
        if c_cmd < 0 and rowpol != ROW_OPEN:
            for j in range(NBANK):
                if open_row[j] < 0 or hp[0, j] + hp[1, j] > 0:
                    continue
                r = b_rank[j]
                if pd[r] == 1:
                    continue
                since = last_col[j] if last_col[j] > last_act[j] else last_act[j]
                ready = row_close_ready(rowpol, since, row_timeout)
                if next_pre[j] > ready:
                    ready = next_pre[j]
                if ready <= t:
                    c_cmd = PRE
                    c_fb = j
                    break
                if ready < tmin:
                    tmin = ready
                    sched_slot = -1
        # (5) power-down entry for idle ranks
        if c_cmd < 0 and pd_idle > 0:
            for r in range(NR):
                if pd[r] == 1 or rank_q[r] > 0 or ref_active[r] == 1:
                    continue
                if refmode != REF_NONE and debt[r] >= 1:
                    continue
                if rowpol != ROW_OPEN and open_cnt[r] > 0:
                    continue  # let the row policy close the rows first
                ready = max(last_cmd[r] + pd_idle, next_pde[r])
                if ready <= t:
                    c_cmd = PDE
                    c_rank = r
                    break
                if refmode != REF_NONE and debt[r] >= 0 and ready >= next_tick[r]:
                    continue  # a refresh falls due first and forbids it: not an event
                if ready < tmin:
                    tmin = ready
                    sched_slot = -1

        if c_cmd < 0:
            # nothing can issue: jump to the next event (a command becomes ready, a
            # request arrives, a transaction completes while max-active blocks
            # admission, a refresh falls due)
            t_ev = BIG
            for k in range(n_req):
                h = heads[k]
                if h < req_start[k + 1]:
                    a = arrival[h]
                    if a > t:
                        if a < t_ev:
                            t_ev = a
                    elif inflight >= maxact:
                        for y in range(2):
                            if done_len[y] > 0 and done_ring[y, done_head[y]] < t_ev:
                                t_ev = done_ring[y, done_head[y]]
                    elif pick >= 0:
                        # one request entered this cycle; the next one that has
                        # room is offered next cycle
                        if buforg == BUF_READ_WRITE:
                            room = qlen[is_write[h]] < qcap[is_write[h]]
                        elif buforg == BUF_SHARED:
                            room = qlen[0] + qlen[1] < bufcap
                        else:
                            room = bq[0, fbank[h]] + bq[1, fbank[h]] < bankcap
                        if room and t + 1 < t_ev:
                            t_ev = t + 1
            if refmode != REF_NONE and idle_skip and pick < 0 and qlen[0] + qlen[1] == 0:
                # an idle channel: refreshes fall due every `interval` and issue on
                # time until the next request arrives; count all but the last of them
                # at once instead of visiting each (a far-future arrival costs O(1)).
                # A powered-down rank repeats PDX, REF (nXP later), PDE per interval.
                horizon = t_ev if t_ev < tmin else tmin
                for r in range(NR if horizon < BIG else 0):
                    k_skip = (horizon - next_tick[r]) // interval - 1
                    if k_skip <= 0 or ref_active[r] == 1 or open_cnt[r] > 0:
                        continue
                    t0 = next_tick[r]
                    rfc = nRFC if refmode == REF_ALL_BANK else nRFCPB
                    off = 0  # REF offset from its tick
                    d_pde = 0  # PDE offset from its tick (power-down only)
                    if pd[r] == 1:
                        off = nXP
                        d_pde = max(nXP + pd_idle, nXP + rfc, nCKE)
                        if (
                            max_pull != 0
                            or debt[r] != 0
                            or pde_t[r] + nCKE > t0
                            or next_pde[r] > t0 + nCKE
                            or d_pde + nCKE > interval
                        ):
                            continue
                    elif debt[r] != -max_pull or (pd_idle > 0 and max(pd_idle, rfc) < interval):
                        continue  # (a rank that may power down between ticks is not steady)
                    quiet = True
                    if refmode == REF_ALL_BANK:
                        for j in range(r * BPR, (r + 1) * BPR):
                            if next_ref[j] > t0 + off:
                                quiet = False
                    else:  # each bank is ready by its own turn in the rotation
                        for m in range(BPR):
                            j = r * BPR + (ref_bank[r] + m) % BPR
                            if next_ref[j] > t0 + m * interval + off:
                                quiet = False
                        if (
                            next_refpb[r] > t0 + off
                            or refpb_gap > interval
                            or nRFCPB > BPR * interval
                        ):
                            quiet = False
                    if not quiet:
                        continue
                    t_last = t0 + (k_skip - 1) * interval
                    r_last = t_last + off  # the last skipped REF / REFpb
                    if pd[r] == 1:  # the PDX of each tick, then the PDE after its REF
                        v = t_last + nXP
                        for gq in range(r * NBG, (r + 1) * NBG):
                            if v > g_act[gq]:
                                g_act[gq] = v
                            if v > g_rd[gq]:
                                g_rd[gq] = v
                            if v > g_wr[gq]:
                                g_wr[gq] = v
                        for j in range(r * BPR, (r + 1) * BPR):
                            if v > next_pre[j]:
                                next_pre[j] = v
                        if v > next_refpb[r]:
                            next_refpb[r] = v
                        if t_last + nCKE > next_pde[r]:
                            next_pde[r] = t_last + nCKE
                        counters[C_BG_PRE_STBY + 2] += (t0 - state_since[r]) + (k_skip - 1) * (
                            interval - d_pde
                        )
                        counters[C_BG_PRE_STBY] += k_skip * d_pde
                        state_since[r] = t_last + d_pde
                        pde_t[r] = t_last + d_pde
                        counters[C_PDX] += k_skip
                        counters[C_PDE] += k_skip
                    if refmode == REF_ALL_BANK:
                        for j in range(r * BPR, (r + 1) * BPR):
                            if r_last + nRFC > next_act[j]:
                                next_act[j] = r_last + nRFC
                            next_ref[j] = r_last + nRFC
                        if r_last + nRFC > next_pde[r]:
                            next_pde[r] = r_last + nRFC
                        counters[C_REF] += k_skip
                        counters[C_REF_BUSY] += k_skip * nRFC
                    else:
                        for m in range(max(0, k_skip - BPR), k_skip):
                            j = r * BPR + (ref_bank[r] + m) % BPR
                            tm_ = t0 + m * interval + off
                            if tm_ + nRFCPB > next_act[j]:
                                next_act[j] = tm_ + nRFCPB
                            next_ref[j] = tm_ + nRFCPB
                        for gq in range(r * NBG, (r + 1) * NBG):
                            if r_last + refpb_gap > g_act[gq]:
                                g_act[gq] = r_last + refpb_gap
                        next_refpb[r] = r_last + refpb_gap
                        if r_last + nRFCPB > next_pde[r]:
                            next_pde[r] = r_last + nRFCPB
                        ref_bank[r] = (ref_bank[r] + k_skip) % BPR
                        counters[C_REFPB] += k_skip
                        counters[C_REF_BUSY] += k_skip * nRFCPB
                    last_cmd[r] = t_last + d_pde if pd[r] == 1 else r_last
                    next_tick[r] = t0 + k_skip * interval
                    dirty[r * BPR : (r + 1) * BPR] = 1
                    counters[C_REF_SKIPPED] += k_skip
            if refmode != REF_NONE:
                for r in range(NR):
                    if next_tick[r] < t_ev:
                        t_ev = next_tick[r]
            if t_ev <= tmin:
                tmin = t_ev
                sched_slot = -1  # an event comes first (or together): re-decide then
            if tmin >= BIG or tmin <= t:
                counters[C_STUCK] = 1
                break
            if sched_slot >= 0:
                fast_ok = True
                fast_slot = sched_slot
            counters[C_JUMP] += 1
            dt = tmin - t
            counters[C_OCC_R] += qlen[0] * dt
            counters[C_OCC_W] += qlen[1] * dt
            t = tmin
            continue

        # -- issue the chosen command at cycle t
        if c_fb >= 0:
            c_rank = b_rank[c_fb]
            dirty[c_fb] = 1
        else:
            dirty[c_rank * BPR : (c_rank + 1) * BPR] = 1
        r = c_rank
        g = b_bg[c_fb] if c_fb >= 0 else -1
        rowv = -1
        if c_cmd == ACT:
            h = c_h
            rowv = row[h]
            if kind[h] < 0:
                kind[h] = 1
            if open_cnt[r] == 0 and bg_state[r] == 0:
                _set_state(r, 1, t, bg_state, state_since, counters)
            open_cnt[r] += 1
            open_row[c_fb] = rowv
            last_act[c_fb] = t
            hit_streak[c_fb] = 0
            if t + nRC > next_act[c_fb]:
                next_act[c_fb] = t + nRC
            if t + nRAS > next_pre[c_fb]:
                next_pre[c_fb] = t + nRAS
            if t + nRCD > next_rd[c_fb]:
                next_rd[c_fb] = t + nRCD
            if t + nRCD > next_wr[c_fb]:
                next_wr[c_fb] = t + nRCD
            if t + nRC > next_ref[c_fb]:
                next_ref[c_fb] = t + nRC
            if t + refpb_gap > next_refpb[r]:
                next_refpb[r] = t + refpb_gap
            act_hist[r, act_ptr[r]] = t
            act_ptr[r] = (act_ptr[r] + 1) & 3
            faw = act_hist[r, act_ptr[r]] + nFAW  # the 5th ACT from now
            for gq in range(r * NBG, (r + 1) * NBG):
                v = t + (nRRD_L if gq == r * NBG + g else nRRD_S)
                if faw > v:
                    v = faw
                if v > g_act[gq]:
                    g_act[gq] = v
            for y in range(2):
                cnt = 0
                hh = bhead[y, c_fb]
                while hh >= 0:
                    if row[hh] == rowv:
                        cnt += 1
                    hh = nxt[hh]
                hp[y, c_fb] = cnt
            counters[C_ACT] += 1
        elif c_cmd == PRE:
            rowv = open_row[c_fb]
            if c_h >= 0 and kind[c_h] < 0:
                kind[c_h] = 2
            open_row[c_fb] = -1
            open_cnt[r] -= 1
            if open_cnt[r] == 0:
                _set_state(r, 0, t, bg_state, state_since, counters)
            hp[0, c_fb] = 0
            hp[1, c_fb] = 0
            if t + nRP > next_act[c_fb]:
                next_act[c_fb] = t + nRP
            if t + nRP > next_ref[c_fb]:
                next_ref[c_fb] = t + nRP
            counters[C_PRE] += 1
        elif c_cmd in (RD, WR):
            y = write_mode
            h = c_h
            rowv = row[h]
            if kind[h] < 0:
                kind[h] = 0
            a_ = prv[h]
            b_ = nxt[h]
            if a_ >= 0:
                nxt[a_] = b_
            else:
                bhead[y, c_fb] = b_
            if b_ >= 0:
                prv[b_] = a_
            else:
                btail[y, c_fb] = a_
            qlen[y] -= 1
            bq[y, c_fb] -= 1
            hp[y, c_fb] -= 1
            rank_q[r] -= 1
            hit_streak[c_fb] += 1
            last_col[c_fb] = t
            served += 1
            gme = r * NBG + g
            if c_cmd == RD:
                done = t + nCL + nBL
                for gq in range(NG):
                    if gq // NBG == r:
                        v_rd = t + (nCCD_L if gq == gme else nCCD_S)
                        v_wr = t + rtw_same
                    else:
                        v_rd = t + rr_other
                        v_wr = t + rtw_other
                    if v_rd > g_rd[gq]:
                        g_rd[gq] = v_rd
                    if v_wr > g_wr[gq]:
                        g_wr[gq] = v_wr
                if t + nRTP > next_pre[c_fb]:
                    next_pre[c_fb] = t + nRTP
                if t + rd_pde > next_pde[r]:
                    next_pde[r] = t + rd_pde
                counters[C_RD] += 1
            else:
                done = t + nCWL + nBL
                for gq in range(NG):
                    if gq // NBG == r:
                        if gq == gme:
                            v_wr = t + nCCD_L
                            v_rd = t + wtr_same_l
                        else:
                            v_wr = t + nCCD_S
                            v_rd = t + wtr_same_s
                    else:
                        v_wr = t + rr_other
                        v_rd = t + wtr_other
                    if v_rd > g_rd[gq]:
                        g_rd[gq] = v_rd
                    if v_wr > g_wr[gq]:
                        g_wr[gq] = v_wr
                if t + wr_pre > next_pre[c_fb]:
                    next_pre[c_fb] = t + wr_pre
                if t + wr_pde > next_pde[r]:
                    next_pde[r] = t + wr_pde
                counters[C_WR] += 1
            completion[h] = done
            if done > last_done:
                last_done = done
            idx = done_head[y] + done_len[y]
            if idx >= maxact:
                idx -= maxact
            done_ring[y, idx] = done
            done_len[y] += 1
        elif c_cmd == REF:
            for j in range(r * BPR, (r + 1) * BPR):
                if t + nRFC > next_act[j]:
                    next_act[j] = t + nRFC
                next_ref[j] = t + nRFC
            if t + nRFC > next_pde[r]:
                next_pde[r] = t + nRFC
            debt[r] -= 1
            ref_active[r] = 0
            counters[C_REF] += 1
            counters[C_REF_BUSY] += nRFC
        elif c_cmd == REFPB:
            if t + nRFCPB > next_act[c_fb]:
                next_act[c_fb] = t + nRFCPB
            for gq in range(r * NBG, (r + 1) * NBG):
                if t + refpb_gap > g_act[gq]:
                    g_act[gq] = t + refpb_gap
            next_ref[c_fb] = t + nRFCPB
            next_refpb[r] = t + refpb_gap
            if t + nRFCPB > next_pde[r]:
                next_pde[r] = t + nRFCPB
            debt[r] -= 1
            ref_active[r] = 0
            dirty[r * BPR : (r + 1) * BPR] = 1
            ref_bank[r] = (ref_bank[r] + 1) % BPR
            counters[C_REFPB] += 1
            counters[C_REF_BUSY] += nRFCPB
        elif c_cmd == PDE:
            pd[r] = 1
            pde_t[r] = t
            _set_state(r, 3 if open_cnt[r] > 0 else 2, t, bg_state, state_since, counters)
            counters[C_PDE] += 1
        else:  # PDX
            pd[r] = 0
            _set_state(r, 1 if open_cnt[r] > 0 else 0, t, bg_state, state_since, counters)
            v = t + nXP
            for gq in range(r * NBG, (r + 1) * NBG):
                if v > g_act[gq]:
                    g_act[gq] = v
                if v > g_rd[gq]:
                    g_rd[gq] = v
                if v > g_wr[gq]:
                    g_wr[gq] = v
            for j in range(r * BPR, (r + 1) * BPR):
                if v > next_pre[j]:
                    next_pre[j] = v
                if v > next_ref[j]:
                    next_ref[j] = v
            if v > next_refpb[r]:
                next_refpb[r] = v
            if t + nCKE > next_pde[r]:
                next_pde[r] = t + nCKE
            counters[C_PDX] += 1
        last_cmd[r] = t
        if log_on:
            if nlog >= log.shape[0]:
                log = _grow(log)
            log[nlog, 0] = t
            log[nlog, 1] = c_cmd
            log[nlog, 2] = r
            log[nlog, 3] = g
            log[nlog, 4] = b_bank[c_fb] if c_fb >= 0 else -1
            log[nlog, 5] = rowv
            nlog += 1
        counters[C_OCC_R] += qlen[0]
        counters[C_OCC_W] += qlen[1]
        t += 1

    end = last_done if last_done > t else t
    for r in range(NR):
        counters[C_BG_PRE_STBY + bg_state[r]] += end - state_since[r]
    counters[C_END] = end
    counters[C_NLOG] = nlog
    return completion, admit, kind, counters, log[:nlog]
