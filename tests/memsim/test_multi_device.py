"""A single-device workload on a multi-device system behaves as on one device."""

from __future__ import annotations

import pytest

import workloads
from hw_models import load_system
from memsim import simulate


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_tp1_on_dgx_matches_one_h100(fidelity: str) -> None:
    # dgx_h100 is 8 x the h100_sxm GPU plus NVLink; with tp=1 nothing crosses NVLink,
    # so the run must be the one-GPU run (a regression: weights were once read over NVLink).
    cfg = workloads.load_model("llama2_7b")
    graph = workloads.generate(cfg, batch=2, prompt_len=128, gen_len=4)
    one = simulate(load_system("h100_sxm"), graph, fidelity=fidelity).summary()
    dgx = simulate(load_system("dgx_h100"), graph, fidelity=fidelity).summary()
    assert dgx["bottleneck"] != "link:nvlink"
    assert dgx["tpot_s"] == pytest.approx(one["tpot_s"], rel=0.02)
    assert dgx["ttft_s"] == pytest.approx(one["ttft_s"], rel=0.02)
