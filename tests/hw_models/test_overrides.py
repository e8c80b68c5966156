"""Overrides of DRAM-backed tiers keep the tier and its DRAM devices in step (issue 9, defect 5),
and repeated loads of a preset give the same, independent specs (the parse memo is invisible)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw_models import SpecError, System, load_system
from hw_models.yamlio import read_yaml

# h100_sxm.yaml: hbm = 5 HBM3 stacks x 1024 bit (128 B per transfer) at 5234 MT/s,
# read_bandwidth_bytes_per_s = 3.35 TB/s (NVIDIA's figure; 5 x 128 B x 5234e6 = 3.3498e12).
STACK_BYTES = 5 * 128


def test_bandwidth_override_sets_the_data_rate() -> None:
    s = load_system("h100_sxm", overrides={"tiers.hbm.read_bandwidth_bytes_per_s": 2.5e12})
    hbm = s.tiers["hbm"]
    assert hbm.read_bandwidth_bytes_per_s == 2.5e12
    assert hbm.dram is not None
    assert hbm.dram.data_rate_mtps == pytest.approx(5234 * 2.5 / 3.35, rel=1e-12)
    # the devices now deliver what the tier says (the file's 0.01 % rounding kept)
    assert hbm.dram.peak_bandwidth_bytes_per_s == pytest.approx(
        STACK_BYTES * 5234e6 * 2.5 / 3.35, rel=1e-12
    )
    assert hbm.dram.peak_bandwidth_bytes_per_s == pytest.approx(2.5e12, rel=1e-3)


@pytest.mark.parametrize(
    "text",
    ["tiers.hbm.read_bandwidth_bytes_per_s=3e12", "tiers.hbm.read_bandwidth_bytes_per_s=4 TB/s"],
)
def test_bandwidth_override_as_cli_string(text: str) -> None:
    s = load_system("h100_sxm", overrides=[text])
    hbm = s.tiers["hbm"]
    assert hbm.dram is not None
    assert hbm.dram.peak_bandwidth_bytes_per_s == pytest.approx(
        hbm.read_bandwidth_bytes_per_s, rel=1e-3
    )


def test_data_rate_override_sets_the_bandwidth() -> None:
    s = load_system("h100_sxm", overrides=["tiers.hbm.dram.data_rate_mtps=4000"])
    assert s.tiers["hbm"].read_bandwidth_bytes_per_s == pytest.approx(3.35e12 * 4000 / 5234)
    s = load_system("h100_sxm", overrides={"tiers.hbm.dram.count": 6})
    assert s.tiers["hbm"].read_bandwidth_bytes_per_s == pytest.approx(3.35e12 * 6 / 5)


def test_both_given_must_still_agree() -> None:
    with pytest.raises(SpecError, match="disagrees by more than 5 %"):
        load_system(
            "h100_sxm",
            overrides={
                "tiers.hbm.read_bandwidth_bytes_per_s": 2.5e12,
                "tiers.hbm.dram.data_rate_mtps": 5234,
            },
        )
    ok = load_system(
        "h100_sxm",
        overrides={
            "tiers.hbm.read_bandwidth_bytes_per_s": 2.56e12,
            "tiers.hbm.dram.data_rate_mtps": 4000,
        },
    )
    assert ok.tiers["hbm"].read_bandwidth_bytes_per_s == 2.56e12


def test_override_of_a_loaded_system_follows_too() -> None:
    base = load_system("h100_sxm")
    s = load_system(base, overrides={"tiers.hbm.read_bandwidth_bytes_per_s": 2.5e12})
    assert s == load_system("h100_sxm", overrides={"tiers.hbm.read_bandwidth_bytes_per_s": 2.5e12})


def test_lower_hbm_bandwidth_makes_decode_slower() -> None:
    from memsim import simulate
    from workloads import load_model
    from workloads.transformer import decode

    graph = decode(load_model("llama2_7b"), batch=1, context_len=1024)
    fast = simulate("h100_sxm", graph, fidelity="analytic").summary()
    slow_sys = load_system("h100_sxm", overrides=["tiers.hbm.read_bandwidth_bytes_per_s=2.5e12"])
    slow = simulate(slow_sys, graph, fidelity="analytic").summary()
    assert slow["makespan_s"] > fast["makespan_s"]
    # HBM time = latency + bytes / bandwidth: the byte term scales by 3.35 / 2.5 = 1.34
    ratio = slow["bound_time_s"]["tier:hbm"] / fast["bound_time_s"]["tier:hbm"]
    assert 1.3 < ratio <= 1.34 + 1e-9


def test_repeated_loads_are_equal_and_independent(tmp_path: Path) -> None:
    a = load_system("h100_sxm")
    b = load_system("h100_sxm", overrides={"tiers.hbm.capacity_bytes": "96 GiB"})
    c = load_system("h100_sxm")
    assert a == c and a is not c
    assert b.tiers["hbm"].capacity_bytes == 96 * 2**30
    assert c.tiers["hbm"].capacity_bytes == 80e9
    # the data handed back is the caller's: changing it changes no later load
    data, _ = read_yaml(Path(__file__).parents[2] / "hw_models/presets/systems/h100_sxm.yaml")
    data["tiers"]["hbm"]["capacity_bytes"] = 1
    assert load_system("h100_sxm") == a


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    src = Path(__file__).parents[2] / "hw_models/presets/systems/h100_sxm.yaml"
    path = tmp_path / "mine.yaml"
    path.write_text(src.read_text())
    first = load_system(path)
    path.write_text(src.read_text().replace("capacity_bytes: 80 GB", "capacity_bytes: 96 GB"))
    second = load_system(path)
    assert isinstance(second, System)
    assert first.tiers["hbm"].capacity_bytes == 80e9
    assert second.tiers["hbm"].capacity_bytes == 96e9


def test_a_rewritten_device_file_is_read_again(tmp_path: Path) -> None:
    """Device specs are memoised by content, not by path: a sweep that rewrites one DRAM or
    flash file per point gets each point's device."""
    from hw_models import load_dram_device, load_flash_device
    from hw_models.loader import DRAM_DIR

    dram = tmp_path / "dram.yaml"
    text = (DRAM_DIR / "ddr4_3200.yaml").read_text()
    dram.write_text(text)
    assert load_dram_device(dram).timing.nRCD == 22
    dram.write_text(text.replace("nRCD: 22", "nRCD: 24"))
    assert load_dram_device(dram).timing.nRCD == 24

    flash = tmp_path / "flash.yaml"
    text = (DRAM_DIR.parent / "flash" / "apple_m1_max_1tb.yaml").read_text()
    flash.write_text(text)
    assert load_flash_device(flash).geometry.queue_depth == 32
    flash.write_text(text.replace("queue_depth: 32", "queue_depth: 64"))
    assert load_flash_device(flash).geometry.queue_depth == 64
