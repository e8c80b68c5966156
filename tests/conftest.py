"""Shared fixtures: tiny systems that every layer's tests can build on."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import settings

# CI runs are reproducible (the same examples every run); developers' runs keep exploring
# new examples, so a counterexample shows up on a desk, not as a flaky CI failure.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def tiny_system_data() -> dict[str, Any]:
    """A small, valid two-tier system as a plain mapping (a YAML document's content).

    Numbers are round so tests can compute by hand: 100 TFLOP/s bf16, HBM 1 TB/s
    and 16 GB, host DDR 100 GB/s over a 10 GB/s PCIe link.
    """
    return {
        "name": "tiny",
        "description": "hand-computable test system",
        "sources": [{"title": "made up for tests", "where": "tests/conftest.py"}],
        "devices": 1,
        "compute": {
            "core": {
                "kind": "systolic",
                "count": 4,
                "peak_flops_per_s": {"bf16": 100e12, "fp32": 25e12},
                "array_rows": 64,
                "array_cols": 64,
                "local_sram_bytes": "1 MiB",
                "vector_flops_per_s": 10e12,
            }
        },
        "tiers": {
            "hbm": {
                "kind": "hbm",
                "capacity_bytes": 16e9,
                "read_bandwidth_bytes_per_s": 1e12,
                "latency_s": "500 ns",
            },
            "ddr": {
                "kind": "ddr",
                "scope": "host",
                "capacity_bytes": "256 GB",
                "read_bandwidth_bytes_per_s": "100 GB/s",
                "latency_s": "100 ns",
            },
        },
        "links": {
            "pcie": {
                "kind": "pcie",
                "between": ["hbm", "ddr"],
                "bandwidth_bytes_per_s": "10 GB/s",
                "latency_s": "1 us",
            }
        },
    }


@pytest.fixture
def tiny_data() -> dict[str, Any]:
    """A fresh copy of :func:`tiny_system_data` that a test may mutate."""
    return copy.deepcopy(tiny_system_data())
