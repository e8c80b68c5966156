"""Exact planners (pulp: the bundled CBC; HiGHS when asked for by name).

* :func:`plan_placement` — where every weight, KV block and activation lives
  (in place or streamed), minimising step time or energy (:mod:`explore.mip.placement`);
* :func:`plan_memory` — static offsets for tensors with known lifetimes that minimise
  the peak (:mod:`explore.mip.memory_reuse`);
* :func:`plan_provision` — the cheapest tier capacities and bandwidths meeting a
  target (:mod:`explore.mip.provisioning`);
* :func:`plan_residency` — which experts / KV blocks stay in HBM (:mod:`explore.mip.residency`).
"""

from __future__ import annotations

from explore.mip.placement import PlacementPlan, plan_placement

__all__ = ["PlacementPlan", "plan_placement"]
