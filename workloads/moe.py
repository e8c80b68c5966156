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
    experts: Sequence[Graph],
    *,
    schedule: Sequence[int],
    names: Sequence[str] | None = None,
    slots: int | None = None,
) -> Graph:
    """Serve ``schedule`` (indices into ``experts``) one after another, switching models.

    Each expert's tensors are prefixed ``NAME/``. Its weights get a stored copy
    ``NAME/stored`` (kind weight, the whole model) from which a ``switch`` op
    (phase ``switch``) reads all weight bytes and writes the working weights.

    * ``slots=None``: every expert has its own working copy ``NAME/<weight>``; a
      switch happens whenever the scheduled expert differs from the previous one.
      Working copies add up with the number of experts.
    * ``slots=k``: ``k`` fixed working slots (Samba-CoE's region pre-allocated in HBM
      for the current experts, MICRO 2024 Fig. 9). Slot ``j`` holds tensors
      ``slot{j}/<weight>``, each as large as the largest expert's weight of that name,
      so the working copies take ``k`` x the largest expert whatever the number of
      experts. An expert already in a slot runs from it (no copy); otherwise the
      switch copies it into a free slot, else into the least recently used one
      (``attrs``: ``slot``, ``evicts``). ``meta["switch_bytes"]`` is the bytes copied.
      Only scheduled experts get their non-weight tensors (KV cache, activations).
    """
    if not experts:
        raise SpecError([Problem("experts", "expected at least one expert graph")])
    labels = list(names) if names is not None else [f"expert{i}" for i in range(len(experts))]
    if len(labels) != len(experts) or len(set(labels)) != len(labels):
        raise SpecError([Problem("names", "expected one distinct name per expert")])
    for i, e in enumerate(schedule):
        if not 0 <= e < len(experts):
            raise SpecError([Problem(f"schedule[{i}]", f"no expert {e} (have {len(experts)})")])
    if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int) or slots < 1):
        raise SpecError([Problem("slots", f"expected an integer >= 1, found {slots!r}")])
    used = set(schedule)
    tensors: dict[str, Tensor] = {}
    for i, (label, g) in enumerate(zip(labels, experts, strict=True)):
        for t in g.tensors.values():
            if slots is not None and (t.kind == "weight" or i not in used):
                continue
            tensors[f"{label}/{t.name}"] = _renamed(t, f"{label}/{t.name}")
        stored = g.tensor_bytes("weight")
        tensors[f"{label}/stored"] = Tensor(name=f"{label}/stored", bytes=stored, kind="weight")
    if slots is not None:
        largest: dict[str, Tensor] = {}
        for g in experts:
            for t in g.tensors.values():
                if t.kind == "weight" and t.bytes >= largest.get(t.name, t).bytes:
                    largest[t.name] = t
        for j in range(slots):
            for t in largest.values():
                tensors[f"slot{j}/{t.name}"] = _renamed(t, f"slot{j}/{t.name}")
    ops: list[Op] = []
    resident: list[int | None] = [None] * (slots or 0)  # expert index per slot
    last_use: list[int] = [-1] * (slots or 0)
    current = None
    switch_bytes = 0.0
    for r, e in enumerate(schedule):
        label, g = labels[e], experts[e]
        weights = [t for t in g.tensors.values() if t.kind == "weight"]
        if slots is None:
            where, hit, evicts = label, e == current, None
        elif e in resident:
            j = resident.index(e)
            where, hit, evicts = f"slot{j}", True, None
        else:
            j = resident.index(None) if None in resident else int(np.argmin(last_use))
            evicted = resident[j]
            evicts = None if evicted is None else labels[evicted]
            resident[j] = e
            where, hit = f"slot{j}", False
        if slots is not None:
            last_use[resident.index(e)] = r
        if not hit:
            attrs: dict[str, object] = {"request": r, "expert": label}
            if slots is not None:
                attrs |= {"slot": int(where[4:]), "evicts": evicts}
            ops.append(
                Op(
                    name=f"{label}/switch",
                    kind="other",
                    reads=(Access(tensor=f"{label}/stored", bytes=g.tensor_bytes("weight")),),
                    writes=tuple(
                        Access(tensor=f"{where}/{t.name}", bytes=t.bytes) for t in weights
                    ),
                    phase="switch",
                    attrs=attrs,
                )
            )
            switch_bytes += g.tensor_bytes("weight")
            current = e
        base = len(ops)

        def name_of(tensor: str, *, g: Graph = g, label: str = label, where: str = where) -> str:
            kind = g.tensors[tensor].kind if tensor in g.tensors else None
            return f"{where}/{tensor}" if kind == "weight" else f"{label}/{tensor}"

        for i, op in enumerate(g.ops):
            deps = None if op.deps is None else tuple(base + d for d in op.deps)
            if i == 0:
                deps = (base - 1,) if base else ()
            ops.append(
                Op(
                    name=f"{label}/{op.name}",
                    kind=op.kind,
                    flops=op.flops,
                    reads=tuple(Access(tensor=name_of(a.tensor), bytes=a.bytes) for a in op.reads),
                    writes=tuple(
                        Access(tensor=name_of(a.tensor), bytes=a.bytes) for a in op.writes
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
    meta: dict[str, object] = {
        "kind": "composition_of_experts",
        "experts": labels,
        "schedule": list(schedule),
        "switches": sum(1 for op in ops if op.phase == "switch"),
        "switch_bytes": switch_bytes,
    }
    if slots is not None:
        meta["slots"] = slots
    tp = {g.meta.get("tp") for g in experts} - {None}
    if len(tp) == 1:
        meta["tp"] = tp.pop()
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta)


def _renamed(t: Tensor, name: str) -> Tensor:
    return Tensor(
        name=name,
        bytes=t.bytes,
        kind=t.kind,
        dtype=t.dtype,
        shape=t.shape,
        layer=t.layer,
        stage=t.stage,
    )
