"""The shipped system presets: they load, cite their sources, match the datasheets.

Every expected number below was derived by hand from the cited document (the
comment beside it says which), not read back from the YAML files.
"""

from __future__ import annotations

import itertools
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models import SpecError, System, load_system, load_system_dict, system_names
from hw_models.loader import SYSTEM_DIR
from memsim.cli.main import main

NAMES = system_names()

# The presets this task ships; a test below fails if one goes missing.
REQUIRED = {
    "a100_80gb_sxm",
    "h100_sxm",
    "h200_sxm",
    "b200",
    "mi300x",
    "tpu_v5e",
    "sn40l",
    "sn40l_8s",
    "m1_max_ssd",
    "m1_max_cpu",
    "rtx_4090",
    "l40s",
    "t4_flexgen",
    "dgx_h100",
}

TB = 1e12
GB = 1e9
GiB = 1024**3

# (system, tier) -> peak bandwidth of its DRAM devices, computed by hand as
# devices x interface bytes x transfers per second.
HAND_DERIVED_DRAM_PEAK = {
    # A100 whitepaper: 5 HBM2e stacks x 1024 bit, 1593 MHz DDR = 3186 MT/s
    ("a100_80gb_sxm", "hbm"): 5 * 128 * 3186e6,  # 2.039 TB/s
    # 8 channels x 64 bit DDR4-3200 (EPYC 7742)
    ("a100_80gb_sxm", "ddr"): 8 * 8 * 3200e6,  # 204.8 GB/s
    # H100: 5 HBM3 stacks x 1024 bit at 5.234 Gb/s (3.35e12 / 640 B)
    ("h100_sxm", "hbm"): 5 * 128 * 5234e6,  # 3.3498 TB/s
    ("dgx_h100", "hbm"): 5 * 128 * 5234e6,
    # Sapphire Rapids: 8 channels DDR5-4800, 64 bit per DIMM channel
    ("h100_sxm", "ddr"): 8 * 8 * 4800e6,  # 307.2 GB/s
    ("h200_sxm", "ddr"): 8 * 8 * 4800e6,
    ("l40s", "ddr"): 8 * 8 * 4800e6,
    ("dgx_h100", "ddr"): 16 * 8 * 4800e6,  # two sockets: 614.4 GB/s
    # H200: 6 HBM3E stacks x 1024 bit at 6.25 Gb/s
    ("h200_sxm", "hbm"): 6 * 128 * 6250e6,  # 4.8 TB/s
    ("h200_sxm_calibrated", "hbm"): 6 * 128 * 6250e6,  # the same H200, calibrated
    ("h200_sxm_calibrated", "ddr"): 8 * 8 * 4800e6,
    # the calibrated copies of the presets above (same hardware, efficiency block added)
    ("a100_80gb_sxm_calibrated", "hbm"): 5 * 128 * 3186e6,
    ("a100_80gb_sxm_calibrated", "ddr"): 8 * 8 * 3200e6,
    ("h100_sxm_calibrated", "hbm"): 5 * 128 * 5234e6,
    ("h100_sxm_calibrated", "ddr"): 8 * 8 * 4800e6,
    ("m1_max_ssd_calibrated", "lpddr"): 32 * 2 * 6400e6,
    ("rtx_4090_calibrated", "ddr"): 2 * 8 * 4800e6,
    # B200: 8 HBM3E stacks x 1024 bit at 7.8125 Gb/s
    ("b200", "hbm"): 8 * 128 * 7812.5e6,  # 8.0 TB/s
    # Xeon 8570: 8 channels DDR5-5600
    ("b200", "ddr"): 8 * 8 * 5600e6,  # 358.4 GB/s
    # MI300X: 8 HBM3 stacks x 1024 bit at 5.2 Gb/s
    ("mi300x", "hbm"): 8 * 128 * 5200e6,  # 5.3248 TB/s
    # EPYC 9004: 12 channels DDR5-4800
    ("mi300x", "ddr"): 12 * 8 * 4800e6,  # 460.8 GB/s
    # TPU v5e: 2 stacks x 1024 bit at 3.2 Gb/s
    ("tpu_v5e", "hbm"): 2 * 128 * 3200e6,  # 819.2 GB/s
    # M1 Max: 512-bit LPDDR5-6400 = 32 x16 channels
    ("m1_max_ssd", "lpddr"): 32 * 2 * 6400e6,  # 409.6 GB/s
    ("m1_max_cpu", "lpddr"): 32 * 2 * 6400e6,  # 409.6 GB/s
    # i9-13900K: 2 channels DDR5-4800
    ("rtx_4090", "ddr"): 2 * 8 * 4800e6,  # 76.8 GB/s
    # one Skylake-SP socket: 6 channels DDR4-2666
    ("t4_flexgen", "ddr"): 6 * 8 * 2666e6,  # 127.97 GB/s
}

# name -> (dense bf16 FLOP/s per device, HBM capacity bytes, HBM bandwidth B/s)
GOLDEN = {
    # A100 datasheet (80GB SXM): BF16 312 TFLOPS dense, 80 GB HBM2e, 2,039 GB/s
    "a100_80gb_sxm": (312e12, 80 * GB, 2039 * GB),
    # H100 datasheet (SXM): BF16 1,979 TFLOPS with sparsity -> 989.4 dense, 80 GB, 3.35 TB/s
    "h100_sxm": (989.4e12, 80 * GB, 3.35 * TB),
    # H200 datasheet (SXM): same 989.4 dense BF16, 141 GB HBM3e, 4.8 TB/s
    "h200_sxm": (989.4e12, 141 * GB, 4.8 * TB),
    "h200_sxm_calibrated": (989.4e12, 141 * GB, 4.8 * TB),
    # HGX B200 datasheet: 36 PFLOPS FP16/BF16 sparse over 8 GPUs -> 2.25 PF dense per GPU;
    # 1,440 GB and 64 TB/s over 8 GPUs -> 180 GB and 8 TB/s per GPU
    "b200": (2.25e15, 180 * GB, 8 * TB),
    # MI300X data sheet: BF16 1,307.4 TFLOPS dense, 192 GB HBM3, 5.3 TB/s
    "mi300x": (1307.4e12, 192 * GB, 5.3 * TB),
    # Cloud TPU v5e docs: 197 TFLOPs bf16, 16 GB HBM2 at 819 GBps
    "tpu_v5e": (197e12, 16 * GB, 819.2 * GB),
    # SN40L (MICRO 2024): 638 BF16 TFLOPS, 64 GiB HBM; Hot Chips 2024: 25.6 TB/s / 16 sockets
    "sn40l": (638e12, 64 * GiB, 1.6 * TB),
    # SN40L Node (MICRO 2024 Table II, per socket): 638 BF16 TFLOPS, 64 GB HBM at 1.8 TB/s
    "sn40l_8s": (638e12, 64 * GiB, 1.8 * TB),
    # DGX H100 datasheet: 8 x H100 SXM, per GPU as h100_sxm
    "dgx_h100": (989.4e12, 80 * GB, 3.35 * TB),
}

# How close to the memory a tier kind sits (lower = closer to compute).
LEVEL = {"sram": 0, "hbm": 1, "gddr": 1, "lpddr": 1, "ddr": 2, "cxl": 2, "flash": 3}


def _system(name: str) -> System:
    return load_system(name)


def test_every_required_preset_is_shipped() -> None:
    assert set(NAMES) >= REQUIRED


@pytest.mark.parametrize("name", NAMES)
def test_preset_loads_and_cites_a_source(name: str) -> None:
    system = _system(name)
    path = SYSTEM_DIR / f"{name}.yaml"
    assert path.is_file(), f"preset {name} is not stored as {path.name}"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["name"] == path.stem == system.name
    cited = [s for s in system.sources if s.title.strip() and (s.where or "").strip()]
    assert cited, f"{name}: no source names both a title and where the numbers are"


@pytest.mark.parametrize("name", NAMES)
def test_dram_attachments_match_the_tier_bandwidth_within_1_percent(name: str) -> None:
    system = _system(name)
    for tier_name, tier in system.tiers.items():
        if tier.dram is None:
            continue
        derived = tier.dram.peak_bandwidth_bytes_per_s
        assert derived == pytest.approx(tier.read_bandwidth_bytes_per_s, rel=0.01), (
            f"{name}.{tier_name}: {tier.dram.count} x {tier.dram.device} = {derived:.4g} B/s"
        )
        key = (name, tier_name)
        assert key in HAND_DERIVED_DRAM_PEAK, f"add a hand-derived peak for {key}"
        assert derived == pytest.approx(HAND_DERIVED_DRAM_PEAK[key], rel=1e-6)


def test_every_hand_derived_dram_peak_belongs_to_a_shipped_attachment() -> None:
    for name, tier_name in HAND_DERIVED_DRAM_PEAK:
        assert _system(name).tier(tier_name).dram is not None, (name, tier_name)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_datasheet_figures(name: str) -> None:
    bf16, hbm_capacity, hbm_bandwidth = GOLDEN[name]
    system = _system(name)
    assert system.peak_flops_per_s("bf16") == pytest.approx(bf16, rel=1e-3)
    hbm = system.tier("hbm")
    assert hbm.kind == "hbm"
    assert hbm.capacity_bytes == pytest.approx(hbm_capacity, rel=1e-9)
    assert hbm.read_bandwidth_bytes_per_s == pytest.approx(hbm_bandwidth, rel=1e-3)


def test_h100_hbm_ridge_point() -> None:
    # 989.4e12 FLOP/s / 3.35e12 B/s = 295.34 FLOP/B
    assert _system("h100_sxm").ridge_point("hbm") == pytest.approx(295.34, abs=0.01)


def test_dgx_h100_aggregates_eight_gpus() -> None:
    dgx = _system("dgx_h100")
    assert dgx.devices == 8
    # 8 x 80 GB HBM3 = 640 GB (DGX H100 datasheet: 640 GB total GPU memory)
    assert dgx.total_capacity_bytes("hbm") == pytest.approx(8 * 80e9)
    assert dgx.peak_flops_per_s("bf16", per_device=False) == pytest.approx(8 * 989.4e12)
    # NVLink 4: 18 links x 25 GB/s per direction = 450 GB/s per direction per GPU,
    # the datasheet's 900 GB/s counting both directions
    assert dgx.peer_link("hbm") == "nvlink"
    assert dgx.path("hbm", "hbm") == []  # data in a tier does not move
    nvlink = dgx.links["nvlink"]
    assert nvlink.peer_to_peer
    assert nvlink.bandwidth_bytes_per_s == pytest.approx(18 * 25e9)
    # one host tier shared by all GPUs: 2 TB counted once
    assert dgx.total_capacity_bytes("ddr") == pytest.approx(2e12)


def test_sn40l_node_is_eight_sockets_joined_by_p2p_links() -> None:
    node, one = _system("sn40l_8s"), _system("sn40l")
    assert node.devices == 8
    # 8 sockets x 64 GiB HBM = 512 GiB; x 1.5 TiB DDR = 12 TiB (MICRO 2024 Table II, Sec. I)
    assert node.total_capacity_bytes("hbm") == pytest.approx(8 * 64 * GiB)
    assert node.total_capacity_bytes("ddr") == pytest.approx(8 * 1.5 * 1024 * GiB)
    # Table II per socket: DDR 200 GB/s; the paper's "DDR to HBM at over 1 TB/s in a single
    # SN40L Node" holds for the achievable aggregate: 8 x 200 GB/s x 0.85 = 1.36 TB/s
    ddr = node.tier("ddr")
    assert ddr.read_bandwidth_bytes_per_s == pytest.approx(200 * GB)
    assert 8 * ddr.effective_read_bandwidth_bytes_per_s > 1 * TB
    # P2P links: unpublished bandwidth, ASSUMED one PCIe-Gen5-x16-class port per direction
    # (16 lanes x 32 GT/s x 128/130 / 8 = 63.0 GB/s, rounded to the 64 GB/s quoted for Gen5 x16)
    assert node.peer_link("hbm") == "p2p"
    p2p = node.links["p2p"]
    assert p2p.peer_to_peer and p2p.collective_algorithm == "ring"
    assert p2p.bandwidth_bytes_per_s == pytest.approx(64 * GB)
    assert p2p.bandwidth_bytes_per_s == pytest.approx(16 * 32e9 * 128 / 130 / 8, rel=0.02)
    # compute, SRAM and the per-kernel cost per socket as the one-socket preset
    assert node.compute["pcu"].kernel_cost == one.compute["pcu"].kernel_cost
    assert node.tier("sram") == one.tier("sram")


def test_single_device_h100_and_dgx_agree_per_gpu() -> None:
    one, dgx = _system("h100_sxm"), _system("dgx_h100")
    assert one.compute == dgx.compute
    assert one.tier("hbm") == dgx.tier("hbm")
    assert one.links["pcie"] == dgx.links["pcie"]


def _ordered_levels(system: System) -> list[tuple[int, str]]:
    return sorted((LEVEL[t.kind], n) for n, t in system.tiers.items())


def _latency_from_compute(system: System, tier: str) -> float:
    """Tier latency plus the latency of every link on the way from the nearest device tier."""
    device_tiers = [n for n, t in system.tiers.items() if t.scope == "device"]
    best = float("inf")
    for src in device_tiers:
        links = system.path(src, tier) if src != tier else []
        total = system.tier(tier).latency_s + sum(system.links[lk].latency_s for lk in links)
        best = min(best, total)
    return best


@pytest.mark.parametrize("name", NAMES)
def test_tiers_farther_from_compute_are_slower_bigger_and_costlier(name: str) -> None:
    """SRAM > HBM/GDDR/LPDDR > DDR > flash in bandwidth; the reverse in capacity,
    energy per byte and latency seen from the compute."""
    system = _system(name)
    levels = _ordered_levels(system)
    for (lo, near), (hi, far) in itertools.pairwise(levels):
        if lo == hi:
            continue
        a, b = system.tier(near), system.tier(far)
        assert a.read_bandwidth_bytes_per_s > b.read_bandwidth_bytes_per_s, (near, far)
        assert a.capacity_bytes < b.capacity_bytes, (near, far)
        assert a.read_energy_j_per_byte <= b.read_energy_j_per_byte, (near, far)
        assert _latency_from_compute(system, near) < _latency_from_compute(system, far)


@pytest.mark.parametrize("name", NAMES)
def test_every_host_tier_is_reachable_from_every_device_tier(name: str) -> None:
    system = _system(name)
    device = [n for n, t in system.tiers.items() if t.scope == "device"]
    host = [n for n, t in system.tiers.items() if t.scope == "host"]
    assert device, f"{name} has no device tier"
    for src in device:
        for dst in host:
            links = system.path(src, dst)
            assert links, f"{name}: {src} -> {dst} needs at least one link"
            # the narrowest link bounds the path, and it is slower than the device tier
            bw = system.path_bandwidth_bytes_per_s(src, dst)
            assert bw == min(system.links[lk].bandwidth_bytes_per_s for lk in links)
            assert bw < system.tier(src).read_bandwidth_bytes_per_s


@pytest.mark.parametrize("name", NAMES)
def test_peaks_and_fractions_are_physical(name: str) -> None:
    system = _system(name)
    for unit in system.compute.values():
        peaks = {d: float(v) for d, v in unit.peak_flops_per_s.items()}
        # narrower types never run slower than wider ones on the same unit
        for wide, narrow in (("fp32", "bf16"), ("tf32", "bf16"), ("bf16", "fp8"), ("fp16", "fp8")):
            if wide in peaks and narrow in peaks:
                assert peaks[narrow] >= peaks[wide], (wide, narrow)
        if "int8" in peaks and "int4" in peaks:
            assert peaks["int4"] >= peaks["int8"]
    for tier in system.tiers.values():
        assert 0.5 <= tier.achievable_bandwidth_fraction <= 1.0
    for link in system.links.values():
        assert 0.5 <= link.achievable_bandwidth_fraction <= 1.0


def test_flash_tiers_respect_their_geometry() -> None:
    # LLM in a Flash (Sec. 2.2): about 6.1 GB/s sequential on the Mac's SSD; the shipped
    # flash device preset's assumed geometry has a channel bound of 8 x 800 MB/s = 6.4 GB/s
    ssd = _system("m1_max_ssd").tier("ssd")
    geometry = ssd.flash_geometry
    assert geometry is not None
    assert geometry.peak_read_bandwidth_bytes_per_s == pytest.approx(6.4e9)
    assert ssd.read_bandwidth_bytes_per_s == pytest.approx(6.1e9)
    assert ssd.read_bandwidth_bytes_per_s <= geometry.peak_read_bandwidth_bytes_per_s
    # FlexGen Section 6: SSD read about 2 GB/s, write about 1 GB/s
    t4_ssd = _system("t4_flexgen").tier("ssd")
    assert t4_ssd.read_bandwidth_bytes_per_s == pytest.approx(2e9)
    assert t4_ssd.write_bandwidth == pytest.approx(1e9)


def test_flexgen_pcie_fraction_reproduces_the_measured_host_to_gpu_rate() -> None:
    # FlexGen's cost model: 12.89 GiB/s host-to-GPU on the T4 instance = 13.84 GB/s
    pcie = _system("t4_flexgen").links["pcie"]
    assert pcie.effective_bandwidth_bytes_per_s == pytest.approx(12.89 * GiB, rel=0.01)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted({n for n, _ in HAND_DERIVED_DRAM_PEAK})),
    factor=st.one_of(st.floats(0.3, 0.94), st.floats(1.06, 3.0)),
)
def test_bandwidth_disagreeing_with_the_dram_devices_is_rejected(name: str, factor: float) -> None:
    """A user who edits a tier's bandwidth in the file away from its DRAM devices by > 5 %
    gets a SpecError naming that tier (an override instead moves the devices' data rate
    along: tests/hw_models/test_overrides.py)."""
    tier = next(t for (n, t) in HAND_DERIVED_DRAM_PEAK if n == name)
    given_bw = _system(name).tier(tier).read_bandwidth_bytes_per_s * factor
    data = yaml.safe_load((SYSTEM_DIR / f"{name}.yaml").read_text())
    data["tiers"][tier]["read_bandwidth_bytes_per_s"] = given_bw
    with pytest.raises(SpecError) as err:
        load_system_dict(data)
    assert any(p.path.startswith(f"tiers.{tier}") for p in err.value.problems)


def test_cli_presets_lists_every_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["systems"]) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_cli_show_every_preset(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", name]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{name}: ")
    assert main(["show", name, "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["devices"] == _system(name).devices
    assert set(summary["tiers"]) == set(_system(name).tiers)
