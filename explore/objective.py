"""Objectives: a metric name and a sense (``min`` or ``max``).

A metric is any scalar the evaluator reports — for ``simulate`` every number of
``SimResult.summary()`` (``tpot_s``, ``energy_j``, ``tokens_per_s``, ``mfu``,
nested ones dotted: ``tiers.hbm.peak_bytes``, ``bound_time_s.tier:hbm``) — or a
derived parameter of the space (``cost_usd``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Sense = Literal["min", "max"]
SENSES: tuple[str, ...] = ("min", "max")


@dataclass(frozen=True, slots=True)
class Objective:
    """One objective: ``name`` (a metric or derived value) to ``sense`` (min or max)."""

    name: str
    sense: Sense

    @property
    def sign(self) -> float:
        """+1 for min, -1 for max: ``sign * value`` is always to be minimised."""
        return 1.0 if self.sense == "min" else -1.0

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """The objective's value in ``metrics`` (``None`` if missing or not finite)."""
        v = metrics.get(self.name)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        f = float(v)
        return f if math.isfinite(f) else None


def flatten_metrics(summary: Mapping[str, Any], *, prefix: str = "") -> dict[str, float]:
    """Every finite number of a (nested) summary, keyed by its dotted path; ``meta`` skipped."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if not prefix and key == "meta":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, prefix=f"{name}."))
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            out[name] = float(value)
    return out
