"""The memory wall: growth of peak compute, DRAM and interconnect bandwidth.

Gholami et al., "AI and Memory Wall", IEEE Micro 44(3), 2024, Figure 1: over the last
20 years peak server hardware FLOPS grew 3.0x every two years, DRAM bandwidth 1.6x
and interconnect bandwidth 1.4x. memsim's figure is a log-linear fit
(:func:`plots.memory_wall.fit_growth`) over the shipped hardware table
(``plots/data/memory_wall.csv``, one cited datasheet per row), which lists its own
devices, not the paper's: hence the ``model`` class.
"""

from __future__ import annotations

from plots.memory_wall import fit_growth, load_memory_wall
from validation.core import Outcome, case

SOURCE = 'Gholami et al., "AI and Memory Wall", IEEE Micro 2024, Figure 1'
FITTED = (
    "none: a least-squares fit of log(value) on year over the shipped datasheet table "
    "(a different device list from the paper's)"
)


def _growth(column: str) -> Outcome:
    fit = fit_growth(load_memory_wall(), column)
    return Outcome(
        memsim=fit.per_two_years,
        note=f"{fit.n} devices, {fit.first_year:.0f}-{fit.last_year:.0f}",
    )


@case(
    "memory_wall_flops",
    title="Peak compute grows 3.0x every two years",
    source=SOURCE,
    quantity="peak FLOP/s growth per 2 years",
    unit="x",
    paper=3.0,
    tolerance="model",
    fitted=FITTED,
)
def flops() -> Outcome:
    return _growth("peak_flops_per_s")


@case(
    "memory_wall_dram",
    title="DRAM bandwidth grows 1.6x every two years",
    source=SOURCE,
    quantity="DRAM bandwidth growth per 2 years",
    unit="x",
    paper=1.6,
    tolerance="model",
    fitted=FITTED,
)
def dram() -> Outcome:
    return _growth("dram_bandwidth_bytes_per_s")


@case(
    "memory_wall_interconnect",
    title="Interconnect bandwidth grows 1.4x every two years",
    source=SOURCE,
    quantity="interconnect bandwidth growth per 2 years",
    unit="x",
    paper=1.4,
    tolerance="model",
    fitted=FITTED,
)
def interconnect() -> Outcome:
    return _growth("interconnect_bandwidth_bytes_per_s")
