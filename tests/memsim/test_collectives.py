"""Collective algorithms over a device-to-device link: ring, one-shot, two-shot, auto.

Hand calculations use ``tiny_pp`` (tests/memsim/pipeline_world.py): 4 devices joined by a
100 GB/s link (per direction, achievable fraction 1) with 2 us per step, no launch
overhead. An all-reduce of ``B`` bytes among ``p = 4`` devices:

* ring:     ``2 (p-1)/p B / bw + 2 (p-1) a`` = 1.5 B / 1e11 + 12 us
* one_shot: ``(p-1) B / bw + a``             = 3 B / 1e11 + 2 us
* two_shot: ``2 (p-1)/p B / bw + 2 a``       = 1.5 B / 1e11 + 4 us

B = 1 MB: ring 15 + 12 = 27 us, one-shot 30 + 2 = 32 us, two-shot 15 + 4 = 19 us.
B = 16 KiB (16384 B): ring 0.24576 + 12 = 12.24576 us, one-shot 0.49152 + 2 = 2.49152 us,
two-shot 0.24576 + 4 = 4.24576 us. One-shot beats two-shot below
``B = a bw / 1.5`` = 2e-6 x 1e11 / 1.5 = 133.3 kB.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memsim
from hw_models import SpecError, System, load_system
from memsim import cost
from tests.memsim.pipeline_world import NVLINK, pipeline_graph, tiny_pp
from workloads import generate, load_model

ALGORITHMS = cost.COLLECTIVE_ALGORITHMS
FIDELITIES = ["analytic", "event"]
US = 1e-6

# (bytes, algorithm) -> seconds, from the module docstring
EXPECTED = {
    (1e6, "ring"): 27 * US,
    (1e6, "one_shot"): 32 * US,
    (1e6, "two_shot"): 19 * US,
    (1e6, "auto"): 19 * US,
    (16384.0, "ring"): 12.24576 * US,
    (16384.0, "one_shot"): 2.49152 * US,
    (16384.0, "two_shot"): 4.24576 * US,
    (16384.0, "auto"): 2.49152 * US,
}


def _system(algorithm: str, **overrides: Any) -> System:
    return tiny_pp(**{"links.nvlink": {**NVLINK, "collective_algorithm": algorithm}, **overrides})


@pytest.mark.parametrize(("nbytes", "algorithm"), list(EXPECTED))
def test_all_reduce_time_per_algorithm(nbytes: float, algorithm: str) -> None:
    t = cost.collective_time(
        "all_reduce", nbytes, group=4, algorithm=algorithm, bandwidth=100e9, latency=2 * US
    )
    assert t == pytest.approx(EXPECTED[(nbytes, algorithm)], rel=1e-12)


def test_ring_matches_the_classic_formula() -> None:
    # the ring algorithm is the one the engine always used (Patarasuk & Yuan)
    for b in (1.0, 1e3, 1e6, 1e9):
        assert cost.collective_time(
            "all_reduce", b, group=8, algorithm="ring", bandwidth=3e11, latency=US
        ) == pytest.approx(cost.ring_all_reduce_time(b, group=8, bandwidth=3e11, latency=US))


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize(("nbytes", "algorithm"), list(EXPECTED))
def test_simulated_collective_op_costs_the_link_algorithm(
    nbytes: float, algorithm: str, fidelity: str
) -> None:
    # one stage, tp = 4: the layer op, then its all-reduce of nbytes; the all-reduce op
    # touches only the link (and HBM in place, 0 bytes), so its duration is the formula
    g = pipeline_graph(stages=1, micro_batches=1, tp=4, coll_bytes=nbytes)
    r = memsim.simulate(_system(algorithm), g, fidelity=fidelity)
    ops = r.ops_frame()
    coll = ops[ops.kind == "collective"]
    assert len(coll) == 1
    assert coll["duration_s"].iloc[0] == pytest.approx(EXPECTED[(nbytes, algorithm)], rel=1e-9)


def test_link_bytes_follow_the_algorithm() -> None:
    # bytes each device sends for 1 MB among 4: ring / two-shot 2 x 3/4 x 1 MB = 1.5 MB,
    # one-shot 3 x 1 MB = 3 MB
    g = pipeline_graph(stages=1, micro_batches=1, tp=4, coll_bytes=1e6)
    expected = {"ring": 1.5e6, "one_shot": 3e6, "two_shot": 1.5e6}
    for a, nbytes in expected.items():
        links = memsim.simulate(_system(a), g, fidelity="analytic").links_frame()
        row = links[links["link"] == "nvlink"]
        assert float(row["bytes"].sum()) == pytest.approx(nbytes, rel=1e-9)


def test_direct_algorithms_pay_one_latency_for_all_gather() -> None:
    # all-gather of 1 MB among 4: every algorithm sends (p-1)/p B = 0.75 MB = 7.5 us;
    # ring pays p-1 = 3 steps (6 us), a direct exchange through the switch one (2 us)
    kw: dict[str, Any] = {"group": 4, "bandwidth": 100e9, "latency": 2 * US}
    assert cost.collective_time("all_gather", 1e6, algorithm="ring", **kw) == pytest.approx(
        13.5 * US
    )
    for a in ("one_shot", "two_shot", "auto"):
        assert cost.collective_time("all_gather", 1e6, algorithm=a, **kw) == pytest.approx(9.5 * US)
    # a point-to-point send is one hop of B for every algorithm: 10 us + 2 us
    for a in ALGORITHMS:
        assert cost.collective_time("send_recv", 1e6, algorithm=a, **kw) == pytest.approx(12 * US)


def test_auto_switches_from_one_shot_to_two_shot_at_the_crossover() -> None:
    # crossover B* = a bw / 1.5 = 133_333 B (module docstring)
    kw: dict[str, Any] = {"group": 4, "algorithm": "auto", "bandwidth": 100e9, "latency": 2 * US}
    _, _, chosen = cost.collective_cost_array("all_reduce", np.array([1.3e5, 1.4e5]), **kw)
    assert chosen == ["one_shot", "two_shot"]


KINDS = ["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"]
PROP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sizes = st.floats(min_value=1.0, max_value=1e10)
groups = st.integers(min_value=1, max_value=64)
bws = st.floats(min_value=1e8, max_value=1e13)
lats = st.floats(min_value=0.0, max_value=1e-4)


@PROP
@given(kind=st.sampled_from(KINDS), b=sizes, p=groups, bw=bws, lat=lats)
def test_auto_is_the_minimum(kind: str, b: float, p: int, bw: float, lat: float) -> None:
    kw: dict[str, Any] = {"group": p, "bandwidth": bw, "latency": lat}
    each = [cost.collective_time(kind, b, algorithm=a, **kw) for a in ALGORITHMS[:-1]]
    assert cost.collective_time(kind, b, algorithm="auto", **kw) == pytest.approx(min(each))


@PROP
@given(
    kind=st.sampled_from(KINDS),
    algorithm=st.sampled_from(ALGORITHMS),
    b=sizes,
    p=groups,
    bw=bws,
    lat=lats,
    more=st.floats(min_value=1.0, max_value=100.0),
)
def test_more_bandwidth_or_less_latency_is_never_slower(
    kind: str, algorithm: str, b: float, p: int, bw: float, lat: float, more: float
) -> None:
    kw: dict[str, Any] = {"group": p, "algorithm": algorithm}
    t = cost.collective_time(kind, b, bandwidth=bw, latency=lat, **kw)
    assert cost.collective_time(kind, b, bandwidth=bw * more, latency=lat, **kw) <= t * (1 + 1e-12)
    assert cost.collective_time(kind, b, bandwidth=bw, latency=lat / more, **kw) <= t * (1 + 1e-12)
    # and a bigger message never takes less time
    assert cost.collective_time(kind, b * more, bandwidth=bw, latency=lat, **kw) >= t * (1 - 1e-12)


def test_unknown_algorithm_is_a_spec_error_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        _system("tree")
    assert "collective_algorithm" in str(err.value)
    with pytest.raises(SpecError) as err:
        cost.collective_time(
            "all_reduce", 1.0, group=2, algorithm="tree", bandwidth=1.0, latency=0.0
        )
    assert "ring, one_shot, two_shot, auto" in str(err.value)


def test_llama2_70b_tp8_decode_moves_towards_the_weight_bound() -> None:
    # Llama-2-70B, TP8, batch 1 decode on dgx_h100. Per decode step: 161 all-reduces of one
    # token's hidden state (embedding + 2 per layer x 80), 8192 x 2 B = 16384 B each, and
    # the lm-head's all-gather of 8000 B. NVLink: 450 GB/s x 0.85 = 382.5 GB/s, 2 us/step.
    #   all-reduce ring:     2 x 7/8 x 16384 / 382.5e9 + 14 x 2 us = 0.07496 + 28 = 28.075 us
    #   all-reduce one-shot: 7 x 16384 / 382.5e9 + 2 us = 2.29985 us (two-shot 4.075 us),
    #                        below the 4 us launch overhead -> 4 us
    #   all-gather ring:     7/8 x 8000 / 382.5e9 + 7 x 2 us = 14.0183 us; direct 2.0183 us
    #                        -> 4 us (overhead)
    # TPOT saving per step: 161 x 24.07496 + 10.0183 us = 3.8861 ms (of 12.6 ms).
    dgx = load_system("dgx_h100")
    assert dgx.links["nvlink"].collective_algorithm == "auto"
    ring_sys = load_system("dgx_h100", overrides={"links.nvlink.collective_algorithm": "ring"})
    g = generate(load_model("llama2_70b"), batch=1, prompt_len=16, gen_len=3, tp=8)
    auto = memsim.simulate(dgx, g, fidelity="analytic")
    ring = memsim.simulate(ring_sys, g, fidelity="analytic")

    def decode_collectives(r: memsim.SimResult, kind: str) -> Any:
        ops = r.ops_frame()
        sel = (ops.kind == "collective") & (ops.phase == "decode") & ops.name.str.endswith(kind)
        return ops[sel]

    ar_ring = 2 * 7 / 8 * 16384 / 382.5e9 + 14 * 2e-6
    ag_ring = 7 / 8 * 8000 / 382.5e9 + 7 * 2e-6
    for r, ar, ag in ((auto, 4e-6, 4e-6), (ring, ar_ring, ag_ring)):
        ars, ags = decode_collectives(r, "all_reduce"), decode_collectives(r, "all_gather")
        assert len(ars) == 161 * 3 and len(ags) == 3  # 3 decode steps
        assert ars["duration_s"].to_numpy() == pytest.approx(ar, rel=1e-6)
        assert ags["duration_s"].to_numpy() == pytest.approx(ag, rel=1e-6)
    tpot_auto, tpot_ring = auto.summary()["tpot_s"], ring.summary()["tpot_s"]
    saved = 161 * (ar_ring - 4e-6) + (ag_ring - 4e-6)
    assert saved == pytest.approx(3.8861e-3, rel=1e-4)
    assert tpot_ring - tpot_auto == pytest.approx(saved, rel=1e-6)
    # the 5.15 ms per-GPU weight bound: 68.98e9 params x 2 B / 8 GPUs / 3.35 TB/s; the rest
    # of the gap is launch overheads of the ~1000 small kernels per token
    bound = 68.98e9 * 2 / 8 / 3.35e12
    assert bound == pytest.approx(5.148e-3, rel=1e-3)
    assert tpot_ring / bound > 2.4
    assert bound < tpot_auto < 1.7 * bound
