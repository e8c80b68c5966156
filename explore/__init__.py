"""Design-space exploration: spaces, samplers, evaluators, resumable sweeps, Pareto fronts.

>>> from explore import DesignSpace, sweep
>>> # space = DesignSpace.from_yaml("explore/spaces/hbm_sram_70b_decode.yaml")
>>> # report = sweep(space, store="results.db", workers=2)

``import explore`` loads no simulator module until a point is evaluated, and
registers the Gymnasium environment ids ``memsim/MemCtrl-v0``,
``memsim/MemHierarchy-v0`` and ``memsim/Toy-v0`` (:mod:`explore.envs`; no torch).
"""

from __future__ import annotations

from explore.envs import register_envs as _register_envs
from explore.evaluate import EvalRecord, evaluate_job, register_evaluator
from explore.objective import Objective
from explore.pareto import hypervolume, pareto_front
from explore.space import DesignSpace, Job, Parameter
from explore.store import Store
from explore.sweep import SweepInterruptedError, SweepReport, sweep

_register_envs()

__all__ = [
    "DesignSpace",
    "EvalRecord",
    "Job",
    "Objective",
    "Parameter",
    "Store",
    "SweepInterruptedError",
    "SweepReport",
    "evaluate_job",
    "hypervolume",
    "pareto_front",
    "register_evaluator",
    "sweep",
]
