"""``memsim calibrate``: fit a system's efficiency parameters to microbenchmarks.

``memsim calibrate --system h200_sxm --measurements microbenchmarks.csv -o my.yaml``
reads the measurements (``section,name,time_s,params_json``, as written by
``memsim measure``), fits every section with scipy least squares
(:mod:`memsim.calibration`), prints the residual per section and each parameter
with its one-sigma uncertainty and provenance, and writes a system YAML that
``--system my.yaml`` uses. ``--format json`` prints
``{"system": ..., "sections": {"gemm": {"median_abs_error": ..., "rows": ...}}, "params": ...}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hw_models import load_system
from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write_text
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"calibrate": "fit a system's efficiency parameters to microbenchmark measurements"}


def _date_of(path: Path) -> str:
    """The measurements' date: the file's modification day (UTC), an input property."""
    stamp = path.stat().st_mtime
    return dt.datetime.fromtimestamp(stamp, tz=dt.UTC).strftime("%Y-%m-%d")


def system_yaml(data: dict[str, Any], *, header: str) -> str:
    """A system spec mapping as YAML with a comment header (keys in spec order)."""
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


def run(args: argparse.Namespace) -> int:
    """Fit, print the residuals and parameters, write the calibrated system."""
    from memsim.calibration import calibrate_system, read_measurements

    out = Path(args.output)
    if out.suffix not in (".yaml", ".yml"):
        raise SpecError([Problem("-o", f"expected a .yaml file, found {out.name!r}")])
    base = load_system(args.system, ceilings=ceilings_from(args))
    path = Path(args.measurements)
    rows = read_measurements(path)
    date = args.date or _date_of(path)
    name = args.name or out.stem
    donor = load_system(args.assume_from) if args.assume_from else None
    system, result = calibrate_system(
        base,
        rows,
        measurements=path,
        date=date,
        name=name,
        gemm_shapes=args.gemm_shapes,
        assume_from=donor,
    )
    data = system.model_dump(mode="json", exclude_none=True)
    header = (
        f"{name}: {base.name} calibrated by `memsim calibrate` on {path.name} ({date}).\n"
        "Efficiency parameters: compute.<unit>.efficiency (value, one-sigma std, provenance).\n"
        "Generated file: re-run memsim calibrate rather than editing the fitted values."
    )
    atomic_write_text(out, system_yaml(data, header=header))
    sections: dict[str, dict[str, Any]] = {
        s: {
            "median_abs_error": f.median_abs_error,
            "p90_abs_error": f.p90_abs_error,
            "max_abs_error": f.max_abs_error,
            "rows": f.rows,
        }
        for s, f in result.sections.items()
    }
    unit = next(u for u in system.compute.values() if u.efficiency is not None)
    assert unit.efficiency is not None
    params: dict[str, dict[str, Any]] = {
        k: {"value": p.value, "std": p.std, "provenance": p.provenance, "source": p.source}
        for k, p in unit.efficiency.params.items()
    }
    if args.format == "json":
        print_json(
            {
                "system": name,
                "output": str(out),
                "sections": sections,
                "params": params,
                "unconstrained": sorted(result.unconstrained),
            }
        )
        return 0
    print(f"calibrated {base.name} on {path.name} ({len(rows)} rows, measured {date})\n")
    print_table(
        [
            [
                s,
                str(v["rows"]),
                f"{100 * v['median_abs_error']:.2f} %",
                f"{100 * v['p90_abs_error']:.1f} %",
                f"{100 * v['max_abs_error']:.1f} %",
            ]
            for s, v in sections.items()
        ],
        ["section", "rows", "median |error|", "p90 |error|", "max |error|"],
    )
    print()
    print_table(
        [
            [
                k,
                f"{p['value']:.4g}",
                f"{p['std']:.2g}" if p["provenance"] != "assumed" else "-",
                f"{100 * p['std'] / p['value']:.1f} %"
                if p["provenance"] != "assumed" and p["value"]
                else "-",
                p["provenance"],
            ]
            for k, p in params.items()
        ],
        ["parameter", "value", "one sigma", "relative", "provenance"],
    )
    if result.unconstrained:
        print(
            f"\nnot constrained by their rows (kept at {donor.name if donor else 'the start'}'s "
            f"values, marked assumed): {', '.join(sorted(result.unconstrained))}"
        )
    print(f"\nwrote {out} (use it with --system {out})")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``calibrate``."""
    p = sub.add_parser(
        "calibrate",
        help=COMMANDS["calibrate"],
        description="Fit the efficiency parameters (GEMM, attention, memory-bound kernels, "
        "launch costs, host links, latency) of a system to microbenchmarks with scipy "
        "least squares and write a calibrated system YAML.",
    )
    p.add_argument("--system", required=True, help="system preset or YAML file to calibrate")
    p.add_argument(
        "--measurements",
        required=True,
        metavar="FILE.csv",
        help="section,name,time_s,params_json rows (memsim measure writes them)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE.yaml", help="system to write")
    p.add_argument(
        "--name", default=None, help="name of the calibrated system (default: file stem)"
    )
    p.add_argument(
        "--date", default=None, help="when the measurements were taken (default: file date)"
    )
    p.add_argument(
        "--gemm-shapes",
        action="store_true",
        help="also store per-shape measured/model ratios of the GEMM rows and apply them "
        "to GEMMs of exactly those shapes (default: the parametric model alone)",
    )
    add_ceiling_options(p)
    p.add_argument(
        "--assume-from",
        default=None,
        metavar="SYSTEM",
        help="a calibrated system whose values the sections without rows, and the parameters "
        "the rows leave undetermined, take (marked assumed): for a few published figures "
        "rather than a full microbenchmark run (e.g. h200_sxm_calibrated)",
    )
    add_format_option(p)
    p.set_defaults(func=run)
