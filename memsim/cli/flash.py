"""``memsim flash``: a flash device's reads under queue depth, or its write path.

Examples::

    memsim flash --device apple_m1_max_1tb --pattern random --request-bytes 4KiB --queue-depth 32
    memsim flash --device samsung_pm9a3_7t68 --request-bytes 4KiB,64KiB,1MiB --queue-depth 1,8,32
    memsim flash --device my_ssd.yaml --writes --pattern random --request-bytes 16KiB
    memsim flash --device samsung_pm9a3_7t68 --writes --map-unit 16KiB   # page-mapped FTL
    memsim flash --list

``--request-bytes`` and ``--queue-depth`` take comma-separated lists: every pair is run.

Writes: the FTL maps ``--map-unit`` logical units (default 4 KiB) and packs them into
pages. ``WA`` is its write amplification (GC copies), comparable with the greedy
estimate; ``RMW`` is the read-modify-write factor of writes smaller than (or not a
multiple of) the unit; ``NAND/host`` is their product, the NAND bytes per host byte.
"""

from __future__ import annotations

import argparse
from typing import Any

from hw_models.errors import Problem, SpecError
from hw_models.flash_presets import flash_device_names, load_flash_device
from hw_models.units import UnitError, fmt_bytes, fmt_si, parse_quantity
from memsim.cli._limits import add_ceiling_options, ceilings_from, count_problem, strict_int
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "flash": "flash device: read throughput vs request size and queue depth, or writes with GC"
}


#: Default ceiling on ``--requests`` (raise it with ``--max-requests``): about a
#: minute of simulation (a million random 4 KiB reads take about 7 s).
MAX_REQUESTS = 10_000_000

#: Working memory per request, measured (a million reads peak near 250 MB).
BYTES_PER_REQUEST = 160


def _sizes(text: str, option: str) -> list[int]:
    out = []
    for part in text.split(","):
        try:
            value = parse_quantity(part.strip(), "bytes")
        except UnitError as err:
            raise SpecError([Problem(option, str(err))]) from None
        if value < 1 or value != int(value):
            raise SpecError(
                [Problem(option, f"expected a whole number of bytes >= 1, found {part!r}")]
            )
        out.append(int(value))
    return out


def _ints(text: str, option: str) -> list[int]:
    out = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise SpecError([Problem(option, f"expected an integer, found {part!r}")]) from None
        if value < 1:
            raise SpecError([Problem(option, f"expected an integer >= 1, found {value}")])
        out.append(value)
    return out


def _list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in flash_device_names():
        dev = load_flash_device(name)
        g = dev.geometry
        rows.append(
            {
                "name": name,
                "description": dev.description,
                "user_capacity_bytes": g.user_capacity_bytes,
                "peak_read_bytes_per_s": g.peak_read_bandwidth_bytes_per_s,
                "peak_read_iops": g.peak_read_iops,
            }
        )
    if args.format == "json":
        print_json(rows)
        return 0
    print_table(
        [
            [
                r["name"],
                fmt_si(r["user_capacity_bytes"], "B"),
                fmt_si(r["peak_read_bytes_per_s"], "B/s"),
                fmt_si(r["peak_read_iops"], "IOPS"),
                r["description"],
            ]
            for r in rows
        ],
        ["device", "capacity", "peak read", "peak 4K IOPS", "description"],
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the flash model and print the result."""
    from memsim.flash import simulate_flash_reads, simulate_flash_writes  # numba, scipy

    if args.list:
        return _list(args)
    if args.device is None:
        known = ", ".join(flash_device_names())
        raise SpecError([Problem("--device", f"a device is required (known: {known})")])
    problem = count_problem(
        args.requests,
        option="--requests",
        ceiling=args.max_requests,
        raise_with="--max-requests",
        bytes_each=BYTES_PER_REQUEST,
        what="requests",
    )
    if problem:
        raise SpecError([problem])
    if args.seed < 0:
        raise SpecError([Problem("--seed", f"expected an integer >= 0, found {args.seed}")])
    dev = load_flash_device(args.device, overrides=args.set or None, ceilings=ceilings_from(args))
    sizes = _sizes(args.request_bytes, "--request-bytes")
    if args.writes:
        (unit,) = _sizes(args.map_unit, "--map-unit") if args.map_unit else [None]
        rows: list[dict[str, Any]] = [
            {"device": dev.name, "mode": "write"}
            | simulate_flash_writes(
                dev,
                request_bytes=s,
                requests=args.requests,
                pattern=args.pattern,
                precondition=not args.no_precondition,
                map_unit_bytes=unit,
                seed=args.seed,
            ).to_dict()
            for s in sizes
        ]
        if args.format == "json":
            print_json(rows)
            return 0
        print_table(
            [
                [
                    fmt_bytes(r["request_bytes"]),
                    r["pattern"],
                    fmt_bytes(r["map_unit_bytes"]),
                    f"{r['write_amplification']:.3f}",
                    f"{r['greedy_wa_estimate']:.3f}",
                    f"{r['rmw_factor']:.3g}",
                    f"{r['nand_bytes_per_host_byte']:.3f}",
                    fmt_si(r["throughput_bytes_per_s"], "B/s"),
                    fmt_si(r["gc_time_s"], "s"),
                    "-"
                    if r["endurance_used_fraction"] is None
                    else f"{r['endurance_used_fraction']:.3g}",
                ]
                for r in rows
            ],
            ["size", "pattern", "map unit", "WA", "greedy WA est.", "RMW", "NAND/host",
             "throughput", "GC time", "TBW used"],
        )  # fmt: skip
        return 0
    qds = (
        _ints(args.queue_depth, "--queue-depth") if args.queue_depth else [dev.geometry.queue_depth]
    )
    rows = [
        {"device": dev.name, "mode": "read"}
        | simulate_flash_reads(
            dev,
            request_bytes=s,
            queue_depth=q,
            requests=args.requests,
            pattern=args.pattern,
            seed=args.seed,
        ).to_dict()
        for s in sizes
        for q in qds
    ]
    if args.format == "json":
        print_json(rows)
        return 0
    print(f"{dev.name}: {dev.description}")
    print_table(
        [
            [
                fmt_bytes(r["request_bytes"]),
                r["queue_depth"],
                r["pattern"],
                fmt_si(r["throughput_bytes_per_s"], "B/s"),
                fmt_si(r["iops"], "IOPS"),
                fmt_si(r["mean_latency_s"], "s"),
                fmt_si(r["p99_latency_s"], "s"),
                f"{r['throughput_bytes_per_s'] / r['peak_bytes_per_s']:.0%}",
            ]
            for r in rows
        ],
        ["size", "QD", "pattern", "throughput", "IOPS", "mean lat", "p99 lat", "of peak"],
    )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``flash``."""
    p = sub.add_parser(
        "flash",
        help=COMMANDS["flash"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", help="preset name (see --list) or a flash device YAML file")
    p.add_argument("--list", action="store_true", help="list the shipped flash devices")
    p.add_argument("--pattern", default="random", help="random | sequential (default random)")
    p.add_argument("--request-bytes", default="4KiB", help="request size(s), e.g. 4KiB,64KiB")
    p.add_argument("--queue-depth", default=None, help="outstanding requests, e.g. 1,8,32")
    p.add_argument("--requests", type=strict_int, default=5000, help="requests to simulate")
    p.add_argument(
        "--max-requests",
        type=strict_int,
        default=MAX_REQUESTS,
        metavar="N",
        help=f"ceiling on --requests (default {MAX_REQUESTS:,}), a guard against typos",
    )
    p.add_argument("--writes", action="store_true", help="simulate writes (FTL, greedy GC)")
    p.add_argument(
        "--map-unit",
        default=None,
        help="writes: FTL mapping unit, a divisor of the page (default 4KiB; page = page-mapped)",
    )
    p.add_argument(
        "--no-precondition", action="store_true", help="writes: start from an empty device"
    )
    p.add_argument("--seed", type=strict_int, default=0)
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override, e.g. geometry.tR_s=60us"
    )
    add_ceiling_options(p)
    add_format_option(p)
    p.set_defaults(func=run)
