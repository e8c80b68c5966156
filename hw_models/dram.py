"""DRAM devices: organisation, JEDEC timing (in clock cycles), IDD/VDD power.

Timing parameters keep their JEDEC names (``nRCD``: tRCD in cycles of ``tCK``),
which is how datasheets and the reference simulators name them. Relations that
JEDEC guarantees are checked at load time, each error on the field it concerns::

    timing.nRC: expected nRC >= nRAS + nRP = 74, found 70

A device's peak bandwidth is derived from its organisation and data rate; a
datasheet figure, when given, must agree with it within 5 %.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from hw_models.base import Source, Spec
from hw_models.ceilings import CEILINGS
from hw_models.units import BytesPerS

DRAMStandard = Literal[
    "DDR4", "DDR5", "LPDDR4", "LPDDR5", "HBM2", "HBM2E", "HBM3", "HBM3E", "GDDR6"
]


class DRAMOrganization(Spec):
    """How one device (a DIMM channel set, an HBM stack, an LPDDR package) is organised.

    ``columns`` counts column addresses per row; one column is ``bus_width_bits``
    wide across the rank, so a row of a rank holds ``columns * bus_width_bits / 8`` bytes.
    """

    channels: PositiveInt = Field(description="independent channels (HBM: pseudo-channels)")
    ranks: PositiveInt = 1
    bank_groups: PositiveInt = 1
    banks_per_group: PositiveInt
    rows: PositiveInt
    columns: PositiveInt
    bus_width_bits: PositiveInt = Field(description="data bus width of one channel")
    burst_length: PositiveInt = Field(description="transfers per column access (BL)")
    device_width_bits: PositiveInt | None = Field(default=None, description="DQ width of one chip")

    @property
    def banks(self) -> int:
        """Banks per rank."""
        return self.bank_groups * self.banks_per_group

    @property
    def row_bytes(self) -> int:
        """Bytes in one row of one rank (the page size seen by the controller)."""
        return self.columns * self.bus_width_bits // 8

    @property
    def access_bytes(self) -> int:
        """Bytes moved by one column access (one burst): 64 B for DDR4 x64 BL8."""
        return self.burst_length * self.bus_width_bits // 8

    @property
    def capacity_bytes(self) -> int:
        """Total capacity of the device."""
        return self.channels * self.ranks * self.banks * self.rows * self.row_bytes


#: Relations JEDEC guarantees between timing parameters, checked at load time:
#: ``(lhs, rhs, strict)`` means ``lhs >= sum(rhs)`` (``>`` when strict). Each error is
#: reported on ``lhs``. (Every right-hand name must precede ``lhs`` in
#: :class:`DRAMTiming`, whose validators see earlier fields only.)
TIMING_RELATIONS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("nRAS", ("nRCD",), False),
    ("nRC", ("nRAS", "nRP"), False),
    ("nCCD_S", ("nBL",), False),  # bursts cannot overlap
    ("nCCD_L", ("nCCD_S",), False),
    ("nRRD_L", ("nRRD_S",), False),
    ("nFAW", ("nRRD_S",), False),
    ("nWTR_L", ("nWTR_S",), False),
    ("nREFI", ("nRFC",), True),
)

#: Default ceiling on any timing parameter, in cycles: the "cycles" row of
#: :data:`hw_models.ceilings.CEILINGS` (checked by the loaders and ``Spec.parse``,
#: raised explicitly with ``ceilings=``/``--ceiling cycles=N``).
MAX_TIMING_CYCLES = int(CEILINGS["cycles"].limit)

_Cycles = Annotated[int, Field(gt=0)]


class DRAMTiming(Spec):
    """JEDEC timing: ``tCK_ns`` and every other parameter in cycles of tCK."""

    tCK_ns: float = Field(gt=0, description="clock period of the command clock")
    nBL: _Cycles = Field(description="cycles the data bus is busy for one burst")
    nCL: _Cycles
    nCWL: _Cycles
    nRCD: _Cycles
    nRP: _Cycles
    nRAS: _Cycles
    nRC: _Cycles
    nWR: _Cycles
    nRTP: _Cycles
    nCCD_S: _Cycles
    nCCD_L: _Cycles
    nRRD_S: _Cycles
    nRRD_L: _Cycles
    nFAW: _Cycles
    nWTR_S: _Cycles
    nWTR_L: _Cycles
    nRFC: _Cycles = Field(description="all-bank refresh cycle time")
    nREFI: _Cycles = Field(description="average refresh interval")
    nRFCpb: _Cycles | None = Field(default=None, description="per-bank refresh cycle time")
    nRTRS: int = Field(default=2, ge=0, description="rank-to-rank switch")
    nCKE: _Cycles = Field(default=4, description="minimum power-down time")
    nXP: _Cycles = Field(default=6, description="power-down exit to next command")

    @field_validator(*sorted({r[0] for r in TIMING_RELATIONS}))
    @classmethod
    def _relations(cls, v: int, info: ValidationInfo) -> int:
        """The JEDEC relations of :data:`TIMING_RELATIONS` whose left side is this field."""
        for lhs, rhs, strict in TIMING_RELATIONS:
            if lhs != info.field_name:
                continue
            terms = [info.data.get(name) for name in rhs]
            if any(x is None for x in terms):
                continue  # an input field failed on its own; that error is reported
            bound = sum(int(x) for x in terms if x is not None)
            if v < bound or (strict and v == bound):
                op = ">" if strict else ">="
                expr = " + ".join(rhs)
                raise ValueError(f"expected {lhs} {op} {expr} = {bound}, found {v}")
        return v

    def ns(self, cycles: int | float) -> float:
        """Convert a cycle count to nanoseconds."""
        return cycles * self.tCK_ns


#: Pairwise command timing, the one table of the protocol: ``(prev, next, scope,
#: distance)`` reads "a ``next`` command in ``scope`` comes at least ``distance``
#: cycles after the last ``prev`` in that scope". ``distance`` is a sum of timing
#: parameters and integers (JEDEC JESD79-4 / JESD79-5 names: RL = nCL, WL = nCWL,
#: BL/2 = nBL). The protocol checker replays a command log against these rows and
#: the controller takes its spacing parameters from them (see
#: :func:`command_distance`), so the rules exist once.
SCOPES = ("same bank", "same bank group", "same rank", "other rank")
COMMAND_CONSTRAINTS: tuple[tuple[str, str, str, str], ...] = (
    ("ACT", "ACT", "same bank", "nRC"),
    ("ACT", "ACT", "same bank group", "nRRD_L"),
    ("ACT", "ACT", "same rank", "nRRD_S"),
    ("ACT", "RD", "same bank", "nRCD"),
    ("ACT", "WR", "same bank", "nRCD"),
    ("ACT", "PRE", "same bank", "nRAS"),
    ("PRE", "ACT", "same bank", "nRP"),
    ("RD", "RD", "same bank group", "nCCD_L"),
    ("RD", "RD", "same rank", "nCCD_S"),
    ("RD", "RD", "other rank", "nBL + nRTRS"),
    ("WR", "WR", "same bank group", "nCCD_L"),
    ("WR", "WR", "same rank", "nCCD_S"),
    ("WR", "WR", "other rank", "nBL + nRTRS"),
    ("RD", "WR", "same rank", "nCL + nBL + 2 - nCWL"),
    ("RD", "WR", "other rank", "nCL + nBL + nRTRS - nCWL"),
    ("WR", "RD", "same bank group", "nCWL + nBL + nWTR_L"),
    ("WR", "RD", "same rank", "nCWL + nBL + nWTR_S"),
    ("WR", "RD", "other rank", "nCWL + nBL + nRTRS - nCL"),
    ("RD", "PRE", "same bank", "nRTP"),
    ("WR", "PRE", "same bank", "nCWL + nBL + nWR"),
    ("ACT", "REF", "same rank", "nRC"),
    ("PRE", "REF", "same rank", "nRP"),
    ("REF", "ACT", "same rank", "nRFC"),
    ("REF", "REF", "same rank", "nRFC"),
    ("ACT", "REFpb", "same bank", "nRC"),
    ("PRE", "REFpb", "same bank", "nRP"),
    ("REFpb", "ACT", "same bank", "nRFCpb"),
    # tRREFD (REFpb to ACT/REFpb of another bank) is taken as nRRD_L
    ("REFpb", "ACT", "same rank", "nRRD_L"),
    ("ACT", "REFpb", "same rank", "nRRD_L"),
    ("REFpb", "REFpb", "same rank", "nRRD_L"),
    ("RD", "PDE", "same rank", "nCL + nBL + 1"),  # tRDPDEN
    ("WR", "PDE", "same rank", "nCWL + nBL + nWR"),  # tWRPDEN
    ("REF", "PDE", "same rank", "nRFC"),
    ("REFpb", "PDE", "same rank", "nRFCpb"),
    ("PDE", "PDX", "same rank", "nCKE"),
    ("PDX", "PDE", "same rank", "nCKE"),
    *(("PDX", c, "same rank", "nXP") for c in ("ACT", "PRE", "RD", "WR", "REF", "REFpb")),
)


def _evaluate(formula: str, timing: DRAMTiming) -> int:
    """``"nCL + nBL + 2 - nCWL"`` with the parameters of ``timing``."""
    total, sign = 0, 1
    for tok in formula.split():
        if tok in ("+", "-"):
            sign = 1 if tok == "+" else -1
            continue
        if tok.isdigit():
            value = int(tok)
        elif tok == "nRFCpb":
            value = timing.nRFCpb or timing.nRFC  # no per-bank refresh: same as all-bank
        else:
            value = int(getattr(timing, tok))
        total += sign * value
    return total


def command_distance(timing: DRAMTiming, prev: str, next: str, scope: str) -> int:
    """The distance of the :data:`COMMAND_CONSTRAINTS` row ``prev -> next`` in ``scope``."""
    for p, n, s, formula in COMMAND_CONSTRAINTS:
        if (p, n, s) == (prev, next, scope):
            return _evaluate(formula, timing)
    raise KeyError(f"no timing constraint {prev}->{next} {scope}")


def command_constraints(timing: DRAMTiming) -> list[tuple[str, str, str, int, str]]:
    """Every row of :data:`COMMAND_CONSTRAINTS` with its distance in cycles:
    ``(prev, next, scope, distance, formula)``."""
    return [(p, n, s, _evaluate(f, timing), f) for p, n, s, f in COMMAND_CONSTRAINTS]


class DRAMPower(Spec):
    """Datasheet currents (mA) and supply voltages (V) for DRAMPower-style energy.

    Names follow the JEDEC IDD definitions: IDD0 (ACT-PRE cycling), IDD2N
    (precharge standby), IDD3N (active standby), IDD4R/IDD4W (burst read/write),
    IDD5B (burst refresh), IDD2P/IDD3P (power-down); the ``2`` variants are the
    VPP/VDDQ rail where the standard has one.
    """

    VDD: float = Field(gt=0)
    IDD0: float = Field(gt=0)
    IDD2N: float = Field(gt=0)
    IDD3N: float = Field(gt=0)
    IDD4R: float = Field(gt=0)
    IDD4W: float = Field(gt=0)
    IDD5B: float = Field(gt=0)
    IDD2P: float | None = Field(default=None, gt=0)
    IDD3P: float | None = Field(default=None, gt=0)
    VPP: float | None = Field(default=None, gt=0)
    IPP0: float | None = Field(default=None, ge=0)
    IPP2N: float | None = Field(default=None, ge=0)
    IPP3N: float | None = Field(default=None, ge=0)
    IPP4R: float | None = Field(default=None, ge=0)
    IPP4W: float | None = Field(default=None, ge=0)
    IPP5B: float | None = Field(default=None, ge=0)
    chips_per_rank: PositiveInt = Field(default=1, description="devices whose currents add up")


class DRAMDevice(Spec):
    """A DRAM device preset: standard, data rate, organisation, timing, power, sources."""

    name: str = Field(min_length=1)
    standard: DRAMStandard
    data_rate_mtps: float = Field(gt=0, description="mega-transfers per second per pin")
    transfers_per_clock: PositiveInt = Field(
        default=2, description="data transfers per tCK (2 for DDR; 8 for LPDDR5 at 4:1 WCK:CK)"
    )
    organization: DRAMOrganization
    timing: DRAMTiming
    power: DRAMPower | None = None
    datasheet_bandwidth_bytes_per_s: BytesPerS | None = None
    sources: list[Source] = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DRAMDevice:
        expected_rate = self.transfers_per_clock * 1e3 / self.timing.tCK_ns
        if abs(expected_rate - self.data_rate_mtps) > 0.01 * self.data_rate_mtps:
            raise ValueError(
                f"data_rate_mtps = {self.data_rate_mtps:g} disagrees with "
                f"transfers_per_clock / timing.tCK_ns = {expected_rate:.0f} MT/s"
            )
        bl_cycles = self.organization.burst_length / self.transfers_per_clock
        if self.timing.nBL != bl_cycles:
            raise ValueError(
                f"timing.nBL = {self.timing.nBL} but organization.burst_length / "
                f"transfers_per_clock = {bl_cycles:g}"
            )
        ds = self.datasheet_bandwidth_bytes_per_s
        if ds is not None and abs(ds - self.peak_bandwidth_bytes_per_s) > 0.05 * ds:
            raise ValueError(
                f"datasheet_bandwidth_bytes_per_s = {ds:.4g} disagrees by more than 5 % with "
                f"the organisation's peak {self.peak_bandwidth_bytes_per_s:.4g} B/s"
            )
        return self

    @cached_property
    def peak_bandwidth_bytes_per_s(self) -> float:
        """channels x bus width x data rate."""
        org = self.organization
        return org.channels * org.bus_width_bits / 8 * self.data_rate_mtps * 1e6

    def channel_bandwidth_bytes_per_s(self) -> float:
        """Peak bandwidth of one channel."""
        return self.peak_bandwidth_bytes_per_s / self.organization.channels

    @property
    def capacity_bytes(self) -> int:
        """Capacity from the organisation."""
        return self.organization.capacity_bytes
