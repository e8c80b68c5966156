"""One unit system for all of memsim: SI base units, written into field names.

Every quantity is stored as a float (or int) in a base unit, and the unit is part
of the field name: ``capacity_bytes``, ``read_bandwidth_bytes_per_s``,
``latency_s``, ``clock_hz``, ``peak_flops_per_s``, ``read_energy_j_per_byte``.

In YAML (and on the command line) a value may be a plain number in that base unit
or a string with a unit, which :func:`parse_quantity` converts::

    >>> parse_quantity("80 GiB", "bytes")
    85899345920.0
    >>> parse_quantity("3.35 TB/s", "bytes_per_s")
    3350000000000.0
    >>> f"{parse_quantity('100 ns', 's'):g}"
    '1e-07'

Decimal prefixes (k, M, G, T, P) are powers of 1000; binary ones (Ki, Mi, Gi,
Ti, Pi) powers of 1024, as in the IEC standard and in datasheets.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
KB = 1000
MB = 1000**2
GB = 1000**3
TB = 1000**4
NS = 1e-9
US = 1e-6
MS = 1e-3
PJ = 1e-12

UnitKind = Literal["bytes", "bytes_per_s", "s", "hz", "flops_per_s", "j_per_byte", "j", "w", "bits"]

_PREFIX: dict[str, float] = {
    "": 1.0,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
}

# unit symbol (after the prefix) -> (kind, factor to the base unit)
_UNITS: dict[str, tuple[UnitKind, float]] = {
    "B": ("bytes", 1.0),
    "b": ("bits", 1.0),
    "bit": ("bits", 1.0),
    "B/s": ("bytes_per_s", 1.0),
    "Bps": ("bytes_per_s", 1.0),
    "b/s": ("bytes_per_s", 0.125),
    "bps": ("bytes_per_s", 0.125),
    "s": ("s", 1.0),
    "Hz": ("hz", 1.0),
    "FLOP/s": ("flops_per_s", 1.0),
    "FLOPS": ("flops_per_s", 1.0),
    "OP/s": ("flops_per_s", 1.0),
    "OPS": ("flops_per_s", 1.0),
    "J/B": ("j_per_byte", 1.0),
    "J/bit": ("j_per_byte", 8.0),
    "J/b": ("j_per_byte", 8.0),
    "J": ("j", 1.0),
    "W": ("w", 1.0),
}

# ASCII digits only (``\d`` would take any Unicode digit), no ``_`` separators
_QUANTITY = re.compile(
    r"^ *([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?) *([A-Za-zµ/]*) *$"
)
MAX_QUANTITY = 1e30  # beyond any real hardware; products of a few such numbers stay finite


class UnitError(ValueError):
    """A quantity string that cannot be read as the expected unit."""


def _split_unit(symbol: str) -> tuple[UnitKind, float] | None:
    if symbol in _UNITS:
        return _UNITS[symbol]
    for plen in (2, 1):
        prefix, rest = symbol[:plen], symbol[plen:]
        if prefix in _PREFIX and rest in _UNITS:
            kind, factor = _UNITS[rest]
            return kind, factor * _PREFIX[prefix]
    return None


def parse_quantity(value: object, kind: UnitKind) -> float:
    """Convert ``value`` (a number in the base unit, or a string with a unit) to a float.

    Raises :class:`UnitError` naming what was expected and what was found.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a number or a quantity in {kind}, found {value!r}")
    if isinstance(value, int | float):
        return _bounded(float(value), value)
    if not isinstance(value, str):
        raise UnitError(f"expected a number or a quantity in {kind}, found {type(value).__name__}")
    m = _QUANTITY.match(value) if len(value) <= 100 else None
    if m is None:
        raise UnitError(f"cannot read {_short(value)} as a quantity in {kind}")
    number, symbol = float(m.group(1)), m.group(2)
    if symbol == "":
        return _bounded(number, value)
    parsed = _split_unit(symbol)
    if parsed is None:
        raise UnitError(f"unknown unit {symbol!r} in {value!r} (expected {kind})")
    found_kind, factor = parsed
    if kind == "bytes" and found_kind == "bits":
        return _bounded(_scaled(number, factor) / 8.0, value)
    if found_kind != kind:
        raise UnitError(f"{value!r} is a quantity in {found_kind}, expected {kind}")
    return _bounded(_scaled(number, factor), value)


def _scaled(number: float, factor: float) -> float:
    """``number x factor``, divided by the exact inverse for sub-unit prefixes, so that
    ``100 ns`` is exactly ``1e-07`` rather than ``1.0000000000000001e-07``."""
    if factor < 1.0:
        inverse = round(1.0 / factor)
        if math.isclose(1.0 / inverse, factor, rel_tol=1e-12):
            return number / inverse
    return number * factor


def _bounded(number: float, shown: object) -> float:
    if not math.isfinite(number):
        raise UnitError(f"expected a finite number, found {_short(shown)}")
    if abs(number) > MAX_QUANTITY:
        raise UnitError(f"expected a magnitude of at most {MAX_QUANTITY:g}, found {_short(shown)}")
    return number


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parser(kind: UnitKind) -> BeforeValidator:
    def parse(v: object) -> object:
        if isinstance(v, str):
            return parse_quantity(v, kind)
        return v

    return BeforeValidator(parse)


# Annotated pydantic types: a positive (or non-negative) quantity that YAML may
# give with a unit string.
Bytes = Annotated[float, _parser("bytes"), Field(gt=0)]
BytesPerS = Annotated[float, _parser("bytes_per_s"), Field(gt=0)]
Seconds = Annotated[float, _parser("s"), Field(ge=0)]
PositiveSeconds = Annotated[float, _parser("s"), Field(gt=0)]
Hertz = Annotated[float, _parser("hz"), Field(gt=0)]
FlopsPerS = Annotated[float, _parser("flops_per_s"), Field(gt=0)]
JoulesPerByte = Annotated[float, _parser("j_per_byte"), Field(ge=0)]
Joules = Annotated[float, _parser("j"), Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


def fmt_bytes(n: float) -> str:
    """Human-readable binary size: ``fmt_bytes(80 * GiB) == '80.0 GiB'``."""
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_si(x: float, unit: str) -> str:
    """Human-readable SI value: ``fmt_si(3.35e12, 'B/s') == '3.35 TB/s'``."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"
