"""Request fidelity: a tier's bandwidth and latency measured by the DRAM controller.

The world is ``tests/memsim/world.py``'s tiny system with its host DDR built from
4 x DDR4-3200 (4 x 25.6 GB/s = 102.4 GB/s peak) at ``fidelity: request``, and a PCIe
link fast enough (1 TB/s, 1 us) that the DDR tier, not the link, bounds every access.

DDR4-3200 numbers used below (JESD79-4 speed bin 3200AA, as in
hw_models/presets/dram/ddr4_3200.yaml): tCK 0.625 ns, BL8 = nBL 4 cycles, CL 22,
nRCD 22, nFAW 34, nRFC 560 (350 ns), nREFI 12480 (7.8 us).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw_models import SpecError, System, load_dram_device
from memsim.cli.main import main as cli_main
from memsim.dram import ControllerConfig, simulate_requests, traffic
from memsim.invariants import roofline_lower_bound
from memsim.memo import SimCache
from memsim.request_fidelity import (
    CLASSES,
    DEFAULT_CONFIG,
    calibrate_class,
    device_config,
    resolve_config,
    scaled_device,
    window_requests,
)
from memsim.simulate import make_plan, resolve_placement, simulate
from tests.memsim.world import tiny
from workloads import request_stream
from workloads.graph import Access, Graph, Op, Tensor

DDR4 = load_dram_device("DDR4_3200")
DDR4_CONFIG = device_config(DEFAULT_CONFIG, DDR4)  # bank-group interleaving (RoCoBaRaCh)
TCK = 0.625e-9
PEAK = 4 * 25.6e9
MiB = 1 << 20


def ddr_request(**extra: Any) -> System:
    """The tiny system with a 4 x DDR4-3200 host tier at request fidelity."""
    return tiny(
        **{
            "tiers.ddr.dram": {"device": "ddr4_3200", "count": 4},
            "tiers.ddr.read_bandwidth_bytes_per_s": PEAK,
            "tiers.ddr.fidelity": "request",
            "links.pcie.bandwidth_bytes_per_s": 1e12,
            **extra,
        }
    )


def ddr_bandwidth() -> System:
    """The same system at bandwidth fidelity (spec fraction 1, latency 100 ns)."""
    return ddr_request(**{"tiers.ddr.fidelity": "bandwidth"})


def kv_graph(*, weight_bytes: float = 64 * MiB, kv_bytes: float = 8 * MiB) -> Graph:
    """Decode step of one layer: a GEMV streaming a weight, attention reading a KV
    cache, and a KV append (a decode-phase write to the cache)."""
    tensors = {
        "w": Tensor(name="w", bytes=weight_bytes, kind="weight", layer=0),
        "kv": Tensor(name="kv", bytes=kv_bytes, kind="kv", layer=0),
        "h": Tensor(name="h", bytes=8192, kind="activation"),
    }
    common: dict[str, Any] = {"layer": 0, "phase": "decode", "step": 1}
    gemv = (
        Op(
            name="gemv",
            kind="gemm",
            flops=2.0 * weight_bytes / 2,
            reads=(Access(tensor="w", bytes=weight_bytes), Access(tensor="h", bytes=8192)),
            writes=(Access(tensor="h", bytes=8192),),
            **common,
        ),
    )
    kv_ops = (
        Op(
            name="attn",
            kind="attention",
            flops=2.0 * kv_bytes / 2,
            reads=(Access(tensor="kv", bytes=kv_bytes), Access(tensor="h", bytes=8192)),
            writes=(Access(tensor="h", bytes=8192),),
            **common,
        ),
        Op(
            name="append",
            kind="elementwise",
            flops=0.0,
            reads=(Access(tensor="h", bytes=8192),),
            writes=(Access(tensor="kv", bytes=kv_bytes),),
            **common,
        ),
    )
    if kv_bytes <= 0:
        del tensors["kv"]
        kv_ops = ()
    meta = {"batch": 1, "gen_len": 1, "tokens": 1}
    return Graph(tensors=tensors, ops=gemv + kv_ops, meta=meta)


IN_DDR = {"w": "ddr", "kv": "ddr"}


def in_ddr(graph: Graph) -> dict[str, str]:
    """The explicit placement of the weight and the KV cache (if any) in DDR."""
    return {k: v for k, v in IN_DDR.items() if k in graph.tensors}


def op_row(result: Any, name: str) -> Any:
    ops = result.ops_frame()
    return ops[ops["name"] == name].iloc[0]


def latency(system: System, graph: Graph, name: str, cfg: Any = None) -> float:
    """The latency the plan charges op ``name`` (one pipeline fill)."""
    plan = make_plan(system, graph, policy=in_ddr(graph), dram_config=cfg)
    return float(plan.op_latency[plan.cg.op_names.index(name)])


def ddr_info(result: Any) -> dict[str, Any]:
    info: dict[str, Any] = result.summary()["meta"]["tier_fidelity"]["ddr"]
    return info


# ---- (1) streaming reads run at the controller's streaming fraction x peak -------------


def test_streaming_read_runs_at_measured_fraction_of_peak() -> None:
    graph = kv_graph(kv_bytes=0.0)
    res = simulate(ddr_request(), graph, policy=in_ddr(graph), fidelity="analytic")
    info = ddr_info(res)
    assert info["fidelity"] == "request"
    assert info["controller"]["mapping"] == "RoCoBaRaCh"
    assert info["device"] == "DDR4_3200" and info["count"] == 4
    assert info["peak_bandwidth_bytes_per_s"] == pytest.approx(PEAK)
    cls = info["classes"]["weight_read"]
    # Independent measurement: a plain sequential stream from address 0 of the same
    # length through the same controller (memsim.dram's own generator, not ours).
    ref = simulate_requests(DDR4, traffic.stream(DDR4, window_requests(DDR4)), config=DDR4_CONFIG)
    assert ref.violations == 0
    assert cls["bandwidth_fraction"] == pytest.approx(ref.peak_fraction, rel=0.01)
    # Hand bound: with consecutive bursts on different bank groups (tCCD_S = nBL) the
    # bus is busy except during refresh: 1 - nRFC/nREFI = 1 - 560/12480 = 0.955.
    assert cls["bandwidth_fraction"] == pytest.approx(1 - 560 / 12480, abs=0.02)
    # The op's tier time: 64 MiB / (102.4 GB/s x fraction); achieved <= peak.
    row = op_row(res, "gemv")
    achieved = 64 * MiB / (row["duration_s"] - latency(ddr_request(), graph, "gemv"))
    assert achieved == pytest.approx(cls["bandwidth_fraction"] * PEAK, rel=1e-6)
    assert achieved <= PEAK
    assert row["bound"] == "tier:ddr"
    tiers = res.tiers_frame().set_index("tier")
    assert tiers.loc["ddr", "bytes_read"] / tiers.loc["ddr", "busy_s"] <= PEAK


def test_request_latency_replaces_the_spec_latency() -> None:
    graph = kv_graph(kv_bytes=0.0)
    res = simulate(ddr_request(), graph, policy=in_ddr(graph), fidelity="analytic")
    lat = ddr_info(res)["classes"]["weight_read"]["read_latency_s"]
    # Unloaded stream read: mostly row hits, CL + burst = (22 + 4) x 0.625 ns = 16.25 ns,
    # plus a miss's tRCD now and then; far from the spec's 100 ns.
    assert 16.25e-9 <= lat <= (22 + 22 + 22 + 4) * TCK + 10e-9
    assert latency(ddr_request(), graph, "gemv") == pytest.approx(lat + 1e-6)  # + PCIe's 1 us


# ---- (2) random access is slower than streaming -----------------------------------------


def test_random_class_gets_lower_fraction_than_stream() -> None:
    graph = kv_graph()
    res = simulate(ddr_request(), graph, policy=in_ddr(graph), fidelity="analytic")
    classes = ddr_info(res)["classes"]
    assert set(classes) == {"weight_read", "kv_read", "kv_append"}
    stream, append = classes["weight_read"], classes["kv_append"]
    assert append["run_bytes"] == 256
    # 256 B runs at random rows: every run opens a row in 4 bank groups; at most 4 ACTs per
    # tFAW, each bringing one burst of nBL = 4 cycles: fraction <= 4 x 4 / 34 = 0.47.
    assert append["bandwidth_fraction"] <= 16 / 34 + 0.01
    assert append["bandwidth_fraction"] < 0.6 * stream["bandwidth_fraction"]
    # and the ops see it: same bytes, time in inverse proportion to the fractions
    system = ddr_request()
    work_stream = op_row(res, "gemv")["duration_s"] - latency(system, graph, "gemv")
    work_append = op_row(res, "append")["duration_s"] - latency(system, graph, "append")
    ratio = (work_append / (8 * MiB)) / (work_stream / (64 * MiB))
    assert ratio == pytest.approx(
        stream["bandwidth_fraction"] / append["bandwidth_fraction"], rel=0.01
    )


def test_class_table_covers_every_code() -> None:
    names = [n for n, _ in CLASSES]
    assert len(set(names)) == len(names)
    assert {w for _, w in CLASSES} == {False, True}


# ---- (3) analytic and event agree; (5) never faster than the roofline -------------------


def bound_system(system: System, result: Any) -> System:
    """``system`` with request tiers at their fastest calibrated fraction of the DRAM peak
    (an upper bound on their speed, so the roofline stays a lower bound)."""
    over: dict[str, Any] = {}
    for tier, info in result.meta["tier_fidelity"].items():
        if info["fidelity"] == "request":
            best = max(c["bandwidth_fraction"] for c in info["classes"].values())
            over[f"tiers.{tier}.achievable_bandwidth_fraction"] = best
            over[f"tiers.{tier}.read_bandwidth_bytes_per_s"] = info["peak_bandwidth_bytes_per_s"]
            over[f"tiers.{tier}.fidelity"] = "bandwidth"
    return ddr_request(**over)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    weight_mib=st.integers(1, 96),
    kv_mib=st.integers(0, 32),
    scheduler=st.sampled_from(["frfcfs", "fcfs"]),
    row_policy=st.sampled_from(["open", "closed"]),
)
def test_fidelities_agree_and_respect_roofline(
    weight_mib: int, kv_mib: int, scheduler: str, row_policy: str
) -> None:
    system = ddr_request()
    graph = kv_graph(weight_bytes=weight_mib * MiB, kv_bytes=kv_mib * MiB)
    cfg = {"scheduler": scheduler, "row_policy": row_policy}
    ana = simulate(system, graph, policy=in_ddr(graph), fidelity="analytic", dram_config=cfg)
    evt = simulate(system, graph, policy=in_ddr(graph), fidelity="event", dram_config=cfg)
    assert evt.makespan_s == pytest.approx(ana.makespan_s, rel=0.01)
    assert ana.meta["tier_fidelity"] == evt.meta["tier_fidelity"]
    placement = resolve_placement(system, graph, in_ddr(graph))
    bound = roofline_lower_bound(bound_system(system, ana), graph, placement)
    assert ana.makespan_s >= bound * (1 - 1e-9)
    assert evt.makespan_s >= bound * (1 - 1e-9)


def test_fidelities_agree_on_a_transformer_with_kv_offload() -> None:
    import workloads

    graph = workloads.generate(workloads.load_model("llama2_7b"), batch=2, prompt_len=64, gen_len=2)
    system = ddr_request(**{"tiers.hbm.capacity_bytes": 40e9})
    ana = simulate(system, graph, policy="kv_offload", fidelity="analytic")
    evt = simulate(system, graph, policy="kv_offload", fidelity="event")
    assert evt.makespan_s == pytest.approx(ana.makespan_s, rel=0.01)
    classes = ddr_info(ana)["classes"]
    assert {"kv_read", "kv_write", "kv_append"} <= set(classes)
    placement = resolve_placement(system, graph, "kv_offload")
    assert ana.makespan_s >= roofline_lower_bound(bound_system(system, ana), graph, placement)
    # the invariant module bounds a request-fidelity tier by its physical peak by itself
    assert evt.makespan_s >= roofline_lower_bound(system, graph, placement)


def test_streamed_weights_use_stream_calibration_for_the_copy() -> None:
    # stream_weights: w lives in DDR and is copied to HBM by DMA before the op.
    graph = kv_graph(kv_bytes=0.0)
    system = ddr_request()
    res = simulate(system, graph, policy="stream_weights", fidelity="analytic")
    plan = make_plan(system, graph, policy="stream_weights")
    cal = plan.tier_calibration["ddr"]
    job = plan.jobs[0]
    ddr_res = plan.resource_labels().index("tier:ddr")
    stream = cal.stream(write=False)
    assert job.fetch_demand[ddr_res] == pytest.approx(
        64 * MiB / (PEAK * stream.bandwidth_fraction), rel=1e-9
    )
    assert res.makespan_s > 64 * MiB / PEAK


# ---- (4) determinism ----------------------------------------------------------------------


def test_same_inputs_identical_results_also_interleaved() -> None:
    graph = kv_graph()
    system = ddr_request()

    cache = SimCache()  # shared by the runs: a calibration made for one is reused

    def run(cfg: dict[str, Any] | None) -> tuple[float, list[float], str]:
        res = simulate(system, graph, policy=in_ddr(graph), dram_config=cfg, cache=cache)
        meta = json.dumps(res.summary()["meta"]["tier_fidelity"], sort_keys=True)
        return res.makespan_s, res.op_column("end_s").tolist(), meta

    a1 = run(None)
    b1 = run({"scheduler": "fcfs"})
    a2 = run(None)
    cache.clear()  # recalibrating gives the same numbers
    b2 = run({"scheduler": "fcfs"})
    a3 = run(None)
    assert a1 == a2 == a3
    assert b1 == b2
    assert a1 != b1


# ---- (6) controller settings move results the expected way --------------------------------


def test_fcfs_is_slower_than_frfcfs_on_random_appends() -> None:
    graph = kv_graph(weight_bytes=1 * MiB, kv_bytes=16 * MiB)
    fr = simulate(ddr_request(), graph, policy=in_ddr(graph), dram_config={"scheduler": "frfcfs"})
    fc = simulate(ddr_request(), graph, policy=in_ddr(graph), dram_config={"scheduler": "fcfs"})
    f_fr = ddr_info(fr)["classes"]["kv_append"]["bandwidth_fraction"]
    f_fc = ddr_info(fc)["classes"]["kv_append"]["bandwidth_fraction"]
    # FCFS lets only the oldest request issue: one run's row at a time, no overlap of
    # ACTs across banks, so far below FR-FCFS's bank-parallel schedule.
    assert f_fc < 0.5 * f_fr
    assert op_row(fc, "append")["duration_s"] > 2 * op_row(fr, "append")["duration_s"]
    assert fc.makespan_s > fr.makespan_s


def test_closed_page_adds_activation_latency_to_streams() -> None:
    graph = kv_graph(kv_bytes=0.0)
    op_ = simulate(ddr_request(), graph, policy=in_ddr(graph), dram_config={"row_policy": "open"})
    cl = simulate(ddr_request(), graph, policy=in_ddr(graph), dram_config={"row_policy": "closed"})
    lo = ddr_info(op_)["classes"]["weight_read"]["read_latency_s"]
    lc = ddr_info(cl)["classes"]["weight_read"]["read_latency_s"]
    # open page: most unloaded stream reads hit the open row (CL + burst); closed page:
    # every read activates first, + tRCD = 22 x 0.625 ns = 13.75 ns (at most + tRP too).
    assert lc - lo == pytest.approx(22 * TCK, abs=5 * TCK)
    d_lat = latency(ddr_request(), graph, "gemv", {"row_policy": "closed"}) - latency(
        ddr_request(), graph, "gemv", {"row_policy": "open"}
    )
    assert d_lat == pytest.approx(lc - lo)
    d_time = op_row(cl, "gemv")["duration_s"] - op_row(op_, "gemv")["duration_s"]
    f_open = ddr_info(op_)["classes"]["weight_read"]["bandwidth_fraction"]
    f_closed = ddr_info(cl)["classes"]["weight_read"]["bandwidth_fraction"]
    assert d_time == pytest.approx(d_lat + 64 * MiB / PEAK * (1 / f_closed - 1 / f_open))


def test_bandwidth_fidelity_is_untouched() -> None:
    graph = kv_graph()
    res = simulate(ddr_bandwidth(), graph, policy=in_ddr(graph), fidelity="analytic")
    info = ddr_info(res)
    assert info["fidelity"] == "bandwidth"
    assert info["bandwidth_fraction"] == 1.0
    assert info["latency_s"] == pytest.approx(100e-9)
    row = op_row(res, "gemv")
    assert row["duration_s"] == pytest.approx(100e-9 + 1e-6 + 64 * MiB / PEAK)


# ---- configuration and devices -------------------------------------------------------------


def test_dram_config_forms_and_errors() -> None:
    assert resolve_config(None) == DEFAULT_CONFIG
    assert resolve_config({"scheduler": "fcfs"}).scheduler == "fcfs"
    assert resolve_config(["row_policy=closed", "read_queue_size=8"]).read_queue_size == 8
    # the mapping follows the device's standard unless given
    hbm3 = load_dram_device("HBM3")
    fcfs = resolve_config({"scheduler": "fcfs"})
    assert device_config(fcfs, DDR4).mapping == "RoCoBaRaCh"
    assert device_config(fcfs, hbm3).mapping == "RoRaBaChCo"
    assert device_config(fcfs, hbm3).scheduler == "fcfs"
    chosen = resolve_config(["mapping=ChRaBaRoCo"])
    assert device_config(chosen, DDR4).mapping == "ChRaBaRoCo"
    assert device_config(ControllerConfig(mapping="RoBaRaCoCh"), DDR4).mapping == "RoBaRaCoCh"
    cfg = ControllerConfig(scheduler="fcfs")
    assert resolve_config(cfg) is cfg
    with pytest.raises(SpecError) as err:
        resolve_config({"schedulr": "fcfs"})
    assert "dram_config.schedulr" in str(err.value)
    with pytest.raises(SpecError) as err:
        resolve_config({"scheduler": "fastest"})
    assert "frfcfs" in str(err.value)
    with pytest.raises(SpecError) as err:
        resolve_config(["bogus=1"])
    assert "dram_config.bogus" in str(err.value)
    with pytest.raises(SpecError) as err:
        resolve_config(["scheduler"])
    assert "key=value" in str(err.value)
    with pytest.raises(SpecError):
        graph = kv_graph()
        simulate(ddr_request(), graph, policy=in_ddr(graph), dram_config={"row_policy": "ajar"})


def test_request_fidelity_needs_a_dram_attachment() -> None:
    with pytest.raises(SpecError) as err:
        tiny(**{"tiers.ddr.fidelity": "request"})
    assert "dram" in str(err.value)


def test_scaled_device_keeps_ns_timings() -> None:
    # T4/FlexGen's host runs DDR4-3200 parts at 2666 MT/s: tCK = 2 / 2666e6 = 0.750 ns.
    slow = scaled_device(DDR4, 2666)
    assert slow.timing.tCK_ns == pytest.approx(0.7502, rel=1e-3)
    assert slow.timing.nBL == 4
    # tRCD 13.75 ns -> ceil(13.75 / 0.75019) = 19 cycles; tREFI 7.8 us -> floor(10397.4)
    assert slow.timing.nRCD == 19
    assert slow.timing.nREFI == 10397
    assert slow.peak_bandwidth_bytes_per_s == pytest.approx(8 * 2666e6)
    assert scaled_device(DDR4, None) is DDR4
    assert scaled_device(DDR4, 3200) is DDR4
    # a slower clock never makes a stream faster in bytes/s
    fast = calibrate_class(DDR4, config=DDR4_CONFIG, write=False, run_bytes=1 << 20)
    lazy = calibrate_class(slow, config=DDR4_CONFIG, write=False, run_bytes=1 << 20)
    assert lazy.bandwidth_fraction * slow.peak_bandwidth_bytes_per_s < (
        fast.bandwidth_fraction * DDR4.peak_bandwidth_bytes_per_s
    )


# ---- LLM request streams replay as DRAM traces ----------------------------------------------


@pytest.mark.parametrize("fmt", ["ramulator", "dramsim3", "stl"])
def test_llm_request_stream_replays_without_violations(
    fmt: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = kv_graph(weight_bytes=64 * 1024, kv_bytes=16 * 1024)
    stream = request_stream(graph, in_ddr(graph), tier="ddr", line_bytes=64)
    # w: 64 KiB = 1024 lines; kv: 16 KiB read + 16 KiB appended = 512 lines
    assert len(stream) == 1024 + 256 + 256
    path = stream.write(tmp_path / f"llm.{fmt}", format=fmt)
    code = cli_main(
        [
            *("dram", "--device", "ddr4_3200", "--trace", str(path)),
            *("--trace-format", fmt, "--format", "json"),
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == len(stream)
    assert out["writes"] == 256
    assert out["checked"] is True
    assert out["violations"] == 0
    assert np.isfinite(out["bandwidth_gbps"]) and out["bandwidth_gbps"] > 0


def test_request_tier_without_traffic_reports_no_calibration() -> None:
    # everything fits in HBM: the DDR tier at request fidelity sees no access
    graph = kv_graph(weight_bytes=1 * MiB)
    res = simulate(ddr_request(), graph, fidelity="analytic")
    info = ddr_info(res)
    assert info == {
        "fidelity": "request",
        "bandwidth_fraction": None,
        "latency_s": None,
        "classes": {},
    }
    assert res.makespan_s == simulate(ddr_bandwidth(), graph, fidelity="analytic").makespan_s


# ---- per-tier controller settings from the system YAML -------------------------------


def test_tier_yaml_controller_settings_apply_and_yield_to_explicit_ones() -> None:
    graph = kv_graph()
    closed_yaml = ddr_request(**{"tiers.ddr.dram_controller": {"row_policy": "closed"}})
    from_yaml = simulate(closed_yaml, graph, policy=in_ddr(graph), fidelity="analytic")
    from_arg = simulate(
        ddr_request(), graph, policy=in_ddr(graph), fidelity="analytic",
        dram_config={"row_policy": "closed"},
    )  # fmt: skip
    assert ddr_info(from_yaml)["controller"]["row_policy"] == "closed"
    assert from_yaml.makespan_s == from_arg.makespan_s
    # an explicit dram_config key wins over the tier's YAML
    back = simulate(
        closed_yaml, graph, policy=in_ddr(graph), fidelity="analytic",
        dram_config={"row_policy": "open"},
    )  # fmt: skip
    plain = simulate(ddr_request(), graph, policy=in_ddr(graph), fidelity="analytic")
    assert ddr_info(back)["controller"]["row_policy"] == "open"
    assert back.makespan_s == plain.makespan_s


def test_tier_yaml_controller_errors_name_the_tier() -> None:
    graph = kv_graph()
    bad = ddr_request(**{"tiers.ddr.dram_controller": {"row_polcy": "closed"}})
    with pytest.raises(SpecError, match=r"tiers\.ddr\.dram_controller\.row_polcy"):
        simulate(bad, graph, policy=in_ddr(graph), fidelity="analytic")
    with pytest.raises(SpecError, match="only used with `fidelity: request`"):
        ddr_request(
            **{
                "tiers.ddr.fidelity": "bandwidth",
                "tiers.ddr.dram_controller": {"row_policy": "open"},
            }
        )
