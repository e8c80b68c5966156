"""Pipeline stages each have their own device memory (one HBM per stage)."""

from __future__ import annotations

import pytest

from hw_models import load_system
from memsim.invariants import check_capacity as check_result_capacity
from memsim.policies import CapacityError, Placement, check_capacity, make_policy
from memsim.simulate import simulate
from workloads import generate, load_model
from workloads.graph import Access, Graph, Op, Tensor

GB = 1e9


def _staged_graph(weights: dict[str, tuple[float, int]]) -> Graph:
    """One op per weight, on the weight's pipeline stage, reading it and x."""
    tensors = {n: Tensor(name=n, bytes=b, kind="weight", stage=s) for n, (b, s) in weights.items()}
    tensors["x"] = Tensor(name="x", bytes=1e6, kind="activation")
    ops = tuple(
        Op(
            name=f"op_{n}",
            kind="elementwise",
            flops=1e6,
            reads=(Access(tensor=n, bytes=b), Access(tensor="x", bytes=1e6)),
            writes=(Access(tensor="x", bytes=1e6),),
            stage=s,
        )
        for n, (b, s) in weights.items()
    )
    return Graph(tensors=tensors, ops=ops, meta={"batch": 1, "gen_len": 1, "tokens": 1})


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_llama70b_pp4_fits_in_hbm(fidelity: str) -> None:
    # Llama-2-70B: ~69e9 parameters x 2 B (bf16) ~ 138 GB of weights; pp=4 splits
    # the 80 layers 20 per stage: ~138 / 4 = 34.5 GB per H100 (80 GB), plus a
    # small KV cache (batch 1, 66 tokens) and activations. Nothing needs DDR.
    g = generate(load_model("llama2_70b"), batch=1, prompt_len=64, gen_len=2, pp=4)
    r = simulate("dgx_h100", g, fidelity=fidelity)
    tiers = {t.tier: t for t in r.tiers}
    assert tiers["ddr"].peak_bytes == 0.0
    assert 34.0 * GB < tiers["hbm"].peak_bytes < 36.0 * GB  # one device's share
    assert check_result_capacity(r) == []
    # reading 34.5 GB per stage at 3.35 TB/s is ~10 ms per stage per step; the
    # PCIe-bound spill took 3.48 s
    assert r.makespan_s < 0.5


def test_two_stages_each_fit_one_device_placed_in_hbm() -> None:
    # 50 GB per stage fits an 80 GB H100; 100 GB together would not.
    g = _staged_graph({"w0": (50 * GB, 0), "w1": (50 * GB, 1)})
    system = load_system("dgx_h100")
    placement = make_policy("fastest_fit").place(system, g)
    assert placement.home["w0"] == placement.home["w1"] == "hbm"
    check_capacity(system, g, placement)


def test_overfull_stage_is_caught() -> None:
    # stage 0 holds 50 + 40 = 90 GB > 80 GB (short by 10 GB) even though the two
    # stages' 100 GB would fit two devices' 160 GB
    system = load_system("dgx_h100")
    g = _staged_graph({"a": (50 * GB, 0), "b": (40 * GB, 0), "c": (10 * GB, 1)})
    placement = Placement(home=dict.fromkeys(g.tensors, "hbm"))
    with pytest.raises(CapacityError) as err:
        check_capacity(system, g, placement)
    assert err.value.tier == "hbm"
    assert err.value.shortfall_bytes == pytest.approx(10 * GB + 1e6, rel=1e-9)
    assert "stage 0" in str(err.value)
