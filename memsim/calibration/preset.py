"""Turn a fit into a system spec: the base system with an ``efficiency`` block."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hw_models import System, load_system_dict
from hw_models.efficiency import LATER_PARAMETERS, Efficiency, FitSummary, Fitted, GemmShapeTable
from hw_models.errors import Problem, SpecError
from memsim.calibration.fit import CalibrationFit, fit, gemm_shape_tables, line_ranges
from memsim.calibration.measurements import Measurement
from memsim.calibration.model import ASSUMED, SECTION_MODELS, hardware_of


def _section_of(name: str) -> str | None:
    """The section whose rows fit ``name`` (None for the parameters no section fits)."""
    return next((s for s, m in SECTION_MODELS.items() if name in m.free), None)


def _efficiency(
    result: CalibrationFit,
    *,
    measurements: str,
    date: str,
    previous: Efficiency | None,
    shapes: list[GemmShapeTable],
    sources: dict[str, list[str]] | None = None,
    donor: tuple[str, Efficiency] | None = None,
) -> Efficiency:
    sources = sources or {}
    params: dict[str, Fitted] = {}
    for name, value in result.values.items():
        sec = result.fitted_by.get(name)
        if sec is not None:
            lines = line_ranges(result.sections[sec].lines)
            if sources.get(sec):  # every row of the section names where it was published
                params[name] = Fitted(
                    value=value,
                    std=result.stds[name],
                    provenance="published",
                    source=f"fitted on {measurements} ({sec} section, lines {lines}): "
                    + "; ".join(sources[sec]),
                )
            else:
                params[name] = Fitted(
                    value=value,
                    std=result.stds[name],
                    provenance="measured",
                    source=f"{measurements} ({sec} section, lines {lines}; measured {date})",
                )
        elif previous is not None and name in previous.params:
            params[name] = previous.params[name]
        elif donor is not None and name in donor[1].params:
            dname, dp = donor[0], donor[1].params[name]
            own = _section_of(name)
            if name in result.unconstrained:
                usec = result.unconstrained[name]
                nrows = result.sections[usec].rows
                why = f"not constrained by the {nrows} {usec} rows of {measurements}"
            elif own is not None:
                why = f"no {own} rows in {measurements}"
            else:
                why = "no section fits it"
            params[name] = Fitted(
                value=dp.value,
                std=0.0,
                provenance="assumed",
                source=f"{why}: value carried from {dname} unchanged (a fraction applies to this "
                f"system's own peak; a time is not rescaled); there {dp.provenance}: {dp.source}",
            )
        elif name in LATER_PARAMETERS:
            why = LATER_PARAMETERS[name][1]
            params[name] = Fitted(value=value, std=0.0, provenance="assumed", source=why)
        else:
            _, kind, why = ASSUMED[name]
            params[name] = Fitted(value=value, std=0.0, provenance=kind, source=why)
    sections = {
        s: {"rows": float(f.rows), "median_abs_error": f.median_abs_error}
        for s, f in result.sections.items()
    }
    files = measurements
    if previous is not None and previous.fit is not None:
        # sections without rows keep their values: keep their residuals and file too
        kept = {s: v for s, v in previous.fit.sections.items() if s not in sections}
        if kept:
            sections = {**kept, **sections}
            if previous.fit.measurements != measurements:
                files = f"{previous.fit.measurements}; {measurements}"
    summary = FitSummary(measurements=files, date=date, sections=sections)
    return Efficiency(params=params, gemm_shapes=shapes, fit=summary)


def calibrate_system(
    system: System,
    rows: Sequence[Measurement],
    *,
    measurements: str | Path,
    date: str,
    name: str | None = None,
    gemm_shapes: bool = False,
    assume_from: System | None = None,
) -> tuple[System, CalibrationFit]:
    """``system`` with its bf16 compute unit calibrated on ``rows``, and the fit.

    Sections without rows keep the values of an already calibrated ``system``.
    ``gemm_shapes``: also store per-shape measured/model ratios of the 16-bit GEMM rows
    (:func:`memsim.calibration.fit.gemm_shape_tables`), which the cost model then
    applies to GEMMs of exactly those shapes.
    ``assume_from`` (a calibrated system, e.g. ``h200_sxm_calibrated``), for a few
    published figures rather than a full microbenchmark run: sections without rows, and
    the parameters the rows leave undetermined (``fit(freeze_unconstrained=True)``),
    take that system's values, marked ``assumed`` with where they came from. Rows that
    carry a ``source`` make the parameters they fit ``published`` (with the sources).
    """
    hw = hardware_of(system)
    unit = system.compute[hw.unit]
    previous = unit.efficiency
    donor: tuple[str, Efficiency] | None = None
    if assume_from is not None:
        donor_eff = next((u.efficiency for u in assume_from.compute.values() if u.efficiency), None)
        if donor_eff is None:
            raise SpecError(
                [
                    Problem(
                        "--assume-from", f"{assume_from.name} is not calibrated: nothing to carry"
                    )
                ]
            )
        donor = (assume_from.name, donor_eff)
    start = previous.values() if previous else (donor[1].values() if donor else None)
    result = fit(rows, hw, start=start, freeze_unconstrained=donor is not None)
    if gemm_shapes:
        shapes = gemm_shape_tables(
            rows, result.values, hw, measurements=str(measurements), date=date
        )
    elif previous is not None and not any(r.section == "gemm" for r in rows):
        shapes = list(previous.gemm_shapes)  # no GEMM rows: the GEMM tables are kept too
    else:
        shapes = []
    sources: dict[str, list[str]] = {}
    for sec in {r.section for r in rows}:
        sel = [r for r in rows if r.section == sec]
        if all(r.source for r in sel):
            sources[sec] = list(dict.fromkeys(r.source for r in sel))
    eff = _efficiency(
        result,
        measurements=str(measurements),
        date=date,
        previous=previous,
        shapes=shapes,
        sources=sources,
        donor=donor,
    )
    data: dict[str, Any] = system.model_dump(mode="json", exclude_none=True)
    data["compute"][hw.unit]["efficiency"] = eff.model_dump(mode="json", exclude_none=True)
    if name:
        data["name"] = name
    return load_system_dict(data, source=name or system.name), result
