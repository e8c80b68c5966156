"""``memsim measure -o FILE.csv``: run the GPU microbenchmark harness on this machine.

Examples::

    memsim measure -o my_gpu.csv                      # every section, a minute or two
    memsim measure -o my_gpu.csv --quick --budget-s 120
    memsim measure -o gemm.csv --sections gemm,attention

Writes ``FILE.csv`` in the format of ``shared/calibration/h200_sxm/microbenchmarks.csv``
(``section,name,time_s,params_json``; rows flushed as they are measured) and
``FILE.csv.env.json`` (versions, device, SMs, L2, memory, clocks). PyTorch is imported
only when this runs (``pip install memsim[measure]``, with a CUDA build of torch).
The same harness runs standalone: ``python3 memsim/measure/harness.py -o FILE.csv``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hw_models.errors import Problem, SpecError

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "measure": "run GPU microbenchmarks (GEMM, bandwidth, launch, attention, ...) into a CSV "
    "that `memsim calibrate` reads"
}


SECTIONS = (
    "gemm",
    "memory",
    "pcie",
    "launch",
    "elementwise",
    "attention",
    "latency",
    "layer_ops",
    "graph_checks",
)
EXIT_USER_ERROR = 2


def run(args: argparse.Namespace) -> int:
    """Check the machine, then measure in-process."""
    wanted = [s.strip() for s in (args.sections or "").split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise SpecError(
            [Problem("--sections", f"unknown section {unknown[0]!r}; known: {', '.join(SECTIONS)}")]
        )
    if args.budget_s is not None and not args.budget_s > 0:
        raise SpecError([Problem("--budget-s", f"expected seconds > 0, found {args.budget_s}")])
    try:
        import torch
    except ImportError:
        print(
            "memsim: error: `memsim measure` needs PyTorch with CUDA "
            "(pip install 'memsim[measure]'); torch is not installed",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "memsim: error: `memsim measure` needs an NVIDIA GPU visible to PyTorch; "
            f"none found (torch {torch.__version__})",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    from memsim.measure import harness

    sections = harness.parse_sections(",".join(wanted))
    rows = harness.run(
        args.output,
        sections=sections,
        quick=args.quick,
        budget_s=args.budget_s,
        device=args.device,
    )
    print(f"wrote {rows} rows to {args.output} (machine description: {args.output}.env.json)")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``measure``."""
    p = sub.add_parser(
        "measure",
        help=COMMANDS["measure"],
    )
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--quick", action="store_true", help="fewer sizes per section")
    p.add_argument(
        "--sections", default="", help=f"comma-separated subset of {','.join(SECTIONS)} (all)"
    )
    p.add_argument(
        "--budget-s", type=float, default=None, help="wall-clock allowance; later rows skipped"
    )
    # hidden: tiny sizes on the CPU, to test the code paths without a GPU
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
