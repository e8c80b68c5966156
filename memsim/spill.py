"""No silent spill: say what was placed where, and refuse an unasked-for spill to host memory.

``fastest_fit`` fills the fastest tier and puts what does not fit in the next
one, which on a GPU system is host DDR read over PCIe every step: a run that
looks like a slow GPU but is a working set that does not fit. A static run
must say so and stop unless the caller asked for it: ``allow_spill=True``
(``memsim run --allow-spill``) or an offload policy (``stream_weights``,
``kv_offload``, ``activation_swap``, an explicit mapping or a placement file),
which places tensors off the device on purpose.
"""

from __future__ import annotations

from hw_models import System
from hw_models.errors import Problem
from hw_models.units import fmt_bytes
from memsim.policies import CapacityError, Placement, graph_tp, placeable_tiers
from memsim.policies.base import tier_budget, tier_demand
from workloads.graph import Graph

#: policies that place tensors wherever the fastest room is, without being asked to offload
SPILLING_POLICIES: tuple[str, ...] = ("fastest_fit",)


def placed_bytes(graph: Graph, placement: Placement) -> dict[str, dict[str, float]]:
    """Bytes of each tensor kind per home tier: ``{tier: {kind: bytes}}`` (one shard)."""
    out: dict[str, dict[str, float]] = {}
    for name, tier in placement.home.items():
        t = graph.tensors[name]
        kinds = out.setdefault(tier, {})
        kinds[t.kind] = kinds.get(t.kind, 0.0) + t.bytes
    return out


def spilled_tensors(system: System, placement: Placement) -> list[str]:
    """Tensors whose home is off the device under a policy that was not asked to offload."""
    if placement.policy not in SPILLING_POLICIES:
        return []
    return [n for n, tier in placement.home.items() if system.tier(tier).scope != "device"]


def check_no_spill(system: System, graph: Graph, placement: Placement) -> None:
    """:class:`~memsim.policies.CapacityError` (exit 2 in the CLI) if ``placement`` spilled
    tensors off the device, naming the device tier, what spilled and the shortfall.

    The shortfall is what the device tier would need to hold everything that
    spilled as well, minus what it holds (both per device, as placement counts).
    """
    spilled = spilled_tensors(system, placement)
    if not spilled:
        return
    device = next(t for t in placeable_tiers(system) if system.tier(t).scope == "device")
    onto = dict(placement.home)
    onto.update(dict.fromkeys(spilled, device))
    whole = Placement(home=onto, policy=placement.policy)
    need = tier_demand(system, graph, whole)[device]
    budget = tier_budget(system, device, tp=graph_tp(graph))
    short = max(need - budget, 0.0)
    what = ", ".join(sorted({graph.tensors[n].kind for n in spilled}))
    tiers = sorted({placement.home[n] for n in spilled})
    raise CapacityError(
        [
            Problem(
                f"tiers.{device}.capacity_bytes",
                f"the working set does not fit in {device} of {system.name}: it needs "
                f"{fmt_bytes(need)} and {device} holds {fmt_bytes(budget)}, short by "
                f"{fmt_bytes(short)}; {placement.policy} would put {what} tensors in "
                f"{', '.join(tiers)}. Use a smaller batch or context, more devices (--tp), "
                "an offload policy (--policy kv_offload / stream_weights), or --allow-spill",
            )
        ],
        tier=device,
        shortfall_bytes=short,
    )


def describe_placement(system: System, graph: Graph, placement: Placement) -> list[str]:
    """One line per tier: the bytes of each tensor kind placed there."""
    lines = []
    placed = placed_bytes(graph, placement)
    for tier in system.tiers:
        kinds = placed.get(tier)
        if not kinds:
            continue
        parts = ", ".join(f"{k} {fmt_bytes(b)}" for k, b in sorted(kinds.items()))
        lines.append(f"{tier} ({system.tier(tier).scope}): {parts}")
    return lines


__all__ = [
    "SPILLING_POLICIES",
    "check_no_spill",
    "describe_placement",
    "placed_bytes",
    "spilled_tensors",
]
