"""``memsim report RESULT_DIR -o report.html``: one self-contained HTML page of a run.

Reads what ``memsim run --out DIR`` wrote (``summary.json``, ``ops.csv``, ``tiers.csv``,
``trace.json``, figures) and embeds everything (figures as base64 PNG or inline SVG).
A missing or invalid RESULT_DIR is a user error (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"report": "one self-contained HTML page of a `memsim run --out` DIR"}


def run(args: argparse.Namespace) -> int:
    """Write the report."""
    import matplotlib

    matplotlib.use("Agg")
    from plots.report import write_report

    path = write_report(args.result_dir, args.output, title=args.title)
    print(f"wrote {path}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``report``."""
    p = sub.add_parser("report", help=COMMANDS["report"])
    p.add_argument("result_dir", metavar="RESULT_DIR")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="HTML file")
    p.add_argument("--title", help="page title (default: model on system)")
    p.set_defaults(func=run)
