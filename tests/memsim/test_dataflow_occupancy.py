"""Occupancy follows the dataflow model's on-chip intervals.

In ``dataflow`` execution a group with on-chip intervals holds their peak in
SRAM while it runs, and a transient tensor holds its home tier only over its
off-chip accesses (memsim/dataflow.py ``transient_spans``). Both fidelities
must give the same step functions when nothing contends.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memsim
from hw_models import load_system
from memsim.invariants import check_capacity
from tests.memsim.world import tiny_with_sram
from workloads import generate, load_model
from workloads.graph import Access, Graph, Op, Tensor

MB = 1_000_000
FIDELITIES = ["analytic", "event"]


def _graph(layers: list[list[tuple[str, str]]], sizes: dict[str, int]) -> Graph:
    """One op per ``(src, dst)`` pair, reading ``src`` and writing ``dst``; one
    segment (= one group under ``dataflow``) per layer."""
    tensors = {n: Tensor(name=n, bytes=b, kind="activation") for n, b in sizes.items()}
    ops = []
    for layer, pairs in enumerate(layers):
        for i, (src, dst) in enumerate(pairs):
            ops.append(
                Op(
                    name=f"l{layer}o{i}",
                    kind="elementwise",
                    flops=1e3,
                    reads=(Access(tensor=src, bytes=sizes[src]),),
                    writes=(Access(tensor=dst, bytes=sizes[dst]),),
                    layer=layer,
                    phase="decode",
                    step=1,
                )
            )
    # the layer split goes into meta: memsim.compiled's fingerprint (the plan layout
    # cache key) hashes accesses but not layers, so graphs that differ only in their
    # groups would share a cached layout
    meta = {"batch": 1, "gen_len": 1, "tokens": 1, "layers": repr(layers)}
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta)


def _steps(result: memsim.SimResult, tier: str) -> list[tuple[float, float]]:
    t, b = result.occupancy[tier]
    return [(round(float(x) * 1e9, 6), float(y)) for x, y in zip(t, b, strict=True)]


def _peak(result: memsim.SimResult, tier: str) -> float:
    return next(t.peak_bytes for t in result.tiers if t.tier == tier)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_two_groups_reusing_names_hold_their_interval_in_sram_not_hbm(fidelity: str) -> None:
    # layer l: x -> t, t -> x. t's two intervals (one per layer) are on chip; x never
    # is (first read has no producer; [b0 w, a1 r] crosses layers; b1's write is output).
    g = _graph([[("x", "t"), ("t", "x")]] * 2, {"x": MB, "t": MB})
    sys_ = tiny_with_sram(MB)
    kernel = memsim.simulate(sys_, g, execution="kernel", fidelity=fidelity)
    df = memsim.simulate(sys_, g, execution="dataflow", fidelity=fidelity)
    # kernel: 4 ops of (1 MB read + 1 MB written) / 1 TB/s + 500 ns = 2.5 us each;
    # x and t both live in HBM from op 0 to op 3
    assert _steps(kernel, "hbm") == [(0.0, 2 * MB), (10_000.0, 0.0)]
    assert _peak(kernel, "sram") == 0.0
    # dataflow: group l = layer l, 2 MB of HBM traffic (x) -> 2 us + 500 ns each.
    # HBM holds only x (its accesses span groups 0..1): 1 MB over [0, 5 us].
    assert _steps(df, "hbm") == [(0.0, MB), (5_000.0, 0.0)]
    # SRAM holds t's interval of each group while the group runs: group 0 frees
    # 1 MB at 2.5 us as group 1 allocates 1 MB (frees first, so the level stays).
    assert _steps(df, "sram") == [(0.0, MB), (2_500.0, MB), (5_000.0, 0.0)]
    assert _peak(df, "hbm") == MB
    assert _peak(df, "sram") == MB
    assert check_capacity(df) == []


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_a_group_holds_its_live_peak_not_the_sum_of_its_intervals(fidelity: str) -> None:
    # layer: x -> t -> u -> v -> x, all 1 MB. Intervals t [o0, o1], u [o1, o2],
    # v [o2, o3]: at most two live at once (2 MB), though the three sum to 3 MB.
    # With a 2 MB SRAM they all stay on chip, and the group reserves 2 MB: the
    # sum would exceed the capacity (the event engine's pool would refuse it).
    chain = [("x", "t"), ("t", "u"), ("u", "v"), ("v", "x")]
    g = _graph([chain] * 2, {"x": MB, "t": MB, "u": MB, "v": MB})
    df = memsim.simulate(tiny_with_sram(2 * MB), g, execution="dataflow", fidelity=fidelity)
    # per group: HBM carries x's read and write (2 MB / 1 TB/s = 2 us) + 500 ns
    assert _steps(df, "hbm") == [(0.0, MB), (5_000.0, 0.0)]
    assert _steps(df, "sram") == [(0.0, 2 * MB), (2_500.0, 2 * MB), (5_000.0, 0.0)]
    assert _peak(df, "sram") == 2 * MB
    assert check_capacity(df) == []


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_a_tensor_with_an_off_chip_interval_holds_hbm_only_for_that_span(fidelity: str) -> None:
    # layer 0: x -> t, t -> x   (t's interval on chip)
    # layer 1: x -> t           (t written here ...
    # layer 2: t -> x            ... and read here: crosses groups, stays in HBM)
    g = _graph([[("x", "t"), ("t", "x")], [("x", "t")], [("t", "x")]], {"x": MB, "t": MB})
    sys_ = tiny_with_sram(MB)
    df = memsim.simulate(sys_, g, execution="dataflow", fidelity=fidelity)
    # groups 0, 1, 2 each move 2 MB through HBM: 2.5 us each, ending 2.5/5/7.5 us.
    # HBM: x over groups 0..2; t only over its off-chip accesses, groups 1..2.
    assert _steps(df, "hbm") == [(0.0, MB), (2_500.0, 2 * MB), (7_500.0, 0.0)]
    # SRAM: t's first interval during group 0
    assert _steps(df, "sram") == [(0.0, MB), (2_500.0, 0.0)]
    # kernel execution: both tensors in HBM from the first op to the last
    kernel = memsim.simulate(sys_, g, execution="kernel", fidelity=fidelity)
    assert _peak(kernel, "hbm") == 2 * MB
    assert _steps(kernel, "hbm")[0] == (0.0, 2 * MB)


@pytest.fixture(scope="module")
def llama_small() -> Graph:
    return generate(load_model("llama2_7b"), batch=1, prompt_len=64, gen_len=2)


def test_sn40l_llama2_7b_dataflow_shows_sram_and_relieves_hbm(llama_small: Graph) -> None:
    sn40l = load_system("sn40l")
    cap = sn40l.tiers["sram"].capacity_bytes
    kernel = memsim.simulate(sn40l, llama_small, execution="kernel", fidelity="analytic")
    runs = {
        f: memsim.simulate(sn40l, llama_small, execution="dataflow", fidelity=f) for f in FIDELITIES
    }
    df = runs["analytic"]
    assert 0 < _peak(df, "sram") <= cap
    assert _peak(df, "hbm") < _peak(kernel, "hbm")
    assert check_capacity(df) == []
    # the weights (persistent, homed in HBM) are the floor under both
    weights = sum(t.bytes for t in llama_small.tensors.values() if t.kind == "weight")
    assert _peak(df, "hbm") >= weights * (1 - 1e-12) or _peak(df, "ddr") > 0
    # one lane, no DMA: both fidelities give the same occupancy
    ev = runs["event"]
    assert check_capacity(ev) == []
    for tier in df.occupancy:
        ta, ba = df.occupancy[tier]
        te, be = ev.occupancy[tier]
        np.testing.assert_allclose(te, ta, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(be, ba, rtol=1e-9)


_NAMES = ["x", "t", "u", "v"]


@settings(max_examples=30, deadline=None)
@given(
    layers=st.lists(
        st.lists(
            st.tuples(st.sampled_from(_NAMES), st.sampled_from(_NAMES)).filter(
                lambda p: p[0] != p[1]
            ),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=4,
    ),
    sizes=st.lists(
        st.integers(min_value=1, max_value=4096).map(lambda k: 64 * k), min_size=4, max_size=4
    ),
    capacity=st.integers(min_value=64, max_value=64 * 4096 * 4),
    weight=st.integers(min_value=0, max_value=3),
)
def test_occupancy_stays_within_zero_and_capacity_and_returns_to_baseline(
    layers: list[list[tuple[str, str]]], sizes: list[int], capacity: int, weight: int
) -> None:
    size = dict(zip(_NAMES, sizes, strict=True))
    g = _graph(layers, size)
    if weight:  # a persistent weight read by the first op: the baseline in HBM
        tensors = dict(g.tensors)
        tensors["w"] = Tensor(name="w", bytes=weight * MB, kind="weight")
        op0 = g.ops[0]
        ops = (
            Op(
                name=op0.name,
                kind=op0.kind,
                flops=op0.flops,
                reads=(*op0.reads, Access(tensor="w", bytes=weight * MB)),
                writes=op0.writes,
                layer=op0.layer,
                phase=op0.phase,
                step=op0.step,
            ),
            *g.ops[1:],
        )
        g = Graph(tensors=tensors, ops=ops, meta=g.meta)
    sys_ = tiny_with_sram(capacity)
    finals: dict[str, list[float]] = {}
    for fidelity in FIDELITIES:
        r = memsim.simulate(sys_, g, execution="dataflow", fidelity=fidelity)
        assert check_capacity(r) == []
        for tier, (_t, level) in r.occupancy.items():
            cap = sys_.tiers[tier].capacity_bytes
            assert level.min() >= 0.0
            assert level.max() <= cap * (1 + 1e-9)
            finals.setdefault(tier, []).append(float(level[-1]))
    # at the end only persistent data is left: the weight, in one tier, the same in
    # both fidelities
    for levels in finals.values():
        assert levels[0] == pytest.approx(levels[1])
    ends = sorted(levels[0] for levels in finals.values())
    assert ends[-1] == pytest.approx(weight * MB)
    assert sum(ends[:-1]) == 0.0


def test_graphs_differing_only_in_grouping_do_not_share_a_cached_layout() -> None:
    # Regression: the compiled-graph fingerprint (the plan-layout cache key) once ignored
    # fuse groups, so a graph that only regrouped the same ops reused the other's layout.
    from dataclasses import replace

    from memsim.compiled import compile_graph
    from workloads.graph import Access, Op, Tensor

    x = Tensor(name="x", bytes=1e6, kind="activation")
    write, read = Access(tensor="x", bytes=1e6), Access(tensor="x", bytes=1e6)
    ops = (
        Op(name="a", kind="elementwise", flops=1e6, writes=(write,), fuse_group="g"),
        Op(name="b", kind="elementwise", flops=1e6, reads=(read,), fuse_group="g"),
    )
    fused = Graph(tensors={"x": x}, ops=ops)
    split = Graph(tensors={"x": x}, ops=(ops[0], replace(ops[1], fuse_group="h")))
    assert compile_graph(fused).fingerprint != compile_graph(split).fingerprint
