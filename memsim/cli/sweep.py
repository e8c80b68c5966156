"""``memsim sweep``: explore a design space, resumably, and look at what was found.

::

    memsim sweep SPACE.yaml [--workers N] [--scheduler ADDRESS] [--store results.db]
                 [--budget N] [--sampler grid|random|lhs|oat|sobol|tpe|nsga2]
                 [--fidelity analytic|event] [--seed S] [--chunk N] [--format table|json]
    memsim sweep show STORE [--format json] [--top N]
    memsim sweep export STORE OUT.csv|OUT.parquet
    memsim sweep sensitivity STORE [--format json]
    memsim sweep plot STORE --out DIR

The store defaults to ``<space file name>.db`` in the current directory. Every finished
point is written to it at once; run the same command again after an interruption
(Ctrl-C, ``kill -9``) and the sweep resumes where it stopped. ``show --format json``
prints ``{"points": [{"id", "parameters", "objectives", "status"}, ...], "pareto": [ids],
"objectives": {...}}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hw_models.errors import Problem, SpecError
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import print_json, print_table

if TYPE_CHECKING:
    from explore.store import Store

COMMANDS = {"sweep": "sweep a design space (resumable), or show/export/plot a sweep's store"}

ACTIONS = ("show", "export", "sensitivity", "plot")
EXIT_INTERRUPTED = 130


def _args(args: argparse.Namespace, n: int, usage: str) -> list[str]:
    if len(args.rest) != n:
        raise SpecError([Problem(args.target, f"usage: memsim sweep {args.target} {usage}")])
    return list(args.rest)


def run(args: argparse.Namespace) -> int:
    """Dispatch: an action name, or a space file to sweep."""
    if args.target == "show":
        (store,) = _args(args, 1, "STORE")
        return show(_open(store), args)
    if args.target == "export":
        store, out = _args(args, 2, "STORE OUT.csv|OUT.parquet")
        path = _open(store).export(out)
        print(f"wrote {path}")
        return 0
    if args.target == "sensitivity":
        (store,) = _args(args, 1, "STORE")
        return sensitivity(_open(store), args)
    if args.target == "plot":
        (store,) = _args(args, 1, "STORE --out DIR")
        return plot(_open(store), args)
    if args.rest:
        raise SpecError([Problem("SPACE", f"unexpected arguments {' '.join(args.rest)!r}")])
    return run_sweep(args)


def _open(path: str) -> Store:
    from explore.store import Store

    return Store(path, create=False)


def run_sweep(args: argparse.Namespace) -> int:
    """Sweep a space file into its store, then show the best points."""
    from explore.space import DesignSpace
    from explore.store import Store
    from explore.sweep import SweepInterruptedError, sweep

    space = DesignSpace.from_yaml(args.target)
    if args.fidelity is not None and space.evaluator == "simulate":
        space = space.with_engine(fidelity=args.fidelity)
    store_path = Path(args.store) if args.store else Path(Path(args.target).stem + ".db")
    if args.workers is not None and args.workers < 1:
        raise SpecError([Problem("--workers", f"expected >= 1, found {args.workers}")])
    ceilings_from(args).check_counts(
        [
            ("--workers", "workers", args.workers),
            ("--budget", "points", args.budget),
            ("--chunk", "points", args.chunk),
        ]
    )
    try:
        report = sweep(
            space,
            store=store_path,
            sampler=args.sampler,
            budget=args.budget,
            seed=args.seed,
            workers=args.workers,
            scheduler=args.scheduler,
            chunk=args.chunk,
            progress=False if args.quiet else None,
        )
    except SweepInterruptedError as stop:
        print(
            f"\nmemsim: interrupted; {stop.report.evaluated} point(s) written to "
            f"{stop.report.store}. Run the same command again to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(report.line(), file=sys.stderr)
    with Store(store_path) as st:
        return show(st, args)


def _show_doc(store: Store) -> dict[str, Any]:
    from explore.pareto import front_ids

    rows = store.rows()
    objectives = store.objectives()
    return {
        "objectives": dict(objectives),
        "points": [
            {
                "id": r["id"],
                "parameters": r["parameters"],
                "objectives": r["objectives"],
                "status": r["status"],
                **({"message": r["message"]} if r["status"] != "ok" else {}),
            }
            for r in rows
        ],
        "pareto": front_ids(rows, objectives),
    }


def show(store: Store, args: argparse.Namespace) -> int:
    """Print the best points (the Pareto front, best first objective first) or JSON."""
    doc = _show_doc(store)
    if args.format == "json":
        print_json(doc)
        return 0
    objectives = store.objectives()
    params = store.parameter_names()
    points = doc["points"]
    by_id = {p["id"]: p for p in points}
    ok = [p for p in points if p["status"] == "ok"]
    counts = {s: sum(p["status"] == s for p in points) for s in ("ok", "infeasible", "invalid")}
    print(
        f"{store.path}: {len(points)} point(s) ({counts['ok']} ok, {counts['infeasible']} "
        f"infeasible, {counts['invalid']} invalid); objectives "
        + ", ".join(f"{n} ({s})" for n, s in objectives)
    )
    if not ok:
        bad = next((p for p in points if p["status"] != "ok"), None)
        if bad is not None:
            print(f"first problem: {bad.get('message', '')}")
        return 0
    first, sense = objectives[0]
    best = [by_id[i] for i in doc["pareto"]]
    best.sort(key=lambda p: p["objectives"][first] * (1 if sense == "min" else -1))
    if len(objectives) == 1:
        ranked = sorted(
            (p for p in ok if isinstance(p["objectives"].get(first), int | float)),
            key=lambda p: p["objectives"][first] * (1 if sense == "min" else -1),
        )
        best = ranked[: args.top]
        print(f"\nBest {len(best)} point(s)")
    else:
        print(f"\nPareto front: {len(best)} point(s)" + _hv_text(ok, objectives))
        best = best[: args.top]
    print_table(
        [
            [p["id"], *(_fmt(p["parameters"].get(k)) for k in params)]
            + [_fmt(p["objectives"].get(n)) for n, _ in objectives]
            for p in best
        ],
        ["id", *params, *(n for n, _ in objectives)],
    )
    return 0


def _hv_text(ok: list[dict[str, Any]], objectives: list[tuple[str, str]]) -> str:
    if len(objectives) not in (2, 3):
        return ""
    import numpy as np

    from explore.pareto import hypervolume

    vals = [[p["objectives"].get(n) for n, _ in objectives] for p in ok]
    arr = np.array([v for v in vals if all(isinstance(x, int | float) for x in v)], dtype=float)
    if not len(arr):
        return ""
    hv = hypervolume(arr, [s for _, s in objectives])
    return f"; hypervolume {hv:.4g} (reference: each objective's worst + 10 % of its range)"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def sensitivity(store: Store, args: argparse.Namespace) -> int:
    """Sobol indices (a sobol run) or one-at-a-time swings (an oat run)."""
    from explore import sensitivity as sens

    runs = [r.get("sampler") for r in (store.meta("runs") or [])]
    if "sobol" in runs:
        frame, what = sens.sobol(store), "Sobol indices (S1 first order, ST total)"
    elif "oat" in runs:
        frame, what = sens.one_at_a_time(store), "one-at-a-time swings"
    else:
        raise SpecError(
            [Problem("STORE", "sensitivity needs a store swept with --sampler sobol or oat")]
        )
    if args.format == "json":
        print_json({"method": what, "rows": frame.to_dict(orient="records")})
        return 0
    print(what)
    print_table(
        [[_fmt(v) for v in row] for row in frame.itertuples(index=False)], list(frame.columns)
    )
    return 0


def plot(store: Store, args: argparse.Namespace) -> int:
    """Pareto scatter, parallel coordinates and (for oat/sobol runs) sensitivity bars."""
    import plots
    from explore import sensitivity as sens

    if not args.out:
        raise SpecError([Problem("--out", "give the folder to write the figures into")])
    out = Path(args.out)
    frame = store.to_frame(metrics=False)
    frame = frame[frame["status"] == "ok"]
    if frame.empty:
        raise SpecError([Problem("STORE", "no evaluated point to plot")])
    objectives = store.objectives()
    params = store.parameter_names()
    written = []
    if len(objectives) >= 2:
        ax = plots.pareto_scatter(frame, x=objectives[0][0], y=objectives[1][0])
        written.append(_save(ax, out / "pareto.png"))
    cols = [*params, *(n for n, _ in objectives)]
    ax = plots.parallel_coordinates(frame, columns=cols)
    written.append(_save(ax, out / "parallel.png"))
    runs = [r.get("sampler") for r in (store.meta("runs") or [])]
    table, value, err = None, "", None
    if "sobol" in runs:
        table, value, err = sens.sobol(store), "ST", "ST_conf"
    elif "oat" in runs:
        table, value = sens.one_at_a_time(store), "relative"
    if table is not None:
        for name, _ in objectives:
            ax = plots.sensitivity_bars(table, objective=name, value=value, error=err)
            written.append(_save(ax, out / f"sensitivity_{_safe(name)}.png"))
    for p in params:
        if frame[p].map(lambda v: isinstance(v, int | float)).all() and frame[p].nunique() > 1:
            fig = plots.sensitivity_panels(
                frame.astype({p: float}), knob=p, objectives=[n for n, _ in objectives]
            )
            written.append(plots.save_figure(fig, out / f"curves_{_safe(p)}.png"))
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _save(ax: Any, path: Path) -> Path:
    import plots

    fig = ax.get_figure(root=True)
    assert fig is not None
    return plots.save_figure(fig, path)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def add_parser(sub: Any) -> None:
    """Register ``sweep``."""
    p = sub.add_parser(
        "sweep",
        help=COMMANDS["sweep"],
        description="memsim sweep SPACE.yaml [options] | show STORE | export STORE OUT | "
        "sensitivity STORE | plot STORE --out DIR. Every finished point is stored at once; "
        "run the same command again to resume an interrupted sweep.",
    )
    p.add_argument("target", metavar="SPACE.yaml|ACTION", help=f"a space file, or {ACTIONS}")
    p.add_argument("rest", nargs="*", metavar="ARG", help="the action's arguments")
    p.add_argument("--store", default=None, help="results store (default: <space name>.db)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: CPUs)")
    p.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler (tcp://host:port)"
    )
    p.add_argument("--budget", type=int, default=None, help="points to evaluate (samplers)")
    p.add_argument(
        "--sampler",
        default=None,
        help="grid (default), random, lhs, oat, sobol, tpe, nsga2 (explore.strategies)",
    )
    p.add_argument("--fidelity", choices=["analytic", "event"], default=None)
    p.add_argument("--seed", type=int, default=None, help="sampler and simulation seed")
    p.add_argument("--chunk", type=int, default=1, help="points per task (cheap points: more)")
    p.add_argument("--top", type=int, default=10, help="points shown by `show` (default 10)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.add_argument("--out", default=None, metavar="DIR", help="`plot`: folder for the figures")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar (it shows only on a terminal anyway)"
    )
    add_ceiling_options(p)
    p.set_defaults(func=run)
