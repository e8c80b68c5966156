"""`MemHierarchyProblem`: provision the memory tiers of a system for an LLM workload.

Parameters are dotted overrides of a system preset (tier capacities and bandwidths,
SRAM size) plus the placement/offload ``policy``; each configuration is priced by
``memsim.simulate`` (analytic fidelity by default) on one decode step of an LLM. The
reward is ``reference_tpot / tpot`` (1.0 = as fast as the preset itself with the
default policy).

Budgets: a configuration whose cost (or SRAM area) exceeds the budget is infeasible
and never simulated. Cost and area are linear price tables over the parameters; the
default prices are ASSUMPTIONS for illustration (no vendor publishes them), the same
orders of magnitude as ``explore/spaces`` of the sweeps: HBM 15 USD/GiB and 1,500 USD
per TB/s, DDR 4 USD per GB/s, SRAM 0.35 mm^2/MiB (TSMC N5 high-density bitcell,
0.021 um^2, Yeap et al., IEDM 2019, x2 for periphery) at 0.25 USD/mm^2. Pass your own
``prices`` and ``budget``.

The default space (an SN40L-like socket: SRAM + HBM + DDR, Llama-2-13B decode, batch 8,
2,048-token context) has 3 x 4 x 3 x 3 x 4 = 432 configurations.
"""

from __future__ import annotations

from typing import Any

from explore.envs.problem import Choice, ConfigProblem, Evaluation
from hw_models.errors import Problem, SpecError
from hw_models.units import UnitError, parse_quantity

GiB = 2**30
MiB = 2**20

DEFAULT_PARAMETERS: dict[str, list[Any]] = {
    "tiers.sram.capacity_bytes": ["50 MiB", "25 MiB", "100 MiB", "200 MiB"],
    "tiers.hbm.capacity_bytes": ["80 GB", "48 GB", "141 GB", "192 GB"],
    "tiers.hbm.read_bandwidth_bytes_per_s": ["3.35 TB/s", "2.0 TB/s", "4.8 TB/s", "8.0 TB/s"],
    "links.pcie.bandwidth_bytes_per_s": ["64 GB/s", "32 GB/s", "128 GB/s"],
    "policy": ["fastest_fit", "kv_offload", "stream_weights", "activation_swap"],
}

#: price per unit of each parameter (ASSUMPTIONS, see the module doc)
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "cost_usd": {
        "tiers.sram.capacity_bytes": 2.0 / MiB,
        "tiers.hbm.capacity_bytes": 15.0 / 1e9,
        "tiers.hbm.read_bandwidth_bytes_per_s": 1500.0 / 1e12,
        "links.pcie.bandwidth_bytes_per_s": 20.0 / 1e9,
    },
    "sram_area_mm2": {"tiers.sram.capacity_bytes": 0.35 / MiB},
}

DEFAULT_BUDGET: dict[str, float] = {"cost_usd": 12000.0, "sram_area_mm2": 50.0}


_KINDS = (("_bytes_per_s", "bytes_per_s"), ("_bytes", "bytes"), ("_s", "s"), ("_w", "w"))


def _value(name: str, v: Any) -> Any:
    """A parameter value in base units (``"64 GiB"`` -> bytes, by the field's suffix)."""
    for suffix, kind in _KINDS:
        if name.endswith(suffix):
            try:
                return parse_quantity(v, kind)  # type: ignore[arg-type]
            except UnitError as e:
                raise SpecError([Problem(f"parameters.{name}", str(e))]) from None
    return v


class MemHierarchyProblem(ConfigProblem):
    """Tier provisioning under a budget (see the module doc)."""

    name = "MemHierarchy"

    def __init__(
        self,
        *,
        system: str = "h100_sxm",
        model: str = "llama2_70b",
        batch: int = 8,
        context: int = 2048,
        parameters: dict[str, list[Any]] | None = None,
        prices: dict[str, dict[str, float]] | None = None,
        budget: dict[str, float] | None = None,
        fidelity: str = "analytic",
    ) -> None:
        from workloads.model_config import load_model
        from workloads.transformer import decode

        params = parameters or DEFAULT_PARAMETERS
        self.prices = prices or DEFAULT_PRICES
        self.budget = DEFAULT_BUDGET if budget is None else budget
        problems = [
            Problem(f"budget.{k}", f"no price table for {k!r} (known: {', '.join(self.prices)})")
            for k in self.budget
            if k not in self.prices
        ]
        for metric, table in self.prices.items():
            problems += [
                Problem(f"prices.{metric}.{p}", "not a parameter") for p in table if p not in params
            ]
        if problems:
            raise SpecError(problems)
        self.system_name = system
        self.fidelity = fidelity
        self.choices = tuple(
            Choice(name=k, values=tuple(_value(k, v) for v in vals)) for k, vals in params.items()
        )
        self.graph = decode(load_model(model), batch=batch, context_len=context)
        self.workload = {"model": model, "batch": batch, "context": context}
        self._reference: float | None = None

    def spend(self, config: dict[str, Any]) -> dict[str, float]:
        """Cost/area of a configuration from the price tables."""
        return {
            metric: sum(float(config[p]) * price for p, price in table.items())
            for metric, table in self.prices.items()
        }

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        spend = self.spend(config)
        for k, limit in self.budget.items():
            if spend[k] > limit:
                return f"{k} = {spend[k]:.4g} over the budget of {limit:.4g}"
        return None

    def _static_mask(self) -> list[list[int]]:
        # a value is never feasible when even the cheapest other choices exceed a budget
        cheapest = {
            c.name: min(c.values, key=lambda v: self._unit_spend(c.name, v)) for c in self.choices
        }
        mask = []
        for c in self.choices:
            row = []
            for v in c.values:
                trial = {**cheapest, c.name: v}
                row.append(int(self._combination_problem(trial) is None))
            mask.append(row)
        return mask

    def _unit_spend(self, name: str, value: Any) -> float:
        return sum(float(value) * t.get(name, 0.0) for t in self.prices.values() if name in t)

    def measure(self, config: dict[str, Any]) -> dict[str, float]:
        """tpot_s and energy of one decode step under ``config``."""
        from hw_models import load_system
        from memsim import simulate

        overrides = {k: v for k, v in config.items() if k != "policy"}
        system = load_system(self.system_name, overrides=overrides)
        r = simulate(
            system,
            self.graph,
            policy=config.get("policy"),
            fidelity=self.fidelity,
            detail="summary",
        )
        return {"tpot_s": float(r.makespan_s), "energy_j": float(r.metrics["energy_j"])}

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        m = self.measure(config) | self.spend(config)
        if self._reference is None:
            self._reference = self.measure(self.config(self.default_index()))["tpot_s"]
        return Evaluation(reward=self._reference / m["tpot_s"], metrics=m)

    def replay_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The system overrides and the policy (``memsim run --set`` style)."""
        return {"system": self.system_name, **config}

    def describe(self) -> dict[str, Any]:
        """Problem description for summaries."""
        return super().describe() | {
            "system": self.system_name,
            "workload": self.workload,
            "budget": self.budget,
            "fidelity": self.fidelity,
        }
