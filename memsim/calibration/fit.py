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
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from hw_models.efficiency import LATER_PARAMETERS, GemmShapeTable
from hw_models.errors import Problem, SpecError
from memsim import cost
from memsim.calibration.measurements import Measurement
from memsim.calibration.model import ASSUMED, SECTION_MODELS, Hardware, Predictor, Section

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
    # param -> section whose rows did not constrain it (kept at its start value)
    unconstrained: dict[str, str] = field(default_factory=dict)


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


def loose_parameters(jac: np.ndarray, resid: np.ndarray, names: Sequence[str]) -> list[str]:
    """The parameters (columns of ``jac``) that the rows leave undetermined.

    The rows' information about the log parameters is ``J^T J / s^2`` (``s`` the residual
    scale, at least :data:`NOISE_SCALE`); against a unit prior on each log parameter (a
    factor of e either way), a parameter is undetermined when the rows shrink its
    posterior sigma to no less than :data:`LOOSE_SIGMA`. Unlike ``s^2 (J^T J)^-1`` this
    does not call a parameter known because a few rows are fitted exactly.
    """
    n = len(names)
    dof = max(len(resid) - n, 1)
    s2 = max(float(np.sum(resid**2)) / dof, NOISE_SCALE**2)
    post = np.linalg.inv(jac.T @ jac / s2 + np.eye(n))
    sig = np.sqrt(np.clip(np.diag(post), 0.0, None))
    return [name for name, sx in zip(names, sig, strict=True) if not sx < LOOSE_SIGMA]


#: posterior sigma (of the log parameter, prior 1) at or above which rows do not constrain it
LOOSE_SIGMA = 0.5


def fit(
    rows: Sequence[Measurement],
    hw: Hardware,
    *,
    start: Mapping[str, float] | None = None,
    freeze_unconstrained: bool = False,
) -> CalibrationFit:
    """Fit every section present in ``rows``; sections absent keep ``start`` values.

    ``start`` (e.g. the values of an already calibrated preset) seeds the fit and
    supplies the parameters of absent sections; :class:`SpecError` if a needed
    parameter has neither a section nor a start value. ``freeze_unconstrained``
    (for a few published figures rather than a full microbenchmark run): parameters
    of a present section that its rows leave undetermined (:func:`loose_parameters`)
    keep their start value and the others are refitted without them; they are listed
    in :attr:`CalibrationFit.unconstrained`.
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
    unconstrained: dict[str, str] = {}
    for sname, model in SECTION_MODELS.items():
        sel = [r for r in rows if r.section == sname]
        if not sel:
            continue
        names = list(model.free)
        meas = np.array([r.time_s for r in sel])
        if freeze_unconstrained:
            # drop what the rows leave undetermined (or push to a bound), refit the rest
            loose = out_of_regime(sname, sel, values, hw)
            while True:
                unconstrained.update(dict.fromkeys(loose, sname))
                names = [n for n in names if n not in loose]
                if not names:
                    break
                resid, res = _least_squares(values, names, sel, meas, model, hw)
                loose = loose_parameters(np.asarray(res.jac), resid(res.x), names)
                loose += [n for n in _at_bounds(res.x, names, model) if n not in loose]
                if not loose:
                    break
            if not names:  # the rows constrain nothing: the section keeps its start values
                r = resid_at_start(values, sel, meas, model, hw)
                sections[sname] = _section_fit(sname, sel, r, ())
                continue
        else:
            resid, res = _least_squares(values, names, sel, meas, model, hw)
        x = res.x
        for n, v in zip(names, x, strict=True):
            values[n] = float(math.exp(v))
            fitted_by[n] = sname
        r = resid(x)
        dof = max(len(sel) - len(names), 1)
        s2 = float(np.sum(r**2)) / dof
        if freeze_unconstrained:  # a few published figures: never surer than the noise scale
            s2 = max(s2, NOISE_SCALE**2)
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
        sections[sname] = _section_fit(sname, sel, r, tuple(names))
    for name, (like, _) in LATER_PARAMETERS.items():  # an optional section without rows
        if name not in fitted_by and not (start and name in start):
            values[name] = values[like]
    return CalibrationFit(
        values=values,
        stds=stds,
        sections=sections,
        fitted_by=fitted_by,
        predictions=predict(values, rows, hw),
        unconstrained=unconstrained,
    )


def out_of_regime(
    section: str, sel: Sequence[Measurement], values: Mapping[str, float], hw: Hardware
) -> list[str]:
    """Parameters of ``section`` that no row of ``sel`` is in the regime to inform.

    GEMM operand bandwidth (``gemm.bandwidth_fraction``) is informed only by rows the
    roofline calls memory-bound: arithmetic intensity ``2bmnk / (b(mk + nk + mn) e)``
    below the ridge ``eff peak / (frac B_mem)`` at the start values. Square GEMMs of 1024
    and up are far above it: fitting the fraction on them would price decode GEMVs by
    the roll-off of small compute-bound GEMMs.
    """
    if section != "gemm":
        return []
    for r in sel:
        q = r.params
        dtype = str(q["dtype"])
        b, m, n, k = (float(q.get("b", 1)), float(q["m"]), float(q["n"]), float(q["k"]))
        eff = values["gemm.fp8_efficiency" if dtype == "fp8" else "gemm.efficiency"]
        ridge = eff * hw.peak[dtype] / (values["gemm.bandwidth_fraction"] * hw.mem_bw)
        bytes_ = b * (m * k + n * k + m * n) * cost.elem_bytes(dtype)
        if 2.0 * b * m * n * k / bytes_ < ridge:
            return []
    return ["gemm.bandwidth_fraction"]


def _at_bounds(x: np.ndarray, names: Sequence[str], model: Section) -> list[str]:
    """Parameters the fit pushed onto a bound of their range (the rows want them outside)."""
    out = []
    for n, v in zip(names, x, strict=True):
        lo, hi = math.log(model.free[n][1]), math.log(model.free[n][2])
        if v - lo < 1e-6 or hi - v < 1e-6:
            out.append(n)
    return out


def _least_squares(
    values: Mapping[str, float],
    names: list[str],
    sel: Sequence[Measurement],
    meas: np.ndarray,
    model: Section,
    hw: Hardware,
) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    """Fit the log values of ``names`` to ``sel`` (soft-L1, in their bounds)."""
    lo_b = np.log([model.free[n][1] for n in names])
    hi_b = np.log([model.free[n][2] for n in names])
    x0 = np.clip(np.log([max(values[n], 1e-300) for n in names]), lo_b + 1e-9, hi_b - 1e-9)
    resid = _residual_fn(values, names, sel, meas, model.predict, hw)
    res = least_squares(
        resid, x0, bounds=(lo_b, hi_b), loss="soft_l1", f_scale=NOISE_SCALE, x_scale=1.0
    )
    return resid, res


def resid_at_start(
    values: Mapping[str, float],
    sel: Sequence[Measurement],
    meas: np.ndarray,
    model: Section,
    hw: Hardware,
) -> np.ndarray:
    """Log relative errors of ``sel`` at ``values`` (nothing fitted)."""
    return np.asarray(np.log(np.asarray(model.predict(values, sel, hw)) / meas))


def _section_fit(
    sname: str, sel: Sequence[Measurement], r: np.ndarray, names: tuple[str, ...]
) -> SectionFit:
    err = np.abs(np.expm1(r))
    return SectionFit(
        section=sname,
        rows=len(sel),
        lines=tuple(m.line for m in sel),
        median_abs_error=float(np.median(err)),
        p90_abs_error=float(np.percentile(err, 90)),
        max_abs_error=float(err.max()),
        params=names,
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
