"""Modelling choices that depend on both the hardware and the graph, made in one place.

A builder of :mod:`workloads` knows nothing about hardware, so options that depend
on it are left open (``None``) and decided here, by :func:`fit_graph`, which
:func:`memsim.simulate` applies to every graph. The CLI and the Python API therefore
run the same model for the same inputs.

Today one option is fitted: the **attention buffer**. Fused attention (FlashAttention)
tiles K/V through the on-chip buffer of one core (SM) of the main compute unit,
``local_sram_bytes`` (e.g. 228 KiB on an H100 SM; NVIDIA H100 Tensor Core GPU
Architecture whitepaper, 2022): a small buffer re-reads Q/O (FA1) or K/V (FA2) more
often (:mod:`workloads.attention`). A graph built with ``sram_bytes=None`` (the
default) is rebuilt with that buffer; a graph built with an explicit ``sram_bytes``
(``math.inf`` for an unbounded buffer) is left as it is, as are graphs without a
builder (read from a file or traced), whose attention bytes are what they record.
"""

from __future__ import annotations

from hw_models import System
from memsim.memo import memo
from workloads.graph import Graph, GraphMeta


def attention_buffer_bytes(system: System, dtype: str) -> float | None:
    """``local_sram_bytes`` of one core of ``system``'s main compute unit for ``dtype``.

    ``None`` (an unbounded buffer) when no unit supports ``dtype``, the unit does not
    give its local SRAM, or the unit is calibrated: the measured attention kernel's
    efficiency already includes its on-chip tiling, so the graph keeps compulsory
    K/V traffic (no modelled re-reads on top of the measured time).
    """
    try:
        unit = system.compute[system.main_compute(dtype)]
    except KeyError:
        return None
    if unit.efficiency is not None:
        return None
    return float(unit.local_sram_bytes) if unit.local_sram_bytes else None


def fit_graph(system: System, graph: Graph) -> Graph:
    """``graph`` with the options its builder left to the hardware decided for ``system``.

    Returns ``graph`` itself when nothing is left open. The rebuilt graph is memoised
    per (graph, buffer) in the active :class:`~memsim.memo.SimCache`, if any.
    """
    meta = GraphMeta.of(graph.meta)
    rebuild = graph.rebuild
    if rebuild is None or meta.sram_bytes is not None or meta.attention == "unfused":
        return graph
    buffer = attention_buffer_bytes(system, meta.dtype or "bf16")
    if buffer is None:
        return graph

    def make() -> Graph:
        if not any(op.kind == "attention" for op in graph.ops):
            return graph
        return rebuild(sram_bytes=buffer)

    return memo("fitted_graph", (id(graph), buffer), make, pin=graph)
