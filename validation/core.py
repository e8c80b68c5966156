"""Cases, tolerance classes, running and rendering.

A case is a function that computes memsim's figure for one published figure and
returns an :class:`Outcome`; :func:`case` registers it with its source, the paper's
figure and a tolerance class. Tolerance classes are fixed up front, per kind of
claim, never per case after seeing the result:

* ``exact`` (±2 %): byte and capacity counts, closed-form results;
* ``close`` (±10 %): measured performance on the hardware memsim is calibrated for;
* ``model`` (±25 %): figures that depend on parameters the paper does not publish
  (the case says which) or on a fit over a different set of data points;
* ``order`` (within 2x): speed-ups and trends across systems memsim is not
  calibrated for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hw_models.errors import Problem, SpecError

#: relative tolerance of each class (``order``: the ratio memsim/paper within 2x either way)
TOLERANCES: dict[str, float] = {"exact": 0.02, "close": 0.10, "model": 0.25, "order": 1.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a case computed: memsim's figure and what the reader should know about it.

    ``paper`` overrides the case's registered figure when the reference value is itself
    computed from shipped data (for example a median over held-out measurements).
    ``passed`` overrides the tolerance check for cases with a compound criterion
    (``criterion`` then says what it is).
    """

    memsim: float
    note: str = ""
    paper: float | None = None
    passed: bool | None = None
    criterion: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """A registered case: where the figure comes from and how memsim computes it."""

    name: str
    title: str
    source: str
    quantity: str
    unit: str
    paper: float
    tolerance: str
    quick: bool
    compute: Callable[[], Outcome]
    fitted: str = "no memsim parameter was fitted to this figure"

    @property
    def command(self) -> str:
        """The command that reproduces this case alone."""
        return f"memsim validate --case {self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One row of the validation table."""

    name: str
    title: str
    source: str
    quantity: str
    unit: str
    paper: float
    memsim: float
    error: float
    tolerance: str
    criterion: str
    passed: bool
    command: str
    note: str
    fitted: str
    seconds: float
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "name": self.name,
            "title": self.title,
            "source": self.source,
            "quantity": self.quantity,
            "unit": self.unit,
            "paper": self.paper,
            "memsim": self.memsim,
            "error": self.error,
            "tolerance": self.tolerance,
            "criterion": self.criterion,
            "passed": self.passed,
            "command": self.command,
            "note": self.note,
            "fitted": self.fitted,
            "seconds": self.seconds,
            "details": self.details,
        }


_CASES: dict[str, Case] = {}


def case(
    name: str,
    *,
    title: str,
    source: str,
    quantity: str,
    unit: str,
    paper: float,
    tolerance: str,
    quick: bool = True,
    fitted: str = "no memsim parameter was fitted to this figure",
) -> Callable[[Callable[[], Outcome]], Callable[[], Outcome]]:
    """Register the decorated function as case ``name`` (names are unique)."""
    if tolerance not in TOLERANCES:
        raise ValueError(f"unknown tolerance class {tolerance!r} (known: {', '.join(TOLERANCES)})")

    def deco(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
        if name in _CASES:
            raise ValueError(f"validation case {name!r} is already registered")
        _CASES[name] = Case(
            name=name,
            title=title,
            source=source,
            quantity=quantity,
            unit=unit,
            paper=paper,
            tolerance=tolerance,
            quick=quick,
            compute=fn,
            fitted=fitted,
        )
        return fn

    return deco


def _load() -> None:
    import validation.cases  # noqa: F401  (registers every case)


def case_names() -> list[str]:
    """Every registered case, in table order."""
    _load()
    return list(_CASES)


def get_cases(names: Sequence[str] | None = None, *, quick: bool = False) -> list[Case]:
    """The cases to run: ``names`` (all if None), only the quick ones with ``quick``."""
    _load()
    if names:
        unknown = [n for n in names if n not in _CASES]
        if unknown:
            known = ", ".join(_CASES)
            raise SpecError(
                [Problem("--case", f"unknown case {n!r} (known: {known})") for n in unknown]
            )
        chosen = [_CASES[n] for n in names]
    else:
        chosen = list(_CASES.values())
    return [c for c in chosen if c.quick] if quick else chosen


def relative_error(paper: float, memsim: float) -> float:
    """``memsim / paper - 1`` (``nan`` when the paper's figure is 0)."""
    return memsim / paper - 1.0 if paper != 0 else math.nan


def within(tolerance: str, paper: float, memsim: float) -> bool:
    """Whether ``memsim`` matches ``paper`` within the tolerance class."""
    if not (math.isfinite(memsim) and math.isfinite(paper)) or paper == 0:
        return False
    if tolerance == "order":
        if memsim <= 0 or paper <= 0:
            return False
        return abs(math.log(memsim / paper)) <= math.log(2.0) + 1e-12
    return abs(memsim / paper - 1.0) <= TOLERANCES[tolerance] + 1e-12


def _criterion(tolerance: str) -> str:
    if tolerance == "order":
        return "within 2x"
    return f"±{TOLERANCES[tolerance] * 100:g} %"


def run_case(c: Case) -> CaseResult:
    """Run one case; a case that raises is a failed row with the error as its reason."""
    start = time.perf_counter()
    try:
        out = c.compute()
    except Exception as err:  # a broken case is reported, not hidden
        out = Outcome(memsim=math.nan, note=f"case raised {type(err).__name__}: {err}")
    seconds = time.perf_counter() - start
    paper = c.paper if out.paper is None else out.paper
    passed = within(c.tolerance, paper, out.memsim) if out.passed is None else out.passed
    return CaseResult(
        name=c.name,
        title=c.title,
        source=c.source,
        quantity=c.quantity,
        unit=c.unit,
        paper=paper,
        memsim=out.memsim,
        error=relative_error(paper, out.memsim),
        tolerance=c.tolerance,
        criterion=out.criterion or _criterion(c.tolerance),
        passed=bool(passed),
        command=c.command,
        note=out.note,
        fitted=c.fitted,
        seconds=seconds,
        details=out.details,
    )


def run_cases(
    cases: Iterable[Case], *, progress: Callable[[str], None] | None = None
) -> list[CaseResult]:
    """Run ``cases`` in order; ``progress`` is told each case's name before it runs."""
    results = []
    for c in cases:
        if progress is not None:
            progress(c.name)
        results.append(run_case(c))
    return results


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    mag = abs(x)
    if mag >= 1e5 or mag < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


def _err(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x * 100:+.1f} %"


def render_markdown(results: Sequence[CaseResult], *, quick: bool = False) -> str:
    """``docs/validation.md``: the table, then each case's source, reason and command."""
    passed = sum(r.passed for r in results)
    scope = "the quick subset (`memsim validate --quick`)" if quick else "every case"
    lines = [
        "# Validation: memsim against the field's published results",
        "",
        "Generated by `memsim validate -o docs/validation.md` (do not edit by hand); this",
        f"run covers {scope}: **{passed} of {len(results)} cases pass** their tolerance.",
        "",
        "Tolerance classes are fixed per kind of claim, before a case is run:",
        "`exact` ±2 % (byte and capacity counts, closed forms), `close` ±10 % (measured",
        "performance on calibrated hardware), `model` ±25 % (figures that depend on",
        "parameters the paper does not publish, or fits over other data points),",
        "`order` within 2x (speed-ups across systems memsim is not calibrated for).",
        "No case's parameters are fitted to the figure it is judged against; each case",
        "says what it depends on.",
        "",
        "| case | quantity | paper | memsim | error | tolerance | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        verdict = "pass" if r.passed else "**FAIL**"
        lines.append(
            f"| [{r.name}](#{r.name.replace('_', '-')}) | {r.quantity} ({r.unit}) | "
            f"{_num(r.paper)} | {_num(r.memsim)} | {_err(r.error)} | "
            f"{r.tolerance} ({r.criterion}) | {verdict} |"
        )
    lines.append("")
    for r in results:
        lines += [
            f"## {r.name.replace('_', '-')}",
            "",
            f"**{r.title}.** Source: {r.source}.",
            "",
            f"- paper: {_num(r.paper)} {r.unit}; memsim: {_num(r.memsim)} {r.unit}; "
            f"error {_err(r.error)}; {r.tolerance} ({r.criterion}): "
            f"{'pass' if r.passed else 'FAIL'}",
            f"- parameters: {r.fitted}",
        ]
        if r.note:
            lines.append(f"- {'why it fails' if not r.passed else 'note'}: {r.note}")
        lines += [f"- reproduce: `{r.command}`", ""]
    return "\n".join(lines)
