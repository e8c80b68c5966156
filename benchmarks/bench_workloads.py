"""Build times of workload graphs (and their I/O): a table, optionally JSON.

    .venv/bin/python benchmarks/bench_workloads.py [--repeat 5] [--json out.json]

The figure that matters to the simulator: ``generate(llama2_13b, batch=16,
prompt_len=2048, gen_len=128)`` must build well under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import workloads
from hw_models.fileio import atomic_write_text
from workloads import (
    generate,
    load_graph,
    load_model,
    prefill,
    request_stream,
    save_graph,
    train_step,
)


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def _trace_case() -> Callable[[], Any] | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    cfg = transformers.LlamaConfig(
        hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg)
    ids = torch.zeros(2, 64, dtype=torch.long, device="meta")
    return lambda: workloads.trace_module(model, (ids,), kwargs={"use_cache": False})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    l13, l70, l7 = load_model("llama2_13b"), load_model("llama3_70b"), load_model("llama2_7b")
    gen = generate(l13, batch=16, prompt_len=2048, gen_len=128)
    tmp = Path(tempfile.mkdtemp())
    small = generate(l7, batch=1, prompt_len=1024, gen_len=2)
    step = small.select(i for i, op in enumerate(small.ops) if op.step == 2 and op.layer == 0)
    place = {n: "hbm" for n in step.tensors}
    big: dict[str, Any] = {"batch": 16, "prompt_len": 2048, "gen_len": 128}
    tp4: dict[str, Any] = {"tp": 4, "attention": "unfused"}
    train: dict[str, Any] = {"batch": 8, "seq_len": 2048, "micro_batches": 8, "pp": 4}
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("generate llama2_13b b16 p2048 g128", lambda: generate(l13, **big)),
        ("generate llama2_13b same, tp4 unfused", lambda: generate(l13, **big, **tp4)),
        ("prefill llama3_70b b1 p8192", lambda: prefill(l70, batch=1, prompt_len=8192)),
        ("train_step llama2_7b pp4 mb8", lambda: train_step(l7, **train)),
        ("save_graph json (generate)", lambda: save_graph(gen, tmp / "g.json")),
        ("load_graph json (generate)", lambda: load_graph(tmp / "g.json")),
        ("save_graph parquet (generate)", lambda: save_graph(gen, tmp / "g.parquet")),
        ("load_graph parquet (generate)", lambda: load_graph(tmp / "g.parquet")),
        ("request_stream llama2_7b L0 decode", lambda: request_stream(step, place, tier="hbm")),
    ]  # fmt: skip
    trace = _trace_case()
    if trace is not None:
        cases.append(("trace_module tiny Llama b2 s64", trace))
    rows = []
    for name, fn in cases:
        med, best, out = _time(fn, args.repeat)
        size = len(out) if hasattr(out, "__len__") else None
        rows.append({"case": name, "median_s": med, "min_s": best, "items": size})
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':{width}s}  {'median s':>9s}  {'min s':>9s}  {'ops/requests':>12s}")
    for r in rows:
        items = "" if r["items"] is None else str(r["items"])
        print(f"{r['case']:{width}s}  {r['median_s']:9.3f}  {r['min_s']:9.3f}  {items:>12s}")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
