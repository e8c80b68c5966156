"""`KVServeProblem`: configure an LLM server's KV cache and scheduler for an arrival trace.

Parameters (fields of :class:`memsim.serving.ServeConfig`): ``scheduler``
(continuous, chunked prefill, static), KV ``block_size``, the KV swap tier
(``kv_swap_tier``: none, i.e. preemption by recompute, or host DDR with swap
preemption), the scheduler's token budget ``max_num_batched_tokens``, its sequence
budget ``max_num_seqs`` and the block manager's admission ``watermark``. Each
configuration serves the same requests through :func:`memsim.serving.serve`
(analytic iteration costs).

The default server is memory-tight on purpose (``gpu_memory_utilization`` 0.25 of an
80 GB H100: ~5 GB of KV after Llama-2-7B's 13.5 GB of weights), so KV management
matters; 96 requests arrive as a Poisson process at 20 /s with 1,024-token prompts and
128-token outputs; SLOs: TTFT <= 0.5 s, TBT <= 50 ms.

Reward: goodput (requests per second that met both SLOs) divided by the offered
arrival rate (1.0 = every request served within its SLOs at the rate it came).
Infeasible, never served: a scheduler without chunked prefill whose token budget is
below the longest prompt (no prompt could ever be admitted).
"""

from __future__ import annotations

from typing import Any

from explore.envs.problem import Choice, ConfigProblem, Evaluation

NO_SWAP = "none"


class KVServeProblem(ConfigProblem):
    """Serving configuration under SLOs (see the module doc)."""

    name = "KVServe"

    def __init__(
        self,
        *,
        system: str = "h100_sxm",
        model: str = "llama2_7b",
        rate_per_s: float = 20.0,
        requests: int = 96,
        prompt_len: int = 1024,
        output_len: int = 128,
        seed: int = 0,
        gpu_memory_utilization: float = 0.25,
        slo_ttft_s: float = 0.5,
        slo_tbt_s: float = 0.05,
        swap_tier: str = "ddr",
    ) -> None:
        from memsim.serving import SCHEDULERS, make_requests

        self.system = system
        self.model = model
        self.rate_per_s = rate_per_s
        self.requests = make_requests(
            arrival=f"poisson:{rate_per_s}",
            requests=requests,
            prompt_len=f"fixed:{prompt_len}",
            output_len=f"fixed:{output_len}",
            seed=seed,
        )
        self.max_prompt = prompt_len
        self.fixed: dict[str, Any] = {
            "gpu_memory_utilization": gpu_memory_utilization,
            "slo_ttft_s": slo_ttft_s,
            "slo_tbt_s": slo_tbt_s,
        }
        self.choices = (
            Choice(name="scheduler", values=tuple(SCHEDULERS.names())),
            Choice(name="block_size", values=(16, 8, 32, 64)),
            Choice(name="kv_swap_tier", values=(NO_SWAP, swap_tier)),
            Choice(name="max_num_batched_tokens", values=(8192, 512, 1024, 2048, 4096)),
            Choice(name="max_num_seqs", values=(256, 8, 16, 32, 64)),
            Choice(name="watermark", values=(0.01, 0.0, 0.05, 0.1)),
        )
        self.workload = {
            "model": model,
            "rate_per_s": rate_per_s,
            "requests": requests,
            "prompt_len": prompt_len,
            "output_len": output_len,
        }

    def default_index(self) -> tuple[int, ...]:
        """vLLM's defaults: continuous batching, block 16, no swap, 8192 tokens, 256 seqs."""
        return (self.choices[0].values.index("continuous"), 0, 0, 0, 0, 0)

    def _combination_problem(self, config: dict[str, Any]) -> str | None:
        if config["scheduler"] != "chunked" and config["max_num_batched_tokens"] < self.max_prompt:
            return (
                f"{config['scheduler']} scheduling with a token budget of "
                f"{config['max_num_batched_tokens']} cannot admit a {self.max_prompt}-token prompt"
            )
        return None

    def serve_config(self, config: dict[str, Any]) -> Any:
        """The :class:`memsim.serving.ServeConfig` of a configuration."""
        from memsim.serving import ServeConfig

        swap = config["kv_swap_tier"]
        fields: dict[str, Any] = {k: v for k, v in config.items() if k != "kv_swap_tier"}
        if swap != NO_SWAP:
            fields |= {"kv_swap_tier": swap, "preemption": "swap"}
        return ServeConfig(**(fields | self.fixed))

    def _simulate(self, config: dict[str, Any]) -> Evaluation:
        from memsim.serving import serve

        s = serve(
            self.system, self.model, self.requests, config=self.serve_config(config)
        ).summary()
        keys = (
            "goodput_requests_per_s",
            "slo_attainment",
            "ttft_p99_s",
            "tbt_p99_s",
            "preemptions",
        )
        metrics = {k: float(s[k]) for k in keys if s.get(k) is not None}
        goodput = metrics.get("goodput_requests_per_s", 0.0)
        return Evaluation(reward=goodput / self.rate_per_s, metrics=metrics)

    def describe(self) -> dict[str, Any]:
        """Problem description for summaries."""
        return super().describe() | {
            "system": self.system,
            "workload": self.workload,
            "fixed": self.fixed,
        }
