"""Gymnasium and PettingZoo environments over memsim configurations (extra: ``rl``).

Importing :mod:`explore` registers ``memsim/MemCtrl-v0``, ``memsim/MemHierarchy-v0``,
``memsim/KVServe-v0`` and ``memsim/Toy-v0`` with Gymnasium when it is installed
(no torch is imported).

>>> import gymnasium as gym
>>> import explore  # registers the ids
>>> env = gym.make("memsim/Toy-v0")
>>> env.action_space
MultiDiscrete([4 5 3])
"""

from __future__ import annotations

from typing import Any

ENV_IDS = ("memsim/MemCtrl-v0", "memsim/MemHierarchy-v0", "memsim/KVServe-v0", "memsim/Toy-v0")
_ENTRY = {
    "memsim/MemCtrl-v0": "explore.envs.gym_env:make_memctrl",
    "memsim/MemHierarchy-v0": "explore.envs.gym_env:make_memhierarchy",
    "memsim/KVServe-v0": "explore.envs.gym_env:make_kvserve",
    "memsim/Toy-v0": "explore.envs.gym_env:make_toy",
}


def register_envs() -> None:
    """Register the environment ids with Gymnasium (idempotent; no-op without it)."""
    try:
        import gymnasium as gym
    except ImportError:  # pragma: no cover - the rl extra is not installed
        return
    for env_id, entry in _ENTRY.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point=entry, max_episode_steps=1, disable_env_checker=True
            )


def make_problem(env_id: str, **kwargs: Any) -> Any:
    """The :class:`~explore.envs.problem.ConfigProblem` behind an environment id."""
    from hw_models.errors import Problem, SpecError

    if env_id == "memsim/MemCtrl-v0":
        from explore.envs.memctrl import MemCtrlProblem

        return MemCtrlProblem(**kwargs)
    if env_id == "memsim/MemHierarchy-v0":
        if "space" in kwargs:  # a sweeps design-space file: its parameters and budgets
            from explore.envs.designspace import SpaceProblem

            return SpaceProblem(**kwargs)
        from explore.envs.memhierarchy import MemHierarchyProblem

        return MemHierarchyProblem(**kwargs)
    if env_id == "memsim/KVServe-v0":
        from explore.envs.kvserve import KVServeProblem

        return KVServeProblem(**kwargs)
    if env_id == "memsim/Toy-v0":
        from explore.envs.toy import ToyProblem

        return ToyProblem(**kwargs)
    raise SpecError(
        [Problem("env", f"unknown environment {env_id!r} (known: {', '.join(ENV_IDS)})")]
    )


def memctrl_parallel_env(**kwargs: Any) -> Any:
    """``MemCtrl-v0`` as a PettingZoo ParallelEnv: one agent per controller knob."""
    from explore.envs.memctrl import MemCtrlProblem
    from explore.envs.parallel import ConfigParallelEnv

    evaluator = kwargs.pop("evaluator", None)
    return ConfigParallelEnv(MemCtrlProblem(**kwargs), evaluator=evaluator)


def memhierarchy_parallel_env(**kwargs: Any) -> Any:
    """``MemHierarchy-v0`` as a PettingZoo ParallelEnv: one agent per tier knob/policy."""
    from explore.envs.parallel import ConfigParallelEnv

    evaluator = kwargs.pop("evaluator", None)
    return ConfigParallelEnv(make_problem("memsim/MemHierarchy-v0", **kwargs), evaluator=evaluator)


def kvserve_parallel_env(**kwargs: Any) -> Any:
    """``KVServe-v0`` as a PettingZoo ParallelEnv: one agent per serving knob."""
    from explore.envs.parallel import ConfigParallelEnv

    evaluator = kwargs.pop("evaluator", None)
    return ConfigParallelEnv(make_problem("memsim/KVServe-v0", **kwargs), evaluator=evaluator)


def parallel_env(problem: Any, **kwargs: Any) -> Any:
    """Any problem as a PettingZoo ParallelEnv."""
    from explore.envs.parallel import ConfigParallelEnv

    return ConfigParallelEnv(problem, **kwargs)


__all__ = [
    "ENV_IDS",
    "kvserve_parallel_env",
    "make_problem",
    "memctrl_parallel_env",
    "memhierarchy_parallel_env",
    "parallel_env",
    "register_envs",
]
