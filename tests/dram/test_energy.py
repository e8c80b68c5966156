"""DRAMPower-style energy against a hand calculation."""

from __future__ import annotations

import pytest

from hw_models import DRAMDevice
from memsim.dram import ControllerConfig, RequestTrace, simulate_with_log
from memsim.dram.power import energy_model


def test_n_reads_to_one_open_row(ddr4: DRAMDevice) -> None:
    # N = 100 reads to one row of bank 0 (RoBaRaCoCh: consecutive bursts), all at
    # cycle 0, open page: one ACT, 100 RD, no PRE, no refresh (ends long before
    # nREFI = 12480). Micron MT40A1G8 DDR4-3200 currents, 8 chips, VDD 1.2 V,
    # tCK 0.625 ns (the preset gives IPP0 but no standby IPP, so no VPP term):
    #   ACT : VDD (IDD0 - IDD3N) tRAS        = 1.2 x (57 - 52) mA x 52 x 0.625 ns x 8
    #                                        = 1.56 nJ
    #   RD  : VDD (IDD4R - IDD3N) tBL each   = 1.2 x (168 - 52) mA x 4 x 0.625 ns x 8
    #                                        = 2.784 nJ x 100 = 278.4 nJ
    #   background: active standby from the ACT (cycle 0) to the end of the last
    #   burst: RD_k = nRCD + k nCCD_L = 22 + 8k (same bank group), so the end is
    #   22 + 99 x 8 + nCL + nBL = 22 + 792 + 22 + 4 = 840 cycles
    #                                        = 1.2 x 52 mA x 840 x 0.625 ns x 8 = 262.08 nJ
    n = 100
    tr = RequestTrace.from_arrays([i * 64 for i in range(n)])
    st, _ = simulate_with_log(ddr4, tr, config=ControllerConfig(mapping="RoBaRaCoCh"))
    assert st.commands == {
        "ACT": 1,
        "PRE": 0,
        "RD": n,
        "WR": 0,
        "REF": 0,
        "REFpb": 0,
        "PDE": 0,
        "PDX": 0,
    }
    assert st.duration_cycles == 840
    assert st.background_cycles["active_standby"] == 840
    assert st.energy_by_command_j["ACT"] == pytest.approx(1.56e-9)
    assert st.energy_by_command_j["RD"] == pytest.approx(278.4e-9)
    assert st.energy_background_j["active_standby"] == pytest.approx(262.08e-9)
    assert st.energy_j == pytest.approx(1.56e-9 + 278.4e-9 + 262.08e-9)


def test_precharge_and_refresh_energy_terms(ddr4: DRAMDevice) -> None:
    m = energy_model(ddr4)
    assert m is not None
    # PRE: VDD (IDD0 - IDD2N)(tRC - tRAS) = 1.2 x (57 - 37) mA x 22 x 0.625 ns x 8 = 2.64 nJ
    assert m.pre_j == pytest.approx(2.64e-9)
    # REF: VDD (IDD5B - IDD2N) tRFC = 1.2 x (250 - 37) mA x 560 x 0.625 ns x 8 = 715.68 nJ
    assert m.ref_j == pytest.approx(715.68e-9)
    # a full ACT-PRE pair equals the IDD0 cycle minus its standby share
    pw, t = ddr4.power, ddr4.timing
    assert pw is not None
    pair = pw.VDD * (pw.IDD0 * t.nRC - pw.IDD3N * t.nRAS - pw.IDD2N * (t.nRC - t.nRAS))
    assert m.act_j + m.pre_j == pytest.approx(pair * 1e-3 * t.tCK_ns * 1e-9 * 8)


def test_power_down_spends_less_than_standby(ddr4: DRAMDevice) -> None:
    # the same sparse reads, with and without power-down after 20 idle cycles
    tr = RequestTrace.from_arrays([0, 1 << 20, 2 << 20], arrival_cycle=[0, 3000, 6000])
    awake, _ = simulate_with_log(ddr4, tr, config=ControllerConfig(row_policy="closed"))
    asleep, _ = simulate_with_log(
        ddr4, tr, config=ControllerConfig(row_policy="closed", powerdown_idle_cycles=20)
    )
    assert asleep.commands["PDE"] == asleep.commands["PDX"] >= 2
    assert asleep.violations == 0
    assert sum(asleep.energy_background_j.values()) < sum(awake.energy_background_j.values())
    # exiting power-down costs tXP on the next read
    assert asleep.avg_read_latency_cycles > awake.avg_read_latency_cycles
