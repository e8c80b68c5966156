"""`memsim flash` and `memsim cache`: JSON results users script against, clean user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memsim.cli.main import main


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_flash_read_curve_json(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(
        [
            "flash",
            "--device",
            "apple_m1_max_1tb",
            "--request-bytes",
            "4KiB,1MiB",
            "--queue-depth",
            "1,8",
            "--requests",
            "300",
        ],
        capsys,
    )
    assert isinstance(rows, list) and len(rows) == 4
    assert [(r["request_bytes"], r["queue_depth"]) for r in rows] == [
        (4096, 1),
        (4096, 8),
        (1048576, 1),
        (1048576, 8),
    ]
    # QD1 4 KiB on the preset: 3 us controller + 20 us overhead + tR 50 us + 4096 / 800 MB/s
    assert rows[0]["mean_latency_s"] == pytest.approx(3e-6 + 20e-6 + 50e-6 + 4096 / 800e6)
    assert rows[3]["throughput_bytes_per_s"] <= 6.4e9


def test_flash_writes_json(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(
        [
            "flash",
            "--device",
            "samsung_pm9a3_7t68",
            "--writes",
            "--pattern",
            "sequential",
            "--request-bytes",
            "64KiB",
            "--requests",
            "1000",
            "--no-precondition",
        ],
        capsys,
    )
    assert isinstance(rows, list)
    (row,) = rows
    assert row["write_amplification"] == 1.0
    assert row["host_bytes"] == 1000 * 65536
    assert row["endurance_used_fraction"] == pytest.approx(1000 * 65536 / 18.22e15)


@pytest.mark.slow
def test_flash_random_4k_writes_report_wa_near_the_estimate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Acceptance finding: 4 KiB random writes on the PM9A3 (16 KiB pages) reported WA 16.8
    # beside a greedy estimate of 4.1 (whole-page rewrites). With 4 KiB mapping units the
    # FTL's WA is the greedy figure for spare 0.1268 (a = 1.145 -> 4.13) within 10 %.
    argv = ["flash", "--device", "samsung_pm9a3_7t68", "--writes", "--requests", "30000"]
    rows = run_json(argv, capsys)
    assert isinstance(rows, list)
    (row,) = rows
    assert row["map_unit_bytes"] == 4096 and row["rmw_factor"] == 1.0
    assert row["greedy_wa_estimate"] == pytest.approx(4.13, abs=0.01)
    assert row["write_amplification"] == pytest.approx(row["greedy_wa_estimate"], rel=0.10)
    # page-mapped (--map-unit 16KiB): each 4 KiB write rewrites a page, reported as RMW 4
    paged_rows = run_json([*argv, "--map-unit", "16KiB"], capsys)
    assert isinstance(paged_rows, list)
    (paged,) = paged_rows
    assert paged["rmw_factor"] == 4.0
    assert paged["nand_bytes_per_host_byte"] == pytest.approx(
        4 * paged["write_amplification"], rel=1e-12
    )
    assert main([*argv[:-1], "3000"]) == 0
    out = capsys.readouterr().out
    assert "map unit" in out and "RMW" in out and "NAND/host" in out


def test_flash_list_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", "--list"]) == 0
    assert "samsung_pm9a3_7t68" in capsys.readouterr().out
    assert main(["flash", "--device", "apple_m1_max_1tb", "--requests", "50"]) == 0
    out = capsys.readouterr().out
    assert "throughput" in out and "IOPS" in out


def test_cache_single_level_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        [
            "cache",
            "--capacity",
            "1KiB",
            "--line",
            "64",
            "--ways",
            "4",
            "--policy",
            "lru",
            "--pattern",
            "stream",
            "--footprint",
            "2KiB",
            "--accesses",
            "1000",
            "--write-fraction",
            "0",
        ],
        capsys,
    )
    assert isinstance(out, dict)
    (level,) = out["levels"]
    # a 32-line loop through a 16-line LRU cache: every access misses
    assert level["hits"] == 0 and level["misses"] == 1000
    assert level["sets"] == 4
    assert out["memory_reads"] == 1000 and out["memory_writes"] == 0


def test_cache_levels_and_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("R 0\nR 64\nW 0\nR 4096\nR 0\n")
    out = run_json(
        ["cache", "--levels", "128/64/2/fifo,1KiB/64/4/srrip", "--trace", str(trace)], capsys
    )
    assert isinstance(out, dict)
    l1, l2 = out["levels"]
    # L1 = 1 set x 2 ways FIFO: M M H(write, dirty) M(evicts line 0, dirty -> write-back)
    # M(line 0 again, evicts line 1)
    assert (l1["hits"], l1["misses"], l1["writebacks"]) == (1, 4, 1)
    assert l2["accesses"] == 4 + 1  # 4 fills + 1 write-back


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["flash", "--device", "floppy"], "unknown flash device 'floppy'"),
        (["flash", "--device", "apple_m1_max_1tb", "--queue-depth", "0"], "--queue-depth"),
        (["flash", "--device", "apple_m1_max_1tb", "--request-bytes", "4XB"], "--request-bytes"),
        (["flash", "--device", "apple_m1_max_1tb", "--pattern", "zigzag"], "pattern"),
        (["cache", "--line", "48"], "line_bytes"),
        (["cache", "--capacity", "1000"], "capacity_bytes"),
        (["cache", "--policy", "plru"], "policy"),
        (["cache", "--levels", "32KiB/64/8"], "levels[0]"),
        (["cache", "--trace", "/nonexistent/trace.txt"], "file not found"),
        (["cache", "--accesses", "0"], "--accesses"),
        (["cache", "--accesses", "-3"], "--accesses"),
        (["cache", "--ways", "0"], "ways"),
        (["cache", "--footprint", "0"], "--footprint"),
        (["cache", "--stride", "-4"], "--stride"),
        (["cache", "--seed", "-1"], "--seed"),
        (["flash", "--device", "apple_m1_max_1tb", "--requests", "0"], "--requests"),
        (["flash", "--device", "apple_m1_max_1tb", "--requests", "-1"], "--requests"),
        (["flash", "--device", "apple_m1_max_1tb", "--request-bytes", "0"], "--request-bytes"),
        (["flash", "--device", "apple_m1_max_1tb", "--queue-depth", "-2"], "--queue-depth"),
        (["flash", "--device", "apple_m1_max_1tb", "--seed", "-1"], "--seed"),
        (["flash", "--device", "apple_m1_max_1tb", "--writes", "--requests", "0"], "--requests"),
        (
            ["flash", "--device", "apple_m1_max_1tb", "--writes", "--map-unit", "0"],
            "--map-unit",
        ),
        (
            ["flash", "--device", "apple_m1_max_1tb", "--writes", "--map-unit", "3KiB"],
            "map_unit_bytes",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_empty_cache_trace_is_an_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "empty.txt"
    trace.write_text("")
    assert main(["cache", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert str(trace) in err and "no accesses" in err and "Traceback" not in err


@pytest.mark.slow
def test_console_script_exit_status() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "memsim.cli.main", "cache", "--line", "48"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "line_bytes" in proc.stderr and "Traceback" not in proc.stderr
