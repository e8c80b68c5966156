"""Expert / KV residency: which of a set of tensors stay in the fast tier (a knapsack).

The candidates (MoE expert weights, KV blocks: any tensors chosen by kind or glob)
either stay *resident* in the fast tier (HBM) or are read in place from the slow
tier (host DDR) over the link each time an op touches them, which is the
transfer cost. Everything else is placed as ``fastest_fit`` would with all
candidates in the slow tier; the fast tier's room left over is the knapsack's
capacity. The value of keeping candidate ``e`` resident is the op time it saves,

    v_e = sum over the ops that touch e of  (t_op(e slow) - t_op(e fast)),

priced by the engine itself: two :func:`memsim.plan.build_plan` probes (all
candidates slow, all fast) through :mod:`memsim.cost`; each op touches at most one
candidate, so the op-by-op difference belongs to that candidate. Access frequency
is in the graph: an expert that routing sends more tokens to is read by more, or
larger, accesses. Then ``max sum v_e x_e`` s.t. ``sum bytes_e x_e <= room``.

The predicted time is exact for the engine when ops run one after another with no
streaming (the solo op times add up), which the replay checks.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from explore.mip._solve import solve
from hw_models import System, load_system
from hw_models.errors import Problem, SpecError
from memsim.compiled import compile_graph
from memsim.graph_fit import fit_graph
from memsim.memo import SimCache, using
from memsim.plan import build_plan
from memsim.policies.base import (
    Placement,
    check_capacity,
    check_tier,
    graph_tp,
    placeable_tiers,
    stage_tier_demand,
    tier_budget,
)
from memsim.policies.builtin import fill_fastest
from memsim.simulate import default_execution
from workloads.graph import TENSOR_KINDS, Graph


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidencyPlan:
    """Which candidates stay resident, the placement, and the times it implies."""

    placement: Placement
    resident: tuple[str, ...]
    offloaded: tuple[str, ...]
    value_s: dict[str, float]  # time each candidate saves when resident
    predicted_s: float
    all_offloaded_s: float
    room_bytes: float
    status: str
    solve_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the CLI's JSON; the placement as ``Placement.to_dict``)."""
        return {
            **self.placement.to_dict(),
            "residency": {
                "resident": list(self.resident),
                "offloaded": list(self.offloaded),
                "value_s": dict(self.value_s),
                "predicted_s": self.predicted_s,
                "all_offloaded_s": self.all_offloaded_s,
                "room_bytes": self.room_bytes,
                "status": self.status,
                "solve_s": self.solve_s,
            },
        }


def _select(graph: Graph, select: str) -> list[str]:
    if select in TENSOR_KINDS:
        names = [n for n, t in graph.tensors.items() if t.kind == select]
    else:
        names = [n for n in graph.tensors if fnmatch.fnmatchcase(n, select)]
    if not names:
        raise SpecError([Problem("select", f"{select!r} matches no tensor of the graph")])
    return names


def plan_residency(
    system: System | str,
    graph: Graph,
    *,
    select: str = "kv",
    fast: str | None = None,
    slow: str | None = None,
    time_limit_s: float = 10.0,
    solver: str = "auto",
) -> ResidencyPlan:
    """Solve the residency knapsack for the tensors ``select`` names (a kind or a glob)."""
    sys_ = system if isinstance(system, System) else load_system(system)
    t0 = time.perf_counter()
    tiers = placeable_tiers(sys_)
    fast = check_tier(sys_, fast, path="fast") if fast else tiers[0]
    hosts = [t for t in tiers if sys_.tier(t).scope == "host"]
    slow = check_tier(sys_, slow, path="slow") if slow else (hosts or tiers[1:] or tiers)[0]
    with using(SimCache()):
        graph = fit_graph(sys_, graph)
        cg = compile_graph(graph)
        names = _select(graph, select)
        if any(not graph.tensors[n].persistent for n in names):
            raise SpecError([Problem("select", "residency is for persistent tensors")])
        tp = graph_tp(graph)
        fixed = dict.fromkeys(names, slow)
        reserved = {slow: sum(graph.tensors[n].bytes for n in names)}
        home = fill_fastest(sys_, graph, fixed=fixed, reserved=reserved, policy="residency")
        base = Placement(home=home, policy="residency")
        check_capacity(sys_, graph, base)
        demand = stage_tier_demand(sys_, graph, base)
        room = min(
            tier_budget(sys_, fast, tp=tp) - need
            for (_st, tier), need in demand.items()
            if tier == fast
        )
        execution = default_execution(sys_, graph)
        plan_slow = build_plan(sys_, cg, base, execution)
        fast_home = {**home, **dict.fromkeys(names, fast)}
        plan_fast = build_plan(sys_, cg, Placement(home=fast_home, policy="probe"), execution)

    def duration(plan: Any) -> np.ndarray:
        return np.asarray(plan.group_duration, dtype=float)

    if execution != "kernel":
        raise SpecError([Problem("execution", "residency models kernel execution")])
    d_slow, d_fast = duration(plan_slow), duration(plan_fast)
    idx = {cg.tensor_index[n]: n for n in names}
    value: dict[str, float] = dict.fromkeys(names, 0.0)
    op_cand: dict[int, str] = {}
    for a in range(len(cg.acc_tensor)):
        t = int(cg.acc_tensor[a])
        if t in idx:
            j = int(cg.acc_op[a])
            if op_cand.setdefault(j, idx[t]) != idx[t]:
                raise SpecError(
                    [
                        Problem(
                            "select",
                            f"op {cg.op_names[j]} touches two candidates "
                            f"({op_cand[j]}, {idx[t]}): choose them as one unit",
                        )
                    ]
                )
    for j, n in op_cand.items():
        value[n] += float(d_slow[j] - d_fast[j])
    sizes = {n: graph.tensors[n].bytes for n in names}
    prob = pulp.LpProblem("residency", pulp.LpMaximize)
    x = {n: pulp.LpVariable(f"x_{k}", cat=pulp.LpBinary) for k, n in enumerate(names)}
    scale = max(sizes.values()) or 1.0
    prob += pulp.lpSum(value[n] * 1e6 * x[n] for n in names)
    prob += pulp.lpSum(sizes[n] / scale * x[n] for n in names) <= max(room, 0.0) / scale
    # minimise the negated value (solve() minimises); same optimum
    prob.sense = pulp.LpMinimize
    prob.setObjective(-pulp.lpSum(value[n] * 1e6 * x[n] for n in names))
    out = solve(prob, solver=solver, time_limit_s=time_limit_s, gap=0.0)
    resident = tuple(n for n in names if (x[n].varValue or 0.0) > 0.5)
    offloaded = tuple(n for n in names if n not in resident)
    final = Placement(home={**home, **dict.fromkeys(resident, fast)}, policy="residency")
    check_capacity(sys_, graph, final)
    total_slow = float(d_slow.sum())
    return ResidencyPlan(
        placement=final,
        resident=resident,
        offloaded=offloaded,
        value_s=value,
        predicted_s=total_slow - sum(value[n] for n in resident),
        all_offloaded_s=total_slow,
        room_bytes=room,
        status=out.status if out.objective is not None else "infeasible",
        solve_s=time.perf_counter() - t0,
    )
