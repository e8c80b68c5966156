#!/usr/bin/env python3
"""GPU microbenchmark harness: the calibration inputs of ``memsim calibrate``.

Self-contained on purpose: it imports only the Python standard library and
PyTorch (plus Triton, which ships with CUDA builds of PyTorch, for the
pointer-chase kernel only; that section is skipped without it), so it can be
copied to a GPU machine and run there alone::

    python3 harness.py -o microbenchmarks.csv [--quick] [--sections gemm,memory] [--budget-s 240]

It writes the format of ``shared/calibration/h200_sxm/microbenchmarks.csv``:
columns ``section,name,time_s,params_json``, one row per measurement, written
and flushed as soon as it is measured into ``FILE.partial`` (a run cut short keeps
what it had there), which is synced and renamed to ``FILE`` when the run ends, so
``FILE`` is never half-written; and ``FILE.env.json`` describing the machine
(written to a temporary name and renamed). Method (see ``docs/calibration.md``):
CUDA-event medians of 5 batches of back-to-back calls after 3 warm-up calls.

``--device cpu`` runs tiny sizes timed with ``time.perf_counter`` and skips the
CUDA-only rows (graphs, pinned copies); it exists to test the code paths on a
machine without a GPU, not to measure a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import torch
import torch.nn.functional as F  # noqa: N812

HEADER = ("section", "name", "time_s", "params_json")
SECTIONS = (
    "gemm",
    "memory",
    "pcie",
    "launch",
    "elementwise",
    "attention",
    "latency",
    "layer_ops",
    "graph_checks",
)
# cheap sections first; the GEMM sweep (largest) last, ordered by importance inside
RUN_ORDER = (
    "launch",
    "memory",
    "pcie",
    "elementwise",
    "attention",
    "latency",
    "gemm",
    "layer_ops",
    "graph_checks",
)
WARMUP = 3
BATCHES = 5
MiB = 1 << 20
GiB = 1 << 30

# Fused projections (N, K) of Llama-family decoders, one GPU, no tensor parallelism.
# Llama-2 7B/13B/70B and Llama-3 8B configurations (hidden, heads, kv heads, ffn, vocab)
# from the models' published config.json files.
GEMM_SHAPES: tuple[tuple[str, int, int], ...] = (
    ("llama2_7b.qkv", 12288, 4096),
    ("llama2_7b.o", 4096, 4096),
    ("llama2_7b.gate_up", 22016, 4096),
    ("llama2_7b.down", 4096, 11008),
    ("llama2_7b.lm_head", 32000, 4096),
    ("llama3_8b.qkv", 6144, 4096),
    ("llama3_8b.gate_up", 28672, 4096),
    ("llama3_8b.down", 4096, 14336),
    ("llama3_8b.lm_head", 128256, 4096),
    ("llama2_13b.qkv", 15360, 5120),
    ("llama2_13b.o", 5120, 5120),
    ("llama2_13b.gate_up", 27648, 5120),
    ("llama2_13b.down", 5120, 13824),
    ("llama2_13b.lm_head", 32000, 5120),
    ("llama2_70b.qkv", 10240, 8192),
    ("llama2_70b.o", 8192, 8192),
    ("llama2_70b.gate_up", 57344, 8192),
    ("llama2_70b.down", 8192, 28672),
)
GEMM_M = (1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
GEMM_M_QUICK = (1, 32, 256, 2048, 16384)
SQUARE = (1024, 2048, 4096, 8192, 16384)
FP8_M = (16, 64, 512, 2048, 8192)

# attention rows: prefill (b, h, hkv, s) and decode (b, h, hkv, L), head dim 128
PREFILL = (
    (1, 32, 32, 128),
    (1, 32, 32, 512),
    (1, 32, 32, 2048),
    (1, 32, 32, 8192),
    (1, 32, 32, 32768),
    (8, 32, 32, 2048),
    (1, 32, 8, 2048),
    (1, 32, 8, 8192),
)
DECODE = (
    (1, 32, 32, 512),
    (1, 32, 32, 2048),
    (1, 32, 32, 8192),
    (1, 32, 32, 32768),
    (8, 32, 32, 2048),
    (32, 32, 32, 2048),
    (32, 32, 32, 8192),
    (1, 32, 8, 8192),
    (32, 32, 8, 2048),
    (64, 32, 8, 2048),
    (128, 32, 8, 1024),
)


class Budget:
    """A wall-clock allowance; rows past it are skipped with one note per section."""

    def __init__(self, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.skipped: dict[str, int] = {}

    def left(self) -> float:
        """Seconds left (infinite without a budget)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def allows(self, section: str) -> bool:
        """False (and the skip counted) once the allowance is spent."""
        if self.left() > 0:
            return True
        self.skipped[section] = self.skipped.get(section, 0) + 1
        return False


class Bench:
    """Times callables on one device and writes rows to an open CSV."""

    def __init__(
        self, out: TextIO, *, device: str, quick: bool, budget: Budget, log: TextIO
    ) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.quick = quick
        self.budget = budget
        self.log = log
        self._file = out
        self._writer = csv.writer(out)
        self.rows = 0

    # -- output -----------------------------------------------------------------
    def write(self, section: str, name: str, time_s: float, params: dict[str, Any]) -> None:
        """Write one row and flush it to the OS at once."""
        if not (time_s > 0 and math.isfinite(time_s)):
            raise RuntimeError(f"non-positive or non-finite time {time_s!r}")
        self._writer.writerow([section, name, f"{time_s:.6e}", json.dumps(params, sort_keys=True)])
        self._file.flush()
        self.rows += 1

    def note(self, text: str) -> None:
        """A line on the log (stderr)."""
        print(f"harness: {text}", file=self.log, flush=True)

    # -- timing -----------------------------------------------------------------
    def sync(self) -> None:
        """Wait for the device."""
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _batch(self, fn: Callable[[], object], calls: int) -> float:
        """Seconds per call of one batch of `calls` back-to-back calls."""
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls

    def time(
        self,
        fn: Callable[[], object],
        *,
        calls: int | None = None,
        target_s: float | None = None,
        max_calls: int = 200,
    ) -> float:
        """Median seconds per call of 5 batches after 3 warm-up calls.

        Without `calls`, a batch holds enough calls to last about `target_s`
        (5 ms; 2 ms with --quick), judged from one timed call after warm-up.
        """
        for _ in range(WARMUP):
            fn()
        self.sync()
        if calls is None:
            one = self._batch(fn, 1)
            target = target_s if target_s is not None else (2e-3 if self.quick else 5e-3)
            calls = max(1, min(max_calls, math.ceil(target / max(one, 1e-7))))
        self.sync()
        return statistics.median(self._batch(fn, calls) for _ in range(BATCHES))

    def free(self) -> None:
        """Return cached device memory between shapes."""
        if self.cuda:
            torch.cuda.empty_cache()

    @property
    def l2_bytes(self) -> int:
        """The device's L2 size (60 MiB if the driver does not say; 0 on CPU)."""
        if not self.cuda:
            return 0
        props = torch.cuda.get_device_properties(self.device)
        return int(getattr(props, "L2_cache_size", 0) or 60 * MiB)


# ---------------------------------------------------------------------------------------------
# sections: each is a generator of row-producing thunks, so the driver can check the budget
# and catch a failure per row
# ---------------------------------------------------------------------------------------------
Row = Callable[[], None]
tl: Any = None  # triton.language, bound by _chase_kernel when Triton is importable


def _rand(shape: tuple[int, ...], dtype: torch.dtype, dev: torch.device) -> torch.Tensor:
    return torch.randn(shape, device=dev, dtype=torch.float32).to(dtype)


def gemm_rows(b: Bench) -> Iterator[Row]:
    """F.linear(x[M,K], W[N,K]) over Llama projection shapes, weights rotated past the L2."""
    dev = b.device
    ms: tuple[int, ...]
    squares: tuple[int, ...]
    if b.cuda:
        shapes = list(GEMM_SHAPES)
        ms = GEMM_M_QUICK if b.quick else GEMM_M
        squares = SQUARE[:3] if b.quick else SQUARE
    else:  # tiny world for testing the code path
        shapes = [("tiny.qkv", 96, 32), ("tiny.down", 32, 64)]
        ms = (1, 8)
        squares = (64,)
    plan: list[tuple[str, int, int, tuple[int, ...], torch.dtype]] = [
        (name, n, k, ms, torch.bfloat16) for name, n, k in shapes
    ]
    plan += [("square", s, s, (s,), torch.bfloat16) for s in squares]
    if not b.quick or not b.cuda:
        plan += [(name, n, k, ms, torch.float16) for name, n, k in shapes if "7b" in name]
        if not b.cuda:
            plan += [(name, n, k, ms, torch.float16) for name, n, k in shapes]

    for name, n, k, m_list, dtype in plan:
        dname = "bf16" if dtype == torch.bfloat16 else "fp16"

        def shape_rows(name=name, n=n, k=k, m_list=m_list, dtype=dtype, dname=dname) -> None:
            w_bytes = n * k * dtype.itemsize
            copies = max(1, math.ceil(2 * b.l2_bytes / w_bytes) + 1) if b.cuda else 1
            weights = [_rand((n, k), dtype, dev) for _ in range(copies)]
            for m in m_list:
                if not b.budget.allows("gemm"):
                    return
                x = _rand((m, k), dtype, dev)
                turn = [0]

                def call(x=x, turn=turn) -> torch.Tensor:
                    turn[0] = (turn[0] + 1) % copies
                    return F.linear(x, weights[turn[0]])

                t = b.time(call)
                params = {
                    "dtype": dname,
                    "m": m,
                    "n": n,
                    "k": k,
                    "tflops": 2 * m * n * k / t / 1e12,
                    "gbps": (m * k + n * k + m * n) * dtype.itemsize / t / 1e9,
                }
                b.write("gemm", name, t, params)

        yield shape_rows

    if b.cuda and not b.quick:
        yield from _fp8_rows(b)


def _fp8_rows(b: Bench) -> Iterator[Row]:
    """Optional fp8 rows through torch._scaled_mm (one weight copy); skipped on any error."""
    scaled_mm = getattr(torch, "_scaled_mm", None)
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if scaled_mm is None or fp8 is None:
        b.note("gemm: no torch._scaled_mm / float8: fp8 rows skipped")
        return
    for name, n, k in GEMM_SHAPES[:4]:

        def rows(name=name, n=n, k=k) -> None:
            dev = b.device
            w = _rand((n, k), torch.bfloat16, dev).to(fp8)  # row-major [N, K]
            one = torch.ones((), device=dev, dtype=torch.float32)
            for m in FP8_M:
                if not b.budget.allows("gemm"):
                    return
                x = _rand((m, k), torch.bfloat16, dev).to(fp8)
                wt = w.t()  # column-major [K, N], as _scaled_mm wants its second operand

                def call(x=x, wt=wt) -> object:
                    return scaled_mm(x, wt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

                try:
                    t = b.time(call)
                except Exception as err:
                    b.note(f"gemm: fp8 {name} M={m} skipped: {str(err).splitlines()[0]}")
                    return
                params = {
                    "dtype": "fp8",
                    "m": m,
                    "n": n,
                    "k": k,
                    "note": "weights not rotated",
                    "tflops": 2 * m * n * k / t / 1e12,
                }
                b.write("gemm", name, t, params)

        yield rows


def memory_rows(b: Bench) -> Iterator[Row]:
    """Device-to-device copy_ (gbps_rw counts read + write) and amax as a read kernel."""
    sizes: tuple[int, ...]
    if b.cuda:
        sizes = (
            (1 * MiB, 16 * MiB, 256 * MiB, 1 * GiB)
            if b.quick
            else (1 * MiB, 4 * MiB, 16 * MiB, 32 * MiB, 64 * MiB, 256 * MiB, 1 * GiB, 4 * GiB)
        )
    else:
        sizes = (64 * 1024, 1 * MiB)
    for size in sizes:

        def rows(size=size) -> None:
            src = torch.ones(size // 4, device=b.device, dtype=torch.float32)
            dst = torch.empty_like(src)
            t = b.time(lambda: dst.copy_(src))
            b.write("memory", "d2d_copy", t, {"bytes": size, "gbps_rw": 2 * size / t / 1e9})
            if not b.budget.allows("memory"):
                return
            t = b.time(lambda: torch.amax(src))
            b.write("memory", "read_amax", t, {"bytes": size, "gbps": size / t / 1e9})

        yield rows


def pcie_rows(b: Bench) -> Iterator[Row]:
    """Host-device copies: pinned both ways, pageable host-to-device."""
    if not b.cuda:
        b.note("pcie: CUDA only, skipped on cpu")
        return
    sizes = (1 * MiB, 16 * MiB, 256 * MiB) if b.quick else (1 * MiB, 16 * MiB, 256 * MiB, 1 * GiB)
    for size in sizes:

        def rows(size=size) -> None:
            host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
            host.fill_(1)
            dev = torch.empty(size, dtype=torch.uint8, device=b.device)
            t = b.time(lambda: dev.copy_(host, non_blocking=True))
            b.write("pcie", "h2d_pinned", t, {"bytes": size, "gbps": size / t / 1e9})
            t = b.time(lambda: host.copy_(dev, non_blocking=True))
            b.write("pcie", "d2h_pinned", t, {"bytes": size, "gbps": size / t / 1e9})

        yield rows

    def pageable() -> None:
        size = 256 * MiB
        host = torch.ones(size, dtype=torch.uint8)
        dev = torch.empty(size, dtype=torch.uint8, device=b.device)
        t = b.time(lambda: dev.copy_(host))
        b.write("pcie", "h2d_pageable", t, {"bytes": size, "gbps": size / t / 1e9})

    yield pageable


def launch_rows(b: Bench) -> Iterator[Row]:
    """Per-kernel cost of a tiny kernel launched eagerly, and inside a CUDA graph."""
    x = torch.zeros(1, device=b.device)

    def eager() -> None:
        t = b.time(lambda: x.add_(1.0), calls=2000 if b.cuda else 200)
        b.write("launch", "eager_tiny_kernel", t, {})

    yield eager
    if not b.cuda:
        b.note("launch: graph_tiny_kernel is CUDA only, skipped on cpu")
        return

    def graph() -> None:
        kernels = 1000
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up on a side stream before capture
            for _ in range(3):
                x.add_(1.0)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(kernels):
                x.add_(1.0)
        t = b.time(g.replay, calls=5) / kernels
        b.write("launch", "graph_tiny_kernel", t, {"kernels_per_graph": kernels})
        del g

    yield graph


def _rmsnorm(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm as plain PyTorch ops (fp32 statistics), as unfused model code writes it."""
    xf = x.float()
    var = xf.pow(2).mean(-1, keepdim=True)
    return w * (xf * torch.rsqrt(var + eps)).to(x.dtype)


def elementwise_rows(b: Bench) -> Iterator[Row]:
    """RMSNorm(4096), SiLU(gate)*up (11008) and residual add (4096) at several token counts."""
    ms: tuple[int, ...] = (1, 16)
    if b.cuda:
        ms = (1, 256, 16384) if b.quick else (1, 16, 256, 2048, 16384)
    dt = torch.bfloat16
    for m in ms:

        def rows(m=m) -> None:
            x = _rand((m, 4096), dt, b.device)
            r = _rand((m, 4096), dt, b.device)
            w = torch.ones(4096, device=b.device, dtype=dt)
            gu = _rand((m, 2 * 11008), dt, b.device)
            g, u = gu[:, :11008], gu[:, 11008:]
            t = b.time(lambda: _rmsnorm(x, w))
            b.write("elementwise", "rmsnorm_4096", t, {"bytes": m * 4096 * 2 * 2, "m": m})
            t = b.time(lambda: F.silu(g) * u)
            b.write("elementwise", "silu_mul_11008", t, {"bytes": m * 11008 * 2 * 3, "m": m})
            t = b.time(lambda: x + r)
            b.write("elementwise", "residual_add_4096", t, {"bytes": m * 4096 * 2 * 3, "m": m})

        yield rows


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool) -> torch.Tensor:
    """SDPA with native GQA (enable_gqa, torch >= 2.5) when K/V have fewer heads."""
    if k.shape[1] == q.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)


def attention_rows(b: Bench) -> Iterator[Row]:
    """SDPA bf16 d=128: causal prefill (q = k = v length s) and 1-query decode against L keys."""
    d = 128
    dt = torch.bfloat16 if b.cuda else torch.float32
    if b.cuda:
        prefill = [p for p in PREFILL if not (b.quick and p[3] > 8192)]
        decode = [r for r in DECODE if not (b.quick and r[0] * r[3] > 65536)]
    else:
        prefill = [(1, 4, 4, 64), (1, 4, 2, 64)]
        decode = [(1, 4, 4, 128), (2, 4, 2, 128)]
    for bb, h, hkv, s in prefill:

        def pre(bb=bb, h=h, hkv=hkv, s=s) -> None:
            q = _rand((bb, h, s, d), dt, b.device)
            k = _rand((bb, hkv, s, d), dt, b.device)
            v = _rand((bb, hkv, s, d), dt, b.device)
            t = b.time(lambda: _sdpa(q, k, v, causal=True))
            params = {"b": bb, "d": d, "h": h, "hkv": hkv, "s": s}
            params["tflops"] = 2 * bb * h * s * s * d / t / 1e12
            b.write("attention", "prefill_causal", t, params)

        yield pre
    for bb, h, hkv, L in decode:

        def dec(bb=bb, h=h, hkv=hkv, L=L) -> None:
            q = _rand((bb, h, 1, d), dt, b.device)
            k = _rand((bb, hkv, L, d), dt, b.device)
            v = _rand((bb, hkv, L, d), dt, b.device)
            t = b.time(lambda: _sdpa(q, k, v, causal=False))
            kv_bytes = 2 * bb * hkv * L * d * dt.itemsize
            params = {"L": L, "b": bb, "d": d, "h": h, "hkv": hkv, "kv_bytes": kv_bytes}
            params["gbps"] = kv_bytes / t / 1e9
            b.write("attention", "decode", t, params)

        yield dec


def _chase_kernel() -> Any:
    """The Triton pointer-chase kernel (one program, one warp), or None without Triton."""
    try:
        import triton
        import triton.language
    except Exception:
        return None
    # Triton resolves names in a kernel through the module's globals
    globals()["tl"] = triton.language

    @triton.jit
    def chase(table_ptr, state_ptr, steps):
        # continue from where the previous launch stopped, so no launch re-walks lines
        # that an earlier one left in the L2
        idx = tl.load(state_ptr).to(tl.int64)
        for _ in range(steps):
            idx = tl.load(table_ptr + idx, cache_modifier=".cg").to(tl.int64)
        tl.store(state_ptr, idx)

    return chase


def _cycle_table(size: int, dev: torch.device) -> torch.Tensor:
    """int64 table of `size` bytes: each 64-byte line points to the next line of a random cycle."""
    per_line = 8  # int64 elements per 64-byte line
    lines = size // 64
    table = torch.zeros(lines * per_line, dtype=torch.int64, device=dev)
    perm = torch.randperm(lines, device=dev)
    table[perm * per_line] = torch.roll(perm, -1) * per_line
    return table


def latency_rows(b: Bench) -> Iterator[Row]:
    """Load-to-use latency: one GPU thread chasing pointers through a random cycle of lines."""
    if not b.cuda:
        size, steps = 64 * 1024, 2000
        table = _cycle_table(size, b.device)

        def cpu_chase() -> None:
            def walk() -> int:
                idx = 0
                for _ in range(steps):
                    idx = int(table[idx])
                return idx

            t = b.time(walk, calls=1) / steps
            b.write("latency", "pointer_chase_64B_lines", t, {"bytes": size, "note": "cpu"})

        yield cpu_chase
        return
    kernel = _chase_kernel()
    if kernel is None:
        b.note("latency: triton is not importable: pointer chase skipped")
        return
    sizes = (4 * MiB, 256 * MiB) if b.quick else (256 * 1024, 4 * MiB, 32 * MiB, 256 * MiB, 2 * GiB)
    for size in sizes:

        def rows(size=size) -> None:
            table = _cycle_table(size, b.device)
            state = torch.zeros(1, dtype=torch.int64, device=b.device)
            lines = size // 64
            if size <= 32 * MiB:  # warm the whole cycle into the L2 first
                kernel[(1,)](table, state, lines, num_warps=1)
            steps = 20000 if b.quick else 100000
            t = b.time(lambda: kernel[(1,)](table, state, steps, num_warps=1), calls=1)
            b.write("latency", "pointer_chase_64B_lines", t / steps, {"bytes": size})

        yield rows


# ---- layer_ops: the unfused kernels of a Llama layer as model code runs them, in a CUDA graph
# (q/k as views of the fused QKV output, RoPE in rotate-half form, the K/V cache writes, SDPA on
# those layouts, and a long GEMM run); the per-row ``kernels`` and ``kernel_names`` come from
# the profiler on one eager call, ``bytes`` is the hand count of what the kernels move.
LAYER_HEADS: tuple[tuple[str, int, int], ...] = (("mha32", 32, 32), ("gqa32_8", 32, 8))
LAYER_TOKENS = (2048, 8192, 32768)
LAYER_TOKENS_QUICK = (2048, 32768)
LAYER_SDPA: tuple[tuple[int, int], ...] = ((1, 2048), (1, 16384), (32, 1024))
LAYER_DECODE_BATCH = (8, 32)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding in rotate-half form (x [b, h, s, d], cos/sin [s, d])."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def _graphed(b: Bench, fn: Callable[[], object], reps: int = 1) -> tuple[Callable[[], object], Any]:
    """(replay, graph) of ``reps`` calls of ``fn`` captured as one CUDA graph (eager on CPU)."""
    if not b.cuda:
        return fn, None
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    b.sync()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    return g.replay, g


def _kernel_names(b: Bench, fn: Callable[[], object]) -> list[str]:
    """Names of the device kernels and copies one eager call of ``fn`` runs (empty on CPU)."""
    if not b.cuda:
        return []
    try:
        from torch.profiler import ProfilerActivity, profile

        b.sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            b.sync()
        cuda = torch.autograd.DeviceType.CUDA
        return [e.name[:80] for e in prof.events() if e.device_type == cuda]
    except Exception as err:  # the profiler is optional: no names, the timing stands
        b.note(f"layer_ops: profiler unavailable ({type(err).__name__}): no kernel names")
        return []


def _layer_row(
    b: Bench,
    name: str,
    fn: Callable[[], object],
    params: dict[str, Any],
    reps: int = 1,
    section: str = "layer_ops",
) -> None:
    names = _kernel_names(b, fn)
    replay, graph = _graphed(b, fn, reps)
    t = b.time(replay) / reps
    del graph
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    params = {**params, "graph": b.cuda, "kernels": len(names) if b.cuda else None}
    params["kernel_names"] = counts
    if "bytes" in params:
        params["gbps"] = params["bytes"] / t / 1e9
    b.write(section, name, t, params)


def layer_ops_rows(b: Bench) -> Iterator[Row]:
    """Unfused layer kernels at prefill and decode sizes, each row one CUDA graph."""
    dt = torch.bfloat16 if b.cuda else torch.float32
    e = 2 if b.cuda else 4
    d = 128 if b.cuda else 16
    heads = LAYER_HEADS if b.cuda else (("mha4", 4, 4), ("gqa4_2", 4, 2))
    tokens = (LAYER_TOKENS_QUICK if b.quick else LAYER_TOKENS) if b.cuda else (8, 32)
    for tag, h, hkv in heads:
        for t_ in tokens:

            def prefill(tag=tag, h=h, hkv=hkv, t_=t_) -> None:
                qkv = _rand((1, t_, (h + 2 * hkv) * d), dt, b.device)
                q, k, v = qkv.split((h * d, hkv * d, hkv * d), dim=-1)
                q = q.view(1, t_, h, d).transpose(1, 2)
                k = k.view(1, t_, hkv, d).transpose(1, 2)
                v = v.view(1, t_, hkv, d).transpose(1, 2)
                cos = _rand((t_, d), dt, b.device)
                sin = _rand((t_, d), dt, b.device)
                base = {"tokens": t_, "h": h, "hkv": hkv, "d": d, "heads": tag}
                qk = t_ * (h + hkv) * d * e  # q and k once
                _layer_row(
                    b,
                    "rope_qk",
                    lambda: (_rope(q, cos, sin), _rope(k, cos, sin)),
                    {**base, "bytes": 10 * qk, "tensor_bytes": qk},
                )
                kc = torch.zeros(1, hkv, t_, d, device=b.device, dtype=dt)
                vc = torch.zeros(1, hkv, t_, d, device=b.device, dtype=dt)
                kr = _rope(k, cos, sin)
                kv = 2 * t_ * hkv * d * e  # k and v once

                def write() -> None:
                    kc[:, :, :t_] = kr
                    vc[:, :, :t_] = v

                _layer_row(
                    b, "kv_write_prefill", write, {**base, "bytes": 2 * kv, "tensor_bytes": kv}
                )

            yield prefill
    for bb in LAYER_DECODE_BATCH if b.cuda else (2,):
        for tag, h, hkv in heads:

            def decode(bb=bb, tag=tag, h=h, hkv=hkv) -> None:
                ctx = 2048 if b.cuda else 16
                qkv = _rand((bb, 1, (h + 2 * hkv) * d), dt, b.device)
                q, k, v = qkv.split((h * d, hkv * d, hkv * d), dim=-1)
                q = q.view(bb, 1, h, d).transpose(1, 2)
                k = k.view(bb, 1, hkv, d).transpose(1, 2)
                v = v.view(bb, 1, hkv, d).transpose(1, 2)
                cos = _rand((1, d), dt, b.device)
                sin = _rand((1, d), dt, b.device)
                base = {"batch": bb, "tokens": bb, "h": h, "hkv": hkv, "d": d, "heads": tag}
                qk = bb * (h + hkv) * d * e
                _layer_row(
                    b,
                    "rope_qk_decode",
                    lambda: (_rope(q, cos, sin), _rope(k, cos, sin)),
                    {**base, "bytes": 10 * qk, "tensor_bytes": qk},
                    reps=20,
                )
                kc = torch.zeros(bb, hkv, ctx + 1, d, device=b.device, dtype=dt)
                vc = torch.zeros(bb, hkv, ctx + 1, d, device=b.device, dtype=dt)
                pos = torch.tensor([ctx], device=b.device, dtype=torch.long)

                def write() -> None:
                    kc.index_copy_(2, pos, k)
                    vc.index_copy_(2, pos, v)

                kv = 2 * bb * hkv * d * e
                _layer_row(
                    b,
                    "kv_write_decode",
                    write,
                    {**base, "bytes": 2 * kv, "tensor_bytes": kv, "context": ctx},
                    reps=20,
                )

            yield decode
    for m in (32, 2048, 8192, 32768) if b.cuda else (4, 64):

        def unfused(m=m) -> None:
            reps = 20 if m <= 256 else 1
            x = _rand((m, 4096), dt, b.device)
            r = _rand((m, 4096), dt, b.device)
            w = torch.ones(4096, device=b.device, dtype=dt)
            gu = _rand((m, 2 * 11008), dt, b.device)
            g, u = gu[:, :11008], gu[:, 11008:]
            base = {"m": m, "tokens": m}
            _layer_row(
                b, "rmsnorm_4096", lambda: _rmsnorm(x, w), {**base, "bytes": m * 4096 * 36}, reps
            )
            _layer_row(
                b, "silu_mul_11008", lambda: F.silu(g) * u, {**base, "bytes": m * 11008 * 10}, reps
            )
            _layer_row(b, "residual_add_4096", lambda: x + r, {**base, "bytes": m * 4096 * 6}, reps)

        yield unfused


def graph_checks_rows(b: Bench) -> Iterator[Row]:
    """Other kernels in a CUDA graph: SDPA on model layouts, small-M GEMMs, a long GEMM run."""
    dt = torch.bfloat16 if b.cuda else torch.float32
    e = 2 if b.cuda else 4
    d = 128 if b.cuda else 16
    for bb, s in LAYER_SDPA if b.cuda else ((1, 32), (2, 16)):

        def sdpa(bb=bb, s=s) -> None:
            h = 32 if b.cuda else 4
            qkv = _rand((bb, s, 3 * h * d), dt, b.device)
            q, k, v = qkv.split((h * d, h * d, h * d), dim=-1)
            q = q.view(bb, s, h, d).transpose(1, 2)
            k = k.view(bb, s, h, d).transpose(1, 2)
            v = v.view(bb, s, h, d).transpose(1, 2)
            cos = _rand((s, d), dt, b.device)
            sin = _rand((s, d), dt, b.device)
            qr = _rope(q, cos, sin)
            kc = _rope(k, cos, sin).contiguous()
            vc = v.contiguous()
            base = {"b": bb, "s": s, "h": h, "hkv": h, "d": d}
            pairs = s * (s + 1) / 2.0
            base["tflops_full"] = 4.0 * bb * h * d * pairs / 1e12
            out = _sdpa(qr, kc, vc, causal=True)
            base["out_view_contiguous"] = bool(out.transpose(1, 2).is_contiguous())
            base["q_strides"] = list(qr.stride())

            def model_layout() -> torch.Tensor:
                a = _sdpa(qr, kc, vc, causal=True)
                return a.transpose(1, 2).reshape(bb, s, h * d)

            _layer_row(b, "sdpa_causal_model_layout", model_layout, base, section="graph_checks")
            qc, kk, vv = qr.contiguous(), kc.contiguous(), vc.contiguous()
            _layer_row(
                b,
                "sdpa_causal_contiguous",
                lambda: _sdpa(qc, kk, vv, causal=True),
                {k_: v_ for k_, v_ in base.items() if k_ != "q_strides"},
                section="graph_checks",
            )

        yield sdpa

    gemm_shapes = GEMM_SHAPES[:8] if b.cuda else (("tiny.qkv", 96, 32),)
    for m in (8, 32, 128) if b.cuda else (2,):
        for name, n, k in gemm_shapes:
            if name.endswith("lm_head"):
                continue

            def small_gemm(m=m, name=name, n=n, k=k) -> None:
                copies = max(2, math.ceil(2 * b.l2_bytes / (n * k * e))) if b.cuda else 2
                ws = [_rand((n, k), dt, b.device) for _ in range(copies)]
                x = _rand((m, k), dt, b.device)

                def calls() -> None:
                    for w in ws:
                        F.linear(x, w)

                names = _kernel_names(b, lambda: F.linear(x, ws[0]))
                replay, graph = _graphed(b, calls)
                t = b.time(replay) / copies
                del graph
                gbps = (m * k + n * k + m * n) * e / t / 1e9
                params = {"m": m, "n": n, "k": k, "dtype": "bf16" if b.cuda else "fp32"}
                params.update(gbps=gbps, copies=copies, graph=b.cuda, kernels=len(names))
                b.write("graph_checks", f"{name}_graph", t, params)

            yield small_gemm

    def sustained() -> None:
        m, n, k = (16384, 22016, 4096) if b.cuda else (64, 64, 64)
        x = _rand((m, k), dt, b.device)
        w = _rand((n, k), dt, b.device)
        base = {"m": m, "n": n, "k": k, "dtype": "bf16" if b.cuda else "fp32"}
        t = b.time(lambda: F.linear(x, w))
        b.write(
            "graph_checks", "gemm_short_batches", t, {**base, "tflops": 2 * m * n * k / t / 1e12}
        )
        reps = 120 if b.cuda else 2  # ~0.5 s of back-to-back GEMMs in one graph replay
        replay, graph = _graphed(b, lambda: F.linear(x, w), reps)
        t = b.time(replay, calls=1) / reps
        del graph
        params = {**base, "calls_per_graph": reps, "tflops": 2 * m * n * k / t / 1e12}
        b.write("graph_checks", "gemm_sustained_graph", t, params)

    yield sustained


SECTION_ROWS: dict[str, Callable[[Bench], Iterator[Row]]] = {
    "gemm": gemm_rows,
    "memory": memory_rows,
    "pcie": pcie_rows,
    "launch": launch_rows,
    "elementwise": elementwise_rows,
    "attention": attention_rows,
    "latency": latency_rows,
    "layer_ops": layer_ops_rows,
    "graph_checks": graph_checks_rows,
}


# ---------------------------------------------------------------------------------------------
# environment and driver
# ---------------------------------------------------------------------------------------------
def environment(device: str) -> dict[str, Any]:
    """What the machine reports: versions, device, SMs, L2, memory, clocks, date."""
    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
    }
    try:
        env["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        env["cudnn"] = None
    try:
        import triton

        env["triton"] = triton.__version__
    except Exception:
        env["triton"] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            name=props.name,
            sms=props.multi_processor_count,
            mem=props.total_memory,
            l2=getattr(props, "L2_cache_size", None),
            capability=f"{props.major}.{props.minor}",
            sdpa_flash=torch.backends.cuda.flash_sdp_enabled(),
            sdpa_cudnn=getattr(torch.backends.cuda, "cudnn_sdp_enabled", lambda: None)(),
        )
        smi = shutil.which("nvidia-smi")
        if smi:
            query = (
                "name,driver_version,clocks.current.sm,clocks.current.memory,"
                "clocks.max.sm,clocks.max.memory,power.limit"
            )
            try:
                res = subprocess.run(
                    [smi, f"--query-gpu={query}", "--format=csv"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=False,
                )
                env["clocks"] = res.stdout
            except Exception as err:
                env["clocks"] = f"nvidia-smi failed: {err}"
    else:
        env["name"] = platform.processor() or platform.machine()
    return env


def parse_sections(text: str | None) -> list[str]:
    """Comma-separated section names (all when empty); ValueError naming an unknown one."""
    if not text:
        return list(RUN_ORDER)
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section {unknown[0]!r}; known: {', '.join(SECTIONS)}")
    return [s for s in RUN_ORDER if s in wanted]


def run(
    output: str,
    *,
    sections: list[str] | None = None,
    quick: bool = False,
    budget_s: float | None = None,
    device: str = "cuda",
    log: TextIO | None = None,
) -> int:
    """Measure the chosen sections into `output` (CSV) and `output.env.json`; returns rows written.

    A section or row that fails prints its error on `log` and writes nothing; the
    others go on. Past `budget_s` seconds the remaining rows are skipped with a note.
    """
    log = log if log is not None else sys.stderr
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device is visible to PyTorch")
    chosen = sections if sections is not None else list(RUN_ORDER)
    env = environment(device)
    _write_atomic(output + ".env.json", json.dumps(env, indent=1))
    budget = Budget(budget_s)
    partial = output + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as out:
        bench = Bench(out, device=device, quick=quick, budget=budget, log=log)
        csv.writer(out).writerow(HEADER)
        out.flush()
        torch.manual_seed(0)
        for section in chosen:
            start, rows_before = time.monotonic(), bench.rows
            bench.note(f"{section}: start ({budget.left():.0f} s of budget left)")
            try:
                for row in SECTION_ROWS[section](bench):
                    if not budget.allows(section):
                        continue
                    try:
                        bench.free()
                        row()
                    except Exception as err:  # one bad row: note it, go on
                        first = (str(err).splitlines() or [type(err).__name__])[0]
                        bench.note(f"{section}: a row failed: {type(err).__name__}: {first}")
                        bench.free()
            except Exception as err:  # the section itself failed: go on with the next
                bench.note(f"{section}: section failed: {type(err).__name__}: {err}")
                bench.free()
            if section in budget.skipped:
                bench.note(
                    f"{section}: budget spent, {budget.skipped[section]} row group(s) skipped"
                )
            bench.note(
                f"{section}: {bench.rows - rows_before} rows in {time.monotonic() - start:.1f} s"
            )
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, output)
    return bench.rows


def _write_atomic(path: str, text: str) -> None:
    """``text`` into ``path`` through a synced temporary file beside it (stdlib only)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point of the standalone script."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-o", "--output", required=True, help="CSV file to write")
    ap.add_argument("--quick", action="store_true", help="fewer sizes (a few minutes at most)")
    ap.add_argument(
        "--sections", default="", help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    ap.add_argument("--budget-s", type=float, default=None, help="wall-clock allowance in seconds")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        sections = parse_sections(args.sections)
    except ValueError as err:
        ap.error(str(err))
    if args.device == "cuda" and not torch.cuda.is_available():
        print("harness: error: no CUDA GPU is visible to PyTorch", file=sys.stderr)
        return 2
    rows = run(
        args.output, sections=sections, quick=args.quick, budget_s=args.budget_s, device=args.device
    )
    print(f"harness: wrote {rows} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
