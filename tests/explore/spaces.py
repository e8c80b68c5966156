"""Small spaces the explore tests share (documents, as a space file holds them)."""

from __future__ import annotations

from typing import Any

SMALLEST_YAML = """\
system: h100_sxm
workload: {model: llama2_7b, batch: 1, prompt: 512, gen: 32}
parameters:
  tiers.hbm.read_bandwidth_bytes_per_s: {values: [2.0e12, 3.35e12, 5.0e12]}
  workload.batch: {values: [1, 4, 16]}
objectives: {tpot_s: min, energy_j: min}
"""
"""The smallest space of issue 12, exactly as written there."""


def synthetic() -> dict[str, Any]:
    """Two objectives with a front computed by hand (``formula`` evaluator, no simulation).

    f1 = x, f2 = (x - 3)^2 + y over x in 0..4, y in 0..2. Minimising both: a point with
    y > 0 is dominated by the same x at y = 0; at y = 0, f2 = 9, 4, 1, 0, 1 for x = 0..4,
    so x = 4 (f1 = 4, f2 = 1) is dominated by x = 2 (f1 = 2, f2 = 1). The front is
    {(x, 0) : x = 0, 1, 2, 3}.
    """
    return {
        "evaluator": "formula",
        "parameters": {"x": {"low": 0, "high": 4}, "y": {"values": [0, 1, 2]}},
        "formulas": {"f1": "x", "f2": "(x - 3) ** 2 + y"},
        "objectives": {"f1": "min", "f2": "min"},
    }


def small_decode() -> dict[str, Any]:
    """12 cheap real simulations: Llama-2-7B decode steps on h100_sxm."""
    return {
        "system": "h100_sxm",
        "workload": {"model": "llama2_7b", "kind": "decode", "batch": 4, "prompt": 1024},
        "parameters": {
            "tiers.hbm.read_bandwidth_bytes_per_s": {"values": [2.0e12, 3.35e12, 5.0e12]},
            "workload.batch": {"values": [1, 4, 16, 64]},
        },
        "objectives": {"tpot_s": "min", "energy_j": "min"},
    }
