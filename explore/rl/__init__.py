"""Explorers over configuration problems, by name, all behind one signature.

``EXPLORERS.create(name)`` returns ``f(problem, budget, *, seed)``. Learned ones
import torch/stable-baselines3 only when created.

* baselines: ``random``, ``grid``, ``ga``, ``bo`` (Optuna TPE);
* single-agent RL (stable-baselines3): ``ppo``, ``a2c``, ``dqn``, ``sac``;
* multi-agent PPO: ``marl`` (independent learners), ``marl_shared`` (parameter sharing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from explore.rl.budget import Budget, Memo
from memsim.registry import Registry

Explorer = Callable[..., None]

EXPLORERS: Registry[Explorer] = Registry("explorer")

#: learned explorers (the rest are baselines)
LEARNED = ("ppo", "a2c", "dqn", "sac", "marl", "marl_shared")


def _lazy(module: str, attr: str) -> Callable[[], Explorer]:
    def make() -> Explorer:
        import importlib

        fn: Any = getattr(importlib.import_module(module), attr)
        return fn

    return make


for _name, _mod, _attr in (
    ("random", "explore.rl.baselines", "random_search"),
    ("grid", "explore.rl.baselines", "grid_search"),
    ("ga", "explore.rl.baselines", "genetic"),
    ("bo", "explore.rl.baselines", "optuna_tpe"),
    ("ppo", "explore.rl.sb3", "ppo"),
    ("a2c", "explore.rl.sb3", "a2c"),
    ("dqn", "explore.rl.sb3", "dqn"),
    ("sac", "explore.rl.sb3", "sac"),
    ("marl", "explore.rl.marl", "marl_independent"),
    ("marl_shared", "explore.rl.marl", "marl_shared"),
):
    EXPLORERS.register(_name)(_lazy(_mod, _attr))

__all__ = ["EXPLORERS", "LEARNED", "Budget", "Memo"]
