"""``memsim explore``: rl, compare, outputs that replay, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("gymnasium")

from memsim.cli.main import main

pytestmark = pytest.mark.rl


def test_rl_writes_outputs_and_best_replays_with_dram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["explore", "rl", "--env", "memsim/MemCtrl-v0", "--algo", "random", "--budget", "6",
            "--seeds", "2", "--requests", "600", "--trace", "random", "--objective", "latency",
            "--out", str(out), "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    s = doc["explorers"]["random"]
    assert s["calls"] == 6 and len(s["ci95"]) == 2 and s["wall_s"] > 0
    for name in ("curves.csv", "curves.png", "summary.json", "best.json", "table.md", "runs.json"):
        assert (out / name).is_file(), name
    assert len((out / "curves.csv").read_text().splitlines()) == 1 + 2 * 6
    best = json.loads((out / "best.json").read_text())
    runs = json.loads((out / "runs.json").read_text())
    top = max(runs, key=lambda r: r["best_reward"])
    assert best == top["best_config"]
    # replay: memsim dram --config best.json runs those very controller settings
    assert main(["dram", "--device", "DDR4_3200", "--pattern", "random", "--requests", "300",
                 "--config", str(out / "best.json"), "--format", "json"]) == 0  # fmt: skip
    replay = json.loads(capsys.readouterr().out)
    assert {k: replay["config"][k] for k in best} == best


def test_compare_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explore", "compare", "--env", "memsim/Toy-v0", "--algos", "random,grid,ga",
            "--budget", "10", "--seeds", "3", "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["explorers"]) == {"random", "grid", "ga"}
    for s in doc["explorers"].values():
        assert set(s) >= {"best_mean", "ci95", "calls", "wall_s"}
        assert s["calls"] <= 10


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--budget", "0"], "--budget"),
        (["--objective", "power"], "--objective: applies to memsim/MemCtrl-v0"),
        (["--set", "nvec=[3, 3]", "--set", "colour=1"], "--set"),
    ],
)
def test_bad_input_exits_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["explore", "rl", "--env", "memsim/Toy-v0", "--algo", "random", "--budget", "5"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_learning_curves_plot() -> None:
    import numpy as np

    from plots.learning_curves import learning_curves

    ax = learning_curves(
        {"a": np.array([[0.1, 0.5, 0.5], [0.2, 0.2, 0.9]]), "b": [[0.3, 0.3, 0.3]]}
    )
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    assert set(lines) == {"curve:a", "curve:b"}
    assert list(lines["curve:a"].get_ydata()) == pytest.approx([0.15, 0.35, 0.7])
    assert list(lines["curve:a"].get_xdata()) == [1, 2, 3]
