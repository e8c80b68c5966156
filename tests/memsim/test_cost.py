"""Cost functions against hand calculations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memsim import cost
from tests.memsim.world import tiny
from workloads.graph import GemmShape


def test_gemm_time_pads_to_the_array_and_quantises_waves() -> None:
    unit = tiny().compute["core"]  # 4 units of 64x64, 100 TFLOP/s bf16
    # 64x64x64: one 64x64 tile on 4 units -> one wave 1/4 full: 2*64^3 / (100e12 * 0.25)
    assert cost.gemm_time(unit, GemmShape(m=64, n=64, k=64), "bf16") == pytest.approx(
        2 * 64**3 / 25e12
    )
    # 1x256x1024 (a GEMV): M padded 1 -> 64 (u_pad = 1/64); 4 tiles = one full wave
    t = cost.gemm_time(unit, GemmShape(m=1, n=256, k=1024), "bf16")
    assert t == pytest.approx(2 * 256 * 1024 / (100e12 / 64))
    # 256x256: 16 tiles, 4 full waves -> peak
    assert cost.gemm_time(unit, GemmShape(m=256, n=256, k=256), "bf16") == pytest.approx(
        2 * 256**3 / 100e12
    )


def test_vector_time_uses_the_vector_rate() -> None:
    assert cost.vector_time(tiny().compute["core"], 1e10) == pytest.approx(1e10 / 10e12)


def test_tiled_traffic_is_compulsory_when_the_output_fits() -> None:
    shape = GemmShape(m=128, n=128, k=1000)
    compulsory = 2 * (128 * 1000 + 1000 * 128 + 128 * 128)
    assert cost.tiled_gemm_traffic(shape, 2.0, 1e9) == pytest.approx(compulsory)
    assert cost.tiled_gemm_traffic(shape, 2.0, math.inf) == pytest.approx(compulsory)


def test_tiled_traffic_rereads_operands_with_a_small_buffer() -> None:
    # buffer of 64*64 bf16 elements: Tm = 64, Tn = 64 -> A read ceil(256/64)=4 times,
    # B read ceil(256/64)=4 times, C written once
    shape = GemmShape(m=256, n=256, k=100)
    got = cost.tiled_gemm_traffic(shape, 2.0, 64 * 64 * 2)
    assert got == pytest.approx(2 * (256 * 100 * 4 + 100 * 256 * 4 + 256 * 256))
    assert got > cost.tiled_gemm_traffic(shape, 2.0, 1e12)


def test_transfer_time_rounds_to_the_access_granularity() -> None:
    # 100 B in 64 B bursts -> 128 B at 1 GB/s, after 1 us
    assert cost.transfer_time(100, bandwidth=1e9, latency=1e-6, granularity=64) == pytest.approx(
        1e-6 + 128 / 1e9
    )
    # a 4 KiB flash page: 1 byte costs a page
    assert cost.transfer_time(1, bandwidth=4096.0, granularity=4096) == pytest.approx(1.0)
    assert cost.transfer_time(0, bandwidth=1.0, latency=1.0) == 0.0


def test_ring_all_reduce() -> None:
    # 8 devices, 1 GB, 100 GB/s, 1 us: 2*7/8 * 1e9/1e11 + 14 us
    assert cost.ring_all_reduce_time(1e9, group=8, bandwidth=1e11, latency=1e-6) == pytest.approx(
        2 * 7 / 8 * 1e-2 + 14e-6
    )
    assert cost.ring_all_reduce_time(1e9, group=1, bandwidth=1e11, latency=1e-6) == 0.0
    assert cost.collective_link_bytes("all_reduce", 1e9, 8) == pytest.approx(2 * 7 / 8 * 1e9)


def test_unknown_dtype_is_a_spec_error() -> None:
    from hw_models import SpecError

    with pytest.raises(SpecError, match="unknown dtype"):
        cost.elem_bytes("fp3")
    unit = tiny().compute["core"]
    with pytest.raises(SpecError, match="no throughput for fp8"):
        cost.unit_peak(unit.model_copy(update={"peak_flops_per_s": {"fp32": 1e12}}), "fp8")


def test_eager_launches_pipeline_with_the_device() -> None:
    """Host launch 10 us per kernel; device 30, 1, 1 us. The host launches at 10, 20, 30:
    kernel 0 runs 10-40, kernel 1 (launched at 20) runs 40-41, kernel 2 (at 30) 41-42.
    A per-kernel max(launch, device) would charge 30 + 10 + 10 = 50 us."""
    from memsim.cost import eager_pipeline_durations

    us = 1e-6
    d = eager_pipeline_durations(
        np.array([10.0, 10.0, 10.0]) * us, np.array([30.0, 1.0, 1.0]) * us, np.array([0])
    )
    assert d / us == pytest.approx([40.0, 1.0, 1.0])
    # host-bound: tiny kernels cost their launch each; two segments restart from idle
    d = eager_pipeline_durations(
        np.full(4, 10.0) * us, np.full(4, 1.0) * us, np.array([0, 2], dtype=np.int64)
    )
    assert d / us == pytest.approx([11.0, 10.0, 11.0, 10.0])
    # never below the device time
    rng = np.random.default_rng(0)
    h, dev = rng.uniform(0, 5, 200), rng.uniform(0, 5, 200)
    got = eager_pipeline_durations(h, dev, np.array([0, 50, 120], dtype=np.int64))
    assert np.all(got >= dev - 1e-12)
    assert got.sum() >= max(h[:50].sum(), dev[:50].sum())
