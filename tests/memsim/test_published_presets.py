"""Calibrated presets fitted on published microbenchmark figures (issue 10, scope 5):
A100, H100, RTX 4090 and M1 Max. Each row of ``published.csv`` names its source; the
residuals, provenance and intervals are checked from the files, not from copied numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hw_models import SpecError, load_system
from memsim.calibration import calibrate_system, hardware_of, predict, read_measurements
from memsim.calibration.fit import loose_parameters, out_of_regime
from memsim.calibration.measurements import Measurement
from memsim.cli.main import main

ROOT = Path(__file__).parents[2]
BASES = ("a100_80gb_sxm", "h100_sxm", "rtx_4090", "m1_max_ssd")
DONOR = "h200_sxm_calibrated"


def _csv(base: str) -> Path:
    return ROOT / "hw_models/presets/calibration" / base / "published.csv"


def _eff(system: Any) -> Any:
    eff = next(u.efficiency for u in system.compute.values() if u.efficiency is not None)
    assert eff is not None
    return eff


@pytest.mark.parametrize("base", BASES)
def test_each_row_is_the_published_figure_it_cites(base: str) -> None:
    """time_s is derived from the figure as printed (TFLOP/s, GB/s), and names its source."""
    rows = read_measurements(_csv(base))
    assert rows
    for r in rows:
        assert "http" in r.source, (r.line, r.source)
        q = r.params
        if r.section == "gemm":
            flops = 2.0 * q.get("b", 1) * q["m"] * q["n"] * q["k"]
            assert r.time_s == pytest.approx(flops / (q["tflops"] * 1e12), rel=1e-6)
        else:
            assert r.section == "memory" and "copy" in r.name
            assert r.time_s == pytest.approx(2.0 * q["bytes"] / (q["gbps_rw"] * 1e9), rel=1e-6)


@pytest.mark.parametrize("base", BASES)
def test_preset_reproduces_its_rows_within_the_stated_residual(base: str) -> None:
    system = load_system(f"{base}_calibrated")
    assert system.calibrated
    eff = _eff(system)
    assert eff.fit is not None and eff.fit.measurements.endswith(f"{base}/published.csv")
    rows = read_measurements(_csv(base))
    pred = predict(eff.values(), rows, hardware_of(system))
    for section in {r.section for r in rows}:
        err = [abs(pred[r.line] / r.time_s - 1.0) for r in rows if r.section == section]
        stated = eff.fit.sections[section]
        assert stated["rows"] == len(err)
        # what the preset states is what its values give on its own rows ...
        assert float(np.median(err)) == pytest.approx(stated["median_abs_error"], abs=1e-9)
        # ... and that is a few per cent, as docs/calibration.md reports
        assert float(np.median(err)) <= 0.06, (base, section, np.median(err))


@pytest.mark.parametrize("base", BASES)
def test_every_parameter_has_provenance_and_fitted_ones_cite_the_sources(base: str) -> None:
    eff = _eff(load_system(f"{base}_calibrated"))
    kinds = {p.provenance for p in eff.params.values()}
    assert kinds <= {"published", "assumed"} and "published" in kinds  # nothing "measured" here
    for name, p in eff.params.items():
        assert p.source.strip(), name
        if p.provenance == "published":
            assert "published.csv" in p.source and "http" in p.source, name
            assert 0 < p.std < p.value, name  # a fitted value carries a finite uncertainty
        else:
            assert p.std == 0.0, name
            carried = DONOR in p.source
            assert carried or "CTA tile" in p.source or "as gemm.tile_m" in p.source, name


@pytest.mark.parametrize("base", BASES)
def test_shipped_preset_is_what_calibrate_writes(base: str) -> None:
    """Re-running the fit on the CSV gives the shipped values (no hand edits)."""
    shipped = _eff(load_system(f"{base}_calibrated"))
    system, result = calibrate_system(
        load_system(base),
        read_measurements(_csv(base)),
        measurements=f"hw_models/presets/calibration/{base}/published.csv",
        date="compiled 2026-12-04",
        name=f"{base}_calibrated",
        assume_from=load_system(DONOR),
    )
    again = _eff(system)
    for name, p in shipped.params.items():
        assert again.params[name].value == pytest.approx(p.value, rel=1e-6), name
        assert again.params[name].provenance == p.provenance, name
    assert set(result.unconstrained) == {
        n for n, p in shipped.params.items() if "not constrained" in p.source
    }


@pytest.mark.parametrize("base", BASES)
def test_run_reports_calibrated_and_intervals(
    base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["run", "--system", f"{base}_calibrated", "--model", "llama2_7b", "--batch", "1"]
    assert (
        main([*run, "--prompt", "256", "--gen", "4", "--fidelity", "analytic", "--format", "json"])
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["calibrated"] is True and res["engine"] == "cuda_graphs"
    for key in ("ttft_s", "tpot_s", "tokens_per_s"):
        lo, hi = res["intervals"][key]
        assert lo <= res[key] <= hi
    # the fitted GEMM efficiency moves the compute-bound prefill: a non-empty interval
    lo, hi = res["intervals"]["ttft_s"]
    assert hi > lo


def _gemm_row(line: int, m: int, n: int, k: int) -> Measurement:
    p = {"m": m, "n": n, "k": k, "dtype": "bf16"}
    return Measurement(line=line, section="gemm", name="g", time_s=1e-3, params=p)


def test_square_gemms_do_not_inform_the_operand_bandwidth() -> None:
    hw = hardware_of(load_system("h100_sxm"))
    values = _eff(load_system(DONOR)).values()
    square = [_gemm_row(2, 4096, 4096, 4096), _gemm_row(3, 1024, 1024, 1024)]
    assert out_of_regime("gemm", square, values, hw) == ["gemm.bandwidth_fraction"]
    # a decode-shaped GEMM (M = 1: 2 FLOP per weight byte) is memory-bound: it informs it
    assert out_of_regime("gemm", [*square, _gemm_row(4, 1, 4096, 4096)], values, hw) == []
    assert out_of_regime("memory", square, values, hw) == []


def test_loose_parameters_are_the_ones_the_rows_do_not_move() -> None:
    rng = np.random.default_rng(0)
    jac = np.zeros((6, 3))
    jac[:, 0] = 1.0  # every row moves parameter a one for one
    jac[:, 1] = 1e-4 * rng.standard_normal(6)  # b barely moves any row
    # c is flat (no row depends on it)
    resid = 0.01 * rng.standard_normal(6)
    assert loose_parameters(jac, resid, ["a", "b", "c"]) == ["b", "c"]
    # two rows fitted exactly still do not make an unmoved parameter known
    assert loose_parameters(jac[:2], np.zeros(2), ["a", "b", "c"]) == ["b", "c"]


def test_published_rows_need_a_source_and_a_known_timing(tmp_path: Path) -> None:
    head = "section,name,time_s,params_json,source\n"
    ok = '"{""m"": 1, ""n"": 8, ""k"": 8, ""dtype"": ""bf16""}"'
    p = tmp_path / "a.csv"
    p.write_text(head + f"gemm,g,1e-5,{ok},a paper\ngemm,g,1e-5,{ok},\n")
    with pytest.raises(SpecError, match="line 3"):
        read_measurements(p)
    bad = '"{""m"": 1, ""n"": 8, ""k"": 8, ""dtype"": ""bf16"", ""timing"": ""wall""}"'
    p.write_text(head + f"gemm,g,1e-5,{bad},a paper\n")
    rows = read_measurements(p)
    with pytest.raises(SpecError, match="timing"):
        predict(_eff(load_system(DONOR)).values(), rows, hardware_of(load_system("h100_sxm")))


def test_assume_from_needs_a_calibrated_system() -> None:
    rows = read_measurements(_csv("a100_80gb_sxm"))
    with pytest.raises(SpecError, match="not calibrated"):
        calibrate_system(
            load_system("a100_80gb_sxm"),
            rows,
            measurements="x.csv",
            date="d",
            assume_from=load_system("h100_sxm"),
        )
