"""Address mappings: physical byte address -> channel, rank, bank group, bank, row, column.

A mapping is named by its fields from the most to the least significant bit, as in
Ramulator: ``RoBaRaCoCh`` puts the channel just above the burst offset, then the
column, rank, bank and row. ``Ba`` covers bank group and bank, the bank-group bits
being the low ones, so consecutive bank indices alternate bank groups. ``Co``
counts bursts (one column access of ``burst_length``), not column addresses.

* ``RoBaRaCoCh``: consecutive lines walk the columns of one row of one bank (one
  bank group: column commands are tCCD_L apart);
* ``RoRaBaChCo``: as above, channel above the column;
* ``ChRaBaRoCo``: channel, rank and bank on the top bits (each a contiguous region);
* ``RoCoBaRaCh``: consecutive lines go to different bank groups, then banks
  (streams run at tCCD_S).

``bank_xor`` XORs the bank-group+bank index with the low row bits (permutation
interleaving) to spread row conflicts. An address outside the device is a
:class:`hw_models.SpecError`, never a silent wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError
from memsim.registry import Registry

FIELDS = ("Ro", "Ra", "Ba", "Co", "Ch")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    """Decoded coordinates, one array per level (all int64)."""

    channel: IntArray
    rank: IntArray
    bank_group: IntArray
    bank: IntArray
    row: IntArray
    column: IntArray


def _log2(value: int, what: str) -> int:
    bits = value.bit_length() - 1
    if value <= 0 or (1 << bits) != value:
        raise SpecError([Problem(what, f"address mapping needs a power of two, found {value}")])
    return bits


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressMapping:
    """Field order (MSB -> LSB) of a physical address, with optional bank XOR."""

    name: str
    order: tuple[str, ...]
    bank_xor: bool = False

    def widths(self, device: DRAMDevice) -> dict[str, int]:
        """Bits per field for ``device``."""
        org = device.organization
        return {
            "Ch": _log2(org.channels, "organization.channels"),
            "Ra": _log2(org.ranks, "organization.ranks"),
            "Ba": _log2(org.banks, "organization.banks"),
            "Ro": _log2(org.rows, "organization.rows"),
            "Co": _log2(org.columns // org.burst_length, "organization.columns / burst_length"),
        }

    def decode(self, device: DRAMDevice, addresses: npt.ArrayLike) -> Decoded:
        """Coordinates of every byte address (vectorised).

        Raises :class:`SpecError` for a negative address or one at or beyond the
        device capacity, naming the first offending request.
        """
        addr = np.asarray(addresses, dtype=np.int64)
        cap = device.capacity_bytes
        bad = np.flatnonzero((addr < 0) | (addr >= cap))
        if bad.size:
            i = int(bad[0])
            raise SpecError(
                [
                    Problem(
                        f"trace.address[{i}]",
                        f"address {int(addr[i]):#x} is outside {device.name} "
                        f"(capacity {cap:#x} bytes; {bad.size} such addresses)",
                    )
                ]
            )
        org = device.organization
        widths = self.widths(device)
        x = addr >> _log2(org.access_bytes, "organization.access_bytes")
        vals: dict[str, IntArray] = {}
        for field in reversed(self.order):
            w = widths[field]
            vals[field] = x & ((1 << w) - 1)
            x = x >> w
        ba = vals["Ba"]
        if self.bank_xor:
            ba = ba ^ (vals["Ro"] & (org.banks - 1))
        return Decoded(
            channel=vals["Ch"],
            rank=vals["Ra"],
            bank_group=ba % org.bank_groups,
            bank=ba // org.bank_groups,
            row=vals["Ro"],
            column=vals["Co"],
        )

    def encode(self, device: DRAMDevice, d: Decoded) -> IntArray:
        """The byte address of each coordinate (inverse of :meth:`decode`)."""
        org = device.organization
        widths = self.widths(device)
        ba = d.bank * org.bank_groups + d.bank_group
        if self.bank_xor:
            ba = ba ^ (d.row & (org.banks - 1))
        vals = {"Ch": d.channel, "Ra": d.rank, "Ba": ba, "Ro": d.row, "Co": d.column}
        x = np.zeros_like(np.asarray(d.row, dtype=np.int64))
        for field in self.order:
            x = (x << widths[field]) | vals[field]
        return x << _log2(org.access_bytes, "organization.access_bytes")


def _parse(name: str) -> tuple[str, ...]:
    parts = tuple(name[i : i + 2] for i in range(0, len(name), 2))
    if sorted(parts) != sorted(FIELDS):
        raise ValueError(f"mapping {name!r} must name each of {FIELDS} once")
    return parts


MAPPING_NAMES = ("RoBaRaCoCh", "RoRaBaChCo", "ChRaBaRoCo", "RoCoBaRaCh")
MAPPINGS: Registry[AddressMapping] = Registry("address mapping")
for _name in MAPPING_NAMES:

    def _factory(*, bank_xor: bool = False, _n: str = _name) -> AddressMapping:
        return AddressMapping(name=_n, order=_parse(_n), bank_xor=bank_xor)

    MAPPINGS.register(_name)(_factory)


def get_mapping(name: str, *, bank_xor: bool = False) -> AddressMapping:
    """The registered mapping ``name`` (SpecError listing the known names if unknown)."""
    return MAPPINGS.create(name, bank_xor=bank_xor)
