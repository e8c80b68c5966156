"""Baseline explorers: random search, grid, a genetic algorithm, Optuna TPE (BO).

Each is ``f(problem, budget, *, seed)`` and proposes configurations to the
:class:`~explore.rl.budget.Budget` until it is exhausted.
"""

from __future__ import annotations

import itertools

import numpy as np

from explore.envs.problem import ConfigProblem, Index
from explore.rl.budget import Budget


def _sample(problem: ConfigProblem, rng: np.random.Generator) -> Index:
    """A configuration uniformly over each parameter's never-masked values."""
    return tuple(int(rng.choice(np.flatnonzero(m))) for m in problem.static_mask())


def random_search(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """Uniform random configurations (repeats are free; infeasible ones cost nothing)."""
    rng = np.random.default_rng(seed)
    while not budget.exhausted:
        budget.reward(_sample(problem, rng))


def grid_levels(problem: ConfigProblem, budget: int) -> list[list[int]]:
    """Per parameter, evenly spaced allowed values, as many as the budget allows: starting
    from one level each (the default), parameters take turns gaining a level while the
    grid stays within ``budget`` points."""
    allowed = [[int(i) for i in np.flatnonzero(m)] for m in problem.static_mask()]
    default = problem.default_index()
    counts = [1] * len(allowed)
    grew = True
    while grew:
        grew = False
        for i, vals in enumerate(allowed):
            if counts[i] >= len(vals):
                continue
            trial = counts[i] + 1
            if int(np.prod(counts)) // counts[i] * trial <= budget:
                counts[i] = trial
                grew = True
    levels = []
    for vals, k, d in zip(allowed, counts, default, strict=True):
        if k == 1:
            levels.append([d if d in vals else vals[0]])
        else:
            picks = np.linspace(0, len(vals) - 1, k).round().astype(int)
            levels.append(sorted({int(vals[p]) for p in picks}))
    return levels


def grid_search(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """Every point of a coarse grid within the budget (:func:`grid_levels`); ``seed``
    is unused: the grid is the same for every seed."""
    for idx in itertools.product(*grid_levels(problem, budget.budget)):
        if budget.exhausted:
            return
        budget.reward(idx)


def genetic(problem: ConfigProblem, budget: Budget, *, seed: int, population: int = 16) -> None:
    """A generational GA: binary tournament, uniform crossover, per-gene mutation
    (rate 1/parameters), two elites; infeasible children get the penalty reward."""
    rng = np.random.default_rng(seed)
    masks = [np.flatnonzero(m) for m in problem.static_mask()]
    pop = [_sample(problem, rng) for _ in range(population)]
    fit = [budget.reward(p) for p in pop]
    rate = 1.0 / len(masks)
    while not budget.exhausted:
        order = np.argsort(fit)[::-1]
        children = [pop[int(order[0])], pop[int(order[1])]]
        while len(children) < population:
            a, b = (
                max(rng.choice(population, 2, replace=False), key=lambda i: fit[i])
                for _ in range(2)
            )
            take = rng.random(len(masks)) < 0.5
            child = [pop[a][g] if take[g] else pop[b][g] for g in range(len(masks))]
            for g, m in enumerate(masks):
                if rng.random() < rate:
                    child[g] = int(rng.choice(m))
            children.append(tuple(child))
        pop = children
        fit = [budget.reward(p) for p in pop]


def optuna_tpe(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """Bayesian optimisation with Optuna's TPE sampler (ask/tell, categorical parameters)."""
    import optuna

    masks = [np.flatnonzero(m) for m in problem.static_mask()]
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=min(10, budget.budget // 4 + 1)
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # restored below: no lasting change
    try:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        while not budget.exhausted:
            trial = study.ask()
            idx = tuple(
                int(trial.suggest_categorical(c.name, [int(v) for v in m]))
                for c, m in zip(problem.choices, masks, strict=True)
            )
            study.tell(trial, budget.reward(idx))
    finally:
        optuna.logging.set_verbosity(verbosity)
