"""Fixtures for the plot tests: a tiny system and a synthetic run with round numbers.

The synthetic run follows the SimResult table contract exactly (column names and
meanings), so the plots are tested before and independently of the engine.

System ``plotsys``: bf16 100 TFLOP/s, fp32 25 TFLOP/s, fp8 200 TFLOP/s; tiers SRAM
10 TB/s (64 MB), HBM 1 TB/s (16 GB, achievable 0.8), host DDR 100 GB/s (256 GB); links
PCIe 10 GB/s between hbm and ddr, and an NVLink 50 GB/s between devices.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from hw_models import System, load_system_dict


def plot_system_data() -> dict[str, Any]:
    """The tiny system as a YAML-like mapping."""
    return {
        "name": "plotsys",
        "description": "round numbers for plot tests",
        "sources": [{"title": "made up for tests", "where": "tests/plots/conftest.py"}],
        "devices": 2,
        "compute": {
            "core": {
                "kind": "systolic",
                "peak_flops_per_s": {"fp32": 25e12, "bf16": 100e12, "fp8": 200e12},
            }
        },
        "tiers": {
            "sram": {"kind": "sram", "capacity_bytes": 64e6, "read_bandwidth_bytes_per_s": 10e12},
            "hbm": {
                "kind": "hbm",
                "capacity_bytes": 16e9,
                "read_bandwidth_bytes_per_s": 1e12,
                "achievable_bandwidth_fraction": 0.8,
            },
            "ddr": {
                "kind": "ddr",
                "scope": "host",
                "capacity_bytes": 256e9,
                "read_bandwidth_bytes_per_s": 100e9,
            },
        },
        "links": {
            "pcie": {"kind": "pcie", "between": ["hbm", "ddr"], "bandwidth_bytes_per_s": 10e9},
            "nvl": {"kind": "nvlink", "between": ["hbm", "hbm"], "bandwidth_bytes_per_s": 50e9},
        },
    }


@dataclass(frozen=True, kw_only=True)
class FakeResult:
    """Quacks like memsim.result.SimResult: the table views and the system."""

    system: System
    frames: dict[str, pd.DataFrame]
    summary_data: dict[str, Any] = field(default_factory=dict)

    def ops_frame(self) -> pd.DataFrame:
        return self.frames["ops"]

    def traffic_frame(self) -> pd.DataFrame:
        return self.frames["traffic"]

    def tiers_frame(self) -> pd.DataFrame:
        return self.frames["tiers"]

    def links_frame(self) -> pd.DataFrame:
        return self.frames["links"]

    def occupancy_frame(self) -> pd.DataFrame:
        return self.frames["occupancy"]

    def timeline_frame(self) -> pd.DataFrame:
        return self.frames["timeline"]

    def energy_frame(self) -> pd.DataFrame:
        return self.frames["energy"]

    def summary(self) -> dict[str, Any]:
        return self.summary_data


# op, name, kind, phase, start, duration, flops, {resource: (read, written)}, bound
OPS = [
    (
        0,
        "l0.qkv",
        "gemm",
        "prefill",
        0.0,
        0.025,
        2e12,
        {"tier:sram": (3e9, 1e9), "tier:hbm": (1e9, 0.0)},
        "compute",
    ),
    (
        1,
        "l0.attn",
        "attention",
        "prefill",
        0.025,
        0.005,
        1e11,
        {"tier:hbm": (4e8, 1e8)},
        "tier:hbm",
    ),
    (2, "l0.qkv", "gemm", "decode", 0.030, 0.010, 2e9, {"tier:hbm": (1e10, 0.0)}, "tier:hbm"),
    (
        3,
        "l0.mlp",
        "gemm",
        "decode",
        0.040,
        0.050,
        1e9,
        {"tier:ddr": (1e9, 0.0), "link:pcie": (5e8, 0.0)},
        "link:pcie",
    ),
    (4, "l0.copy", "other", "decode", 0.090, 0.001, 0.0, {"tier:hbm": (1e6, 1e6)}, "overhead"),
]


def synthetic_frames() -> dict[str, pd.DataFrame]:
    """All seven tables of a small two-phase run (numbers in OPS above)."""
    ops = []
    traffic = []
    for op, name, kind, phase, start, dur, flops, moved, bound in OPS:
        read = sum(r for r, _ in moved.values())
        written = sum(w for _, w in moved.values())
        offchip = sum(r + w for res, (r, w) in moved.items() if res != "tier:sram")
        ops.append(
            {
                "op": op,
                "name": name,
                "kind": kind,
                "phase": phase,
                "layer": 0,
                "step": 0 if phase == "prefill" else 1,
                "stage": 0,
                "device": 0,
                "unit": "core",
                "dtype": "bf16",
                "start_s": start,
                "end_s": start + dur,
                "duration_s": dur,
                "flops": flops,
                "bytes_read": read,
                "bytes_written": written,
                "intensity_flop_per_byte": flops / offchip if offchip else float("inf"),
                "bound": bound,
            }
        )
        traffic += [
            {"op": op, "resource": res, "bytes_read": r, "bytes_written": w}
            for res, (r, w) in moved.items()
        ]
    tiers = pd.DataFrame(
        {
            "tier": ["sram", "hbm", "ddr"],
            "kind": ["sram", "hbm", "ddr"],
            "capacity_bytes": [64e6, 16e9, 256e9],
            "instances": [2, 2, 1],
            "bytes_read": [3e9, 1.14e10, 1e9],
            "bytes_written": [1e9, 1e8, 0.0],
            "busy_s": [4e-4, 1.2e-2, 1e-2],
            "peak_bytes": [32e6, 14e9, 20e9],
            "energy_j": [0.004, 0.5, 0.12],
            "peak_bandwidth_bytes_per_s": [10e12, 1e12, 100e9],
        }
    )
    links = pd.DataFrame(
        {
            "link": ["pcie", "nvl"],
            "kind": ["pcie", "nvlink"],
            "bytes": [5e8, 0.0],
            "busy_s": [0.05, 0.0],
            "energy_j": [0.02, 0.0],
            "bandwidth_bytes_per_s": [10e9, 50e9],
        }
    )
    occupancy = pd.DataFrame(
        {
            "time_s": [0.0, 0.0, 0.0, 0.03, 0.03, 0.09],
            "tier": ["hbm", "sram", "ddr", "hbm", "sram", "hbm"],
            "bytes": [14e9, 32e6, 20e9, 15e9, 0.0, 14e9],
            "capacity_bytes": [16e9, 64e6, 256e9, 16e9, 64e6, 16e9],
        }
    )
    timeline = pd.DataFrame(
        [
            {
                "resource": "core",
                "resource_kind": "compute",
                "start_s": o["start_s"],
                "end_s": o["end_s"],
                "label": o["name"],
                "phase": o["phase"],
            }
            for o in ops
        ]
        + [
            {
                "resource": "dma0",
                "resource_kind": "dma",
                "start_s": 0.040,
                "end_s": 0.090,
                "label": "l0.mlp weights",
                "phase": "decode",
            },
            {
                "resource": "hbm.ch0",
                "resource_kind": "channel",
                "start_s": 0.0,
                "end_s": 0.001,
                "label": "l0.qkv",
                "phase": "prefill",
            },
            {
                "resource": "hbm.ch0",
                "resource_kind": "channel",
                "start_s": 0.030,
                "end_s": 0.040,
                "label": "l0.qkv",
                "phase": "decode",
            },
        ]
    )
    energy = pd.DataFrame(
        {
            "component": [
                "tier:hbm",
                "tier:hbm",
                "tier:ddr",
                "link:pcie",
                "compute:core",
                "compute:core",
                "static",
            ],
            "tensor_kind": ["weight", "kv", "weight", "weight", "none", "none", "none"],
            "phase": ["prefill", "decode", "decode", "decode", "prefill", "decode", "decode"],
            "energy_j": [0.3, 0.2, 0.12, 0.02, 1.0, 0.01, 0.05],
        }
    )
    return {
        "ops": pd.DataFrame(ops),
        "traffic": pd.DataFrame(traffic),
        "tiers": tiers,
        "links": links,
        "occupancy": occupancy,
        "timeline": timeline,
        "energy": energy,
    }


SUMMARY = {
    "makespan_s": 0.091,
    "ttft_s": 0.030,
    "tpot_s": 0.061,
    "tokens_per_s": 16.4,
    "energy_j": 1.7,
    "bottleneck": "tier:hbm",
    "mfu": 0.25,
    "achieved_bandwidth_bytes_per_s": 1.4e11,
    "tiers": {"hbm": {"bytes_read": 1.14e10, "bytes_written": 1e8, "peak_bytes": 15e9}},
    "meta": {"system": "plotsys", "model": "toy", "seed": 0, "fidelity": "event"},
}


@pytest.fixture
def plot_system() -> System:
    return load_system_dict(plot_system_data())


@pytest.fixture
def fake_result(plot_system: System) -> FakeResult:
    return FakeResult(system=plot_system, frames=synthetic_frames(), summary_data=dict(SUMMARY))
