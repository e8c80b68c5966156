"""ZeRO's memory and communication (Rajbhandari et al., SC 2020).

Figure 1 of the paper: model states per device for a 7.5 B-parameter model on 64
data-parallel ranks with mixed-precision Adam (K = 12 bytes of optimizer state per
parameter) are 120 GB for plain data parallelism, 31.4 GB with the optimizer states
partitioned (P_os), 16.6 GB with gradients too (P_os+g) and 1.9 GB with the weights
too (P_os+g+p). The reduction factors do not depend on the parameter count, so memsim
builds Llama-2-7B training steps with ``dp=64, zero=stage`` and compares the model
states one rank's graph holds (weights + optimizer states + the gradients it keeps)
with the paper's ratios. Section 7: P_os and P_os+g move as many bytes as plain data
parallelism, P_os+g+p 1.5x as many; memsim counts the link bytes of the graph's
collectives. Byte counts: ``exact``.
"""

from __future__ import annotations

from memsim.cost import collective_link_bytes
from validation.core import Outcome, case
from workloads import Graph, load_model, train_step

SOURCE = (
    'Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter '
    'Models", SC 2020'
)
DP = 64


def _step(stage: int, *, dp: int = DP) -> Graph:
    return train_step(load_model("llama2_7b"), batch=dp, seq_len=16, dp=dp, zero=stage)


def _model_states(stage: int) -> float:
    g = _step(stage)
    # P_os and plain data parallelism keep whole gradients (``grad.W``) until the step's
    # reduce-scatter or all-reduce; P_os+g and P_os+g+p keep only the rank's shard
    prefix = "shard.grad." if stage >= 2 else "grad."
    grads = sum(t.bytes for n, t in g.tensors.items() if n.startswith(prefix) and "@" not in n)
    return g.tensor_bytes("weight") + g.tensor_bytes("optimizer") + grads


def _reduction(stage: int) -> Outcome:
    base, part = _model_states(0), _model_states(stage)
    return Outcome(
        memsim=base / part,
        note=f"Llama-2-7B, dp={DP}: {base / 1e9:.1f} GB -> {part / 1e9:.2f} GB per rank",
    )


@case(
    "zero_pos_memory",
    title="ZeRO P_os: optimizer states partitioned over 64 ranks",
    source=SOURCE + ", Figure 1 (120 GB -> 31.4 GB)",
    quantity="model-state memory reduction per rank, dp = 64",
    unit="x",
    paper=120 / 31.4,
    tolerance="exact",
)
def pos() -> Outcome:
    return _reduction(1)


@case(
    "zero_posg_memory",
    title="ZeRO P_os+g: optimizer states and gradients partitioned",
    source=SOURCE + ", Figure 1 (120 GB -> 16.6 GB)",
    quantity="model-state memory reduction per rank, dp = 64",
    unit="x",
    paper=120 / 16.6,
    tolerance="exact",
)
def posg() -> Outcome:
    return _reduction(2)


@case(
    "zero_posgp_memory",
    title="ZeRO P_os+g+p: weights partitioned too",
    source=SOURCE + ", Figure 1 (120 GB -> 1.9 GB)",
    quantity="model-state memory reduction per rank, dp = 64",
    unit="x",
    paper=120 / 1.9,
    tolerance="exact",
)
def posgp() -> Outcome:
    return _reduction(3)


def _link_bytes(g: Graph) -> float:
    return sum(
        collective_link_bytes(op.collective.kind, op.collective.bytes, op.collective.group)
        for op in g.ops
        if op.collective is not None
    )


@case(
    "zero_posgp_communication",
    title="ZeRO P_os+g+p moves 1.5x the bytes of plain data parallelism",
    source=SOURCE + ", Section 7.2",
    quantity="link bytes per step, P_os+g+p / plain data parallelism (dp = 8)",
    unit="x",
    paper=1.5,
    tolerance="exact",
)
def posgp_comm() -> Outcome:
    base, full = _link_bytes(_step(0, dp=8)), _link_bytes(_step(3, dp=8))
    return Outcome(memsim=full / base, note=f"{base / 1e9:.2f} GB vs {full / 1e9:.2f} GB per rank")
