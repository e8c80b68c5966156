"""``memsim explore``: learned and baseline explorers over memsim configurations.

memsim explore rl --env memsim/MemCtrl-v0 --algo marl --budget 300 --seeds 5 --out runs/marl
memsim explore compare --env memsim/MemCtrl-v0 --budget 300 --seeds 5 --format json
memsim explore claim --traces mixed,llm --objectives latency,power --budget 200 --seeds 5 \
    --requests 5000 --workers 2 --out rl-claim

Budgets count simulator calls, not steps: a configuration an explorer has already
tried costs nothing, an infeasible one is never simulated (explore.compare). Each run
writes, under --out: curves.csv/curves.png (best reward so far per call), table.md
and table.csv, summary.json, runs.json and best.json -- for MemCtrl-v0 the best
controller settings, which replay with ``memsim dram --config best.json``.

Environment settings: --objective, --trace, --requests, --device (MemCtrl-v0) and
``--set KEY=VALUE`` for any keyword of the environment's problem class
(explore.envs.memctrl.MemCtrlProblem, explore.envs.memhierarchy.MemHierarchyProblem,
explore.envs.toy.ToyProblem).
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from hw_models.errors import Problem, SpecError
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "explore": "RL and baseline explorers over DRAM-controller and hierarchy configurations"
}

ENV_IDS = ("memsim/MemCtrl-v0", "memsim/MemHierarchy-v0", "memsim/KVServe-v0", "memsim/Toy-v0")
ALGOS = ("marl", "marl_shared", "ppo", "sac", "a2c", "dqn", "random", "grid", "ga", "bo")
#: the explorers of the paper's claim (issue 14): MARL, PPO, SAC, random, GA, BO
CLAIM_ALGOS = ("marl", "marl_shared", "ppo", "sac", "random", "ga", "bo")


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError([Problem("--set", f"expected KEY=VALUE, found {item!r}")])
        kw[key.strip()] = yaml.safe_load(raw)
    flags = {
        "objective": getattr(args, "objective", None),
        "trace": getattr(args, "trace", None),
        "requests": args.requests,
        "device": args.device,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if given and args.env != "memsim/MemCtrl-v0":
        raise SpecError(
            [Problem(f"--{k}", f"applies to memsim/MemCtrl-v0, not {args.env}") for k in given]
        )
    return kw | given


def _check(args: argparse.Namespace) -> None:
    problems = []
    if args.budget <= 0:
        problems.append(Problem("--budget", f"expected simulator calls > 0, found {args.budget}"))
    if args.seeds <= 0:
        problems.append(Problem("--seeds", f"expected a count > 0, found {args.seeds}"))
    if problems:
        raise SpecError(problems)
    ceilings_from(args).check_counts(
        [
            ("--budget", "points", args.budget),
            ("--seeds", "seeds", args.seeds),
            ("--requests", "requests", args.requests),
            ("--workers", "workers", getattr(args, "workers", None)),
        ]
    )


def _make_problem(env: str, kwargs: dict[str, Any]) -> Any:
    from explore.envs import make_problem

    try:
        return make_problem(env, **kwargs)
    except TypeError as e:  # an unknown keyword from --set
        raise SpecError([Problem("--set", str(e))]) from None


def _write(res: Any, out: str, title: str) -> None:
    """The comparison's files and its learning-curve figure ``curves.png``."""
    from pathlib import Path

    from plots.learning_curves import learning_curves
    from plots.style import save_figure

    res.write(out)
    ax = learning_curves(res.curves(), title=title)
    save_figure(ax.figure, Path(out) / "curves.png")  # type: ignore[arg-type]


def _report(res: Any, args: argparse.Namespace) -> None:
    if args.format == "json":
        print_json(res.to_json())
        return
    rows = [
        [n, f"{m:.4f}", f"[{lo:.4f}, {hi:.4f}]", f"{c:.0f}", f"{w:.1f}"]
        for n, m, lo, hi, c, w in res.table_rows()
    ]
    print_table(rows, ["explorer", "best reward (mean)", "95 % CI", "calls", "wall s"])


def run_rl(args: argparse.Namespace) -> int:
    """One explorer over ``--seeds`` seeds."""
    from explore.compare import compare

    _check(args)
    problem = _make_problem(args.env, _env_kwargs(args))
    res = compare([args.algo], problem, budget=args.budget, seeds=args.seeds)
    if args.out:
        _write(res, args.out, f"{problem.name}: {args.algo}")
    _report(res, args)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Several explorers, same budget, same seeds."""
    from explore.compare import compare

    _check(args)
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    problem = _make_problem(args.env, _env_kwargs(args))
    res = compare(algos, problem, budget=args.budget, seeds=args.seeds)
    if args.out:
        _write(res, args.out, f"{problem.name}, budget {args.budget} calls")
    _report(res, args)
    return 0


def run_claim(args: argparse.Namespace) -> int:
    """MemCtrl-v0 on several traces and objectives: the table and figure of the docs."""
    from pathlib import Path

    from explore.claim import run_claim as claim

    _check(args)
    traces = [t.strip() for t in args.traces.split(",") if t.strip()]
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    out = Path(args.out)
    results = claim(
        traces=traces,
        objectives=objectives,
        algos=algos,
        budget=args.budget,
        seeds=args.seeds,
        requests=args.requests or 20_000,
        out=out,
        workers=args.workers,
    )
    from plots.learning_curves import learning_curves
    from plots.style import new_figure, save_figure

    for name, res in results.items():
        ax = learning_curves(res.curves(), title=f"MemCtrl-v0 {name}")
        save_figure(ax.figure, out / name / "curves.png")  # type: ignore[arg-type]
    cols = min(2, len(results))
    rows = -(-len(results) // cols)
    fig, axes = new_figure(figsize=(6.0 * cols, 4.0 * rows), nrows=rows, ncols=cols)
    for ax, (name, res) in zip(axes, results.items(), strict=False):
        learning_curves(res.curves(), ax=ax, title=f"MemCtrl-v0: {name}")
    save_figure(fig, out / "claim.png")
    if args.format == "json":
        import json

        print_json(json.loads((out / "claim.json").read_text()))
    else:
        print((out / "claim.md").read_text())
    return 0


def _common(p: argparse.ArgumentParser, *, env: bool = True) -> None:
    if env:
        p.add_argument("--env", required=True, choices=ENV_IDS, help="environment id")
    p.add_argument("--budget", type=int, required=True, help="simulator calls per run")
    p.add_argument("--seeds", type=int, default=5, help="runs per explorer (seeds 0..K-1)")
    if env:
        p.add_argument(
            "--objective", choices=("latency", "power", "both"), help="MemCtrl-v0 objective"
        )
    p.add_argument("--requests", type=int, help="MemCtrl-v0 trace length (default 20000)")
    p.add_argument("--device", help="MemCtrl-v0 DRAM device preset (default DDR4_3200)")
    p.add_argument("--out", help="directory for curves, table, summary and best configuration")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_ceiling_options(p)


def add_parser(sub: Any) -> None:
    """Register ``explore`` with its ``rl``, ``compare`` and ``claim`` subcommands."""
    p = sub.add_parser(
        "explore",
        help=COMMANDS["explore"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    rl = verbs.add_parser("rl", help="run one explorer over several seeds")
    _common(rl)
    rl.add_argument("--algo", required=True, choices=ALGOS)
    rl.add_argument("--trace", help="MemCtrl-v0 trace: stream, random, mix, mixed, llm, file")
    rl.add_argument("--set", action="append", metavar="KEY=VALUE", help="environment keyword")
    rl.set_defaults(func=run_rl)
    cmp = verbs.add_parser("compare", help="several explorers at the same budget and seeds")
    _common(cmp)
    cmp.add_argument("--algos", default=",".join(ALGOS), help="comma-separated explorers")
    cmp.add_argument("--trace", help="MemCtrl-v0 trace: stream, random, mix, mixed, llm, file")
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE", help="environment keyword")
    cmp.set_defaults(func=run_compare)
    cl = verbs.add_parser("claim", help="the paper's claim on MemCtrl-v0 (docs/explore.md)")
    _common(cl, env=False)
    cl.add_argument("--traces", default="mixed,llm")
    cl.add_argument("--objectives", default="latency,power")
    cl.add_argument("--algos", default=",".join(CLAIM_ALGOS))
    cl.add_argument("--workers", type=int, default=1, help="scenarios run in parallel processes")
    cl.set_defaults(func=run_claim, out="rl-claim")
