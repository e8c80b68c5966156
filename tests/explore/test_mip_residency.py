"""Residency knapsack: the hand-computed optimum on a tiny instance, replayed in the engine."""

from __future__ import annotations

import pytest

import memsim
from explore.mip.residency import plan_residency
from tests.memsim.world import tiny
from workloads.graph import Access, Graph, Op, Tensor

GB = 1e9


def expert_graph(sizes_gb: list[float], reads: list[int]) -> Graph:
    """Expert ``e`` (``sizes_gb[e]`` GB) is read by ``reads[e]`` memory-bound ops."""
    tensors = {"x": Tensor(name="x", bytes=1e3, kind="activation")}
    ops = []
    for e, (size, n) in enumerate(zip(sizes_gb, reads, strict=True)):
        tensors[f"e{e}"] = Tensor(name=f"e{e}", bytes=size * GB, kind="weight", layer=0)
        for k in range(n):
            ops.append(
                Op(
                    name=f"e{e}.{k}",
                    kind="elementwise",
                    flops=1e3,
                    reads=(Access(tensor=f"e{e}", bytes=size * GB), Access(tensor="x", bytes=1e3)),
                    writes=(Access(tensor="x", bytes=1e3),),
                    layer=0,
                    phase="decode",
                    step=k,
                )
            )
    return Graph(tensors=tensors, ops=tuple(ops), meta={"tokens": 1})


def test_hand_computed_knapsack_optimum_and_replay() -> None:
    # tiny: HBM 1 TB/s, DDR read in place over a 10 GB/s PCIe link. Keeping expert e
    # resident saves reads_e x size_e x (1/10e9 - 1/1e12) s (latencies ~1 us aside):
    # values in GB-reads: e0 1x4 = 4, e1 2x1 = 2, e2 3x2 = 6, e3 4x1 = 4. With 5 GB of
    # room the subsets that fit: {e0,e2} 4 GB -> 10, {e0,e3} -> 8, {e1,e2} -> 8,
    # {e0,e1} -> 6, singles <= 6: the optimum keeps e0 and e2.
    system = tiny(**{"tiers.hbm.capacity_bytes": 5 * GB + 1e4})
    graph = expert_graph([1, 2, 3, 4], [4, 1, 2, 1])
    plan = plan_residency(system, graph, select="e*")
    assert set(plan.resident) == {"e0", "e2"}
    per_gb = 1 / 10e9 - 1 / 1e12
    assert plan.value_s["e2"] == pytest.approx(6 * GB * per_gb, rel=1e-3)
    replay = memsim.simulate(system, graph, policy=plan.placement).makespan_s
    assert replay == pytest.approx(plan.predicted_s, rel=1e-6)
    # all offloaded: 4 + 2 + 6 + 4 = 16 GB-reads over PCIe = 1.6 s; the plan saves 10
    assert plan.all_offloaded_s == pytest.approx(1.6, rel=1e-3)
    assert replay == pytest.approx(1.6 - 10 * GB * per_gb, rel=1e-3)
