"""``memsim run``: simulate an LLM generation request on a system and summarise it.

With no options it runs an embedded default (Llama-2-7B on one H100, batch 8,
prompt 512, 64 generated tokens) and prints a readable summary.

``--out DIR`` writes ``summary.json``, ``ops.csv``, ``tiers.csv``, ``links.csv``,
``occupancy.csv``, ``timeline.csv``, ``energy.csv``, ``traffic.csv`` and
``trace.json`` (a Chrome trace for Perfetto), plus the run's figures when the
plotting package is installed. Everything is written into a temporary directory
beside DIR and renamed into place at the end, so an error leaves nothing
half-written. An existing DIR is replaced only if it holds a previous run (it
has a ``summary.json``) or is empty; any other existing DIR is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hw_models import System, load_system
from hw_models.engine_profile import with_engine
from hw_models.errors import Problem, SpecError
from hw_models.fileio import make_temp_dir, replace_dir, resolve_target, sweep_stale
from hw_models.units import fmt_bytes, fmt_si
from memsim.cli._limits import add_ceiling_options, ceilings_from, strict_int
from memsim.cli._output import (
    add_format_option,
    print_json,
    print_table,
    stage_progress,
    work_progress,
)
from memsim.graph_fit import fit_graph
from memsim.spill import describe_placement

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "run": "simulate an LLM generation request on a system (default: llama2_7b on h100_sxm)"
}

DEFAULTS: dict[str, Any] = {
    "system": "h100_sxm",
    "model": "llama2_7b",
    "batch": 8,
    "prompt": 512,
    "gen": 64,
}
#: Default ceiling on ``--gen`` (raise it with ``--max-gen``).
MAX_GEN = 16384
DTYPE_CHOICES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
OUT_FILES = ("summary.json", "ops.csv", "tiers.csv", "trace.json")


def build_graph(args: argparse.Namespace) -> Any:
    """The generation graph of ``args`` (model preset or config.json path).

    Hardware-dependent options (the fused-attention buffer) are left open: the model
    decides them from the system (:func:`memsim.graph_fit.fit_graph`), as for the API.
    """
    import workloads

    cfg = workloads.load_model(args.model, ceilings=ceilings_from(args))
    return workloads.generate(
        cfg,
        batch=args.batch,
        prompt_len=args.prompt,
        gen_len=args.gen,
        dtype=args.dtype,
        kv_dtype=args.kv_dtype,
        tp=args.tp,
        pp=getattr(args, "pp", 1),
        attention=getattr(args, "attention", "fused"),
        num_gpu_batches=getattr(args, "num_gpu_batches", 1),
        attention_unit=getattr(args, "attention_unit", None),
        ffn_sparsity=parse_ffn_sparsity(getattr(args, "ffn_sparsity", None)),
    )


def parse_ffn_sparsity(spec: str | None) -> Any:
    """``P[,WINDOW[,PERSISTENCE]]`` -> :class:`workloads.FFNSparsity` (None: dense FFN)."""
    if spec is None:
        return None
    from hw_models.errors import Problem, SpecError
    from workloads import FFNSparsity

    parts = [p.strip() for p in spec.split(",")]
    if not 1 <= len(parts) <= 3:
        raise SpecError(
            [Problem("--ffn-sparsity", f"expected P[,WINDOW[,PERSISTENCE]], found {spec!r}")]
        )
    try:
        p = float(parts[0])
        window = int(parts[1]) if len(parts) > 1 else 5
        rho = float(parts[2]) if len(parts) > 2 else 0.0
    except ValueError:
        raise SpecError(
            [
                Problem(
                    "--ffn-sparsity", f"expected numbers P[,WINDOW[,PERSISTENCE]], found {spec!r}"
                )
            ]
        ) from None
    return FFNSparsity(active_fraction=p, window=window, persistence=rho)


def _supports(system: System, dtype: str) -> bool:
    try:
        system.main_compute(dtype)
    except KeyError:
        return False
    return True


def _check_sizes(args: argparse.Namespace) -> list[Problem]:
    """Sizes refused before anything is built: counts < 1, a context beyond the model's
    maximum position, more generated tokens than the ``--max-gen`` ceiling."""
    import workloads

    problems = []
    for name in ("batch", "prompt", "gen", "tp", "pp"):
        value = getattr(args, name, 1)
        if value < 1:
            problems.append(Problem(f"--{name}", f"expected an integer >= 1, found {value}"))
    if problems:
        return problems
    ceilings_from(args).check_counts(
        [
            ("--batch", "batch", args.batch),
            ("--prompt", "tokens", args.prompt),
            ("--gen", "tokens", args.gen),
            ("--tp", "devices", args.tp),
            ("--pp", "devices", getattr(args, "pp", 1)),
        ]
    )
    cfg = workloads.load_model(args.model, ceilings=ceilings_from(args))
    context = args.prompt + args.gen
    if context > cfg.max_position_embeddings:
        problems.append(
            Problem(
                "--prompt/--gen",
                f"context {args.prompt} + {args.gen} = {context} tokens is above "
                f"{cfg.name}'s maximum position ({cfg.max_position_embeddings}, "
                "max_position_embeddings of its config); shorten the request or give a "
                "config with a longer context",
            )
        )
    max_gen = getattr(args, "max_gen", MAX_GEN)
    if args.gen > max_gen:
        problems.append(
            Problem(
                "--gen",
                f"{args.gen} is above the ceiling of {max_gen} generated tokens (each "
                "decode step is simulated: about 25 ms and 0.5 MB per token for a "
                "32-layer model); raise it with --max-gen N",
            )
        )
    return problems


def _check_args(system: System, args: argparse.Namespace) -> None:
    problems = _check_sizes(args)
    pp = getattr(args, "pp", 1)
    if args.tp * pp > system.devices:
        problems.append(
            Problem(
                "--tp" if pp == 1 else "--pp",
                f"{system.name} has {system.devices} device(s), cannot run tp={args.tp} x "
                f"pp={pp} = {args.tp * pp}",
            )
        )
    if not _supports(system, args.dtype):
        problems.append(
            Problem("--dtype", f"no compute unit of {system.name} supports {args.dtype}")
        )
    if problems:
        raise SpecError(problems)


def run(args: argparse.Namespace) -> int:
    """Simulate and print (and optionally write) the result."""
    from memsim.simulate import simulate

    if args.out is not None:
        check_out(args.out)
    tables = _tables(args)
    system = with_engine(
        load_system(args.system, overrides=args.set or None, ceilings=ceilings_from(args)),
        args.engine,
    )
    _check_args(system, args)
    with stage_progress(4 + (args.out is not None), quiet=args.quiet) as stage:
        stage("building the graph")
        graph = fit_graph(system, build_graph(args))  # what simulate() would run, placed once
        stage("placing tensors")
        placement = place_or_refuse(system, graph, args.policy, allow_spill=args.allow_spill)
        stage(f"simulating {len(graph.ops)} ops ({args.fidelity})")
        with work_progress("op groups", quiet=args.quiet) as progress:
            result = simulate(
                system,
                graph,
                policy=placement,
                fidelity=args.fidelity,
                execution=args.execution,
                dram_config=args.dram_config or None,
                progress=progress,
            )
        stage("summarising")
        summary = result.summary()
        fidelity = calibration_summary(system, graph, summary, args)
        if args.out is not None:
            stage(f"writing {args.out}")
            write_run(result, Path(args.out), tables=tables, table_format=args.table_format)
    if args.format == "json":
        print_json({**summary, **fidelity})
    else:
        print_summary(result, args)
        print("\nPlaced (tensor bytes per tier)")
        for line in describe_placement(system, graph, placement):
            print(f"  {line}")
        print_calibration(fidelity)
    if args.out is not None:
        names = sorted(p.name for p in resolve_target(Path(args.out)).iterdir())
        print(f"\nwrote {args.out}/ ({', '.join(names)})")
    return 0


def _tables(args: argparse.Namespace) -> list[str] | None:
    """The tables ``--tables`` names (None: all), refused early if unknown."""
    from memsim.result import TABLES

    text = getattr(args, "tables", None)
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        raise SpecError(
            [
                Problem(
                    "--tables", f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}"
                )
            ]
        )
    return names


def place_or_refuse(system: System, graph: Any, policy: str, *, allow_spill: bool) -> Any:
    """The placement of ``policy``; a spill off the device stops the run unless allowed."""
    from memsim.simulate import resolve_placement
    from memsim.spill import check_no_spill

    placement = resolve_placement(system, graph, policy)
    if not allow_spill:
        check_no_spill(system, graph, placement)
    return placement


def calibration_summary(
    system: System, graph: Any, summary: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """``calibrated``, ``engine``, ``intervals``: :func:`memsim.uncertainty.calibration_fields`."""
    from memsim.uncertainty import calibration_fields

    return calibration_fields(
        system,
        graph,
        summary,
        policy=args.policy,
        execution=args.execution,
        dram_config=args.dram_config or None,
    )


def print_calibration(fid: dict[str, Any]) -> None:
    """One line on calibration and the intervals of the headline figures."""
    if not fid["calibrated"]:
        print(
            "\nuncalibrated system: analytic roofline efficiencies (assumed), no interval; "
            "calibrate it with `memsim calibrate` (engine profiles apply to calibrated "
            "systems only)"
        )
        return
    print(
        f"\ncalibrated system, engine profile {fid['engine']}; 95 % intervals from the "
        "calibration's parameter uncertainty:"
    )
    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "tokens_per_s": "throughput"}
    rows = []
    for key, (lo, hi) in (fid["intervals"] or {}).items():
        if key == "tokens_per_s":
            rows.append([names[key], f"{lo:.1f} - {hi:.1f} tokens/s"])
        else:
            rows.append([names[key], f"{_t(lo)} - {_t(hi)}"])
    print_table(rows, ["figure", "interval"])


def print_summary(result: Any, args: argparse.Namespace) -> None:
    """A readable summary: headline figures, then tiers, links and where time went."""
    s = result.summary()
    meta = s["meta"]
    print(
        f"{meta['model']} on {meta['system']} ({meta['devices']} device(s)): batch {args.batch}, "
        f"prompt {args.prompt}, {args.gen} generated tokens, {args.dtype}; "
        f"policy {meta['policy']}, {meta['execution']} execution, {meta['fidelity']} engine"
    )
    rows = [
        ["time to first token (prefill)", _t(s.get("ttft_s"))],
        ["time per output token (decode)", _t(s.get("tpot_s"))],
        ["throughput", f"{s['tokens_per_s']:.1f} tokens/s" if s.get("tokens_per_s") else "-"],
        ["total time", _t(s["makespan_s"])],
        [
            "energy",
            f"{s['energy_j']:.3g} J"
            + (f" ({s['energy_per_token_j']:.3g} J/token)" if s.get("energy_per_token_j") else ""),
        ],
        ["model FLOP utilisation", f"{100 * s['mfu']:.1f} %" if s.get("mfu") is not None else "-"],
        ["achieved off-chip bandwidth", fmt_si(s["achieved_bandwidth_bytes_per_s"] or 0.0, "B/s")],
        ["bottleneck", _bottleneck(s)],
    ]
    print()
    print_table(rows, ["figure", "value"])
    print("\nTiers")
    tiers = result.tiers_frame()
    print_table(
        [
            [
                r.tier,
                r.kind,
                fmt_bytes(r.bytes_read),
                fmt_bytes(r.bytes_written),
                fmt_bytes(r.peak_bytes),
                fmt_bytes(r.capacity_bytes),
                _t(r.busy_s),
            ]
            for r in tiers.itertuples()
        ],
        ["tier", "kind", "read", "written", "peak use", "capacity", "busy"],
    )
    for name, fid in s["meta"].get("tier_fidelity", {}).items():
        if fid.get("fidelity") != "request":
            continue
        if fid.get("bandwidth_fraction") is None:
            print(f"  {name}: request fidelity, no traffic reached it (nothing to calibrate)")
            continue
        print(
            f"  {name}: request fidelity ({fid.get('device')} x {fid.get('count')}), "
            f"{100 * fid['bandwidth_fraction']:.1f} % of peak, "
            f"read latency {_t(fid['latency_s'])} from the DRAM controller"
        )
    links = result.links_frame()
    if len(links):
        print("\nLinks")
        print_table(
            [[r.link, r.kind, fmt_bytes(r.bytes), _t(r.busy_s)] for r in links.itertuples()],
            ["link", "kind", "moved", "busy"],
        )
    ops = result.ops_frame()
    print("\nWhere the time goes (op time by phase and bound)")
    by = ops.groupby(["phase", "bound"], sort=False)["duration_s"].agg(["sum", "count"])
    print_table(
        [[ph, b, _t(row["sum"]), int(row["count"])] for (ph, b), row in by.iterrows()],
        ["phase", "bound by", "time", "ops"],
    )


def _t(x: float | None) -> str:
    return "-" if x is None else fmt_si(float(x), "s")


def _bottleneck(s: dict[str, Any]) -> str:
    b = s.get("bottleneck")
    times = s.get("bound_time_s") or {}
    total = sum(times.values()) or 1.0
    return f"{b} ({100 * times.get(b, 0.0) / total:.0f} % of op time)" if b else "-"


def check_out(out: str | Path, *, marker: str = "summary.json") -> None:
    """Refuse an ``--out`` that cannot take a run, before any work is done.

    An empty name, a path that exists and is not a folder, or a folder that holds
    something other than a previous run (no ``marker`` file) is refused. The stale
    temporaries of killed runs beside it are swept first (restoring a folder whose
    replacement was interrupted).
    """
    if not str(out).strip():
        raise SpecError([Problem("--out", "expected a folder name, found an empty string")])
    out = Path(out)
    real = resolve_target(out)
    sweep_stale(real)
    if real.exists():
        if not real.is_dir():
            raise SpecError([Problem("--out", f"{out} exists and is not a directory")])
        if any(real.iterdir()) and not (real / marker).exists():
            raise SpecError(
                [
                    Problem(
                        "--out",
                        f"{out} exists and does not hold a previous memsim run; not overwriting it",
                    )
                ]
            )


def write_run(
    result: Any,
    out: Path,
    *,
    tables: Sequence[str] | None = None,
    table_format: str = "csv",
    figures: bool = True,
) -> Path:
    """Write the run's files into ``out`` atomically (temporary folder, then one swap).

    ``tables`` picks which tables are written (default: all of
    :data:`memsim.result.TABLES`), ``table_format`` writes them as ``csv`` or
    ``parquet``.
    """
    check_out(out)
    tmp = make_temp_dir(out)
    try:
        (tmp / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
        result.write_tables(tmp, tables=tables, fmt=table_format)
        result.to_chrome_trace(tmp / "trace.json")
        if figures:
            _figures(result, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return replace_dir(tmp, out)


def _figures(result: Any, out: Path) -> None:
    """The run's roofline, timeline and occupancy figures (plots.write_run_figures)."""
    from plots import write_run_figures

    write_run_figures(result, out)


def add_parser(sub: Any) -> None:
    """Register ``run``."""
    p = sub.add_parser(
        "run",
        help=COMMANDS["run"],
        description="Simulate prefill + decode of a model on a system and summarise time, "
        "bottlenecks, memory use and energy.",
    )
    p.add_argument("--system", default=DEFAULTS["system"], help="system preset or YAML file")
    p.add_argument("--model", default=DEFAULTS["model"], help="model preset or config.json")
    p.add_argument(
        "--batch", type=strict_int, default=DEFAULTS["batch"], help="sequences in the batch"
    )
    p.add_argument("--prompt", type=strict_int, default=DEFAULTS["prompt"], help="prompt tokens")
    p.add_argument("--gen", type=strict_int, default=DEFAULTS["gen"], help="generated tokens")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="bf16", help="weight/compute dtype")
    p.add_argument("--kv-dtype", choices=DTYPE_CHOICES, default=None, help="KV-cache dtype")
    p.add_argument("--tp", type=strict_int, default=1, help="tensor-parallel devices")
    p.add_argument(
        "--pp", type=strict_int, default=1, help="pipeline stages (each on its own devices)"
    )
    p.add_argument("--policy", default="fastest_fit", help="placement policy (see docs/engine.md)")
    p.add_argument(
        "--ffn-sparsity",
        default=None,
        metavar="P[,K[,RHO]]",
        help="decode FFN activation sparsity (LLM in a flash windowing): active fraction P, "
        "window K tokens (default 5), lag-1 persistence RHO (default 0); with --policy "
        "flash_ffn or flash_ffn_bundled",
    )
    p.add_argument(
        "--num-gpu-batches",
        type=int,
        default=1,
        metavar="K",
        help="FlexGen's block schedule: the batch runs as K GPU batches that share each "
        "layer's weight fetch (see docs/engine.md, FlexGen)",
    )
    p.add_argument(
        "--attention-unit",
        default=None,
        metavar="UNIT",
        help="compute unit that runs decode attention, e.g. cpu on t4_flexgen (FlexGen "
        "--cpu: attention where the KV cache lives in host memory)",
    )
    p.add_argument(
        "--allow-spill",
        action="store_true",
        help="let fastest_fit put what does not fit on the device in host memory "
        "(default: stop with exit 2, naming the tier and the shortfall)",
    )
    p.add_argument("--fidelity", choices=["event", "analytic"], default="event")
    p.add_argument(
        "--execution",
        choices=["kernel", "dataflow"],
        default=None,
        help="execution model (default: dataflow on dataflow compute units, else kernel)",
    )
    p.add_argument(
        "--attention",
        default="fused",
        metavar="NAME",
        help="attention cost model: fused (tiles K/V through the main compute unit's "
        "local SRAM), fused_fa2, unfused (scores go to memory)",
    )
    p.add_argument(
        "--engine",
        default=None,
        metavar="NAME|FILE.yaml",
        help="software stack calibrated systems are priced for: cuda_graphs (default; "
        "PyTorch ops with fused QKV/gate-up, SDPA, one CUDA graph per step), eager, fused, "
        "or an engine-profile YAML",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="dotted system override, repeatable (e.g. tiers.hbm.fidelity=request)",
    )
    p.add_argument(
        "--dram-config",
        action="append",
        metavar="KEY=VALUE",
        help="DRAM controller setting for tiers at request fidelity, repeatable "
        "(e.g. row_policy=closed, scheduler=fcfs)",
    )
    add_format_option(p)
    p.add_argument(
        "--out", default=None, metavar="DIR", help="write tables, trace and figures here"
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (it shows only on a terminal anyway)",
    )
    p.add_argument(
        "--tables",
        default=None,
        metavar="LIST",
        help="tables --out writes, comma-separated (default all: ops,traffic,tiers,links,"
        "occupancy,timeline,energy; the timeline is the largest); empty: none",
    )
    p.add_argument(
        "--table-format",
        choices=["csv", "parquet"],
        default="csv",
        help="format of the --out tables (parquet is several times smaller)",
    )
    p.add_argument(
        "--max-gen",
        type=strict_int,
        default=MAX_GEN,
        metavar="N",
        help=f"ceiling on --gen (default {MAX_GEN:,}), a guard against typos",
    )
    add_ceiling_options(p)
    p.set_defaults(func=run)
