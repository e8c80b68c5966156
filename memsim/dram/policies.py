"""Named controller policies: schedulers, row policies, refresh modes, arbiters.

Each is registered by name in a :class:`~memsim.registry.Registry` and carries the
integer code the compiled controller loop understands. Schedulers and row
policies are implemented in :mod:`memsim.dram.schedulers` (the interface the loop
calls); refresh modes and arbiters in the loop itself. Unknown names raise
:class:`hw_models.SpecError` listing the known ones::

    >>> SCHEDULERS.create("frfcfs").code
    1
"""

from __future__ import annotations

from dataclasses import dataclass

from memsim.dram import kernel as k
from memsim.dram import schedulers as sch
from memsim.registry import Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A named choice of the controller and its code in the compiled loop."""

    name: str
    code: int
    description: str


def _register(reg: Registry[Policy], name: str, code: int, description: str) -> None:
    policy = Policy(name=name, code=code, description=description)

    @reg.register(name)
    def _make() -> Policy:
        return policy


SCHEDULERS: Registry[Policy] = Registry("scheduler")
_register(
    SCHEDULERS,
    "fcfs",
    sch.SCHED_FCFS,
    "in order: only the oldest request of the active queue may issue commands",
)
_register(
    SCHEDULERS,
    "frfcfs",
    sch.SCHED_FRFCFS,
    "first-ready FCFS: ready row hits first, then the oldest ready request; "
    "a row with queued hits is not closed",
)
_register(
    SCHEDULERS,
    "frfcfs_cap",
    sch.SCHED_FRFCFS_CAP,
    "FR-FCFS, but after `row_hit_cap` hits to a row while a request to another "
    "row of the bank waits, the row is closed for it",
)

ROW_POLICIES: Registry[Policy] = Registry("row policy")
_register(ROW_POLICIES, "open", sch.ROW_OPEN, "rows stay open until a conflict or a refresh")
_register(
    ROW_POLICIES,
    "closed",
    sch.ROW_CLOSED,
    "a row is precharged as soon as no queued request hits it",
)
_register(
    ROW_POLICIES,
    "timeout",
    sch.ROW_TIMEOUT,
    "adaptive: a row without queued hits is precharged `row_timeout_cycles` after its last access",
)

REFRESH_MODES: Registry[Policy] = Registry("refresh mode")
_register(REFRESH_MODES, "all_bank", k.REF_ALL_BANK, "REF to a whole rank every tREFI (tRFC)")
_register(
    REFRESH_MODES,
    "per_bank",
    k.REF_PER_BANK,
    "REFpb to one bank every tREFI / banks, in rotation (tRFCpb); needs timing.nRFCpb",
)
_register(REFRESH_MODES, "none", k.REF_NONE, "no refresh (for experiments only)")

ARBITERS: Registry[Policy] = Registry("arbiter")
_register(ARBITERS, "round_robin", k.ARB_ROUND_ROBIN, "requestors take turns")
_register(ARBITERS, "fifo", k.ARB_FIFO, "the oldest waiting request first, whoever sent it")
_register(ARBITERS, "priority", k.ARB_PRIORITY, "lower requestor id first")
