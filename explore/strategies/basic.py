"""The non-adaptive samplers: grid, random, Latin hypercube, one-at-a-time, Sobol (Saltelli)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from explore.strategies import SAMPLERS, Sampler, need_budget, need_extra
from hw_models.errors import Problem, SpecError

if TYPE_CHECKING:
    from explore.space import DesignSpace, Parameter, Point

OAT_LEVELS = 5


@SAMPLERS.register("grid")
class Grid(Sampler):
    """Every grid point (a budget takes the first N)."""

    needs_budget = False

    def points(self) -> list[Point]:
        """The grid in order, last parameter fastest."""
        space, budget = self.space, self.budget
        it = space.grid_points()
        return list(itertools.islice(it, budget) if budget is not None else it)


@SAMPLERS.register("random")
class Random(Sampler):
    """Independent uniform points (``numpy.random.default_rng(seed)``)."""

    def points(self) -> list[Point]:
        """``budget`` points."""
        space, n = self.space, need_budget("random", self.budget)
        u = np.random.default_rng(self.seed).random((n, len(space.parameters)))
        return [space.point_from_unit(row) for row in u]


@SAMPLERS.register("lhs")
class LatinHypercube(Sampler):
    """A Latin hypercube of ``budget`` points (``scipy.stats.qmc.LatinHypercube``)."""

    def points(self) -> list[Point]:
        """``budget`` stratified points."""
        from scipy.stats import qmc

        space, n = self.space, need_budget("lhs", self.budget)
        u = qmc.LatinHypercube(d=len(space.parameters), seed=self.seed).random(n)
        return [space.point_from_unit(row) for row in u]


def levels(p: Parameter) -> list[Any]:
    """The values one-at-a-time takes: the grid, or 5 levels of a range without steps."""
    if p.discrete:
        return p.grid()
    import dataclasses

    return dataclasses.replace(p, steps=OAT_LEVELS).grid()


def centre(space: DesignSpace) -> Point:
    """The middle level of every parameter (the lower middle for an even count)."""
    out: Point = {}
    for p in space.parameters:
        lv = levels(p)
        out[p.name] = lv[(len(lv) - 1) // 2]
    return out


@SAMPLERS.register("oat")
class OneAtATime(Sampler):
    """The centre point, then each parameter over its levels with the others at the centre."""

    needs_budget = False

    def points(self) -> list[Point]:
        """Centre first; duplicates of the centre left out."""
        space, budget = self.space, self.budget
        base = centre(space)
        out = [dict(base)]
        for p in space.parameters:
            for v in levels(p):
                if repr(v) != repr(base[p.name]):
                    out.append({**base, p.name: v})
        return out[:budget] if budget is not None else out


def sobol_base_size(budget: int, d: int) -> int:
    """The largest power of two ``N`` with ``N x (d + 2) <= budget``."""
    n = budget // (d + 2)
    if n < 1:
        raise SpecError(
            [
                Problem(
                    "--budget",
                    f"the sobol sampler needs at least {d + 2} points for {d} parameters",
                )
            ]
        )
    return 1 << (n.bit_length() - 1)


def saltelli_unit(d: int, n: int, seed: int) -> np.ndarray:
    """Saltelli's sample (first and total order) in the unit cube, ``n x (d + 2)`` rows."""
    need_extra("SALib", "the sobol sampler")
    from SALib.sample import sobol

    problem = {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}
    return np.asarray(sobol.sample(problem, n, calc_second_order=False, seed=seed))


@SAMPLERS.register("sobol")
class Sobol(Sampler):
    """Saltelli's sample for Sobol indices (analysed by :func:`explore.sensitivity.sobol`)."""

    def points(self) -> list[Point]:
        """``N x (d + 2)`` points, rows in SALib's order."""
        space = self.space
        d = len(space.parameters)
        n = sobol_base_size(need_budget("sobol", self.budget), d)
        return [space.point_from_unit(row) for row in saltelli_unit(d, n, self.seed)]
