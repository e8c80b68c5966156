"""Compute energy per FLOP by dtype: power-limited scaling unless measured."""

from __future__ import annotations

import pytest

import workloads
from hw_models import load_system
from memsim import simulate


def test_fp8_costs_half_the_energy_per_flop_of_bf16_on_h100() -> None:
    # H100 SXM: 1978.9 TFLOP/s fp8 vs 989.4 bf16 at the same board power, so an fp8 FLOP
    # costs 989.4/1978.9 of a bf16 FLOP when no measured figure is given.
    unit = load_system("h100_sxm").compute["tensor"]
    assert unit.reference_dtype() == "bf16"
    ref = unit.energy_j_per_flop
    assert unit.energy_per_flop("bf16") == pytest.approx(ref)
    assert unit.energy_per_flop("fp8") == pytest.approx(ref * 989.4 / 1978.9)
    assert unit.energy_per_flop("fp32") == pytest.approx(ref * 989.4 / 66.9)


def test_measured_figure_wins_and_is_used_by_the_simulator() -> None:
    system = load_system(
        "h100_sxm", overrides={"compute.tensor.energy_j_per_flop_by_dtype": {"fp8": 1e-12}}
    )
    assert system.compute["tensor"].energy_per_flop("fp8") == 1e-12
    cfg = workloads.load_model("llama2_7b")
    graph = workloads.generate(cfg, batch=8, prompt_len=512, gen_len=1, dtype="fp8")
    res = simulate(system, graph, fidelity="analytic")
    energy = res.energy_frame()
    compute_j = energy[energy["component"] == "compute:tensor"]["energy_j"].sum()
    # every FLOP of this graph runs in fp8 (the builder's compute dtype), at 1 pJ each
    fp8_flops = sum(op.flops for op in graph.ops if op.dtype == "fp8")
    other = sum(
        op.flops * system.compute["tensor"].energy_per_flop(op.dtype)
        for op in graph.ops
        if op.dtype != "fp8"
    )
    assert fp8_flops > 0
    assert compute_j == pytest.approx(fp8_flops * 1e-12 + other, rel=1e-9)
