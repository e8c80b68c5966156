"""Single-agent explorers from stable-baselines3: PPO, A2C, DQN, SAC (imports torch).

The agent trains on :class:`~explore.envs.gym_env.ConfigEnv` (one-step episodes, one
full configuration per action) whose calls go through the run's
:class:`~explore.rl.budget.Budget`; a callback stops training when the budget is
spent. DQN sees the configurations flattened to one ``Discrete`` action (only when
there are at most :data:`DQN_MAX_ACTIONS`); SAC acts in ``[-1, 1]^d``, each
coordinate rounded to one of its parameter's values (a continuous relaxation).
Networks are small (two layers of 64) and updates frequent, as suits a few hundred
samples.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from stable_baselines3.common.callbacks import BaseCallback

from explore.envs.gym_env import ConfigEnv
from explore.envs.problem import ConfigProblem
from explore.rl._torch import single_thread
from explore.rl.budget import Budget
from hw_models.errors import Problem, SpecError

#: DQN enumerates every configuration as one action; beyond this it is refused
DQN_MAX_ACTIONS = 4096


def _net() -> dict[str, Any]:
    """Fresh policy keywords per model (stable-baselines3 adds keys to the dict it gets)."""
    return {"net_arch": [64, 64]}


class _StopOnBudget(BaseCallback):
    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self.budget = budget

    def _on_step(self) -> bool:
        return not self.budget.exhausted


class FlatDiscrete(gym.ActionWrapper[Any, np.int64, Any]):
    """Every configuration as one ``Discrete`` action (row-major over the parameters)."""

    def __init__(self, env: ConfigEnv) -> None:
        super().__init__(env)
        self.nvec = env.problem.nvec
        self.action_space = gym.spaces.Discrete(int(np.prod(self.nvec)))

    def action(self, action: Any) -> npt.NDArray[np.int64]:
        """Flat index -> choice indices."""
        return np.array(np.unravel_index(int(action), tuple(self.nvec)), dtype=np.int64)


class BoxRelaxation(gym.ActionWrapper[Any, npt.NDArray[np.float32], Any]):
    """``[-1, 1]`` per parameter, rounded to the nearest of its ``n`` values
    (``floor((a + 1) / 2 * n)``, clipped)."""

    def __init__(self, env: ConfigEnv) -> None:
        super().__init__(env)
        self.nvec = env.problem.nvec
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(len(self.nvec),), dtype=np.float32)

    def action(self, action: Any) -> npt.NDArray[np.int64]:
        """Continuous action -> choice indices."""
        u = (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
        return np.minimum(np.floor(u * self.nvec), self.nvec - 1).astype(np.int64)


def _learn(model: Any, budget: Budget) -> None:
    with single_thread():
        model.learn(total_timesteps=budget.max_steps, callback=_StopOnBudget(budget))


def ppo(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """PPO on the MultiDiscrete configuration action."""
    from stable_baselines3 import PPO

    env = ConfigEnv(problem, evaluator=budget)
    model = PPO(
        "MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=4, learning_rate=3e-3,
        ent_coef=0.01, gamma=0.0, gae_lambda=1.0, seed=seed, policy_kwargs=_net(), device="cpu",
    )  # fmt: skip
    _learn(model, budget)


def a2c(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """A2C on the MultiDiscrete configuration action."""
    from stable_baselines3 import A2C

    env = ConfigEnv(problem, evaluator=budget)
    model = A2C(
        "MlpPolicy", env, n_steps=8, learning_rate=3e-3, ent_coef=0.01, gamma=0.0,
        seed=seed, policy_kwargs=_net(), device="cpu",
    )  # fmt: skip
    _learn(model, budget)


def dqn(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """DQN over the flattened configurations (refused above DQN_MAX_ACTIONS)."""
    from stable_baselines3 import DQN

    if problem.size > DQN_MAX_ACTIONS:
        raise SpecError(
            [
                Problem(
                    "algo",
                    f"dqn enumerates every configuration as one action: {problem.name} has "
                    f"{problem.size:,}, above {DQN_MAX_ACTIONS:,}; use ppo, a2c, sac or marl",
                )
            ]
        )
    env = FlatDiscrete(ConfigEnv(problem, evaluator=budget))
    model = DQN(
        "MlpPolicy",
        env,
        learning_starts=min(32, budget.budget // 4),
        train_freq=1,
        batch_size=32,
        buffer_size=10_000,
        target_update_interval=32,
        gamma=0.0,
        exploration_fraction=min(1.0, 2 * budget.budget / budget.max_steps),
        exploration_final_eps=0.05,
        learning_rate=1e-3,
        seed=seed,
        policy_kwargs=_net(),
        device="cpu",
    )  # fmt: skip  (epsilon decays over about two budgets of steps)
    _learn(model, budget)


def sac(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """SAC through the continuous relaxation :class:`BoxRelaxation`."""
    from stable_baselines3 import SAC

    env = BoxRelaxation(ConfigEnv(problem, evaluator=budget))
    model = SAC(
        "MlpPolicy", env, learning_starts=min(32, budget.budget // 4), train_freq=1,
        batch_size=32, buffer_size=10_000, gamma=0.0, learning_rate=3e-3,
        seed=seed, policy_kwargs=_net(), device="cpu",
    )  # fmt: skip
    _learn(model, budget)
