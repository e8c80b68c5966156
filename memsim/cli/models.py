"""``memsim models`` and ``memsim model NAME``: transformer presets and their figures."""

from __future__ import annotations

import argparse
from typing import Any

from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {
    "models": "list transformer model presets",
    "model": "parameters, weight and KV bytes, FLOPs per token of a model",
}

WEIGHT_DTYPES = ("fp32", "bf16", "fp8", "int8", "int4")


def run_list(args: argparse.Namespace) -> int:
    """List model presets with their sizes."""
    from workloads import load_model, model_names

    rows: list[dict[str, Any]] = []
    for name in model_names():
        cfg = load_model(name)
        rows.append(
            {
                "name": name,
                "params": cfg.params,
                "active_params": cfg.active_params,
                "layers": cfg.num_hidden_layers,
                "hidden_size": cfg.hidden_size,
                "source": cfg.source,
            }
        )
    if args.format == "json":
        print_json(rows)
        return 0
    print_table(
        [
            [r["name"], f"{r['params'] / 1e9:.2f} B", f"{r['active_params'] / 1e9:.2f} B",
             r["layers"], r["hidden_size"]]
            for r in rows
        ],
        ["model", "params", "active", "layers", "hidden"],
    )  # fmt: skip
    return 0


def model_figures(
    name: str, *, context: int, kv_dtype: str, dtype: str, ceilings: Any = None
) -> dict[str, Any]:
    """Parameter counts, weight bytes per dtype, KV bytes per token and FLOPs per token."""
    from hw_models.ceilings import DEFAULT_CEILINGS
    from workloads import decode, load_model, prefill
    from workloads.transformer import weight_bytes

    cfg = load_model(name, ceilings=ceilings or DEFAULT_CEILINGS)
    out: dict[str, Any] = {"model": cfg.name, **cfg.summary()}
    out["weight_bytes"] = {d: weight_bytes(cfg, dtype=d) for d in WEIGHT_DTYPES}
    out["kv_dtype"] = kv_dtype
    out["kv_bytes_per_token"] = cfg.kv_bytes_per_token(kv_dtype)
    out["context"] = context
    if cfg.architecture == "decoder":
        pre = prefill(cfg, batch=1, prompt_len=context, dtype=dtype, kv_dtype=kv_dtype)
        dec = decode(cfg, batch=1, context_len=context, dtype=dtype, kv_dtype=kv_dtype)
        out["prefill_flops_per_token"] = pre.total_flops / context
        out["decode_flops_per_token"] = dec.total_flops
        out["decode_bytes_per_token"] = dec.total_bytes_moved
    else:
        enc = prefill(cfg, batch=1, prompt_len=context, dtype=dtype)
        out["encode_flops_per_token"] = enc.total_flops / context
    return out


def run_model(args: argparse.Namespace) -> int:
    """Print one model's figures."""
    from hw_models.errors import Problem, SpecError

    if args.context <= 0:
        raise SpecError([Problem("--context", f"expected an integer > 0, found {args.context}")])

    ceilings = ceilings_from(args)
    ceilings.check_counts([("--context", "tokens", args.context)])
    fig = model_figures(
        args.name, context=args.context, kv_dtype=args.kv_dtype, dtype=args.dtype, ceilings=ceilings
    )
    if args.format == "json":
        print_json(fig)
        return 0
    print(f"{fig['model']}: {fig['layers']} layers, hidden {fig['hidden_size']}, "
          f"{fig['heads']} heads ({fig['kv_heads']} KV), head dim {fig['head_dim']}")  # fmt: skip
    if fig.get("source"):
        print(f"source: {fig['source']}")
    print(
        f"parameters: {fig['params'] / 1e9:.3f} B   "
        f"active per token: {fig['active_params'] / 1e9:.3f} B"
    )
    print(f"KV cache per token ({fig['kv_dtype']}): {fig['kv_bytes_per_token'] / 1024:.1f} KiB")
    print("\nWeights")
    print_table(
        [[d, f"{v / 1e9:.2f} GB"] for d, v in fig["weight_bytes"].items()], ["dtype", "bytes"]
    )
    print(f"\nFLOPs per token at context {fig['context']} (weights {args.dtype})")
    rows = [[k.replace("_flops_per_token", ""), f"{v / 1e9:.2f} GFLOP"]
            for k, v in fig.items() if k.endswith("_flops_per_token")]  # fmt: skip
    print_table(rows, ["phase", "FLOPs/token"])
    return 0


def add_parser(sub: Any) -> None:
    """Register ``models`` and ``model``."""
    p = sub.add_parser("models", help=COMMANDS["models"])
    add_format_option(p)
    p.set_defaults(func=run_list)
    q = sub.add_parser("model", help=COMMANDS["model"])
    q.add_argument("name", help="preset name (see `memsim models`) or a Hugging Face config.json")
    q.add_argument("--context", type=int, default=2048, help="context length (default 2048)")
    q.add_argument("--kv-dtype", default="bf16", help="KV-cache dtype (default bf16)")
    q.add_argument(
        "--dtype", default="bf16", help="weight dtype for the FLOP graphs (default bf16)"
    )
    add_ceiling_options(q)
    add_format_option(q)
    q.set_defaults(func=run_model)
