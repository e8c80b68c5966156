"""Placement policies: every registered one, capacity errors, explicit mappings, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import memsim
from hw_models import SpecError
from memsim.policies import POLICIES, CapacityError, Placement, make_policy, policy_names
from tests.memsim.world import tiny, tiny_graph
from workloads import from_hf_dict, train_step

OPTIONS = {"explicit": {"mapping": {"weight": "ddr"}}, "from_file": None}


def _policy(name: str, tmp_path: Path) -> object:
    if name in ("from_file", "plan"):
        path = tmp_path / "plan.json"
        placement = {"w": "ddr->hbm", "x": "hbm"} | ({"y": "hbm"} if name == "plan" else {})
        path.write_text(json.dumps({"placement": placement, "prefetch_depth": 1}))
        return make_policy(f"{name}:{path}")
    return make_policy(name, **OPTIONS.get(name, {}) or {})


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_policy_places_every_tensor_within_capacity(name: str, tmp_path: Path) -> None:
    system, graph = tiny(), tiny_graph()
    if name.startswith("flash_ffn"):  # placed on real FFN graphs in test_flash_ffn.py
        with pytest.raises(SpecError, match="no flash tier"):
            _policy(name, tmp_path).place(system, graph)  # type: ignore[attr-defined]
        return
    placement = _policy(name, tmp_path).place(system, graph)  # type: ignore[attr-defined]
    assert isinstance(placement, Placement)
    assert set(placement.home) == set(graph.tensors)
    assert set(placement.home.values()) <= set(system.tiers)
    result = memsim.simulate(system, graph, policy=placement)
    from memsim.invariants import check_capacity

    assert check_capacity(result) == []


def test_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as err:
        make_policy("fastest")
    for name in policy_names():
        assert name in str(err.value)


def test_fastest_fit_spills_to_the_next_tier_and_errors_when_nothing_fits() -> None:
    # 20 GB of weight: HBM holds 16 GB, so the weight goes to DDR
    placement = make_policy("fastest_fit").place(tiny(), tiny_graph(weight_bytes=20e9))
    assert placement.home["w"] == "ddr" and placement.home["x"] == "hbm"
    with pytest.raises(CapacityError) as err:
        make_policy("fastest_fit").place(tiny(), tiny_graph(weight_bytes=300e9))
    # DDR (256 GB) is the roomiest: short by 300e9 - 256e9 = 44 GB
    assert err.value.tier == "ddr"
    assert err.value.shortfall_bytes == pytest.approx(44e9)


def test_stream_weights_reserves_the_prefetch_window() -> None:
    small = tiny(**{"tiers.hbm.capacity_bytes": 1.5e9})
    # depth 1 needs 2 x 1 GB of staging in a 1.5 GB HBM
    with pytest.raises(CapacityError, match="hbm"):
        make_policy("stream_weights", prefetch_depth=1).place(small, tiny_graph())
    p = make_policy("stream_weights", prefetch_depth=0).place(small, tiny_graph())
    assert p.staged == {"w": "hbm"} and p.home["w"] == "ddr"


def test_explicit_mapping_by_name_kind_and_glob() -> None:
    policy = make_policy("explicit", mapping={"x": "ddr", "weight": "ddr->hbm", "y*": "hbm"})
    p = policy.place(tiny(), tiny_graph())
    assert p.home == {"w": "ddr", "x": "ddr", "y": "hbm"}
    assert p.staged == {"w": "hbm"}
    with pytest.raises(SpecError, match="unknown tier 'dram'"):
        make_policy("explicit", mapping={"x": "dram"}).place(tiny(), tiny_graph())
    with pytest.raises(SpecError, match="matches no tensor"):
        make_policy("explicit", mapping={"nothing*": "hbm"}).place(tiny(), tiny_graph())


def test_placement_file_round_trips_and_bad_files_name_the_file(tmp_path: Path) -> None:
    placement = make_policy("stream_weights").place(tiny(), tiny_graph())
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(placement.to_dict()))
    again = make_policy("from_file", path=str(path)).place(tiny(), tiny_graph())
    assert dict(again.home) == dict(placement.home) and dict(again.staged) == dict(placement.staged)
    bad = tmp_path / "bad.yaml"
    bad.write_text("placement:\n  w: flash\n")
    with pytest.raises(SpecError) as err:
        make_policy("from_file", path=str(bad)).place(tiny(), tiny_graph())
    assert str(bad) in str(err.value) and "unknown tier 'flash'" in str(err.value)


def test_activation_swap_moves_the_saved_activations_of_a_training_step() -> None:
    """A 2-layer Llama (h 128, 4 heads of 32, FFN 256), 16 tokens in bf16, on the tiny
    system: every activation the backward reads goes to host DDR after the segment
    (one layer of one phase) that wrote it, and comes back for each later segment
    that reads it. Sizes: A = 16 x 128 x 2 = 4096 B, F = 16 x 256 x 2 = 8192 B, the
    cos/sin tables 16 x 32 x 2 = 1024 B each.

    Saved per layer (written back once each): the two residual sums, the two normed
    inputs, Q and K after RoPE, V, the attention output (8 A) and gate, up, act (3 F);
    besides, the last FFN output and the final norm's output (the final norm and the
    LM head's backward read them) and the cos/sin tables. Q and K before RoPE, the o
    projection's output and layer 0's FFN output are read only in the forward: they
    stay in HBM.

    Fetches: each saved tensor once for its layer's backward, plus: the embedding
    output also for layer 0's forward (its first norm reads it), layer 0's FFN sum
    for layer 1's forward, layer 1's FFN sum for the final norm and its backward,
    the last FFN output for the final norm and its backward, the final norm's output
    once, and cos/sin for every layer's forward and backward (4 each)."""
    cfg = from_hf_dict(
        {
            "model_type": "llama",
            "hidden_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 256,
            "vocab_size": 500,
        },
        name="tiny-llama",
    )
    graph = train_step(cfg, batch=1, seq_len=16)
    A, F, TABLE = 4096, 8192, 1024
    writeback = 2 * (8 * A + 3 * F) + A + A + 2 * TABLE
    fetch = 2 * (8 * A + 3 * F) + (A + A + 2 * A + 2 * A + A) + 4 * 2 * TABLE
    placement = make_policy("activation_swap").place(tiny(), graph)
    assert len(placement.staged) == 2 * 11 + 4  # 11 per layer; last FFN out, h, cos, sin
    assert set(placement.staged.values()) == {"hbm"}
    assert {placement.home[t] for t in placement.staged} == {"ddr"}
    for fidelity in ("analytic", "event"):
        r = memsim.simulate(tiny(), graph, policy=placement, fidelity=fidelity)
        moved = {"dma:writeback": 0.0, "dma:prefetch": 0.0}
        for t in r.transfers:
            moved[t.engine] += t.bytes
        assert moved == {"dma:writeback": writeback, "dma:prefetch": fetch}
        ddr = next(t for t in r.tiers if t.tier == "ddr")
        assert (ddr.bytes_written, ddr.bytes_read) == (writeback, fetch)
        assert next(lk.bytes for lk in r.links if lk.link == "pcie") == writeback + fetch
