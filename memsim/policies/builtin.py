"""The shipped placement and offload policies, registered by name.

=================  ============================================================
``fastest_fit``    every tensor in the fastest tier with room, densest first
``stream_weights`` weights live in DDR/flash, prefetched layer by layer
``kv_offload``     the KV cache in a lower tier, read over the link
``activation_swap`` training: activations offloaded after forward, fetched back
``explicit``       a mapping: tensor names, kinds or glob patterns -> tier
``from_file``      the same mapping read from a planner's YAML/JSON file
``plan``           a saved MIP plan (``memsim plan -o``; ``--policy plan:FILE``)
=================  ============================================================
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hw_models import System
from hw_models.errors import Problem, SpecError
from hw_models.units import fmt_bytes
from memsim.compiled import compile_graph
from memsim.policies.base import (
    POLICIES,
    CapacityError,
    Placement,
    check_capacity,
    check_tier,
    graph_tp,
    placeable_tiers,
    stage_key,
    staging_reserve_bytes,
    tensor_stages,
    tier_budget,
    transient_peak_bytes,
)
from workloads.graph import TENSOR_KINDS, Graph


def _access_density(graph: Graph) -> dict[str, float]:
    cg = compile_graph(graph)
    moved = np.bincount(cg.acc_tensor, weights=cg.acc_bytes, minlength=len(cg.tensor_names))
    dens = moved / np.maximum(cg.t_bytes, 1.0)
    return dict(zip(cg.tensor_names, dens.tolist(), strict=True))


def fill_fastest(
    system: System,
    graph: Graph,
    *,
    fixed: Mapping[str, str],
    reserved: Mapping[str, float],
    policy: str,
) -> dict[str, str]:
    """Greedy fill: the tensors not in ``fixed`` go to the fastest tier with room.

    Persistent tensors are placed one by one, highest access density (bytes
    moved per byte stored) first; transient tensors go together to the fastest
    tier whose room covers their peak live bytes, stage by stage. Device-scope
    tiers have room per pipeline stage (each stage its own devices), host-scope
    tiers one room shared by all stages. ``reserved`` bytes per tier are already
    taken (fixed tensors, staging buffers) in every stage's room.
    """
    tp = graph_tp(graph)
    tiers = placeable_tiers(system)
    stages = tensor_stages(graph)
    free: dict[tuple[int, str], float] = {}

    def room(tier: str, stage: int) -> float:
        key = stage_key(system, tier, stage)
        if key not in free:
            free[key] = tier_budget(system, tier, tp=tp) - reserved.get(tier, 0.0)
        return free[key]

    home = dict(fixed)
    density = _access_density(graph)
    todo = [n for n, t in graph.tensors.items() if n not in fixed and t.persistent]
    todo.sort(key=lambda n: (-density[n], n))
    for name in todo:
        size = graph.tensors[name].bytes
        stage = stages[name]
        for tier in tiers:
            if room(tier, stage) >= size:
                home[name] = tier
                free[stage_key(system, tier, stage)] -= size
                break
        else:
            left = {t: room(t, stage) for t in tiers}
            _nothing_fits(system, tiers, left, f"tensor {name!r}", size, policy)
    by_stage: dict[int, list[str]] = {}
    for n, t in graph.tensors.items():
        if n not in fixed and not t.persistent:
            by_stage.setdefault(stages[n], []).append(n)
    for stage, transient in sorted(by_stage.items()):
        peak = transient_peak_bytes(graph, transient)
        for tier in tiers:
            if room(tier, stage) >= peak:
                home.update(dict.fromkeys(transient, tier))
                free[stage_key(system, tier, stage)] -= peak
                break
        else:
            left = {t: room(t, stage) for t in tiers}
            _nothing_fits(system, tiers, left, "the live activations", peak, policy)
    return home


def _nothing_fits(
    system: System, tiers: list[str], free: Mapping[str, float], what: str, size: float, policy: str
) -> None:
    best = max(tiers, key=lambda t: free[t])
    parts = ", ".join(f"{t} has {fmt_bytes(max(free[t], 0.0))} free" for t in tiers)
    short = size - max(free[best], 0.0)
    raise CapacityError(
        [
            Problem(
                "placement",
                f"{policy}: {what} ({fmt_bytes(size)}) fits in no tier of {system.name} ({parts}); "
                f"the roomiest, {best}, is short by {fmt_bytes(short)}",
            )
        ],
        tier=best,
        shortfall_bytes=short,
    )


def _default_host_tier(system: System, *, path: str) -> str:
    hosts = [t for t in placeable_tiers(system) if system.tiers[t].scope == "host"]
    if not hosts:
        raise SpecError([Problem(path, f"{system.name} has no host tier to offload to")])
    return hosts[0]


def _default_device_tier(system: System) -> str:
    return next(t for t in placeable_tiers(system) if system.tiers[t].scope == "device")


# ---- policies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FastestFit:
    """Everything in the fastest tier that has room (densest tensors first)."""

    name: str = "fastest_fit"

    def place(self, system: System, graph: Graph) -> Placement:
        """Greedy placement; :class:`CapacityError` when a tensor fits nowhere."""
        home = fill_fastest(system, graph, fixed={}, reserved={}, policy=self.name)
        placement = Placement(home=home, policy=self.name)
        check_capacity(system, graph, placement)
        return placement


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamWeights:
    """Weights live in ``source`` and are prefetched into ``staging`` segment by segment.

    A segment is a run of ops of one layer and step (FlexGen-style layer-wise
    weight streaming); ``prefetch_depth`` segments are fetched ahead.
    """

    source: str | None = None
    staging: str | None = None
    prefetch_depth: int = 1
    name: str = "stream_weights"

    def place(self, system: System, graph: Graph) -> Placement:
        """Weights homed in ``source`` and staged in ``staging``, the rest fastest-fit."""
        if self.prefetch_depth < 0:
            raise SpecError([Problem("policy.prefetch_depth", "expected >= 0")])
        src = check_tier(system, self.source, path="policy.source") if self.source else None
        src = src or _default_host_tier(system, path="policy.source")
        stage = self.staging or _default_device_tier(system)
        check_tier(system, stage, path="policy.staging")
        weights = [n for n, t in graph.tensors.items() if t.kind == "weight"]
        reserve = staging_reserve_bytes(graph, weights, prefetch_depth=self.prefetch_depth)
        tp = graph_tp(graph)
        weight_bytes = sum(graph.tensors[n].bytes for n in weights)
        reserved = {src: weight_bytes}
        reserved[stage] = reserved.get(stage, 0.0) + reserve
        budget = tier_budget(system, src, tp=tp)
        if weight_bytes > budget:
            raise CapacityError(
                [
                    Problem(
                        f"tiers.{src}.capacity_bytes",
                        f"{self.name}: weights ({fmt_bytes(weight_bytes)}) do not fit in {src} "
                        f"({fmt_bytes(budget)}): short by {fmt_bytes(weight_bytes - budget)}",
                    )
                ],
                tier=src,
                shortfall_bytes=weight_bytes - budget,
            )
        fixed = dict.fromkeys(weights, src)
        home = fill_fastest(system, graph, fixed=fixed, reserved=reserved, policy=self.name)
        placement = Placement(
            home=home,
            staged=dict.fromkeys(weights, stage),
            prefetch_depth=self.prefetch_depth,
            policy=self.name,
        )
        check_capacity(system, graph, placement)
        return placement


@dataclass(frozen=True, slots=True, kw_only=True)
class KVOffload:
    """The KV cache in ``tier`` (default: the fastest host tier), read in place over the link."""

    tier: str | None = None
    name: str = "kv_offload"

    def place(self, system: System, graph: Graph) -> Placement:
        """KV tensors homed in ``tier``; the rest fastest-fit."""
        tier = check_tier(system, self.tier, path="policy.tier") if self.tier else None
        tier = tier or _default_host_tier(system, path="policy.tier")
        kv = {n: tier for n, t in graph.tensors.items() if t.kind == "kv"}
        reserved = {tier: sum(graph.tensors[n].bytes for n in kv)}
        home = fill_fastest(system, graph, fixed=kv, reserved=reserved, policy=self.name)
        placement = Placement(home=home, policy=self.name)
        check_capacity(system, graph, placement)
        return placement


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationSwap:
    """Training: activations saved in forward and used in backward are offloaded to
    ``tier`` after their forward segment and fetched back ``prefetch_depth`` segments
    before their backward use."""

    tier: str | None = None
    staging: str | None = None
    prefetch_depth: int = 1
    name: str = "activation_swap"

    def place(self, system: System, graph: Graph) -> Placement:
        """Swapped activations homed in ``tier`` and staged in ``staging``."""
        tier = check_tier(system, self.tier, path="policy.tier") if self.tier else None
        tier = tier or _default_host_tier(system, path="policy.tier")
        stage = self.staging or _default_device_tier(system)
        check_tier(system, stage, path="policy.staging")
        phases: dict[str, set[str]] = {}
        for op in graph.ops:
            for acc in (*op.reads, *op.writes):
                phases.setdefault(acc.tensor, set()).add(op.phase)
        swapped = [
            n
            for n, t in graph.tensors.items()
            if t.kind == "activation" and {"forward", "backward"} <= phases.get(n, set())
        ]
        reserve = staging_reserve_bytes(graph, swapped, prefetch_depth=self.prefetch_depth)
        reserved = {tier: sum(graph.tensors[n].bytes for n in swapped)}
        reserved[stage] = reserved.get(stage, 0.0) + reserve
        fixed = dict.fromkeys(swapped, tier)
        home = fill_fastest(system, graph, fixed=fixed, reserved=reserved, policy=self.name)
        placement = Placement(
            home=home,
            staged=dict.fromkeys(swapped, stage),
            prefetch_depth=self.prefetch_depth,
            policy=self.name,
        )
        check_capacity(system, graph, placement)
        return placement


@dataclass(frozen=True, slots=True, kw_only=True)
class Explicit:
    """A mapping from tensor names, tensor kinds or glob patterns to a tier.

    A value is a tier (``"ddr"``) or ``"home->staging"`` (``"ddr->hbm"``: live in
    DDR, streamed into HBM). Exact names win over kinds, kinds over globs (first
    matching glob in mapping order). Unmatched tensors are placed fastest-fit.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    prefetch_depth: int = 1
    source: str = "policy.mapping"
    name: str = "explicit"

    def place(self, system: System, graph: Graph) -> Placement:
        """Apply the mapping, then fastest-fit for the rest; capacity checked."""
        rules: dict[str, tuple[str, str | None]] = {}
        problems: list[Problem] = []
        for key, value in self.mapping.items():
            if not isinstance(value, str) or not value.strip():
                problems.append(Problem(f"{self.source}.{key}", "expected a tier name"))
                continue
            home, _, stage = (p.strip() for p in value.partition("->"))
            for t in (home, stage) if stage else (home,):
                if t not in system.tiers:
                    problems.append(
                        Problem(
                            f"{self.source}.{key}",
                            f"unknown tier {t!r} (known: {', '.join(system.tiers)})",
                        )
                    )
            rules[key] = (home, stage or None)
        if problems:
            raise SpecError(problems)
        globs = [k for k in rules if k not in graph.tensors and k not in TENSOR_KINDS]
        fixed: dict[str, str] = {}
        staged: dict[str, str] = {}
        used: set[str] = set()
        for name, tensor in graph.tensors.items():
            rule: str | None = (
                name if name in rules else tensor.kind if tensor.kind in rules else None
            )
            if rule is None:
                rule = next((g for g in globs if fnmatch.fnmatchcase(name, g)), None)
            if rule is None:
                continue
            used.add(rule)
            to_home, to_stage = rules[rule]
            fixed[name] = to_home
            if to_stage:
                staged[name] = to_stage
        unused = [k for k in rules if k not in used]
        if unused:
            raise SpecError(
                [Problem(f"{self.source}.{k}", "matches no tensor of the graph") for k in unused]
            )
        reserved: dict[str, float] = {}
        for name, tier in fixed.items():
            tensor_ = graph.tensors[name]
            if tensor_.persistent or name in staged:
                reserved[tier] = reserved.get(tier, 0.0) + tensor_.bytes
        by_stage: dict[str, list[str]] = {}
        for name, stage in staged.items():
            by_stage.setdefault(stage, []).append(name)
        for stage, names in by_stage.items():
            reserved[stage] = reserved.get(stage, 0.0) + staging_reserve_bytes(
                graph, names, prefetch_depth=self.prefetch_depth
            )
        home_map = fill_fastest(system, graph, fixed=fixed, reserved=reserved, policy=self.name)
        placement = Placement(
            home=home_map, staged=staged, prefetch_depth=self.prefetch_depth, policy=self.name
        )
        check_capacity(system, graph, placement)
        return placement


def read_placement_file(path: str | Path) -> tuple[dict[str, str], int]:
    """The mapping and prefetch depth in a planner's placement file (YAML or JSON).

    Format: ``{placement: {tensor-or-kind-or-glob: tier or "home->staging"},
    prefetch_depth: 1}`` (what :meth:`Placement.to_dict` writes).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError([Problem("policy.path", f"no such placement file: {p}")])
    try:
        if p.suffix == ".json":
            data: Any = json.loads(p.read_text())
            dups: list[Problem] = []
        else:
            from hw_models.yamlio import read_yaml

            data, dups = read_yaml(p)
    except (OSError, ValueError) as err:
        raise SpecError([Problem("", f"cannot read placement: {err}")], source=str(p)) from None
    problems = list(dups)
    if not isinstance(data, dict) or not isinstance(data.get("placement"), dict):
        problems.append(Problem("placement", "expected a mapping of tensor -> tier"))
        raise SpecError(problems, source=str(p))
    extra = set(data) - {"placement", "prefetch_depth", "policy"}
    problems += [Problem(k, "unknown key") for k in sorted(extra)]
    depth = data.get("prefetch_depth", 1)
    if not isinstance(depth, int) or depth < 0:
        problems.append(Problem("prefetch_depth", f"expected an int >= 0, found {depth!r}"))
    if problems:
        raise SpecError(problems, source=str(p))
    return {str(k): v for k, v in data["placement"].items()}, depth


@dataclass(frozen=True, slots=True, kw_only=True)
class FromFile:
    """An explicit placement read from a planner's YAML or JSON output file."""

    path: str
    name: str = "from_file"

    def place(self, system: System, graph: Graph) -> Placement:
        """Read the file and apply it as :class:`Explicit`; errors name the file."""
        mapping, depth = read_placement_file(self.path)
        try:
            placement = Explicit(
                mapping=mapping, prefetch_depth=depth, source="placement", name=self.name
            ).place(system, graph)
        except CapacityError as err:
            raise CapacityError(
                err.problems, tier=err.tier, shortfall_bytes=err.shortfall_bytes, source=self.path
            ) from None
        except SpecError as err:
            raise err.with_source(self.path) from None
        return placement


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanFile:
    """Replay a planner's saved plan (``memsim plan -o plan.json``; ``--policy plan:FILE``).

    The file is what :meth:`explore.mip.PlacementPlan.to_dict` writes: the
    ``placement`` mapping (every tensor -> tier or ``home->staging``), the
    ``prefetch_depth``, and the planner's own figures under ``mip`` (not used here).
    A tensor of the graph that the plan does not name is an error: a plan is for
    one model and workload.
    """

    path: str
    name: str = "plan"

    def place(self, system: System, graph: Graph) -> Placement:
        """The saved placement, checked against the graph and the system's capacity."""
        p = Path(self.path)
        if not p.is_file():
            raise SpecError([Problem("policy.path", f"no such plan file: {p}")])
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as err:
            raise SpecError([Problem("", f"cannot read plan: {err}")], source=str(p)) from None
        if not isinstance(data, dict) or not isinstance(data.get("placement"), dict):
            raise SpecError(
                [Problem("placement", "expected a mapping of tensor -> tier")], source=str(p)
            )
        extra = sorted(set(data) - {"placement", "prefetch_depth", "policy", "mip"})
        missing = [n for n in graph.tensors if n not in data["placement"]]
        problems = [Problem(k, "unknown key") for k in extra]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(
                Problem(
                    "placement",
                    f"the plan does not place tensors {', '.join(missing[:3])}{more} "
                    "(made for another model or workload?)",
                )
            )
        if problems:
            raise SpecError(problems, source=str(p))
        depth = data.get("prefetch_depth", 1)
        if not isinstance(depth, int) or depth < 0:
            raise SpecError(
                [Problem("prefetch_depth", f"expected an int >= 0, found {depth!r}")],
                source=str(p),
            )
        mapping = {str(k): v for k, v in data["placement"].items()}
        try:
            return Explicit(
                mapping=mapping, prefetch_depth=depth, source="placement", name=self.name
            ).place(system, graph)
        except CapacityError as err:
            raise CapacityError(
                err.problems, tier=err.tier, shortfall_bytes=err.shortfall_bytes, source=self.path
            ) from None
        except SpecError as err:
            raise err.with_source(self.path) from None


POLICIES.add("fastest_fit", FastestFit)
POLICIES.add("plan", PlanFile)
POLICIES.add("stream_weights", StreamWeights)
POLICIES.add("kv_offload", KVOffload)
POLICIES.add("activation_swap", ActivationSwap)
POLICIES.add("explicit", Explicit)
POLICIES.add("from_file", FromFile)
