"""Placement and offload MIP: where every weight, KV block and activation lives.

Decision units are the persistent tensors (weights, KV cache, optimizer state),
grouped so that no op touches two units of one kind (the K and V cache of a layer
form one unit, since attention reads both). Each unit chooses one option: *in
place* in a tier (ops read it there, over the links on the way), or *streamed*:
homed in a lower tier and copied into the staging tier (the fastest device tier)
one segment ahead, as :class:`memsim.policies.StreamWeights` does (weights only:
tensors an op writes are never streamed). Transient tensors (activations) live
together in one tier; the planner tries each tier in speed order and keeps the
first for which the MIP is feasible (in practice the fastest).

The fraction of a layer's weight bytes in each tier and each mode is then what
FlexGen's percentages describe, at the granularity of the layer's tensors.

**Coefficients come from the engine itself.** For every tensor kind and option
the planner builds the engine's :class:`memsim.plan.Plan` of a *probe* placement
(all units of that kind in that option, the rest in the staging tier), through
:func:`memsim.plan.build_plan` and so through :mod:`memsim.cost`; the difference
from the base probe, op by op and resource by resource, is the contribution of the
one unit of that kind the op touches. Demand is additive over accesses, so the MIP
reproduces the engine's solo op time exactly:

    t_op >= overhead_op,    t_op >= lambda_op + D_r,op(x)   for every resource r
    lambda_op >= latency of every tier the op's options reach

Streaming overlaps the copy of segment ``s+1`` with the compute of segment ``s``
(prefetch depth 1), and the copy and the ops share resources (PCIe, HBM):

    tau_s >= sum_{op in s} t_op
    tau_s >= phi_{s+1} + F_r,s+1(y)                       for every resource r on a copy route
    tau_s >= sum_{op in s} D_r,op(x) + F_r,s+1(y)         for every such r (processor sharing)
    makespan = tau_{-1} + sum_s tau_s                     (tau_{-1}: the first copy, exposed)

An op that only one unit's choice affects (most ops) needs no rows: its time is
``sum_i x_ui T_u(i)``, exact and the convex hull; ops touching several units keep the
rows above plus one hull row per unit.

Incumbents, ranked by the model's own value (its integers fixed), after the full
model's LP relaxation (the bound): first, the model with twin units (the same tensor of
every layer) tied in a period of two layers, the k-th layer taking the option of layer
``k mod 2`` (up to ``PERIODIC_SHARE`` of the time limit, no LP relaxation of its own).
Identical layers make the full model highly symmetric and its LP balances every
segment's copy against its compute with fractions no integer point reaches; the tied
model has neither the symmetry nor many binaries, and alternating layers can still pair
a copy-heavy layer with a compute-heavy one. If its answer is within the requested gap
of the LP bound nothing else is scored and no search runs. Otherwise the LP rounded so
that twins keep the LP's share per option, and the baselines' placements; then, only if
the best is still not within the gap: with more than two tiers a solve restricted to the
two fastest (a third of the limit), and the full MIP warm-started with the best. Time
limits are CPU seconds (:mod:`explore.mip._solve`). The gap is always measured against
the full model's LP bound.

Capacity per (pipeline stage, tier), as :func:`memsim.policies.check_capacity`
counts it: units homed there, the activations' peak, and the staging reserve
``2 x`` the largest segment's streamed bytes.

Objectives: ``latency`` (the makespan), ``throughput`` (the same for a fixed
batch: tokens / makespan is maximal where the makespan is minimal), ``energy``
(dynamic energy of the probes, linear in the units' bytes, plus static power x
makespan).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pulp

from explore.mip._solve import SolveOutcome, _relaxed_solve, cpu_clock, solve
from hw_models import System, load_system
from hw_models.errors import Problem, SpecError
from hw_models.units import fmt_bytes
from memsim.compiled import CompiledGraph, compile_graph, transient_peak
from memsim.graph_fit import fit_graph
from memsim.memo import SimCache, using
from memsim.plan import Plan, build_plan
from memsim.policies.base import (
    CapacityError,
    Placement,
    graph_tp,
    placeable_tiers,
    stage_key,
    tensor_stages,
    tier_budget,
)
from memsim.simulate import default_execution
from workloads.graph import Graph

OBJECTIVES: tuple[str, ...] = ("latency", "throughput", "energy")
_T = 1e6  # the MIP works in microseconds ...
_B = 1e9  # ... and gigabytes, to keep CBC's tolerances meaningful
#: share of the time limit the period-2 restricted MIP may take (CPU seconds)
PERIODIC_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class Option:
    """Where a unit lives: ``home`` tier, and ``staging`` tier when streamed."""

    home: str
    staging: str | None = None

    @property
    def label(self) -> str:
        """``ddr`` (in place) or ``ddr->hbm`` (streamed)."""
        return f"{self.home}->{self.staging}" if self.staging else self.home


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementPlan:
    """The planner's answer: a :class:`Placement` ``simulate()`` accepts, and the MIP's view."""

    placement: Placement
    objective: str
    predicted_s: float
    predicted_energy_j: float | None
    gap: float | None
    bound: float | None
    solve_s: float  # the MIP (LP bound, rounding, branch and bound), wall seconds
    plan_s: float  # everything: probes, model building and the solve
    status: str
    solver: str
    activation_tier: str
    table: tuple[dict[str, Any], ...]  # per layer: fraction of weight / KV bytes per option
    size: Mapping[str, int] = field(default_factory=dict)  # binaries, variables, constraints
    #: CPU seconds of the same (this process and CBC's): what ``time_limit_s`` counts
    solve_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The file ``memsim run --policy plan:FILE`` replays (placement + the MIP's figures)."""
        return {
            **self.placement.to_dict(),
            "mip": {
                "objective": self.objective,
                "predicted_s": self.predicted_s,
                "predicted_energy_j": self.predicted_energy_j,
                "gap": self.gap,
                "bound": self.bound,
                "solve_s": self.solve_s,
                "solve_cpu_s": self.solve_cpu_s,
                "plan_s": self.plan_s,
                "status": self.status,
                "solver": self.solver,
                "activation_tier": self.activation_tier,
                "size": dict(self.size),
            },
        }


# ---- units and options ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Units:
    members: tuple[tuple[int, ...], ...]  # tensor indices per unit
    kind: tuple[str, ...]
    nbytes: np.ndarray
    streamable: tuple[bool, ...]
    stage: tuple[int, ...]
    op_unit: dict[str, np.ndarray]  # per kind: unit each op touches (-1: none)


def _units(graph: Graph, cg: CompiledGraph) -> _Units:
    n_t = len(cg.tensor_names)
    parent = list(range(n_t))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pers = cg.t_persistent
    acc_t, acc_op = cg.acc_tensor, cg.acc_op
    # union the tensors of one kind that one op touches
    first: dict[tuple[int, str], int] = {}
    for a in range(len(acc_t)):
        t = int(acc_t[a])
        if not pers[t]:
            continue
        key = (int(acc_op[a]), cg.t_kind[t])
        if key in first:
            ra, rb = find(first[key]), find(t)
            if ra != rb:
                parent[rb] = ra
        else:
            first[key] = t
    groups: dict[int, list[int]] = {}
    for t in range(n_t):
        if pers[t]:
            groups.setdefault(find(t), []).append(t)
    members = tuple(tuple(g) for g in groups.values())
    written = np.zeros(n_t, dtype=bool)
    written[acc_t[cg.acc_write]] = True
    stages = tensor_stages(graph)
    unit_of = np.full(n_t, -1)
    for u, m in enumerate(members):
        unit_of[list(m)] = u
    kinds = tuple(cg.t_kind[m[0]] for m in members)
    op_unit: dict[str, np.ndarray] = {k: np.full(cg.n_ops, -1) for k in set(kinds)}
    u_acc = unit_of[acc_t]
    sel = u_acc >= 0
    for a_op, u in zip(acc_op[sel].tolist(), u_acc[sel].tolist(), strict=True):
        op_unit[kinds[u]][a_op] = u
    return _Units(
        members=members,
        kind=kinds,
        nbytes=np.array([cg.t_bytes[list(m)].sum() for m in members]),
        streamable=tuple(
            kinds[u] == "weight" and not written[list(m)].any() for u, m in enumerate(members)
        ),
        stage=tuple(stages[cg.tensor_names[m[0]]] for m in members),
        op_unit=op_unit,
    )


def _twin_groups(units: _Units) -> list[int]:
    keys: dict[tuple[str, float, int, tuple[bool, ...]], int] = {}
    out = []
    for u in range(len(units.members)):
        key = (units.kind[u], round(float(units.nbytes[u])), units.stage[u], (units.streamable[u],))
        out.append(keys.setdefault(key, len(keys)))
    return out


def _options(system: System, *, streaming: bool) -> tuple[list[Option], str]:
    tiers = placeable_tiers(system)
    device = [t for t in tiers if system.tier(t).scope == "device"]
    staging = device[0] if device else tiers[0]
    opts = [Option(t) for t in tiers]
    if streaming:
        opts += [Option(t, staging) for t in tiers if t != staging]
    return opts, staging


def _placement(
    cg: CompiledGraph,
    units: _Units,
    choice: list[Option],
    act_tier: str,
    *,
    policy: str,
) -> Placement:
    home: dict[str, str] = {}
    staged: dict[str, str] = {}
    for n, pers in zip(cg.tensor_names, cg.t_persistent.tolist(), strict=True):
        if not pers:
            home[n] = act_tier
    for u, m in enumerate(units.members):
        for t in m:
            name = cg.tensor_names[t]
            home[name] = choice[u].home
            stage_to = choice[u].staging
            if stage_to:
                staged[name] = stage_to
    return Placement(home=home, staged=staged, prefetch_depth=1, policy=policy)


# ---- probes: the engine's own demand, per kind and option ---------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Probe:
    demand: np.ndarray  # (R, n_ops) seconds
    latency: np.ndarray  # (n_ops,)
    overhead: np.ndarray  # (n_ops,) launch overhead, the same in every probe
    # streamed probes: per segment, (resource seconds per unit, latency)
    fetch: dict[int, tuple[dict[int, np.ndarray], float]]
    energy_j: float | None


def _dynamic_energy(plan: Plan) -> float:
    from memsim.analytic import schedule_analytic
    from memsim.assemble import build_result

    res = build_result(plan, schedule_analytic(plan), fidelity="analytic", seed=0, meta={})
    return float(sum(e for c, _k, _p, e in res.energy if c != "static"))


def _probe(
    system: System,
    cg: CompiledGraph,
    units: _Units,
    choice: list[Option],
    act_tier: str,
    execution: str,
    *,
    energy: bool,
) -> _Probe:
    placement = _placement(cg, units, choice, act_tier, policy="probe")
    plan = build_plan(system, cg, placement, execution)
    fetch: dict[int, tuple[dict[int, np.ndarray], float]] = {}
    if plan.jobs:
        unit_of = np.full(len(cg.tensor_names), -1)
        for u, m in enumerate(units.members):
            unit_of[list(m)] = u
        for job in plan.jobs:
            ts = np.asarray(job.fetch_tensors, dtype=np.int64)
            if not len(ts):
                continue
            total = float(cg.t_bytes[ts].sum())
            per: dict[int, np.ndarray] = {}
            for t in ts.tolist():
                u = int(unit_of[t])
                share = job.fetch_demand * (cg.t_bytes[t] / total)
                per[u] = per[u] + share if u in per else share
            seg = int(cg.segment[plan.group_start[job.first_group]])
            fetch[seg] = (per, float(job.fetch_latency))
    return _Probe(
        demand=plan.op_demand,
        latency=plan.op_latency,
        overhead=plan.op_overhead,
        fetch=fetch,
        energy_j=_dynamic_energy(plan) if energy else None,
    )


def _static_power(system: System, tp: int) -> float:
    tiers = sum(
        t.background_power_w * (tp if t.scope == "device" else 1) for t in system.tiers.values()
    )
    return float(tiers + sum(u.idle_power_w * tp for u in system.compute.values()))


# ---- the model ----------------------------------------------------------------------


@dataclass(slots=True)
class _Capacity:
    """Bytes per (stage, tier) of an integer choice, as the MIP's capacity rows count them."""

    unit_key: list[dict[int, tuple[int, str]]]  # per unit: option -> (stage, tier) of its home
    nbytes: np.ndarray
    const: dict[tuple[int, str], float]
    seg_units: dict[int, dict[int, float]]  # segment -> unit -> streamable bytes
    seg_stage: dict[int, int]
    staging_key: dict[int, tuple[int, str]]  # stage -> key of its staging tier
    streamed: frozenset[int]  # option indices that stream
    budget: dict[tuple[int, str], float]
    group: list[int]  # units of one kind, size and stage share a group (layers' twins)

    def loads(self, choice: list[int]) -> dict[tuple[int, str], float]:
        """Bytes each (stage, tier) holds under ``choice`` (option index per unit)."""
        out = dict(self.const)
        for u, i in enumerate(choice):
            key = self.unit_key[u][i]
            out[key] = out.get(key, 0.0) + float(self.nbytes[u])
        reserve: dict[int, float] = {}
        for s, us in self.seg_units.items():
            b = sum(v for u, v in us.items() if choice[u] in self.streamed)
            st = self.seg_stage[s]
            reserve[st] = max(reserve.get(st, 0.0), b)
        for st, b in reserve.items():
            key = self.staging_key[st]
            out[key] = out.get(key, 0.0) + 2 * b
        return out

    def overflow(self, choice: list[int]) -> float:
        """Total bytes over budget, summed over (stage, tier)."""
        return sum(max(0.0, v - self.budget.get(k, np.inf)) for k, v in self.loads(choice).items())


def _round(
    x: list[dict[int, pulp.LpVariable]], cap: _Capacity
) -> dict[pulp.LpVariable, float] | None:
    """Round the LP relaxation within capacity: the most certain units first, each to
    the option with the largest relaxed value that still fits (then any that fits);
    ``None`` if some unit fits nowhere."""
    loads = dict(cap.const)
    unit_segs: dict[int, list[tuple[int, float]]] = {}
    for seg, us in cap.seg_units.items():
        for u, b in us.items():
            unit_segs.setdefault(u, []).append((seg, b))
    seg_total: dict[int, float] = {}
    reserve: dict[int, float] = {}

    def val(u: int, i: int) -> float:
        return float(x[u][i].varValue or 0.0)

    # fraction-preserving rounding: within a group of twin units (the same tensor of
    # every layer), the LP's total weight per option becomes a count of units
    target: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for u in range(len(x)):
        members.setdefault(cap.group[u], []).append(u)
    for twins in members.values():
        mass: dict[int, float] = {}
        for u in twins:
            for i in x[u]:
                mass[i] = mass.get(i, 0.0) + val(u, i)
        count = {i: int(np.floor(m + 1e-9)) for i, m in mass.items()}
        rest = len(twins) - sum(count.values())
        for i in sorted(mass, key=lambda i: -(mass[i] - count[i]))[: max(rest, 0)]:
            count[i] += 1

        def certainty(u: int) -> float:
            return -max(val(u, i) for i in x[u])

        for u in sorted(twins, key=certainty):
            avail = [i for i in x[u] if count.get(i, 0) > 0]
            if avail:
                pick = max(avail, key=lambda i, u=u: (val(u, i), -i))  # type: ignore[misc]
                count[pick] -= 1
                target[u] = pick

    def order_key(u: int) -> tuple[float, float]:
        return (-max(val(u, i) for i in x[u]), -float(cap.nbytes[u]))

    def pref_key(u: int, i: int) -> tuple[bool, float, int]:
        return (i != target.get(u), -val(u, i), i)

    order = sorted(range(len(x)), key=order_key)
    choice = [-1] * len(x)
    for u in order:
        prefs = sorted(x[u], key=lambda i, u=u: pref_key(u, i))  # type: ignore[misc]
        for i in prefs:
            key = cap.unit_key[u][i]
            extra: dict[tuple[int, str], float] = {key: float(cap.nbytes[u])}
            new_res: dict[int, float] = {}
            if i in cap.streamed:
                for seg, b in unit_segs.get(u, []):
                    st = cap.seg_stage[seg]
                    tot = seg_total.get(seg, 0.0) + b
                    if tot > max(reserve.get(st, 0.0), new_res.get(st, 0.0)):
                        new_res[st] = tot
                for st, r in new_res.items():
                    sk = cap.staging_key[st]
                    extra[sk] = extra.get(sk, 0.0) + 2 * (r - reserve.get(st, 0.0))
            if all(
                loads.get(k, 0.0) + v <= cap.budget.get(k, np.inf) * (1 + 1e-12)
                for k, v in extra.items()
            ):
                for k, v in extra.items():
                    loads[k] = loads.get(k, 0.0) + v
                reserve.update(new_res)
                if i in cap.streamed:
                    for seg, b in unit_segs.get(u, []):
                        seg_total[seg] = seg_total.get(seg, 0.0) + b
                choice[u] = i
                break
        else:
            return None
    return {x[u][i]: float(i == choice[u]) for u in range(len(x)) for i in x[u]}


@dataclass(slots=True)
class _Model:
    prob: pulp.LpProblem
    x: list[dict[int, pulp.LpVariable]]  # per unit: option index -> binary
    makespan: Any  # affine expression in microseconds
    energy: Any | None
    n_binaries: int
    cap: _Capacity
    # the best incumbent candidate: (engine value, assignment), set by _candidates
    best: tuple[float, dict[pulp.LpVariable, float]] | None = None


def _build(
    system: System,
    graph: Graph,
    cg: CompiledGraph,
    units: _Units,
    options: list[Option],
    staging: str,
    act_tier: str,
    execution: str,
    objective: str,
) -> _Model | None:
    tp = graph_tp(graph)
    base_choice = [Option(staging)] * len(units.members)
    want_energy = objective == "energy"
    base = _probe(system, cg, units, base_choice, act_tier, execution, energy=want_energy)
    kinds = sorted(set(units.kind))
    allowed: list[list[int]] = []
    for u in range(len(units.members)):
        allowed.append(
            [i for i, o in enumerate(options) if o.staging is None or units.streamable[u]]
        )
    probes: dict[tuple[str, int], _Probe] = {}
    for k in kinds:
        for i, o in enumerate(options):
            if o.staging and not any(
                units.streamable[u] and units.kind[u] == k for u in range(len(units.kind))
            ):
                continue
            if o == Option(staging):
                probes[(k, i)] = base
                continue
            choice = [o if units.kind[u] == k else Option(staging) for u in range(len(units.kind))]
            probes[(k, i)] = _probe(
                system, cg, units, choice, act_tier, execution, energy=want_energy
            )

    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    x: list[dict[int, pulp.LpVariable]] = []
    for u, opts in enumerate(allowed):
        x.append({i: pulp.LpVariable(f"x_{u}_{i}", cat=pulp.LpBinary) for i in opts})
        prob += pulp.lpSum(x[u].values()) == 1, f"one_{u}"

    # ---- capacity per (stage, tier) ----
    stages = tensor_stages(graph)
    trans = ~cg.t_persistent
    trans_stage: dict[int, list[int]] = {}
    for t in np.flatnonzero(trans).tolist():
        trans_stage.setdefault(stages[cg.tensor_names[t]], []).append(t)
    load: dict[tuple[int, str], Any] = {}
    const: dict[tuple[int, str], float] = {}
    for u in range(len(units.members)):
        for i, var in x[u].items():
            key = stage_key(system, options[i].home, units.stage[u])
            load[key] = load.get(key, 0) + (units.nbytes[u] / _B) * var
    for st, ts in trans_stage.items():
        mask = np.zeros(len(cg.tensor_names), dtype=bool)
        mask[ts] = True
        key = stage_key(system, act_tier, st)
        const[key] = const.get(key, 0.0) + transient_peak(cg, mask) / _B
    # staging reserve: 2 x the largest segment's streamed bytes, per stage
    seg_units: dict[int, dict[int, float]] = {}
    acc_seg = cg.segment[cg.acc_op]
    unit_of = np.full(len(cg.tensor_names), -1)
    for u, m in enumerate(units.members):
        unit_of[list(m)] = u
    seen: set[tuple[int, int]] = set()
    for a in range(len(cg.acc_tensor)):
        t = int(cg.acc_tensor[a])
        u = int(unit_of[t])
        if u < 0 or not units.streamable[u]:
            continue
        s = int(acc_seg[a])
        if (s, t) in seen:
            continue
        seen.add((s, t))
        seg_units.setdefault(s, {})
        seg_units[s][u] = seg_units[s].get(u, 0.0) + float(cg.t_bytes[t])
    stream_opts = [i for i, o in enumerate(options) if o.staging]
    if stream_opts and seg_units:
        reserve: dict[int, pulp.LpVariable] = {}
        seg_stage = {int(cg.segment[o]): int(cg.stage[o]) for o in range(cg.n_ops)}
        for s, us in seg_units.items():
            st = seg_stage[s]
            if st not in reserve:
                reserve[st] = pulp.LpVariable(f"reserve_{st}", lowBound=0)
            streamed = pulp.lpSum(
                (b / _B) * x[u][i] for u, b in us.items() for i in stream_opts if i in x[u]
            )
            prob += reserve[st] >= streamed, f"reserve_{s}"
        for st, var in reserve.items():
            key = stage_key(system, staging, st)
            load[key] = load.get(key, 0) + 2 * var
    for key in sorted(set(load) | set(const)):
        budget = tier_budget(system, key[1], tp=tp) / _B
        prob += load.get(key, 0) + const.get(key, 0.0) <= budget, f"cap_{key[0]}_{key[1]}"

    # ---- op times ----
    n_ops = cg.n_ops
    d0 = base.demand
    lat0 = base.latency
    ovh = base.overhead
    # per op: list of (unit, option, delta demand column, latency)
    touched = np.zeros(n_ops, dtype=bool)
    for k in kinds:
        touched |= units.op_unit[k] >= 0
    op_vars: dict[int, Any] = {}
    cache: dict[bytes, Any] = {}
    op_expr: dict[int, list[tuple[np.ndarray, int, int]]] = {}  # op -> [(delta, u, i)]
    const_time = 0.0
    for j in range(n_ops):
        if not touched[j]:
            continue
        terms: list[tuple[np.ndarray, int, int]] = []
        lats: list[tuple[float, int, int]] = []
        for k in kinds:
            u = int(units.op_unit[k][j])
            if u < 0:
                continue
            for i in x[u]:
                pr = probes.get((k, i))
                if pr is None or pr is base:
                    continue
                delta = pr.demand[:, j] - d0[:, j]
                if np.any(delta != 0):
                    terms.append((delta, u, i))
                if pr.latency[j] > lat0[j]:
                    lats.append((pr.latency[j], u, i))
        op_expr[j] = terms
        parts: list[np.ndarray] = [np.array([ovh[j], lat0[j]]), d0[:, j]]
        parts += [np.concatenate([t[0], [t[1], t[2]]]) for t in terms]
        parts += [np.array([la, u, i], dtype=float) for la, u, i in lats]
        sig = np.concatenate(parts).tobytes()
        if sig in cache:
            op_vars[j] = cache[sig]
            continue
        op_units = {u for _d, u, _i in terms} | {u for _la, u, _i in lats}
        if len(op_units) <= 1:
            # one unit decides this op's time: the time is that unit's choice, exactly
            # (T(i) per option, affine in its binaries; the convex hull, no rows needed)
            if not op_units:
                expr: Any = float(max(ovh[j], lat0[j] + d0[:, j].max())) * _T
            else:
                (u1,) = op_units
                lat_of1 = {i: la for la, _u, i in lats}
                delta_of1 = {i: d for d, _u, i in terms}
                coef1 = []
                for i in x[u1]:
                    dem = d0[:, j] + delta_of1.get(i, 0.0)
                    la = max(lat0[j], lat_of1.get(i, 0.0))
                    coef1.append((max(ovh[j], la + float(dem.max())) * _T, i))
                expr = pulp.lpSum(c * x[u1][i] for c, i in coef1)
            cache[sig] = expr
            op_vars[j] = expr
            continue
        t_var = pulp.LpVariable(f"t_{j}", lowBound=ovh[j] * _T)
        cache[sig] = t_var
        op_vars[j] = t_var
        if lats:
            lam: Any = pulp.LpVariable(f"lam_{j}", lowBound=lat0[j] * _T)
            for la, u, i in lats:
                prob += lam >= la * _T * x[u][i]
        else:
            lam = lat0[j] * _T
        rs = set(np.flatnonzero(d0[:, j]).tolist())
        for delta, _u, _i in terms:
            rs |= set(np.flatnonzero(delta).tolist())
        for r in sorted(rs):
            expr = d0[r, j] * _T + pulp.lpSum(
                delta[r] * _T * x[u][i] for delta, u, i in terms if delta[r] != 0
            )
            prob += t_var >= lam + expr
        # the convex hull of each unit's effect (tightens the LP, exact on integers):
        # t >= sum_i x_ui T_u(i), T_u(i) = the op's time with u at i and every other
        # unit at its most favourable option, resource by resource
        if op_units:
            n_r = d0.shape[0]
            best: dict[int, np.ndarray] = {}
            for delta, u, _i in terms:
                best[u] = np.minimum(best.get(u, np.zeros(n_r)), delta)
            lat_of = {(u, i): la for la, u, i in lats}
            delta_of = {(u, i): d for d, u, i in terms}
            for u in op_units:
                others = sum((b for v, b in best.items() if v != u), np.zeros(n_r))
                coef = []
                for i in x[u]:
                    dem = d0[:, j] + delta_of.get((u, i), 0.0) + others
                    la = max(lat0[j], lat_of.get((u, i), 0.0))
                    coef.append((max(ovh[j], la + float(dem.max())) * _T, i))
                prob += t_var >= pulp.lpSum(c * x[u][i] for c, i in coef)
    base_dur = np.maximum(ovh, lat0 + d0.max(axis=0))

    def op_time(j: int) -> Any:
        return op_vars[j] if j in op_vars else base_dur[j] * _T

    # ---- segments and streaming ----
    stream_probes = {key: p for key, p in probes.items() if options[key[1]].staging}
    streaming = bool(stream_probes) and bool(seg_units)
    if not streaming:
        const_time = float(base_dur[~touched].sum()) * _T
        makespan = pulp.lpSum(op_vars[j] for j in op_vars) + const_time
    else:
        seg_ops: dict[int, list[int]] = {}
        for j in range(n_ops):
            seg_ops.setdefault(int(cg.segment[j]), []).append(j)
        order = sorted(seg_ops)

        def fetch_terms(s: int) -> tuple[dict[int, Any], Any]:
            """Per resource: the copy's demand for segment ``s`` (affine), and its latency."""
            per_r: dict[int, Any] = {}
            lats: list[tuple[float, int, int]] = []
            for (_k, i), pr in stream_probes.items():
                got = pr.fetch.get(s)
                if got is None:
                    continue
                per_unit, lat = got
                for u, dem in per_unit.items():
                    if i not in x[u]:
                        continue
                    for r in np.flatnonzero(dem).tolist():
                        per_r[r] = per_r.get(r, 0) + dem[r] * _T * x[u][i]
                    lats.append((lat, u, i))
            if not lats:
                return per_r, 0
            phi = pulp.LpVariable(f"phi_{s}", lowBound=0)
            for lat, u, i in lats:
                prob.addConstraint(phi >= lat * _T * x[u][i])
            return per_r, phi

        taus = []
        first_r, first_lat = fetch_terms(order[0])
        if first_r:
            tau0 = pulp.LpVariable("tau_first", lowBound=0)
            for e in first_r.values():
                prob += tau0 >= first_lat + e
            taus.append(tau0)
        for idx, s in enumerate(order):
            tau = pulp.LpVariable(f"tau_{s}", lowBound=0)
            prob += tau >= pulp.lpSum(op_time(j) for j in seg_ops[s])
            if idx + 1 < len(order):
                nxt_r, nxt_lat = fetch_terms(order[idx + 1])
                for r, e in nxt_r.items():
                    prob += tau >= nxt_lat + e
                    ops_r = pulp.lpSum(
                        d0[r, j] * _T
                        + pulp.lpSum(
                            delta[r] * _T * x[u][i]
                            for delta, u, i in op_expr.get(j, [])
                            if delta[r] != 0
                        )
                        for j in seg_ops[s]
                    )
                    prob += tau >= ops_r + e
            taus.append(tau)
        makespan = pulp.lpSum(taus)

    energy_expr = None
    if want_energy:
        assert base.energy_j is not None
        acc_bytes = np.bincount(
            unit_of[cg.acc_tensor][unit_of[cg.acc_tensor] >= 0],
            weights=cg.acc_bytes[unit_of[cg.acc_tensor] >= 0],
            minlength=len(units.members),
        )
        dyn: list[Any] = [base.energy_j]
        for (k, i), pr in probes.items():
            if pr is base or pr.energy_j is None:
                continue
            kin = [u for u in range(len(units.members)) if units.kind[u] == k and i in x[u]]
            total = float(acc_bytes[kin].sum()) if kin else 0.0
            if total <= 0:
                continue
            delta = pr.energy_j - base.energy_j
            dyn.append(pulp.lpSum(delta * (acc_bytes[u] / total) * x[u][i] for u in kin))
        energy_expr = pulp.lpSum(dyn) + _static_power(system, tp) * makespan / _T
        prob += energy_expr
    else:
        prob += makespan
    cap = _Capacity(
        unit_key=[
            {i: stage_key(system, options[i].home, units.stage[u]) for i in x[u]}
            for u in range(len(x))
        ],
        nbytes=units.nbytes / _B,
        const=const,
        seg_units={s: {u: b / _B for u, b in us.items()} for s, us in seg_units.items()},
        seg_stage={int(cg.segment[o]): int(cg.stage[o]) for o in range(cg.n_ops)},
        staging_key={st: stage_key(system, staging, st) for st in set(cg.stage.tolist()) | {0}},
        streamed=frozenset(stream_opts),
        group=_twin_groups(units),
        budget={
            key: tier_budget(system, key[1], tp=tp) / _B
            for key in {
                stage_key(system, t, st)
                for t in placeable_tiers(system)
                for st in set(cg.stage.tolist()) | {0}
            }
        },
    )
    return _Model(
        prob=prob,
        x=x,
        makespan=makespan,
        energy=energy_expr,
        n_binaries=sum(len(v) for v in x),
        cap=cap,
    )


def _chosen(model: _Model, options: list[Option]) -> list[Option]:
    """The option each unit takes in the model's current solution."""
    out = []
    for xu in model.x:
        best_i = max(xu, key=lambda i, xu=xu: xu[i].varValue or 0.0)  # type: ignore[misc]
        out.append(options[best_i])
    return out


def _periodic_start(
    model: _Model,
    cg: CompiledGraph,
    units: _Units,
    solver: str,
    time_limit_s: float,
    gap: float,
    period: int = 2,
) -> list[dict[pulp.LpVariable, float]]:
    """Solve the model with twin units tied in a period of ``period`` layers (the k-th
    twin in layer order takes the option of the ``k mod period``-th), a much smaller MIP
    without the full model's layer symmetry; its answer is a point of the full model,
    offered to it as an incumbent. Nothing when no twin group has more than ``period``
    members (the restriction would be the model itself)."""
    members: dict[int, list[int]] = {}
    for u, grp in enumerate(model.cap.group):
        members.setdefault(grp, []).append(u)
    tied = model.prob.copy()  # the same variables; the ties go into the copy only
    n_ties = 0
    for us in members.values():
        us = sorted(us, key=lambda u: min(_tensor_layers(cg, units.members[u])))
        for k in range(period, len(us)):
            u, rep = us[k], us[k % period]
            for i, v in model.x[u].items():
                tied += v == model.x[rep][i], f"tie_{u}_{i}"
                n_ties += 1
    if not n_ties:
        return []
    # no LP relaxation of the tied copy (its bound is not needed, and its LP took twice
    # the full model's): CBC's own root LP, presolved with the ties substituted
    out = solve(tied, solver=solver, time_limit_s=time_limit_s, gap=gap, relax=False)
    if out.objective is None:
        return []
    return [{v: float(round(v.varValue or 0.0)) for xu in model.x for v in xu.values()}]


def _two_tier_start(
    model: _Model,
    options: list[Option],
    staging: str,
    system: System,
    solver: str,
    time_limit_s: float,
    gap: float,
) -> list[dict[pulp.LpVariable, float]]:
    """With more than two tiers, first solve the model restricted to the staging tier
    and the next one (a smaller, easier MIP) for a third of the time; its answer is a
    point of the full model, offered to it as an incumbent."""
    tiers = placeable_tiers(system)
    if len(tiers) <= 2:
        return []
    keep = {staging, next(t for t in tiers if t != staging)}
    barred = [
        v
        for xu in model.x
        for i, v in xu.items()
        if not {options[i].home, options[i].staging} <= keep | {None}
    ]
    saved = [(v, v.upBound) for v in barred]
    try:
        for v in barred:
            v.upBound = 0
        out = solve(model.prob, solver=solver, time_limit_s=time_limit_s / 3, gap=gap)
        if out.objective is None:
            return []
        return [{v: float(round(v.varValue or 0.0)) for xu in model.x for v in xu.values()}]
    finally:
        for v, ub in saved:
            v.upBound = ub


def _candidates(
    system: System,
    graph: Graph,
    cg: CompiledGraph,
    units: _Units,
    options: list[Option],
    model: _Model,
    act_tier: str,
    objective: str,
    first: Callable[[], list[dict[pulp.LpVariable, float]]] | None = None,
    more: Callable[[], list[dict[pulp.LpVariable, float]]] | None = None,
    gap: float = 0.0,
) -> list[dict[pulp.LpVariable, float]]:
    """Incumbents to try: ``first()``, the rounded LP and every baseline policy's
    placement that is a point of this model (same activation tier, options the model
    has); ``more()`` adds some only when the best so far is not already (by the model)
    within ``gap`` of the LP bound the variables hold on entry. If ``first()``'s best is
    within ``gap`` of that bound the others are not scored (nothing they offer can
    change the status). ``first()`` runs after the LP rounding, since it may overwrite
    the relaxed values the rounding reads."""
    lp_value = pulp.value(model.prob.objective)
    from memsim.policies import make_policy

    out: list[dict[pulp.LpVariable, float]] = []
    rounded = _round(model.x, model.cap)
    if rounded is not None:
        out.append(rounded)
    index = {o: i for i, o in enumerate(options)}
    for name in ("fastest_fit", "kv_offload", "stream_weights"):
        try:
            pl = make_policy(name).place(system, graph)
        except SpecError:
            continue
        trans = [n for n, p in zip(cg.tensor_names, cg.t_persistent.tolist(), strict=True) if not p]
        if any(pl.home[n] != act_tier or n in pl.staged for n in trans):
            continue
        choice: list[int] = []
        for u, m in enumerate(units.members):
            name0 = cg.tensor_names[m[0]]
            opt = Option(pl.home[name0], pl.staged.get(name0))
            i = index.get(opt, -1)
            same = all(
                Option(pl.home[cg.tensor_names[t]], pl.staged.get(cg.tensor_names[t])) == opt
                for t in m
            )
            if i not in model.x[u] or not same:
                break
            choice.append(i)
        else:
            out.append(
                {
                    model.x[u][i]: float(i == choice[u])
                    for u in range(len(choice))
                    for i in model.x[u]
                }
            )

    # only whole points of the model within capacity (a time-limited restricted solve
    # may return none, or values the solver never made integral)
    def valid(a: dict[pulp.LpVariable, float]) -> bool:
        choice = []
        for xu in model.x:
            ones = [i for i, v in xu.items() if a.get(v, 0.0) > 0.5]
            if len(ones) != 1:
                return False
            choice.append(ones[0])
        return model.cap.overflow(choice) <= 1e-9

    # rank by the model's own value (an LP with the integers fixed), the objective the
    # gap is measured in and the replay follows; the analytic engine is no judge here
    # (it overlaps streaming copies more freely than the event engine replays them)
    def model_value(assignment: dict[pulp.LpVariable, float]) -> float:
        value = _relaxed_solve(model.prob, assignment)
        return np.inf if value is None else value

    def within() -> bool:
        return (
            model.best is not None
            and lp_value is not None
            and model.best[0] * (1 - gap) <= lp_value
        )

    scored: list[tuple[float, dict[pulp.LpVariable, float]]] = []
    for batch in (
        (lambda: first() if first is not None else []),
        lambda: out,
        # more incumbents only where the best is not within the gap of the LP bound
        (lambda: more() if more is not None else []),
    ):
        if within():
            break
        scored += [(model_value(a), a) for a in batch() if valid(a)]
        if scored:
            model.best = min(scored, key=lambda va: va[0])
    return [model.best[1]] if model.best is not None else []


# ---- public entry point ---------------------------------------------------------------


def _infeasible(system: System, graph: Graph, cg: CompiledGraph) -> CapacityError:
    """Why nothing fits: total bytes against the capacity of every tier together."""
    tp = graph_tp(graph)
    tiers = placeable_tiers(system)
    need = float(cg.t_bytes[cg.t_persistent].sum()) + transient_peak(cg, ~cg.t_persistent)
    room = {t: tier_budget(system, t, tp=tp) for t in tiers}
    total = sum(room.values())
    roomiest = max(tiers, key=lambda t: room[t])
    short = max(need - total, 0.0)
    parts = ", ".join(f"{t} {fmt_bytes(room[t])}" for t in tiers)
    if short > 0:
        msg = (
            f"infeasible: the model needs {fmt_bytes(need)} (weights, KV cache and peak "
            f"activations) but the tiers of {system.name} hold {fmt_bytes(total)} together "
            f"({parts}); short by {fmt_bytes(short)} even with {roomiest} full"
        )
    else:
        big = float(cg.t_bytes.max()) if len(cg.t_bytes) else 0.0
        short = max(big - room[roomiest], 0.0)
        msg = (
            f"infeasible: no split of the model's {fmt_bytes(need)} over {parts} satisfies "
            f"every per-stage capacity (largest tensor {fmt_bytes(big)}; the roomiest tier, "
            f"{roomiest}, short by {fmt_bytes(short)})"
        )
    return CapacityError(
        [Problem(f"tiers.{roomiest}.capacity_bytes", msg)], tier=roomiest, shortfall_bytes=short
    )


def _table(
    cg: CompiledGraph, units: _Units, choice: list[Option], act_tier: str
) -> tuple[dict[str, Any], ...]:
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for u, m in enumerate(units.members):
        layer_vals = {int(cg_layer) for cg_layer in _tensor_layers(cg, m)}
        layer = str(min(layer_vals)) if len(layer_vals) == 1 and min(layer_vals) >= 0 else "-"
        row = rows.setdefault((layer, units.kind[u]), {})
        row[choice[u].label] = row.get(choice[u].label, 0.0) + float(units.nbytes[u])
    out = []
    for (layer, kind), row in sorted(
        rows.items(),
        key=lambda kv: (kv[0][0] == "-", int(kv[0][0]) if kv[0][0] != "-" else 0, kv[0][1]),
    ):
        total = sum(row.values())
        out.append(
            {
                "layer": layer,
                "kind": kind,
                "bytes": total,
                "fractions": {k: v / total for k, v in sorted(row.items())},
            }
        )
    out.append({"layer": "-", "kind": "activation", "bytes": 0.0, "fractions": {act_tier: 1.0}})
    return tuple(out)


def _tensor_layers(cg: CompiledGraph, members: tuple[int, ...]) -> list[int]:
    first = cg.first_use[list(members)]
    return [int(cg.layer[f]) if f >= 0 else -1 for f in first.tolist()]


def plan_placement(
    system: System | str,
    graph: Graph,
    *,
    objective: str = "latency",
    execution: str | None = None,
    streaming: bool = True,
    time_limit_s: float = 10.0,
    gap: float = 0.01,
    solver: str = "auto",
) -> PlacementPlan:
    """Solve the placement MIP for ``graph`` on ``system`` (see the module doc).

    Returns a :class:`PlacementPlan` whose ``placement`` :func:`memsim.simulate`
    accepts. Raises :class:`~memsim.policies.CapacityError` naming the tier and the
    shortfall when no placement fits.
    """
    if objective not in OBJECTIVES:
        raise SpecError(
            [
                Problem(
                    "objective", f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})"
                )
            ]
        )
    sys_ = system if isinstance(system, System) else load_system(system)
    t0 = time.perf_counter()
    with using(SimCache()):
        graph = fit_graph(sys_, graph)
        cg = compile_graph(graph)
        execution = execution or default_execution(sys_, graph)
        if execution != "kernel":
            raise SpecError(
                [
                    Problem(
                        "execution", f"the placement MIP models kernel execution, not {execution!r}"
                    )
                ]
            )
        tiers = placeable_tiers(sys_)
        need = float(cg.t_bytes[cg.t_persistent].sum()) + transient_peak(cg, ~cg.t_persistent)
        if need > sum(tier_budget(sys_, t, tp=graph_tp(graph)) for t in tiers):
            raise _infeasible(sys_, graph, cg)  # nothing to solve: it fits nowhere
        units = _units(graph, cg)
        options, staging = _options(sys_, streaming=streaming)
        for act_tier in placeable_tiers(sys_):
            model = _build(sys_, graph, cg, units, options, staging, act_tier, execution, objective)
            if model is None:
                continue
            t_start, c_start = time.perf_counter(), cpu_clock()
            # the full LP first (the bound); then incumbents, the first from the period-2
            # restricted MIP (twin units tied across layers k mod 2; most of the limit,
            # PERIODIC_SHARE); the rest, and (only if the best so far is not within the
            # gap already) the two fastest tiers (a third), then the full MIP
            periodic = partial(
                _periodic_start, model, cg, units, solver, PERIODIC_SHARE * time_limit_s, gap / 4
            )
            two_tier = partial(
                _two_tier_start, model, options, staging, sys_, solver, time_limit_s, gap
            )
            out: SolveOutcome = solve(
                model.prob,
                solver=solver,
                time_limit_s=time_limit_s,
                gap=gap,
                rounding=partial(
                    _candidates,
                    sys_,
                    graph,
                    cg,
                    units,
                    options,
                    model,
                    act_tier,
                    objective,
                    periodic,
                    two_tier,
                    gap,
                ),
            )
            solve_s = time.perf_counter() - t_start  # the restricted solves included
            solve_cpu_s = cpu_clock() - c_start
            if out.objective is None:
                if out.status == "infeasible":
                    continue  # the activations do not fit here: try the next tier
                raise SpecError(
                    [
                        Problem(
                            "time_limit",
                            f"no placement found within {time_limit_s:g} s ({out.status}); "
                            "raise --time-limit",
                        )
                    ]
                )
            choice = _chosen(model, options)
            placement = _placement(cg, units, choice, act_tier, policy="plan")
            value = float(pulp.value(model.prob.objective))
            gap_now, status = out.gap, out.status
            if out.bound is not None and value > 0 and value > out.objective * (1 + 1e-9):
                # the engine preferred the incumbent: its own gap, and a status to match
                gap_now = max(0.0, (value - out.bound) / value)
                status = "gap_reached" if gap_now <= gap else "time_limit"
            predicted = float(pulp.value(model.makespan)) / _T
            energy = float(pulp.value(model.energy)) if model.energy is not None else None
            return PlacementPlan(
                placement=placement,
                objective=objective,
                predicted_s=predicted,
                predicted_energy_j=energy,
                gap=gap_now,
                bound=(out.bound / (_T if objective != "energy" else 1.0)) if out.bound else None,
                solve_s=solve_s,
                solve_cpu_s=solve_cpu_s,
                plan_s=time.perf_counter() - t0,
                status=status,
                solver=out.solver,
                activation_tier=act_tier,
                table=_table(cg, units, choice, act_tier),
                size={
                    "binaries": model.n_binaries,
                    "variables": len(model.prob.variables()),
                    "constraints": len(model.prob.constraints),
                    "units": len(units.members),
                    "ops": cg.n_ops,
                },
            )
        raise _infeasible(sys_, graph, cg)
