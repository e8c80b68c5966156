"""``memsim show SYSTEM``: a system with its derived figures."""

from __future__ import annotations

import argparse
from typing import Any

from hw_models import load_system
from hw_models.units import fmt_bytes, fmt_si
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"show": "print a system (preset name or YAML file) with derived figures"}


def run(args: argparse.Namespace) -> int:
    """Print one system."""
    system = load_system(args.system, overrides=args.set or None, ceilings=ceilings_from(args))
    s = system.summary()
    if args.format == "json":
        print_json(s)
        return 0
    print(f"{s['name']}: {s['description']}")
    print(f"devices: {s['devices']}   spec hash: {s['spec_hash']}")
    print(f"\nCompute ({s['main_compute']}, per device)")
    print_table(
        [[d, fmt_si(v, "FLOP/s")] for d, v in s["peak_flops_per_s"].items()], ["dtype", "peak"]
    )
    print("\nTiers")
    rows = [
        [
            n,
            t["kind"],
            t["scope"],
            fmt_bytes(t["capacity_bytes"]),
            fmt_si(t["read_bandwidth_bytes_per_s"], "B/s"),
            fmt_si(t["latency_s"], "s"),
            f"{t['ridge_point_flop_per_byte']:.1f}",
        ]
        for n, t in s["tiers"].items()
    ]
    print_table(
        rows,
        [
            "tier",
            "kind",
            "scope",
            "capacity",
            "bandwidth",
            "latency",
            f"ridge ({s['ridge_point_dtype']} FLOP/B)",
        ],
    )
    if s["links"]:
        print("\nLinks")
        print_table(
            [
                [
                    n,
                    lk["kind"],
                    " <-> ".join(lk["between"]),
                    fmt_si(lk["bandwidth_bytes_per_s"], "B/s"),
                ]
                for n, lk in s["links"].items()
            ],
            ["link", "kind", "between", "bandwidth"],
        )
    print("\nSources")
    for src in s["sources"]:
        print(f"  - {src['title']}" + (f" ({src['where']})" if src.get("where") else ""))
    return 0


def add_parser(sub: Any) -> None:
    """Register ``show``."""
    p = sub.add_parser("show", help=COMMANDS["show"])
    p.add_argument("system", help="preset name (see `memsim presets`) or a YAML file")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="dotted override, repeatable"
    )
    add_format_option(p)
    add_ceiling_options(p)
    p.set_defaults(func=run)
