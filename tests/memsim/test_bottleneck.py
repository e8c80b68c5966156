"""`bottleneck` names the resource that limits the run, DMA streams included."""

from __future__ import annotations

import pytest

import workloads
from hw_models import load_system
from memsim import simulate

CFG = workloads.load_model("llama2_7b")


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_streamed_weights_are_bound_by_the_link(fidelity: str) -> None:
    # T4 + PCIe 3.0 x16: 13.5 GB of fp16 weights per token at ~13.8 GB/s take ~1 s, while the
    # GPU's 320 GB/s GDDR6 reads them in ~42 ms: the run waits on PCIe, not on GDDR.
    graph = workloads.generate(CFG, batch=1, prompt_len=32, gen_len=2, dtype="fp16")
    res = simulate(load_system("t4_flexgen"), graph, policy="stream_weights", fidelity=fidelity)
    assert res.summary()["bottleneck"] == "link:pcie"


@pytest.mark.parametrize(
    ("prompt", "gen", "expected"),
    [(2048, 1, "compute"), (16, 32, "tier:hbm")],  # long prefill vs. many decode steps
)
def test_prefill_is_compute_bound_and_decode_memory_bound(
    prompt: int, gen: int, expected: str
) -> None:
    graph = workloads.generate(CFG, batch=1, prompt_len=prompt, gen_len=gen)
    res = simulate(load_system("h100_sxm"), graph, fidelity="analytic")
    assert res.summary()["bottleneck"] == expected
