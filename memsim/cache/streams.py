"""Address streams for the cache model: synthetic patterns, trace files, LLM workload graphs.

Every stream is a pair of numpy arrays: byte ``addresses`` (int64) and
``is_write`` (bool).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hw_models.errors import Problem, SpecError
from hw_models.fileio import read_bytes_bounded
from memsim.registry import Registry

Stream = tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]
PatternFn = Callable[..., npt.NDArray[np.int64]]

address_patterns: Registry[npt.NDArray[np.int64]] = Registry("address pattern")


@address_patterns.register("stream")
def _stream(n: int, lines: int, rng: np.random.Generator, **_: Any) -> npt.NDArray[np.int64]:
    """Line after line over the footprint, wrapping (a streaming kernel)."""
    return np.arange(n, dtype=np.int64) % lines


@address_patterns.register("random")
def _random(n: int, lines: int, rng: np.random.Generator, **_: Any) -> npt.NDArray[np.int64]:
    """Lines drawn uniformly from the footprint."""
    return rng.integers(0, lines, size=n, dtype=np.int64)


@address_patterns.register("strided")
def _strided(
    n: int, lines: int, rng: np.random.Generator, *, stride_lines: int = 16, **_: Any
) -> npt.NDArray[np.int64]:
    """Every ``stride_lines``-th line, wrapping with an offset of one line per sweep."""
    i = np.arange(n, dtype=np.int64)
    per_sweep = max(1, -(-lines // stride_lines))
    return ((i % per_sweep) * stride_lines + (i // per_sweep)) % lines


@address_patterns.register("zipf")
def _zipf(
    n: int, lines: int, rng: np.random.Generator, *, zipf_s: float = 1.0, **_: Any
) -> npt.NDArray[np.int64]:
    """Line of popularity rank k drawn with probability proportional to k^-s (ranks shuffled)."""
    weights = np.arange(1, lines + 1, dtype=np.float64) ** -zipf_s
    cdf = np.cumsum(weights)
    ranks = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    ranks = np.minimum(ranks, lines - 1)
    return rng.permutation(lines).astype(np.int64)[ranks]


def synthetic_stream(
    pattern: str,
    accesses: int,
    *,
    footprint_bytes: int,
    line_bytes: int = 64,
    write_fraction: float = 0.0,
    stride_bytes: int = 1024,
    zipf_s: float = 1.0,
    seed: int = 0,
) -> Stream:
    """``accesses`` line-aligned addresses over ``footprint_bytes`` following ``pattern``.

    Patterns: ``stream``, ``random``, ``strided`` (``stride_bytes``), ``zipf``
    (exponent ``zipf_s``). Each access is a write with probability ``write_fraction``.
    """
    problems = []
    if accesses < 0:
        problems.append(Problem("accesses", f"expected >= 0, found {accesses}"))
    if footprint_bytes < line_bytes:
        problems.append(
            Problem("footprint_bytes", f"expected >= one line, found {footprint_bytes}")
        )
    if not 0.0 <= write_fraction <= 1.0:
        problems.append(Problem("write_fraction", f"expected 0..1, found {write_fraction}"))
    if stride_bytes < line_bytes or stride_bytes % line_bytes:
        msg = f"expected a multiple of the line ({line_bytes} B), found {stride_bytes}"
        problems.append(Problem("stride_bytes", msg))
    if zipf_s <= 0:
        problems.append(Problem("zipf_s", f"expected > 0, found {zipf_s}"))
    fn = address_patterns.get(pattern, error_path="pattern")
    if problems:
        raise SpecError(problems)
    rng = np.random.default_rng(seed)
    lines = footprint_bytes // line_bytes
    idx = fn(accesses, lines, rng, stride_lines=stride_bytes // line_bytes, zipf_s=zipf_s)
    is_write = rng.random(accesses) < write_fraction
    return idx * line_bytes, is_write


#: Largest cache trace read: 64 MiB of text, some 5 M accesses at about 12 bytes a
#: line, parsed line by line in Python (seconds, under 1 GB). Larger traces: split them,
#: or pass the arrays to :class:`memsim.cache.CacheHierarchy` from the API.
MAX_TRACE_BYTES = 64 << 20

_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
#: bad lines reported before reading stops (a binary file has millions)
MAX_PROBLEMS = 20

_READ = {"r", "rd", "read", "ld", "load"}
_WRITE = {"w", "wr", "write", "st", "store"}


def read_address_trace(path: str | Path) -> Stream:
    """Read a text trace: one access a line, ``R 0x1f40``, ``0x1f40 W`` or just an address.

    Addresses are decimal or ``0x`` hexadecimal; ``#`` starts a comment; blank
    lines are skipped. A line that does not parse is a :class:`SpecError`
    naming the file and the line.
    """
    p = Path(path)
    data = read_bytes_bounded(p, limit=MAX_TRACE_BYTES, what="trace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([Problem("trace", "not a UTF-8 text file")], source=str(p)) from None
    addrs: list[int] = []
    writes: list[bool] = []
    problems: list[Problem] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if len(problems) >= MAX_PROBLEMS:
            problems.append(Problem(f"line {lineno}", "further lines not checked"))
            break
        body = raw.split("#", 1)[0].split()
        if not body:
            continue
        op = "r"
        tokens = body
        if len(body) == 2:
            if body[0].lower() in _READ | _WRITE:
                op, tokens = body[0].lower(), body[1:]
            elif body[1].lower() in _READ | _WRITE:
                op, tokens = body[1].lower(), body[:1]
        if len(tokens) != 1:
            problems.append(Problem(f"line {lineno}", f"expected '[R|W] ADDRESS', found {raw!r}"))
            continue
        if not _ADDRESS.fullmatch(tokens[0]):  # ASCII digits only: no "1_000", no "١٢٣"
            problems.append(Problem(f"line {lineno}", f"not an address: {tokens[0]!r}"))
            continue
        if len(tokens[0]) > 40:  # int() of thousands of digits is slow, then refused
            problems.append(
                Problem(f"line {lineno}", f"address {tokens[0][:40]!r}... does not fit in 64 bits")
            )
            continue
        addr = int(tokens[0], 0)
        if addr < 0:
            problems.append(Problem(f"line {lineno}", f"negative address {addr}"))
            continue
        if addr >= 1 << 63:
            problems.append(
                Problem(f"line {lineno}", f"address {tokens[0][:40]!r} does not fit in 64 bits")
            )
            continue
        addrs.append(addr)
        writes.append(op in _WRITE)
        if len(problems) >= 20:
            break
    if problems:
        raise SpecError(problems, source=str(p))
    return np.array(addrs, dtype=np.int64), np.array(writes, dtype=np.bool_)


def graph_address_stream(
    graph: Any, *, line_bytes: int = 64, align_bytes: int = 4096, max_accesses: int | None = None
) -> Stream:
    """The line-by-line memory stream of an LLM workload graph (``workloads.graph.Graph``).

    Tensors are laid out one after another (each aligned to ``align_bytes``) in
    order of first use; every op reads each of its ``reads`` from the start of
    the tensor, line by line, then writes each of its ``writes`` (bytes beyond
    the tensor's size wrap around it: re-reads). Stops after ``max_accesses``.
    """
    base: dict[str, int] = {}
    top = 0
    addrs: list[npt.NDArray[np.int64]] = []
    writes: list[npt.NDArray[np.bool_]] = []
    total = 0
    for op in graph.ops:
        for accesses, is_write in ((op.reads, False), (op.writes, True)):
            for acc in accesses:
                tensor = graph.tensors[acc.tensor]
                size = max(line_bytes, int(tensor.bytes))
                if acc.tensor not in base:
                    base[acc.tensor] = top
                    top += -(-size // align_bytes) * align_bytes
                n = -(-int(acc.bytes) // line_bytes)
                if max_accesses is not None:
                    n = min(n, max_accesses - total)
                if n <= 0:
                    continue
                offs = (np.arange(n, dtype=np.int64) * line_bytes) % size
                addrs.append(base[acc.tensor] + offs)
                writes.append(np.full(n, is_write, dtype=np.bool_))
                total += n
    if not addrs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    return np.concatenate(addrs), np.concatenate(writes)
