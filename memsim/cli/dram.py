"""``memsim dram``: one DRAM device behind the request-level controller.

memsim dram --device DDR4_3200 --pattern random --requests 100000
memsim dram --device DDR4_3200 --pattern random --rate 0.3
memsim dram --device HBM3 --trace app.trace --trace-format dramsim3 --format json
memsim dram --device DDR5_4800 --pattern mix --scheduler fcfs --set write_queue_size=64
memsim dram --device DDR4_3200 --pattern random --config best.json

Latency, as Ramulator 2 and DRAMsim3 report it: a read's latency runs from its
admission into the controller's scheduler buffer to the end of its data burst.
The front end offers one request per cycle while the buffer has room for it;
the time a request waited for a slot (arrival to admission) is reported apart
("wait for a buffer slot").

Offered load: by default a synthetic pattern is a backlogged source (every request
arrives at cycle 0), which measures the bandwidth the device sustains; its requests then
spend most of their time waiting for a buffer slot. ``--rate F`` offers ``F`` x the peak
bandwidth instead (one burst every ``burst / (F x peak)`` s; ``--interval-cycles`` gives
the spacing in cycles directly). A run is reported ``saturated`` when the device
delivered less than 90 % of the offered bandwidth (always for a backlogged source); the
table then says so.

Address mapping: ``--mapping`` (or ``--set mapping=...``), else the default for the
device's standard used across memsim (``RoCoBaRaCh`` for DDR/LPDDR/GDDR, which
interleaves a stream over bank groups; ``RoRaBaChCo`` for HBM).
"""

from __future__ import annotations

import argparse
from typing import Any

from hw_models import load_dram_device
from hw_models.errors import Problem, SpecError
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table, stage_progress

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"dram": "simulate a DRAM device request by request (JEDEC timing, scheduler, energy)"}

#: A run delivering less than this share of the offered bandwidth is saturated.
SATURATION_THRESHOLD = 0.9

#: Default ceiling on ``--requests`` (raise it with ``--max-requests``).
MAX_REQUESTS = 50_000_000

#: Working memory per synthetic request, measured: the trace, the decoded
#: addresses and the controller's per-request arrays (int64 each).
BYTES_PER_REQUEST = 200


def _load(stats: Any, trace: Any) -> dict[str, Any]:
    """Offered bandwidth, saturation, and the latency of the fastest read for context."""
    last_arrival_s = float(trace.arrival_cycle.max()) * stats.tck_ns * 1e-9 if len(trace) else 0.0
    offered = stats.bytes / last_arrival_s if last_arrival_s > 0 else float("inf")
    saturated = stats.bandwidth_bytes_per_s < SATURATION_THRESHOLD * offered
    return {
        "offered_bandwidth_gbps": offered / 1e9,
        "offered_peak_fraction": offered / stats.peak_bandwidth_bytes_per_s,
        "saturated": bool(saturated),
        "min_read_latency_ns": stats.min_read_latency_cycles * stats.tck_ns,
    }


def _summary(stats: Any) -> dict[str, Any]:
    return {
        "device": stats.device,
        "requests": stats.requests,
        "reads": stats.reads,
        "writes": stats.writes,
        "bandwidth_gbps": stats.bandwidth_gbps,
        "peak_bandwidth_gbps": stats.peak_bandwidth_bytes_per_s / 1e9,
        "peak_fraction": stats.peak_fraction,
        "avg_read_latency_ns": stats.avg_read_latency_ns,
        "p50_read_latency_ns": stats.p50_read_latency_ns,
        "p99_read_latency_ns": stats.p99_read_latency_ns,
        "avg_read_latency_cycles": stats.avg_read_latency_cycles,
        "avg_admission_wait_ns": stats.avg_admission_wait_ns,
        "p99_admission_wait_ns": stats.p99_admission_wait_cycles * stats.tck_ns,
        "max_admission_wait_ns": stats.max_admission_wait_cycles * stats.tck_ns,
        "row_hits": stats.row_hits,
        "row_misses": stats.row_misses,
        "row_conflicts": stats.row_conflicts,
        "commands": stats.commands,
        "avg_read_queue": stats.avg_read_queue,
        "avg_write_queue": stats.avg_write_queue,
        "refresh_busy_cycles": stats.refresh_busy_cycles,
        "energy_j": stats.energy_j,
        "energy_by_command_j": stats.energy_by_command_j,
        "energy_background_j": stats.energy_background_j,
        "duration_s": stats.duration_s,
        "violations": stats.violations,
        "checked": stats.checked,
        "config": stats.config,
    }


def run(args: argparse.Namespace) -> int:
    """Simulate a trace or a synthetic pattern and print the statistics."""
    from memsim.dram import ControllerConfig, RequestTrace, simulate_requests, traffic
    from memsim.request_fidelity import DEFAULT_MAPPING

    device = load_dram_device(args.device, ceilings=ceilings_from(args))
    base: dict[str, Any] = {}
    if args.config is not None:
        from_file = ControllerConfig.from_file(args.config)
        base = from_file.model_dump(include=from_file.model_fields_set)
    for key in ("scheduler", "row_policy", "mapping"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    default_mapping = DEFAULT_MAPPING.get(str(device.standard))
    if "mapping" not in base and default_mapping is not None:
        base["mapping"] = default_mapping
    config = ControllerConfig.parse(base, prefix="controller").with_overrides(args.set or [])
    if (args.trace is None) == (args.pattern is None):
        raise SpecError([Problem("", "give either --trace FILE or --pattern NAME")])
    if args.trace is not None:
        if args.trace_format is None:
            raise SpecError([Problem("trace_format", "--trace needs --trace-format")])
        if args.rate is not None:
            raise SpecError([Problem("--rate", "applies to --pattern; a trace has its own times")])
        trace = RequestTrace.from_file(args.trace, format=args.trace_format)
    else:
        problems = []
        if args.requests <= 0:
            problems.append(Problem("requests", f"expected a count > 0, found {args.requests}"))
        elif args.requests > args.max_requests:
            problems.append(
                Problem(
                    "--requests",
                    f"{args.requests} is above the ceiling of {args.max_requests} requests "
                    f"(about {args.max_requests * BYTES_PER_REQUEST / 2**30:.1f} GiB of "
                    "working memory); raise it with --max-requests N if the machine has "
                    "the memory",
                )
            )
        if args.seed < 0:
            problems.append(Problem("--seed", f"expected an integer >= 0, found {args.seed}"))
        if args.rate is not None and not args.rate > 0:
            problems.append(
                Problem("--rate", f"expected a fraction of peak > 0, found {args.rate}")
            )
        if args.rate is not None and args.interval_cycles:
            problems.append(Problem("--rate", "give --rate or --interval-cycles, not both"))
        if problems:
            raise SpecError(problems)
        interval = (
            traffic.interval_for_rate(device, args.rate)
            if args.rate is not None
            else args.interval_cycles
        )
        kwargs: dict[str, Any] = {"seed": args.seed, "interval_cycles": interval}
        if args.write_fraction is not None:
            kwargs["write_fraction"] = args.write_fraction
        trace = traffic.PATTERNS.create(args.pattern, device, args.requests, **kwargs)
    with stage_progress(1, quiet=args.quiet) as stage:  # a terminal only
        stage(f"simulating {len(trace)} requests on {device.name}")
        stats = simulate_requests(device, trace, config=config, check=not args.no_check)
    load = _load(stats, trace)
    out = _summary(stats) | load | {"mapping": config.mapping}
    if args.format == "json":
        print_json(out)
        return 0
    print(f"{stats.device}: {stats.requests} requests ({stats.reads} reads, {stats.writes} writes)")
    mapping_origin = (
        "--mapping/--set" if config.mapping != default_mapping else f"{device.standard} default"
    )
    offered = (
        "backlogged: all requests at t=0"
        if load["offered_bandwidth_gbps"] == float("inf")
        else f"{load['offered_bandwidth_gbps']:.2f} GB/s "
        f"({100 * load['offered_peak_fraction']:.1f} % of peak)"
    )
    rows = [
        [
            "bandwidth",
            f"{stats.bandwidth_gbps:.2f} GB/s ({100 * stats.peak_fraction:.1f} % of peak)",
        ],
        ["offered load", offered],
        ["address mapping", f"{config.mapping} ({mapping_origin})"],
        ["read latency avg", f"{stats.avg_read_latency_ns:.1f} ns"],
        ["read latency min", f"{load['min_read_latency_ns']:.1f} ns"],
        ["read latency p50", f"{stats.p50_read_latency_ns:.1f} ns"],
        ["read latency p99", f"{stats.p99_read_latency_ns:.1f} ns"],
        [
            "wait for a buffer slot avg/p99",
            f"{stats.avg_admission_wait_ns:.1f}/"
            f"{stats.p99_admission_wait_cycles * stats.tck_ns:.1f} ns",
        ],
        ["row hits/misses/conflicts", f"{stats.row_hits}/{stats.row_misses}/{stats.row_conflicts}"],
        ["commands", " ".join(f"{k}={v}" for k, v in stats.commands.items() if v)],
        ["avg queue (read/write)", f"{stats.avg_read_queue:.1f}/{stats.avg_write_queue:.1f}"],
        ["refresh busy", f"{stats.refresh_busy_cycles} cycles"],
        ["energy", f"{stats.energy_j * 1e6:.3f} uJ"],
        ["protocol violations", str(stats.violations) if stats.checked else "not checked"],
    ]
    print_table(rows, ["metric", "value"])
    if load["saturated"]:
        print(
            f"note: saturated run: the device delivered {stats.bandwidth_gbps:.2f} GB/s, "
            f"less than the offered load ({offered}); requests waited for a buffer slot "
            f"({stats.avg_admission_wait_ns:.0f} ns on average, not part of the read "
            "latency, which starts at admission). "
            "For latency under load, offer less: --rate 0.3 (fraction of peak bandwidth)."
        )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``dram``."""
    from memsim.dram.mapping import MAPPING_NAMES
    from memsim.dram.policies import ROW_POLICIES, SCHEDULERS
    from memsim.dram.traffic import PATTERNS
    from workloads.formats.dram_traces import FORMATS

    p = sub.add_parser(
        "dram",
        help=COMMANDS["dram"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", required=True, help="DRAM preset (see `memsim presets`) or YAML")
    src = p.add_argument_group("traffic (one of)")
    src.add_argument("--trace", help="trace file")
    src.add_argument("--trace-format", choices=list(FORMATS), help="format of --trace")
    src.add_argument("--pattern", choices=PATTERNS.names(), help="synthetic traffic")
    src.add_argument("--requests", type=int, default=100_000, help="requests for --pattern")
    src.add_argument(
        "--max-requests",
        type=int,
        default=MAX_REQUESTS,
        help=f"ceiling on --requests (default {MAX_REQUESTS:,}), a guard against typos",
    )
    src.add_argument(
        "--rate",
        type=float,
        help="offered load as a fraction of peak bandwidth, e.g. 0.3 (default: backlogged)",
    )
    src.add_argument(
        "--interval-cycles", type=float, default=0.0, help="arrival spacing in tCK (0: backlogged)"
    )
    src.add_argument("--write-fraction", type=float, help="share of writes for --pattern")
    src.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--config",
        metavar="FILE",
        help="controller settings from a YAML or JSON file (see ControllerConfig); "
        "--scheduler, --row-policy, --mapping and --set apply on top",
    )
    p.add_argument("--scheduler", help=f"one of {', '.join(SCHEDULERS.names())}")
    p.add_argument("--row-policy", dest="row_policy", help=f"one of {', '.join(ROW_POLICIES)}")
    p.add_argument(
        "--mapping",
        help=f"one of {', '.join(MAPPING_NAMES)} (default: the device standard's, see above)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="controller setting, repeatable"
    )
    p.add_argument("--no-check", action="store_true", help="skip the protocol checker")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line on stderr (it shows only on a terminal anyway)",
    )
    add_ceiling_options(p)
    add_format_option(p)
    p.set_defaults(func=run)
