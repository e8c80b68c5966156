"""`ConfigProblem`: a discrete configuration space with a simulator behind it.

Every environment and explorer of :mod:`explore.envs` and :mod:`explore.rl` works on
one of these: a list of :class:`Choice` (a parameter and the values it may take), a
static mask of choices that can never be simulated (e.g. per-bank refresh on a device
without tRFCpb), a feasibility test for combinations (e.g. a bank-wise buffer smaller
than the bank count, a tier mix over the cost budget) and ``evaluate(index)``, which
runs the simulator once and returns an :class:`Evaluation` (reward: higher is better).

A configuration is a tuple of choice indices (one per parameter). Infeasible ones are
never simulated: :meth:`ConfigProblem.evaluate` refuses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: reward of a configuration that is not simulated (infeasible): below any real reward
INFEASIBLE_REWARD = -1.0

Index = tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One parameter: its name and the values it may take (JSON-able)."""

    name: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"parameter {self.name!r} has no values")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """One simulator call: the reward (higher is better) and the raw metrics."""

    reward: float
    metrics: dict[str, float] = field(default_factory=dict)


def config_key(config: dict[str, Any]) -> str:
    """A stable hash of a configuration (sha256 of its canonical JSON, 16 hex digits)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ConfigProblem:
    """Base class: subclasses set :attr:`choices` and implement :meth:`_simulate`
    (and optionally :meth:`_combination_problem` and :meth:`_static_mask`)."""

    #: short name used in tables
    name: str = "problem"
    choices: tuple[Choice, ...] = ()

    # ---- the space ---------------------------------------------------------------------
    @property
    def nvec(self) -> npt.NDArray[np.int64]:
        """Number of values per parameter (a MultiDiscrete's ``nvec``)."""
        return np.array([len(c.values) for c in self.choices], dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of configurations (the product of :attr:`nvec`)."""
        return int(np.prod([len(c.values) for c in self.choices], dtype=object))

    def static_mask(self) -> tuple[npt.NDArray[np.int8], ...]:
        """Per parameter, 1 for a value that may be chosen, 0 for one never feasible."""
        return tuple(np.asarray(m, dtype=np.int8) for m in self._static_mask())

    def _static_mask(self) -> list[list[int]]:
        return [[1] * len(c.values) for c in self.choices]

    def config(self, index: Sequence[int]) -> dict[str, Any]:
        """The configuration (parameter name -> value) of a choice-index vector."""
        idx = self.check_index(index)
        return {c.name: c.values[i] for c, i in zip(self.choices, idx, strict=True)}

    def check_index(self, index: Sequence[int] | npt.NDArray[np.integer[Any]]) -> Index:
        """``index`` as a tuple of ints, checked against :attr:`nvec` (ValueError if not)."""
        idx = tuple(int(i) for i in np.asarray(index).reshape(-1))
        if len(idx) != len(self.choices):
            raise ValueError(f"expected {len(self.choices)} choice indices, found {len(idx)}")
        for c, i in zip(self.choices, idx, strict=True):
            if not 0 <= i < len(c.values):
                raise ValueError(f"{c.name}: index {i} outside 0..{len(c.values) - 1}")
        return idx

    def key(self, index: Sequence[int]) -> str:
        """The configuration hash (see :func:`config_key`)."""
        return config_key(self.config(index))

    def infeasibility(self, index: Sequence[int]) -> str | None:
        """Why the configuration cannot be simulated, or None when it can."""
        idx = self.check_index(index)
        mask = self.static_mask()
        for c, i, m in zip(self.choices, idx, mask, strict=True):
            if not m[i]:
                return f"{c.name}={c.values[i]!r} is not available here"
        return self._combination_problem(self.config(idx))

    def feasible(self, index: Sequence[int]) -> bool:
        """True when :meth:`evaluate` will simulate the configuration."""
        return self.infeasibility(index) is None

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        return None

    # ---- the simulator -------------------------------------------------------------------
    def evaluate(self, index: Sequence[int]) -> Evaluation:
        """Simulate one feasible configuration (ValueError for an infeasible one)."""
        why = self.infeasibility(index)
        if why is not None:
            raise ValueError(f"infeasible configuration, not simulated: {why}")
        return self._simulate(self.config(index))

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        raise NotImplementedError

    def default_index(self) -> Index:
        """The reference configuration (index 0 of each parameter unless overridden)."""
        return tuple(0 for _ in self.choices)

    def replay_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """What to write as ``best.json`` for the configuration (replayable by the CLI)."""
        return dict(config)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the problem (for summaries)."""
        return {"name": self.name, "parameters": {c.name: list(c.values) for c in self.choices}}
