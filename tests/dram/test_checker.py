"""The protocol checker: silent on every controller configuration, loud on a bad log."""

from __future__ import annotations

import itertools

import pytest

from hw_models import DRAMDevice, load_dram_device
from memsim.dram import (
    MAPPINGS,
    REFRESH_MODES,
    ROW_POLICIES,
    SCHEDULERS,
    CommandLog,
    ControllerConfig,
    DRAMStats,
    RequestTrace,
    check_commands,
    simulate_with_log,
    traffic,
)
from memsim.dram.checker import timing_rules
from memsim.dram.controller import COMMAND_NAMES

ACT, PRE, RD = (COMMAND_NAMES.index(c) for c in ("ACT", "PRE", "RD"))
REFRESH = [r for r in REFRESH_MODES.names() if r != "none"]


@pytest.mark.parametrize(
    ("scheduler", "row_policy", "mapping", "refresh"),
    list(itertools.product(SCHEDULERS.names(), ROW_POLICIES.names(), MAPPINGS.names(), REFRESH)),
)
def test_no_violation_for_any_configuration(
    ddr5: DRAMDevice, scheduler: str, row_policy: str, mapping: str, refresh: str
) -> None:
    # DDR5 (two subchannels, 8 bank groups, tRFCsb) with reads and writes, bursty
    # arrivals, refresh due several times (nREFI = 9360 cycles) and power-down
    tr = traffic.mix(ddr5, 600, write_fraction=0.3, interval_cycles=40, seed=11)
    cfg = ControllerConfig(
        scheduler=scheduler,
        row_policy=row_policy,
        mapping=mapping,
        refresh=refresh,
        powerdown_idle_cycles=30,
        row_timeout_cycles=20,
        write_queue_size=8,
    )
    st, log = simulate_with_log(ddr5, tr, config=cfg)
    assert st.violations == 0
    served = sum(1 for c in log.command if c in (RD, RD + 1))
    assert served == len(tr)


@pytest.mark.parametrize("name", ["DDR4_3200", "LPDDR5_6400", "HBM2E", "HBM3"])
def test_no_violation_on_every_device_at_saturation(name: str) -> None:
    dev = load_dram_device(name)
    tr = traffic.mix(dev, 3000, seed=4)
    st, _ = simulate_with_log(dev, tr, config=ControllerConfig(mapping="RoCoBaRaCh"))
    assert st.violations == 0


def _two_rows_one_bank(dev: DRAMDevice) -> tuple[DRAMStats, CommandLog]:
    # ChRaBaRoCo: +row_bytes is the next row of the same bank -> ACT, RD, PRE, ACT, RD
    org = dev.organization
    tr = RequestTrace.from_arrays([0, org.row_bytes], arrival_cycle=[0, 1])
    return simulate_with_log(dev, tr, config=ControllerConfig(mapping="ChRaBaRoCo"))


def test_checker_catches_an_act_one_cycle_early(ddr4: DRAMDevice) -> None:
    st, log = _two_rows_one_bank(ddr4)
    assert st.violations == 0
    cmds = list(log.command)
    assert cmds == [ACT, RD, PRE, ACT, RD]
    pre_t, act_t = int(log.cycle[2]), int(log.cycle[3])
    assert act_t - pre_t == ddr4.timing.nRP  # the controller issued it as early as allowed
    bad = log.replace_rows(3, cycle=act_t - 1)
    found = check_commands(ddr4, bad)
    assert any("PRE->ACT same bank (nRP)" in v.rule for v in found)
    v = next(v for v in found if "nRP" in v.rule)
    assert (v.required, v.actual, v.index) == (ddr4.timing.nRP, ddr4.timing.nRP - 1, 3)


def test_checker_catches_state_errors(ddr4: DRAMDevice) -> None:
    _, log = _two_rows_one_bank(ddr4)
    # a RD to a row that is not open
    found = check_commands(ddr4, log.replace_rows(4, row=int(log.row[4]) + 1))
    assert any(v.rule == "RD/WR to a row that is not open" for v in found)
    # the PRE turned into a RD: the second ACT hits an open bank
    found = check_commands(ddr4, log.replace_rows(2, command=RD, row=int(log.row[0])))
    assert any(v.rule == "ACT to a bank whose row is open" for v in found)
    # two commands in one cycle
    found = check_commands(ddr4, log.replace_rows(1, cycle=int(log.cycle[0])))
    assert any(v.rule == "two commands in one cycle on a channel" for v in found)


def test_checker_catches_a_fifth_act_inside_tfaw(ddr4: DRAMDevice) -> None:
    # five ACTs to five banks of different groups, 4 (= nRRD_S) cycles apart:
    # the fifth comes 16 cycles after the first, inside tFAW = 34
    t = ddr4.timing
    org = ddr4.organization
    import numpy as np

    from memsim.dram import CommandLog

    n = 5
    log = CommandLog(
        channel=np.zeros(n, np.int64),
        cycle=np.arange(n, dtype=np.int64) * t.nRRD_S,
        command=np.full(n, ACT, np.int64),
        rank=np.zeros(n, np.int64),
        bank_group=np.arange(n, dtype=np.int64) % org.bank_groups,
        bank=np.arange(n, dtype=np.int64) // org.bank_groups,
        row=np.zeros(n, np.int64),
    )
    found = check_commands(ddr4, log)
    assert [v.rule for v in found] == ["more than four ACTs in tFAW"]
    assert (found[0].required, found[0].actual) == (t.nFAW, 4 * t.nRRD_S)


def test_every_rule_has_a_positive_distance_on_every_device() -> None:
    for name in ("DDR4_3200", "DDR5_4800", "LPDDR5_6400", "HBM2E", "HBM3"):
        rules = timing_rules(load_dram_device(name))
        assert len({r.name for r in rules}) == len(rules)
        assert all(r.distance > 0 for r in rules if "other rank" not in r.scope)
