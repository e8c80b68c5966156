"""Placement: which tier each tensor lives in, and which tensors are streamed.

A :class:`Placement` maps every tensor name to its *home* tier. A tensor in
``staged`` is streamed: it lives in its home tier (DDR, flash) and a DMA engine
copies it into the staging tier (HBM) before the ops that use it, ``prefetch_depth``
segments (layers) ahead; ops then access the staged copy. Tensors written in
one segment and read in a later one are written back to their home tier.

Capacity rules (shared by every policy, checked by :func:`check_capacity`):
persistent tensors (weights, KV cache, optimizer state) occupy their home tier
for the whole run; transient tensors (activations, logits, gradients, inputs)
occupy it from their first to their last access; the staging tier reserves
``(prefetch_depth + 1)`` x the largest segment's staged bytes. Device-scope tiers
hold one device's shard; a host-scope tier holds the shards of all ``tp`` devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from hw_models import System
from hw_models.errors import Problem, SpecError
from hw_models.units import fmt_bytes
from memsim.compiled import compile_graph, segment_max_bytes, transient_peak
from memsim.registry import Registry
from workloads.graph import Graph

_EMPTY: Mapping[str, str] = MappingProxyType({})
_EMPTY_F: Mapping[str, float] = MappingProxyType({})


class CapacityError(SpecError):
    """Tensors do not fit: names the tier and the shortfall in bytes."""

    def __init__(
        self,
        problems: Iterable[Problem | str],
        *,
        tier: str,
        shortfall_bytes: float,
        source: str | None = None,
    ) -> None:
        super().__init__(problems, source=source)
        self.tier = tier
        self.shortfall_bytes = shortfall_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Home tier of every tensor, plus the streamed ones and their staging tier."""

    home: Mapping[str, str]
    staged: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    prefetch_depth: int = 1
    policy: str = "explicit"
    read_request_bytes: Mapping[str, float] = field(default_factory=lambda: _EMPTY_F)
    """Per tensor: bytes per read request when ops read it in place from a flash tier
    with a geometry (its layout there: one neuron's row, or a bundle of rows); the
    engine prices those reads at :meth:`MemoryTier.read_bandwidth_at` that size
    instead of the tier's ``read_request_bytes``. Other tiers ignore it."""

    def tier_of(self, tensor: str) -> str:
        """The tier ops access ``tensor`` in (the staging tier if streamed)."""
        return self.staged.get(tensor) or self.home[tensor]

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping, the format :func:`memsim.policies.from_file` reads back."""
        placement: dict[str, str] = {}
        for name, tier in self.home.items():
            stage = self.staged.get(name)
            placement[name] = f"{tier}->{stage}" if stage else tier
        return {
            "policy": self.policy,
            "prefetch_depth": self.prefetch_depth,
            "placement": placement,
        }


class Policy(Protocol):
    """Anything that places a graph on a system."""

    @property
    def name(self) -> str:
        """The registered name."""
        ...

    def place(self, system: System, graph: Graph) -> Placement:
        """A :class:`Placement` of every tensor of ``graph`` on ``system``."""
        ...


POLICIES: Registry[Policy] = Registry("placement policy")


def policy_names() -> list[str]:
    """Names of the registered placement policies."""
    return POLICIES.names()


def make_policy(name: str, /, **options: Any) -> Policy:
    """The policy registered as ``name``, configured with ``options``.

    ``name:ARG`` passes ``ARG`` as the policy's ``path`` (``plan:plan.json``,
    ``from_file:placement.yaml``).
    """
    name, sep, arg = name.partition(":")
    if sep:
        options = {"path": arg, **options}
    factory = POLICIES.get(name, error_path="policy")
    try:
        return factory(**options)
    except TypeError as err:  # an option the policy does not have
        raise SpecError(
            [Problem(f"policy.{name}", f"bad options {sorted(options)}: {err}")]
        ) from None


# ---- helpers shared by the policies ---------------------------------------------------


def graph_tp(graph: Graph) -> int:
    """Devices one shard stands for: ``graph.meta['tp']`` or the largest collective group."""
    return compile_graph(graph).tp


def placeable_tiers(system: System, *, include_sram: bool = False) -> list[str]:
    """Tier names a policy may put tensors in, fastest first.

    On-chip SRAM is excluded unless asked for: on GPUs it is a cache managed by
    the kernels, and the ``dataflow`` model keeps intermediates there itself.
    """
    return [t for t in system.tiers_by_speed() if include_sram or system.tiers[t].kind != "sram"]


def tier_budget(system: System, tier: str, *, tp: int) -> float:
    """Bytes of one shard's data a tier can hold (a host tier is shared by ``tp`` shards).

    A device-scope tier's budget is per device, hence per pipeline stage: each
    stage runs on its own devices (see :func:`stage_key`).
    """
    spec = system.tier(tier)
    return spec.capacity_bytes if spec.scope == "device" else spec.capacity_bytes / tp


HOST = -1
"""The stage key of a host-scope tier: shared by every pipeline stage."""


def stage_key(system: System, tier: str, stage: int) -> tuple[int, str]:
    """``(stage, tier)`` for a device-scope tier, ``(HOST, tier)`` for a shared host tier."""
    return (stage if system.tier(tier).scope == "device" else HOST, tier)


def tensor_stages(graph: Graph) -> dict[str, int]:
    """Pipeline stage of every tensor: the stage of its first use, else ``Tensor.stage``."""
    cg = compile_graph(graph)
    out = {n: t.stage for n, t in graph.tensors.items()}
    for i, name in enumerate(cg.tensor_names):
        first = int(cg.first_use[i])
        if first >= 0:
            out[name] = int(cg.stage[first])
    return out


def check_tier(system: System, tier: str, *, path: str) -> str:
    """``tier`` if the system has it, else :class:`SpecError` listing the known tiers."""
    if tier not in system.tiers:
        raise SpecError(
            [Problem(path, f"unknown tier {tier!r} (known: {', '.join(system.tiers)})")]
        )
    return tier


def _mask(graph: Graph, names: Iterable[str]) -> np.ndarray:
    cg = compile_graph(graph)
    mask = np.zeros(len(cg.tensor_names), dtype=bool)
    idx = [cg.tensor_index[n] for n in names]
    if idx:
        mask[np.asarray(idx)] = True
    return mask


def transient_peak_bytes(graph: Graph, names: Iterable[str]) -> float:
    """Largest sum of the given transient tensors alive at once (first to last access)."""
    return transient_peak(compile_graph(graph), _mask(graph, names))


def staging_reserve_bytes(graph: Graph, staged: Iterable[str], *, prefetch_depth: int) -> float:
    """``(prefetch_depth + 1)`` x the largest staged bytes one segment (run of ops) uses."""
    return (prefetch_depth + 1) * segment_max_bytes(compile_graph(graph), _mask(graph, staged))


def stage_tier_demand(
    system: System, graph: Graph, placement: Placement
) -> dict[tuple[int, str], float]:
    """Bytes each ``(stage, tier)`` must hold at its peak under ``placement`` (one shard).

    Device-scope tiers are counted per pipeline stage (each stage has its own
    devices); host-scope tiers under the key ``(HOST, tier)``, shared by all stages.
    """
    stages = tensor_stages(graph)
    demand: dict[tuple[int, str], float] = {}

    def add(key: tuple[int, str], nbytes: float) -> None:
        demand[key] = demand.get(key, 0.0) + nbytes

    for tier in system.tiers:
        add(stage_key(system, tier, 0), 0.0)
    transient: dict[tuple[int, str], list[str]] = {}
    for name, tier in placement.home.items():
        t = graph.tensors[name]
        key = stage_key(system, tier, stages[name])
        if name in placement.staged and not t.persistent:
            add(key, t.bytes)  # a swapped activation: its home copy, plus staging below
        elif t.persistent or name in placement.staged:
            add(key, t.bytes)
        else:
            transient.setdefault(key, []).append(name)
    for key, names in transient.items():
        add(key, transient_peak_bytes(graph, names))
    by_stage: dict[tuple[int, str], list[str]] = {}
    for name, staging in placement.staged.items():
        by_stage.setdefault(stage_key(system, staging, stages[name]), []).append(name)
    for key, names in by_stage.items():
        add(key, staging_reserve_bytes(graph, names, prefetch_depth=placement.prefetch_depth))
    return demand


def tier_demand(system: System, graph: Graph, placement: Placement) -> dict[str, float]:
    """Bytes each tier must hold at its peak under ``placement`` (one shard, one device).

    For a device-scope tier this is the largest over pipeline stages (what one
    device must hold); for a host-scope tier the total of all stages.
    """
    demand = dict.fromkeys(system.tiers, 0.0)
    for (_stage, tier), need in stage_tier_demand(system, graph, placement).items():
        demand[tier] = max(demand[tier], need)
    return demand


def check_capacity(system: System, graph: Graph, placement: Placement) -> None:
    """Raise :class:`CapacityError` naming the tier and the shortfall if anything overflows."""
    missing = [n for n in graph.tensors if n not in placement.home]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise SpecError(
            [Problem("placement", f"no tier for tensors {', '.join(missing[:3])}{more}")]
        )
    bad = [
        Problem(
            f"placement.read_request_bytes.{n}",
            "unknown tensor" if n not in graph.tensors else f"expected bytes > 0, found {b!r}",
        )
        for n, b in placement.read_request_bytes.items()
        if n not in graph.tensors or not b > 0
    ]
    if bad:
        raise SpecError(bad)
    tp = graph_tp(graph)
    for (stage, tier), need in sorted(stage_tier_demand(system, graph, placement).items()):
        budget = tier_budget(system, tier, tp=tp)
        if need > budget * (1 + 1e-12):
            short = need - budget
            shared = (
                f" (host tier shared by {tp} devices)"
                if budget != system.tier(tier).capacity_bytes
                else ""
            )
            where = f" on pipeline stage {stage}" if stage != HOST else ""
            raise CapacityError(
                [
                    Problem(
                        f"tiers.{tier}.capacity_bytes",
                        f"placement ({placement.policy}) needs {fmt_bytes(need)} in {tier}{where} "
                        "but "
                        f"it holds {fmt_bytes(budget)}{shared}: short by {fmt_bytes(short)}",
                    )
                ],
                tier=tier,
                shortfall_bytes=short,
            )
