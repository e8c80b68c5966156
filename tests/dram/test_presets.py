"""The shipped DRAM device presets: they load, and their derived figures match the sources."""

from __future__ import annotations

import pytest

from hw_models import dram_device_names, load_dram_device
from hw_models.units import GiB

# name -> (peak bandwidth in B/s from the JEDEC/vendor figure, capacity in bytes from the
# density the source states).
EXPECTED = {
    # 64 bit x 3200 MT/s / 8 = 25.6 GB/s; eight x8 8 Gb devices = 64 Gb = 8 GiB
    "ddr4_3200": (25.6e9, 8 * GiB),
    # 2 subchannels x 32 bit x 4800 MT/s / 8 = 38.4 GB/s; eight x8 16 Gb devices = 16 GiB
    "ddr5_4800": (38.4e9, 16 * GiB),
    # 16 bit x 6400 MT/s / 8 = 12.8 GB/s; one 16 Gb die = 2 GiB
    "lpddr5_6400": (12.8e9, 2 * GiB),
    # 1024 bit x 3200 MT/s / 8 = 409.6 GB/s; 8-high of 16 Gb = 16 GiB
    "hbm2e": (409.6e9, 16 * GiB),
    # 1024 bit x 6400 MT/s / 8 = 819.2 GB/s; 8-high of 16 Gb = 16 GiB
    "hbm3": (819.2e9, 16 * GiB),
}


def test_every_expected_preset_is_shipped() -> None:
    assert set(EXPECTED) <= dram_device_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_loads_with_sources_and_power(name: str) -> None:
    dev = load_dram_device(name)
    assert dev.sources
    assert dev.power is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_peak_bandwidth_matches_jedec(name: str) -> None:
    peak, _ = EXPECTED[name]
    assert load_dram_device(name).peak_bandwidth_bytes_per_s == pytest.approx(peak, rel=1e-9)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capacity_matches_stated_density(name: str) -> None:
    _, cap = EXPECTED[name]
    assert load_dram_device(name).capacity_bytes == cap


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_burst_is_one_64B_line_or_a_known_fraction(name: str) -> None:
    # DDR4 x64 BL8 = 64 B, DDR5 x32 BL16 = 64 B, LPDDR5 x16 BL16 = 32 B,
    # HBM2E x64 BL4 = 32 B, HBM3 x32 BL8 = 32 B.
    expected = {"ddr4_3200": 64, "ddr5_4800": 64, "lpddr5_6400": 32, "hbm2e": 32, "hbm3": 32}
    assert load_dram_device(name).organization.access_bytes == expected[name]
