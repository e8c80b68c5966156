"""``memsim serve``: requests arriving at a server, continuous batching, paged KV, SLO metrics.

With no options it serves 1,000 Poisson requests at 4 requests/s (prompts
lognormal around 512 tokens, outputs around 128) of Llama-2-7B on one H100 with
vLLM-style continuous batching, and prints the latency and throughput summary.

``--rates a,b,c`` serves the same requests at each arrival rate (the load
curve). ``--out DIR`` writes ``summary.json``, ``requests.csv`` and
``iterations.csv`` (plus ``.parquet`` when pyarrow is installed) and the figures
(latency CDF, KV occupancy; with ``--rates`` one folder per rate and
``load_curve.csv`` with ``latency_vs_load.png``). Everything is written into a
temporary directory and renamed into place at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from hw_models import load_system
from hw_models.errors import Problem, SpecError
from hw_models.fileio import make_temp_dir, replace_dir
from hw_models.units import fmt_bytes, fmt_si
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "serve": "serve arriving requests with continuous batching and paged KV (TTFT, TBT, goodput)"
}


DTYPE_CHOICES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")


def _rates(text: str) -> list[float]:
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpecError(
            [Problem("--rates", f"expected comma-separated numbers, found {text!r}")]
        ) from None
    if not rates or any(not r > 0 for r in rates):
        raise SpecError([Problem("--rates", f"expected rates > 0, found {text!r}")])
    return rates


def _with_rate(arrival: str, rate: float) -> str:
    name, *rest = arrival.split(":")
    if name not in ("poisson", "gamma"):
        raise SpecError(
            [Problem("--rates", f"needs a poisson or gamma --arrival, found {arrival!r}")]
        )
    return ":".join([name, repr(rate), *rest[1:]])


def _config(args: argparse.Namespace) -> Any:
    from memsim.serving import Bucketing, ServeConfig

    return ServeConfig(
        scheduler=args.scheduler,
        block_manager=args.block_manager,
        block_size=args.block_size,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_batched_tokens,
        max_seq_len=args.max_seq_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        num_kv_blocks=args.num_kv_blocks,
        kv_swap_tier=args.kv_swap_tier,
        preemption=args.preemption,
        prefix_sharing=args.prefix_sharing,
        disaggregated=args.disaggregated,
        slo_ttft_s=args.slo_ttft,
        slo_tbt_s=args.slo_tbt,
        dtype=args.dtype,
        kv_dtype=args.kv_dtype,
        tp=args.tp,
        fidelity=args.fidelity,
        bucketing=Bucketing(exact=args.exact),
    )


def run(args: argparse.Namespace) -> int:
    """Serve, print the summary (or the load curve), optionally write tables and figures."""
    from memsim.serving import make_requests, serve

    ceilings = ceilings_from(args)
    ceilings.check_counts(
        [
            ("--requests", "requests", args.requests),
            ("--block-size", "tokens", args.block_size),
            ("--max-seq-len", "tokens", args.max_seq_len),
            ("--max-num-seqs", "batch", args.max_num_seqs),
            ("--max-batched-tokens", "tokens", args.max_batched_tokens),
            ("--num-kv-blocks", "count", args.num_kv_blocks),
            ("--tp", "devices", args.tp),
        ]
    )
    system = load_system(args.system, overrides=args.set or None, ceilings=ceilings)
    config = _config(args)
    config.check()
    if args.out is not None and not args.out.strip():
        raise SpecError([Problem("--out", "expected a folder name, found an empty string")])
    out = Path(args.out) if args.out else None
    if out is not None:
        _check_out(out)
    arrivals = (
        [args.arrival]
        if not args.rates
        else [_with_rate(args.arrival, r) for r in _rates(args.rates)]
    )
    results = []
    for arrival in arrivals:
        reqs = make_requests(
            arrival=arrival,
            requests=args.requests,
            prompt_len=args.prompt_len,
            output_len=args.output_len,
            seed=args.seed,
            shared_prefix=args.shared_prefix,
        )
        results.append(
            (arrival, serve(system, args.model, reqs, config=config, progress=not args.quiet))
        )
    if out is not None:
        _write(out, results, load_curve=bool(args.rates))
    if args.rates:
        rows = [_curve_row(a, r.summary()) for a, r in results]
        if args.format == "json":
            print_json(rows)
        else:
            _print_curve(rows)
    else:
        summary = results[0][1].summary()
        if args.format == "json":
            print_json(summary)
        else:
            _print_summary(summary)
    if out is not None and args.format != "json":
        print(f"\nwrote {out}/")
    return 0


def _curve_row(arrival: str, s: dict[str, Any]) -> dict[str, Any]:
    from memsim.serving.requests import arrival_rate

    return {"rate": arrival_rate(arrival), **{k: v for k, v in s.items() if k != "meta"}}


def _t(x: float | None) -> str:
    return "-" if x is None else fmt_si(float(x), "s")


def _print_summary(s: dict[str, Any]) -> None:
    m = s["meta"]
    kv = m["kv"]
    print(
        f"{m['model']} on {m['system']}: {s['requests']} requests, {m['scheduler']} scheduler, "
        f"{m['block_manager']} KV ({kv['num_blocks']} blocks of {kv['block_size']} tokens = "
        f"{fmt_bytes(kv['kv_pool_bytes'])} in {kv['device_tier']}; weights "
        f"{fmt_bytes(kv['weight_bytes'])}, activations {fmt_bytes(kv['activation_bytes'])})"
    )
    rows = [
        ["completed / dropped", f"{s['completed']} / {s['dropped']}"],
        ["generated tokens", s["generated_tokens"]],
        ["duration", _t(s["duration_s"])],
        ["TTFT p50 / p99", f"{_t(s['ttft_p50_s'])} / {_t(s['ttft_p99_s'])}"],
        ["TBT p50 / p99", f"{_t(s['tbt_p50_s'])} / {_t(s['tbt_p99_s'])}"],
        [
            "E2E mean / p50 / p99",
            " / ".join(_t(s[k]) for k in ("e2e_mean_s", "e2e_p50_s", "e2e_p99_s")),
        ],
        ["queueing delay (mean)", _t(s["queue_mean_s"])],
        ["throughput", f"{s['throughput_tokens_per_s'] or 0:.1f} tokens/s"],
        ["goodput", f"{s['goodput_requests_per_s'] or 0:.2f} requests/s within SLO"],
        ["mean requests in system", f"{s['mean_in_system']:.2f}"],
        ["preemptions", s["preemptions"]],
        ["swapped", fmt_bytes(s["swapped_bytes"])],
        ["peak KV", fmt_bytes(s["peak_kv_bytes"])],
        ["iterations (simulated shapes)", f"{s['iterations']} ({m['simulations']})"],
    ]
    print()
    print_table(rows, ["figure", "value"])


def _print_curve(rows: list[dict[str, Any]]) -> None:
    print_table(
        [
            [
                f"{r['rate']:g}",
                _t(r["ttft_p50_s"]),
                _t(r["ttft_p99_s"]),
                _t(r["tbt_p50_s"]),
                _t(r["tbt_p99_s"]),
                _t(r["e2e_p99_s"]),
                f"{r['throughput_tokens_per_s'] or 0:.0f}",
                f"{r['goodput_requests_per_s'] or 0:.2f}",
                r["preemptions"],
            ]
            for r in rows
        ],
        [
            "rate/s",
            "TTFT p50",
            "TTFT p99",
            "TBT p50",
            "TBT p99",
            "E2E p99",
            "tok/s",
            "goodput/s",
            "preempt",
        ],
    )


def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise SpecError([Problem("--out", f"{out} exists and is not a directory")])
        ours = (out / "summary.json").exists() or (out / "load_curve.csv").exists()
        if any(out.iterdir()) and not ours:
            raise SpecError(
                [Problem("--out", f"{out} exists and does not hold a previous memsim serve run")]
            )


def _write(out: Path, results: list[tuple[str, Any]], *, load_curve: bool) -> None:
    import pandas as pd

    from plots.serving import write_load_curve_figure, write_serve_figures

    tmp = make_temp_dir(out)
    try:
        rows = []
        for arrival, result in results:
            where = tmp
            if load_curve:
                row = _curve_row(arrival, result.summary())
                rows.append(row)
                where = tmp / f"rate_{row['rate']:g}"
            result.write(where)
            pool = result.meta["kv"]["kv_pool_bytes"]
            write_serve_figures(
                result.requests_frame(), result.iterations_frame(), where, pool_bytes=pool
            )
        if load_curve:
            curve = pd.DataFrame(rows)
            curve.to_csv(tmp / "load_curve.csv", index=False)
            (tmp / "load_curve.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
            write_load_curve_figure(curve, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)  # one atomic swap; hw_models.fileio


def add_parser(sub: Any) -> None:
    """Register ``serve``."""
    p = sub.add_parser(
        "serve",
        help=COMMANDS["serve"],
        description="Simulate an LLM server: requests arrive, a scheduler batches them per "
        "iteration, a block manager pages their KV cache; each iteration is priced by the "
        "same simulator as `memsim run`. See docs/serving.md.",
    )
    p.add_argument("--system", default="h100_sxm", help="system preset or YAML file")
    p.add_argument("--model", default="llama2_7b", help="model preset or config.json")
    p.add_argument(
        "--arrival",
        default="poisson:4",
        help="poisson:RATE, gamma:RATE:CV or trace:FILE (CSV/JSONL with arrival_s, "
        "prompt_len, output_len)",
    )
    p.add_argument("--requests", type=int, default=1000, help="requests to generate")
    p.add_argument(
        "--prompt-len",
        default="lognormal:512:0.6:4000",
        metavar="DIST",
        help="fixed:N, uniform:A:B, lognormal:MEDIAN:SIGMA[:MAX] or file:PATH",
    )
    p.add_argument("--output-len", default="lognormal:128:0.6:1000", metavar="DIST")
    p.add_argument("--seed", type=int, default=0, help="seed of arrivals and lengths")
    p.add_argument(
        "--shared-prefix",
        type=int,
        default=0,
        metavar="N",
        help="every prompt starts with the same N tokens (a system prompt), added to --prompt-len",
    )
    p.add_argument(
        "--prefix-sharing",
        action="store_true",
        help="hold the shared prefix's KV once (paged block manager)",
    )
    p.add_argument("--rates", default=None, metavar="A,B,C", help="load curve: these arrival rates")
    p.add_argument("--scheduler", default="continuous", help="static, continuous or chunked")
    p.add_argument("--block-manager", default="paged", help="paged or contiguous")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    p.add_argument("--max-num-seqs", type=int, default=256, help="sequences per iteration")
    p.add_argument(
        "--max-batched-tokens",
        type=int,
        default=8192,
        help="tokens per iteration (chunked: budget)",
    )
    p.add_argument("--max-seq-len", type=int, default=None, help="contiguous reservation (tokens)")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--num-kv-blocks", type=int, default=None, help="override the KV pool size")
    p.add_argument(
        "--kv-swap-tier", default=None, help="tier preempted KV is swapped to (e.g. ddr)"
    )
    p.add_argument("--preemption", default=None, help="recompute or swap (default: swap if a tier)")
    p.add_argument("--slo-ttft", type=float, default=None, metavar="S", help="TTFT SLO (s)")
    p.add_argument("--slo-tbt", type=float, default=None, metavar="S", help="mean TBT SLO (s)")
    p.add_argument(
        "--disaggregated",
        action="store_true",
        help="prefill and decode on two device pools, KV sent over the peer link",
    )
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="bf16")
    p.add_argument("--kv-dtype", choices=DTYPE_CHOICES, default=None)
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel devices")
    p.add_argument("--fidelity", choices=["analytic", "event"], default="analytic")
    p.add_argument(
        "--exact", action="store_true", help="simulate every iteration shape (no bucketing)"
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="dotted system override, repeatable"
    )
    add_format_option(p)
    p.add_argument("--out", default=None, metavar="DIR", help="write tables and figures here")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (it shows only on a terminal anyway)",
    )
    add_ceiling_options(p)
    p.set_defaults(func=run)
