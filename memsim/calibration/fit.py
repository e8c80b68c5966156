"""Least-squares fit of the efficiency parameters to microbenchmark rows.

Sections are fitted in :data:`SECTION_MODELS` order with
:func:`scipy.optimize.least_squares` on relative (log) errors, in log parameter space
(parameters span nine decades), with a soft-L1 loss: eager rows bounded by host
launches scatter by up to ~9 % (the data's stated noise) and must not drag the rest.
Uncertainty: the covariance ``s^2 (J^T J)^-1`` of the log parameters at the optimum
(``s^2`` = the residual variance), mapped to one-sigma values by the delta method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from hw_models.efficiency import LATER_PARAMETERS, GemmShapeTable
from hw_models.errors import Problem, SpecError
from memsim.calibration.measurements import Measurement
from memsim.calibration.model import ASSUMED, SECTION_MODELS, Hardware, Predictor

#: soft-L1 scale of the relative error: errors well below it count as squares
NOISE_SCALE = 0.03
#: sections a first calibration may lack: their parameters then copy others
#: (:data:`hw_models.efficiency.LATER_PARAMETERS`, marked assumed)
OPTIONAL_SECTIONS = frozenset({"layer_ops"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionFit:
    """Residuals of one section at the fitted parameters."""

    section: str
    rows: int
    lines: tuple[int, ...]
    median_abs_error: float
    p90_abs_error: float
    max_abs_error: float
    params: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationFit:
    """Fitted values, one-sigma uncertainties and per-section residuals."""

    values: dict[str, float]
    stds: dict[str, float]
    sections: dict[str, SectionFit]
    fitted_by: dict[str, str] = field(default_factory=dict)  # param -> section
    predictions: dict[int, float] = field(default_factory=dict)  # line -> predicted s


def predict(
    values: Mapping[str, float], rows: Sequence[Measurement], hw: Hardware
) -> dict[int, float]:
    """Predicted seconds of every row (by line) at ``values``."""
    out: dict[int, float] = {}
    for name, model in SECTION_MODELS.items():
        sel = [r for r in rows if r.section == name]
        if sel:
            pred = model.predict(values, sel, hw)
            out.update({r.line: float(t) for r, t in zip(sel, pred, strict=True)})
    return out


def _residual_fn(
    values: Mapping[str, float],
    names: list[str],
    sel: Sequence[Measurement],
    meas: np.ndarray,
    model_predict: Predictor,
    hw: Hardware,
) -> Callable[[np.ndarray], np.ndarray]:
    """Log relative errors of ``sel`` as a function of the log values of ``names``."""

    def resid(x: np.ndarray) -> np.ndarray:
        trial = dict(values)
        trial.update({n: float(math.exp(v)) for n, v in zip(names, x, strict=True)})
        return np.asarray(np.log(np.asarray(model_predict(trial, sel, hw)) / meas))

    return resid


def fit(
    rows: Sequence[Measurement], hw: Hardware, *, start: Mapping[str, float] | None = None
) -> CalibrationFit:
    """Fit every section present in ``rows``; sections absent keep ``start`` values.

    ``start`` (e.g. the values of an already calibrated preset) seeds the fit and
    supplies the parameters of absent sections; :class:`SpecError` if a needed
    parameter has neither a section nor a start value.
    """
    values: dict[str, float] = {k: v[0] for k, v in ASSUMED.items()}
    stds: dict[str, float] = dict.fromkeys(values, 0.0)
    for model in SECTION_MODELS.values():
        for name, (start_value, _, _) in model.free.items():
            values[name] = start_value
    if start:
        values.update({k: float(v) for k, v in start.items() if k in values})
    present = {r.section for r in rows}
    missing = [s for s in SECTION_MODELS if s not in present and s not in OPTIONAL_SECTIONS]
    if missing and not start:
        raise SpecError(
            [
                Problem(
                    "measurements",
                    f"no rows for section(s) {', '.join(missing)}: measure them, or calibrate "
                    "a system that is already calibrated (its values are kept)",
                )
            ]
        )
    sections: dict[str, SectionFit] = {}
    fitted_by: dict[str, str] = {}
    for sname, model in SECTION_MODELS.items():
        sel = [r for r in rows if r.section == sname]
        if not sel:
            continue
        names = list(model.free)
        meas = np.array([r.time_s for r in sel])
        lo_b = np.log([model.free[n][1] for n in names])
        hi_b = np.log([model.free[n][2] for n in names])
        x0 = np.clip(np.log([max(values[n], 1e-300) for n in names]), lo_b + 1e-9, hi_b - 1e-9)

        resid = _residual_fn(values, names, sel, meas, model.predict, hw)

        res = least_squares(
            resid, x0, bounds=(lo_b, hi_b), loss="soft_l1", f_scale=NOISE_SCALE, x_scale=1.0
        )
        x = res.x
        for n, v in zip(names, x, strict=True):
            values[n] = float(math.exp(v))
            fitted_by[n] = sname
        r = resid(x)
        dof = max(len(sel) - len(names), 1)
        s2 = float(np.sum(r**2)) / dof
        jac = np.asarray(res.jac)
        try:
            cov = np.linalg.pinv(jac.T @ jac) * s2
            sig = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        except np.linalg.LinAlgError:  # pragma: no cover - pinv converges for finite input
            sig = np.full(len(names), np.nan)
        for n, sx in zip(names, sig, strict=True):
            # a parameter the rows do not constrain (flat direction) gets no finite sigma:
            # report it as its own size (100 %), never as 0
            rel = float(sx) if math.isfinite(float(sx)) and sx < 1.0 else 1.0
            stds[n] = values[n] * rel
        err = np.abs(np.expm1(r))
        sections[sname] = SectionFit(
            section=sname,
            rows=len(sel),
            lines=tuple(m.line for m in sel),
            median_abs_error=float(np.median(err)),
            p90_abs_error=float(np.percentile(err, 90)),
            max_abs_error=float(err.max()),
            params=tuple(names),
        )
    for name, (like, _) in LATER_PARAMETERS.items():  # an optional section without rows
        if name not in fitted_by and not (start and name in start):
            values[name] = values[like]
    return CalibrationFit(
        values=values,
        stds=stds,
        sections=sections,
        fitted_by=fitted_by,
        predictions=predict(values, rows, hw),
    )


def gemm_shape_tables(
    rows: Sequence[Measurement],
    values: Mapping[str, float],
    hw: Hardware,
    *,
    measurements: str,
    date: str,
) -> list[GemmShapeTable]:
    """Per-shape ratios measured / model of the 16-bit GEMM rows (after the fit).

    One table per (dtype, n, k), ratios by ``m`` (the median where an ``m`` repeats).
    Rows the model says are host-bound (eager launch slower than the kernel) and rows
    with a ``note`` (e.g. fp8 rows whose weights were not rotated past the L2) are left
    out. Shapes not measured keep the parametric model.
    """
    gemm = [
        r
        for r in rows
        if r.section == "gemm" and str(r.params.get("dtype")) in ("bf16", "fp16")
        and "note" not in r.params
    ]  # fmt: skip
    if not gemm:
        return []
    pred = SECTION_MODELS["gemm"].predict(values, gemm, hw)
    host = values["kernel.eager_s"]
    by: dict[tuple[str, int, int], dict[float, list[float]]] = {}
    lines: dict[tuple[str, int, int], list[int]] = {}
    for r, t in zip(gemm, pred, strict=True):
        if t <= host * (1 + 1e-9):
            continue
        key = (str(r.params["dtype"]), int(r.params["n"]), int(r.params["k"]))
        by.setdefault(key, {}).setdefault(float(r.params["m"]), []).append(r.time_s / float(t))
        lines.setdefault(key, []).append(r.line)
    out = []
    for (dtype, n, k), ms in sorted(by.items()):
        m_sorted = sorted(ms)
        out.append(
            GemmShapeTable(
                dtype=dtype,
                n=n,
                k=k,
                m=m_sorted,
                ratio=[float(np.median(ms[m])) for m in m_sorted],
                source=f"{measurements} (gemm lines {line_ranges(lines[(dtype, n, k)])}; "
                f"measured {date})",
            )
        )
    return out


def line_ranges(lines: Sequence[int]) -> str:
    """``[2, 3, 4, 9]`` -> ``"2-4, 9"``."""
    out: list[str] = []
    ls = sorted(set(lines))
    i = 0
    while i < len(ls):
        j = i
        while j + 1 < len(ls) and ls[j + 1] == ls[j] + 1:
            j += 1
        out.append(str(ls[i]) if i == j else f"{ls[i]}-{ls[j]}")
        i = j + 1
    return ", ".join(out)
