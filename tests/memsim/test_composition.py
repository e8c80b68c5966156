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


def _llama2_7b_decode_shard():  # type: ignore[no-untyped-def]
    from hw_models import load_system
    from memsim.graph_fit import fit_graph
    from workloads import decode, load_model

    node = load_system("sn40l_8s")
    return node, fit_graph(node, decode(load_model("llama2_7b"), batch=1, context_len=256, tp=8))


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_150_experts_reuse_three_hbm_slots_lru_by_hand(fidelity: str) -> None:
    node, expert = _llama2_7b_decode_shard()
    names = [f"e{i}" for i in range(150)]
    schedule = [0, 1, 2, 0, 3, 1, 4, 5]
    g = composition_of_experts([expert] * 150, schedule=schedule, names=names, slots=3)
    # LRU by hand: e0, e1, e2 fill slots 0-2; e0 hits; e3 evicts e1 (slot 1), e1 evicts
    # e2 (slot 2), e4 evicts e0 (slot 0), e5 evicts e3 (slot 1)
    switches = [op.attrs for op in g.ops if op.phase == "switch"]
    assert [(a["expert"], a["slot"], a["evicts"]) for a in switches] == [
        ("e0", 0, None),
        ("e1", 1, None),
        ("e2", 2, None),
        ("e3", 1, "e1"),
        ("e1", 2, "e2"),
        ("e4", 0, "e0"),
        ("e5", 1, "e3"),
    ]
    w = expert.tensor_bytes("weight")  # one socket's shard of Llama-2-7B
    assert g.meta["switch_bytes"] == 7 * w
    # working weights: 3 slots of one expert, whatever the number of experts
    slot_bytes = sum(t.bytes for n, t in g.tensors.items() if n.startswith("slot"))
    assert slot_bytes == 3 * w
    r = memsim.simulate(node, g, policy={"*/stored": "ddr"}, fidelity=fidelity)
    hbm = next(t for t in r.tiers if t.tier == "hbm")
    ddr = next(t for t in r.tiers if t.tier == "ddr")
    assert hbm.peak_bytes <= hbm.capacity_bytes
    # DDR serves the switches and nothing else: expert bytes x switches, no weights run from it
    assert ddr.bytes_read == pytest.approx(7 * w, rel=1e-12)
    ops = r.ops_frame()
    switch = ops[ops["phase"] == "switch"]
    # each copy is DDR-bound: shard bytes / (200 GB/s x 0.85) + 400 ns latency + the
    # dataflow unit's per-kernel cost on 8 sockets (10 + 2 + 1 + 5 us)
    expected = w / (200e9 * 0.85) + 400e-9 + 18e-6
    assert (switch["end_s"] - switch["start_s"]).tolist() == pytest.approx([expected] * 7)


def test_without_slots_150_working_copies_spill_and_run_from_ddr() -> None:
    # the defect slots fix: one working copy per expert fills HBM and the rest of the
    # working weights are read from DDR during the experts' own steps
    node, expert = _llama2_7b_decode_shard()
    names = [f"e{i}" for i in range(150)]
    g = composition_of_experts([expert] * 150, schedule=[0, 1], names=names)
    r = memsim.simulate(node, g, policy={"*/stored": "ddr"}, fidelity="analytic")
    ddr = next(t for t in r.tiers if t.tier == "ddr")
    assert ddr.bytes_read > g.meta["switch_bytes"]
