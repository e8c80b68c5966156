"""`MemCtrlProblem`: choose the DRAM controller's settings for one trace.

Parameters: the controller's own search space,
:func:`memsim.dram.config.search_space` (page/row policy, scheduler, scheduler-buffer
organisation, request-buffer size, response queue, refresh mode, maximum postponed
and pulled-in refreshes, arbiter, maximum active transactions, address mapping);
every one is a knob the compiled controller loop reads, none is decorative.
Infeasible choices (:meth:`memsim.dram.ControllerConfig.problems_with`: per-bank
refresh on a device without tRFCpb, a bank-wise buffer with fewer entries than
banks) are masked or refused, never simulated.

Traces (``trace=``): ``stream``, ``random``, ``mix`` (random, one write in three),
``mixed`` (two requestors: a stream and a random read/write mix, interleaved, which
is where the arbiter matters), ``llm`` (the memory requests of one decode step of a
transformer, :func:`workloads.requests.request_stream`, the first ``requests``), or
``file`` (``trace_file`` in ``trace_format``). Synthetic and LLM traces arrive at
``rate`` x peak bandwidth.

Metrics: ``latency_ns``, the mean read latency from *arrival* to the end of the data
burst (the controller's read latency plus the wait for a buffer slot, so a tiny
buffer cannot look fast by refusing requests), and ``power_w``, the DRAM energy of
serving the whole trace (commands plus background states, :mod:`memsim.dram.power`)
over the trace's *offered* duration (first to last arrival; for a trace whose
requests all arrive at once, the default controller's run time). The denominator is
fixed, so a controller cannot look frugal by stretching the run: energy divided by
the run's own duration would be lowest for the slowest controller (measured: FCFS
with a small buffer "halved" it while latency grew 80x). ``avg_power_w`` (energy /
run time) is reported for context.

Reward (higher is better): the mean over the chosen objectives of ``reference /
metric``, where the reference is the default controller's metric on the same trace
(``reward_mode="improvement"``: 1.0 = as good as the default) or a target the user
gives (``reward_mode="target"``). The default configuration is simulated once per
problem, lazily, outside any explorer's budget (the same for all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explore.envs.problem import Choice, ConfigProblem, Evaluation
from hw_models.errors import Problem, SpecError

TRACES = ("stream", "random", "mix", "mixed", "llm", "file")
OBJECTIVES = ("latency", "power", "both")
REWARD_MODES = ("improvement", "target")
METRIC_OF = {"latency": "latency_ns", "power": "power_w"}

#: a small Llama-shaped model for the ``llm`` trace (its decode step's requests
#: touch weights, KV cache and activations within a few 10^4 requests)
TINY_LLM: dict[str, Any] = {
    "name": "tiny_llama",
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 688,
    "vocab_size": 2048,
}


def _choices() -> tuple[Choice, ...]:
    """The controller's own search space (:func:`memsim.dram.config.search_space`)."""
    from memsim.dram.config import search_space

    return tuple(Choice(name=k, values=tuple(v)) for k, v in search_space().items())


def controller_fields(config: dict[str, Any]) -> dict[str, Any]:
    """ControllerConfig fields of an environment configuration (the same names)."""
    return dict(config)


def llm_trace(device: Any, n: int, *, interval_cycles: float, model: str = "tiny") -> Any:
    """The first ``n`` DRAM requests of one decode step (batch 4, 512-token context) of
    ``model`` (``tiny``: :data:`TINY_LLM`; else a model preset), every tensor in DRAM."""
    from memsim.dram import RequestTrace
    from workloads import request_stream
    from workloads.model_config import ModelConfig, load_model
    from workloads.transformer import decode

    cfg = ModelConfig(**TINY_LLM) if model == "tiny" else load_model(model)
    graph = decode(cfg, batch=4, context_len=512)
    line = device.organization.access_bytes
    taken, total = [], 0
    for i, op in enumerate(graph.ops):  # only the ops that make the first n requests
        taken.append(i)
        total += int(sum(-(-a.bytes // line) for a in (*op.reads, *op.writes) if a.bytes > 0))
        if total >= n:
            break
    sub = graph.select(taken)
    rs = request_stream(sub, dict.fromkeys(sub.tensors, "dram"), tier="dram", line_bytes=line)
    m = min(n, len(rs))
    addr = rs.address[:m].astype(np.int64) % device.capacity_bytes
    arrival = np.floor(np.arange(m) * interval_cycles).astype(np.int64)
    return RequestTrace.from_arrays(addr, arrival_cycle=arrival, is_write=rs.is_write[:m])


def make_trace(
    device: Any,
    trace: str,
    *,
    requests: int,
    rate: float,
    seed: int,
    trace_file: str | None = None,
    trace_format: str | None = None,
) -> Any:
    """The request trace a :class:`MemCtrlProblem` simulates (see the module doc)."""
    from memsim.dram import RequestTrace, traffic

    if trace not in TRACES:
        raise SpecError([Problem("trace", f"unknown trace {trace!r} (known: {', '.join(TRACES)})")])
    if trace == "file":
        if trace_file is None or trace_format is None:
            raise SpecError(
                [Problem("trace_file", "trace='file' needs trace_file and trace_format")]
            )
        return RequestTrace.from_file(trace_file, format=trace_format)
    if requests <= 0:
        raise SpecError([Problem("requests", f"expected a count > 0, found {requests}")])
    interval = traffic.interval_for_rate(device, rate)
    if trace == "llm":
        return llm_trace(device, requests, interval_cycles=interval)
    if trace == "mixed":
        half = requests // 2
        a = traffic.stream(device, half, interval_cycles=2 * interval, seed=seed)
        b = traffic.mix(device, requests - half, interval_cycles=2 * interval, seed=seed + 1)
        return traffic.requestors([a, b])
    return traffic.PATTERNS.create(trace, device, requests, seed=seed, interval_cycles=interval)


class MemCtrlProblem(ConfigProblem):
    """The controller-configuration problem (see the module doc)."""

    name = "MemCtrl"

    def __init__(
        self,
        *,
        device: str = "DDR4_3200",
        trace: str = "mixed",
        requests: int = 20_000,
        rate: float = 0.6,
        trace_seed: int = 0,
        trace_file: str | None = None,
        trace_format: str | None = None,
        objective: str = "both",
        reward_mode: str = "improvement",
        target: dict[str, float] | None = None,
    ) -> None:
        from hw_models import load_dram_device

        problems = []
        if objective not in OBJECTIVES:
            problems.append(
                Problem("objective", f"unknown {objective!r} (known: {', '.join(OBJECTIVES)})")
            )
        if reward_mode not in REWARD_MODES:
            problems.append(
                Problem("reward_mode", f"unknown {reward_mode!r} (known: improvement, target)")
            )
        wanted = ["latency", "power"] if objective == "both" else [objective]
        if reward_mode == "target":
            for o in wanted:
                v = (target or {}).get(METRIC_OF.get(o, o))
                if v is None or not v > 0:
                    problems.append(
                        Problem(f"target.{METRIC_OF.get(o, o)}", f"expected a value > 0, found {v}")
                    )
        if problems:
            raise SpecError(problems)
        self.device = load_dram_device(device)
        self.device_name = device
        self.trace_name = trace
        self.objective = objective
        self.reward_mode = reward_mode
        self.metrics_used = tuple(METRIC_OF[o] for o in wanted)
        self.trace = make_trace(
            self.device,
            trace,
            requests=requests,
            rate=rate,
            seed=trace_seed,
            trace_file=trace_file,
            trace_format=trace_format,
        )
        self.choices = _choices()
        self._reference: dict[str, float] | None = (
            {m: float(target[m]) for m in self.metrics_used}
            if target and reward_mode == "target"
            else None
        )
        org = self.device.organization
        self._banks = org.ranks * org.banks
        arr = self.trace.arrival_cycle
        span = int(arr.max() - arr.min()) if len(self.trace) else 0
        self._offered_s = span * self.device.timing.tCK_ns * 1e-9
        self.name = f"MemCtrl[{trace},{objective}]"

    def _static_mask(self) -> list[list[int]]:
        # a value is masked when the controller refuses it on this device by itself
        # (e.g. per-bank refresh without tRFCpb): the problem names that very field
        from memsim.dram import ControllerConfig

        default = self.config(self.default_index())
        mask = []
        for c in self.choices:
            row = []
            for v in c.values:
                try:
                    probs = ControllerConfig(**(default | {c.name: v})).problems_with(self.device)
                except ValueError:
                    row.append(0)
                    continue
                row.append(int(not any(p.path == c.name for p in probs)))
            mask.append(row)
        return mask

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        problems = self.controller(config).problems_with(self.device)
        return "; ".join(f"{p.path}: {p.message}" for p in problems) or None

    def controller(self, config: dict[str, Any]) -> Any:
        """The :class:`memsim.dram.ControllerConfig` of a configuration."""
        from memsim.dram import ControllerConfig

        return ControllerConfig(**controller_fields(config))

    def measure(self, config: dict[str, Any]) -> dict[str, float]:
        """Simulate the trace under ``config``: latency_ns, power_w and context figures."""
        from memsim.dram import simulate_request_times

        stats, times = simulate_request_times(
            self.device, self.trace, config=self.controller(config)
        )
        reads = ~self.trace.is_write
        e2e = (times.completion - times.arrival)[reads]
        latency_ns = float(e2e.mean()) * stats.tck_ns if e2e.size else 0.0
        if self._offered_s <= 0:  # all requests at once: the default's run time, once
            default = self.config(self.default_index())
            self._offered_s = (
                stats.duration_s
                if config == default
                else simulate_request_times(
                    self.device, self.trace, config=self.controller(default)
                )[0].duration_s
            )
        return {
            "latency_ns": latency_ns,
            "power_w": stats.energy_j / self._offered_s if self._offered_s > 0 else 0.0,
            "avg_power_w": stats.energy_j / stats.duration_s if stats.duration_s > 0 else 0.0,
            "energy_j": stats.energy_j,
            "bandwidth_gbps": stats.bandwidth_gbps,
            "controller_read_latency_ns": stats.avg_read_latency_ns,
        }

    def default_index(self) -> tuple[int, ...]:
        """The controller's defaults (with the device standard's default mapping)."""
        from memsim.dram import ControllerConfig
        from memsim.request_fidelity import DEFAULT_MAPPING

        d = ControllerConfig().model_dump()
        d["mapping"] = DEFAULT_MAPPING.get(str(self.device.standard), d["mapping"])
        return tuple(c.values.index(d[c.name]) for c in self.choices)

    def reference(self) -> dict[str, float]:
        """The metrics rewards are relative to (the default's, simulated once, or the target)."""
        if self._reference is None:
            self._reference = self.measure(self.config(self.default_index()))
        return self._reference

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        m = self.measure(config)
        ref = self.reference()
        ratios = [ref[k] / m[k] if m[k] > 0 else 0.0 for k in self.metrics_used]
        return Evaluation(reward=float(np.mean(ratios)), metrics=m)

    def replay_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """ControllerConfig fields: ``memsim dram --config best.json`` replays them."""
        return controller_fields(config)

    def describe(self) -> dict[str, Any]:
        """Problem description for summaries."""
        return super().describe() | {
            "device": self.device_name,
            "trace": self.trace_name,
            "requests": len(self.trace),
            "objective": self.objective,
            "reward_mode": self.reward_mode,
            "reference": self.reference(),
        }
