#!/usr/bin/env python3
"""Count the device kernels of one decoder layer of ``validation/h200_e2e.py`` (structure only).

Runs one eager prefill and one eager decode step of a single layer of the end-to-end
stack under the PyTorch profiler and prints, per phase, the number of device kernels
(and copies/memsets) and their names with counts. It prints no durations: the count
is compared with what memsim's graph and engine profile charge per layer (kernel
counts, traffic), never used to fit a time.

    python3 validation/h200_layer_kernels.py [--model llama2_7b] [--tokens 2048] [--batch 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile


def _e2e():  # the exact stack, loaded from the file beside this one
    spec = importlib.util.spec_from_file_location(
        "h200_e2e", Path(__file__).with_name("h200_e2e.py")
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["h200_e2e"] = mod
    spec.loader.exec_module(mod)
    return mod


def count(fn) -> Counter[str]:
    """Names of the device events of one call of ``fn``."""
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    cuda = torch.autograd.DeviceType.CUDA
    return Counter(e.name[:100] for e in prof.events() if e.device_type == cuda)


def _phase(model, phase: str, b: int, n: int, dev: torch.device, dt: torch.dtype) -> dict:
    """Kernel names of one layer and of the one-layer model (embedding, head) in ``phase``."""
    cfg, d = model.cfg, model.cfg.head_dim
    layer = model.layers[0]
    ctx = n if phase == "prefill" else n + 1
    kc = torch.zeros(b, cfg.kv_heads, ctx, d, device=dev, dtype=dt)
    vc = torch.zeros_like(kc)
    cos, sin = model.rope_tables(ctx, dev, dt)
    s = n if phase == "prefill" else 1
    x = torch.randn(b, s, cfg.hidden, device=dev, dtype=dt)
    tokens = torch.zeros(b, s, dtype=torch.long, device=dev)
    pos = None if phase == "prefill" else torch.tensor([n], device=dev, dtype=torch.long)
    if pos is None:
        c, si = cos[:n], sin[:n]
    else:
        c, si = cos.index_select(0, pos), sin.index_select(0, pos)
    for _ in range(2):  # warm-up (cuDNN plans)
        layer(x, c, si, kc, vc, pos)
    names = count(partial(layer, x, c, si, kc, vc, pos))
    whole = count(
        partial(
            model, tokens, c if pos is None else cos, si if pos is None else sin, [(kc, vc)], pos
        )
    )
    return {
        "batch": b,
        "tokens_per_seq": s,
        "layer_kernels": sum(names.values()),
        "layer_names": dict(names.most_common()),
        "one_layer_model_kernels": sum(whole.values()),
        "one_layer_model_names": dict(whole.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llama2_7b")
    ap.add_argument("--tokens", type=int, default=2048, help="prefill prompt length (batch 1)")
    ap.add_argument("--batch", type=int, default=32, help="decode batch")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("layer_kernels: error: no CUDA GPU is visible to PyTorch", file=sys.stderr)
        return 2
    e2e = _e2e()
    cfg = e2e.MODELS[args.model]
    one = e2e.Config(cfg.name, cfg.hidden, 1, cfg.heads, cfg.kv_heads, cfg.ffn, cfg.vocab)
    dev, dt = torch.device("cuda"), torch.bfloat16
    out = {}
    with torch.inference_mode():
        model = e2e.Decoder(one, dev, dt).eval()
        for phase, b, n in (("prefill", 1, args.tokens), ("decode", args.batch, 1024)):
            out[phase] = _phase(model, phase, b, n, dev, dt)
    print(json.dumps({"model": args.model, "torch": torch.__version__, **out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
