"""`memsim dram`: JSON fields, table output, offered load and saturation, user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    # added with --rate: offered load, saturation flag, mapping used
    "offered_bandwidth_gbps",
    "offered_peak_fraction",
    "saturated",
    "min_read_latency_ns",
    "mapping",
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


def dram_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["dram", "--device", "DDR4_3200", *args, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, dict)
    return out


def test_rate_offers_a_fraction_of_peak_and_is_not_saturated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # DDR4-3200 x64: peak 25.6 GB/s, 64 B bursts, tCK 0.625 ns. --rate 0.5 -> one burst
    # every 64 / 12.8e9 = 5 ns = 8 cycles; the last of 2000 arrives at 1999 x 5 ns, so the
    # offered bandwidth is 2000 x 64 B / 9.995 us = 12.806 GB/s
    out = dram_json(["--pattern", "stream", "--requests", "2000", "--rate", "0.5"], capsys)
    assert out["offered_bandwidth_gbps"] == pytest.approx(2000 * 64 / (1999 * 5e-9) / 1e9)
    assert out["saturated"] is False
    # a stream at half of peak is served as it arrives: within 1 % of the offered load
    assert out["bandwidth_gbps"] == pytest.approx(out["offered_bandwidth_gbps"], rel=0.01)
    # and read latency stays within a few unloaded latencies (not queueing-dominated)
    assert out["avg_read_latency_ns"] < 5 * out["min_read_latency_ns"]


def test_backlogged_run_is_flagged_saturated_in_json_and_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = dram_json(["--pattern", "random", "--requests", "2000"], capsys)
    assert out["saturated"] is True
    assert out["offered_bandwidth_gbps"] is None  # infinite: every request at t=0
    # 2000 requests at ~11 GB/s take ~12 us, so a request waits ~6 us on average for a
    # slot in the 32-entry read queue; its latency from admission is bounded by that
    # queue (32 requests ahead at ~6 ns each): the two are reported apart
    assert out["avg_admission_wait_ns"] > 10 * out["avg_read_latency_ns"]
    assert out["avg_read_latency_ns"] < 32 * 64 / out["bandwidth_gbps"] + 60
    assert main(["dram", "--device", "DDR4_3200", "--pattern", "random", "--requests", "2000"]) == 0
    text = capsys.readouterr().out
    assert "note: saturated run" in text and "--rate" in text
    assert "backlogged" in text and "RoCoBaRaCh (DDR4 default)" in text
    assert main(
        ["dram", "--device", "DDR4_3200", "--pattern", "random", "--requests", "2000",
         "--rate", "0.1"]
    ) == 0  # fmt: skip
    assert "note: saturated" not in capsys.readouterr().out


def test_default_mapping_is_the_standards_and_streams_near_peak(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # DDR4 default RoCoBaRaCh interleaves consecutive bursts over bank groups, so a
    # backlogged stream issues a read every tCCD_S = nBL: peak less refresh (nRFC / nREFI
    # = 350 ns / 7.8 us = 4.5 %) and row switches, > 90 %. RoBaRaCoCh keeps a stream in
    # one bank group (tCCD_L > nBL) and reaches less.
    out = dram_json(["--pattern", "stream", "--requests", "5000"], capsys)
    assert out["mapping"] == "RoCoBaRaCh" and out["config"]["mapping"] == "RoCoBaRaCh"
    assert out["peak_fraction"] > 0.90
    other = dram_json(
        ["--pattern", "stream", "--requests", "5000", "--mapping", "RoBaRaCoCh"], capsys
    )
    assert other["mapping"] == "RoBaRaCoCh"
    assert other["peak_fraction"] < out["peak_fraction"]


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
        (["--device", "DDR4_3200", "--pattern", "random", "--requests", "-5"], "requests"),
        (["--device", "DDR4_3200", "--pattern", "random", "--rate", "0"], "--rate"),
        (["--device", "DDR4_3200", "--pattern", "random", "--rate", "-0.5"], "--rate"),
        (["--device", "DDR4_3200", "--pattern", "random", "--rate", "0.5",
          "--interval-cycles", "4"], "not both"),
        (["--device", "DDR4_3200", "--pattern", "random", "--seed", "-1"], "--seed"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dram", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_rate_with_a_trace_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.stl"
    path.write_text("0: read 0x0\n")
    argv = ["dram", "--device", "HBM3", "--trace", str(path), "--trace-format", "stl"]
    assert main([*argv, "--rate", "0.5"]) == 2
    assert "--rate" in capsys.readouterr().err


def test_bad_trace_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.trace"
    path.write_text("LD 0x0\nLD 0x40 0x80\n")
    rc = main(
        ["dram", "--device", "DDR4_3200", "--trace", str(path), "--trace-format", "ramulator"]
    )
    assert rc == 2
    assert "line 2" in capsys.readouterr().err


def test_config_file_json_and_yaml_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = {
        "scheduler": "fcfs",
        "buffer_organization": "shared",
        "request_buffer_size": 16,
        "response_queue": "fifo",
        "refresh_max_postponed": 8,
    }
    as_json = tmp_path / "best.json"
    as_json.write_text(json.dumps(cfg))
    as_yaml = tmp_path / "best.yaml"
    as_yaml.write_text("controller:\n" + "".join(f"  {k}: {v}\n" for k, v in cfg.items()))
    args = ["--pattern", "random", "--requests", "500"]
    a = dram_json([*args, "--config", str(as_json)], capsys)
    b = dram_json([*args, "--config", str(as_yaml)], capsys)
    assert a == b
    assert {k: a["config"][k] for k in cfg} == cfg
    assert a["mapping"] == "RoCoBaRaCh"  # the file did not set one: the DDR4 default
    # flags and --set apply on top of the file
    c = dram_json(
        [
            *args,
            "--config",
            str(as_json),
            "--scheduler",
            "frfcfs",
            "--set",
            "request_buffer_size=8",
        ],
        capsys,
    )
    assert c["config"]["scheduler"] == "frfcfs" and c["config"]["request_buffer_size"] == 8


def test_bad_config_file_names_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"response_queue": "lifo"}))
    argv = ["dram", "--device", "DDR4_3200", "--pattern", "random", "--config", str(bad)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "controller.response_queue" in err and "Traceback" not in err


def test_request_count_ceiling_is_named_and_raisable(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["dram", "--device", "DDR4_3200", "--pattern", "random"]
    assert main([*argv, "--requests", "1000000000000"]) == 2
    err = capsys.readouterr().err
    assert "--max-requests" in err and "50000000" in err and "Traceback" not in err
    assert main([*argv, "--requests", "300", "--max-requests", "200"]) == 2
    assert main([*argv, "--requests", "300", "--max-requests", "300", "--format", "json"]) == 0
