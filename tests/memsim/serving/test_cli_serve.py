"""`memsim serve`: JSON contract, load curve, --out files, same bytes as the API, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsim.cli.main import main
from memsim.serving import SUMMARY_KEYS, ServeConfig, make_requests, serve

SMALL = ["--requests", "30", "--prompt-len", "fixed:64", "--output-len", "fixed:8"]


def test_json_summary_has_every_key_and_matches_the_api(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", *SMALL, "--arrival", "poisson:5", "--seed", "2", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(SUMMARY_KEYS) <= set(doc)
    assert doc["completed"] + doc["dropped"] == doc["requests"] == 30
    assert doc["generated_tokens"] == 8 * doc["completed"]
    reqs = make_requests(
        arrival="poisson:5", requests=30, prompt_len="fixed:64", output_len="fixed:8", seed=2
    )
    api = serve("h100_sxm", "llama2_7b", reqs, config=ServeConfig()).summary()
    assert json.loads(json.dumps(api)) == doc  # the CLI adds no modelling of its own


def test_load_curve_and_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curve"
    args = ["serve", *SMALL, "--rates", "2,8", "--out", str(out), "--format", "json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rate"] for r in rows] == [2.0, 8.0]
    names = {p.name for p in out.iterdir()}
    assert {"load_curve.csv", "latency_vs_load.png", "rate_2", "rate_8"} <= names
    assert {"summary.json", "requests.csv", "iterations.csv", "latency_cdf.png"} <= {
        p.name for p in (out / "rate_8").iterdir()
    }
    assert main(["serve", *SMALL, "--out", str(out)]) == 0  # a previous run is replaced
    assert {p.name for p in out.iterdir()} >= {"summary.json", "kv_occupancy.png"}
    assert not (out / "rate_2").exists()
    capsys.readouterr()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    assert main(["serve", *SMALL, "--out", str(other)]) == 2
    assert "does not hold a previous memsim serve run" in capsys.readouterr().err
    assert (other / "mine.txt").read_text() == "keep"


def test_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *SMALL, "--scheduler", "chunked", "--max-batched-tokens", "128"]) == 0
    out = capsys.readouterr().out
    for text in ("chunked scheduler", "TTFT p50 / p99", "TBT p50 / p99", "goodput", "peak KV"):
        assert text in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arrival", "poisson:-1"], "arrival: expected a number > 0"),
        (["--arrival", "zipf:3"], "unknown arrival process 'zipf' (known: gamma, poisson)"),
        (["--scheduler", "fifo"], "unknown scheduler 'fifo' (known: chunked, continuous, static)"),
        (["--block-manager", "buddy"], "unknown block manager 'buddy'"),
        (["--prompt-len", "lognormal:abc:1"], "prompt_len: expected a number"),
        (["--output-len", "uniform:9:3"], "uniform:A:B needs A <= B"),
        (["--rates", "1,x"], "--rates: expected comma-separated numbers"),
        (["--block-size", "0"], "block_size: expected an integer >= 1"),
        (["--kv-swap-tier", "tape"], "kv_swap_tier: unknown tier 'tape'"),
        (["--preemption", "swap"], "preemption: swap needs kv_swap_tier"),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *SMALL, *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_trace_replay_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_len,output_len\n0.5,64,4\n0.0,32,2\n")
    assert main(["serve", "--arrival", f"trace:{trace}", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["requests"] == 2 and doc["generated_tokens"] == 6
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"arrival_s": 0, "prompt_len": 10, "output_len": 2}\n{"arrival_s": 1}\n')
    assert main(["serve", "--arrival", f"trace:{bad}"]) == 2
    assert f"{bad}:2: missing prompt_len" in capsys.readouterr().err
    assert main(["serve", "--arrival", f"trace:{trace}", "--rates", "1,2"]) == 2
    assert "needs a poisson or gamma --arrival" in capsys.readouterr().err
