"""The per-kernel cost of a dataflow unit: launch, pipeline fill/drain, barrier and
cross-socket synchronisation, each paid once per kernel call (per op kernel by kernel,
per fused group in dataflow execution), counted by hand: kernels x cost."""

from __future__ import annotations

import pytest

import memsim
import workloads
from hw_models import SpecError, System, load_system
from memsim import cost
from memsim.graph_fit import fit_graph
from workloads.graph import Graph

US = 1e-6
#: the terms of the shipped SN40L presets (hw_models/presets/systems/sn40l*.yaml, all assumed)
LAUNCH, FILL, BARRIER, SYNC = 10e-6, 2e-6, 1e-6, 5e-6
ZERO = {
    f"compute.pcu.kernel_cost.{t}.seconds": 0.0
    for t in ("launch", "pipeline_fill_drain", "barrier", "cross_socket_sync")
}


def _graphs(tp: int) -> dict[str, Graph]:
    cfg = workloads.load_model("llama2_7b")
    return {
        "prefill": workloads.prefill(cfg, batch=1, prompt_len=128, tp=tp),
        "decode": workloads.decode(cfg, batch=1, context_len=512, tp=tp),
    }


def test_terms_come_from_the_preset_and_cross_socket_sync_only_when_sharded() -> None:
    pcu = load_system("sn40l_8s").compute["pcu"]
    one = cost.dataflow_kernel_terms(pcu, sockets=1)
    assert one == {
        "launch": LAUNCH,
        "pipeline_fill_drain": FILL,
        "barrier": BARRIER,
        "cross_socket_sync": 0.0,
        "kernel_launch_overhead": 0.0,
    }
    assert cost.dataflow_kernel_seconds(pcu, sockets=1) == pytest.approx(13 * US)
    assert cost.dataflow_kernel_seconds(pcu, sockets=8) == pytest.approx(18 * US)
    # every term says where it came from
    kc = pcu.kernel_cost
    assert kc is not None
    for term in (kc.launch, kc.pipeline_fill_drain, kc.barrier, kc.cross_socket_sync):
        assert term.provenance == "assumed" and term.source


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
@pytest.mark.parametrize(("system", "per_kernel"), [("sn40l", 13 * US), ("sn40l_8s", 18 * US)])
def test_kernel_by_kernel_pays_every_op_dataflow_every_group(
    system: str, per_kernel: float, fidelity: str
) -> None:
    paid = load_system(system)
    free = load_system(system, overrides=ZERO)
    g = fit_graph(paid, _graphs(paid.devices)["decode"])
    n_ops = len(g.ops)
    n_groups = memsim.make_plan(paid, g, execution="dataflow").n_groups
    assert 1 < n_groups < n_ops

    def span(s: System, execution: str) -> float:
        return memsim.simulate(s, g, execution=execution, fidelity=fidelity).makespan_s

    # by hand: kernels x (launch + fill/drain + barrier [+ cross-socket sync on 8 sockets])
    assert span(paid, "kernel") - span(free, "kernel") == pytest.approx(
        n_ops * per_kernel, rel=1e-9
    )
    assert span(paid, "dataflow") - span(free, "dataflow") == pytest.approx(
        n_groups * per_kernel, rel=1e-9
    )


def test_each_term_adds_its_own_kernels_x_seconds() -> None:
    base = load_system("sn40l_8s", overrides=ZERO)
    g = fit_graph(base, _graphs(8)["decode"])
    n_ops = len(g.ops)
    span0 = memsim.simulate(base, g, execution="kernel", fidelity="analytic").makespan_s
    for term, seconds in (
        ("launch", LAUNCH),
        ("pipeline_fill_drain", FILL),
        ("barrier", BARRIER),
        ("cross_socket_sync", SYNC),
    ):
        one = load_system(
            "sn40l_8s", overrides={**ZERO, f"compute.pcu.kernel_cost.{term}.seconds": seconds}
        )
        span = memsim.simulate(one, g, execution="kernel", fidelity="analytic").makespan_s
        assert span - span0 == pytest.approx(n_ops * seconds, rel=1e-9), term


@pytest.mark.parametrize("system", ["sn40l", "sn40l_8s"])
@pytest.mark.parametrize("scale", [0.0, 1.0, 4.0])
def test_dataflow_is_never_slower_than_kernel_by_kernel_on_the_same_graph(
    system: str, scale: float
) -> None:
    terms = ("launch", "pipeline_fill_drain", "barrier", "cross_socket_sync")
    base = {"launch": LAUNCH, "pipeline_fill_drain": FILL, "barrier": BARRIER}
    base["cross_socket_sync"] = SYNC
    s = load_system(
        system,
        overrides={f"compute.pcu.kernel_cost.{t}.seconds": base[t] * scale for t in terms},
    )
    for name, g in _graphs(s.devices).items():
        g = fit_graph(s, g)
        for fidelity in ("analytic", "event"):
            k = memsim.simulate(s, g, execution="kernel", fidelity=fidelity).makespan_s
            d = memsim.simulate(s, g, execution="dataflow", fidelity=fidelity).makespan_s
            assert d <= k * (1 + 1e-12), (name, fidelity, d, k)


def test_kernel_cost_on_a_gpu_unit_is_refused() -> None:
    bad = {
        "compute.tensor.kernel_cost": {
            t: {"seconds": 1e-6, "provenance": "assumed", "source": "x"}
            for t in ("launch", "pipeline_fill_drain", "barrier", "cross_socket_sync")
        }
    }
    with pytest.raises(SpecError) as err:
        load_system("h100_sxm", overrides=bad)
    assert "kernel_cost" in str(err.value)
