"""`ConfigEnv`: a :class:`~explore.envs.problem.ConfigProblem` as a Gymnasium environment.

One episode is one step: the action is a full configuration (``MultiDiscrete``, one
choice index per parameter), the reward is the problem's reward for it, and the
episode terminates. The observation is the last configuration, each index scaled
to 0..1 (after ``reset``: the default configuration), so an agent has a fixed
context to condition on; the optimum does not depend on it.

``info["action_mask"]`` is a tuple of 0/1 arrays, one per parameter (Gymnasium's
``MultiDiscrete.sample(mask=...)`` format): values that are never feasible. A
combination that is infeasible anyway (e.g. over a budget) is not simulated: it gets
:data:`~explore.envs.problem.INFEASIBLE_REWARD` and ``info["feasible"] = False``.

Calls go through ``evaluator`` (default: the problem's own ``evaluate``); the fair
comparison passes a budgeted, caching one (:mod:`explore.rl.budget`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from explore.envs.problem import INFEASIBLE_REWARD, ConfigProblem, Evaluation

Evaluator = Callable[[Sequence[int]], Evaluation | None]


class ConfigEnv(gym.Env[npt.NDArray[np.float32], npt.NDArray[np.int64]]):
    """One-step episodes over a configuration problem (see the module doc)."""

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium declares it per instance

    def __init__(self, problem: ConfigProblem, *, evaluator: Evaluator | None = None) -> None:
        self.problem = problem
        self.evaluator: Evaluator = evaluator or problem.evaluate
        self._nvec = problem.nvec
        self.action_space = gym.spaces.MultiDiscrete(self._nvec)
        self.observation_space = gym.spaces.Box(
            0.0, 1.0, shape=(len(self._nvec),), dtype=np.float32
        )
        self._mask = problem.static_mask()
        self._obs = self._encode(problem.default_index())

    def _encode(self, index: Sequence[int]) -> npt.NDArray[np.float32]:
        span = np.maximum(self._nvec - 1, 1)
        return (np.asarray(index, dtype=np.float32) / span).astype(np.float32)

    def action_mask(self) -> tuple[npt.NDArray[np.int8], ...]:
        """Per parameter: 1 for a value that may be chosen (a fresh copy)."""
        return tuple(m.copy() for m in self._mask)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Start an episode (the observation is the default configuration)."""
        super().reset(seed=seed)
        self._obs = self._encode(self.problem.default_index())
        return self._obs.copy(), {"action_mask": self.action_mask()}

    def step(
        self, action: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Evaluate the configuration ``action``; the episode ends."""
        index = self.problem.check_index(action)
        why = self.problem.infeasibility(index)
        info: dict[str, Any] = {
            "action_mask": self.action_mask(),
            "config": self.problem.config(index),
        }
        if why is not None:
            info |= {"feasible": False, "why": why}
            reward = INFEASIBLE_REWARD
        else:
            ev = self.evaluator(index)
            if ev is None:  # budget spent: nothing was simulated
                info |= {"feasible": True, "budget_exhausted": True}
                reward = INFEASIBLE_REWARD
            else:
                info |= {"feasible": True, "metrics": dict(ev.metrics)}
                reward = float(ev.reward)
        self._obs = self._encode(index)
        return self._obs.copy(), reward, True, False, info


def make_memctrl(**kwargs: Any) -> ConfigEnv:
    """Entry point of ``memsim/MemCtrl-v0`` (keywords: :class:`MemCtrlProblem`)."""
    from explore.envs.memctrl import MemCtrlProblem

    evaluator = kwargs.pop("evaluator", None)
    return ConfigEnv(MemCtrlProblem(**kwargs), evaluator=evaluator)


def make_memhierarchy(**kwargs: Any) -> ConfigEnv:
    """Entry point of ``memsim/MemHierarchy-v0`` (keywords: :class:`MemHierarchyProblem`)."""
    from explore.envs import make_problem

    evaluator = kwargs.pop("evaluator", None)
    return ConfigEnv(make_problem("memsim/MemHierarchy-v0", **kwargs), evaluator=evaluator)


def make_kvserve(**kwargs: Any) -> ConfigEnv:
    """Entry point of ``memsim/KVServe-v0`` (keywords: :class:`KVServeProblem`)."""
    from explore.envs.kvserve import KVServeProblem

    evaluator = kwargs.pop("evaluator", None)
    return ConfigEnv(KVServeProblem(**kwargs), evaluator=evaluator)


def make_toy(**kwargs: Any) -> ConfigEnv:
    """Entry point of ``memsim/Toy-v0`` (keywords: :class:`ToyProblem`)."""
    from explore.envs.toy import ToyProblem

    evaluator = kwargs.pop("evaluator", None)
    return ConfigEnv(ToyProblem(**kwargs), evaluator=evaluator)
