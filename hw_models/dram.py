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
from typing import Literal

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from hw_models.base import Source, Spec
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


class DRAMTiming(Spec):
    """JEDEC timing: ``tCK_ns`` and every other parameter in cycles of tCK."""

    tCK_ns: float = Field(gt=0, description="clock period of the command clock")
    nBL: PositiveInt = Field(description="cycles the data bus is busy for one burst")
    nCL: PositiveInt
    nCWL: PositiveInt
    nRCD: PositiveInt
    nRP: PositiveInt
    nRAS: PositiveInt
    nRC: PositiveInt
    nWR: PositiveInt
    nRTP: PositiveInt
    nCCD_S: PositiveInt
    nCCD_L: PositiveInt
    nRRD_S: PositiveInt
    nRRD_L: PositiveInt
    nFAW: PositiveInt
    nWTR_S: PositiveInt
    nWTR_L: PositiveInt
    nRFC: PositiveInt = Field(description="all-bank refresh cycle time")
    nREFI: PositiveInt = Field(description="average refresh interval")
    nRFCpb: PositiveInt | None = Field(default=None, description="per-bank refresh cycle time")
    nRTRS: int = Field(default=2, ge=0, description="rank-to-rank switch")
    nCKE: PositiveInt = Field(default=4, description="minimum power-down time")
    nXP: PositiveInt = Field(default=6, description="power-down exit to next command")

    @field_validator("nRAS")
    @classmethod
    def _ras_covers_rcd(cls, v: int, info: ValidationInfo) -> int:
        rcd = info.data.get("nRCD")
        if rcd is not None and v < rcd:
            raise ValueError(f"expected nRAS >= nRCD = {rcd}, found {v}")
        return v

    @field_validator("nRC")
    @classmethod
    def _rc_covers_ras_rp(cls, v: int, info: ValidationInfo) -> int:
        ras, rp = info.data.get("nRAS"), info.data.get("nRP")
        if ras is not None and rp is not None and v < ras + rp:
            raise ValueError(f"expected nRC >= nRAS + nRP = {ras + rp}, found {v}")
        return v

    @field_validator("nCCD_L", "nRRD_L", "nWTR_L")
    @classmethod
    def _long_not_shorter(cls, v: int, info: ValidationInfo) -> int:
        short_name = info.field_name.removesuffix("_L") + "_S"  # type: ignore[union-attr]
        short = info.data.get(short_name)
        if short is not None and v < short:
            raise ValueError(f"expected {info.field_name} >= {short_name} = {short}, found {v}")
        return v

    @field_validator("nCCD_S")
    @classmethod
    def _ccd_covers_burst(cls, v: int, info: ValidationInfo) -> int:
        bl = info.data.get("nBL")
        if bl is not None and v < bl:
            raise ValueError(f"expected nCCD_S >= nBL = {bl} (bursts cannot overlap), found {v}")
        return v

    @field_validator("nFAW")
    @classmethod
    def _faw_covers_rrd(cls, v: int, info: ValidationInfo) -> int:
        rrd = info.data.get("nRRD_S")
        if rrd is not None and v < rrd:
            raise ValueError(f"expected nFAW >= nRRD_S = {rrd}, found {v}")
        return v

    @field_validator("nREFI")
    @classmethod
    def _refi_covers_rfc(cls, v: int, info: ValidationInfo) -> int:
        rfc = info.data.get("nRFC")
        if rfc is not None and v <= rfc:
            raise ValueError(f"expected nREFI > nRFC = {rfc}, found {v}")
        return v

    def ns(self, cycles: int | float) -> float:
        """Convert a cycle count to nanoseconds."""
        return cycles * self.tCK_ns


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
