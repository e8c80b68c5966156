"""`memsim run`: default summary, JSON contract, --out files, user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsim.cli.main import main

SMALL = ["--batch", "2", "--prompt", "32", "--gen", "2"]


def test_default_run_prints_a_readable_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--fidelity", "analytic"]) == 0
    out = capsys.readouterr().out
    assert "llama2_7b on h100_sxm" in out
    for text in ("time to first token", "time per output token", "tokens/s", "bottleneck", "hbm"):
        assert text in out


def test_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMALL, "--format", "json", "--policy", "kv_offload"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in (
        "ttft_s",
        "tpot_s",
        "tokens_per_s",
        "makespan_s",
        "energy_j",
        "bottleneck",
        "tiers",
    ):
        assert key in doc
    assert set(doc["tiers"]["hbm"]) >= {"bytes_read", "bytes_written", "peak_bytes"}
    # batch x generated tokens / makespan
    assert doc["tokens_per_s"] == pytest.approx(2 * 2 / doc["makespan_s"])
    assert doc["meta"]["policy"] == "kv_offload"


@pytest.mark.slow
def test_out_writes_files_and_replaces_only_previous_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", *SMALL, "--fidelity", "analytic", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "ops.csv", "tiers.csv", "trace.json"} <= names
    assert json.loads((out / "trace.json").read_text())["traceEvents"]
    assert main(["run", *SMALL, "--fidelity", "analytic", "--out", str(out)]) == 0  # a re-run
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    assert main(["run", *SMALL, "--out", str(other)]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert (other / "mine.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--tp", "2"], "cannot run tp=2 x pp=1 = 2"),
        (["--pp", "2"], "cannot run tp=1 x pp=2 = 2"),
        (["--pp", "0"], "--pp: expected an integer >= 1, found 0"),
        (["--policy", "nope"], "unknown placement policy"),
        (["--model", "gpt9"], "gpt9"),
        (["--system", "no_such_system"], "unknown system preset"),
        (["--batch", "0"], "--batch"),
    ],
)
def test_user_errors_exit_2_without_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *SMALL, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_yaml_system_too_small_for_the_model_names_the_shortfall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from tests.conftest import tiny_system_data

    data = tiny_system_data()
    data["tiers"]["hbm"]["capacity_bytes"] = "4 GB"
    data["tiers"]["ddr"]["capacity_bytes"] = "8 GB"
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    # Llama-2-7B's 13.5 GB of bf16 weights fit neither tier
    assert main(["run", *SMALL, "--system", str(path), "--fidelity", "analytic"]) == 2
    err = capsys.readouterr().err
    assert "short by" in err and "Traceback" not in err


def test_run_sets_request_fidelity_and_controller_from_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the HBM tier at request fidelity: its fraction and latency come from the DRAM
    # controller, so the row policy given on the command line changes them: closed page pays
    # tRCD on every access (higher unloaded latency) but avoids row conflicts on the random
    # KV-page traffic, so the two fractions differ
    common = ["run", "--batch", "1", "--prompt", "32", "--gen", "4", "--fidelity", "analytic"]
    common += ["--set", "tiers.hbm.fidelity=request", "--format", "json"]
    fractions, latency = {}, {}
    for policy in ("open", "closed"):
        assert main([*common, "--dram-config", f"row_policy={policy}"]) == 0
        fid = json.loads(capsys.readouterr().out)["meta"]["tier_fidelity"]["hbm"]
        assert fid["fidelity"] == "request" and fid["controller"]["row_policy"] == policy
        fractions[policy] = fid["bandwidth_fraction"]
        latency[policy] = fid["latency_s"]
    assert all(0 < f <= 1 for f in fractions.values())
    assert fractions["closed"] != pytest.approx(fractions["open"], rel=1e-3)
    assert latency["closed"] > latency["open"]
    assert main([*common, "--dram-config", "no_such_key=1"]) == 2
    assert "dram_config.no_such_key" in capsys.readouterr().err


def test_request_tier_without_traffic_is_reported_not_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # host DDR at request fidelity, but everything fits in HBM: nothing to calibrate
    args = ["run", "--batch", "1", "--prompt", "16", "--gen", "1", "--fidelity", "analytic"]
    assert main([*args, "--set", "tiers.ddr.fidelity=request"]) == 0
    assert "ddr: request fidelity, no traffic reached it" in capsys.readouterr().out
