"""An independent JEDEC protocol checker for a DRAM command log.

It replays the log (ACT, PRE, RD, WR, REF, REFpb, PDE, PDX with cycle, rank,
bank group, bank, row) against a table of pairwise rules written straight from
the timing parameters' definitions: "a ``next`` command in ``scope`` must come
at least ``distance`` cycles after the last ``prev`` command in that scope".
It shares no timing code with the controller (which tracks earliest-issue times
per bank); the two agree only if both read the standard the same way. On top of
the rules it checks bank state (ACT to an open bank, RD/WR to a closed bank or
another row, REF with open banks), power-down (no command but PDX in it), the
four-activate window, and one command per cycle per channel.

>>> # violations = check_commands(device, log); each names its rule:
>>> # Violation(index=17, channel=0, cycle=130, command='ACT', rule='PRE->ACT same bank (nRP)', ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models.dram import DRAMDevice
from memsim._jit import njit

CMDS = ("ACT", "PRE", "RD", "WR", "REF", "REFpb", "PDE", "PDX")
_CODE = {c: i for i, c in enumerate(CMDS)}
SCOPES = ("same bank", "same bank group", "same rank", "other rank")
STATE_RULES = {
    -1: "ACT to a bank whose row is open",
    -2: "RD/WR to a precharged bank",
    -3: "RD/WR to a row that is not open",
    -4: "REF with a bank open in the rank",
    -5: "REFpb to an open bank",
    -6: "command to a rank in power-down",
    -7: "PDE in power-down or PDX outside it",
    -8: "two commands in one cycle on a channel",
    -9: "more than four ACTs in tFAW",
    -10: "log not in cycle order",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """``next`` at least ``distance`` cycles after the last ``prev`` in ``scope``."""

    prev: str
    next: str
    scope: str
    distance: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One broken rule: where in the log, which rule, required vs actual distance."""

    index: int
    channel: int
    cycle: int
    command: str
    rule: str
    required: int
    actual: int


def timing_rules(device: DRAMDevice) -> list[Rule]:
    """The pairwise timing rules of ``device``, from its JEDEC parameters."""
    t = device.timing
    rfcpb = t.nRFCpb or t.nRFC
    rl, wl, bl = t.nCL, t.nCWL, t.nBL
    rows: list[tuple[str, str, str, int, str]] = [
        ("ACT", "ACT", "same bank", t.nRC, "nRC"),
        ("ACT", "ACT", "same bank group", t.nRRD_L, "nRRD_L"),
        ("ACT", "ACT", "same rank", t.nRRD_S, "nRRD_S"),
        ("ACT", "RD", "same bank", t.nRCD, "nRCD"),
        ("ACT", "WR", "same bank", t.nRCD, "nRCD"),
        ("ACT", "PRE", "same bank", t.nRAS, "nRAS"),
        ("PRE", "ACT", "same bank", t.nRP, "nRP"),
        ("RD", "RD", "same bank group", t.nCCD_L, "nCCD_L"),
        ("RD", "RD", "same rank", t.nCCD_S, "nCCD_S"),
        ("RD", "RD", "other rank", bl + t.nRTRS, "nBL + nRTRS"),
        ("WR", "WR", "same bank group", t.nCCD_L, "nCCD_L"),
        ("WR", "WR", "same rank", t.nCCD_S, "nCCD_S"),
        ("WR", "WR", "other rank", bl + t.nRTRS, "nBL + nRTRS"),
        ("RD", "WR", "same rank", rl + bl + 2 - wl, "RL + BL/2 + 2 - WL"),
        ("RD", "WR", "other rank", rl + bl + t.nRTRS - wl, "RL + BL/2 + nRTRS - WL"),
        ("WR", "RD", "same bank group", wl + bl + t.nWTR_L, "WL + BL/2 + nWTR_L"),
        ("WR", "RD", "same rank", wl + bl + t.nWTR_S, "WL + BL/2 + nWTR_S"),
        ("WR", "RD", "other rank", wl + bl + t.nRTRS - rl, "WL + BL/2 + nRTRS - RL"),
        ("RD", "PRE", "same bank", t.nRTP, "nRTP"),
        ("WR", "PRE", "same bank", wl + bl + t.nWR, "WL + BL/2 + nWR"),
        ("ACT", "REF", "same rank", t.nRC, "nRC"),
        ("PRE", "REF", "same rank", t.nRP, "nRP"),
        ("REF", "ACT", "same rank", t.nRFC, "nRFC"),
        ("REF", "REF", "same rank", t.nRFC, "nRFC"),
        ("ACT", "REFpb", "same bank", t.nRC, "nRC"),
        ("PRE", "REFpb", "same bank", t.nRP, "nRP"),
        ("REFpb", "ACT", "same bank", rfcpb, "nRFCpb"),
        ("REFpb", "ACT", "same rank", t.nRRD_L, "nRREFD (taken as nRRD_L)"),
        ("ACT", "REFpb", "same rank", t.nRRD_L, "nRREFD (taken as nRRD_L)"),
        ("REFpb", "REFpb", "same rank", t.nRRD_L, "nRREFD (taken as nRRD_L)"),
        ("RD", "PDE", "same rank", rl + bl + 1, "tRDPDEN = RL + BL/2 + 1"),
        ("WR", "PDE", "same rank", wl + bl + t.nWR, "tWRPDEN = WL + BL/2 + nWR"),
        ("REF", "PDE", "same rank", t.nRFC, "nRFC"),
        ("REFpb", "PDE", "same rank", rfcpb, "nRFCpb"),
        ("PDE", "PDX", "same rank", t.nCKE, "nCKE"),
        ("PDX", "PDE", "same rank", t.nCKE, "nCKE"),
    ]
    rows += [
        ("PDX", c, "same rank", t.nXP, "nXP") for c in ("ACT", "PRE", "RD", "WR", "REF", "REFpb")
    ]
    return [
        Rule(prev=a, next=b, scope=s, distance=d, name=f"{a}->{b} {s} ({label})")
        for a, b, s, d, label in rows
    ]


@njit()
def _replay(cycle, cmd, rank, bg, bank, row, shape, r_prev, r_next, r_scope, r_dist, n_faw):
    NR, NBG, NBPG = shape[0], shape[1], shape[2]
    NB = NR * NBG * NBPG
    big = np.int64(1) << np.int64(60)
    last_bank = np.full((8, NB), -big, dtype=np.int64)
    last_bg = np.full((8, NR * NBG), -big, dtype=np.int64)
    last_rank = np.full((8, NR), -big, dtype=np.int64)
    open_row = np.full(NB, -1, dtype=np.int64)
    pd = np.zeros(NR, dtype=np.int64)
    faw = np.full((NR, 4), -big, dtype=np.int64)
    faw_ptr = np.zeros(NR, dtype=np.int64)
    out_i = []
    out_rule = []
    out_req = []
    out_act = []
    n = cycle.shape[0]
    for i in range(n):
        t = cycle[i]
        c = cmd[i]
        r = rank[i]
        rank_cmd = c == 4 or c == 6 or c == 7
        fb = -1
        rg = -1
        if not rank_cmd:
            rg = r * NBG + bg[i]
            fb = rg * NBPG + bank[i]
        if i > 0:
            if t == cycle[i - 1]:
                out_i.append(i)
                out_rule.append(-8)
                out_req.append(1)
                out_act.append(0)
            elif t < cycle[i - 1]:
                out_i.append(i)
                out_rule.append(-10)
                out_req.append(0)
                out_act.append(t - cycle[i - 1])
        # pairwise timing rules
        for k in range(r_prev.shape[0]):
            if r_next[k] != c:
                continue
            p = r_prev[k]
            s = r_scope[k]
            prev_t = -big
            if s == 0:
                if fb < 0:
                    continue
                prev_t = last_bank[p, fb]
            elif s == 1:
                if rg < 0:
                    continue
                prev_t = last_bg[p, rg]
            elif s == 2:
                prev_t = last_rank[p, r]
            else:
                for rr in range(NR):
                    if rr != r and last_rank[p, rr] > prev_t:
                        prev_t = last_rank[p, rr]
            if prev_t > -big and t - prev_t < r_dist[k]:
                out_i.append(i)
                out_rule.append(k)
                out_req.append(r_dist[k])
                out_act.append(t - prev_t)
        # state rules
        if pd[r] == 1 and c != 7:
            out_i.append(i)
            out_rule.append(-6)
            out_req.append(0)
            out_act.append(0)
        if c == 0:
            if open_row[fb] >= 0:
                out_i.append(i)
                out_rule.append(-1)
                out_req.append(0)
                out_act.append(0)
            oldest = faw[r, faw_ptr[r]]
            if oldest > -big and t - oldest < n_faw:
                out_i.append(i)
                out_rule.append(-9)
                out_req.append(n_faw)
                out_act.append(t - oldest)
            faw[r, faw_ptr[r]] = t
            faw_ptr[r] = (faw_ptr[r] + 1) % 4
            open_row[fb] = row[i]
        elif c == 1:
            open_row[fb] = -1
        elif c == 2 or c == 3:
            if open_row[fb] < 0:
                out_i.append(i)
                out_rule.append(-2)
                out_req.append(0)
                out_act.append(0)
            elif open_row[fb] != row[i]:
                out_i.append(i)
                out_rule.append(-3)
                out_req.append(0)
                out_act.append(0)
        elif c == 4:
            base = r * NBG * NBPG
            for j in range(base, base + NBG * NBPG):
                if open_row[j] >= 0:
                    out_i.append(i)
                    out_rule.append(-4)
                    out_req.append(0)
                    out_act.append(0)
                    break
        elif c == 5:
            if open_row[fb] >= 0:
                out_i.append(i)
                out_rule.append(-5)
                out_req.append(0)
                out_act.append(0)
        elif c == 6:
            if pd[r] == 1:
                out_i.append(i)
                out_rule.append(-7)
                out_req.append(0)
                out_act.append(0)
            pd[r] = 1
        elif c == 7:
            if pd[r] == 0:
                out_i.append(i)
                out_rule.append(-7)
                out_req.append(0)
                out_act.append(0)
            pd[r] = 0
        last_rank[c, r] = t
        if fb >= 0:
            last_bank[c, fb] = t
            last_bg[c, rg] = t
    m = len(out_i)
    res = np.empty((m, 4), dtype=np.int64)
    for j in range(m):
        res[j, 0] = out_i[j]
        res[j, 1] = out_rule[j]
        res[j, 2] = out_req[j]
        res[j, 3] = out_act[j]
    return res


def check_commands(device: DRAMDevice, log: object) -> list[Violation]:
    """Every protocol violation in ``log`` (a :class:`memsim.dram.CommandLog`)."""
    rules = timing_rules(device)
    r_prev = np.array([_CODE[r.prev] for r in rules], dtype=np.int64)
    r_next = np.array([_CODE[r.next] for r in rules], dtype=np.int64)
    r_scope = np.array([SCOPES.index(r.scope) for r in rules], dtype=np.int64)
    r_dist = np.array([r.distance for r in rules], dtype=np.int64)
    org = device.organization
    shape = np.array([org.ranks, org.bank_groups, org.banks_per_group], dtype=np.int64)
    channel: npt.NDArray[np.int64] = log.channel  # type: ignore[attr-defined]
    out: list[Violation] = []
    for ch in np.unique(channel):
        sel = np.flatnonzero(channel == ch)

        def col(name: str, sel: npt.NDArray[np.int64] = sel) -> npt.NDArray[np.int64]:
            return np.ascontiguousarray(getattr(log, name)[sel], dtype=np.int64)

        res = _replay(
            col("cycle"),
            col("command"),
            col("rank"),
            col("bank_group"),
            col("bank"),
            col("row"),
            shape,
            r_prev,
            r_next,
            r_scope,
            r_dist,
            device.timing.nFAW,
        )
        cyc = col("cycle")
        cmd = col("command")
        for i, rule, req, act in res:
            name = rules[rule].name if rule >= 0 else STATE_RULES[int(rule)]
            out.append(
                Violation(
                    index=int(sel[i]),
                    channel=int(ch),
                    cycle=int(cyc[i]),
                    command=CMDS[int(cmd[i])],
                    rule=name,
                    required=int(req),
                    actual=int(act),
                )
            )
    return out
