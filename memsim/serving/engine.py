"""The iteration loop: arrivals -> scheduler -> block manager -> priced iteration -> tokens.

:func:`serve` owns the clock and every piece of state of one run (the
scheduler's queues, the block manager, the iteration-cost memo); two calls
never share anything, so the same inputs give the same result in any order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hw_models import System, load_system
from hw_models.errors import Problem, SpecError
from hw_models.units import fmt_bytes
from memsim.cost import link_time
from memsim.graph_fit import attention_buffer_bytes
from memsim.policies import placeable_tiers
from memsim.policies.base import transient_peak_bytes
from memsim.serving.iteration import Bucketing, IterationCost
from memsim.serving.kv import KVGeometry, make_block_manager
from memsim.serving.requests import Requests
from memsim.serving.result import ServeResult
from memsim.serving.scheduler import Budget, Seq, make_scheduler
from workloads import ModelConfig, batch_step, load_model

PREEMPTIONS = ("recompute", "swap")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """How the server runs: scheduler, budgets, KV manager and model options.

    Defaults follow vLLM (block size 16, ``max_num_seqs`` 256, 90 % of device
    memory, watermark 1 %). ``num_kv_blocks`` overrides the pool size computed
    from the device tier (capacity x ``gpu_memory_utilization`` - weights -
    the activations of the largest iteration).
    """

    scheduler: str = "continuous"
    block_manager: str = "paged"
    block_size: int = 16
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_seq_len: int | None = None
    gpu_memory_utilization: float = 0.9
    watermark: float = 0.01
    num_kv_blocks: int | None = None
    kv_swap_tier: str | None = None
    preemption: str | None = None
    prefix_sharing: bool = False
    disaggregated: bool = False
    slo_ttft_s: float | None = None
    slo_tbt_s: float | None = None
    dtype: str = "bf16"
    kv_dtype: str | None = None
    tp: int = 1
    attention: str = "fused"
    fidelity: str = "analytic"
    bucketing: Bucketing = field(default_factory=Bucketing)

    def check(self) -> None:
        """:class:`SpecError` naming every bad field."""
        problems = []
        for name in ("block_size", "max_num_seqs", "max_num_batched_tokens", "tp"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                problems.append(Problem(name, f"expected an integer >= 1, found {v!r}"))
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            problems.append(
                Problem(
                    "gpu_memory_utilization",
                    f"expected (0, 1], found {self.gpu_memory_utilization}",
                )
            )
        if self.preemption is not None and self.preemption not in PREEMPTIONS:
            problems.append(
                Problem(
                    "preemption", f"unknown {self.preemption!r} (known: {', '.join(PREEMPTIONS)})"
                )
            )
        if self.preemption == "swap" and self.kv_swap_tier is None:
            problems.append(Problem("preemption", "swap needs kv_swap_tier"))
        for name in ("slo_ttft_s", "slo_tbt_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                problems.append(Problem(name, f"expected > 0, found {v}"))
        if self.disaggregated and self.scheduler != "continuous":
            problems.append(
                Problem("disaggregated", "needs the continuous scheduler in both pools")
            )
        if self.num_kv_blocks is not None and self.num_kv_blocks < 1:
            problems.append(Problem("num_kv_blocks", f"expected >= 1, found {self.num_kv_blocks}"))
        if problems:
            raise SpecError(problems)

    def build_options(self, system: System) -> dict[str, Any]:
        """Keywords for the workloads builders.

        The attention buffer is the one :func:`memsim.simulate` would fit
        (:func:`memsim.graph_fit.attention_buffer_bytes`), given up front so each
        iteration graph is built once.
        """
        opts: dict[str, Any] = {
            "dtype": self.dtype,
            "kv_dtype": self.kv_dtype,
            "tp": self.tp,
            "attention": self.attention,
        }
        buffer = attention_buffer_bytes(system, self.dtype)
        if buffer is not None and self.attention != "unfused":
            opts["sram_bytes"] = buffer
        return opts


@dataclass(frozen=True, slots=True, kw_only=True)
class KVPlan:
    """Where the KV pool lives and how big it is (what the summary reports)."""

    device_tier: str
    capacity_bytes: float
    weight_bytes: float
    activation_bytes: float
    geometry: KVGeometry
    swap_tier: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the summary."""
        g = self.geometry
        return {
            "device_tier": self.device_tier,
            "capacity_bytes": self.capacity_bytes,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "kv_pool_bytes": g.num_blocks * g.block_bytes,
            "num_blocks": g.num_blocks,
            "block_size": g.block_size,
            "block_bytes": g.block_bytes,
            "kv_bytes_per_token": g.bytes_per_token,
            "swap_tier": self.swap_tier,
            "swap_blocks": g.swap_blocks,
        }


def plan_kv(system: System, cfg: ModelConfig, config: ServeConfig) -> KVPlan:
    """Size the KV pool on the fastest device tier; :class:`SpecError` if nothing is left."""
    opts = config.build_options(system)
    device = next(t for t in placeable_tiers(system) if system.tiers[t].scope == "device")
    probe = batch_step(cfg, sequences=[(1, 1)], **opts)
    kv_per_token = sum(t.bytes for t in probe.tensors.values() if t.kind == "kv") / 2.0
    weights = sum(t.bytes for t in probe.tensors.values() if t.kind == "weight")
    biggest = batch_step(cfg, sequences=[(config.max_num_batched_tokens, 0)], **opts)
    transient = [n for n, t in biggest.tensors.items() if not t.persistent]
    activations = transient_peak_bytes(biggest, transient)
    capacity = system.tiers[device].capacity_bytes
    block_bytes = config.block_size * kv_per_token
    if config.num_kv_blocks is not None:
        blocks = config.num_kv_blocks
    else:
        room = capacity * config.gpu_memory_utilization - weights - activations
        blocks = math.floor(room / block_bytes) if room > 0 else 0
        if blocks < 1:
            short = block_bytes - room
            raise SpecError(
                [
                    Problem(
                        f"tiers.{device}.capacity_bytes",
                        f"{cfg.name} leaves no room for a KV block in {device} of {system.name}: "
                        f"{fmt_bytes(capacity * config.gpu_memory_utilization)} usable, weights "
                        f"{fmt_bytes(weights)}, activations {fmt_bytes(activations)}; short by "
                        f"{fmt_bytes(short)} (use more devices, --tp, or a smaller dtype)",
                    )
                ]
            )
    swap_blocks = 0
    if config.kv_swap_tier is not None:
        if config.kv_swap_tier not in system.tiers:
            raise SpecError(
                [
                    Problem(
                        "kv_swap_tier",
                        f"unknown tier {config.kv_swap_tier!r} (known: {', '.join(system.tiers)})",
                    )
                ]
            )
        if not system.path(device, config.kv_swap_tier):
            raise SpecError(
                [Problem("kv_swap_tier", f"no link joins {device} and {config.kv_swap_tier}")]
            )
        spec = system.tiers[config.kv_swap_tier]
        room = spec.capacity_bytes / (config.tp if spec.scope != "device" else 1)
        swap_blocks = math.floor(room / block_bytes)
    geometry = KVGeometry(
        block_size=config.block_size,
        num_blocks=blocks,
        bytes_per_token=kv_per_token,
        swap_blocks=swap_blocks,
    )
    return KVPlan(
        device_tier=device,
        capacity_bytes=capacity,
        weight_bytes=weights,
        activation_bytes=activations,
        geometry=geometry,
        swap_tier=config.kv_swap_tier,
    )


def serve(
    system: System | str | Path,
    model: ModelConfig | str,
    requests: Requests,
    *,
    config: ServeConfig | None = None,
    progress: bool = False,
) -> ServeResult:
    """Serve ``requests`` on ``system`` with ``model``; returns a :class:`ServeResult`.

    Each iteration's graph is built by :func:`workloads.batch_step` and priced by
    :func:`memsim.simulate` (memoised by batch shape, see
    :mod:`memsim.serving.iteration`). A request that could never be held (longer
    than the KV pool, than ``max_seq_len``, or than the token budget of a
    non-chunked scheduler) is dropped at arrival and reported as dropped.
    ``progress`` shows a tqdm bar (silent when stderr is not a terminal).

    >>> from memsim.serving import serve, make_requests
    >>> reqs = make_requests(arrival="poisson:2", requests=20, seed=1)
    >>> # serve("h100_sxm", "llama2_7b", reqs).summary()["ttft_p50_s"]
    """
    config = config or ServeConfig()
    config.check()
    sys_ = system if isinstance(system, System) else load_system(system)
    cfg = model if isinstance(model, ModelConfig) else load_model(model)
    kv = plan_kv(sys_, cfg, config)
    max_seq_len = config.max_seq_len or cfg.max_position_embeddings
    shared = requests.shared_prefix if config.prefix_sharing else 0
    preemption = config.preemption or ("swap" if config.kv_swap_tier else "recompute")
    budget = Budget(
        max_num_seqs=config.max_num_seqs,
        max_num_batched_tokens=config.max_num_batched_tokens,
        preemption=preemption,
    )

    def pool() -> tuple[Any, Any]:
        blocks = make_block_manager(
            config.block_manager,
            kv.geometry,
            watermark=config.watermark,
            max_seq_len=max_seq_len,
            shared_prefix_tokens=shared,
        )
        return make_scheduler(config.scheduler, blocks, budget), blocks

    cost = IterationCost(
        sys_,
        cfg,
        device_tier=kv.device_tier,
        build_options=config.build_options(sys_),
        fidelity=config.fidelity,
        bucketing=config.bucketing,
    )
    sched, blocks = pool()
    seqs = _seqs(requests, blocks.shared_tokens)
    if config.disaggregated:
        result = _disaggregated(sys_, seqs, pool, cost, kv, config, progress=progress)
    else:
        loop = _Loop(seqs, sched, blocks, cost, kv, config, progress=progress)
        loop.run()
        result = loop.result()
    meta = {
        "system": sys_.name,
        "model": cfg.name,
        "scheduler": config.scheduler,
        "block_manager": config.block_manager,
        "preemption": preemption,
        "shared_prefix": requests.shared_prefix,
        "prefix_sharing": config.prefix_sharing,
        "shared_prefix_tokens_held": blocks.shared_tokens,
        "max_num_seqs": config.max_num_seqs,
        "max_num_batched_tokens": config.max_num_batched_tokens,
        "max_seq_len": max_seq_len,
        "slo_ttft_s": config.slo_ttft_s,
        "slo_tbt_s": config.slo_tbt_s,
        "fidelity": config.fidelity,
        "bucketing": {
            "exact": config.bucketing.exact,
            "exact_below": config.bucketing.exact_below,
            "steps_per_octave": config.bucketing.steps_per_octave,
        },
        "simulations": cost.simulations,
        "kv": kv.to_dict(),
        "disaggregated": config.disaggregated,
    }
    return dataclasses.replace(result, meta=meta)


def _seqs(requests: Requests, shared_tokens: int) -> list[Seq]:
    seqs = [
        Seq(i, a, int(p), int(o))
        for i, (a, p, o) in enumerate(
            zip(
                requests.arrival_s.tolist(),
                requests.prompt_len.tolist(),
                requests.output_len.tolist(),
                strict=True,
            )
        )
    ]
    for s in seqs:
        s.cached = shared_tokens  # a shared prefix is already in the cache
    return seqs


def _disaggregated(
    system: System,
    seqs: list[Seq],
    pool: Any,
    cost: IterationCost,
    kv: KVPlan,
    config: ServeConfig,
    *,
    progress: bool,
) -> ServeResult:
    """Prefill on one device pool, decode on another (DistServe, Zhong et al. OSDI 2024;
    Splitwise, Patel et al. ISCA 2024).

    The prefill pool runs every prompt to its first token; the prompt's KV then
    crosses the devices' peer link (:func:`memsim.cost.link_time`, NVLink on a
    DGX) and the request joins the decode pool, which only decodes. Each pool has
    ``tp`` devices. The decode pool never holds back the prefill pool (no
    back-pressure), so the two are simulated one after the other; transfers do
    not contend with each other on the link.
    """
    if 2 * config.tp > system.devices:
        raise SpecError(
            [
                Problem(
                    "disaggregated",
                    f"two pools of tp={config.tp} need {2 * config.tp} devices, "
                    f"{system.name} has {system.devices}",
                )
            ]
        )
    peer = system.peer_link(kv.device_tier)
    if peer is None:
        raise SpecError(
            [Problem("disaggregated", f"{system.name} has no link between its devices")]
        )
    link = system.links[peer]
    _, probe = pool()  # a request the decode pool could never hold is dropped at arrival
    keep = [s for s in seqs if probe.fits_ever(s.final_len)]
    prompts = []
    for s in keep:
        p = Seq(s.rid, s.arrival_s, s.prompt_len, 1)
        p.cached = s.cached
        prompts.append(p)
    sched, blocks = pool()
    first = _Loop(prompts, sched, blocks, cost, kv, config, progress=progress)
    first.run()
    decodes: list[Seq] = []
    handed: dict[int, Seq] = {}
    for p, s in zip(prompts, keep, strict=True):
        if not p.done:
            continue
        s.first_token_s = s.last_token_s = s.finish_s = p.first_token_s
        s.scheduled_s = p.scheduled_s
        s.preemptions, s.swapped_bytes = p.preemptions, p.swapped_bytes
        s.generated, s.done = 1, s.output_len == 1
        if s.done:
            continue
        nbytes = s.prompt_len * kv.geometry.bytes_per_token
        d = Seq(
            s.rid,
            p.first_token_s + link_time(link, nbytes) + link.latency_s,
            s.prompt_len,
            s.output_len,
        )
        d.cached = d.target = s.prompt_len  # arrives with its prompt's KV
        d.generated = 1
        d.first_token_s = d.last_token_s = p.first_token_s
        decodes.append(d)
        handed[s.rid] = d
    decodes.sort(key=lambda d: (d.arrival_s, d.rid))
    sched, blocks = pool()
    second = _Loop(decodes, sched, blocks, cost, kv, config, progress=progress)
    second.run()
    for s in keep:
        twin = handed.get(s.rid)
        if twin is not None:
            s.done, s.finish_s = twin.done, twin.finish_s
            s.preemptions += twin.preemptions
            s.swapped_bytes += twin.swapped_bytes
    n1 = len(first.rows["start_s"])
    rows = {k: first.rows[k] + second.rows[k] for k in _ITERATION_COLUMNS}
    order = np.argsort(np.asarray(rows["start_s"]), kind="stable")
    iterations = {k: np.asarray(v)[order] for k, v in rows.items()}
    pools = np.array(["prefill"] * n1 + ["decode"] * (len(order) - n1))
    iterations["pool"] = pools[order]
    dropped = np.array([not s.done for s in seqs])
    return _result(seqs, dropped, iterations, np.asarray(second.tbt, dtype=np.float64))


def _result(
    seqs: list[Seq],
    dropped: np.ndarray[Any, Any],
    iterations: dict[str, np.ndarray[Any, Any]],
    tbt: np.ndarray[Any, Any],
) -> ServeResult:
    """The per-request table from the requests' final state, with the iteration table."""
    nan = float("nan")
    arrival = np.array([s.arrival_s for s in seqs], dtype=np.float64)
    first = np.array([s.first_token_s if s.done else nan for s in seqs], dtype=np.float64)
    finish = np.array([s.finish_s if s.done else nan for s in seqs], dtype=np.float64)
    sched = np.array([s.scheduled_s if s.done else nan for s in seqs], dtype=np.float64)
    out_len = np.array([s.output_len for s in seqs], dtype=np.int64)
    gaps = np.maximum(out_len - 1, 1)
    tbt_mean = np.where(out_len > 1, (finish - first) / gaps, nan)
    requests = {
        "rid": np.array([s.rid for s in seqs], dtype=np.int64),
        "arrival_s": arrival,
        "prompt_len": np.array([s.prompt_len for s in seqs], dtype=np.int64),
        "output_len": out_len,
        "dropped": dropped,
        "first_token_s": first,
        "finish_s": finish,
        "ttft_s": first - arrival,
        "e2e_s": finish - arrival,
        "queue_s": sched - arrival,
        "tbt_mean_s": tbt_mean,
        "preemptions": np.array([s.preemptions for s in seqs], dtype=np.int64),
        "swapped_bytes": np.array([s.swapped_bytes for s in seqs], dtype=np.float64),
    }
    return ServeResult(requests=requests, iterations=iterations, tbt_s=tbt)


class _Loop:
    """State of one run: the clock, the requests and the tables being filled."""

    def __init__(
        self,
        seqs: list[Seq],
        sched: Any,
        blocks: Any,
        cost: IterationCost,
        kv: KVPlan,
        config: ServeConfig,
        *,
        progress: bool,
    ) -> None:
        self.sched, self.blocks, self.cost, self.kv, self.config = sched, blocks, cost, kv, config
        self.seqs = seqs  # in arrival order
        self.dropped = np.zeros(len(self.seqs), dtype=bool)
        self.tbt: list[float] = []
        self.rows: dict[str, list[float]] = {k: [] for k in _ITERATION_COLUMNS}
        self.finished = 0
        self.progress = progress

    def _admissible(self, s: Seq) -> bool:
        if not self.blocks.fits_ever(s.final_len):
            return False
        return not (
            self.config.scheduler != "chunked" and s.prompt_len > self.config.max_num_batched_tokens
        )

    def run(self) -> None:
        """Advance the clock iteration by iteration until every request is done or dropped."""
        from tqdm import tqdm

        seqs, n = self.seqs, len(self.seqs)
        bar = tqdm(total=n, unit="req", disable=None if self.progress else True, leave=False)
        t, nxt, gone = 0.0, 0, 0
        sched = self.sched
        try:
            while True:
                while nxt < n and seqs[nxt].arrival_s <= t:
                    s = seqs[nxt]
                    if self._admissible(s):
                        sched.add(s)
                    else:
                        self.dropped[nxt] = True
                        gone += 1
                    nxt += 1
                in_system = nxt - gone - self.finished
                if not in_system:
                    if nxt >= n:
                        break
                    t = max(t, seqs[nxt].arrival_s)
                    continue
                queues = (len(sched.waiting), len(sched.running), len(sched.swapped))
                step = sched.schedule()
                if not (step.prefill or step.decode or step.padding):
                    if nxt < n:
                        t = max(t, seqs[nxt].arrival_s)
                        continue
                    raise RuntimeError("serving scheduler made no progress with requests waiting")
                before = self.finished
                t = self._iterate(step, t, in_system, queues)
                bar.update(self.finished - before)
        finally:
            bar.close()

    def _iterate(self, step: Any, t: float, in_system: int, queues: tuple[int, int, int]) -> float:
        contexts = [s.cached for s in step.decode] + step.padding
        chunks = [(k, s.cached) for s, k in step.prefill]
        compute = self.cost.time(decode_contexts=contexts, prompt_chunks=chunks)
        swap = 0.0
        if step.swap_out_bytes or step.swap_in_bytes:
            tier, dev = self.kv.swap_tier or "", self.kv.device_tier
            swap = self.cost.swap_time(step.swap_out_bytes, src=dev, dst=tier)
            swap += self.cost.swap_time(step.swap_in_bytes, src=tier, dst=dev)
        end = t + compute + swap
        for s, k in step.prefill:
            if s.scheduled_s < 0:
                s.scheduled_s = t
            s.cached += k
            if s.cached == s.target:
                self._token(s, end)
        for s in step.decode:
            s.cached += 1
            self._token(s, end)
        g = self.kv.geometry
        used = self.blocks.used_blocks
        row = self.rows
        row["start_s"].append(t)
        row["duration_s"].append(end - t)
        row["compute_s"].append(compute)
        row["swap_s"].append(swap)
        row["prefill_tokens"].append(sum(k for _, k in chunks))
        row["decode_tokens"].append(len(step.decode))
        row["prefill_seqs"].append(len(chunks))
        row["padding_seqs"].append(len(step.padding))
        row["waiting"].append(queues[0])
        row["running"].append(queues[1])
        row["swapped"].append(queues[2])
        row["in_system"].append(in_system)
        row["kv_blocks"].append(used)
        row["kv_bytes"].append(used * g.block_bytes)
        row["kv_tokens"].append(self.blocks.used_tokens)
        row["kv_utilization"].append(used / g.num_blocks)
        slots = used * g.block_size
        row["kv_fragmentation"].append(1.0 - self.blocks.used_tokens / slots if slots else 0.0)
        row["preempted"].append(step.preempted)
        row["swap_out_bytes"].append(step.swap_out_bytes)
        row["swap_in_bytes"].append(step.swap_in_bytes)
        return end

    def _token(self, s: Seq, now: float) -> None:
        if s.generated == 0:
            s.first_token_s = now
        else:
            self.tbt.append(now - s.last_token_s)
        s.last_token_s = now
        s.generated += 1
        if s.generated == s.output_len:
            s.done = True
            s.finish_s = now
            self.finished += 1
            self.sched.finished(s)

    def result(self) -> ServeResult:
        """The two tables and the TBT samples."""
        iterations = {k: np.asarray(v) for k, v in self.rows.items()}
        return _result(self.seqs, self.dropped, iterations, np.asarray(self.tbt, dtype=np.float64))


_ITERATION_COLUMNS = (
    "start_s",
    "duration_s",
    "compute_s",
    "swap_s",
    "prefill_tokens",
    "decode_tokens",
    "prefill_seqs",
    "padding_seqs",
    "waiting",
    "running",
    "swapped",
    "in_system",
    "kv_blocks",
    "kv_bytes",
    "kv_tokens",
    "kv_utilization",
    "kv_fragmentation",
    "preempted",
    "swap_out_bytes",
    "swap_in_bytes",
)
