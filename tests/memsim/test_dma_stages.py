"""One prefetch / write-back DMA engine pair per pipeline-stage device.

``tiny_pp`` (tests/memsim/pipeline_world.py), weights streamed from host DDR into each
stage's HBM (``stream_weights``, prefetch depth 1). Each layer's weight is 1 GB; a fetch
crosses the host DDR (100 GB/s, shared by the stages: 10 ms of its time), the stage's own
PCIe (10 GB/s: 100 ms) and its HBM (1 TB/s: 1 ms), after the route latency
100 ns + 1 us + 500 ns = 1.6 us: ``f = 0.1000016 s``. Once staged, a layer op takes
``d = 1.000508192e-3 s`` (tests/memsim/test_pipeline.py).
"""

from __future__ import annotations

import pytest

import memsim
from tests.memsim.pipeline_world import pipeline_graph, tiny_pp

F = 0.1000016
D = 1.000508192e-3
FIDELITIES = ["analytic", "event"]
STREAM = {"source": "ddr", "staging": "hbm"}


def _run(
    fidelity: str,
    *,
    stages: int,
    micro_batches: int = 1,
    system: dict[str, float] | None = None,
) -> memsim.SimResult:
    """Two layers over ``stages`` stages, weights streamed from host DDR."""
    g = pipeline_graph(stages=stages, micro_batches=micro_batches, layers_per_stage=2 // stages)
    policy = memsim.make_policy("stream_weights", **STREAM)
    return memsim.simulate(tiny_pp(**(system or {})), g, policy=policy, fidelity=fidelity)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_each_stage_prefetches_its_weights_on_its_own_engine(fidelity: str) -> None:
    # 2 stages x 1 layer, one micro-batch (a chain L0 -> L1). Stage 1's engine fetches w1
    # over stage 1's PCIe while stage 0's engine fetches w0 over stage 0's: both in [0, f]
    # (the shared DDR carries 2 x 10 GB/s, under its 100 GB/s). L0 [f, f + d],
    # L1 [f + d, f + 2 d]: f + 2 d = 0.102002616384 s. One engine for the pipeline
    # fetched w1 after w0: 2 f + d = 0.201003708192 s.
    r = _run(fidelity, stages=2)
    starts = r.ops_frame()["start_s"].tolist()
    assert starts == pytest.approx([F, F + D], rel=1e-9)
    assert r.makespan_s == pytest.approx(F + 2 * D, rel=1e-9)


def test_one_device_still_fetches_in_order() -> None:
    # the same two layers on one stage: one engine, one PCIe. Fetch w0 [0, f], fetch w1
    # [f, 2 f] (double buffering: it may start once compute reached segment 0);
    # L0 [f, f + d], L1 [2 f, 2 f + d]: 2 f + d = 0.201003708192 s (analytic). The event
    # engine shares stage 0's HBM between w1's 1 ms of staging writes and L0's 1 ms of
    # reads, so it is a little later (~10 us), never earlier.
    a = _run("analytic", stages=1)
    e = _run("event", stages=1)
    assert a.ops_frame()["start_s"].tolist() == pytest.approx([F, 2 * F], rel=1e-9)
    assert a.makespan_s == pytest.approx(2 * F + D, rel=1e-9)
    assert e.makespan_s == pytest.approx(a.makespan_s, rel=1e-3)
    assert e.makespan_s >= a.makespan_s * (1 - 1e-12)


def test_the_shared_host_tier_still_limits_the_stages_copies() -> None:
    # host DDR slowed to 5 GB/s (below the 10 GB/s PCIe): one fetch alone takes
    # 1 GB / 5 GB/s = 0.2 s (+ 1.6 us). Analytic (no contention): both stages fetch in
    # [0, 0.2000016]: 0.2000016 + 2 d. Event: the two fetches share the DDR, 2.5 GB/s each,
    # both end at 0.4 s + 1.6 us: 0.4000016 + 2 d = 0.402002616384 s, no better than the
    # DDR's total work (2 GB / 5 GB/s = 0.4 s)
    slow = {"tiers.ddr.read_bandwidth_bytes_per_s": 5e9}
    a = _run("analytic", stages=2, system=slow)
    e = _run("event", stages=2, system=slow)
    assert a.makespan_s == pytest.approx(0.2000016 + 2 * D, rel=1e-9)
    assert e.makespan_s == pytest.approx(0.4000016 + 2 * D, rel=1e-9)
    assert e.makespan_s >= 0.4


def test_event_equals_analytic_with_micro_batches_when_nothing_contends() -> None:
    # 2 stages x 2 micro-batches streaming (DDR at 100 GB/s never saturates): the only
    # sharing is a fetch's 1 ms of HBM writes beside compute's HBM reads, so the event
    # engine stays within 1 % of the analytic schedule. Analytic by hand: stage 0 fetches
    # w0 [0, f] then (depth 1, compute reached its job 0 at 0) w0 again for m1 [f, 2 f]
    # (the staging buffer is freed after each segment); stage 1 the same. m0.L0 [f, f+d],
    # m0.L1 [f+d, f+2d], m1.L0 [2f, 2f+d], m1.L1 [2f+d, 2f+2d]: 2 f + 2 d.
    a = _run("analytic", stages=2, micro_batches=2)
    e = _run("event", stages=2, micro_batches=2)
    assert a.makespan_s == pytest.approx(2 * F + 2 * D, rel=1e-9)
    assert e.makespan_s == pytest.approx(a.makespan_s, rel=0.01)
    assert e.makespan_s >= a.makespan_s * (1 - 1e-12)
