"""Provisioning MIP: the cheapest tier capacities and bandwidths that meet a target.

The space file (the sweeps' format, :mod:`explore.space`) gives the knobs (each with
discrete levels: ``values`` or a range with ``steps``), a price table and a derived
cost. The planner linearises both the metric and the cost per knob around the
space's centre point, with the engine's own numbers: it evaluates the centre and,
one knob at a time, every other level (``1 + sum(levels - 1)`` simulations through
the space's evaluator, i.e. :func:`memsim.simulate`), so

    metric(point) ~ metric(centre) + sum_k d_k(level_k),   cost likewise,

and solves ``min cost`` subject to ``metric <= target`` (or ``>=`` for a metric to
maximise) with one binary per (knob, level). The chosen point is then **simulated**;
if the simulation misses the target (the linearisation ignores interactions
between knobs), or the point breaks a constraint of the space, a cut removes that
point and the MIP is solved again, up to ``max_rounds`` times. What is returned is
always a simulated point that meets the target, or a refusal saying so.

Levels at which the centre does not fit (capacity) are dropped.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import pulp

from explore.mip._solve import solve
from explore.space import DesignSpace
from hw_models.errors import Problem, SpecError

_TARGET = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionPlan:
    """The cheapest point found that meets the target, checked by simulation."""

    point: dict[str, Any]
    cost: float
    cost_name: str
    metric: str
    target: float
    sense: str  # "<=" or ">="
    simulated: float  # the metric of the chosen point, simulated
    predicted: float  # the metric the linear model predicted for it
    rounds: int
    evaluations: int
    status: str
    solve_s: float
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the CLI's JSON)."""
        return {
            "point": self.point,
            "cost": self.cost,
            "cost_name": self.cost_name,
            "metric": self.metric,
            "target": self.target,
            "sense": self.sense,
            "simulated": self.simulated,
            "predicted": self.predicted,
            "rounds": self.rounds,
            "evaluations": self.evaluations,
            "status": self.status,
            "solve_s": self.solve_s,
            "rejected": self.rejected,
        }


def parse_target(text: str) -> tuple[str, str, float]:
    """``"tpot_s<=0.05"`` -> ``("tpot_s", "<=", 0.05)``; :class:`SpecError` otherwise."""
    m = _TARGET.match(text)
    if not m:
        raise SpecError([Problem("target", f"expected NAME<=VALUE or NAME>=VALUE, found {text!r}")])
    return m.group(1), m.group(2), float(m.group(3))


def _cost_name(space: DesignSpace, cost: str | None) -> str:
    names = [n for n, _e in space.derived]
    if cost is not None:
        if cost not in names:
            raise SpecError(
                [
                    Problem(
                        "cost", f"no derived value {cost!r} (derived: {', '.join(names) or 'none'})"
                    )
                ]
            )
        return cost
    for n in names:
        if "cost" in n:
            return n
    raise SpecError([Problem("derived", "the space has no derived cost (e.g. cost_usd)")])


class _Evaluator:
    def __init__(self, space: DesignSpace, metric: str, cost: str) -> None:
        from explore.evaluate import evaluator_class

        self.space, self.metric, self.cost = space, metric, cost
        self.ev = evaluator_class(space.evaluator)(space)
        self.count = 0
        self._memo: dict[str, tuple[float | None, float, str]] = {}

    def __call__(self, point: dict[str, Any]) -> tuple[float | None, float, str]:
        """(metric or None if not evaluated, cost, status / message)."""
        job = self.space.job(point, index=self.count)
        if job.key in self._memo:
            return self._memo[job.key]
        derived = self.space.derived_values(point)
        cost = float(derived[self.cost])
        bad = self.space.violations(point, derived)
        if bad:
            out: tuple[float | None, float, str] = (None, cost, "constraint: " + "; ".join(bad))
        else:
            self.count += 1
            rec = self.ev.evaluate(job)
            value = {**rec.metrics, **rec.derived}.get(self.metric)
            if rec.status != "ok" or value is None:
                out = (None, cost, f"{rec.status}: {rec.message}")
            else:
                out = (float(value), cost, "ok")
        self._memo[job.key] = out
        return out


def plan_provision(
    space: DesignSpace,
    *,
    target: str,
    cost: str | None = None,
    max_rounds: int = 8,
    time_limit_s: float = 10.0,
    solver: str = "auto",
) -> ProvisionPlan:
    """The cheapest point of ``space`` meeting ``target`` (``"tpot_s<=0.05"``)."""
    metric, sense, bound = parse_target(target)
    cost_name = _cost_name(space, cost)
    t0 = time.perf_counter()
    params = list(space.parameters)
    levels: list[list[Any]] = []
    for p in params:
        try:
            grid = p.grid()
        except SpecError as err:
            raise SpecError(
                [Problem(f"parameters.{p.name}", f"needs discrete levels (values or steps): {err}")]
            ) from None
        levels.append(list(grid))
    ev = _Evaluator(space, metric, cost_name)
    centre = {p.name: lv[len(lv) // 2] for p, lv in zip(params, levels, strict=True)}
    m0, c0, why = ev(centre)
    if m0 is None:
        raise SpecError([Problem("parameters", f"the centre point {centre} fails: {why}")])
    sign = 1.0 if sense == "<=" else -1.0
    d_metric: list[dict[int, float]] = []
    d_cost: list[dict[int, float]] = []
    for k, (p, lv) in enumerate(zip(params, levels, strict=True)):
        dm: dict[int, float] = {}
        dc: dict[int, float] = {}
        for i, v in enumerate(lv):
            pt = {**centre, p.name: v}
            m, c, _why = ev(pt) if v != centre[p.name] else (m0, c0, "ok")
            if m is None:
                continue  # the level does not fit (or breaks a constraint) at the centre
            dm[i], dc[i] = m - m0, c - c0
        d_metric.append(dm)
        d_cost.append(dc)
        del k
    prob = pulp.LpProblem("provision", pulp.LpMinimize)
    y = [
        {i: pulp.LpVariable(f"y_{k}_{i}", cat=pulp.LpBinary) for i in dm}
        for k, dm in enumerate(d_metric)
    ]
    for k, yk in enumerate(y):
        prob += pulp.lpSum(yk.values()) == 1, f"one_{k}"
    scale = abs(c0) or 1.0
    prob += pulp.lpSum(d_cost[k][i] / scale * v for k, yk in enumerate(y) for i, v in yk.items())
    mscale = abs(m0) or 1.0
    prob += (
        sign
        * (m0 + pulp.lpSum(d_metric[k][i] * v for k, yk in enumerate(y) for i, v in yk.items()))
        / mscale
        <= sign * bound / mscale,
        "target",
    )
    rejected: list[dict[str, Any]] = []
    for rnd in range(1, max_rounds + 1):
        out = solve(prob, solver=solver, time_limit_s=time_limit_s, gap=0.0)
        if out.objective is None:
            break
        pick = [max(yk, key=lambda i, yk=yk: yk[i].varValue or 0.0) for yk in y]  # type: ignore[misc]
        point = {p.name: levels[k][i] for k, (p, i) in enumerate(zip(params, pick, strict=True))}
        predicted = m0 + sum(d_metric[k][i] for k, i in enumerate(pick))
        m, c, why = ev(point)
        if m is not None and sign * m <= sign * bound * (1 + 1e-12):
            return ProvisionPlan(
                point=point,
                cost=c,
                cost_name=cost_name,
                metric=metric,
                target=bound,
                sense=sense,
                simulated=m,
                predicted=predicted,
                rounds=rnd,
                evaluations=ev.count,
                status="ok",
                solve_s=time.perf_counter() - t0,
                rejected=rejected,
            )
        rejected.append({"point": point, "simulated": m, "predicted": predicted, "why": why})
        prob += (
            pulp.lpSum(y[k][i] for k, i in enumerate(pick)) <= len(pick) - 1,
            f"cut_{rnd}",
        )
    best = min(
        (r for r in rejected if r["simulated"] is not None),
        key=lambda r: sign * r["simulated"],
        default=None,
    )
    near = (
        f"; the best simulated {metric} was {best['simulated']:.4g} at {best['point']}"
        if best
        else ""
    )
    raise SpecError(
        [
            Problem(
                "target",
                f"no point of the space meets {metric} {sense} {bound:g} "
                f"(after {len(rejected)} simulated candidate(s){near})",
            )
        ]
    )
