"""`simulate(system, graph, ...)`: the one entry point of the simulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hw_models import System, load_system
from hw_models.errors import Problem, SpecError
from memsim.assemble import build_result
from memsim.compiled import compile_graph
from memsim.graph_fit import fit_graph
from memsim.memo import SimCache, active, memo, using
from memsim.plan import EXECUTIONS, Plan, build_plan
from memsim.policies import Explicit, Placement, check_capacity, make_policy
from memsim.result import DETAILS, SimResult
from workloads.graph import Graph, GraphMeta

FIDELITIES: tuple[str, ...] = ("event", "analytic")

PolicyLike = str | Placement | Mapping[str, str] | Any | None
#: a ``memsim.dram.ControllerConfig``, a mapping of its fields or ``key=value`` strings
DramConfigLike = Any | Mapping[str, Any] | Iterable[str] | None


def resolve_placement(system: System, graph: Graph, policy: PolicyLike) -> Placement:
    """A :class:`Placement` from a policy name, a policy object, a mapping or a placement."""
    if policy is None:
        policy = "fastest_fit"
    if isinstance(policy, str):
        # a registered policy reads only the tiers (capacity, kind, scope, speed order),
        # the devices and the links' topology: a sweep over bandwidths or FLOP/s that
        # keeps those reuses the placement (memoised in the active SimCache, if any)
        name = policy
        key = (name, id(graph), _placement_facts(system))
        return memo("placement", key, lambda: make_policy(name).place(system, graph), pin=graph)
    if isinstance(policy, Placement):
        check_capacity(system, graph, policy)
        return policy
    if isinstance(policy, Mapping):
        return Explicit(mapping=dict(policy)).place(system, graph)
    place = getattr(policy, "place", None)
    if callable(place):
        placement = place(system, graph)
        if not isinstance(placement, Placement):
            raise TypeError(
                f"{policy!r}.place() returned {type(placement).__name__}, not Placement"
            )
        return placement
    raise SpecError(
        [Problem("policy", f"expected a policy name, a Policy or a mapping, found {policy!r}")]
    )


def _placement_facts(system: System) -> tuple[Any, ...]:
    """What a registered placement policy may read of ``system``."""
    return (
        system.name,
        system.devices,
        tuple((n, t.kind, t.scope, t.capacity_bytes) for n, t in system.tiers.items()),
        tuple(system.tiers_by_speed()),
        tuple((n, tuple(lk.between)) for n, lk in system.links.items()),
    )


def default_execution(system: System, graph: Graph) -> str:
    """``dataflow`` on systems whose main compute unit is a dataflow unit, else ``kernel``
    (a modelling choice of the system and the graph, never of a front end)."""
    dtype = GraphMeta.of(graph.meta).dtype or "bf16"
    try:
        main = system.main_compute(dtype)
    except KeyError:
        main = next(iter(system.compute))
    return "dataflow" if system.compute[main].kind == "dataflow" else "kernel"


def make_plan(
    system: System | str | Path,
    graph: Graph,
    *,
    policy: PolicyLike = None,
    execution: str | None = None,
    dram_config: DramConfigLike = None,
    cache: SimCache | None = None,
) -> Plan:
    """The resource-demand plan both fidelities execute (exposed for tools and tests).

    ``graph`` is first fitted to the system (:func:`memsim.graph_fit.fit_graph`);
    ``plan.cg`` is the graph that ran. ``cache`` as in :func:`simulate`.
    """
    with using(cache if cache is not None else _call_cache()):
        return _make_plan(system, graph, policy, execution, dram_config, local=cache is None)[0]


def _call_cache() -> SimCache:
    """The cache of one call made without a caller's :class:`SimCache`: it shares facts
    between the steps of the call only, and holds no per-op table longer than a step
    needs it (a large graph's run keeps its peak memory low)."""
    return SimCache(sizes={"op_tables": 0})


def _make_plan(
    system: System | str | Path,
    graph: Graph,
    policy: PolicyLike,
    execution: str | None,
    dram_config: DramConfigLike,
    *,
    local: bool = False,
) -> tuple[Plan, Mapping[str, Any]]:
    """The plan, and the metadata of the graph fitted to the system that it runs.

    ``local``: the active cache is the call's own (:func:`_call_cache`).
    """
    sys_ = system if isinstance(system, System) else load_system(system)
    fitted = fit_graph(sys_, graph)
    placement = resolve_placement(sys_, fitted, policy)
    config = None
    if dram_config is not None:
        from memsim.request_fidelity import resolve_config

        config = resolve_config(dram_config)
    execution = execution or default_execution(sys_, fitted)
    meta = fitted.meta
    cg = compile_graph(fitted)
    # the plan reads the compiled arrays only: a graph rebuilt for this system (its op
    # objects) is let go before the plan's arrays are made (unless a SimCache keeps it)
    del fitted
    own = active()
    if local and own is not None:
        for shelf in ("fitted_graph", "compiled", "placement"):
            own.clear(shelf)
    plan = build_plan(sys_, cg, placement, execution, dram_config=config)
    return plan, meta


def tier_fidelity(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per tier: the fidelity used, and the bandwidth fraction and latency it ran at
    (for ``request`` tiers also the controller settings and each access class)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in plan.system.tiers.items():
        cal = plan.tier_calibration.get(name)
        if cal is not None:
            out[name] = cal.to_dict()
        elif spec.fidelity == "request":  # no traffic reached it: nothing was calibrated
            out[name] = {
                "fidelity": "request",
                "bandwidth_fraction": None,
                "latency_s": None,
                "classes": {},
            }
        else:
            out[name] = {
                "fidelity": spec.fidelity,
                "bandwidth_fraction": spec.achievable_bandwidth_fraction,
                "latency_s": spec.latency_s,
            }
    return out


def simulate(
    system: System | str | Path,
    graph: Graph,
    *,
    policy: PolicyLike = None,
    fidelity: str = "event",
    execution: str | None = None,
    seed: int = 0,
    dram_config: DramConfigLike = None,
    cache: SimCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    detail: str = "full",
) -> SimResult:
    """Simulate ``graph`` on ``system``; returns a frozen :class:`SimResult`. No I/O.

    ``system``: a :class:`~hw_models.System`, a preset name or a YAML path.
    ``policy``: a registered policy name (default ``fastest_fit``), a policy
    object, a :class:`~memsim.policies.Placement`, or a mapping for ``explicit``.
    ``fidelity``: ``event`` (simpy, with contention) or ``analytic`` (roofline
    with overlap rules, no contention). ``execution``: ``kernel`` or
    ``dataflow`` (default: ``dataflow`` on dataflow hardware, else ``kernel``).
    ``seed`` is recorded in the metadata; the engine itself is deterministic.
    ``dram_config``: the DRAM controller of tiers with ``fidelity: request`` (a
    :class:`memsim.dram.ControllerConfig`, a mapping of its fields or ``key=value``
    strings over :data:`memsim.request_fidelity.DEFAULT_CONFIG`); those tiers'
    bandwidth and latency come from it (docs/engine.md, "Request fidelity").
    ``result.summary()["meta"]["tier_fidelity"]`` says per tier which fidelity
    was used and at which bandwidth fraction and latency.
    ``progress(done, total)``: an optional hook told how many groups of ops are
    done as the simulation goes (the CLI draws a bar with it); it never changes
    the result.

    ``graph`` is first fitted to the system: options its builder left open, such as
    the attention buffer, are decided here (:mod:`memsim.graph_fit`), so the CLI and
    the API run the same model; ``result.graph_meta`` is the graph that ran.

    ``cache``: a :class:`~memsim.memo.SimCache` to reuse compiled graphs, layouts and
    DRAM calibrations across calls (a sweep keeps one per worker). Without it nothing
    is kept between calls. Results are bit-identical either way. ``simulate`` changes
    no process-wide setting (allocator tuning is opt-in: :mod:`memsim.alloc`).

    ``detail``: ``full`` (default) keeps every table; ``summary`` (sweeps, RL, serving)
    gives the same ``summary()``, ``metrics``, tiers, links, energy and DMA transfers,
    bit for bit, but keeps no per-op table, traffic table or occupancy step functions
    (their views raise :class:`~hw_models.errors.SpecError`): lighter, and nothing of the
    run's per-op arrays outlives the call.

    >>> from memsim import simulate
    >>> # result = simulate("h100_sxm", graph, fidelity="analytic")
    """
    if fidelity not in FIDELITIES:
        raise SpecError(
            [Problem("fidelity", f"unknown fidelity {fidelity!r} (known: {', '.join(FIDELITIES)})")]
        )
    if detail not in DETAILS:
        raise SpecError(
            [Problem("detail", f"unknown detail {detail!r} (known: {', '.join(DETAILS)})")]
        )
    if execution is not None and execution not in EXECUTIONS:
        raise SpecError(
            [
                Problem(
                    "execution",
                    f"unknown execution model {execution!r} (known: {', '.join(EXECUTIONS)})",
                )
            ]
        )
    with using(cache if cache is not None else _call_cache()):
        plan, graph_meta = _make_plan(
            system, graph, policy, execution, dram_config, local=cache is None
        )
        if fidelity == "analytic":
            from memsim.analytic import schedule_analytic

            sched = schedule_analytic(plan)
            if progress is not None:
                progress(plan.n_groups, plan.n_groups)
        else:
            from memsim.engine import schedule_event

            sched = schedule_event(plan, progress=progress)
        result = build_result(
            plan, sched, fidelity=fidelity, seed=seed, meta=graph_meta, detail=detail
        )
    return dataclasses.replace(result, meta={**result.meta, "tier_fidelity": tier_fidelity(plan)})
