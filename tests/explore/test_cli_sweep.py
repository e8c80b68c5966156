"""`memsim sweep`: run, show (JSON shape), export, sensitivity, plot; user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from explore import DesignSpace, Store, sweep
from explore.sensitivity import sobol
from memsim.cli.main import main
from tests.explore.spaces import SMALLEST_YAML, synthetic


def _write(tmp_path: Path, doc: dict[str, object], name: str = "space.yaml") -> Path:
    f = tmp_path / name
    f.write_text(yaml.safe_dump(doc))
    return f


def test_smallest_space_runs_from_the_cli_and_show_prints_every_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "smallest.yaml"
    f.write_text(SMALLEST_YAML)
    db = tmp_path / "r.db"
    assert main(["sweep", str(f), "--workers", "1", "--store", str(db)]) == 0
    capsys.readouterr()
    assert main(["sweep", "show", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["points"]) == 9
    point = doc["points"][0]
    assert set(point) >= {"id", "parameters", "objectives"}
    assert set(point["objectives"]) == {"tpot_s", "energy_j"}
    ids = {p["id"] for p in doc["points"]}
    assert doc["pareto"] and set(doc["pareto"]) <= ids
    # the best point of both objectives: the most bandwidth at batch 1 (fewest bytes per step)
    best = {p["id"]: p for p in doc["points"]}[doc["pareto"][0]]
    assert best["parameters"] == {
        "tiers.hbm.read_bandwidth_bytes_per_s": 5.0e12,
        "workload.batch": 1,
    }
    assert main(["sweep", "show", str(db)]) == 0
    assert "Pareto front" in capsys.readouterr().out


def test_bad_space_is_one_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = synthetic()
    doc["parameters"]["x"] = {"low": 5, "high": 1}
    assert main(["sweep", str(_write(tmp_path, doc)), "--store", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "parameters.x: empty range" in err and "Traceback" not in err
    assert not (tmp_path / "x.db").exists()
    assert main(["sweep", "show", str(tmp_path / "missing.db")]) == 2
    assert "no such store" in capsys.readouterr().err
    (tmp_path / "text.db").write_text("not a database, not at all" * 100)
    assert main(["sweep", "show", str(tmp_path / "text.db")]) == 2
    assert "not a memsim sweep store" in capsys.readouterr().err
    assert main(["sweep", str(_write(tmp_path, synthetic())), "--sampler", "lhs"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_a_store_of_another_space_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    assert main(["sweep", str(_write(tmp_path, synthetic())), "--store", db]) == 0
    other = synthetic()
    other["formulas"]["f2"] = "y"
    assert main(["sweep", str(_write(tmp_path, other, "other.yaml")), "--store", db]) == 2
    assert "holds a sweep of another space" in capsys.readouterr().err


def test_export_csv_and_parquet_hold_the_same_table(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sweep(DesignSpace.from_dict(synthetic()), store=db, workers=1)
    assert main(["sweep", "export", str(db), str(tmp_path / "t.csv")]) == 0
    assert main(["sweep", "export", str(db), str(tmp_path / "t.parquet")]) == 0
    csv = pd.read_csv(tmp_path / "t.csv")
    pq = pd.read_parquet(tmp_path / "t.parquet")
    assert len(csv) == len(pq) == 15
    assert list(csv.columns[:5]) == ["id", "index", "status", "x", "y"]
    assert csv["pareto"].sum() == 4
    pd.testing.assert_series_equal(csv["f2"], pq["f2"])


def test_sobol_indices_of_an_additive_function(tmp_path: Path) -> None:
    # f = a + 2 b with a, b uniform on [0, 1]: Var(a) = 1/12, Var(2b) = 4/12, so
    # S1 = ST = 0.2 for a and 0.8 for b (no interaction)
    space = DesignSpace.from_dict(
        {
            "evaluator": "formula",
            "parameters": {"a": {"low": 0.0, "high": 1.0}, "b": {"low": 0.0, "high": 1.0}},
            "formulas": {"f": "a + 2 * b"},
            "objectives": {"f": "min"},
        }
    )
    db = tmp_path / "s.db"
    sweep(space, store=db, sampler="sobol", budget=1024 * 4, workers=1, chunk=64)
    with Store(db) as st:
        table = sobol(st).set_index("parameter")
    assert table.loc["a", "S1"] == pytest.approx(0.2, abs=0.03)
    assert table.loc["b", "S1"] == pytest.approx(0.8, abs=0.03)
    assert table.loc["b", "ST"] == pytest.approx(0.8, abs=0.03)


def test_oat_sensitivity_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, synthetic())
    db = str(tmp_path / "o.db")
    assert main(["sweep", str(f), "--sampler", "oat", "--store", db, "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["sweep", "sensitivity", db, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    swing = {(r["parameter"], r["objective"]): r["swing"] for r in rows}
    # centre x = 2, y = 1; x over 0..4: f1 0..4, f2 = (x-3)^2 + 1 over {10, 5, 2, 1, 2}
    assert swing[("x", "f1")] == 4 and swing[("x", "f2")] == 9
    assert swing[("y", "f1")] == 0 and swing[("y", "f2")] == 2
    assert main(["sweep", "plot", db, "--out", str(tmp_path / "fig")]) == 0
    made = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert {"pareto.png", "parallel.png", "sensitivity_f1.png", "curves_x.png"} <= set(made)
