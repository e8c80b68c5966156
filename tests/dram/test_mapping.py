"""Address mappings: field order, bank XOR, range checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models import DRAMDevice, SpecError, load_dram_device
from memsim.dram import MAPPINGS, get_mapping
from tests.dram.conftest import DEVICES


def test_robaracoch_keeps_consecutive_lines_in_one_row(ddr4: DRAMDevice) -> None:
    d = get_mapping("RoBaRaCoCh").decode(ddr4, np.arange(130) * 64)
    # 128 bursts per 8 KB row: lines 0..127 are columns 0..127 of bank 0, row 0
    assert d.column[:128].tolist() == list(range(128))
    assert set(d.bank[:128].tolist()) == {0} and set(d.bank_group[:128].tolist()) == {0}
    # line 128 moves to the next bank index, whose low bits are the bank group
    assert (d.bank_group[128], d.bank[128], d.column[128]) == (1, 0, 0)


def test_rocobarach_spreads_consecutive_lines_over_bank_groups(ddr4: DRAMDevice) -> None:
    d = get_mapping("RoCoBaRaCh").decode(ddr4, np.arange(16) * 64)
    assert d.bank_group.tolist() == [0, 1, 2, 3] * 4
    assert d.bank.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert set(d.column.tolist()) == {0}


def test_channel_lowest_mapping_alternates_ddr5_subchannels(ddr5: DRAMDevice) -> None:
    d = get_mapping("RoBaRaCoCh").decode(ddr5, np.arange(4) * 64)
    assert d.channel.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("name", DEVICES)
@pytest.mark.parametrize("mapping", MAPPINGS.names())
@pytest.mark.parametrize("xor", [False, True])
def test_decode_is_a_bijection_on_bursts(name: str, mapping: str, xor: bool) -> None:
    dev = load_dram_device(name)
    org = dev.organization
    m = get_mapping(mapping, bank_xor=xor)
    rng = np.random.default_rng(1)
    lines = rng.integers(0, dev.capacity_bytes // org.access_bytes, size=2000)
    addr = lines * org.access_bytes
    d = m.decode(dev, addr)
    assert (d.channel < org.channels).all() and (d.rank < org.ranks).all()
    assert (d.bank_group < org.bank_groups).all() and (d.bank < org.banks_per_group).all()
    assert (d.row < org.rows).all() and (d.column < org.columns // org.burst_length).all()
    assert (m.encode(dev, d) == addr).all()


@settings(max_examples=50, deadline=None)
@given(row=st.integers(0, 65535), bank=st.integers(0, 15))
def test_bank_xor_permutes_banks_within_a_row(row: int, bank: int) -> None:
    dev = load_dram_device("DDR4_3200")
    plain = get_mapping("RoBaRaCoCh")
    xor = get_mapping("RoBaRaCoCh", bank_xor=True)
    # the 16 banks of one row index map to 16 distinct banks under XOR
    org = dev.organization
    from memsim.dram.mapping import Decoded

    coords = Decoded(
        channel=np.zeros(16, np.int64),
        rank=np.zeros(16, np.int64),
        bank_group=np.arange(16) % 4,
        bank=np.arange(16) // 4,
        row=np.full(16, row, np.int64),
        column=np.zeros(16, np.int64),
    )
    addr = plain.encode(dev, coords)
    d = xor.decode(dev, addr)
    flat = d.bank * org.bank_groups + d.bank_group
    assert sorted(flat.tolist()) == list(range(16))
    assert int(flat[bank]) == bank ^ (row % 16)


def test_out_of_range_address_is_a_spec_error(ddr4: DRAMDevice) -> None:
    with pytest.raises(SpecError, match=r"trace.address\[1\]: address 0x200000000 is outside"):
        get_mapping("RoBaRaCoCh").decode(ddr4, [0, ddr4.capacity_bytes])


def test_unknown_mapping_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match=r"unknown address mapping 'RoCoCo'.*robaracoch"):
        get_mapping("RoCoCo")
