"""DRAMPower-style energy from datasheet currents (IDD) and supply voltages.

Per command (one rank of ``chips_per_rank`` devices, t in ns, I in mA, V in volts;
E = V x I x t in pJ), following Chandrasekar et al., "Improved power modeling of
DDR SDRAMs" (DSD 2011) and the DRAMPower tool:

* ACT: ``VDD (IDD0 - IDD3N) tRAS``; PRE: ``VDD (IDD0 - IDD2N) (tRC - tRAS)``
  (together: the IDD0 ACT-PRE cycle minus its standby share);
* RD: ``VDD (IDD4R - IDD3N) tBL``; WR: ``VDD (IDD4W - IDD3N) tBL``;
* REF: ``VDD (IDD5B - IDD2N) tRFC``: a refreshing rank is counted in precharge
  standby by the background term, so its total is IDD5B x tRFC; REFpb: one bank's
  share, REF / banks;
* background per rank and cycle: IDD2N (all banks precharged), IDD3N (a row
  open), IDD2P / IDD3P in precharge / active power-down (IDD2N / IDD3N if the
  datasheet gives none);
* where VPP and the IPP currents (including the standby IPP2N / IPP3N) are given,
  the same terms with VPP and IPPx are added.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw_models.dram import DRAMDevice

BACKGROUND_STATES = (
    "precharge_standby",
    "active_standby",
    "precharge_powerdown",
    "active_powerdown",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyModel:
    """Energy per command (J) and background power per rank (W) of one device."""

    act_j: float
    pre_j: float
    rd_j: float
    wr_j: float
    ref_j: float
    refpb_j: float
    background_w: dict[str, float]


def energy_model(device: DRAMDevice) -> EnergyModel | None:
    """The device's :class:`EnergyModel`, or ``None`` without power data."""
    pw = device.power
    if pw is None:
        return None
    tm = device.timing
    tck = tm.tCK_ns * 1e-9
    chips = pw.chips_per_rank

    def e(volt: float, ma: float, cycles: float) -> float:
        return volt * ma * 1e-3 * cycles * tck * chips

    # VPP terms only where the datasheet gives the standby IPP currents too (an IPP0
    # without IPP3N would count the pump's standby current as activation energy)
    vpp = pw.VPP if (pw.VPP and pw.IPP2N is not None and pw.IPP3N is not None) else 0.0
    ipp = {
        k: (getattr(pw, k) or 0.0) for k in ("IPP0", "IPP2N", "IPP3N", "IPP4R", "IPP4W", "IPP5B")
    }
    act = e(pw.VDD, pw.IDD0 - pw.IDD3N, tm.nRAS) + e(vpp, ipp["IPP0"] - ipp["IPP3N"], tm.nRAS)
    pre = e(pw.VDD, pw.IDD0 - pw.IDD2N, tm.nRC - tm.nRAS) + e(
        vpp, ipp["IPP0"] - ipp["IPP2N"], tm.nRC - tm.nRAS
    )
    rd = e(pw.VDD, pw.IDD4R - pw.IDD3N, tm.nBL) + e(vpp, ipp["IPP4R"] - ipp["IPP3N"], tm.nBL)
    wr = e(pw.VDD, pw.IDD4W - pw.IDD3N, tm.nBL) + e(vpp, ipp["IPP4W"] - ipp["IPP3N"], tm.nBL)
    ref = e(pw.VDD, pw.IDD5B - pw.IDD2N, tm.nRFC) + e(vpp, ipp["IPP5B"] - ipp["IPP2N"], tm.nRFC)
    per_cycle = {
        "precharge_standby": pw.VDD * pw.IDD2N + vpp * ipp["IPP2N"],
        "active_standby": pw.VDD * pw.IDD3N + vpp * ipp["IPP3N"],
        "precharge_powerdown": pw.VDD * (pw.IDD2P or pw.IDD2N),
        "active_powerdown": pw.VDD * (pw.IDD3P or pw.IDD3N),
    }
    return EnergyModel(
        act_j=act,
        pre_j=pre,
        rd_j=rd,
        wr_j=wr,
        ref_j=ref,
        refpb_j=ref / device.organization.banks,
        background_w={k: v * 1e-3 * chips for k, v in per_cycle.items()},
    )


def energy_breakdown(
    device: DRAMDevice, *, commands: dict[str, int], background_cycles: dict[str, int]
) -> tuple[dict[str, float], dict[str, float]]:
    """Energy (J) by command type and by background state.

    ``commands`` counts ``ACT``, ``PRE``, ``RD``, ``WR``, ``REF``, ``REFpb``;
    ``background_cycles`` counts rank-cycles in each of :data:`BACKGROUND_STATES`.
    All zeros without power data.
    """
    model = energy_model(device)
    if model is None:
        return {k: 0.0 for k in commands}, {k: 0.0 for k in BACKGROUND_STATES}
    per = {
        "ACT": model.act_j,
        "PRE": model.pre_j,
        "RD": model.rd_j,
        "WR": model.wr_j,
        "REF": model.ref_j,
        "REFpb": model.refpb_j,
    }
    by_cmd = {k: commands.get(k, 0) * v for k, v in per.items()}
    tck = device.timing.tCK_ns * 1e-9
    by_bg = {k: background_cycles.get(k, 0) * tck * w for k, w in model.background_w.items()}
    return by_cmd, by_bg
