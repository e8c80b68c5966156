"""Physics invariants hold with calibrated efficiency parameters too (issue 10).

The same random graphs as tests/memsim/test_properties.py, on the tiny system with the
h200_sxm_calibrated efficiency block on its compute unit: calibrated time never beats
the roofline bound, and more bandwidth or FLOP/s is never slower.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memsim
from hw_models import System, load_system, load_system_dict
from hw_models.engine_profile import engine_names, load_engine_profile
from memsim import cost
from memsim.invariants import roofline_lower_bound
from tests.conftest import tiny_system_data
from tests.memsim.test_properties import graphs

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EFFICIENCY = (
    load_system("h200_sxm_calibrated").compute["tensor"].efficiency.model_dump(mode="json")  # type: ignore[union-attr]
)


def calibrated_tiny(engine: str | None = None, **overrides: Any) -> System:
    """The tiny system whose compute unit carries the H200's fitted efficiencies."""
    data: dict[str, Any] = copy.deepcopy(tiny_system_data())
    data["compute"]["core"]["efficiency"] = copy.deepcopy(EFFICIENCY)
    if engine is not None:
        data["engine"] = load_engine_profile(engine).model_dump(mode="json")
    return load_system_dict(data, overrides=overrides or None)


systems = st.builds(
    lambda hbm, flops, engine: calibrated_tiny(engine, **{
        "tiers.hbm.read_bandwidth_bytes_per_s": hbm,
        "compute.core.peak_flops_per_s.bf16": flops,
    }),
    st.floats(1e11, 5e12), st.floats(1e12, 1e15), st.sampled_from([None, *engine_names()]),
)  # fmt: skip
policies = st.sampled_from(["fastest_fit", "stream_weights", "kv_offload"])


@SETTINGS
@given(system=systems, graph=graphs(), fidelity=st.sampled_from(["analytic", "event"]))
def test_calibrated_time_never_beats_the_roofline(system, graph, fidelity) -> None:  # type: ignore[no-untyped-def]
    r = memsim.simulate(system, graph, fidelity=fidelity)
    placement = memsim.make_policy("fastest_fit").place(system, graph)
    assert r.makespan_s >= roofline_lower_bound(system, graph, placement) * (1 - 1e-9)


@SETTINGS
@given(graph=graphs(), policy=policies, fidelity=st.sampled_from(["analytic", "event"]),
       knob=st.sampled_from(["tiers.hbm.read_bandwidth_bytes_per_s",
                             "compute.core.peak_flops_per_s.bf16",
                             "links.pcie.bandwidth_bytes_per_s"]),
       factor=st.floats(1.0, 8.0))  # fmt: skip
def test_calibrated_more_bandwidth_or_flops_is_never_slower(
    graph, policy, fidelity, knob, factor
) -> None:  # type: ignore[no-untyped-def]
    value = {
        "tiers.hbm.read_bandwidth_bytes_per_s": 1e12,
        "compute.core.peak_flops_per_s.bf16": 100e12,
        "links.pcie.bandwidth_bytes_per_s": 10e9,
    }[knob]
    slow = memsim.simulate(calibrated_tiny(), graph, policy=policy, fidelity=fidelity)
    fast = memsim.simulate(
        calibrated_tiny(**{knob: value * factor}), graph, policy=policy, fidelity=fidelity
    )
    contended = fidelity == "event" and policy == "stream_weights"  # see test_properties
    assert fast.makespan_s <= slow.makespan_s * (1 + (1e-3 if contended else 1e-9))


@SETTINGS
@given(
    m=st.integers(1, 20000), n=st.integers(1, 60000), k=st.integers(1, 30000),
    dtype=st.sampled_from(["bf16", "fp8"]),
)  # fmt: skip
def test_calibrated_gemm_is_never_faster_than_its_roofline(m, n, k, dtype) -> None:  # type: ignore[no-untyped-def]
    p = {k_: v["value"] for k_, v in EFFICIENCY["params"].items()}
    peak = {"bf16": 989.4e12, "fp8": 1978.9e12}[dtype]
    e = cost.elem_bytes(dtype)
    t = cost.calibrated_gemm_time_array(
        p, m=np.array([m]), n=np.array([n]), k=np.array([k]), batch=np.ones(1),
        elem=np.array([e]), peak=np.array([peak]), mem_bw=4.8e12, sms=132,
        fp8=np.array([dtype == "fp8"]),
    )[0]  # fmt: skip
    bound = max(2.0 * m * n * k / peak, e * (m * k + n * k + m * n) / 4.8e12)
    assert t >= bound
