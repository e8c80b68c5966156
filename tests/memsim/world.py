"""Tiny worlds with hand-computable answers, shared by the engine tests.

The system is ``tests/conftest.py``'s ``tiny``: one device, 100 TFLOP/s bf16 on
4 units of 64x64 arrays (1 MiB local SRAM each), 10 TFLOP/s vector; HBM 16 GB
at 1 TB/s (500 ns); host DDR 256 GB at 100 GB/s (100 ns) over a 10 GB/s PCIe
link (1 us). No launch overhead, achievable fractions 1, 64 B granularity.
"""

from __future__ import annotations

import copy
from typing import Any

from hw_models import System, load_system_dict
from tests.conftest import tiny_system_data
from workloads.graph import Access, GemmShape, Graph, Op, Tensor


def tiny(**overrides: Any) -> System:
    """The tiny system, with dotted overrides."""
    return load_system_dict(copy.deepcopy(tiny_system_data()), overrides=overrides or None)


def tiny_with_sram(capacity: float) -> System:
    """The tiny system plus an SRAM tier of ``capacity`` bytes at 100 TB/s, 10 ns."""
    data: dict[str, Any] = copy.deepcopy(tiny_system_data())
    data["tiers"]["sram"] = {
        "kind": "sram",
        "capacity_bytes": capacity,
        "read_bandwidth_bytes_per_s": 1e14,
        "latency_s": "10 ns",
    }
    return load_system_dict(data)


def tiny_graph(*, weight_bytes: float = 1e9, phase: str = "decode") -> Graph:
    """Two ops of layer 0: a GEMM reading a weight, then an elementwise op.

    op 0 (gemm 64x64x64): reads w (weight_bytes) and x (1024 B), writes y (1024 B)
    op 1 (elementwise, 1 GFLOP): reads y, writes x
    """
    tensors = {
        "w": Tensor(name="w", bytes=weight_bytes, kind="weight", layer=0),
        "x": Tensor(name="x", bytes=1024, kind="activation", layer=0),
        "y": Tensor(name="y", bytes=1024, kind="activation", layer=0),
    }
    ops = (
        Op(
            name="mm",
            kind="gemm",
            flops=2 * 64**3,
            gemm=GemmShape(m=64, n=64, k=64),
            reads=(Access(tensor="w", bytes=weight_bytes), Access(tensor="x", bytes=1024)),
            writes=(Access(tensor="y", bytes=1024),),
            layer=0,
            phase=phase,  # type: ignore[arg-type]
            step=1,
        ),
        Op(
            name="act",
            kind="elementwise",
            flops=1e9,
            reads=(Access(tensor="y", bytes=1024),),
            writes=(Access(tensor="x", bytes=1024),),
            layer=0,
            phase=phase,  # type: ignore[arg-type]
            step=1,
        ),
    )
    return Graph(tensors=tensors, ops=ops, meta={"batch": 1, "gen_len": 1, "tokens": 1})


def layered_graph(*, layers: int, steps: int, weight_bytes: float, flops: float) -> Graph:
    """``steps`` decode steps over ``layers`` layers, one GEMV-like op per layer."""
    tensors = {
        f"w{i}": Tensor(name=f"w{i}", bytes=weight_bytes, kind="weight", layer=i)
        for i in range(layers)
    }
    tensors["h"] = Tensor(name="h", bytes=4096, kind="activation")
    ops = []
    for s in range(1, steps + 1):
        for i in range(layers):
            ops.append(
                Op(
                    name=f"s{s}.l{i}",
                    kind="gemm",
                    flops=flops,
                    reads=(
                        Access(tensor=f"w{i}", bytes=weight_bytes),
                        Access(tensor="h", bytes=4096),
                    ),
                    writes=(Access(tensor="h", bytes=4096),),
                    layer=i,
                    phase="decode",
                    step=s,
                )
            )
    return Graph(tensors=tensors, ops=tuple(ops), meta={"batch": 1, "gen_len": steps})
