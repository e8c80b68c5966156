"""Calibrated pricing of distinct ops gives every op the same seconds as pricing each op.

:func:`memsim.cost.distinct_ops` prices one op per distinct signature (and fused GEMM
runs whole) and gathers the rest (issue 10's speed target); the reference is
:func:`memsim.cost.calibrated_op_times` over every op. Bit-for-bit equality, on real
generation graphs (decode steps repeat kernels, fused QKV / gate-up runs, quantised
weights, KV writes) under every engine profile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hw_models import load_system
from hw_models.engine_profile import engine_names, load_engine_profile
from memsim import cost
from memsim.compiled import compile_graph
from memsim.plan import _calibrated_inputs, _kv_written, _op_bytes
from workloads import generate, load_model


def _reference(cg, profile, unit, system, dtype):
    nbytes = _op_bytes(cg)
    elem = cost.elem_bytes(dtype)
    sel = cost.calibrated_selection(
        profile,
        kind=cg.kind,
        kind_names=cg.kind_names,
        family=cg.gemm_family,
        prefix=cg.gemm_prefix,
        step=cg.step,
        phase=cg.phase,
        gemm_m=cg.gemm_m,
        shapes=(cg.gemm_n, cg.gemm_k, cg.gemm_batch, nbytes),
        elem=elem,
        qweight_elem=cg.gemm_qweight_elem,
    )
    return cost.calibrated_op_times(
        unit.efficiency.values(),
        profile,
        kind=cg.kind,
        kind_names=cg.kind_names,
        family=cg.gemm_family,
        prefix=cg.gemm_prefix,
        step=cg.step,
        phase=cg.phase,
        flops=cg.flops,
        nbytes=nbytes,
        gemm_m=cg.gemm_m,
        gemm_n=cg.gemm_n,
        gemm_k=cg.gemm_k,
        gemm_batch=cg.gemm_batch,
        q_len=cg.attn_q_len,
        kv_len=cg.attn_kv_len,
        dtype=dtype,
        peak=cost.unit_peak(unit, dtype),
        mem_bw=cost.device_memory_bandwidth(system),
        sms=unit.count,
        shapes=unit.efficiency.gemm_shapes,
        qweight_bytes=cg.gemm_qweight_bytes,
        qweight_elem=cg.gemm_qweight_elem,
        kv_written=_kv_written(cg),
        selection=sel,
    )


@pytest.mark.parametrize("engine", engine_names())
@pytest.mark.parametrize("dtype", ["bf16", "int4"])
def test_distinct_pricing_equals_pricing_every_op(engine: str, dtype: str) -> None:
    system = load_system("h200_sxm_calibrated")
    unit = system.compute["tensor"]
    profile = load_engine_profile(engine)
    graph = generate(
        load_model("llama2_7b"),
        batch=4,
        prompt_len=128,
        gen_len=6,
        dtype=dtype,
        sram_bytes=math.inf,
    )
    cg = compile_graph(graph)
    op_dtype = cg.dtype_names[int(np.bincount(cg.dtype).argmax())]
    want = _reference(cg, profile, unit, system, op_dtype)
    red, inputs = _calibrated_inputs(cg, None, profile, op_dtype, _op_bytes(cg))
    got = cost.calibrated_op_times(
        unit.efficiency.values(),  # type: ignore[union-attr]
        profile,
        **inputs,
        dtype=op_dtype,
        peak=cost.unit_peak(unit, op_dtype),
        mem_bw=cost.device_memory_bandwidth(system),
        sms=unit.count,
        shapes=unit.efficiency.gemm_shapes,  # type: ignore[union-attr]
        selection=red.selection,
    )
    for w, g in zip(want, got, strict=True):
        assert np.array_equal(w, g[red.inverse])
    # the decode steps repeat their kernels: far fewer ops are priced than the graph has
    assert red.ops.size < cg.n_ops / 3
    # fused runs are priced as runs (a run's members are all among the priced ops)
    if profile.fused_qkv and red.selection.fused_lens.size:
        assert red.selection.fused_lens.min() >= 2
