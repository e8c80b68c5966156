"""Every validation case; importing this package registers them in table order."""

from __future__ import annotations

from validation.cases import (
    attention,
    fusemax,
    h200_measured,
    kv_budget,
    llm_flash,
    long_context,
    memory_wall,
    moe_offload,
    pipeline,
    published_e2e,
    sequence_parallel,
    sn40l,
    vllm,
    zero,
)

__all__ = [
    "attention",
    "fusemax",
    "h200_measured",
    "kv_budget",
    "llm_flash",
    "long_context",
    "memory_wall",
    "moe_offload",
    "pipeline",
    "published_e2e",
    "sequence_parallel",
    "sn40l",
    "vllm",
    "zero",
]
