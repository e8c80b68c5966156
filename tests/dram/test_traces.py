"""Trace formats: round trips, the documented line shapes, errors with file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models import DRAMDevice, SpecError
from memsim.dram import RequestTrace, simulate_requests
from memsim.dram.trace_scan import scan
from workloads.formats.dram_traces import (
    FORMATS,
    format_lines,
    parse_lines,
    read_trace,
    write_trace,
)


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    reqs=st.lists(
        st.tuples(st.integers(0, 2**40), st.booleans(), st.integers(0, 1000)), max_size=50
    ),
)
def test_round_trip(fmt: str, reqs: list[tuple[int, bool, int]]) -> None:
    addr = np.array([r[0] for r in reqs], dtype=np.int64)
    wr = np.array([r[1] for r in reqs], dtype=bool)
    cyc = np.cumsum([r[2] for r in reqs]).astype(np.int64)
    back = parse_lines(format_lines(addr, is_write=wr, cycles=cyc, format=fmt), format=fmt)
    assert back.address.tolist() == addr.tolist()
    assert back.is_write.tolist() == wr.tolist()
    assert back.cycles.tolist() == cyc.tolist()


def test_documented_line_shapes() -> None:
    assert format_lines([0x40], is_write=[True], cycles=[7], format="dramsim3") == ["0x40 WRITE 7"]
    assert format_lines([0x40], is_write=[False], cycles=[7], format="stl") == ["7: read 0x40"]
    # Ramulator 2 LoadStoreTrace: exactly "LD|ST addr" when no timing is needed
    assert format_lines([0x40, 0x80], is_write=[False, True], format="ramulator") == [
        "LD 0x40",
        "ST 0x80",
    ]
    # with timing: bubble cycles before each request
    assert format_lines([0x40, 0x80], cycles=[3, 10], format="ramulator") == [
        "3 LD 0x40",
        "7 LD 0x80",
    ]


def test_parse_accepts_decimal_addresses_comments_and_stl_data() -> None:
    tr = parse_lines(["# header", "LD 4096", "", "ST 0x20  # a store"], format="ramulator2")
    assert tr.address.tolist() == [4096, 32] and tr.is_write.tolist() == [False, True]
    tr = parse_lines(["12: write 0x100 0xdeadbeef", "13:read 0x140"], format="dramsys")
    assert tr.cycles.tolist() == [12, 13] and tr.is_write.tolist() == [True, False]


@pytest.mark.parametrize(
    ("fmt", "bad"),
    [
        ("ramulator", "LOAD 0x40"),
        ("ramulator", "LD"),
        ("dramsim3", "0x40 READ"),
        ("dramsim3", "0x40 FETCH 3"),
        ("stl", "12 read 0x40"),
        ("stl", "12: read 0x40 0xff"),
        ("stl", "12: read zz"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, fmt: str, bad: str) -> None:
    good = format_lines([0], format=fmt)[0]
    path = tmp_path / "t.trace"
    path.write_text(f"{good}\n{good}\n{bad}\n")
    with pytest.raises(SpecError) as err:
        read_trace(path, format=fmt)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"unknown trace format 'ramsim'.*dramsim3"):
        parse_lines([], format="ramsim")
    with pytest.raises(SpecError, match="cannot read"):
        read_trace(tmp_path / "missing.trace", format="stl")


def test_write_then_simulate(tmp_path: Path, ddr4: DRAMDevice) -> None:
    path = write_trace(
        tmp_path / "x.trace", addresses=[0, 64, 128], cycles=[0, 5, 9], format="dramsim3"
    )
    assert not list(tmp_path.glob(".x.trace.*"))  # no temporary file left behind
    tr = RequestTrace.from_file(str(path), format="dramsim3")
    assert tr.arrival_cycle.tolist() == [0, 5, 9]
    assert simulate_requests(ddr4, tr).requests == 3


def test_time_ordered_formats_reject_decreasing_cycles() -> None:
    with pytest.raises(SpecError, match="cycles decrease"):
        format_lines([0, 64], cycles=[5, 3], format="stl")


def test_large_requests_split_into_bursts(ddr4: DRAMDevice) -> None:
    # 100 B at 0x30 covers bytes 0x30..0x93: bursts 0x0, 0x40, 0x80 (3 x 64 B)
    tr = RequestTrace.from_arrays([0x30, 0x1000], arrival_cycle=[5, 9], is_write=[True, False])
    split = tr.split(size_bytes=[100, 64], burst_bytes=ddr4.organization.access_bytes)
    assert split.address.tolist() == [0x0, 0x40, 0x80, 0x1000]
    assert split.arrival_cycle.tolist() == [5, 5, 5, 9]
    assert split.is_write.tolist() == [True, True, True, False]
    with pytest.raises(SpecError, match=r"size_bytes\[1\]"):
        tr.split(size_bytes=[64, 0], burst_bytes=64)


@settings(max_examples=30, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    reqs=st.lists(
        st.tuples(st.integers(0, 2**62), st.booleans(), st.integers(0, 2**20)), max_size=40
    ),
    noise=st.lists(st.sampled_from(["", "# c", "   ", "\t"]), max_size=5),
)
def test_compiled_reader_agrees_with_the_line_reader(
    tmp_path_factory: pytest.TempPathFactory,
    fmt: str,
    reqs: list[tuple[int, bool, int]],
    noise: list[str],
) -> None:
    addr = np.array([r[0] for r in reqs], dtype=np.int64)
    wr = np.array([r[1] for r in reqs], dtype=bool)
    cyc = np.cumsum([r[2] for r in reqs]).astype(np.int64)
    lines = format_lines(addr, is_write=wr, cycles=cyc, format=fmt)
    lines = noise + [f"{x}  # note" if i % 3 == 0 else x for i, x in enumerate(lines)]
    path = tmp_path_factory.mktemp("t") / "x.trace"
    path.write_text("\n".join(lines) + "\n")
    fast = read_trace(path, format=fmt, scanner=scan)
    slow = parse_lines(lines, format=fmt)
    for name in ("cycles", "address", "is_write"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist()


@pytest.mark.parametrize(
    ("fmt", "bad"),
    [
        ("ramulator", "LD 0x10000000000000000"),  # 2^64
        ("ramulator", "LD 18446744073709551616"),
        ("ramulator", "9223372036854775807 LD 0x40"),  # the running cycle overflows
        ("dramsim3", "0x40 READ 99999999999999999999999"),
        ("dramsim3", "0x8000000000000000 READ 1"),  # 2^63
        ("stl", "18446744073709551616: read 0x40"),
        ("stl", "1: write 0xfffffffffffffffffff"),
    ],
)
def test_integers_beyond_64_bits_name_the_line(tmp_path: Path, fmt: str, bad: str) -> None:
    good = format_lines([0], cycles=[1], format=fmt)[0]
    path = tmp_path / "t.trace"
    path.write_text(f"{good}\n{bad}\n")
    for scanner in (None, scan):
        with pytest.raises(SpecError) as err:
            read_trace(path, format=fmt, scanner=scanner)
        text = str(err.value)
        assert "line 2" in text and ("64 bits" in text or "2**63" in text)
    with pytest.raises(SpecError, match="line 2"):
        parse_lines([good, bad], format=fmt)


def test_long_write_data_is_not_an_integer_and_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.stl"
    path.write_text("1: write 0x40 0x" + "ab" * 64 + "\n")
    assert read_trace(path, format="stl", scanner=scan).address.tolist() == [0x40]
    assert read_trace(path, format="stl").address.tolist() == [0x40]


@pytest.mark.parametrize("bad", ["LD 1_000", "LD \u0661\u0662", "LD +5", "LD 0x"])
def test_only_plain_ascii_integers(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "t.trace"
    path.write_text(f"LD 0\n{bad}\n", encoding="utf-8")
    for scanner in (None, scan):
        with pytest.raises(SpecError, match="line 2"):
            read_trace(path, format="ramulator", scanner=scanner)


def test_stl_cycles_must_not_decrease(tmp_path: Path) -> None:
    path = tmp_path / "t.stl"
    path.write_text("5: read 0x0\n3: read 0x40\n")
    for scanner in (None, scan):
        with pytest.raises(SpecError, match=r"line 2.*before the previous"):
            read_trace(path, format="stl", scanner=scanner)


def test_device_files_are_refused() -> None:
    with pytest.raises(SpecError, match="not a regular file"):
        read_trace("/dev/zero", format="stl")
