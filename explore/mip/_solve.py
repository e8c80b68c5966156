"""Solver plumbing shared by the planners: HiGHS when installed, else pulp's bundled CBC.

The gap is measured, not assumed: CBC's log gives its best bound when it stops early;
otherwise (optimal within tolerance, or a solver without a log) the bound is the
LP relaxation's objective, which every integer solution is at least.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulp

from hw_models.errors import Problem, SpecError

SOLVERS: tuple[str, ...] = ("auto", "highs", "cbc")


def highs_available() -> bool:
    """Whether pulp can call HiGHS (the ``highspy`` package is importable)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveOutcome:
    """What a solve returned: status, objective, best bound, gap and seconds."""

    #: "optimal" (gap <= 1e-6), "gap_reached" (within the requested gap), "time_limit"
    #: (stopped on time above it), "feasible", "infeasible", or pulp's status otherwise
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    solve_s: float
    solver: str


def _solver(name: str, *, time_limit_s: float, gap: float, log: Path | None) -> Any:
    if name not in SOLVERS:
        raise SpecError([Problem("solver", f"unknown solver {name!r} (known: {', '.join(SOLVERS)})")])
    if name == "highs" and not highs_available():
        raise SpecError([Problem("solver", "HiGHS is not installed (pip install highspy)")])
    if name == "highs" or (name == "auto" and highs_available()):
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=gap)
    return pulp.PULP_CBC_CMD(
        msg=False, timeLimit=time_limit_s, gapRel=gap, logPath=str(log) if log else None
    )


def _cbc_bound(log: Path) -> float | None:
    try:
        text = log.read_text()
    except OSError:
        return None
    m = re.findall(r"Lower bound:\s*([-+0-9.eE]+)", text)
    return float(m[-1]) if m else None


def lp_bound(problem: pulp.LpProblem) -> float | None:
    """Objective of the LP relaxation of ``problem`` (a lower bound for minimisation).

    Relaxes the integer variables in place, solves, and restores them.
    """
    cats = [(v, v.cat) for v in problem.variables()]
    try:
        for v, _ in cats:
            v.cat = pulp.LpContinuous
        problem.solve(pulp.PULP_CBC_CMD(msg=False))
        if pulp.LpStatus[problem.status] != "Optimal":
            return None
        value = pulp.value(problem.objective)
        return None if value is None else float(value)
    finally:
        for v, cat in cats:
            v.cat = cat


def solve(
    problem: pulp.LpProblem,
    *,
    solver: str = "auto",
    time_limit_s: float = 10.0,
    gap: float = 0.01,
) -> SolveOutcome:
    """Solve a minimisation ``problem``; returns the outcome with a measured gap."""
    t0 = time.perf_counter()
    relaxed = lp_bound(problem)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "cbc.log"
        s = _solver(solver, time_limit_s=time_limit_s, gap=gap, log=log)
        problem.solve(s)
        solve_s = time.perf_counter() - t0
        cbc_bound = _cbc_bound(log)
    raw = pulp.LpStatus[problem.status]
    sol = pulp.LpSolution[problem.sol_status] if hasattr(problem, "sol_status") else ""
    name = "highs" if isinstance(s, pulp.HiGHS) else "cbc"
    if raw == "Infeasible":
        return SolveOutcome(
            status="infeasible", objective=None, bound=None, gap=None, solve_s=solve_s, solver=name
        )
    obj = pulp.value(problem.objective)
    if obj is None:
        return SolveOutcome(
            status=raw.lower(), objective=None, bound=None, gap=None, solve_s=solve_s, solver=name
        )
    objective = float(obj)
    bounds = [b for b in (cbc_bound, relaxed) if b is not None]
    bound = max(bounds) if bounds else None
    gap_v = None
    if bound is not None and objective > 0:
        gap_v = max(0.0, (objective - bound) / abs(objective))
    if gap_v is not None and gap_v <= 1e-6:
        status = "optimal"
    elif gap_v is not None and gap_v <= gap:
        status = "gap_reached"  # stopped within the requested relative gap
    else:
        status = "time_limit" if "Optimal" not in sol else "feasible"
    return SolveOutcome(
        status=status, objective=objective, bound=bound, gap=gap_v, solve_s=solve_s, solver=name
    )
