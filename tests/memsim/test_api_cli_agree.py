"""The CLI and the Python API run the same model: the same inputs give the same numbers.

Every modelling choice (the fused-attention buffer, the execution model, the
placement) is made by the model from the system and the graph, never by a front end.
"""

from __future__ import annotations

import json
import shlex

import pytest

import workloads
from hw_models import load_system
from memsim import simulate
from memsim.cli.main import main
from memsim.uncertainty import calibration_fields

CASES = [
    # (CLI arguments, the same run through the API)
    (
        shlex.split("--batch 2 --prompt 256 --gen 2 --fidelity analytic"),
        dict(system="h100_sxm", model="llama2_7b", batch=2, prompt_len=256, gen_len=2),
        dict(fidelity="analytic"),
    ),
    (
        shlex.split(
            "--system dgx_h100 --model llama2_13b --batch 1 --prompt 128 --gen 2 --tp 2 "
            "--policy kv_offload"
        ),
        dict(system="dgx_h100", model="llama2_13b", batch=1, prompt_len=128, gen_len=2, tp=2),
        dict(policy="kv_offload"),
    ),
    (
        shlex.split(
            "--system sn40l --batch 1 --prompt 64 --gen 2 --attention fused_fa2 --dtype fp16"
        ),
        dict(
            system="sn40l",
            model="llama2_7b",
            batch=1,
            prompt_len=64,
            gen_len=2,
            attention="fused_fa2",
            dtype="fp16",
        ),
        {},
    ),
    (  # LLM in a flash: windowed FFN loading with bundled reads on the M1 Max CPU
        shlex.split(
            "--system m1_max_cpu --model opt_6_7b --batch 1 --prompt 16 --gen 2 --dtype fp32 "
            "--policy flash_ffn_bundled --ffn-sparsity 0.1,5,0.7 --fidelity analytic"
        ),
        dict(
            system="m1_max_cpu",
            model="opt_6_7b",
            batch=1,
            prompt_len=16,
            gen_len=2,
            dtype="fp32",
            ffn_sparsity=workloads.FFNSparsity(active_fraction=0.1, window=5, persistence=0.7),
        ),
        dict(policy="flash_ffn_bundled", fidelity="analytic"),
    ),
]


@pytest.mark.parametrize(("argv", "build", "options"), CASES)
def test_cli_json_equals_api_summary(
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    build: dict[str, object],
    options: dict[str, object],
) -> None:
    assert main(["run", *argv, "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    kw = dict(build)
    system = load_system(str(kw.pop("system")))
    graph = workloads.generate(workloads.load_model(str(kw.pop("model"))), **kw)  # type: ignore[arg-type]
    summary = simulate(system, graph, **options).summary()  # type: ignore[arg-type]
    # the CLI's JSON adds calibration and intervals (memsim.uncertainty), also an API call
    extra = calibration_fields(system, graph, summary, policy=options.get("policy"))  # type: ignore[arg-type]
    api = json.loads(json.dumps({**summary, **extra}))
    assert cli == api
    # the attention buffer was the system's (one core's local SRAM), not unbounded
    unit = system.compute[system.main_compute(str(build.get("dtype", "bf16")))]
    assert unit.local_sram_bytes
    assert api["ttft_s"] > 0


def test_api_default_ttft_is_the_fitted_one_not_the_unbounded_buffer() -> None:
    # An unbounded buffer moves only the compulsory Q+K+V+O; one H100 SM (228 KiB)
    # re-reads Q and O per 228-key block, so a 4k-token prefill takes longer. The API
    # default must be the hardware's buffer, as the CLI's always was.
    cfg = workloads.load_model("llama2_7b")
    kw = dict(batch=1, prompt_len=4096, gen_len=1)
    h100 = load_system("h100_sxm")
    default = simulate(h100, workloads.generate(cfg, **kw), fidelity="analytic")
    sm = workloads.generate(cfg, sram_bytes=228 * 1024, **kw)
    pinned = simulate(h100, sm, fidelity="analytic")
    unbounded = simulate(
        h100, workloads.generate(cfg, sram_bytes=float("inf"), **kw), fidelity="analytic"
    )
    assert default.summary()["ttft_s"] == pinned.summary()["ttft_s"]
    assert default.summary()["ttft_s"] > unbounded.summary()["ttft_s"]
    assert default.graph_meta["sram_bytes"] == 228 * 1024
