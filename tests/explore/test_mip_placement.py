"""Placement MIP: equals brute force on a tiny instance, replays within 5 %, beats baselines."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import memsim
from explore.mip import plan_placement
from memsim.policies import CapacityError, Placement, check_capacity
from tests.memsim.world import tiny
from workloads.graph import Access, GemmShape, Graph, Op, Tensor

GB = 1e9


def layered_graph(*, layers: int = 3, steps: int = 2) -> Graph:
    """Per layer: a 1 GB weight read by a 4.4 TFLOP GEMM (44 ms at 100 TFLOP/s) and a
    0.5 GB KV tensor read by an attention op, for ``steps`` decode steps."""
    tensors = {"x": Tensor(name="x", bytes=1e6, kind="activation")}
    for li in range(layers):
        tensors[f"w{li}"] = Tensor(name=f"w{li}", bytes=GB, kind="weight", layer=li)
        tensors[f"kv{li}"] = Tensor(name=f"kv{li}", bytes=0.5 * GB, kind="kv", layer=li)
    ops = []
    for s in range(steps):
        for li in range(layers):
            ops.append(
                Op(
                    name=f"L{li}.mm",
                    kind="gemm",
                    flops=2 * 16384 * 16384 * 8192,
                    gemm=GemmShape(m=16384, n=16384, k=8192),
                    reads=(Access(tensor=f"w{li}", bytes=GB), Access(tensor="x", bytes=1e6)),
                    writes=(Access(tensor="x", bytes=1e6),),
                    layer=li,
                    phase="decode",
                    step=s,
                )
            )
            ops.append(
                Op(
                    name=f"L{li}.attn",
                    kind="attention",
                    flops=1e9,
                    reads=(Access(tensor=f"kv{li}", bytes=0.5 * GB), Access(tensor="x", bytes=1e6)),
                    writes=(Access(tensor="x", bytes=1e6),),
                    layer=li,
                    phase="decode",
                    step=s,
                )
            )
    return Graph(tensors=tensors, ops=tuple(ops), meta={"tokens": steps})


def _brute_force(system, graph: Graph) -> tuple[float, Placement]:
    """Every combination of options, simulated by the event engine; the fastest that fits."""
    weights = [n for n, t in graph.tensors.items() if t.kind == "weight"]
    kvs = [n for n, t in graph.tensors.items() if t.kind == "kv"]
    w_opts = [("hbm", None), ("ddr", None), ("ddr", "hbm")]
    kv_opts = [("hbm", None), ("ddr", None)]
    best: tuple[float, Placement] | None = None
    for wc in itertools.product(w_opts, repeat=len(weights)):
        for kc in itertools.product(kv_opts, repeat=len(kvs)):
            home = {"x": "hbm"}
            staged = {}
            for n, (h, st) in zip(weights + kvs, wc + kc, strict=True):
                home[n] = h
                if st:
                    staged[n] = st
            pl = Placement(home=home, staged=staged, prefetch_depth=1, policy="brute")
            try:
                check_capacity(system, graph, pl)
            except CapacityError:
                continue
            t = memsim.simulate(system, graph, policy=pl).makespan_s
            if best is None or t < best[0]:
                best = (t, pl)
    assert best is not None
    return best


def test_mip_equals_brute_force_on_a_tiny_instance() -> None:
    # HBM 2.6 GB holds two of the three 1 GB weights, or one weight and three KV tensors
    system = tiny(**{"tiers.hbm.capacity_bytes": 2.6e9})
    graph = layered_graph()
    best_t, _best = _brute_force(system, graph)
    plan = plan_placement(system, graph, gap=0.0)
    replay = memsim.simulate(system, graph, policy=plan.placement).makespan_s
    assert plan.status == "optimal"
    assert replay == pytest.approx(best_t, rel=1e-3)
    assert plan.predicted_s == pytest.approx(replay, rel=0.01)


def test_infeasible_names_the_tier_and_the_shortfall() -> None:
    system = tiny(**{"tiers.ddr.capacity_bytes": 1e9, "tiers.hbm.capacity_bytes": 1e9})
    with pytest.raises(CapacityError) as err:
        plan_placement(system, layered_graph())
    # 3 x 1 GB + 3 x 0.5 GB + 1 MB against 2 GB: short by 2.501 GB
    assert err.value.shortfall_bytes == pytest.approx(2.501e9)
    assert err.value.tier in ("hbm", "ddr")
    assert "infeasible" in str(err.value)


def test_plan_file_replays_the_same_placement(tmp_path: Path) -> None:
    system = tiny(**{"tiers.hbm.capacity_bytes": 2.6e9})
    graph = layered_graph(layers=2, steps=1)
    plan = plan_placement(system, graph)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_dict()))
    direct = memsim.simulate(system, graph, policy=plan.placement)
    replay = memsim.simulate(system, graph, policy=f"plan:{path}")
    assert replay.makespan_s == direct.makespan_s


@pytest.mark.slow
def test_opt30b_on_t4_flexgen_beats_every_single_policy_baseline() -> None:
    import workloads

    graph = workloads.generate(workloads.load_model("opt_30b"), batch=4, prompt_len=64, gen_len=2)
    plan = plan_placement("t4_flexgen", graph, time_limit_s=8)
    replay = memsim.simulate("t4_flexgen", graph, policy=plan.placement).makespan_s
    assert replay == pytest.approx(plan.predicted_s, rel=0.05)
    for policy in ("fastest_fit", "stream_weights", "kv_offload"):
        assert replay < memsim.simulate("t4_flexgen", graph, policy=policy).makespan_s
