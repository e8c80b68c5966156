"""Fixtures for the request-level DRAM tests: the shipped devices, by name."""

from __future__ import annotations

import pytest

from hw_models import DRAMDevice, load_dram_device

DEVICES = ("DDR4_3200", "DDR5_4800", "LPDDR5_6400", "HBM2E", "HBM3")


@pytest.fixture(scope="session")
def ddr4() -> DRAMDevice:
    """DDR4-3200AA, one x64 channel, 4 BG x 4 banks, tCK 0.625 ns."""
    return load_dram_device("DDR4_3200")


@pytest.fixture(scope="session")
def ddr5() -> DRAMDevice:
    """DDR5-4800B, two 32-bit subchannels, 8 BG x 4 banks, has tRFCsb."""
    return load_dram_device("DDR5_4800")
