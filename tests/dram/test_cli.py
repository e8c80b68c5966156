"""`memsim dram`: JSON fields, table output, user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsim.cli.main import main

KEYS = {
    "bandwidth_gbps",
    "avg_read_latency_ns",
    "p99_read_latency_ns",
    "row_hits",
    "row_misses",
    "row_conflicts",
    "energy_j",
    "requests",
    "violations",
}


def test_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["dram", "--device", "DDR4_3200", "--pattern", "random", "--requests", "500",
         "--scheduler", "frfcfs", "--row-policy", "closed", "--set", "read_queue_size=8",
         "--format", "json"]
    )  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= KEYS
    assert out["requests"] == 500 and out["violations"] == 0
    assert out["config"]["read_queue_size"] == 8 and out["config"]["row_policy"] == "closed"
    assert out["row_hits"] + out["row_misses"] + out["row_conflicts"] == 500


def test_trace_file_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.stl"
    path.write_text("0: read 0x0\n4: write 0x40\n9: read 0x80\n")
    rc = main(["dram", "--device", "HBM3", "--trace", str(path), "--trace-format", "stl"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 requests (2 reads, 1 writes)" in out and "protocol violations" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "DDR9", "--pattern", "random"], "unknown DRAM device preset 'DDR9'"),
        (["--device", "DDR4_3200"], "give either --trace FILE or --pattern NAME"),
        (["--device", "DDR4_3200", "--pattern", "random", "--scheduler", "lifo"], "lifo"),
        (["--device", "DDR4_3200", "--pattern", "random", "--set", "queue=3"], "set.queue"),
        (["--device", "DDR4_3200", "--pattern", "random", "--set", "refresh=per_bank"],
         "per_bank refresh needs timing.nRFCpb"),
        (["--device", "DDR4_3200", "--pattern", "random", "--requests", "0"], "requests"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dram", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_trace_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.trace"
    path.write_text("LD 0x0\nLD 0x40 0x80\n")
    rc = main(
        ["dram", "--device", "DDR4_3200", "--trace", str(path), "--trace-format", "ramulator"]
    )
    assert rc == 2
    assert "line 2" in capsys.readouterr().err
