"""Strided elementwise kernels and K/V cache writes (issue 10, TTFT root cause).

The end-to-end stack (``validation/h200_e2e.py``) runs RoPE on q and k as strided views
of the fused QKV output and copies K and V into a preallocated cache. The component
microbenchmarks (``hw_models/presets/calibration/h200_sxm/layer_ops.csv``, each row one
CUDA graph) show these kernels stream at about a third of HBM bandwidth, and that an
unfused RMSNorm is 8 kernels. Here: the fit reproduces those rows, and the
``cuda_graphs`` profile charges the rope op exactly the kernels and bytes counted by
hand from that code.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workloads
from hw_models import load_system, load_system_dict
from hw_models.engine_profile import load_engine_profile
from memsim.calibration import fit, hardware_of, predict, read_measurements
from memsim.simulate import make_plan

LAYER_OPS = Path(__file__).parents[2] / "hw_models/presets/calibration/h200_sxm/layer_ops.csv"
KERNELS = Path(__file__).parents[2] / "validation/h200"
BW = 4.8e12  # H200 HBM3e peak (the preset's device memory)


@pytest.fixture(scope="module")
def calibrated() -> Any:
    return load_system("h200_sxm_calibrated")


def _p(system: Any) -> dict[str, float]:
    return dict(system.compute["tensor"].efficiency.values())


def test_layer_ops_in_sample_median_error_is_within_5_percent(calibrated) -> None:  # type: ignore[no-untyped-def]
    rows = read_measurements(LAYER_OPS)
    pred = predict(_p(calibrated), rows, hardware_of(calibrated))
    err = [abs(pred[r.line] / r.time_s - 1.0) for r in rows]
    assert {r.section for r in rows} == {"layer_ops"}
    assert float(np.median(err)) <= 0.05
    # the prefill-sized strided rows (what TTFT depends on) are each within 7 % (the
    # K/V copies run a little faster than RoPE, one bandwidth prices both)
    for r, e in zip(rows, err, strict=True):
        if r.name in ("rope_qk", "kv_write_prefill") and r.params["tokens"] >= 8192:
            assert e <= 0.07, (r.line, r.name, e)


def test_strided_bandwidth_is_the_slope_of_the_largest_rope_rows(calibrated) -> None:  # type: ignore[no-untyped-def]
    """RoPE on q, k of Llama-2-7B: 8192 tokens in 917.79 us, 32768 in 3570.02 us, moving
    10 x (q + k) = 1.342 and 5.369 GB: slope 4.027 GB / 2.652 ms = 1.518 TB/s."""
    slope = (5368709120 - 1342177280) / (3570.02e-6 - 917.79e-6)
    assert _p(calibrated)["strided.bandwidth_fraction"] == pytest.approx(slope / BW, rel=0.03)
    # and it is a fitted, measured parameter naming its file
    eff = calibrated.compute["tensor"].efficiency
    src = eff.params["strided.bandwidth_fraction"]
    assert src.provenance == "measured" and "layer_ops.csv" in src.source


@pytest.mark.parametrize(("model", "kv_heads"), [("llama2_7b", 32), ("llama3_8b", 8)])
def test_rope_op_charges_the_hand_counted_kernels_and_bytes(calibrated, model, kv_heads) -> None:  # type: ignore[no-untyped-def]
    """Prefill of 2048 tokens: per layer 10 RoPE kernels moving 10 x (q + k) plus the
    cos/sin tables (the op's bytes x 5), and 2 copies moving K and V once each way."""
    t, d = 2048, 128
    g = workloads.prefill(workloads.load_model(model), batch=1, prompt_len=t)
    plan = make_plan(calibrated, g)
    i = plan.cg.op_names.index("L1.rope")
    q, k, table = t * 32 * d * 2, t * kv_heads * d * 2, t * d * 2
    op_bytes = (q + k + 2 * table) + (q + k)  # reads q, k, cos, sin; writes q and K (cache)
    p = _p(calibrated)
    bw = BW * p["strided.bandwidth_fraction"]
    rope = 10 * p["strided.graph_s"] + 5.0 * op_bytes / bw
    kv = 2 * p["strided.graph_s"] + 4.0 * k / bw  # K and V, each read and written once
    assert float(plan.op_demand[:, i].max()) == pytest.approx(rope + kv, rel=1e-9)


def test_old_presets_without_strided_parameters_still_load(calibrated) -> None:  # type: ignore[no-untyped-def]
    """A preset calibrated before the strided class: its parameters copy the contiguous
    elementwise ones, marked assumed."""
    data = calibrated.model_dump(mode="json", exclude_none=True)
    params = data["compute"]["tensor"]["efficiency"]["params"]
    del params["strided.bandwidth_fraction"], params["strided.graph_s"]
    old = load_system_dict(data)
    p = old.compute["tensor"].efficiency.params
    assert p["strided.bandwidth_fraction"].value == p["elementwise.bandwidth_fraction"].value
    assert p["strided.graph_s"].value == p["kernel.graph_s"].value
    assert p["strided.graph_s"].provenance == "assumed"


def test_first_calibration_without_layer_ops_rows_assumes_them(calibrated) -> None:  # type: ignore[no-untyped-def]
    """layer_ops is optional: without its rows the strided parameters copy the others."""
    start = {k: v for k, v in _p(calibrated).items() if not k.startswith("strided.")}
    res = fit([], hardware_of(calibrated), start=start)
    assert res.values["strided.bandwidth_fraction"] == start["elementwise.bandwidth_fraction"]
    assert res.values["strided.graph_s"] == start["kernel.graph_s"]
    assert "layer_ops" not in res.sections


@pytest.mark.parametrize("model", ["llama2_7b", "llama3_8b"])
def test_profile_kernel_counts_match_the_profiled_layer(model) -> None:  # type: ignore[no-untyped-def]
    """The kernels of one layer of the end-to-end stack, counted with the PyTorch profiler
    on the H200 (validation/h200/layer_kernels_*.json): the profile's memory-bound
    kernels plus 4 GEMMs, 1 SDPA and the 3 memsets around it make the 40 of prefill."""
    counted = json.loads((KERNELS / f"layer_kernels_{model}.json").read_text())["prefill"]
    prof = load_engine_profile("cuda_graphs")
    per_layer = 2 * sum(g.kernels for g in prof.ops["norm"])  # residual add + RMSNorm, twice
    per_layer += sum(g.kernels for g in prof.ops["rope"]) + sum(
        g.kernels for g in prof.ops["elementwise"]
    )
    gemms, sdpa = 4, 1
    memsets = sum(v for n, v in counted["layer_names"].items() if n.startswith("Memset"))
    assert per_layer + gemms + sdpa + memsets == counted["layer_kernels"] == 40
    names = counted["layer_names"]
    assert sum(v for n, v in names.items() if "CatArrayBatchedCopy" in n) == 2  # RoPE cat, q and k
    assert sum(v for n, v in names.items() if "reduce_kernel" in n) == 2  # RMSNorm mean, twice


def test_layer_ops_csv_is_component_data_only() -> None:
    with LAYER_OPS.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["section"] for r in rows} == {"layer_ops"}
    assert all(json.loads(r["params_json"])["graph"] is True for r in rows)


def test_refit_on_layer_ops_keeps_other_sections_and_gemm_tables(calibrated) -> None:  # type: ignore[no-untyped-def]
    """The shipped preset's second step: rows of one section refit only its parameters;
    the rest (values, residual summary, GEMM shape tables) stay as they were."""
    from memsim.calibration import calibrate_system

    data = calibrated.model_dump(mode="json", exclude_none=True)
    eff = data["compute"]["tensor"]["efficiency"]
    table = {"dtype": "bf16", "n": 4096, "k": 4096, "m": [1.0, 32.0], "ratio": [1.5, 1.2]}
    eff["gemm_shapes"] = [{**table, "source": "test"}]
    base = load_system_dict(data)
    rows = read_measurements(LAYER_OPS)
    out, res = calibrate_system(base, rows, measurements="layer_ops.csv", date="2026-12-04")
    new = out.compute["tensor"].efficiency
    assert set(res.sections) == {"layer_ops"}
    assert [t.ratio for t in new.gemm_shapes] == [[1.5, 1.2]]
    old = _p(calibrated)
    for name, value in new.values().items():
        if not name.startswith("strided."):
            assert value == old[name], name
    assert new.fit is not None and set(new.fit.sections) >= {"gemm", "elementwise", "layer_ops"}
