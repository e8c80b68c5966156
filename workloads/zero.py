"""ZeRO data parallelism (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward
Training Trillion Parameter Models", Sec. 5) in training-step graphs.

With ``dp`` data-parallel ranks a training graph is one rank's share (SPMD, as
for tensor parallelism): it runs ``batch / dp`` sequences, and its model states
are sharded by ``stage``:

* ``0``, plain data parallelism: every rank holds all weights, gradients and
  optimizer states; each layer's gradients are all-reduced once the last
  micro-batch's backward has produced them (overlapping the rest of the
  backward, as PyTorch DDP's buckets do).
* ``1`` (P_os): optimizer states sharded, ``K Ψ / dp``. Gradients stay whole
  until the backward ends, then are reduce-scattered; each rank updates its
  shard of the weights and all-gathers them.
* ``2`` (P_os+g): gradients sharded too. Each layer's gradient of each
  micro-batch is reduce-scattered (accumulated into the rank's shard) right
  after that layer's backward, so a whole gradient lives only from its layer's
  backward to its reduce-scatter.
* ``3`` (P_os+g+p): weights sharded too. Before every run of a layer's ops (its
  forward, and its backward with any recomputation) the layer's weights are
  all-gathered into a transient whole copy, freed after the run.

Model states per rank (Ψ parameters, bf16 weights and gradients, Adam's
``K = 12`` bytes): ``(2 + 2 + K) Ψ``, ``2Ψ + 2Ψ + KΨ/dp``, ``2Ψ + (2 + K)Ψ/dp``,
``(2 + 2 + K)Ψ/dp`` (the paper's Fig. 1: 7.5 B parameters on 64 ranks,
120 / 31.4 / 16.6 / 1.9 GB).

Names: a gathered copy of weight ``W`` is ``W@F0.1.2`` (unit kind, stage,
micro-batch, run), kind ``activation``; a micro-batch's whole gradient before its
reduce-scatter ``grad.W@B0.1.2`` (stage ≥ 2); the rank's gradient shard, which
the optimizer reads, ``shard.grad.W`` (stage ≥ 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from workloads._builder import Builder
from workloads.graph import Access, Collective, Op

ZERO_STAGES: tuple[int, ...] = (0, 1, 2, 3)

Unit = tuple[str, int, int]


def grad_name(gradient: str, *, zero: int) -> str:
    """The gradient tensor the optimizer reads for weight gradient ``gradient``."""
    return f"shard.{gradient}" if zero >= 1 else gradient


def _runs(ops: list[Op]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each maximal run of consecutive ops of one layer."""
    start = 0
    for i in range(1, len(ops) + 1):
        if i == len(ops) or ops[i].layer != ops[start].layer:
            yield start, i
            start = i


def _collective(
    name: str, kind: str, nbytes: float, *, dp: int, like: Op, **io: tuple[Access, ...]
) -> Op:
    prefix = f"m{like.micro_batch}." if like.name.startswith(f"m{like.micro_batch}.") else ""
    return Op(
        name=f"{prefix}{name}",
        kind="collective",
        collective=Collective(kind=kind, bytes=float(nbytes), group=dp),  # type: ignore[arg-type]
        layer=like.layer,
        phase=like.phase,
        stage=like.stage,
        micro_batch=like.micro_batch,
        dtype=like.dtype,
        **io,  # type: ignore[arg-type]
    )


def _shard(b: Builder, name: str, dp: int, kind: str = "gradient") -> str:
    t = b.tensors[name]
    return b.tensor(
        f"shard.{name}", t.bytes / dp, kind, dtype=t.dtype, layer=t.layer, stage=t.stage
    )


def _label(op: Op) -> str:
    return f"L{op.layer}" if op.layer is not None else "other"


def apply_zero(
    b: Builder, units: dict[Unit, list[Op]], *, dp: int, zero: int, micro_batches: int
) -> None:
    """Rewrite the forward/backward ``units`` of a training step for ZeRO ``zero`` over
    ``dp`` ranks (in place; new tensors declared in ``b``). The optimizer step is
    sharded by :func:`workloads.training` with :func:`grad_name` and ``dp``."""
    if dp <= 1 and zero == 0:
        return
    weights = {n for n, t in b.tensors.items() if t.kind == "weight"}
    last_mb = micro_batches - 1
    for unit, ops in units.items():
        kind, s, m = unit
        out: list[Op] = []
        tail: list[Op] = []  # stage 1: reduce-scatters after the whole backward
        for r, (i0, i1) in enumerate(_runs(ops)):
            run = ops[i0:i1]
            if zero == 3:
                run = _gather_weights(b, run, weights, tag=f"{kind}{s}.{m}.{r}", dp=dp)
            if kind in ("B", "W"):  # a split backward's W pass makes the weight gradients
                run, after = _reduce_grads(
                    b, run, tag=f"B{s}.{m}.{r}", dp=dp, zero=zero, last=m == last_mb
                )
                if zero == 1:
                    tail += after
                else:
                    run += after
            out += run
        ops[:] = out + tail
    for name in weights if zero == 3 else ():
        t = b.tensors[name]
        b.tensors[name] = replace(t, bytes=t.bytes / dp)
    if zero >= 2:  # whole gradients exist only per micro-batch (``grad.W@...``) now
        for name in [n for n in b.tensors if n.startswith("grad.") and "@" not in n]:
            if f"shard.{name}" in b.tensors:
                del b.tensors[name]


def _gather_weights(b: Builder, run: list[Op], weights: set[str], *, tag: str, dp: int) -> list[Op]:
    """All-gather the weights ``run`` reads into transient whole copies it reads instead."""
    used = list(dict.fromkeys(a.tensor for op in run for a in op.reads if a.tensor in weights))
    if not used:
        return run
    copy: dict[str, str] = {}
    for w in used:
        t = b.tensors[w]
        copy[w] = b.tensor(
            f"{w}@{tag}", t.bytes, "activation", dtype=t.dtype, layer=t.layer, stage=t.stage
        )
    whole = sum(b.tensors[w].bytes for w in used)
    gather = _collective(
        f"{_label(run[0])}.{run[0].phase}.all_gather",
        "all_gather",
        whole,
        dp=dp,
        like=run[0],
        reads=tuple(b.acc(w, b.tensors[w].bytes / dp) for w in used),
        writes=tuple(b.acc(copy[w], b.tensors[w].bytes) for w in used),
    )
    renamed = [
        replace(op, reads=tuple(b.acc(copy.get(a.tensor, a.tensor), a.bytes) for a in op.reads))
        for op in run
    ]
    return [gather, *renamed]


def _reduce_grads(
    b: Builder, run: list[Op], *, tag: str, dp: int, zero: int, last: bool
) -> tuple[list[Op], list[Op]]:
    """The run (its weight-gradient writes renamed at stage >= 2) and the collectives
    that reduce those gradients after it."""
    grads = list(
        dict.fromkeys(
            a.tensor
            for op in run
            for a in op.writes
            if a.tensor.startswith("grad.") and b.tensors[a.tensor].kind == "gradient"
        )
    )
    if not grads:
        return run, []
    whole = sum(b.tensors[g].bytes for g in grads)
    name = f"{_label(run[0])}.grad"
    if zero == 0:  # all-reduce in place once the last micro-batch has accumulated them
        if not last or dp <= 1:
            return run, []
        acc = tuple(b.acc(g, b.tensors[g].bytes) for g in grads)
        return run, [
            _collective(
                f"{name}.all_reduce",
                "all_reduce",
                whole,
                dp=dp,
                like=run[-1],
                reads=acc,
                writes=acc,
            )
        ]
    shards = {g: _shard(b, g, dp) for g in grads}
    if zero == 1:  # whole gradients accumulate over micro-batches, reduced at the end
        if not last:
            return run, []
        sources = {g: g for g in grads}
        accumulate = False
    else:  # a whole gradient per micro-batch, accumulated into the shard
        sources = {}
        for g in grads:
            t = b.tensors[g]
            sources[g] = b.tensor(
                f"{g}@{tag}", t.bytes, "gradient", dtype=t.dtype, layer=t.layer, stage=t.stage
            )
        run = [
            replace(
                op,
                reads=tuple(a for a in op.reads if a.tensor not in sources),
                writes=tuple(b.acc(sources.get(a.tensor, a.tensor), a.bytes) for a in op.writes),
            )
            for op in run
        ]
        accumulate = run[0].micro_batch > 0
    reads = tuple(b.acc(sources[g], b.tensors[g].bytes) for g in grads)
    if accumulate:
        reads += tuple(b.acc(shards[g], b.tensors[shards[g]].bytes) for g in grads)
    writes = tuple(b.acc(shards[g], b.tensors[shards[g]].bytes) for g in grads)
    rs = _collective(
        f"{name}.reduce_scatter",
        "reduce_scatter",
        whole,
        dp=dp,
        like=run[-1],
        reads=reads,
        writes=writes,
    )
    return run, [rs]
