"""No silent spill: a static run whose working set does not fit stops (exit 2) unless asked."""

from __future__ import annotations

import pytest

import workloads
from hw_models import load_system
from memsim.cli.main import main
from memsim.policies import CapacityError, make_policy
from memsim.policies.base import transient_peak_bytes
from memsim.spill import check_no_spill, describe_placement, placed_bytes

# Llama-2-7B: 6,738,415,616 parameters in bf16; KV 2 x 32 layers x 4096 x 2 B per token
WEIGHTS = 6_738_415_616 * 2
KV_PER_TOKEN = 2 * 32 * 4096 * 2
# the example: A100 80 GB, batch 52, 2048 prompt + 128 generated tokens
BIG = ["--system", "a100_80gb_sxm", "--batch", "52", "--prompt", "2048", "--fidelity", "analytic"]


def test_spill_is_refused_with_tier_and_shortfall() -> None:
    system = load_system("a100_80gb_sxm")
    cfg = workloads.load_model("llama2_7b")
    graph = workloads.generate(cfg, batch=52, prompt_len=2048, gen_len=128)
    placement = make_policy("fastest_fit").place(system, graph)
    assert "ddr" in placed_bytes(graph, placement)  # fastest_fit did put something in DDR
    with pytest.raises(CapacityError, match="short by") as err:
        check_no_spill(system, graph, placement)
    assert err.value.tier == "hbm"
    kv = 52 * (2048 + 128) * KV_PER_TOKEN  # 61.9 GB
    acts = transient_peak_bytes(graph, [n for n, t in graph.tensors.items() if not t.persistent])
    capacity = system.tier("hbm").capacity_bytes
    assert err.value.shortfall_bytes == pytest.approx(WEIGHTS + kv + acts - capacity, rel=1e-9)
    # weights + KV (13.5 + 59.3 = 72.8 GB) fit in 80 GB; the prefill activations of the whole
    # batch push it over
    assert WEIGHTS + kv < capacity < WEIGHTS + kv + acts


def test_offload_policies_and_fitting_runs_pass() -> None:
    system = load_system("a100_80gb_sxm")
    cfg = workloads.load_model("llama2_7b")
    big = workloads.generate(cfg, batch=52, prompt_len=2048, gen_len=2)
    check_no_spill(system, big, make_policy("kv_offload").place(system, big))  # asked for
    small = workloads.generate(cfg, batch=1, prompt_len=128, gen_len=2)
    placement = make_policy("fastest_fit").place(system, small)
    check_no_spill(system, small, placement)
    lines = describe_placement(system, small, placement)
    assert len(lines) == 1 and lines[0].startswith("hbm (device): ")
    assert placed_bytes(small, placement)["hbm"]["weight"] == pytest.approx(WEIGHTS)


def test_cli_stops_with_exit_2_unless_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *BIG, "--gen", "2"]) == 2
    err = capsys.readouterr().err
    assert "tiers.hbm.capacity_bytes" in err and "short by" in err and "--allow-spill" in err
    assert main(["run", *BIG, "--gen", "2", "--allow-spill"]) == 0
    out = capsys.readouterr().out
    assert "ddr (host): " in out  # the summary says what went where
