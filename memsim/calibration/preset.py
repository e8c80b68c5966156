"""Turn a fit into a system spec: the base system with an ``efficiency`` block."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hw_models import System, load_system_dict
from hw_models.efficiency import LATER_PARAMETERS, Efficiency, FitSummary, Fitted, GemmShapeTable
from memsim.calibration.fit import CalibrationFit, fit, gemm_shape_tables, line_ranges
from memsim.calibration.measurements import Measurement
from memsim.calibration.model import ASSUMED, hardware_of


def _efficiency(
    result: CalibrationFit,
    *,
    measurements: str,
    date: str,
    previous: Efficiency | None,
    shapes: list[GemmShapeTable],
) -> Efficiency:
    params: dict[str, Fitted] = {}
    for name, value in result.values.items():
        sec = result.fitted_by.get(name)
        if sec is not None:
            lines = line_ranges(result.sections[sec].lines)
            params[name] = Fitted(
                value=value,
                std=result.stds[name],
                provenance="measured",
                source=f"{measurements} ({sec} section, lines {lines}; measured {date})",
            )
        elif previous is not None and name in previous.params:
            params[name] = previous.params[name]
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
) -> tuple[System, CalibrationFit]:
    """``system`` with its bf16 compute unit calibrated on ``rows``, and the fit.

    Sections without rows keep the values of an already calibrated ``system``.
    ``gemm_shapes``: also store per-shape measured/model ratios of the 16-bit GEMM rows
    (:func:`memsim.calibration.fit.gemm_shape_tables`), which the cost model then
    applies to GEMMs of exactly those shapes.
    """
    hw = hardware_of(system)
    unit = system.compute[hw.unit]
    previous = unit.efficiency
    result = fit(rows, hw, start=previous.values() if previous else None)
    if gemm_shapes:
        shapes = gemm_shape_tables(
            rows, result.values, hw, measurements=str(measurements), date=date
        )
    elif previous is not None and not any(r.section == "gemm" for r in rows):
        shapes = list(previous.gemm_shapes)  # no GEMM rows: the GEMM tables are kept too
    else:
        shapes = []
    eff = _efficiency(
        result, measurements=str(measurements), date=date, previous=previous, shapes=shapes
    )
    data: dict[str, Any] = system.model_dump(mode="json", exclude_none=True)
    data["compute"][hw.unit]["efficiency"] = eff.model_dump(mode="json", exclude_none=True)
    if name:
        data["name"] = name
    return load_system_dict(data, source=name or system.name), result
