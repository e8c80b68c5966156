"""`ConfigParallelEnv`: a configuration problem as a PettingZoo ``ParallelEnv``.

One agent per parameter (``agent_<name>``), each choosing that parameter's value
(``Discrete``); all act at once, the joint configuration is evaluated once, every
agent gets the same (shared) reward, and the episode ends. Each agent observes the
last joint configuration scaled to 0..1 (as :class:`~explore.envs.gym_env.ConfigEnv`).
``infos[agent]["action_mask"]`` is the agent's 0/1 mask of feasible values; an
infeasible joint choice is not simulated (shared penalty, ``feasible: False``).
"""

from __future__ import annotations

import copy
import functools
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from pettingzoo import ParallelEnv

from explore.envs.gym_env import ConfigEnv, Evaluator
from explore.envs.problem import ConfigProblem


class ConfigParallelEnv(ParallelEnv[str, npt.NDArray[np.float32], np.int64]):
    """One agent per parameter, shared reward (see the module doc)."""

    metadata: ClassVar[dict[str, Any]] = {"name": "memsim_config_v0", "render_modes": []}

    def __init__(self, problem: ConfigProblem, *, evaluator: Evaluator | None = None) -> None:
        self.problem = problem
        self._env = ConfigEnv(problem, evaluator=evaluator)
        self.possible_agents = [f"agent_{c.name}" for c in problem.choices]
        self.agents: list[str] = []
        self._n = {
            a: len(c.values) for a, c in zip(self.possible_agents, problem.choices, strict=True)
        }
        self._masks = dict(zip(self.possible_agents, problem.static_mask(), strict=True))

    @property
    def evaluator(self) -> Evaluator:
        """Where joint configurations are evaluated."""
        return self._env.evaluator

    @functools.cache  # noqa: B019 - PettingZoo's convention: the same space object each call
    def observation_space(self, agent: str) -> gym.spaces.Space[Any]:
        """Every agent sees the joint configuration (0..1 per parameter)."""
        return self._env.observation_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> gym.spaces.Space[Any]:
        """The agent's parameter's values."""
        return gym.spaces.Discrete(self._n[agent])

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, dict[str, Any]]]:
        """Start an episode: every agent active, observing the default configuration."""
        obs, _ = self._env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return {a: obs.copy() for a in self.agents}, {
            a: {"action_mask": self._masks[a]} for a in self.agents
        }

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, npt.NDArray[np.float32]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """All agents' choices form one configuration; shared reward; the episode ends."""
        if not actions:
            self.agents = []
            return {}, {}, {}, {}, {}
        missing = [a for a in self.possible_agents if a not in actions]
        if missing:
            raise ValueError(f"every agent acts each step; missing {', '.join(missing)}")
        joint = np.array([int(actions[a]) for a in self.possible_agents], dtype=np.int64)
        obs, reward, _, _, info = self._env.step(joint)
        agents = list(self.agents)
        self.agents = []
        shared = {k: v for k, v in info.items() if k != "action_mask"}
        return (
            {a: obs.copy() for a in agents},
            {a: reward for a in agents},
            {a: True for a in agents},
            {a: False for a in agents},
            {a: copy.deepcopy(shared) | {"action_mask": self._masks[a].copy()} for a in agents},
        )
