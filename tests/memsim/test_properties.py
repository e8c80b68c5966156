"""Physics as hypothesis properties over random small systems and graphs."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memsim
from hw_models import System
from memsim.engine.channel import Fabric
from memsim.invariants import check_capacity, check_conservation, roofline_lower_bound
from memsim.policies import Placement
from tests.memsim.pipeline_world import pipeline_graph, tiny_pp
from tests.memsim.world import tiny
from workloads.graph import Access, GemmShape, Graph, Op, Tensor

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    layers = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 3))
    tensors = {}
    for i in range(layers):
        tensors[f"w{i}"] = Tensor(
            name=f"w{i}", bytes=draw(st.floats(1e6, 3e9)), kind="weight", layer=i
        )
        tensors[f"kv{i}"] = Tensor(
            name=f"kv{i}", bytes=draw(st.floats(1e3, 1e9)), kind="kv", layer=i
        )
    tensors["h"] = Tensor(name="h", bytes=draw(st.floats(64, 1e7)), kind="activation")
    ops = []
    for s in range(steps):
        for i in range(layers):
            m, n, k = (draw(st.integers(1, 4096)) for _ in range(3))
            w, kv, h = tensors[f"w{i}"], tensors[f"kv{i}"], tensors["h"]
            ops.append(Op(name=f"mm{s}.{i}", kind="gemm", flops=2.0 * m * n * k,
                          gemm=GemmShape(m=m, n=n, k=k), layer=i, step=s + 1, phase="decode",
                          reads=(Access(tensor=w.name, bytes=w.bytes),
                                 Access(tensor="h", bytes=h.bytes)),
                          writes=(Access(tensor="h", bytes=h.bytes),)))  # fmt: skip
            ops.append(Op(name=f"at{s}.{i}", kind="attention", flops=draw(st.floats(0, 1e12)),
                          layer=i, step=s + 1, phase="decode",
                          reads=(Access(tensor=kv.name, bytes=kv.bytes * draw(st.floats(0.1, 1))),),
                          writes=(Access(tensor="h", bytes=h.bytes),)))  # fmt: skip
    return Graph(tensors=tensors, ops=tuple(ops), meta={"batch": 1, "gen_len": steps})


systems = st.builds(
    lambda hbm, pcie, flops, gran: tiny(**{
        "tiers.hbm.read_bandwidth_bytes_per_s": hbm,
        "links.pcie.bandwidth_bytes_per_s": pcie,
        "compute.core.peak_flops_per_s.bf16": flops,
        "tiers.hbm.access_granularity_bytes": gran,
    }),
    st.floats(1e11, 5e12), st.floats(1e9, 1e11), st.floats(1e12, 1e15),
    st.sampled_from([32, 64, 4096]),
)  # fmt: skip
KNOBS = [
    "tiers.hbm.read_bandwidth_bytes_per_s",
    "links.pcie.bandwidth_bytes_per_s",
    "compute.core.peak_flops_per_s.bf16",
    "tiers.ddr.read_bandwidth_bytes_per_s",
]
policies = st.sampled_from(["fastest_fit", "stream_weights", "kv_offload"])


@SETTINGS
@given(
    system=systems, graph=graphs(), policy=policies, fidelity=st.sampled_from(["analytic", "event"])
)
def test_never_faster_than_the_roofline_and_bytes_and_capacity_hold(
    system, graph, policy, fidelity
) -> None:  # type: ignore[no-untyped-def]
    r = memsim.simulate(system, graph, policy=policy, fidelity=fidelity)
    placement = memsim.make_policy(policy).place(system, graph)
    bounded = placement
    if fidelity == "analytic" and placement.staged:
        # The analytic path runs DMA copies beside compute without contention (rule 4 in
        # memsim/analytic.py), so a copy into HBM and an op reading HBM may overlap at
        # full speed each: only the ops' own traffic bounds it (streamed tensors counted
        # as if resident in their staging tier). Hypothesis found it 0.1 % under the
        # bound with the copies counted; the event engine obeys the full bound.
        bounded = Placement(home={**placement.home, **placement.staged}, policy=policy)
    assert r.makespan_s >= roofline_lower_bound(system, graph, bounded) * (1 - 1e-9)
    assert check_conservation(r, graph) == []
    assert check_capacity(r) == []


@st.composite
def uncontended_worlds(draw: st.DrawFn) -> tuple[System, Graph, memsim.Policy, str]:
    """A system, graph and policy where nothing contends, and the event engine's path.

    * ``"fast"``: one lane, no DMA (the event engine's sequential fast path);
    * ``"lanes"``: 2-3 pipeline stages x 2-3 micro-batches (GPipe), tp 1-2, everything
      in each stage's own HBM: the stages run at once, each on its own device, so the
      processor-sharing fabric runs but no two flows share a resource;
    * ``"dma"``: weights (and KV) streamed from host DDR with ``prefetch_depth=0``: a
      segment's fetch starts when compute reaches it and the segment waits for it, so
      copies and compute go through the fabric but never overlap.
    """
    path = draw(st.sampled_from(["fast", "lanes", "dma"]))
    if path == "lanes":
        return (
            draw(parallel_systems),
            draw(parallel_graphs(min_stages=2)),
            memsim.make_policy("fastest_fit"),
            path,
        )
    system, graph = draw(systems), draw(graphs())
    if path == "fast":
        return (
            system,
            graph,
            memsim.make_policy(draw(st.sampled_from(["fastest_fit", "kv_offload"]))),
            path,
        )
    mapping = draw(
        st.sampled_from([{"weight": "ddr->hbm"}, {"weight": "ddr->hbm", "kv": "ddr->hbm"}])
    )
    return system, graph, memsim.make_policy("explicit", mapping=mapping, prefetch_depth=0), path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=uncontended_worlds())
def test_event_equals_analytic_where_nothing_contends(world) -> None:  # type: ignore[no-untyped-def]
    """Same op end times through both fidelities, also where the event engine runs its
    contention fabric (spied on: it must run there, and only there)."""
    system, graph, policy, path = world
    placement = policy.place(system, graph)
    a = memsim.simulate(system, graph, policy=placement, fidelity="analytic")
    with mock.patch.object(Fabric, "transfer", autospec=True, side_effect=Fabric.transfer) as spy:
        e = memsim.simulate(system, graph, policy=placement, fidelity="event")
    assert (spy.call_count > 0) == (path != "fast")
    if path == "dma":
        assert placement.staged
    assert math.isclose(a.makespan_s, e.makespan_s, rel_tol=1e-9)
    a_end, e_end = a.ops_frame()["end_s"].to_numpy(), e.ops_frame()["end_s"].to_numpy()
    assert np.allclose(e_end, a_end, rtol=1e-9, atol=1e-9 * a.makespan_s)


@SETTINGS
@given(graph=graphs(), policy=policies, fidelity=st.sampled_from(["analytic", "event"]),
       knob=st.sampled_from(KNOBS),
       factor=st.floats(1.0, 8.0))  # fmt: skip
def test_more_bandwidth_or_flops_is_never_slower(graph, policy, fidelity, knob, factor) -> None:  # type: ignore[no-untyped-def]
    base = tiny()
    value = {
        "tiers.hbm.read_bandwidth_bytes_per_s": 1e12,
        "links.pcie.bandwidth_bytes_per_s": 10e9,
        "compute.core.peak_flops_per_s.bf16": 100e12,
        "tiers.ddr.read_bandwidth_bytes_per_s": 100e9,
    }[knob]
    faster = tiny(**{knob: value * factor})
    slow = memsim.simulate(base, graph, policy=policy, fidelity=fidelity).makespan_s
    fast = memsim.simulate(faster, graph, policy=policy, fidelity=fidelity).makespan_s
    # Strict everywhere except one case: in the event engine a DMA stream shares HBM
    # fairly with the ops, and a faster op can take more of that share at a worse moment
    # for the stream (a scheduling "timing anomaly", as in real hardware). Found by
    # hypothesis at 0.03 %; bounded here at 0.1 % and documented in docs/engine.md.
    contended = fidelity == "event" and policy == "stream_weights"
    assert fast <= slow * (1 + (1e-3 if contended else 1e-9))


@SETTINGS
@given(graph=graphs(), policy=policies)
def test_same_inputs_same_result(graph, policy) -> None:  # type: ignore[no-untyped-def]
    a = memsim.simulate(tiny(), graph, policy=policy, seed=3)
    b = memsim.simulate(tiny(), graph, policy=policy, seed=3)
    assert a.summary() == b.summary()
    assert a.ops_frame().equals(b.ops_frame())


# ---- several lanes (pipeline stages), tensor-parallel shards and DMA beside compute


@st.composite
def parallel_graphs(draw: st.DrawFn, *, min_stages: int = 1) -> Graph:
    """GPipe-style graphs: 1-3 stages x 1-3 micro-batches, 1-2 layers per stage, tp 1-2
    (``min_stages`` stages and micro-batches at least)."""
    return pipeline_graph(
        stages=draw(st.integers(min_stages, 3)),
        micro_batches=draw(st.integers(min_stages, 3)),
        layers_per_stage=draw(st.integers(1, 2)),
        weight_bytes=draw(st.floats(1e6, 3e9)),
        act_bytes=draw(st.floats(64, 1e8)),
        flops=draw(st.floats(0, 1e13)),
        tp=draw(st.sampled_from([1, 2])),
        coll_bytes=draw(st.floats(1e3, 1e8)),
    )


parallel_systems = st.builds(
    lambda hbm, pcie, ddr, flops: tiny_pp(**{
        "tiers.hbm.read_bandwidth_bytes_per_s": hbm,
        "links.pcie.bandwidth_bytes_per_s": pcie,
        "tiers.ddr.read_bandwidth_bytes_per_s": ddr,
        "compute.core.peak_flops_per_s.bf16": flops,
    }),
    st.floats(1e11, 5e12), st.floats(1e9, 1e11), st.floats(1e9, 2e11), st.floats(1e12, 1e15),
)  # fmt: skip
# fastest_fit keeps tiny graphs in each device's HBM; the others put traffic on the shared
# host DDR (kv_offload: weights too, via explicit) or copy weights beside compute (stream)
parallel_policies = st.sampled_from(
    ["fastest_fit", "stream_weights", {"weight": "ddr"}, {"weight": "ddr->hbm"}]
)


def _policy(spec: str | dict[str, str]) -> memsim.Policy:
    if isinstance(spec, dict):
        return memsim.make_policy("explicit", mapping=spec)
    return memsim.make_policy(spec)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(system=parallel_systems, graph=parallel_graphs(), spec=parallel_policies)
def test_lanes_and_dma_respect_the_bound_and_contention_only_slows(system, graph, spec) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(spec)
    placement = policy.place(system, graph)
    bound = roofline_lower_bound(system, graph, placement)
    a = memsim.simulate(system, graph, policy=placement, fidelity="analytic")
    e = memsim.simulate(system, graph, policy=placement, fidelity="event")
    assert e.makespan_s >= bound * (1 - 1e-9)
    assert e.makespan_s >= a.makespan_s * (1 - 1e-9)  # contention only slows
    host = {t for t, s in system.tiers.items() if s.scope == "host"}
    shared = placement.staged or any(placement.tier_of(t) in host for t in graph.tensors)
    if not shared:  # each stage on its own device, nothing else: no contention
        assert e.makespan_s == pytest.approx(a.makespan_s, rel=0.01)
        assert a.makespan_s >= bound * (1 - 1e-9)
    assert check_conservation(e, graph) == []
    assert check_capacity(e) == []
    again = memsim.simulate(system, graph, policy=placement, fidelity="event")
    assert again.ops_frame().equals(e.ops_frame())
