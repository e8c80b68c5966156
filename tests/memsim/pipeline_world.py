"""Small pipeline-parallel (and tensor-parallel) worlds shared by the pipeline tests."""

from __future__ import annotations

from typing import Any

from hw_models import System
from tests.memsim.world import tiny
from workloads.graph import Access, Collective, Graph, Op, Tensor

# tiny + 4 devices joined by a 100 GB/s device-to-device link (2 us), for tp > 1
NVLINK = {"kind": "nvlink", "between": ["hbm", "hbm"], "bandwidth_bytes_per_s": 100e9,
          "latency_s": 2e-6}  # fmt: skip


def tiny_pp(**overrides: Any) -> System:
    """The tiny system with 4 devices and a device-to-device link."""
    return tiny(**{"devices": 4, "links.nvlink": NVLINK, **overrides})


def pipeline_graph(
    *,
    stages: int,
    micro_batches: int,
    layers_per_stage: int = 1,
    weight_bytes: float = 1e9,
    act_bytes: float = 4096,
    flops: float = 2e6,
    tp: int = 1,
    coll_bytes: float = 1e6,
) -> Graph:
    """GPipe-style forward: micro-batch ``m`` runs stage ``s`` after stage ``s - 1``
    (its activations arrive) and after micro-batch ``m - 1`` left stage ``s``.

    Each layer is one GEMM-like op reading its weight ``w{layer}`` (on its stage) and
    the micro-batch's activation ``h{m}``, writing ``h{m}``; with ``tp > 1`` each layer
    also all-reduces ``coll_bytes``. Ops are listed micro-batch by micro-batch, which is
    a topological order whose per-stage order is the micro-batch order.
    With ``micro_batches == 1`` the deps are the plain chain (a sequential graph).
    """
    tensors = {}
    for s in range(stages):
        for j in range(layers_per_stage):
            li = s * layers_per_stage + j
            tensors[f"w{li}"] = Tensor(
                name=f"w{li}", bytes=weight_bytes, kind="weight", layer=li, stage=s
            )
    for m in range(micro_batches):
        tensors[f"h{m}"] = Tensor(name=f"h{m}", bytes=act_bytes, kind="activation")
    ops: list[Op] = []
    last: dict[tuple[int, int], int] = {}  # (stage, micro-batch) -> its last op
    for m in range(micro_batches):
        for s in range(stages):
            for j in range(layers_per_stage):
                li = s * layers_per_stage + j
                deps: set[int] = set()
                if j:  # the previous layer of this stage and micro-batch
                    deps.add(len(ops) - 1)
                if j == 0:
                    for key in ((s - 1, m), (s, m - 1)):
                        if key in last:
                            deps.add(last[key])
                h = f"h{m}"
                ops.append(
                    Op(
                        name=f"m{m}.L{li}",
                        kind="gemm",
                        flops=flops,
                        reads=(
                            Access(tensor=f"w{li}", bytes=weight_bytes),
                            Access(tensor=h, bytes=act_bytes),
                        ),
                        writes=(Access(tensor=h, bytes=act_bytes),),
                        layer=li,
                        stage=s,
                        micro_batch=m,
                        step=1,
                        phase="prefill",
                        deps=tuple(sorted(deps)),
                    )
                )
                if tp > 1:
                    ops.append(
                        Op(
                            name=f"m{m}.L{li}.ar",
                            kind="collective",
                            collective=Collective(kind="all_reduce", bytes=coll_bytes, group=tp),
                            reads=(Access(tensor=h, bytes=act_bytes),),
                            writes=(Access(tensor=h, bytes=act_bytes),),
                            layer=li,
                            stage=s,
                            micro_batch=m,
                            step=1,
                            phase="prefill",
                            deps=(len(ops) - 1,),
                        )
                    )
                last[s, m] = len(ops) - 1
    meta = {"batch": micro_batches, "tokens": micro_batches, "tp": tp, "pp": stages}
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta)
