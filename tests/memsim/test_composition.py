"""Composition of experts on the tiny system: switching models costs the copy of the
incoming model's stored weights from host DDR over PCIe, by hand."""

from __future__ import annotations

import pytest

import memsim
from tests.memsim.world import tiny
from workloads import composition_of_experts, from_hf_dict, prefill


def _expert(name: str, *, h: int, f: int, layers: int):  # type: ignore[no-untyped-def]
    cfg = from_hf_dict(
        {
            "model_type": "llama",
            "hidden_size": h,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "intermediate_size": f,
            "vocab_size": 500,
        },
        name=name,
    )
    return prefill(cfg, batch=1, prompt_len=16)


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_switch_time_and_bytes_by_hand(fidelity: str) -> None:
    a = _expert("a", h=128, f=256, layers=2)  # 456 320 params
    b = _expert("b", h=256, f=512, layers=1)  # 912 128 params
    g = composition_of_experts([a, b], schedule=[0, 0, 1, 0], names=["a", "b"])
    wa, wb = 2 * 456_320, 2 * 912_128  # bf16 bytes of each model
    # stored copies in host DDR, everything else (working weights too) in HBM
    r = memsim.simulate(tiny(), g, policy={"a/stored": "ddr", "b/stored": "ddr"}, fidelity=fidelity)
    ops = r.ops_frame()
    switch = ops[ops["phase"] == "switch"]
    # a switch streams the model over PCIe (10 GB/s, slower than DDR's 100 GB/s and
    # HBM's 1 TB/s), after DDR's 100 ns and the link's 1 us latency
    expected = [w / 10e9 + 100e-9 + 1e-6 for w in (wa, wb, wa)]
    assert (switch["end_s"] - switch["start_s"]).tolist() == pytest.approx(expected, rel=1e-9)
    # every byte read from DDR is a switch's, and crosses the link once
    ddr = next(t for t in r.tiers if t.tier == "ddr")
    assert (ddr.bytes_read, ddr.bytes_written) == (2 * wa + wb, 0)
    assert next(lk.bytes for lk in r.links if lk.link == "pcie") == 2 * wa + wb
