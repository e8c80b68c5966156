"""Sensitivity of the objectives to each parameter, from a store.

* :func:`one_at_a_time` reads a store sampled with ``--sampler oat``: for each parameter,
  the objective over its levels with every other parameter at the centre point, and the
  swing (largest minus smallest) relative to the centre's value.
* :func:`sobol` reads a store sampled with ``--sampler sobol``: it regenerates Saltelli's
  sample from the run's seed and budget, looks each row up by its key (repeated points
  are stored once) and computes first-order (S1) and total (ST) Sobol indices with
  SALib, with their 95 % confidence half-widths.

Both return tables (``parameter, objective, ...``) that ``plots.sensitivity_bars`` draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hw_models.errors import Problem, SpecError

if TYPE_CHECKING:
    import pandas as pd

    from explore.space import DesignSpace
    from explore.store import Store


def _last_run(store: Store, sampler: str) -> dict[str, Any]:
    runs = [r for r in (store.meta("runs") or []) if r.get("sampler") == sampler]
    if not runs:
        raise SpecError([Problem("STORE", f"{store.path} holds no `--sampler {sampler}` run")])
    return dict(runs[-1])


def one_at_a_time(store: Store, space: DesignSpace | None = None) -> pd.DataFrame:
    """Per (parameter, objective): ``centre``, ``low``, ``high``, ``swing`` and ``relative``
    (swing / |centre|) over the parameter's levels, the others at the centre point."""
    import pandas as pd

    from explore.strategies.basic import centre, levels

    space = space or store.space()
    run = _last_run(store, "oat")
    base = centre(space)
    by_key = {r["key"]: r for r in store.rows()}
    rows = []
    for p in space.parameters:
        for obj in space.objectives:
            vals = []
            centre_val = None
            for v in levels(p):
                point = {**base, p.name: v}
                rec = by_key.get(space.job(point, index=0, seed=int(run["seed"])).key)
                if rec is None or rec["status"] != "ok":
                    continue
                y = rec["objectives"].get(obj.name)
                if y is None:
                    continue
                vals.append(float(y))
                if repr(v) == repr(base[p.name]):
                    centre_val = float(y)
            if not vals:
                continue
            swing = max(vals) - min(vals)
            rows.append(
                {
                    "parameter": p.name,
                    "objective": obj.name,
                    "centre": centre_val,
                    "low": min(vals),
                    "high": max(vals),
                    "swing": swing,
                    "relative": swing / abs(centre_val) if centre_val else None,
                }
            )
    return pd.DataFrame(
        rows, columns=["parameter", "objective", "centre", "low", "high", "swing", "relative"]
    )


def sobol(store: Store, space: DesignSpace | None = None) -> pd.DataFrame:
    """Per (parameter, objective): ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (SALib)."""
    import pandas as pd
    from SALib.analyze import sobol as analyze

    from explore.strategies.basic import saltelli_unit, sobol_base_size

    space = space or store.space()
    run = _last_run(store, "sobol")
    seed, d = int(run["seed"]), len(space.parameters)
    n = sobol_base_size(int(run["budget"]), d)
    by_key = {r["key"]: r for r in store.rows()}
    points = [space.point_from_unit(u) for u in saltelli_unit(d, n, seed)]
    keys = [space.job(p, index=0, seed=seed).key for p in points]
    problem = {"num_vars": d, "names": space.names(), "bounds": [[0.0, 1.0]] * d}
    rows = []
    for obj in space.objectives:
        y = np.full(len(keys), np.nan)
        for i, k in enumerate(keys):
            rec = by_key.get(k)
            if rec is not None and rec["status"] == "ok":
                v = rec["objectives"].get(obj.name)
                y[i] = np.nan if v is None else float(v)
        missing = int(np.isnan(y).sum())
        if missing:
            raise SpecError(
                [
                    Problem(
                        f"objectives.{obj.name}",
                        f"{missing} of {len(y)} Sobol sample points have no value "
                        "(not yet evaluated, infeasible or invalid); Sobol indices need all",
                    )
                ]
            )
        res = analyze.analyze(problem, y, calc_second_order=False, seed=seed)
        for i, name in enumerate(space.names()):
            rows.append(
                {
                    "parameter": name,
                    "objective": obj.name,
                    "S1": float(res["S1"][i]),
                    "S1_conf": float(res["S1_conf"][i]),
                    "ST": float(res["ST"][i]),
                    "ST_conf": float(res["ST_conf"][i]),
                }
            )
    return pd.DataFrame(rows, columns=["parameter", "objective", "S1", "S1_conf", "ST", "ST_conf"])
