"""Flash tiers' reads are priced by request size and queue depth (issue 9 defect 4, issue 10
item 7): the geometry's analytic bandwidth against the event simulation of the same device,
and the engine using it where it prices reads from a flash tier."""

from __future__ import annotations

import pytest

from hw_models import SpecError, load_system, load_system_dict
from hw_models.flash_presets import flash_device_names, load_flash_device
from memsim.flash import simulate_flash_reads
from tests.conftest import tiny_system_data

SIZES = [4096, 16384, 65536, 262144, 1048576]
QDS = [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("name", flash_device_names())
def test_analytic_read_bandwidth_bounds_the_event_simulation(name: str) -> None:
    geo = load_flash_device(name).geometry
    worst = 0.0
    for size in SIZES:
        for qd in QDS:
            sim = simulate_flash_reads(
                geo, request_bytes=size, queue_depth=qd, requests=1500
            ).throughput_bytes_per_s
            model = geo.read_bandwidth_bytes_per_s(size, qd)
            assert model >= 0.99 * sim, (size, qd)  # an upper bound ...
            assert model <= 1.35 * sim, (size, qd)  # ... that is never far off
            if qd == 1 or size >= 262144:
                assert model == pytest.approx(sim, rel=0.02), (size, qd)  # exact off the knee
            worst = max(worst, model / sim)
    assert worst > 1.05  # the knee is where the bound is optimistic (it is not a copy)


def test_small_reads_at_queue_depth_one_by_hand() -> None:
    geo = load_flash_device("apple_m1_max_1tb").geometry
    # one 4 KiB read alone: controller 3 us + overhead 20 us + tR 50 us + 4096 B at 800 MB/s
    r0 = 3e-6 + 20e-6 + 50e-6 + 4096 / 800e6
    assert geo.read_bandwidth_bytes_per_s(4096, 1) == pytest.approx(4096 / r0)
    # 64 outstanding: the controller's 3 us per command is the bottleneck (333 k IOPS)
    assert geo.read_bandwidth_bytes_per_s(4096, 64) == pytest.approx(4096 / 3e-6)
    # large reads: the 8 channels x 800 MB/s
    assert geo.read_bandwidth_bytes_per_s(1 << 20, 32) == pytest.approx(6.4e9)


def test_flash_tier_bandwidth_follows_request_size_and_queue_depth() -> None:
    base = load_system("m1_max_ssd").tiers["ssd"]
    # default 256 KiB x QD 32 reaches the channels' 6.4 GB/s: the tier's measured 6.1 GB/s caps
    assert base.effective_read_bandwidth_bytes_per_s == pytest.approx(6.1e9)
    small = load_system(
        "m1_max_ssd",
        overrides={"tiers.ssd.read_request_bytes": "4 KiB", "tiers.ssd.read_queue_depth": 1},
    ).tiers["ssd"]
    geo = small.flash_geometry
    assert geo is not None
    assert small.effective_read_bandwidth_bytes_per_s == geo.read_bandwidth_bytes_per_s(4096, 1)
    assert small.effective_read_bandwidth_bytes_per_s < 0.01 * 6.1e9


def test_engine_prices_flash_reads_with_the_geometry() -> None:
    from memsim import simulate
    from workloads import load_model
    from workloads.transformer import decode

    graph = decode(load_model("llama2_13b"), batch=1, context_len=256, dtype="fp16")
    small_dram = {"tiers.lpddr.capacity_bytes": "8 GiB", "tiers.lpddr.dram.count": 4}
    seq = simulate(load_system("m1_max_ssd", overrides=small_dram), graph, fidelity="analytic")
    rnd_sys = load_system(
        "m1_max_ssd",
        overrides={
            **small_dram,
            "tiers.ssd.read_request_bytes": "4 KiB",
            "tiers.ssd.read_queue_depth": 1,
        },
    )
    rnd = simulate(rnd_sys, graph, fidelity="analytic")
    t_seq = seq.summary()["bound_time_s"]["tier:ssd"]
    t_rnd = rnd.summary()["bound_time_s"]["tier:ssd"]
    # same bytes from the SSD, at 6.1 GB/s versus 4096 B / 78.12 us = 52.4 MB/s
    expected = 6.1e9 / rnd_sys.tiers["ssd"].effective_read_bandwidth_bytes_per_s
    assert t_rnd / t_seq == pytest.approx(expected, rel=0.02)
    assert rnd.makespan_s > 50 * seq.makespan_s


def test_request_settings_need_a_flash_geometry() -> None:
    with pytest.raises(SpecError, match="only used by a flash tier"):
        load_system("h100_sxm", overrides={"tiers.ddr.read_request_bytes": 4096})
    with pytest.raises(SpecError, match="only used by a flash tier"):
        load_system("t4_flexgen", overrides={"tiers.ssd.read_queue_depth": 4})  # no geometry


def test_caches_in_a_system_are_refused_not_ignored() -> None:
    data = tiny_system_data()
    data["caches"] = {"l2": {"capacity_bytes": "1 MiB", "backing_tier": "hbm"}}
    with pytest.raises(SpecError) as err:
        load_system_dict(data)
    assert "caches" in str(err.value) and "memsim cache" in str(err.value)
