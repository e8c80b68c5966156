"""The engine on tiny worlds: hand-computed schedules, sharing, pools, both fidelities."""

from __future__ import annotations

import pytest
import simpy

import memsim
from memsim.engine import Fabric, Pool
from memsim.policies import CapacityError
from tests.memsim.world import tiny, tiny_graph

# tiny_graph on tiny(), everything in HBM (1 TB/s, 500 ns):
#   mm : reads 1e9 + 1024 B, writes 1024 B -> 1.000002e-3 s of HBM + 0.5 us latency
#        (compute 2*64^3 / 25e12 = 21 ns: one 64x64 tile fills 1 of 4 units)
#   act: 1e9 FLOP at 10 TFLOP/s = 1e-4 s (HBM 2048 B = 2 ns) + 0.5 us latency
MM = 1.000002048e-3 + 0.5e-6
ACT = 1e-4 + 0.5e-6


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_hand_computed_schedule(fidelity: str) -> None:
    r = memsim.simulate(tiny(), tiny_graph(), fidelity=fidelity)
    ops = r.ops_frame()
    assert ops["duration_s"].tolist() == pytest.approx([MM, ACT], rel=1e-9)
    assert ops["bound"].tolist() == ["tier:hbm", "compute"]
    assert r.makespan_s == pytest.approx(MM + ACT, rel=1e-9)
    hbm = r.tiers_frame().set_index("tier").loc["hbm"]
    assert hbm["bytes_read"] == pytest.approx(1e9 + 2048)
    assert hbm["bytes_written"] == pytest.approx(2048)
    # peak: the weight (from t = 0) plus both 1 KiB activations
    assert hbm["peak_bytes"] == pytest.approx(1e9 + 2048)


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_streamed_weights_are_bounded_by_the_link(fidelity: str) -> None:
    # the 1 GB weight lives in DDR and is copied to HBM before layer 0 runs:
    # DDR 1e9/1e11 = 10 ms, PCIe 1e9/1e10 = 100 ms, HBM write 1 ms -> 100 ms,
    # after 100 ns + 1 us + 500 ns of route latency; then the ops as before
    r = memsim.simulate(tiny(), tiny_graph(), policy="stream_weights", fidelity=fidelity)
    fetch = 0.1 + 1.6e-6
    assert r.makespan_s == pytest.approx(fetch + MM + ACT, rel=1e-9)
    (tr,) = r.transfers
    assert (tr.src, tr.dst, tr.bytes) == ("ddr", "hbm", 1e9)
    links = r.links_frame().set_index("link")
    assert links.loc["pcie", "bytes"] == pytest.approx(1e9)


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_kv_offload_reads_over_the_link(fidelity: str) -> None:
    from workloads.graph import Access, Graph, Op, Tensor

    g = Graph(
        tensors={"kv": Tensor(name="kv", bytes=1e8, kind="kv", layer=0)},
        ops=(
            Op(name="attn", kind="attention", flops=1e6, reads=(Access(tensor="kv", bytes=1e8),)),
        ),
    )
    fast = memsim.simulate(tiny(), g, fidelity=fidelity)
    slow = memsim.simulate(tiny(), g, policy="kv_offload", fidelity=fidelity)
    # HBM: 1e8/1e12 + 0.5 us; DDR over PCIe: 1e8/1e10 (the link) + 100 ns + 1 us
    assert fast.makespan_s == pytest.approx(1e-4 + 0.5e-6)
    assert slow.makespan_s == pytest.approx(1e-2 + 1.1e-6)
    assert slow.ops_frame()["bound"].tolist() == ["link:pcie"]


def test_fabric_shares_a_channel_fairly() -> None:
    env = simpy.Environment()
    fab = Fabric(env)
    ends: dict[str, float] = {}

    def flow(name: str, start: float, demand: list[tuple[str, float]]):  # type: ignore[no-untyped-def]
        yield env.timeout(start)
        yield fab.transfer(demand)
        ends[name] = env.now

    # a alone for 0.5 s (half done), then a and b share A at half rate each:
    # a needs 0.5 more -> ends at 1.5; b has done 0.5 by then, alone again -> 2.0
    env.process(flow("a", 0.0, [("A", 1.0)]))
    env.process(flow("b", 0.5, [("A", 1.0)]))
    # c uses only B: unaffected
    env.process(flow("c", 0.0, [("B", 1.0)]))
    env.run()
    assert ends == pytest.approx({"a": 1.5, "b": 2.0, "c": 1.0})


def test_fabric_leaves_unused_share_to_others() -> None:
    env = simpy.Environment()
    fab = Fabric(env)
    ends: dict[str, float] = {}

    def flow(name: str, demand: list[tuple[str, float]]):  # type: ignore[no-untyped-def]
        yield fab.transfer(demand)
        ends[name] = env.now

    # x is bound by link L (1 s) and uses 10 % of A; y needs A for 1 s.
    # Max-min: A is shared (level 1/1.1 each), x and y both progress at 1/1.1
    # -> both end at 1.1 s, using A fully (1/1.1 + 0.1/1.1 = 1).
    env.process(flow("x", [("L", 1.0), ("A", 0.1)]))
    env.process(flow("y", [("A", 1.0)]))
    env.run()
    assert ends == pytest.approx({"x": 1.1, "y": 1.1})


def test_pool_never_exceeds_capacity() -> None:
    env = simpy.Environment()
    pool = Pool(env, "hbm", 100.0)
    pool.alloc(60)
    with pytest.raises(CapacityError, match="short by 20 B") as err:
        pool.alloc(60)
    assert err.value.tier == "hbm" and err.value.shortfall_bytes == pytest.approx(20)
    waiting = pool.alloc_wait(60)
    assert not waiting.triggered
    pool.free(60)
    assert waiting.triggered and pool.level == 60


def test_exceeding_capacity_is_an_error_naming_the_tier() -> None:
    with pytest.raises(CapacityError) as err:
        memsim.simulate(tiny(), tiny_graph(weight_bytes=400e9))
    assert "ddr" in str(err.value) and "short by" in str(err.value)


def test_two_interleaved_simulations_match_separate_runs() -> None:
    from memsim.assemble import build_result
    from memsim.engine.executor import prepare_event

    plans = [
        memsim.make_plan(tiny(), tiny_graph(), policy="stream_weights"),
        memsim.make_plan(tiny(**{"tiers.hbm.read_bandwidth_bytes_per_s": 2e12}), tiny_graph()),
    ]
    alone = [
        memsim.simulate(p.system, tiny_graph(), policy=pol)
        for p, pol in zip(plans, ["stream_weights", None], strict=True)
    ]
    envs = [prepare_event(p) for p in plans]
    while any(env.peek() != float("inf") for env, _ in envs):
        for env, _ in envs:
            if env.peek() != float("inf"):
                env.step()
    for (_, finish), plan, ref in zip(envs, plans, alone, strict=True):
        got = build_result(plan, finish(), fidelity="event", seed=0, meta={})
        assert got.makespan_s == ref.makespan_s
        assert got.ops_frame()["end_s"].tolist() == ref.ops_frame()["end_s"].tolist()
