"""MoE routing loads and composition of experts, against hand-derived numbers."""

from __future__ import annotations

import pytest

from hw_models.errors import SpecError
from workloads import composition_of_experts, from_hf_dict, prefill
from workloads.moe import expert_loads

T = 16  # prompt tokens per request


def _llama(name: str, *, h: int, f: int, layers: int):  # type: ignore[no-untyped-def]
    return from_hf_dict(
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


def _params(*, h: int, f: int, layers: int, vocab: int = 500) -> int:
    # per layer: q, k, v, o (4 h^2), gate, up, down (3 h f), two RMSNorm gains (2 h);
    # untied embedding and LM head (2 V h) and the final norm (h)
    return layers * (4 * h * h + 3 * h * f + 2 * h) + 2 * vocab * h + h


def _gemm_flops(*, h: int, f: int, layers: int, vocab: int = 500) -> int:
    # every prompt token through the layers' GEMMs, the LM head for the last token only
    return 2 * T * layers * (4 * h * h + 3 * h * f) + 2 * h * vocab


A = {"h": 128, "f": 256, "layers": 2}
B = {"h": 256, "f": 512, "layers": 1}


@pytest.fixture(scope="module")
def experts():  # type: ignore[no-untyped-def]
    return [prefill(_llama(n, **d), batch=1, prompt_len=T) for n, d in (("a", A), ("b", B))]


def test_expert_params_and_flops_by_hand(experts) -> None:  # type: ignore[no-untyped-def]
    assert (_params(**A), _params(**B)) == (456_320, 912_128)
    for g, dims in zip(experts, (A, B), strict=True):
        assert g.tensor_bytes("weight") == 2 * _params(**dims)  # bf16
        assert sum(op.flops for op in g.ops if op.kind == "gemm") == _gemm_flops(**dims)


def test_composition_switches_copy_the_incoming_model(experts) -> None:  # type: ignore[no-untyped-def]
    g = composition_of_experts(experts, schedule=[0, 0, 1, 0], names=["a", "b"])
    wa, wb = 2 * _params(**A), 2 * _params(**B)
    # a stored copy of each whole model beside its working weights
    assert g.tensors["a/stored"].bytes == wa and g.tensors["b/stored"].bytes == wb
    assert g.tensor_bytes("weight") == 2 * (wa + wb)
    # the model changes before requests 0 (a), 2 (b) and 3 (a); request 1 reuses a
    switches = [(i, op) for i, op in enumerate(g.ops) if op.phase == "switch"]
    assert g.meta["switches"] == 3
    assert [(op.attrs["request"], op.attrs["expert"]) for _, op in switches] == [
        (0, "a"),
        (2, "b"),
        (3, "a"),
    ]
    assert [(op.bytes_read, op.bytes_written) for _, op in switches] == [
        (wa, wa),
        (wb, wb),
        (wa, wa),
    ]
    assert all(op.flops == 0 for _, op in switches)
    # compute: three requests of a and one of b, nothing else
    gemm = sum(op.flops for op in g.ops if op.kind == "gemm")
    assert gemm == 3 * _gemm_flops(**A) + _gemm_flops(**B)
    assert g.total_flops == 3 * experts[0].total_flops + experts[1].total_flops
    # each request starts after its switch (or the previous request)
    for i, _ in switches:
        assert g.dependencies(i + 1) == (i,)
    assert all(op.attrs["expert"] == op.name.split("/")[0] for op in g.ops)


def test_composition_rejects_bad_schedules(experts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match=r"schedule\[1\]"):
        composition_of_experts(experts, schedule=[0, 2])
    with pytest.raises(SpecError, match="names"):
        composition_of_experts(experts, schedule=[0], names=["x", "x"])
    with pytest.raises(SpecError, match="experts"):
        composition_of_experts([], schedule=[])


def test_expected_expert_loads_by_hand() -> None:
    # top-1 of 4 tokens over shares 1/2, 1/4, 1/4: tokens 2, 1, 1; an expert's weights
    # are read unless no token picks it: 1 - (1 - p)^4
    tokens, hit = expert_loads([0.5, 0.25, 0.25], tokens=4, k=1)
    assert tokens == [2.0, 1.0, 1.0]
    assert hit == pytest.approx([1 - 0.5**4, 1 - 0.75**4, 1 - 0.75**4])
    # top-2: each token picks expert 0 surely (2 x 1/2), the others with 1/2
    tokens, hit = expert_loads([0.5, 0.25, 0.25], tokens=4, k=2)
    assert tokens == [4.0, 2.0, 2.0]
    assert hit == pytest.approx([1.0, 1 - 0.5**4, 1 - 0.5**4])


def test_sampled_expert_loads_conserve_routing_slots() -> None:
    tokens, hit = expert_loads([0.4, 0.3, 0.2, 0.1], tokens=50, k=2, seed=7)
    assert sum(tokens) == 50 * 2  # every token takes k slots
    assert max(tokens) <= 50  # k distinct experts per token
    assert hit == [1.0 if t > 0 else 0.0 for t in tokens]
    assert expert_loads([0.4, 0.3, 0.2, 0.1], tokens=50, k=2, seed=7)[0] == tokens
    with pytest.raises(SpecError, match="popularity"):
        expert_loads([1.0, 0.0], tokens=3, k=2, seed=1)


def test_one_slot_holds_the_largest_expert_weight_by_weight(experts) -> None:  # type: ignore[no-untyped-def]
    a, b = experts
    g = composition_of_experts(experts, schedule=[0, 1, 1, 0], names=["a", "b"], slots=1)
    # a slot tensor per weight name, as large as the larger expert's weight of that name
    for name, t in a.tensors.items():
        if t.kind == "weight":
            other = b.tensors.get(name)
            want = max(t.bytes, other.bytes if other is not None else 0.0)
            assert g.tensors[f"slot0/{name}"].bytes == want
    # one slot: every change of expert is a copy into slot 0; the repeat of b is a hit
    switches = [op.attrs for op in g.ops if op.phase == "switch"]
    assert [(s["expert"], s["slot"], s["evicts"]) for s in switches] == [
        ("a", 0, None),
        ("b", 0, "a"),
        ("a", 0, "b"),
    ]
    wa, wb = 2 * _params(**A), 2 * _params(**B)
    assert g.meta["switch_bytes"] == 2 * wa + wb
    # the experts' ops read their weights from the slot, nothing else from a working copy
    reads = {a.tensor for op in g.ops if op.phase != "switch" for a in op.reads}
    assert not any(
        r.startswith(("a/", "b/")) and "stored" not in r and g.tensors[r].kind == "weight"
        for r in reads
    )


@pytest.mark.parametrize("slots", [0, -1, 1.5, True])
def test_composition_rejects_bad_slot_counts(experts, slots) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="slots"):
        composition_of_experts(experts, schedule=[0], slots=slots)
