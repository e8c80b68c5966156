"""LLM in a flash policies: FFN weights on flash, reads priced by their size (hand counts).

Device: the m1_max_cpu preset's SSD (apple_m1_max_1tb geometry, queue depth 32). For a
read of S <= 16 KiB (one page) the busiest resource is the controller, 3 us per request
(the sensing units need 50 us / 32 = 1.56 us, the channels S / 6.4 GB/s), and 32 reads in
flight cover the 78-93 us unloaded latency, so the bandwidth is S / 3 us.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

import memsim
from hw_models import SpecError, load_system
from memsim.graph_fit import fit_graph
from memsim.policies import make_policy
from workloads import FFNSparsity, decode, from_hf_dict

CTRL_S = 3e-6  # controller command time per request (the flash preset)


def _cfg():  # OPT-style FFN: d_model 1024, d_ff 4096, biases, no gate
    return from_hf_dict(
        {
            "model_type": "opt",
            "hidden_size": 1024,
            "ffn_dim": 4096,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "vocab_size": 1000,
            "max_position_embeddings": 512,
        }
    )


def _sparse():
    # p = 0.25, window 1, independent tokens: loaded per step 0.25 x 0.75 = 0.1875
    return decode(
        _cfg(),
        batch=1,
        context_len=16,
        dtype="fp32",
        ffn_sparsity=FFNSparsity(active_fraction=0.25, window=1),
    )


def _ssd_busy(result: memsim.SimResult) -> float:
    return next(t.busy_s for t in result.tiers if t.tier == "ssd")


# per layer: w_up 1024 x 4096 fp32 + 4096 bias = 16,793,600 B; w_down 16,777,216 + 1024 x 4
# = 16,781,312 B. 0.1875 of each, rounded up to the SSD's 4 KiB accesses: 769 x 4096 each.
LOADED = 769 * 4096
UP_ROW, DOWN_ROW = 16_793_600 / 4096, 16_781_312 / 4096  # 4100 B, 4097 B per neuron


def test_unbundled_neurons_are_read_one_row_per_matrix() -> None:
    g = _sparse()
    placement = make_policy("flash_ffn").place(load_system("m1_max_cpu"), g)
    assert placement.home["L0.w_up"] == "ssd" and placement.home["L1.w_down"] == "ssd"
    assert placement.home["L0.ffn_cache"] == "lpddr" and placement.home["L0.wq"] == "lpddr"
    assert placement.read_request_bytes["L0.w_up"] == pytest.approx(UP_ROW)
    assert placement.read_request_bytes["L0.w_down"] == pytest.approx(DOWN_ROW)
    r = memsim.simulate("m1_max_cpu", g, policy="flash_ffn", fidelity="analytic")
    per_layer = LOADED * CTRL_S / UP_ROW + LOADED * CTRL_S / DOWN_ROW  # 4.611 ms
    assert _ssd_busy(r) == pytest.approx(2 * per_layer, rel=1e-9)


def test_row_column_bundles_double_the_chunk_and_halve_the_read_time() -> None:
    g = _sparse()
    bundle = UP_ROW + DOWN_ROW  # 8197 B: still one page, still controller-bound
    placement = make_policy("flash_ffn_bundled").place(load_system("m1_max_cpu"), g)
    assert placement.read_request_bytes["L1.w_up"] == pytest.approx(bundle)
    for fidelity in ("analytic", "event"):
        r = memsim.simulate("m1_max_cpu", g, policy="flash_ffn_bundled", fidelity=fidelity)
        assert _ssd_busy(r) == pytest.approx(2 * 2 * LOADED * CTRL_S / bundle, rel=1e-9)
    plain = memsim.simulate("m1_max_cpu", g, policy="flash_ffn", fidelity="event")
    bundled = memsim.simulate("m1_max_cpu", g, policy="flash_ffn_bundled", fidelity="event")
    assert bundled.makespan_s < plain.makespan_s


def test_dense_ffn_streams_whole_matrices_at_the_tier_rate() -> None:
    g = decode(_cfg(), batch=1, context_len=16, dtype="fp32")
    placement = make_policy("flash_ffn_bundled").place(load_system("m1_max_cpu"), g)
    assert placement.read_request_bytes == {}
    r = memsim.simulate("m1_max_cpu", g, policy="flash_ffn_bundled", fidelity="analytic")
    # 256 KiB requests reach the 6.1 GB/s sequential figure; w_up + w_down whole, 2 layers
    read = 2 * (16_793_600 + 16_781_312)
    assert _ssd_busy(r) == pytest.approx(read / 6.1e9, rel=1e-9)


def test_bigger_requests_are_never_slower() -> None:
    ssd = load_system("m1_max_cpu").tier("ssd")
    sizes = [4096 * k for k in (1, 2, 3, 4, 6, 8, 16, 64)]
    bws = [ssd.read_bandwidth_at(s) for s in sizes]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bws))
    assert bws[0] == pytest.approx(4096 / CTRL_S)
    assert bws[-1] == pytest.approx(6.1e9)


def test_bad_request_sizes_and_tiers_are_named() -> None:
    sys_ = load_system("m1_max_cpu")
    g = fit_graph(sys_, _sparse())  # the graph simulate() runs (attention fitted to the buffer)
    with pytest.raises(SpecError, match="not a flash tier"):
        make_policy("flash_ffn", tier="lpddr").place(sys_, g)
    good = make_policy("flash_ffn").place(sys_, g)
    bad = dataclasses.replace(good, read_request_bytes={"L0.w_up": 0.0})
    with pytest.raises(SpecError, match=r"read_request_bytes\.L0\.w_up"):
        memsim.simulate(sys_, g, policy=bad)


def test_larger_bundles_than_the_tier_request_never_beat_the_roofline() -> None:
    # the tier reads 4 KiB requests (1.37 GB/s); the bundles are 8197 B (2.73 GB/s):
    # faster than the tier's own rate, still never faster than the physical bound
    from memsim.invariants import check_conservation, roofline_lower_bound

    sys_ = load_system("m1_max_cpu", overrides={"tiers.ssd.read_request_bytes": 4096})
    g = fit_graph(sys_, _sparse())
    for policy in ("flash_ffn", "flash_ffn_bundled"):
        placement = make_policy(policy).place(sys_, g)
        for fidelity in ("analytic", "event"):
            r = memsim.simulate(sys_, g, policy=placement, fidelity=fidelity)
            assert r.makespan_s >= roofline_lower_bound(sys_, g, placement) * (1 - 1e-9)
            assert check_conservation(r, g) == []
