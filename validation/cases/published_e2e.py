"""Held-out end-to-end figures on GPUs whose presets were fitted on published microbenchmarks.

``rtx_4090_calibrated`` is fitted on published GEMM and copy figures only
(``hw_models/presets/calibration/rtx_4090/published.csv``; docs/calibration.md). These cases
compare it with a published end-to-end run that no fit reads: llama.cpp's ``llama-bench`` on
an RTX 4090 with CodeLlama-7B in F16 (G. Gerganov, llama.cpp pull request #4766, comment of
2024-01-10): ``pp 512`` 11048.22 t/s (one 512-token prefill: 46.34 ms) and ``tg 128``
61.03 t/s (128 tokens generated from an empty context: 16.39 ms per token).

What the comparison depends on:

* the model: Llama-2-7B stands in for CodeLlama-7B (the same 32 layers x 4096 hidden, 11008
  FFN, 32 heads; CodeLlama's vocabulary is 32016 instead of 32000); F16 and bf16 move the
  same bytes;
* the stack: llama.cpp runs its own CUDA kernels with RMSNorm, RoPE and SiLU x mul each one
  kernel, cuBLAS GEMMs for the prefill and its own matrix-vector kernels for decode. The
  ``fused`` engine profile (one kernel per norm, RoPE and activation) is the closest shipped
  profile and is the one reported; ``cuda_graphs`` (PyTorch's unfused ops) and the
  uncalibrated preset are in the details. llama.cpp of January 2024 launched kernels from
  the host without CUDA graphs; the profile assumes graphs (its launch costs are the H200's);
* decode: ``tg 128`` averages 128 steps at contexts 0-127; memsim prices one step at
  context 64 (the decode time is linear in the context).
"""

from __future__ import annotations

from typing import Any

import hw_models
import memsim
import workloads
from hw_models.engine_profile import with_engine
from validation.core import Outcome, case

SOURCE = (
    "llama.cpp pull request #4766 ('llama : ggml-backend integration'), comment by "
    "G. Gerganov, 2024-01-10: llama-bench, NVIDIA GeForce RTX 4090, codellama-7b F16 "
    "(12.55 GiB, 6.74 B): pp 512 11048.22 t/s, tg 128 61.03 t/s; "
    "https://github.com/ggml-org/llama.cpp/pull/4766"
)
FITTED = (
    "none fitted to this figure: rtx_4090_calibrated is fitted on published GEMM and copy "
    "microbenchmarks only (torch-performance-test-data #78, device-benchmarks); parameters "
    "without published figures are carried from h200_sxm_calibrated"
)
PP512_S = 512 / 11048.22
TG128_S = 1 / 61.03
ENGINE = "fused"


def _time(system_name: str, engine: str | None, phase: str) -> float:
    system = hw_models.load_system(system_name)
    if engine is not None:
        system = with_engine(system, engine)
    cfg = workloads.load_model("llama2_7b")
    if phase == "prefill":
        graph = workloads.prefill(cfg, batch=1, prompt_len=512)
    else:
        graph = workloads.decode(cfg, batch=1, context_len=64)
    return float(memsim.simulate(system, graph, fidelity="analytic").makespan_s)


def _outcome(phase: str, published: float) -> Outcome:
    details: dict[str, Any] = {"published_s": published}
    for name, system, engine in (
        ("calibrated_fused", "rtx_4090_calibrated", ENGINE),
        ("calibrated_cuda_graphs", "rtx_4090_calibrated", "cuda_graphs"),
        ("uncalibrated", "rtx_4090", None),
    ):
        t = _time(system, engine, phase)
        details[name] = {"memsim_s": t, "error": t / published - 1.0}
    main = details["calibrated_fused"]["memsim_s"]
    others = ", ".join(
        f"{k} {details[k]['error'] * 100:+.1f} %"
        for k in ("calibrated_cuda_graphs", "uncalibrated")
    )
    note = (
        f"rtx_4090_calibrated, engine {ENGINE}: {main * 1e3:.2f} ms against "
        f"{published * 1e3:.2f} ms "
        f"({(main / published - 1) * 100:+.1f} %); {others}"
    )
    return Outcome(memsim=main, note=note, details=details)


@case(
    "rtx4090_llamacpp_ttft",
    title="Llama-7B F16 prefill of 512 tokens on an RTX 4090 (llama.cpp, published)",
    source=SOURCE,
    quantity="time of one 512-token prefill (pp 512), rtx_4090_calibrated, fused profile",
    unit="s",
    paper=PP512_S,
    tolerance="close",
    fitted=FITTED,
)
def ttft() -> Outcome:
    return _outcome("prefill", PP512_S)


@case(
    "rtx4090_llamacpp_tpot",
    title="Llama-7B F16 decode step on an RTX 4090 (llama.cpp tg 128, published)",
    source=SOURCE,
    quantity="time per generated token (tg 128), rtx_4090_calibrated, fused profile",
    unit="s",
    paper=TG128_S,
    tolerance="close",
    fitted=FITTED,
)
def tpot() -> Outcome:
    return _outcome("decode", TG128_S)
