"""The serve evaluator: serving metrics as objectives, KV room checked first, fields checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from explore import DesignSpace, Store, sweep
from hw_models.errors import SpecError


def _doc() -> dict[str, Any]:
    return {
        "evaluator": "serve",
        "system": "h100_sxm",
        "workload": {"model": "llama2_7b"},
        "serve": {"requests": 24, "prompt_len": "fixed:256", "output_len": "fixed:16"},
        "parameters": {
            "serve.rate": {"values": [1, 50]},
            # 0.165 x 80 GB = 13.2 GB cannot hold Llama-2-7B's 13.5 GB of bf16 weights
            "serve.gpu_memory_utilization": {"values": [0.9, 0.165]},
        },
        "objectives": {"ttft_p99_s": "min", "throughput_tokens_per_s": "max"},
    }


def test_serving_points_conserve_requests_and_load_raises_latency(tmp_path: Path) -> None:
    space = DesignSpace.from_dict(_doc())
    report = sweep(space, store=tmp_path / "s.db", workers=1)
    assert (report.evaluated, report.infeasible) == (2, 2)
    with Store(tmp_path / "s.db") as st:
        rows = {
            (r["parameters"]["serve.rate"], r["parameters"]["serve.gpu_memory_utilization"]): r
            for r in st.rows()
        }
    for util in (0.165,):
        for rate in (1, 50):
            r = rows[(rate, util)]
            assert r["status"] == "infeasible" and "no room for a KV block" in r["message"]
    slow, busy = rows[(1, 0.9)]["metrics"], rows[(50, 0.9)]["metrics"]
    for m in (slow, busy):
        assert m["completed"] + m["dropped"] == m["requests"] == 24
        assert m["generated_tokens"] == 16 * m["completed"]
    # 50 requests/s queue behind each other; one per second mostly find an idle server
    assert busy["ttft_p99_s"] > slow["ttft_p99_s"]
    assert busy["throughput_tokens_per_s"] > slow["throughput_tokens_per_s"]


def test_unknown_serving_fields_and_bad_values_are_refused() -> None:
    doc = _doc()
    doc["parameters"]["serve.max_batched_tokens"] = {"values": [512, 2048]}  # the CLI's name
    DesignSpace.from_dict(doc)
    doc["parameters"]["serve.blocksize"] = {"values": [16]}
    with pytest.raises(SpecError, match=r"parameters\.serve\.blocksize: unknown serving field"):
        DesignSpace.from_dict(doc)
    doc = _doc()
    doc["parameters"]["serve.block_size"] = {"values": [0, 16]}
    with pytest.raises(SpecError, match=r"parameters.serve.block_size: at 0"):
        DesignSpace.from_dict(doc)
    doc = _doc()
    doc["objectives"] = {"tpot_s": "min"}  # a simulate metric, not a serving one
    with pytest.raises(SpecError, match=r"objectives\.tpot_s: unknown metric"):
        DesignSpace.from_dict(doc)
