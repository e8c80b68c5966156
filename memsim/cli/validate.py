"""``memsim validate``: reproduce the field's published results, one table.

memsim validate                         # every case, the table on stdout
memsim validate --quick                 # the fast subset CI runs
memsim validate --case h200_tpot --format json
memsim validate -o docs/validation.md   # regenerate the validation document
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"validate": "reproduce published results (docs/validation.md)"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help=COMMANDS["validate"],
        description="Run the validation cases: paper figure, memsim figure, error, tolerance.",
    )
    p.add_argument("--quick", action="store_true", help="only the fast cases (what CI runs)")
    p.add_argument(
        "--case", action="append", default=None, metavar="NAME", help="run this case (repeatable)"
    )
    p.add_argument("-o", "--out", default=None, help="also write the Markdown document here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    add_format_option(p)
    p.set_defaults(func=run)


def _fmt(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.4g}"


def run(args: argparse.Namespace) -> int:
    from validation import get_cases, render_markdown, run_cases

    cases = get_cases(args.case, quick=args.quick)
    show = sys.stderr.isatty() and not args.quiet

    def progress(name: str) -> None:
        if show:
            print(f"memsim validate: {name} ...", file=sys.stderr, flush=True)

    results = run_cases(cases, progress=progress)
    if args.out is not None:
        from hw_models.fileio import atomic_write_text

        atomic_write_text(Path(args.out), render_markdown(results, quick=args.quick) + "\n")
    if args.format == "json":
        print_json({"cases": [r.to_dict() for r in results]})
        return 0
    rows = [
        (
            r.name,
            _fmt(r.paper),
            _fmt(r.memsim),
            "—" if not math.isfinite(r.error) else f"{r.error * 100:+.1f} %",
            f"{r.tolerance} ({r.criterion})",
            "pass" if r.passed else "FAIL",
        )
        for r in results
    ]
    print_table(rows, ("case", "paper", "memsim", "error", "tolerance", "result"))
    print(f"\n{sum(r.passed for r in results)} of {len(results)} cases pass")
    return 0
