"""The batched calibrated pricing (:class:`memsim.cost.PricingPlan`) gives the seconds of
the per-function formulas, bit for bit.

Issue 10's speed target merges the many small per-class pricing calls into one batch per
cost function. The references here are the public cost functions called one kernel
group and one GEMM set at a time, as the pricing did before: the batch must not move a
single bit (a sweep's results are compared across versions).
"""

from __future__ import annotations

import numpy as np
import pytest

from hw_models import load_system
from hw_models.efficiency import GemmShapeTable
from hw_models.engine_profile import KernelGroup, engine_names, load_engine_profile
from memsim import cost


def _params() -> dict[str, float]:
    unit = load_system("h200_sxm_calibrated").compute["tensor"]
    assert unit.efficiency is not None
    return unit.efficiency.values()


@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("with_table", [False, True])
def test_planned_gemm_time_equals_the_gemm_formula(narrow: bool, with_table: bool) -> None:
    p = _params()
    rng = np.random.default_rng(7)
    size = 400
    # decode-like to prefill-like shapes, with degenerate dimensions (0 and 1) mixed in
    m = np.concatenate([[0.0, 1.0, 1.0, 4096.0], rng.integers(1, 20000, size - 4)]).astype(float)
    n = np.concatenate([[4096.0, 0.0, 11008.0, 4096.0], rng.integers(1, 30000, size - 4)])
    k = np.concatenate([[4096.0, 4096.0, 0.0, 4096.0], rng.integers(1, 30000, size - 4)])
    batch = np.where(rng.random(size) < 0.2, rng.integers(1, 64, size), 1.0).astype(float)
    n, k = n.astype(float), k.astype(float)
    nbytes = 2.0 * (m * k + k * n + m * n) * batch * rng.uniform(0.5, 1.5, size)
    shapes = (
        [
            GemmShapeTable(
                dtype="bf16", n=4096, k=4096, m=[1, 64, 4096], ratio=[1.3, 1.1, 0.95], source="t"
            )
        ]
        if with_table
        else []
    )
    want = cost._shaped_gemm_time(
        p,
        m=m,
        n=n,
        k=k,
        batch=batch,
        nbytes=nbytes,
        elem=2.0,
        peak=989.4e12,
        mem_bw=4.8e12,
        sms=132,
        narrow=narrow,
        shapes=shapes,
        dtype="bf16",
    )
    sel = cost.CalibratedSelection(
        gemm=np.arange(size),
        fused=np.zeros(0, dtype=np.int64),
        fused_lens=np.zeros(0, dtype=np.int64),
        solo=np.arange(size),
        attention=np.zeros(0, dtype=np.int64),
        memory_bound=(),
    )
    zeros = np.zeros(size)
    plan = cost.pricing_plan(
        sel,
        load_engine_profile("cuda_graphs"),
        flops=zeros,
        nbytes=nbytes,
        gemm_m=m,
        gemm_n=n,
        gemm_k=k,
        gemm_batch=batch,
        q_len=zeros,
        kv_len=zeros,
        kv_written=None,
    )
    got = cost._planned_gemm_time(
        p,
        plan,
        peak=989.4e12,
        mem_bw=4.8e12,
        sms=132,
        narrow=narrow,
        shapes=shapes,
        dtype="bf16",
    )
    assert np.array_equal(got, want)
    if with_table:  # the table applies to the 4096 x 4096 GEMMs: a real check
        assert not np.array_equal(
            got[3:4],
            cost._shaped_gemm_time(
                p,
                m=m[3:4],
                n=n[3:4],
                k=k[3:4],
                batch=batch[3:4],
                nbytes=nbytes[3:4],
                elem=2.0,
                peak=989.4e12,
                mem_bw=4.8e12,
                sms=132,
                narrow=narrow,
                shapes=[],
                dtype="bf16",
            ),
        )


@pytest.mark.parametrize("engine", engine_names())
@pytest.mark.parametrize("with_kv", [False, True])
def test_memory_bound_table_equals_group_by_group_pricing(engine: str, with_kv: bool) -> None:
    """Every memory-bound kind with its own number of kernel groups (padded rows add 0)."""
    p = _params()
    profile = load_engine_profile(engine)
    kinds = ["norm", "rope", "elementwise", "embedding", "softmax", "gemm"]
    rng = np.random.default_rng(3)
    size = 300
    kind = rng.integers(0, len(kinds) - 1, size)  # no GEMMs: memory-bound kinds only
    nbytes = rng.uniform(1e3, 1e9, size)
    kv_written = rng.uniform(0.0, 1e7, size) if with_kv else None
    zeros = np.zeros(size)
    ints = np.zeros(size, dtype=np.int64)
    for eager in (False, True):
        prof = profile.model_copy(update={"launch": "eager" if eager else "cuda_graph"})
        dev, host, mem = cost.calibrated_op_times(
            p,
            prof,
            kind=kind,
            kind_names=kinds,
            family=ints - 1,
            prefix=ints,
            step=ints,
            phase=ints,
            flops=zeros,
            nbytes=nbytes,
            gemm_m=zeros,
            gemm_n=zeros,
            gemm_k=zeros,
            gemm_batch=zeros,
            q_len=zeros,
            kv_len=zeros,
            dtype="bf16",
            peak=989.4e12,
            mem_bw=4.8e12,
            sms=132,
            kv_written=kv_written,
        )
        # the reference: one memory_bound_time_array call per kind and kernel group
        want_dev, want_host = np.zeros(size), np.zeros(size)
        for ki_code, name in enumerate(kinds[:-1]):
            ki = np.flatnonzero(kind == ki_code)
            groups = prof.ops.get(name) or [
                KernelGroup(kernel_class="elementwise", kernels=1, traffic_factor=1.0)
            ]
            for grp in groups:
                k = np.full(ki.size, float(grp.kernels))
                if grp.traffic_basis == "kv_written":
                    basis = np.zeros(ki.size) if kv_written is None else kv_written[ki]
                else:
                    basis = nbytes[ki]
                want_dev[ki] += cost.memory_bound_time_array(
                    p,
                    grp.kernel_class,
                    traffic=grp.traffic_factor * basis,
                    kernels=k,
                    mem_bw=4.8e12,
                )
                if eager:
                    want_host[ki] += k * p[cost.EAGER_HOST[grp.kernel_class]]
        assert np.array_equal(dev, want_dev)
        assert np.array_equal(host, want_host)
        assert mem.all()
        # a hand check of one norm op under the profile: groups add, fixed costs add
        i = int(np.flatnonzero(kind == 0)[0])
        hand = 0.0
        for grp in prof.ops.get("norm") or []:
            frac, fixed = cost.KERNEL_CLASSES[grp.kernel_class]
            hand += grp.kernels * p[fixed] + grp.traffic_factor * nbytes[i] / (4.8e12 * p[frac])
        if prof.ops.get("norm"):
            assert dev[i] == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize("unknown", [False, True])
def test_attention_pricing_equals_the_attention_formulas(unknown: bool) -> None:
    """Prefill (with the key-length roll-off; no roll-off where the length is unknown)
    and decode attention, as the public functions price them one by one."""
    p = _params()
    rng = np.random.default_rng(5)
    size = 200
    q_len = np.where(rng.random(size) < 0.5, 1.0, rng.integers(2, 8192, size)).astype(float)
    kv_len = rng.integers(1, 16384, size).astype(float)
    if unknown:
        kv_len[::7] = 0.0  # a traced op without attention attrs
    flops = rng.uniform(1e6, 1e13, size)
    nbytes = rng.uniform(1e4, 1e9, size)
    zeros, ints = np.zeros(size), np.zeros(size, dtype=np.int64)
    dev, _, mem = cost.calibrated_op_times(
        p,
        load_engine_profile("cuda_graphs"),
        kind=ints,
        kind_names=["attention"],
        family=ints - 1,
        prefix=ints,
        step=ints,
        phase=ints,
        flops=flops,
        nbytes=nbytes,
        gemm_m=zeros,
        gemm_n=zeros,
        gemm_k=zeros,
        gemm_batch=zeros,
        q_len=q_len,
        kv_len=kv_len,
        dtype="bf16",
        peak=989.4e12,
        mem_bw=4.8e12,
        sms=132,
    )
    dec = q_len <= 1.0
    want_d = cost.calibrated_decode_attention_time_array(p, nbytes=nbytes, mem_bw=4.8e12)
    want_p = cost.calibrated_prefill_attention_time_array(
        p, flops=flops, kv_len=np.where(kv_len > 0, kv_len, np.inf), peak=989.4e12
    )
    assert np.array_equal(dev, np.where(dec, want_d, want_p))
    assert np.array_equal(mem, dec)
    # hand check of one prefill op: fixed + flops / (peak eff L / (L + L_half))
    i = int(np.flatnonzero(~dec & (kv_len > 0))[0])
    eff = (
        p["attention.prefill_efficiency"]
        * kv_len[i]
        / (kv_len[i] + p["attention.prefill_half_tokens"])
    )
    assert dev[i] == pytest.approx(p["attention.fixed_s"] + flops[i] / (989.4e12 * eff), rel=1e-12)
