"""A sweep's SimCache shares bandwidth-free per-op tables between hardware points.

The bytes each op moves through each resource, the off-chip bytes per op and the
collectives' link bytes are kept in the caller's cache (memsim/plan.py, assemble.py)
and reused by every point that shares their inputs. These tests change exactly the
knobs those tables must (or must not) follow and check each cached result against a
fresh one, to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import workloads
from hw_models import load_system
from memsim import SimCache, make_plan, simulate


def _same(a: object, b: object) -> None:
    from memsim.result import SimResult

    assert isinstance(a, SimResult) and isinstance(b, SimResult)
    assert a.summary() == b.summary()
    for name in a.ops:
        x, y = np.asarray(a.op_column(name)), np.asarray(b.op_column(name))
        assert x.dtype == y.dtype and (x.tolist() == y.tolist()), name
    assert a.tiers == b.tiers and a.links == b.links and a.energy == b.energy


@pytest.fixture(scope="module")
def tp_graph() -> workloads.Graph:
    cfg = workloads.load_model("llama2_7b")
    return workloads.generate(cfg, batch=2, prompt_len=64, gen_len=2, tp=4)


def test_points_that_change_link_bytes_do_not_share_them(tp_graph: workloads.Graph) -> None:
    # NVLink latency decides the all-reduce algorithm per message ("auto"): one-shot sends
    # (p-1) B, two-shot 2 (p-1)/p B, so the bytes on the link follow the latency
    points = [
        load_system("dgx_h100", overrides={"links.nvlink.latency_s": lat})
        for lat in (2e-6, 1e-9, 2e-6)
    ]
    fresh = [simulate(p, tp_graph, fidelity="analytic") for p in points]
    link_bytes = [next(lk.bytes for lk in r.links if lk.link == "nvlink") for r in fresh]
    assert link_bytes[0] != link_bytes[1]  # the knob changes what the shared table holds
    cache = SimCache()
    for p, ref in zip(points, fresh, strict=True):
        _same(simulate(p, tp_graph, fidelity="analytic", cache=cache), ref)
    assert cache.hits > 0


def test_bandwidth_and_flops_points_share_tables_and_match_fresh_runs(
    tp_graph: workloads.Graph,
) -> None:
    points = [
        load_system("dgx_h100"),
        load_system("dgx_h100", overrides={"compute.tensor.peak_flops_per_s.bf16": 2e15}),
        load_system("dgx_h100", overrides={"tiers.hbm.read_bandwidth_bytes_per_s": 2e12}),
    ]
    cache = SimCache()
    plans = [make_plan(p, tp_graph, cache=cache) for p in points]
    # the bytes tables do not depend on bandwidths or FLOP/s: one array for all points
    assert plans[0].res_bytes_read is plans[1].res_bytes_read is plans[2].res_bytes_read
    assert plans[0].op_demand is not plans[1].op_demand
    for p in points[::-1]:
        fresh = simulate(p, tp_graph, fidelity="analytic")
        _same(simulate(p, tp_graph, fidelity="analytic", cache=cache), fresh)


def test_shared_tables_are_read_only(tp_graph: workloads.Graph) -> None:
    plan = make_plan("dgx_h100", tp_graph, cache=SimCache())
    for arr in (plan.res_bytes_read, plan.res_bytes_written, plan.op_unit):
        with pytest.raises(ValueError):
            arr[0] = 1
    # the per-point demand stays private to its plan
    plan.op_demand[0, 0] += 0.0
