"""Unit strings are read exactly as datasheets write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw_models.units import UnitError, fmt_bytes, fmt_si, parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("80 GiB", "bytes", 80 * 1024**3),
        ("80 GB", "bytes", 80e9),
        ("50 MiB", "bytes", 50 * 1024**2),
        ("228 KiB", "bytes", 228 * 1024),
        ("512 Gb", "bytes", 64e9),  # gigabits -> bytes
        ("3.35 TB/s", "bytes_per_s", 3.35e12),
        ("64 GB/s", "bytes_per_s", 64e9),
        ("100 Gb/s", "bytes_per_s", 12.5e9),  # a link quoted in bits per second
        ("100 ns", "s", 100e-9),
        ("4 us", "s", 4e-6),
        ("1.83 GHz", "hz", 1.83e9),
        ("989.4 TFLOP/s", "flops_per_s", 989.4e12),
        ("3.9 pJ/bit", "j_per_byte", 3.9e-12 * 8),
        ("5 pJ/B", "j_per_byte", 5e-12),
        ("1e9", "bytes", 1e9),
        (42, "bytes", 42.0),
    ],
)
def test_parse_quantity_reads_datasheet_notation(text: object, kind: str, expected: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(expected, rel=1e-12)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("3.35 TB/s", "bytes", "expected bytes"),
        ("80 GiB", "s", "expected s"),
        ("fast", "bytes_per_s", "cannot read"),
        ("12 parsecs", "s", "unknown unit"),
        (True, "bytes", "expected a number"),
        (float("inf"), "bytes", "finite"),
        ([1], "bytes", "expected a number"),
    ],
)
def test_parse_quantity_rejects_wrong_units_clearly(text: object, kind: str, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_quantity(text, kind)  # type: ignore[arg-type]


@given(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    st.sampled_from(["", "k", "M", "G", "T"]),
)
def test_decimal_prefixes_scale_by_powers_of_1000(x: float, prefix: str) -> None:
    scale = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[prefix]
    assert parse_quantity(f"{x!r} {prefix}B/s", "bytes_per_s") == pytest.approx(x * scale)


def test_formatting_helpers() -> None:
    assert fmt_bytes(80 * 1024**3) == "80.0 GiB"
    assert fmt_bytes(512) == "512 B"
    assert fmt_si(3.35e12, "B/s") == "3.35 TB/s"
    assert fmt_si(100e-9, "s") == "100 ns"
