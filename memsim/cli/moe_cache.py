"""``memsim moe-cache``: a dynamic expert cache for MoE decoding with offloaded experts.

HBM holds ``--slots`` experts of every layer; the others live in a host tier
(``--home``, default the fastest host tier). A routing trace (``--trace FILE``, JSON
``{"experts": E, "steps": [[[ids of layer 0], ...], ...]}`` or a ``.npy`` array) or a
sampled one (``--distribution uniform|zipf --skew S --locality P --steps N --seed N``)
is run through each ``--policy`` (lru, lfu, belady; comma-separated) with
``--prefetch none|pregated`` (comma-separated); misses are copied over the host link
and priced by memsim's cost functions, layers by the engine (docs/serving.md).

Examples::

    memsim moe-cache --model mixtral_8x7b --system a100_80gb_sxm --slots 4 \\
        --policy lru,lfu,belady --prefetch none,pregated --distribution zipf --skew 1.2
    memsim moe-cache --model mixtral_8x7b --slots 2 --trace routing.json --format json
"""

from __future__ import annotations

import argparse
from typing import Any

from hw_models.errors import Problem, SpecError
from memsim.cli._limits import count_problem, strict_int
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "moe-cache": "MoE expert cache (LRU/LFU/Belady, pre-gated prefetch): hit rate, bytes, step time"
}

#: Default ceiling on ``--steps`` (raise it with ``--max-steps``).
MAX_STEPS = 100_000
#: Working memory per step and layer of a sampled trace (ids, counts), an upper estimate.
BYTES_PER_ENTRY = 64


def _names(text: str, option: str, known: tuple[str, ...] | list[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if not names or bad:
        raise SpecError(
            [
                Problem(
                    option, f"unknown {bad[0] if bad else '(empty)'!r} (known: {', '.join(known)})"
                )
            ]
        )
    return names


def run(args: argparse.Namespace) -> int:
    """Run every (policy, prefetch) pair and print one row each."""
    import workloads
    from hw_models import load_system
    from memsim.expert_cache import (
        PREFETCH_MODES,
        load_routing,
        replacement_names,
        run_expert_cache,
        sample_routing,
    )

    policies = _names(args.policy, "--policy", replacement_names())
    prefetches = _names(args.prefetch, "--prefetch", PREFETCH_MODES)
    cfg = workloads.load_model(args.model)
    if not cfg.is_moe:
        raise SpecError([Problem("--model", f"{args.model} has no experts")])
    system = load_system(args.system, overrides=args.set or None)
    if args.trace:
        trace = load_routing(args.trace, experts=cfg.experts)
    else:
        problem = count_problem(
            args.steps,
            option="--steps",
            ceiling=args.max_steps,
            raise_with="--max-steps",
            bytes_each=BYTES_PER_ENTRY * cfg.num_hidden_layers,
            what="steps",
        )
        if problem:
            raise SpecError([problem])
        trace = sample_routing(
            experts=cfg.experts,
            layers=cfg.num_hidden_layers,
            steps=args.steps,
            k=args.k or cfg.active_experts,
            distribution=args.distribution,
            skew=args.skew,
            locality=args.locality,
            seed=args.seed,
        )
    rows: list[dict[str, Any]] = []
    for policy in policies:
        for prefetch in prefetches:
            res = run_expert_cache(
                system,
                cfg,
                trace,
                slots=args.slots,
                policy=policy,
                prefetch=prefetch,
                home=args.home,
                batch=args.batch,
                context_len=args.context,
                warmup_steps=args.warmup,
                fidelity=args.fidelity,
            )
            rows.append(res.summary())
    if args.format == "json":
        print_json({"trace": trace.source, "runs": rows})
        return 0
    print_table(
        [
            (
                r["policy"],
                r["prefetch"],
                r["slots"],
                f"{r['hit_rate']:.3f}",
                r["misses"],
                f"{r['bytes_moved'] / 1e9:.2f}",
                f"{r['mean_step_s'] * 1e3:.2f}",
                f"{r['slowdown_vs_resident']:.2f}x",
            )
            for r in rows
        ],
        [
            "policy",
            "prefetch",
            "slots",
            "hit rate",
            "misses",
            "GB moved",
            "step ms",
            "vs all in HBM",
        ],
    )
    return 0


def add_parser(sub: Any) -> None:
    """Register ``moe-cache``."""
    p = sub.add_parser(
        "moe-cache",
        help=COMMANDS["moe-cache"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="mixtral_8x7b", help="MoE model preset or config.json")
    p.add_argument("--system", default="a100_80gb_sxm", help="system preset or YAML file")
    p.add_argument("--slots", type=strict_int, required=True, help="experts per layer in HBM")
    p.add_argument("--policy", default="lru", help="lru, lfu, belady (comma-separated)")
    p.add_argument("--prefetch", default="none", help="none, pregated (comma-separated)")
    p.add_argument("--home", default=None, help="tier of the offloaded experts (default: host)")
    p.add_argument("--trace", default=None, help="routing trace file (.json or .npy)")
    p.add_argument("--distribution", default="uniform", help="sampled trace: uniform | zipf")
    p.add_argument("--skew", type=float, default=1.0, help="zipf exponent (default 1.0)")
    p.add_argument("--locality", type=float, default=0.0, help="P(keep a previous expert)")
    p.add_argument("--steps", type=strict_int, default=64, help="sampled trace: tokens")
    p.add_argument(
        "--max-steps",
        type=strict_int,
        default=MAX_STEPS,
        metavar="N",
        help=f"ceiling on --steps (default {MAX_STEPS:,}), a guard against typos",
    )
    p.add_argument("--k", type=strict_int, default=None, help="experts per token (default: model)")
    p.add_argument("--seed", type=strict_int, default=0)
    p.add_argument("--warmup", type=strict_int, default=0, help="steps not counted")
    p.add_argument("--batch", type=strict_int, default=1, help="sequences per step")
    p.add_argument("--context", type=strict_int, default=512, help="context tokens (KV cache)")
    p.add_argument("--fidelity", choices=["analytic", "event"], default="analytic")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="system override, e.g. links.pcie..."
    )
    add_format_option(p)
    p.set_defaults(func=run)
