"""KV-cache budgets: H2O's heavy hitters (Zhang et al., NeurIPS 2023).

H2O keeps 20 % of the KV cache ("heavy hitters") and reports a 5x smaller KV-cache
footprint. memsim's decode graph with ``KVBudget(heavy_fraction=0.2)`` must read a
fifth of the KV bytes that full attention reads: a byte count, hence ``exact``.
"""

from __future__ import annotations

import workloads
from validation.core import Outcome, case
from workloads.options import KVBudget


def _kv_bytes(graph: workloads.Graph) -> float:
    total = 0.0
    for op in graph.ops:
        if op.kind != "attention":
            continue
        for access in op.reads:
            if graph.tensors[access.tensor].kind == "kv":
                total += access.bytes
    return total


@case(
    "h2o_kv_reduction",
    title="H2O with a 20 % heavy-hitter budget reads 5x fewer KV bytes",
    source='Zhang et al., "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of '
    'Large Language Models", NeurIPS 2023, Abstract and Section 5 '
    "(20 % KV budget, 5x smaller cache)",
    quantity="KV bytes read per decode step, full / 20 % budget (OPT-30B, context 2048)",
    unit="x",
    paper=5.0,
    tolerance="exact",
)
def h2o() -> Outcome:
    cfg = workloads.load_model("opt_30b")
    full = workloads.decode(cfg, batch=4, context_len=2048)
    budget = workloads.decode(
        cfg, batch=4, context_len=2048, kv_budget=KVBudget(heavy_fraction=0.2)
    )
    a, b = _kv_bytes(full), _kv_bytes(budget)
    return Outcome(memsim=a / b, note=f"{a / 1e9:.3f} GB vs {b / 1e9:.3f} GB of K and V read")
