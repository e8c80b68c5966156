"""Intervals on TTFT, TPOT and throughput from the calibration's parameter uncertainty.

A calibrated system carries a one-sigma ``std`` for every fitted (measured or published) efficiency
parameter (``memsim calibrate``: from the fit's Jacobian). :func:`intervals`
propagates them to the headline figures by linearisation: each measured parameter
that the run uses is moved by one sigma (towards the inside of its valid range),
the request is re-priced on the analytic path, and the figure's one-sigma is
``sqrt(sum_i dT_i^2)`` (parameters taken as independent: the fit's correlations
are not stored). The interval is ``T +- z sigma`` (``z = 1.96``: about 95 %).
An uncalibrated system has no interval (``None``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hw_models import System, load_system_dict
from hw_models.efficiency import EFFICIENCY_PARAMETERS
from memsim.simulate import DramConfigLike, PolicyLike, simulate
from workloads.graph import Graph

FIGURES: tuple[str, ...] = ("ttft_s", "tpot_s", "tokens_per_s")
Z_95 = 1.96


def _used(name: str, *, eager: bool) -> bool:
    """Parameters the simulator's pricing reads (the rest only predict microbenchmarks)."""
    if name.startswith(("latency.", "host_link.", "dequant.", "memory.read")):
        return False
    if name in ("eager.copy_s", "eager.read_s"):
        return False
    if name.startswith("eager.") or name == "kernel.eager_s":
        return eager
    return True


def _moved(value: float, std: float, name: str) -> float:
    """``value`` moved by one sigma, staying inside the parameter's valid range."""
    unit = EFFICIENCY_PARAMETERS[name][0]
    up = value + std
    if unit == "fraction" and not name.endswith("penalty") and up > 1.0:
        return max(value - std, value * 0.5)
    return up


def intervals(
    system: System,
    graph: Graph,
    *,
    figures: Mapping[str, float | None],
    policy: PolicyLike = None,
    execution: str | None = None,
    dram_config: DramConfigLike = None,
    z: float = Z_95,
) -> dict[str, list[float]] | None:
    """``{"ttft_s": [lo, hi], "tpot_s": [...], "tokens_per_s": [...]}`` or ``None``.

    ``figures`` are the run's own values (any fidelity); the sensitivities come from
    the analytic path. ``None`` when no compute unit of ``system`` is calibrated.
    """
    units = {k: u for k, u in system.compute.items() if u.efficiency is not None}
    if not units:
        return None
    eager = system.engine is not None and system.engine.launch == "eager"
    kwargs: dict[str, Any] = {
        "policy": policy,
        "fidelity": "analytic",
        "execution": execution,
        "dram_config": dram_config,
    }
    base = simulate(system, graph, **kwargs).summary()
    data = system.model_dump(mode="json", exclude_none=True)
    var = dict.fromkeys(FIGURES, 0.0)
    for uname, unit in units.items():
        assert unit.efficiency is not None
        for pname, p in unit.efficiency.params.items():
            if p.provenance == "assumed" or p.std <= 0 or not _used(pname, eager=eager):
                continue
            entry = data["compute"][uname]["efficiency"]["params"][pname]
            old = entry["value"]
            entry["value"] = _moved(p.value, p.std, pname)
            try:
                moved = simulate(load_system_dict(data, source=system.name), graph, **kwargs)
            finally:
                entry["value"] = old
            s = moved.summary()
            for f in FIGURES:
                if base.get(f) is not None and s.get(f) is not None:
                    var[f] += (float(s[f]) - float(base[f])) ** 2
    out: dict[str, list[float]] = {}
    for f in FIGURES:
        value = figures.get(f)
        if value is None:
            continue
        half = z * math.sqrt(var[f])
        out[f] = [max(float(value) - half, 0.0), float(value) + half]
    return out


def calibration_fields(
    system: System,
    graph: Graph,
    summary: Mapping[str, Any],
    *,
    policy: PolicyLike = None,
    execution: str | None = None,
    dram_config: DramConfigLike = None,
) -> dict[str, Any]:
    """``calibrated``, ``engine`` and ``intervals`` of a run (what ``memsim run`` adds to
    :meth:`SimResult.summary` in its JSON): the engine profile's name when calibrated."""
    from memsim.plan import DEFAULT_ENGINE

    calibrated = system.calibrated
    iv = intervals(
        system, graph, figures=summary, policy=policy, execution=execution, dram_config=dram_config
    )
    engine = (system.engine.name if system.engine else DEFAULT_ENGINE) if calibrated else None
    return {"calibrated": calibrated, "engine": engine, "intervals": iv}
