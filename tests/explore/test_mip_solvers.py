"""CBC and HiGHS give the planners the same answers (HiGHS only where highspy is installed)."""

from __future__ import annotations

import pulp
import pytest

from explore.mip._solve import _satisfied, highs_available, solve
from explore.mip.memory_reuse import Buffer, plan_memory
from explore.mip.placement import plan_placement
from explore.mip.residency import plan_residency
from hw_models.errors import SpecError
from tests.explore.test_mip_placement import layered_graph
from tests.explore.test_mip_residency import GB, expert_graph
from tests.memsim.world import tiny

needs_highs = pytest.mark.skipif(not highs_available(), reason="highspy is not installed")


def _knapsack() -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    # minimise the value left out: items (weight, value) (4, 10) (3, 7) (2, 6) (1, 2),
    # capacity 6. By hand: {0, 2} weighs 6 and keeps 16 of 25 -> 9 left out; {1, 2, 3}
    # keeps 15, {0, 3} 12, {0, 1} does not fit: the optimum leaves out 9.
    w, v = [4, 3, 2, 1], [10, 7, 6, 2]
    prob = pulp.LpProblem("knapsack", pulp.LpMinimize)
    x = [pulp.LpVariable(f"k_{i}", cat=pulp.LpBinary) for i in range(4)]
    prob += pulp.lpSum(v[i] * (1 - x[i]) for i in range(4))
    prob += pulp.lpSum(w[i] * x[i] for i in range(4)) <= 6
    return prob, x


@pytest.mark.parametrize("solver", ["cbc", pytest.param("highs", marks=needs_highs)])
def test_hand_computed_knapsack(solver: str) -> None:
    prob, x = _knapsack()
    out = solve(prob, solver=solver, gap=0.0)
    assert out.solver == solver
    assert out.status == "optimal"
    assert out.objective == pytest.approx(9.0)
    assert [round(v.varValue) for v in x] == [1, 0, 1, 0]


@needs_highs
def test_highs_takes_the_incumbent_as_a_mip_start(capfd: pytest.CaptureFixture[str]) -> None:
    # the incumbent {0, 2} goes in through the rounding hook; through pulp's own
    # warmStart HiGHS printed 'Option "warmStart" is unknown' and never saw it
    prob, x = _knapsack()
    start = {x[0]: 1.0, x[1]: 0.0, x[2]: 1.0, x[3]: 0.0}
    out = solve(prob, solver="highs", gap=0.0, rounding=lambda: start)
    assert out.objective == pytest.approx(9.0)
    captured = capfd.readouterr()
    assert "unknown" not in captured.out + captured.err


def test_unknown_or_missing_solver_is_a_spec_error() -> None:
    prob, _x = _knapsack()
    with pytest.raises(SpecError, match="unknown solver"):
        solve(prob, solver="gurobi")
    if not highs_available():
        with pytest.raises(SpecError, match="HiGHS is not installed"):
            solve(prob, solver="highs")


@needs_highs
def test_placement_same_optimum_with_both_solvers() -> None:
    # the brute-force instance of test_mip_placement: both proven optimal, same time
    system = tiny(**{"tiers.hbm.capacity_bytes": 2.6e9})
    graph = layered_graph()
    plans = {s: plan_placement(system, graph, gap=0.0, solver=s) for s in ("cbc", "highs")}
    assert {p.status for p in plans.values()} == {"optimal"}
    assert plans["highs"].solver == "highs"
    assert plans["highs"].predicted_s == pytest.approx(plans["cbc"].predicted_s, rel=1e-6)


@needs_highs
def test_memory_and_residency_same_optimum_with_both_solvers() -> None:
    bufs = [
        Buffer(name="a", size=2, start=0, end=1),
        Buffer(name="b", size=1, start=0, end=3),
        Buffer(name="c", size=3, start=2, end=3),
        Buffer(name="d", size=1, start=1, end=2),
    ]
    peaks = {s: plan_memory(bufs, solver=s).peak_bytes for s in ("cbc", "highs")}
    assert peaks["highs"] == pytest.approx(peaks["cbc"]) == pytest.approx(5.0)
    system = tiny(**{"tiers.hbm.capacity_bytes": 5 * GB + 1e4})
    graph = expert_graph([1, 2, 3, 4], [4, 1, 2, 1])
    kept = {s: plan_residency(system, graph, select="e*", solver=s) for s in ("cbc", "highs")}
    assert set(kept["highs"].resident) == set(kept["cbc"].resident) == {"e0", "e2"}
    assert kept["highs"].predicted_s == pytest.approx(kept["cbc"].predicted_s, rel=1e-9)


def test_a_point_that_breaks_a_row_is_no_solution() -> None:
    # pulp takes the point CBC holds when it stops on time as "integer feasible" even
    # where it breaks rows (coin-or/pulp#711); solve() checks the point itself. The
    # knapsack (capacity 6): {0, 1} weighs 7 and breaks the row; {0, 2} weighs 6 and
    # fits; on a row 4e6 y_0 + 2e6 y_1 <= 6e6, y_1 = 1 + 1e-9 is 2e-3 over, which is
    # rounding, not a violation.
    prob, x = _knapsack()
    for xi, val in zip(x, (1, 1, 0, 0), strict=True):
        xi.varValue = val
    assert not _satisfied(prob)
    for xi, val in zip(x, (1, 0, 1, 0), strict=True):
        xi.varValue = val
    assert _satisfied(prob)
    x[2].varValue = 0.5  # not integral
    assert not _satisfied(prob)
    big = pulp.LpProblem("big", pulp.LpMinimize)
    y = [pulp.LpVariable(f"y_{i}", cat=pulp.LpBinary) for i in range(2)]
    big += y[0] + y[1]
    big += 4e6 * y[0] + 2e6 * y[1] <= 6e6
    y[0].varValue, y[1].varValue = 1.0, 1 + 1e-9
    assert _satisfied(big)
    y[1].varValue = 1.0 + 1e-3  # a bound (and the row) broken beyond tolerance
    assert not _satisfied(big)


def test_solve_reports_cpu_seconds() -> None:
    # the limit counts CPU seconds (this process and CBC's); the outcome says how many
    prob, _x = _knapsack()
    out = solve(prob, time_limit_s=5.0)
    assert out.objective == pytest.approx(9.0)
    assert 0.0 < out.cpu_s < 5.0
