"""Memory-request streams: the line-sized reads and writes a graph sends to one tier.

A placement here is a plain mapping ``tensor name -> tier name`` (workloads knows
no hardware). :func:`request_stream` lays the tensors placed in ``tier`` out in
one address space (each aligned to ``align`` bytes, in order of first use,
unless ``base_addresses`` says where they are), then walks the ops in order and
turns every access to such a tensor into ``ceil(bytes / line_bytes)`` requests
of one line each, streaming from the tensor's base (wrapping around when an op
moves more bytes than the tensor holds, as re-reads do). Reads of an op come
before its writes.

The result is columnar (numpy): ``order`` (index of the op), ``address``,
``is_write`` and ``size``. Write it in a DRAM simulator's trace format with
:meth:`RequestStream.write` (Ramulator 2, DRAMsim3, DRAMSys).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw_models.errors import Problem, SpecError
from workloads.graph import Graph


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestStream:
    """Requests as parallel numpy arrays, in issue order."""

    order: np.ndarray  # int64: index of the op that issues the request
    address: np.ndarray  # uint64 byte address
    is_write: np.ndarray  # bool
    size: np.ndarray  # uint32 bytes
    tier: str
    bases: Mapping[str, int]

    def __len__(self) -> int:
        return int(self.address.shape[0])

    @property
    def bytes_read(self) -> int:
        """Bytes of all read requests."""
        return int(self.size[~self.is_write].sum())

    @property
    def bytes_written(self) -> int:
        """Bytes of all write requests."""
        return int(self.size[self.is_write].sum())

    def write(self, path: str | Path, *, format: str, cycles_per_request: int = 1) -> Path:
        """Write the stream as a DRAM trace (``format``: see ``workloads.formats.dram_traces``).

        Request ``i`` is stamped at cycle ``i * cycles_per_request`` where the format has a clock.
        """
        import importlib

        dram_traces = importlib.import_module("workloads.formats.dram_traces")
        cycles = np.arange(len(self), dtype=np.int64) * cycles_per_request
        writer = getattr(dram_traces, "write_trace", None)
        if writer is None:  # pragma: no cover - depends on the DRAM module's API
            raise SpecError([Problem("format", "workloads.formats.dram_traces has no write_trace")])
        return Path(
            writer(
                path, addresses=self.address, is_write=self.is_write, cycles=cycles, format=format
            )
        )


def request_stream(
    graph: Graph,
    placement: Mapping[str, str],
    *,
    tier: str,
    base_addresses: Mapping[str, int] | None = None,
    line_bytes: int = 64,
    align: int = 4096,
    max_requests: int = 50_000_000,
) -> RequestStream:
    """The requests ``graph`` sends to ``tier`` under ``placement`` (see the module doc)."""
    problems: list[Problem] = []
    if line_bytes <= 0:
        problems.append(Problem("line_bytes", f"expected > 0, found {line_bytes}"))
    if align <= 0:
        problems.append(Problem("align", f"expected > 0, found {align}"))
    for name in placement:
        if name not in graph.tensors:
            problems.append(Problem(f"placement.{name}", "unknown tensor"))
    if problems:
        raise SpecError(problems)
    in_tier = {n for n, t in placement.items() if t == tier}
    bases: dict[str, int] = {}
    if base_addresses is not None:
        missing = sorted(in_tier - set(base_addresses))
        if missing:
            raise SpecError([Problem("base_addresses", f"no address for {', '.join(missing[:5])}")])
        bases = {n: int(base_addresses[n]) for n in in_tier}
    else:
        nxt = 0
        for op in graph.ops:
            for a in (*op.reads, *op.writes):
                if a.tensor in in_tier and a.tensor not in bases:
                    bases[a.tensor] = nxt
                    extent = max(1, math.ceil(graph.tensors[a.tensor].bytes))
                    nxt += math.ceil(extent / align) * align
    chunks: list[tuple[int, int, int, bool]] = []  # (op, tensor base, n lines, write) + tensor size
    sizes: list[int] = []
    total = 0
    for i, op in enumerate(graph.ops):
        for write, accesses in ((False, op.reads), (True, op.writes)):
            for a in accesses:
                if a.tensor not in in_tier or a.bytes <= 0:
                    continue
                n = math.ceil(a.bytes / line_bytes)
                total += n
                chunks.append((i, bases[a.tensor], n, write))
                sizes.append(max(line_bytes, math.ceil(graph.tensors[a.tensor].bytes)))
    if total > max_requests:
        raise SpecError(
            [
                Problem(
                    "max_requests",
                    f"{total} requests exceed the limit of {max_requests}: select fewer ops "
                    "(Graph.select) or raise max_requests",
                )
            ]
        )
    counts = np.fromiter((c[2] for c in chunks), dtype=np.int64, count=len(chunks))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if len(chunks) else np.zeros(0, np.int64)
    # line index within its access, wrapped at the tensor's size
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    lines_in_tensor = np.repeat(
        np.fromiter((max(1, -(-s // line_bytes)) for s in sizes), dtype=np.int64, count=len(sizes)),
        counts,
    )
    base = np.repeat(np.fromiter((c[1] for c in chunks), dtype=np.int64, count=len(chunks)), counts)
    address = (base + (within % lines_in_tensor) * line_bytes).astype(np.uint64)
    order = np.repeat(
        np.fromiter((c[0] for c in chunks), dtype=np.int64, count=len(chunks)), counts
    )
    is_write = np.repeat(np.fromiter((c[3] for c in chunks), dtype=bool, count=len(chunks)), counts)
    size = np.full(total, line_bytes, dtype=np.uint32)
    return RequestStream(
        order=order, address=address, is_write=is_write, size=size, tier=tier, bases=bases
    )
