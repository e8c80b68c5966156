#!/usr/bin/env python3
"""Held-out end-to-end timings of Llama-family decoders on one GPU (validation only).

Self-contained (Python standard library + PyTorch). It runs the stack that issue 10
names, with RANDOM bf16 weights built from each model's config (nothing is
downloaded):

- fused QKV and fused gate-up projections (``nn.Linear`` without bias);
- RMSNorm, RoPE, SwiGLU and residual adds as plain, unfused PyTorch ops;
- attention through ``F.scaled_dot_product_attention`` (GQA native, ``enable_gqa``);
- K and V written into a preallocated cache (slice assignment in prefill,
  ``index_copy_`` at the current position in decode);
- each prefill and each decode step captured as ONE CUDA graph and replayed;
- logits for the last token only.

TTFT = one prefill of a batch of ``b`` prompts of ``p`` tokens; TPOT = one decode
step of ``b`` sequences whose cache holds ``c`` tokens. Times are the median of
several graph replays (each bracketed by CUDA events, the GPU idle before it)
after warm-up replays. These figures are for validation, never for fitting.

    python3 validation/h200_e2e.py -o h200_e2e.csv [--budget-s 200] [--models llama2_7b]
    python3 validation/h200_e2e.py -o tiny.csv --device cpu --tiny    # code path, no GPU

CSV columns: model,phase,batch,prompt_or_context,time_s,n_reps,date,device,torch.
A point whose weights + KV cache + activations do not fit, or that fails, is
skipped with a note on stderr; a point whose graph capture fails is timed eagerly
and written with phase ``prefill_eager`` / ``decode_eager``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

COLUMNS = (
    "model",
    "phase",
    "batch",
    "prompt_or_context",
    "time_s",
    "n_reps",
    "date",
    "device",
    "torch",
)


@dataclass(frozen=True)
class Config:
    """A Llama-family decoder's shape (from the published config.json files)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        d = self.head_dim
        per_layer = self.hidden * (self.heads + 2 * self.kv_heads) * d  # qkv
        per_layer += self.heads * d * self.hidden + 3 * self.hidden * self.ffn + 2 * self.hidden
        return self.layers * per_layer + 2 * self.vocab * self.hidden + self.hidden

    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


MODELS = {
    "llama2_7b": Config("llama2_7b", 4096, 32, 32, 32, 11008, 32000),
    "llama3_8b": Config("llama3_8b", 4096, 32, 32, 8, 14336, 128256, rope_theta=500000.0),
    "llama2_13b": Config("llama2_13b", 5120, 40, 40, 40, 13824, 32000),
}
TINY = Config("tiny", 256, 2, 4, 2, 512, 512)

PREFILL = ((1, 128), (1, 512), (1, 2048), (1, 8192), (1, 16384), (4, 2048), (16, 512), (32, 1024))
DECODE = (
    (1, 128),
    (1, 2048),
    (1, 16384),
    (8, 2048),
    (32, 1024),
    (64, 2048),
    (128, 1024),
    (256, 512),
)
TINY_PREFILL: tuple[tuple[int, int], ...] = ((1, 16), (2, 8))
TINY_DECODE: tuple[tuple[int, int], ...] = ((1, 16), (2, 8))


def rmsnorm(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm in plain ops, statistics in fp32 (as the reference Llama code)."""
    xf = x.float()
    var = xf.pow(2).mean(-1, keepdim=True)
    return w * (xf * torch.rsqrt(var + eps)).to(x.dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, rotate-half form; x [b, h, s, d], cos/sin [s, d]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool) -> torch.Tensor:
    """SDPA; native GQA (enable_gqa, torch >= 2.5) when K/V have fewer heads."""
    if k.shape[1] == q.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)


class Layer(nn.Module):
    """One decoder layer: fused QKV, fused gate-up, unfused elementwise ops."""

    def __init__(self, cfg: Config, dev: torch.device, dt: torch.dtype) -> None:
        super().__init__()
        d = cfg.head_dim
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.hidden, (cfg.heads + 2 * cfg.kv_heads) * d, False, dev, dt)
        self.o = nn.Linear(cfg.heads * d, cfg.hidden, False, dev, dt)
        self.gate_up = nn.Linear(cfg.hidden, 2 * cfg.ffn, False, dev, dt)
        self.down = nn.Linear(cfg.ffn, cfg.hidden, False, dev, dt)
        self.norm_in = nn.Parameter(torch.ones(cfg.hidden, device=dev, dtype=dt))
        self.norm_post = nn.Parameter(torch.ones(cfg.hidden, device=dev, dtype=dt))

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        pos: torch.Tensor | None,
    ) -> torch.Tensor:
        """Prefill when `pos` is None (x [b, s, H], cache filled from 0), else one decode step."""
        c = self.cfg
        b, s, _ = x.shape
        d = c.head_dim
        h = rmsnorm(x, self.norm_in)
        qkv = self.qkv(h)
        q, k, v = qkv.split((c.heads * d, c.kv_heads * d, c.kv_heads * d), dim=-1)
        q = q.view(b, s, c.heads, d).transpose(1, 2)
        k = k.view(b, s, c.kv_heads, d).transpose(1, 2)
        v = v.view(b, s, c.kv_heads, d).transpose(1, 2)
        q = rope(q, cos, sin)
        k = rope(k, cos, sin)
        if pos is None:  # prefill: write positions 0..s-1, attend causally over them
            k_cache[:, :, :s] = k
            v_cache[:, :, :s] = v
            attn = sdpa(q, k_cache[:, :, :s], v_cache[:, :, :s], causal=True)
        else:  # decode: write at `pos`, attend the one query over the whole cache
            k_cache.index_copy_(2, pos, k)
            v_cache.index_copy_(2, pos, v)
            attn = sdpa(q, k_cache, v_cache, causal=False)
        attn = attn.transpose(1, 2).reshape(b, s, c.heads * d)
        x = x + self.o(attn)
        h = rmsnorm(x, self.norm_post)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Decoder(nn.Module):
    """A Llama-family decoder with random weights; logits for the last token only."""

    def __init__(self, cfg: Config, dev: torch.device, dt: torch.dtype) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden, device=dev, dtype=dt)
        self.layers = nn.ModuleList(Layer(cfg, dev, dt) for _ in range(cfg.layers))
        self.norm = nn.Parameter(torch.ones(cfg.hidden, device=dev, dtype=dt))
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, False, dev, dt)

    def rope_tables(self, n: int, dev: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, ...]:
        d = self.cfg.head_dim
        inv = 1.0 / (self.cfg.rope_theta ** (torch.arange(0, d, 2, device=dev).float() / d))
        ang = torch.outer(torch.arange(n, device=dev).float(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        return ang.cos().to(dt), ang.sin().to(dt)

    def forward(
        self,
        tokens: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        caches: list[tuple[torch.Tensor, torch.Tensor]],
        pos: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.embed(tokens)
        if pos is not None:  # decode: the rows of the current position
            cos, sin = cos.index_select(0, pos), sin.index_select(0, pos)
        for layer, (kc, vc) in zip(self.layers, caches, strict=True):
            x = layer(x, cos, sin, kc, vc, pos)
        last = rmsnorm(x[:, -1, :], self.norm)
        return self.lm_head(last)


def fits(cfg: Config, b: int, tokens_per_seq: int, ctx: int, free_bytes: int) -> bool:
    """Weights + KV cache + a generous activation estimate within 90 % of free memory."""
    tokens = b * tokens_per_seq
    kv = cfg.kv_bytes_per_token() * b * ctx
    d = cfg.head_dim
    per_token = (
        4 * cfg.hidden * 4  # fp32 norm temporaries
        + (cfg.heads + 2 * cfg.kv_heads) * d * 2 * 3  # qkv, rope copies
        + 2 * cfg.ffn * 2 * 2  # gate-up output and SwiGLU
        + 4 * cfg.hidden * 2
    )
    act = 2 * tokens * per_token + b * cfg.vocab * 4  # x2: graph pool beside the warm-up
    return kv + act < 0.9 * free_bytes


class Runner:
    """Builds each point's cache and graph, times replays, writes rows."""

    def __init__(self, args: argparse.Namespace, out: csv.DictWriter, fh: TextIO) -> None:
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        self.dt = torch.bfloat16 if self.cuda else torch.float32
        self.deadline = time.monotonic() + args.budget_s
        self.out, self.fh = out, fh
        self.device_name = torch.cuda.get_device_name(self.dev) if self.cuda else "cpu"
        self.reps = args.reps
        self.eager = bool(args.eager)

    def note(self, text: str) -> None:
        print(f"e2e: {text}", file=sys.stderr, flush=True)

    def write(self, model: str, phase: str, b: int, n: int, t: float, reps: int) -> None:
        self.out.writerow(
            {
                "model": model,
                "phase": phase,
                "batch": b,
                "prompt_or_context": n,
                "time_s": f"{t:.6e}",
                "n_reps": reps,
                "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
                "device": self.device_name,
                "torch": torch.__version__,
            }
        )
        self.fh.flush()

    def _time_eager(self, fn: Callable[[], object], reps: int) -> list[float]:
        times = []
        for _ in range(reps):
            if self.cuda:
                torch.cuda.synchronize()
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                fn()
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return times

    def measure(self, step: Callable[[], object]) -> tuple[float, int, bool]:
        """(median seconds, replays, graphed) of one step: CUDA graph on GPU, eager on CPU."""
        if not self.cuda or self.eager:
            for _ in range(1 if not self.cuda else 2):  # warm-up (cuDNN plans, allocator)
                step()
            times = self._time_eager(step, self.reps)
            return statistics.median(times), len(times), False
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
            for _ in range(2):
                step()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                step()
        except Exception as err:
            self.note(f"graph capture failed ({str(err).splitlines()[0]}): timing eagerly")
            del graph
            torch.cuda.synchronize()
            times = self._time_eager(step, self.reps)
            return statistics.median(times), len(times), False
        graph.replay()
        torch.cuda.synchronize()
        first = self._time_eager(graph.replay, 1)[0]
        reps = self.reps if first < 0.5 else max(3, self.reps // 2)
        times = self._time_eager(graph.replay, reps)
        del graph
        return statistics.median(times), reps, True

    def point(self, model: Decoder, phase: str, b: int, n: int) -> None:
        cfg = model.cfg
        left = self.deadline - time.monotonic()
        tokens = b * n if phase == "prefill" else b
        est = 12 * (2 * cfg.params * tokens) / 300e12 if self.cuda else 0.0
        if left <= 0 or est > left:
            self.note(f"{cfg.name} {phase} b={b} n={n}: skipped, budget ({left:.0f} s left)")
            return
        ctx = n if phase == "prefill" else n + 1
        if self.cuda:
            torch.cuda.empty_cache()  # the previous point's cache and graph pool
            free, _ = torch.cuda.mem_get_info(self.dev)
            if not fits(cfg, b, n if phase == "prefill" else 1, ctx, free):
                self.note(f"{cfg.name} {phase} b={b} n={n}: skipped, does not fit in memory")
                return
        d = cfg.head_dim
        caches = [
            (
                torch.zeros(b, cfg.kv_heads, ctx, d, device=self.dev, dtype=self.dt),
                torch.zeros(b, cfg.kv_heads, ctx, d, device=self.dev, dtype=self.dt),
            )
            for _ in range(cfg.layers)
        ]
        cos, sin = model.rope_tables(ctx, self.dev, self.dt)
        if phase == "prefill":
            tokens_in = torch.randint(0, cfg.vocab, (b, n), device=self.dev)
            pos = None
            cos, sin = cos[:n], sin[:n]
        else:
            tokens_in = torch.randint(0, cfg.vocab, (b, 1), device=self.dev)
            pos = torch.tensor([n], device=self.dev, dtype=torch.long)

        def step() -> torch.Tensor:
            return model(tokens_in, cos, sin, caches, pos)

        t, reps, graphed = self.measure(step)
        self.write(cfg.name, phase if graphed or not self.cuda else f"{phase}_eager", b, n, t, reps)
        self.note(f"{cfg.name} {phase} b={b} n={n}: {t * 1e3:.3f} ms ({reps} replays)")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description="Held-out end-to-end TTFT/TPOT timings.")
    ap.add_argument("-o", "--output", default="h200_e2e.csv")
    ap.add_argument("--budget-s", type=float, default=200.0)
    ap.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    ap.add_argument("--phases", default="decode,prefill")
    ap.add_argument("--reps", type=int, default=10, help="timed replays per point")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer tiny model, tiny grid")
    ap.add_argument(
        "--eager",
        action="store_true",
        help="launch every kernel eagerly (no CUDA graph): rows are prefill_eager/decode_eager",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("e2e: error: no CUDA GPU is visible to PyTorch", file=sys.stderr)
        return 2
    if args.tiny:
        configs, prefill, decode = [TINY], TINY_PREFILL, TINY_DECODE
    else:
        unknown = [m for m in args.models.split(",") if m not in MODELS]
        if unknown:
            ap.error(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}")
        configs = [MODELS[m] for m in args.models.split(",")]
        prefill, decode = PREFILL, DECODE
    phases = [p.strip() for p in args.phases.split(",")]
    if any(p not in ("prefill", "decode") for p in phases):
        ap.error("--phases: expected prefill and/or decode")
    torch.manual_seed(0)
    with open(args.output, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=COLUMNS)
        out.writeheader()
        fh.flush()
        run = Runner(args, out, fh)
        for cfg in configs:
            if time.monotonic() >= run.deadline:
                run.note(f"{cfg.name}: skipped, budget spent")
                continue
            try:
                t0 = time.monotonic()
                with torch.no_grad():
                    model = Decoder(cfg, run.dev, run.dt).eval()
                run.note(f"{cfg.name}: built in {time.monotonic() - t0:.1f} s")
            except Exception as err:
                run.note(f"{cfg.name}: cannot build ({str(err).splitlines()[0]}): skipped")
                if run.cuda:
                    torch.cuda.empty_cache()
                continue
            grid = [("decode", b, n) for b, n in decode] if "decode" in phases else []
            grid += [("prefill", b, n) for b, n in prefill] if "prefill" in phases else []
            for phase, b, n in grid:
                try:
                    with torch.inference_mode():
                        run.point(model, phase, b, n)
                except Exception as err:
                    first = (str(err).splitlines() or [type(err).__name__])[0]
                    run.note(
                        f"{cfg.name} {phase} b={b} n={n}: failed: {type(err).__name__}: {first}"
                    )
                    if run.cuda:
                        torch.cuda.synchronize()
                        torch.cuda.empty_cache()
            del model
            if run.cuda:
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
