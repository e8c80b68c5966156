"""SambaNova SN40L: fused streaming dataflow vs kernel-by-kernel (Prabhakar et al., MICRO 2024).

The paper's abstract reports "speedups ranging from 2x to 13x on various benchmarks
running on eight RDU sockets compared with an unfused baseline". memsim runs the
``sn40l`` preset (one socket) with ``--execution dataflow`` (a decoder's ops fused
into one pipelined group, intermediates kept in the PMUs' SRAM) and with
``--execution kernel`` (one op at a time, every intermediate through HBM), on a
Llama-2-7B prefill and decode step, and takes the larger speed-up.

memsim charges a dataflow unit's per-kernel cost (``kernel_launch_overhead_s``:
configuration load and synchronisation) serially, once per kernel call: per op
kernel by kernel, per fused group in dataflow execution. SambaNova publishes no
figure for it, so the preset carries 0 s and the case's figure is memsim's at 0 s.
The case fails there, for known reasons:

* with no per-kernel cost, the only thing fusion removes in memsim is the
  intermediates' HBM traffic, small next to the weights at batch 1;
* no 8-socket preset (the paper's figure is on eight sockets, where each unfused
  kernel also synchronises across sockets).

The details show the speed-ups with an *assumed* 10, 30 and 50 us per kernel call
(388 kernels per Llama-2-7B step): the paper's lower end, 2x, needs about 30 us.
"""

from __future__ import annotations

import memsim
import workloads
from hw_models import load_system
from memsim.graph_fit import fit_graph
from validation.core import Outcome, case

SOURCE = (
    'Prabhakar et al., "SambaNova SN40L: Scaling the AI Memory Wall with Dataflow and '
    'Composition of Experts", MICRO 2024 (arXiv 2405.07518), Abstract '
    '("speedups ranging from 2x to 13x ... on eight RDU sockets compared with an '
    'unfused baseline")'
)
FITTED = (
    "none fitted; the sn40l preset's per-kernel cost is 0 s (unpublished); "
    "sensitivity to an assumed 10, 30 and 50 us per kernel call in the note"
)


def _speedups(overhead_s: float) -> dict[str, float]:
    sys_ = load_system("sn40l", overrides={"compute.pcu.kernel_launch_overhead_s": overhead_s})
    cfg = workloads.load_model("llama2_7b")
    graphs = {
        "prefill b1 x 512": workloads.prefill(cfg, batch=1, prompt_len=512),
        "decode b1 @ 2048": workloads.decode(cfg, batch=1, context_len=2048),
    }
    out = {}
    for name, g in graphs.items():
        g = fit_graph(sys_, g)
        k = memsim.simulate(sys_, g, execution="kernel", fidelity="analytic")
        d = memsim.simulate(sys_, g, execution="dataflow", fidelity="analytic")
        out[name] = k.makespan_s / d.makespan_s
    return out


@case(
    "sn40l_dataflow_vs_kernel",
    title="SN40L fused dataflow runs 2-13x faster than kernel by kernel",
    source=SOURCE,
    quantity="speed-up, dataflow over kernel-by-kernel (largest of Llama-2-7B prefill, decode)",
    unit="x",
    paper=2.0,
    tolerance="order",
    fitted=FITTED,
)
def dataflow_vs_kernel() -> Outcome:
    base = _speedups(0.0)
    sens = {f"{us} us/kernel": _speedups(us * 1e-6) for us in (10, 30, 50)}
    best = max(base.values())
    note = (
        "one socket (no 8-socket preset); "
        + ", ".join(f"{k} {v:.2f}x" for k, v in base.items())
        + "; with an assumed per-kernel cost: "
        + "; ".join(
            f"{c}: " + ", ".join(f"{k} {v:.2f}x" for k, v in s.items()) for c, s in sens.items()
        )
        + ". At the preset's 0 s per kernel fusion only removes the intermediates' HBM "
        "traffic"
    )
    return Outcome(
        memsim=best,
        note=note,
        passed=2.0 <= best <= 13.0,
        criterion="inside the paper's 2-13x range",
        details={"speedups": base, "sensitivity": sens},
    )
