"""Solver plumbing shared by the planners: pulp's bundled CBC, or HiGHS when asked for.

The gap is measured, not assumed: CBC's log gives its best bound when it stops early;
otherwise (optimal within tolerance, or a solver without a log) the bound is the
LP relaxation's objective, which every integer solution is at least.

Time limits are **CPU seconds**: this process plus the solver processes it runs
(:func:`cpu_clock`), and CBC is told to count CPU time (``timeMode cpu``; pulp's default
is wall time). On an idle machine that is the wall time (CBC runs one thread); on a
loaded one the answer no longer depends on what else runs, only the wall time grows.
HiGHS, called in process, counts its limit in wall time.
"""

from __future__ import annotations

import re
import resource
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulp

from hw_models.errors import Problem, SpecError

SOLVERS: tuple[str, ...] = ("auto", "highs", "cbc")
#: slack allowed when checking a solver's point: on integrality and bounds (absolute),
#: and on each row relative to the sum of its terms' magnitudes
_FEAS_TOL = 1e-5


def highs_available() -> bool:
    """Whether pulp can call HiGHS (the ``highspy`` package is importable)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_clock() -> float:
    """CPU seconds (user + system) of this process and its finished children.

    The planners' time limits are counted on this clock: CBC runs as a child process
    and is finished whenever this is read between solver calls.
    """
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveOutcome:
    """What a solve returned: status, objective, best bound, gap and seconds."""

    #: "optimal" (gap <= 1e-6), "gap_reached" (within the requested gap), "time_limit"
    #: (stopped on time above it), "feasible", "infeasible", or pulp's status otherwise
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    solve_s: float  # wall seconds
    solver: str
    cpu_s: float = 0.0  # CPU seconds (this process and the solver's), what the limit counts


def _highs_class() -> Any:
    """pulp's HiGHS interface with the MIP start it lacks.

    pulp (3.3) passes ``warmStart`` on to HiGHS as an option HiGHS does not know
    (HiGHS prints ``Option "warmStart" is unknown`` and ignores it), so the incumbent
    never reaches the solver; this subclass hands the variables' initial values to
    ``Highs.setSolution`` (sparse form) before the run instead.
    """

    class _HiGHS(pulp.HiGHS):  # type: ignore[misc, name-defined, unused-ignore]
        def __init__(self, *, warm: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.warm = warm

        def callSolver(self, lp: pulp.LpProblem) -> None:
            if self.warm:
                import numpy as np

                start = [(v.index, v.varValue) for v in lp.variables() if v.varValue is not None]
                if start:
                    idx = np.array([i for i, _ in start], dtype=np.int32)
                    val = np.array([x for _, x in start], dtype=np.float64)
                    lp.solverModel.setSolution(len(start), idx, val)
            super().callSolver(lp)

    return _HiGHS


def _solver(name: str, *, time_limit_s: float, gap: float, log: Path | None, warm: bool) -> Any:
    if name not in SOLVERS:
        raise SpecError(
            [Problem("solver", f"unknown solver {name!r} (known: {', '.join(SOLVERS)})")]
        )
    if name == "highs" and not highs_available():
        raise SpecError([Problem("solver", "HiGHS is not installed (pip install highspy)")])
    # "auto" is CBC, even with highspy installed: through pulp (3.3), HiGHS prints its
    # banner on stdout whatever ``msg`` says (``memsim plan --format json`` would no
    # longer print JSON alone), and it gets no MIP start but through the subclass above.
    # On the planners' tests both solvers give the same answers
    # (tests/explore/test_mip_solvers.py); HiGHS is there by name.
    if name == "highs":
        return _highs_class()(msg=False, timeLimit=time_limit_s, gapRel=gap, warm=warm)
    return pulp.PULP_CBC_CMD(
        msg=False,
        timeLimit=time_limit_s,
        gapRel=gap,
        logPath=str(log) if log else None,
        warmStart=warm,
        timeMode="cpu",  # the limit is CPU seconds (see the module doc)
    )


def _cbc_bound(log: Path) -> float | None:
    try:
        text = log.read_text()
    except OSError:
        return None
    m = re.findall(r"Lower bound:\s*([-+0-9.eE]+)", text)
    return float(m[-1]) if m else None


def _relaxed_solve(
    problem: pulp.LpProblem, fixed: Mapping[pulp.LpVariable, float] | None = None
) -> float | None:
    """Solve ``problem`` with integers relaxed (and ``fixed`` variables pinned); restores both."""
    cats = [(v, v.cat, v.lowBound, v.upBound) for v in problem.variables()]
    try:
        for v, _c, _lo, _hi in cats:
            v.cat = pulp.LpContinuous
        for v, val in (fixed or {}).items():
            v.lowBound = v.upBound = val
        # CLP's primal simplex, alone: on the 80-layer placement LP ~5x less CPU than
        # CBC's default (0.8 s against 4.0 s), the same optimum
        problem.solve(pulp.PULP_CBC_CMD(msg=False, mip=False, options=["primalS"]))
        if pulp.LpStatus[problem.status] != "Optimal":
            return None
        value = pulp.value(problem.objective)
        return None if value is None else float(value)
    finally:
        for v, cat, lo, hi in cats:
            v.cat, v.lowBound, v.upBound = cat, lo, hi


def _satisfied(problem: pulp.LpProblem) -> bool:
    """Whether the values on ``problem``'s variables satisfy its bounds, integrality and
    rows, within :data:`_FEAS_TOL` (rows: relative to the magnitude of their terms)."""
    for v in problem.variables():
        if v.varValue is None:
            return False
        x = float(v.varValue)
        if v.lowBound is not None and x < v.lowBound - _FEAS_TOL:
            return False
        if v.upBound is not None and x > v.upBound + _FEAS_TOL:
            return False
        if v.cat == pulp.LpInteger and abs(x - round(x)) > _FEAS_TOL:
            return False
    cons = problem.constraints  # pulp 3.3: call it for a list (the mapping is deprecated)
    for c in cons() if callable(cons) else cons.values():
        terms = [a * float(v.varValue) for v, a in c.items()]
        lhs = sum(terms) + c.constant
        slack = _FEAS_TOL * (1.0 + abs(c.constant) + sum(abs(t) for t in terms))
        if c.sense == pulp.LpConstraintEQ:
            if abs(lhs) > slack:
                return False
        elif lhs * c.sense < -slack:
            return False
    return True


def lp_bound(problem: pulp.LpProblem) -> float | None:
    """Objective of the LP relaxation of ``problem`` (a lower bound for minimisation).

    Relaxes the integer variables in place, solves, and restores them; the
    relaxed values stay on the variables (a rounding heuristic reads them).
    """
    return _relaxed_solve(problem)


Assignment = Mapping[pulp.LpVariable, float]
#: turns the relaxed values into integer assignments to try as incumbents (or one, or None)
Rounding = Callable[[], "Assignment | Sequence[Assignment] | None"]


def solve(
    problem: pulp.LpProblem,
    *,
    solver: str = "auto",
    time_limit_s: float = 10.0,
    gap: float = 0.01,
    rounding: Rounding | None = None,
    relax: bool = True,
) -> SolveOutcome:
    """Solve a minimisation ``problem``; returns the outcome with a measured gap.

    Steps: the LP relaxation (the bound); ``rounding()``, if given, turns the relaxed
    values into integer assignments (one, a list, or ``None``), each evaluated with its
    integers fixed; the best is the incumbent and the solver's warm start; then the
    MIP within what is left of ``time_limit_s``. The better of the solver's solution
    and the incumbent is kept. ``relax=False`` skips the LP relaxation (and so the
    rounding): the bound is then the solver's own, where its log gives one.
    ``time_limit_s`` counts CPU seconds from entry (:func:`cpu_clock`): the LP and the
    rounding included, the solver given what is left (at least a second).
    """
    t0 = time.perf_counter()
    c0 = cpu_clock()
    relaxed = lp_bound(problem) if relax else None
    incumbent: tuple[float, dict[pulp.LpVariable, float | None]] | None = None
    if relaxed is not None and rounding is not None:
        got = rounding()
        candidates: Sequence[Assignment] = (
            [] if got is None else [got] if isinstance(got, Mapping) else got
        )
        best: Assignment | None = None
        for assignment in candidates:
            value = _relaxed_solve(problem, assignment)
            if value is not None and (incumbent is None or value < incumbent[0]):
                incumbent = (value, {v: v.varValue for v in problem.variables()})
                best = assignment
        for v, val in (best or {}).items():
            v.setInitialValue(val)
    if (
        incumbent is not None
        and relaxed is not None
        and incumbent[0] > 0
        and (incumbent[0] - relaxed) / incumbent[0] <= gap
    ):
        # the incumbent is already within the requested gap of the LP bound: no search
        for v, kept in incumbent[1].items():
            v.varValue = kept
        gap_now = max(0.0, (incumbent[0] - relaxed) / incumbent[0])
        return SolveOutcome(
            status="optimal" if gap_now <= 1e-6 else "gap_reached",
            objective=incumbent[0],
            bound=min(relaxed, incumbent[0]),
            gap=gap_now,
            solve_s=time.perf_counter() - t0,
            solver="highs" if solver == "highs" else "cbc",
            cpu_s=cpu_clock() - c0,
        )
    left = max(1.0, time_limit_s - (cpu_clock() - c0))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        s = _solver(solver, time_limit_s=left, gap=gap, log=log, warm=incumbent is not None)
        try:
            problem.solve(s)
        except pulp.PulpSolverError:
            # CBC occasionally dies reading a MIP start: retry cold, then keep the incumbent
            problem.sol_status = pulp.LpSolutionNoSolutionFound
            if incumbent is not None:
                s = _solver(solver, time_limit_s=left, gap=gap, log=log, warm=False)
                try:
                    problem.solve(s)
                except pulp.PulpSolverError:
                    problem.status = pulp.LpStatusNotSolved
                    problem.sol_status = pulp.LpSolutionNoSolutionFound
        solve_s = time.perf_counter() - t0
        cpu_s = cpu_clock() - c0
        cbc_bound = _cbc_bound(log)
    raw = pulp.LpStatus[problem.status]
    name = "highs" if isinstance(s, pulp.HiGHS) else "cbc"
    has_solution = problem.sol_status in (
        pulp.LpSolutionOptimal,
        pulp.LpSolutionIntegerFeasible,
    ) and _satisfied(problem)
    # (pulp reads the point CBC holds when it stops on time as "integer feasible" even
    # where it breaks rows, coin-or/pulp#711: seen here when the limit ends CBC in its
    # preprocessing, a placement 16x over its tier's capacity; such a point is no answer)
    if raw == "Infeasible" and incumbent is not None:
        # CBC can claim infeasibility after a time-limited run with a MIP start; the
        # incumbent (checked with its integers fixed) proves otherwise
        has_solution, cbc_bound = False, None
    elif raw == "Infeasible" or (relaxed is None and relax):
        return SolveOutcome(
            status="infeasible",
            objective=None,
            bound=None,
            gap=None,
            solve_s=solve_s,
            solver=name,
            cpu_s=cpu_s,
        )
    obj: float | None = pulp.value(problem.objective) if has_solution else None
    # the solver stops "optimal" once its own bound is within the requested gap
    proven = has_solution and problem.sol_status == pulp.LpSolutionOptimal
    if incumbent is not None and (obj is None or incumbent[0] < float(obj)):
        for v, kept in incumbent[1].items():
            v.varValue = kept
        obj = incumbent[0]
    if obj is None:
        return SolveOutcome(
            status="no_solution",
            objective=None,
            bound=relaxed,
            gap=None,
            solve_s=solve_s,
            solver=name,
            cpu_s=cpu_s,
        )
    objective = float(obj)
    bounds = [b for b in (cbc_bound, relaxed) if b is not None]
    bound = min(max(bounds), objective) if bounds else None
    gap_v = None
    if bound is not None and objective > 0:
        gap_v = max(0.0, (objective - bound) / abs(objective))
    if proven:
        gap_v = min(gap_v, gap) if gap_v is not None else gap
    if gap_v is not None and gap_v <= 1e-6:
        status = "optimal"
    elif gap_v is not None and gap_v <= gap:
        status = "gap_reached"  # stopped within the requested relative gap
    else:
        status = "time_limit"
    return SolveOutcome(
        status=status,
        objective=objective,
        bound=bound,
        gap=gap_v,
        solve_s=solve_s,
        solver=name,
        cpu_s=cpu_s,
    )
