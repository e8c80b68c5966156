"""Mixture of experts routing loads, and composition of experts (switching whole models).

* :func:`expert_loads` turns an expert-popularity distribution into tokens per
  expert and the probability that each expert's weights are touched at all.
* :func:`composition_of_experts` chains graphs of several expert models that live
  in a lower tier (Samba-CoE style): when the serving model changes, a ``switch``
  op copies the incoming model's weights from their stored copy to the copy its
  ops read, so a placement can put the stored copies in DDR or flash and the
  working copies in HBM.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hw_models.errors import Problem, SpecError
from workloads.graph import Access, Graph, Op, Tensor


def expert_loads(
    probs: Sequence[float], *, tokens: int, k: int, seed: int | None = None
) -> tuple[list[float], list[float]]:
    """Tokens routed to each expert and the probability its weights are read.

    ``probs[e]`` is expert ``e``'s share of routing slots. Each token picks ``k``
    distinct experts, so it picks ``e`` with probability ``min(1, k p_e)``:

    * ``seed=None``: expected values, ``tokens_e = tokens k p_e`` and
      ``hit_e = 1 - (1 - min(1, k p_e))^tokens``;
    * with a seed: one sample (``k`` distinct experts per token, drawn by
      popularity), ``hit_e`` is 1 for experts that got a token, else 0.
    """
    p = np.asarray(probs, dtype=float)
    if seed is None:
        pick = np.minimum(1.0, k * p)
        return [float(x) for x in tokens * k * p], [float(x) for x in 1.0 - (1.0 - pick) ** tokens]
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(p))
    nonzero = int((p > 0).sum())
    if nonzero < k:
        raise SpecError(
            [Problem("moe.popularity", f"only {nonzero} experts have a share, need {k}")]
        )
    for _ in range(tokens):
        counts[rng.choice(len(p), size=k, replace=False, p=p)] += 1
    return [float(c) for c in counts], [1.0 if c > 0 else 0.0 for c in counts]


def composition_of_experts(
    experts: Sequence[Graph], *, schedule: Sequence[int], names: Sequence[str] | None = None
) -> Graph:
    """Serve ``schedule`` (indices into ``experts``) one after another, switching models.

    Each expert's tensors are prefixed ``NAME/``. Its weights get a stored copy
    ``NAME/stored`` (kind weight, the whole model) from which a ``switch`` op
    (phase ``switch``) reads all weight bytes and writes the working weights,
    whenever the scheduled expert differs from the previous one.
    """
    if not experts:
        raise SpecError([Problem("experts", "expected at least one expert graph")])
    labels = list(names) if names is not None else [f"expert{i}" for i in range(len(experts))]
    if len(labels) != len(experts) or len(set(labels)) != len(labels):
        raise SpecError([Problem("names", "expected one distinct name per expert")])
    for i, e in enumerate(schedule):
        if not 0 <= e < len(experts):
            raise SpecError([Problem(f"schedule[{i}]", f"no expert {e} (have {len(experts)})")])
    tensors: dict[str, Tensor] = {}
    for label, g in zip(labels, experts, strict=True):
        for t in g.tensors.values():
            tensors[f"{label}/{t.name}"] = Tensor(
                name=f"{label}/{t.name}",
                bytes=t.bytes,
                kind=t.kind,
                dtype=t.dtype,
                shape=t.shape,
                layer=t.layer,
                stage=t.stage,
            )
        stored = g.tensor_bytes("weight")
        tensors[f"{label}/stored"] = Tensor(name=f"{label}/stored", bytes=stored, kind="weight")
    ops: list[Op] = []
    current = None
    for r, e in enumerate(schedule):
        label, g = labels[e], experts[e]
        if e != current:
            weights = [t for t in g.tensors.values() if t.kind == "weight"]
            ops.append(
                Op(
                    name=f"{label}/switch",
                    kind="other",
                    reads=(Access(tensor=f"{label}/stored", bytes=g.tensor_bytes("weight")),),
                    writes=tuple(
                        Access(tensor=f"{label}/{t.name}", bytes=t.bytes) for t in weights
                    ),
                    phase="switch",
                    attrs={"request": r, "expert": label},
                )
            )
            current = e
        base = len(ops)
        for i, op in enumerate(g.ops):
            deps = None if op.deps is None else tuple(base + d for d in op.deps)
            if i == 0:
                deps = (base - 1,) if base else ()
            ops.append(
                Op(
                    name=f"{label}/{op.name}",
                    kind=op.kind,
                    flops=op.flops,
                    reads=tuple(
                        Access(tensor=f"{label}/{a.tensor}", bytes=a.bytes) for a in op.reads
                    ),
                    writes=tuple(
                        Access(tensor=f"{label}/{a.tensor}", bytes=a.bytes) for a in op.writes
                    ),
                    dtype=op.dtype,
                    gemm=op.gemm,
                    collective=op.collective,
                    layer=op.layer,
                    phase=op.phase,
                    step=op.step,
                    stage=op.stage,
                    micro_batch=op.micro_batch,
                    fuse_group=op.fuse_group,
                    deps=deps,
                    attrs={**op.attrs, "request": r, "expert": label},
                )
            )
    meta = {
        "kind": "composition_of_experts",
        "experts": labels,
        "schedule": list(schedule),
        "switches": sum(1 for op in ops if op.phase == "switch"),
    }
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta)
