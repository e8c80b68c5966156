"""SambaNova SN40L (Prabhakar et al., MICRO 2024): fusion, model switching, Samba-CoE.

Three cases on the ``sn40l_8s`` preset (the paper's SN40L Node: eight sockets and a host,
models tensor-parallel over the eight):

* ``sn40l_dataflow_vs_kernel``: the abstract's "speedups ranging from 2x to 13x ... on
  eight RDU sockets compared with an unfused baseline". memsim runs Llama-2-7B prefill
  (4K prompt) and decode (4K context), the paper's ``llama7B-4k`` benchmarks (Table III),
  with ``--execution dataflow`` (a decoder layer fused into one kernel call,
  intermediates in the PMUs) and ``--execution kernel`` (one op per kernel, every
  intermediate through HBM), and takes the larger speed-up. What fusion removes in
  memsim: the intermediates' HBM traffic, the sum-vs-max of a pipeline's resources, and
  the per-kernel cost of a dataflow unit, term by term (``kernel_cost`` in the preset:
  launch 10 us, pipeline fill/drain 2 us, whole-chip barrier 1 us, cross-socket
  synchronisation 5 us per kernel call). The paper publishes the mechanism (Sec. IV-D)
  but no figure for any term, so all four are *assumed*; the details sweep them x0-x4,
  drop each in turn, and vary the (also unpublished) P2P bandwidth.
* ``sn40l_model_switching``: Table V, model switching time 15x faster than DGX H100.
  memsim copies one Llama-2-7B expert (TP8 shards) from DDR into an HBM slot on
  ``sn40l_8s`` and from host DDR over PCIe into an HBM slot on ``dgx_h100``.
* ``sn40l_coe_end_to_end``: Table V, overall speed-up 3.7x over DGX H100 at batch 8,
  20 output tokens, 100 experts (beyond the ~50 that fit in the DGX's HBM, so experts
  come from host DRAM; at 150 the DGX's 2 TB host memory overflows, as the paper
  says): the router's batch-8 prefill, then per prompt a switch to a different expert
  and the expert's generation, one after another (Sec. VI-C).
"""

from __future__ import annotations

from typing import Any

import memsim
import workloads
from hw_models import System, load_system
from memsim.graph_fit import fit_graph
from memsim.policies.base import CapacityError
from validation.core import Outcome, case
from workloads.graph import Graph

PAPER = (
    'Prabhakar et al., "SambaNova SN40L: Scaling the AI Memory Wall with Dataflow and '
    'Composition of Experts", MICRO 2024 (arXiv 2405.07518)'
)
TERMS = ("launch", "pipeline_fill_drain", "barrier", "cross_socket_sync")
NODE = "sn40l_8s"
DGX = "dgx_h100"
MODEL = "llama2_7b"  # the paper's benchmark and every Samba-CoE expert (Sec. II)


def _kernel_cost_overrides(system: System, scale: float, drop: str | None = None) -> dict:
    kc = system.compute["pcu"].kernel_cost
    assert kc is not None
    return {
        f"compute.pcu.kernel_cost.{t}.seconds": (
            0.0 if t == drop else getattr(kc, t).seconds * scale
        )
        for t in TERMS
    }


def _graphs(system: System) -> dict[str, Graph]:
    cfg = workloads.load_model(MODEL)
    tp = system.devices
    graphs = {
        "prefill b1 x 4096": workloads.prefill(cfg, batch=1, prompt_len=4096, tp=tp),
        "decode b1 @ 4096": workloads.decode(cfg, batch=1, context_len=4096, tp=tp),
    }
    return {k: fit_graph(system, g) for k, g in graphs.items()}


def _speedups(
    graphs: dict[str, Graph], overrides: dict[str, Any] | None = None, *, system: str = NODE
) -> dict[str, float]:
    s = load_system(system, overrides=overrides or {})
    out = {}
    for name, g in graphs.items():
        k = memsim.simulate(s, g, execution="kernel", fidelity="analytic")
        d = memsim.simulate(s, g, execution="dataflow", fidelity="analytic")
        out[name] = k.makespan_s / d.makespan_s
    return out


@case(
    "sn40l_dataflow_vs_kernel",
    title="SN40L fused dataflow runs 2-13x faster than kernel by kernel on 8 sockets",
    source=PAPER + ', Abstract ("speedups ranging from 2x to 13x ... on eight RDU sockets '
    'compared with an unfused baseline"), Sec. VI-A, Fig. 10',
    quantity="speed-up, dataflow over kernel-by-kernel (largest of Llama-2-7B 4K prefill, "
    "decode) on sn40l_8s",
    unit="x",
    paper=2.0,
    tolerance="order",
    fitted="none fitted; the four per-kernel terms and the P2P bandwidth are assumed "
    "(unpublished), set from the mechanism before comparing; sensitivity x0-x4 in the details",
)
def dataflow_vs_kernel() -> Outcome:
    node = load_system(NODE)
    graphs = _graphs(node)  # the per-kernel terms and link bandwidth leave the graphs alone
    base = _speedups(graphs)
    scaled = {
        f"terms x{k:g}": _speedups(graphs, _kernel_cost_overrides(node, k)) for k in (0, 0.25, 4)
    }
    dropped = {f"without {t}": _speedups(graphs, _kernel_cost_overrides(node, 1, t)) for t in TERMS}
    p2p = {
        f"P2P {bw} GB/s": _speedups(graphs, {"links.p2p.bandwidth_bytes_per_s": bw * 1e9})
        for bw in (32, 256)
    }
    one_socket = _speedups(_graphs(load_system("sn40l")), system="sn40l")
    best = max(base.values())
    lo = min(max(v.values()) for v in scaled.values())
    hi = max(max(v.values()) for v in scaled.values())

    def fmt(d: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.2f}x" for k, v in d.items())

    note = (
        f"8 sockets (TP8): {fmt(base)}; one socket (sn40l): {fmt(one_socket)}. "
        f"With all four assumed per-kernel terms scaled x0-x4 the larger speed-up runs "
        f"{lo:.2f}-{hi:.2f}x (x0: only the intermediates' HBM traffic and the pipeline's "
        f"overlap remain: {max(scaled['terms x0'].values()):.2f}x); "
        + "; ".join(f"{k}: {max(v.values()):.2f}x" for k, v in {**dropped, **p2p}.items())
        + ". Decode gains most: its kernels are short, so per-kernel costs dominate "
        "kernel by kernel, as the paper reports (Sec. VI-A)"
    )
    return Outcome(
        memsim=best,
        note=note,
        passed=2.0 <= best <= 13.0,
        criterion="inside the paper's 2-13x range",
        details={
            "speedups": base,
            "one_socket": one_socket,
            "sensitivity": {**scaled, **dropped, **p2p},
        },
    )


def _expert(system: System, *, prompt: int, gen: int) -> Graph:
    cfg = workloads.load_model(MODEL)
    tp = system.devices
    g = (
        workloads.decode(cfg, batch=1, context_len=prompt, tp=tp)
        if gen == 0
        else workloads.generate(cfg, batch=1, prompt_len=prompt, gen_len=gen, tp=tp)
    )
    return fit_graph(system, g)


def _policy(system: System) -> dict[str, str]:
    # stored experts in the DDR tier (the SN40L's own DDR, the DGX's host DDR), slots in HBM
    return {"*/stored": "ddr", "slot*": "hbm"}


def _switch_s(system: System) -> float:
    e = _expert(system, prompt=64, gen=0)
    g = workloads.composition_of_experts([e, e], schedule=[0, 1], names=["a", "b"], slots=1)
    r = memsim.simulate(system, g, policy=_policy(system), fidelity="analytic")
    ops = r.ops_frame()
    sw = ops[ops["phase"] == "switch"]
    return float((sw["end_s"] - sw["start_s"]).mean())


@case(
    "sn40l_model_switching",
    title="SN40L Node switches experts 15x faster than DGX H100",
    source=PAPER + ", Table V (Model Switching Time: 31x vs DGX A100, 15x vs DGX H100) "
    "and Sec. VI-C (over 1 TB/s DDR-to-HBM on the Node; DGX H100 64 GB/s host-to-GPU)",
    quantity="one Llama-2-7B expert switch (TP8), dgx_h100 time / sn40l_8s time",
    unit="x",
    paper=15.0,
    tolerance="order",
    fitted="none fitted; both presets as shipped (datasheet bandwidths); the paper's "
    "single-link DGX assumption shown in the details",
)
def model_switching() -> Outcome:
    node, dgx = load_system(NODE), load_system(DGX)
    sn, gpu = _switch_s(node), _switch_s(dgx)
    # the paper's estimate: the whole DGX H100 fed by one 64 GB/s host-to-GPU link
    one_link = load_system(DGX, overrides={"links.pcie.bandwidth_bytes_per_s": 64e9 / dgx.devices})
    paper_like = _switch_s(one_link)
    w = _expert(node, prompt=64, gen=0).tensor_bytes("weight") * node.devices
    note = (
        f"one {w / 1e9:.1f} GB expert: sn40l_8s {sn * 1e3:.2f} ms (8 sockets x DDR 200 GB/s "
        f"x 0.85 = {8 * 0.17:.2f} TB/s), dgx_h100 {gpu * 1e3:.2f} ms (each GPU's own "
        f"PCIe Gen5 x16, 64 GB/s x 0.8, host DDR 614 GB/s x 0.8 shared). The paper's 15-16x "
        f"is its aggregate >1 TB/s over 64 GB/s for the whole DGX (Sec. VI-C); with one "
        f"64 GB/s link for all eight GPUs memsim gives {paper_like / sn:.1f}x. The gap is the "
        "baseline's host-to-GPU bandwidth, not the SN40L side"
    )
    return Outcome(
        memsim=gpu / sn,
        note=note,
        details={
            "sn40l_8s_s": sn,
            "dgx_h100_s": gpu,
            "dgx_one_64GBps_link_s": paper_like,
            "speedup_one_link": paper_like / sn,
        },
    )


def _coe_latency(system: System, *, execution: str, prompt: int, experts: int = 100) -> dict:
    """Router (batch 8 prefill) + 8 x (switch to a new expert + 20-token generation)."""
    cfg = workloads.load_model(MODEL)
    router = fit_graph(system, workloads.prefill(cfg, batch=8, prompt_len=prompt, tp=8))
    r_router = memsim.simulate(system, router, execution=execution, fidelity="analytic")
    e = _expert(system, prompt=prompt, gen=20)
    names = [f"e{i}" for i in range(experts)]
    g = workloads.composition_of_experts(
        [e] * experts, schedule=list(range(8)), names=names, slots=8
    )
    r = memsim.simulate(system, g, policy=_policy(system), execution=execution, fidelity="analytic")
    ops = r.ops_frame()
    switch = float(
        (ops[ops["phase"] == "switch"]["end_s"] - ops[ops["phase"] == "switch"]["start_s"]).sum()
    )
    return {
        "router_s": r_router.makespan_s,
        "switch_s": switch,
        "experts_s": r.makespan_s - switch,
        "total_s": r_router.makespan_s + r.makespan_s,
    }


@case(
    "sn40l_coe_end_to_end",
    title="Samba-CoE on the SN40L Node runs 3.7x faster than on DGX H100 (over 50 experts)",
    source=PAPER + ", Table V (Overall Speedup, BS = 8, 20 output tokens: 3.7x vs DGX H100) "
    "and Sec. VI-C (router, copy, expert run sequentially per prompt; TP8)",
    quantity="CoE latency, batch 8, 20 output tokens, 100 experts: dgx_h100 / sn40l_8s",
    unit="x",
    paper=3.7,
    tolerance="order",
    quick=False,
    fitted="none fitted; prompt length unpublished (assumed 128 tokens, 512 in the "
    "details); per-kernel terms and P2P latency of sn40l_8s assumed (0.5 us in the details)",
)
def coe_end_to_end() -> Outcome:
    node, dgx = load_system(NODE), load_system(DGX)
    # Table V: "> 150 Experts: DGX OOM"; memsim's capacity check at 150 experts
    e = _expert(dgx, prompt=32, gen=0)
    many = workloads.composition_of_experts(
        [e] * 150, schedule=[0], names=[f"e{i}" for i in range(150)], slots=1
    )
    try:
        memsim.simulate(dgx, many, policy=_policy(dgx), fidelity="analytic")
        oom = "dgx_h100 holds 150 experts"
    except CapacityError as err:
        oom = f"150 experts on dgx_h100: {err.problems[0].message}"
    runs = {}
    for prompt in (128, 512):
        sn = _coe_latency(node, execution="dataflow", prompt=prompt)
        gpu = _coe_latency(dgx, execution="kernel", prompt=prompt)
        runs[prompt] = {
            "sn40l_8s": sn,
            "dgx_h100": gpu,
            "speedup": gpu["total_s"] / sn["total_s"],
            "expert_speedup": gpu["experts_s"] / sn["experts_s"],
        }
    base = runs[128]
    sn, gpu = base["sn40l_8s"], base["dgx_h100"]
    # the assumed P2P step latency sets the fused TP8 collectives' cost on the SN40L
    fast_p2p = load_system(NODE, overrides={"links.p2p.latency_s": 0.5e-6})
    sn_fast = _coe_latency(fast_p2p, execution="dataflow", prompt=128)
    fast_speedup = gpu["total_s"] / sn_fast["total_s"]
    note = (
        f"prompt 128: sn40l_8s {sn['total_s'] * 1e3:.0f} ms (router {sn['router_s'] * 1e3:.1f}, "
        f"switches {sn['switch_s'] * 1e3:.0f}, experts {sn['experts_s'] * 1e3:.0f}), dgx_h100 "
        f"{gpu['total_s'] * 1e3:.0f} ms (router {gpu['router_s'] * 1e3:.1f}, switches "
        f"{gpu['switch_s'] * 1e3:.0f}, experts {gpu['experts_s'] * 1e3:.0f}); expert runs alone "
        f"{base['expert_speedup']:.2f}x (paper, BS=1 and 20 tokens: 1.5x); prompt 512: "
        f"{runs[512]['speedup']:.2f}x; P2P step latency 0.5 us instead of the assumed 2 us: "
        f"{fast_speedup:.2f}x. Two gaps: the switches (memsim's DGX copies over eight PCIe "
        "Gen5 ports at once, the paper's estimate over one 64 GB/s: sn40l_model_switching), "
        "and the expert runs (memsim's dgx_h100 is uncalibrated and reaches 90 % of its "
        "3.35 TB/s in decode, where the paper says H100 implementations rarely pass 50 %, "
        "Sec. VI-B; the SN40L's 1.8 TB/s then loses). "
        f"{oom} (paper: DGX OOM at 150)"
    )
    details: dict[str, Any] = {str(k): v for k, v in runs.items()}
    details["dgx_150_experts"] = oom
    details["speedup_p2p_latency_0.5us"] = fast_speedup
    return Outcome(memsim=base["speedup"], note=note, details=details)
