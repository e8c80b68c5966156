"""Samplers: which points of a :class:`~explore.space.DesignSpace` a sweep evaluates.

Registered by name (``--sampler``, or ``sampler:`` in a space file); every one is
seeded, so the same (space, budget, seed) gives the same points:

* ``grid`` — every point of the grid (ranges need ``steps``), the last parameter
  fastest; a budget takes the first N.
* ``random`` — independent uniform points (log-uniform on log ranges).
* ``lhs`` — a Latin hypercube (``scipy.stats.qmc``) of ``budget`` points.
* ``oat`` — one at a time: the centre point, then each parameter over its grid (ranges
  without ``steps`` take 5 levels) with the others at the centre.
* ``sobol`` — Saltelli's sample for first- and total-order Sobol indices (SALib):
  ``N x (d + 2)`` points with ``N`` the largest power of two the budget allows.
* ``tpe`` and ``nsga2`` — Optuna's adaptive samplers; they ask for points in batches
  of the number of workers and learn from the results (:class:`AdaptiveSampler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hw_models.errors import Problem, SpecError
from memsim.registry import Registry

if TYPE_CHECKING:
    from explore.space import DesignSpace, Point


class Sampler:
    """A fixed list of points, decided before any is evaluated."""

    adaptive = False
    needs_budget = True

    def __init__(self, space: DesignSpace, *, seed: int, budget: int | None) -> None:
        self.space = space
        self.seed = seed
        self.budget = budget

    def points(self) -> list[Point]:
        """The points to evaluate, in order."""
        raise NotImplementedError


class AdaptiveSampler:
    """Proposes points from the results so far: :meth:`ask`, evaluate, :meth:`tell`."""

    adaptive = True
    needs_budget = True

    def __init__(self, space: DesignSpace, *, seed: int, budget: int | None) -> None:
        self.space = space
        self.seed = seed
        self.budget = budget

    def ask(self) -> tuple[Any, Point]:
        """A token and the next point."""
        raise NotImplementedError

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """The objective values of an asked point (``None``: infeasible or invalid)."""
        raise NotImplementedError

    def replay(self, point: Point, values: Sequence[float] | None) -> None:
        """Learn a point evaluated earlier (a resumed sweep replays its store)."""
        raise NotImplementedError


SAMPLERS: Registry[Any] = Registry("sampler")


def sampler_names() -> list[str]:
    """Names of the registered samplers."""
    return SAMPLERS.names()


def make_sampler(
    name: str, space: DesignSpace, *, seed: int, budget: int | None
) -> Sampler | AdaptiveSampler:
    """The sampler registered as ``name`` (:class:`SpecError` listing the known ones)."""
    return SAMPLERS.create(name, space, seed=seed, budget=budget, error_path="--sampler")


def need_extra(module: str, what: str) -> None:
    """A :class:`SpecError` naming the extra to install when ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SpecError(
            [Problem("--sampler", f"{what} needs {module} (pip install memsim[explore])")]
        )


def need_budget(name: str, budget: int | None) -> int:
    """``budget``, or a :class:`SpecError` saying the sampler needs one."""
    if budget is None:
        raise SpecError([Problem("--budget", f"the {name} sampler needs a budget (--budget N)")])
    return budget


from explore.strategies import basic as _basic  # noqa: E402,F401  (registers the samplers)
from explore.strategies import optuna_samplers as _optuna  # noqa: E402,F401

__all__ = [
    "SAMPLERS",
    "AdaptiveSampler",
    "Sampler",
    "make_sampler",
    "need_budget",
    "need_extra",
    "sampler_names",
]
