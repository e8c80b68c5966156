"""``memsim plot KIND ... -o FILE.(png|svg|pdf)``: draw one figure.

Kinds: ``roofline``, ``memory-wall``, ``timeline``, ``occupancy``, ``breakdown``,
``sensitivity``, ``dram``. Result plots read a ``memsim run --out`` folder, or run a
simulation first when given ``--system S --model M [--batch B --prompt P --gen G]``::

    memsim plot roofline --system h100_sxm --model llama2_7b -o roofline.png
    memsim plot roofline --system h100_sxm --system mi300x -o ceilings.svg
    memsim plot timeline out/demo -o timeline.pdf
    memsim plot memory-wall --system h100_sxm@2022 --model llama2_70b@2023 -o wall.png
    memsim plot sensitivity sweep.csv --knob hbm_bandwidth_bytes_per_s --objective tpot_s -o s.png
    memsim plot dram frfcfs.json fcfs.json -o dram.png

This module belongs to ``plots`` (plots own their subcommands); ``memsim/cli/plot.py``
only registers it, and the ``memsim`` command imports it (and matplotlib, with the Agg
backend) only when a plot command runs, so ``import memsim`` stays free of matplotlib.
Simulations run through the public :func:`memsim.simulate`.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from hw_models import load_system
from hw_models.errors import Problem, SpecError

KINDS = ("roofline", "memory-wall", "timeline", "occupancy", "breakdown", "sensitivity", "dram")


def _plots() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import plots

    return plots


def _system(name: str, overrides: list[str] | None, args: argparse.Namespace) -> Any:
    from memsim.cli._limits import ceilings_from

    return load_system(name, overrides=overrides or None, ceilings=ceilings_from(args))


def simulate_tables(args: argparse.Namespace, system_name: str) -> Any:
    """Run ``--model`` on ``system_name`` through the public API; RunTables of the result."""
    from memsim import simulate
    from memsim.cli._limits import ceilings_from
    from workloads import generate, load_model

    ceilings = ceilings_from(args)
    ceilings.check_counts(
        [
            ("--batch", "batch", args.batch),
            ("--prompt", "tokens", args.prompt),
            ("--gen", "tokens", args.gen),
        ]
    )
    system = _system(system_name, args.set, args)
    cfg = load_model(args.model, ceilings=ceilings)
    graph = generate(cfg, batch=args.batch, prompt_len=args.prompt, gen_len=args.gen)
    result = simulate(system, graph, fidelity=args.fidelity)
    return _plots().RunTables.of(result)


def _tables(args: argparse.Namespace) -> list[Any]:
    """One RunTables per system (simulated) or the one of RESULT_DIR."""
    plots = _plots()
    systems = args.system or []
    if args.model:
        if not systems:
            raise SpecError([Problem("--system", "--model needs at least one --system")])
        return [simulate_tables(args, s) for s in systems]
    if args.result_dir is None:
        raise SpecError(
            [Problem("RESULT_DIR", "give a `memsim run --out` folder, or --system S --model M")]
        )
    sys_obj = _system(systems[0], args.set, args) if systems else None
    return [plots.RunTables.from_dir(args.result_dir, system=sys_obj)]


def _save(target: Any, out: str) -> Path:
    plots = _plots()
    fig = target.get_figure(root=True) if hasattr(target, "get_figure") else target
    path: Path = plots.save_figure(fig, out)
    print(f"wrote {path}")
    return path


def _check_output(out: str) -> None:
    _plots().style.figure_format(out)


def _check_dtype(items: list[Any], dtype: str | None) -> None:
    """Refuse a ``--dtype`` no system of the plot computes in, listing those it does."""
    if dtype is None:
        return
    from hw_models import System
    from hw_models.compute import DTYPES

    if dtype not in DTYPES:
        raise SpecError(
            [Problem("--dtype", f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")]
        )
    for item in items:
        system = item if isinstance(item, System) else getattr(item, "system", None)
        if system is None:
            continue
        known = sorted({d for unit in system.compute.values() for d in unit.peak_flops_per_s})
        if dtype not in known:
            raise SpecError(
                [
                    Problem(
                        "--dtype",
                        f"no compute unit of {system.name} supports {dtype!r} "
                        f"(known: {', '.join(known)})",
                    )
                ]
            )


def run_roofline(args: argparse.Namespace) -> int:
    """Draw a roofline: of a run, of simulated runs, or of systems' ceilings."""
    _check_output(args.output)
    plots = _plots()
    if args.model or args.result_dir is not None:
        items: list[Any] = _tables(args)
    elif args.system:
        items = [_system(s, args.set, args) for s in args.system]
    else:
        raise SpecError(
            [Problem("--system", "give RESULT_DIR, --system S, or --system S --model M")]
        )
    _check_dtype(items, args.dtype)
    opts = {"dtype": args.dtype, "hierarchical": not args.per_op, "effective": args.effective}
    if len(items) == 1:
        _save(plots.roofline(items[0], **opts), args.output)
    else:
        _save(plots.roofline_grid(items, **opts), args.output)
    return 0


def _result_plot(name: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        _check_output(args.output)
        plots = _plots()
        tables = _tables(args)
        if len(tables) > 1:
            raise SpecError(
                [Problem("--system", f"`plot {name}` draws one run: give one --system")]
            )
        draw = {
            "timeline": plots.timeline,
            "occupancy": plots.occupancy,
            "breakdown": plots.breakdown,
        }[name]
        _save(draw(tables[0]), args.output)
        return 0

    return run


def _name_year(text: str, *, flag: str) -> tuple[str, int]:
    name, sep, year = text.rpartition("@")
    if not sep or not name:
        raise SpecError([Problem(flag, f"expected NAME@YEAR, found {text!r}")])
    try:
        return name, int(year)
    except ValueError:
        raise SpecError([Problem(flag, f"expected a year after @, found {year!r}")]) from None


def _model_bytes(name: str) -> float:
    from workloads import load_model

    cfg = load_model(name)
    for attr in ("weight_bytes", "parameter_bytes"):
        value = getattr(cfg, attr, None)
        value = value() if callable(value) else value
        if isinstance(value, int | float) and value > 0:
            return float(value)
    for attr in ("params", "num_params", "parameters", "n_params"):
        value = getattr(cfg, attr, None)
        value = value() if callable(value) else value
        if isinstance(value, int | float) and value > 0:
            return 2.0 * float(value)  # bf16 weights
    raise SpecError([Problem("--model", f"cannot tell the size of model {name!r}")])


def run_memory_wall(args: argparse.Namespace) -> int:
    """Draw the memory wall (and model sizes against memory if --model is given)."""
    _check_output(args.output)
    plots = _plots()
    import pandas as pd

    data = plots.load_memory_wall(args.data)
    systems = None
    if args.system:
        rows = []
        for item in args.system:
            name, year = _name_year(item, flag="--system")
            rows.append(plots.system_row(_system(name, args.set, args), year=year))
        systems = pd.DataFrame(rows)
    if not args.model:
        _save(plots.memory_wall(data, systems=systems), args.output)
        return 0
    models = pd.DataFrame(
        [
            {"name": n, "year": y, "parameter_bytes": _model_bytes(n)}
            for n, y in (_name_year(m, flag="--model") for m in args.model)
        ]
    )
    fig, axes = plots.style.new_figure(figsize=(12.5, 4.6), ncols=2)
    plots.memory_wall(data, ax=axes[0], systems=systems)
    plots.model_memory(data, ax=axes[1], models=models, systems=systems)
    _save(fig, args.output)
    return 0


def _read_table(path: str) -> Any:
    import pandas as pd

    from hw_models.fileio import read_bytes_bounded
    from plots.tables import MAX_TABLE_BYTES

    p = Path(path)
    raw = io.BytesIO(read_bytes_bounded(p, limit=MAX_TABLE_BYTES, what="TABLE"))
    try:
        return pd.read_parquet(raw) if p.suffix == ".parquet" else pd.read_csv(raw)
    except Exception as err:  # pandas and pyarrow raise many types for a damaged file
        raise SpecError([Problem("TABLE", f"cannot read {p}: {err}")]) from None


def run_sensitivity(args: argparse.Namespace) -> int:
    """Draw objective(s) against a knob from a table of runs."""
    _check_output(args.output)
    plots = _plots()
    frame = _read_table(args.table)
    if len(args.objective) == 1:
        ax = plots.sensitivity(
            frame, knob=args.knob, objective=args.objective[0], group=args.group, logy=args.logy
        )
        _save(ax, args.output)
        return 0
    fig = plots.sensitivity_panels(
        frame, knob=args.knob, objectives=args.objective, group=args.group
    )
    _save(fig, args.output)
    return 0


#: Largest DRAM stats file read (latency samples of a few million requests).
MAX_STATS_BYTES = 256 << 20


def _read_stats(path: str) -> dict[str, Any]:
    from hw_models.fileio import read_bytes_bounded

    p = Path(path)
    raw = read_bytes_bounded(p, limit=MAX_STATS_BYTES, what="STATS")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SpecError([Problem("STATS", f"{p}: not valid JSON: {err}")]) from None
    if not isinstance(data, dict):
        raise SpecError([Problem("STATS", f"{p}: expected a JSON object of DRAM stats")])
    return data


def run_dram(args: argparse.Namespace) -> int:
    """Draw DRAM latency distribution and row-buffer outcomes from stats JSON files."""
    _check_output(args.output)
    plots = _plots()
    runs = {Path(p).stem: _read_stats(p) for p in args.stats}
    has_latency = all(
        any(
            k in s
            for k in (
                "read_latencies_ns",
                "latency_samples_ns",
                "latencies_ns",
                "read_latencies_s",
                "latency_samples_s",
                "latency_histogram",
            )
        )
        for s in runs.values()
    )
    if has_latency:
        _save(plots.dram(runs, cdf=args.cdf), args.output)
    else:
        _save(plots.dram_row_breakdown(runs), args.output)
    return 0


def _add_run_source(p: argparse.ArgumentParser, *, many_systems: bool) -> None:
    p.add_argument(
        "result_dir", nargs="?", metavar="RESULT_DIR", help="a `memsim run --out` folder"
    )
    p.add_argument(
        "--system",
        action="append",
        metavar="S",
        help="system preset or YAML" + (" (repeat to compare)" if many_systems else ""),
    )
    p.add_argument("--model", help="model preset: simulate it on --system first")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt", type=int, default=512, help="prompt length (tokens)")
    p.add_argument("--gen", type=int, default=32, help="generated tokens")
    p.add_argument("--fidelity", choices=["event", "analytic"], default="analytic")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="system override")


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="output figure: .png, .svg or .pdf"
    )
    from memsim.cli._limits import add_ceiling_options

    add_ceiling_options(p)


def add_parser(sub: Any, *, help: str) -> None:
    """Register ``plot`` (with the one-line ``help``) and its kinds."""
    p = sub.add_parser("plot", help=help)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    r = kinds.add_parser("roofline", help="hierarchical roofline of a run or of systems")
    _add_run_source(r, many_systems=True)
    r.add_argument("--dtype", help="dtype whose peak marks the ridge points")
    r.add_argument(
        "--effective", action="store_true", help="also draw ceilings at the achievable bandwidth"
    )
    r.add_argument(
        "--per-op",
        action="store_true",
        help="one point per op at its off-chip intensity (not one per tier)",
    )
    _output(r)
    r.set_defaults(func=run_roofline)

    for name, text in (
        ("timeline", "Gantt chart of compute units, DMA engines, channels"),
        ("occupancy", "bytes allocated per tier over time"),
        ("breakdown", "time and energy by tier, tensor kind and phase"),
    ):
        q = kinds.add_parser(name, help=text)
        _add_run_source(q, many_systems=False)
        _output(q)
        q.set_defaults(func=_result_plot(name))

    m = kinds.add_parser("memory-wall", help="FLOP/s against DRAM and interconnect bandwidth")
    m.add_argument("--data", help="hardware table (default: the shipped one)")
    m.add_argument("--system", action="append", metavar="S@YEAR", help="overlay a system")
    m.add_argument("--model", action="append", metavar="M@YEAR", help="overlay a model's size")
    m.add_argument("--set", action="append", metavar="KEY=VALUE", help="system override")
    _output(m)
    m.set_defaults(func=run_memory_wall)

    s = kinds.add_parser("sensitivity", help="objective(s) against one knob, from many runs")
    s.add_argument("table", metavar="TABLE", help="CSV or Parquet with one row per run")
    s.add_argument("--knob", required=True, help="knob column")
    s.add_argument("--objective", action="append", required=True, help="objective column(s)")
    s.add_argument("--group", help="one curve per value of this column")
    s.add_argument("--logy", action="store_true")
    _output(s)
    s.set_defaults(func=run_sensitivity)

    d = kinds.add_parser("dram", help="DRAM latency distribution and row hits/misses/conflicts")
    d.add_argument("stats", nargs="+", metavar="STATS", help="DRAM stats JSON file(s)")
    d.add_argument("--cdf", action="store_true", help="latency as a CDF")
    _output(d)
    d.set_defaults(func=run_dram)
