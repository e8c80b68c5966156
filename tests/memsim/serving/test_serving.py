"""Acceptance tests of the serving layer: conservation, low-load latency, KV limits, swapping.

Model: Llama-2-7B in bf16 on one H100 (``h100_sxm``). Its KV cache per token is
2 (K and V) x 32 layers x 32 KV heads x 128 dims x 2 bytes = 524,288 bytes, so a
16-token block is 8 MiB.
"""

from __future__ import annotations

import numpy as np
import pytest

import workloads
from hw_models import System, load_system
from hw_models.errors import SpecError
from memsim import simulate
from memsim.serving import (
    SCHEDULERS,
    SUMMARY_KEYS,
    Bucketing,
    Requests,
    ServeConfig,
    ServeResult,
    make_requests,
    serve,
)

KV_PER_TOKEN = 2 * 32 * 32 * 128 * 2
BLOCK_BYTES = 16 * KV_PER_TOKEN
EXACT = Bucketing(exact=True)


@pytest.fixture(scope="module")
def system() -> System:
    return load_system("h100_sxm")


@pytest.fixture(scope="module")
def cfg() -> workloads.ModelConfig:
    return workloads.load_model("llama2_7b")


def _burst(n: int, prompt: int, output: int, *, gap_s: float = 0.0) -> Requests:
    return Requests(
        arrival_s=np.arange(n, dtype=np.float64) * gap_s,
        prompt_len=np.full(n, prompt, dtype=np.int64),
        output_len=np.full(n, output, dtype=np.int64),
    )


def _check_conservation(result: ServeResult, reqs: Requests) -> None:
    r = result.requests
    s = result.summary()
    assert sorted(r["rid"].tolist()) == list(range(len(reqs)))  # each request once
    done = ~r["dropped"]
    assert np.all(np.isfinite(r["finish_s"][done]))
    assert np.all(np.isnan(r["finish_s"][~done]))
    assert s["completed"] + s["dropped"] == len(reqs)
    assert s["generated_tokens"] == int(reqs.output_len[done].sum())
    # every token was produced once: one first token per request plus one gap per later token
    assert len(result.tbt_s) + s["completed"] == s["generated_tokens"]
    assert np.all(result.tbt_s > 0)
    assert np.all(r["first_token_s"][done] > r["arrival_s"][done])
    assert np.all(r["finish_s"][done] >= r["first_token_s"][done])
    # the block manager never overcommits and is empty at the end
    kv = s["meta"]["kv"]
    assert result.iterations["kv_blocks"].max() <= kv["num_blocks"]


@pytest.mark.parametrize("scheduler", SCHEDULERS.names())
def test_every_request_completes_once_under_preemption(system: System, scheduler: str) -> None:
    reqs = make_requests(
        arrival="poisson:40",
        requests=60,
        prompt_len="uniform:32:400",
        output_len="uniform:8:200",
        seed=3,
    )
    # 120 blocks of 16 tokens: a few requests at a time, so decodes must preempt
    config = ServeConfig(scheduler=scheduler, num_kv_blocks=80, max_num_batched_tokens=1024)
    result = serve(system, "llama2_7b", reqs, config=config)
    _check_conservation(result, reqs)
    s = result.summary()
    assert s["dropped"] == 0
    assert set(SUMMARY_KEYS) <= set(s)
    if scheduler != "static":
        assert s["preemptions"] > 0  # the test exercises preemption by recompute


def test_requests_that_can_never_fit_are_dropped_not_lost(system: System) -> None:
    reqs = Requests(
        arrival_s=np.array([0.0, 0.1, 0.2]),
        prompt_len=np.array([100, 5000, 100], dtype=np.int64),
        output_len=np.array([10, 10, 10], dtype=np.int64),
    )
    # 64 blocks x 16 = 1024 tokens: the 5000-token prompt can never be held
    result = serve(system, "llama2_7b", reqs, config=ServeConfig(num_kv_blocks=64))
    _check_conservation(result, reqs)
    assert result.requests["dropped"].tolist() == [False, True, False]


@pytest.mark.slow
def test_littles_law_on_a_long_poisson_run(system: System) -> None:
    reqs = make_requests(
        arrival="poisson:12",
        requests=2000,
        prompt_len="lognormal:400:0.5:2000",
        output_len="lognormal:100:0.5:400",
        seed=11,
    )
    result = serve(system, "llama2_7b", reqs)
    _check_conservation(result, reqs)
    s = result.summary()
    # L (time average of the engine's own count of requests in the system) = lambda x W
    little = s["throughput_requests_per_s"] * s["e2e_mean_s"]
    assert s["mean_in_system"] == pytest.approx(little, rel=0.02)
    assert s["mean_in_system"] > 5  # a loaded system, not an empty one


def test_low_load_latency_is_single_request_prefill_and_decode(
    system: System, cfg: workloads.ModelConfig
) -> None:
    prompt, output = 100, 4
    reqs = _burst(3, prompt, output, gap_s=50.0)  # 50 s apart: never two in the system
    config = ServeConfig(bucketing=EXACT)
    result = serve(system, cfg, reqs, config=config)
    opts = config.build_options(system)
    prefill = simulate(
        system, workloads.prefill(cfg, batch=1, prompt_len=prompt, **opts), fidelity="analytic"
    ).makespan_s
    steps = [
        simulate(
            system,
            workloads.decode(cfg, batch=1, context_len=prompt + k, **opts),
            fidelity="analytic",
        ).makespan_s
        for k in range(output - 1)
    ]
    r = result.requests
    assert r["ttft_s"] == pytest.approx([prefill] * 3, rel=1e-12)
    assert result.tbt_s == pytest.approx(steps * 3, rel=1e-9)
    assert r["e2e_s"] == pytest.approx([prefill + sum(steps)] * 3, rel=1e-9)
    assert r["queue_s"] == pytest.approx([0.0] * 3, abs=1e-15)


def test_kv_capacity_limits_the_batch_and_throughput_saturates(system: System) -> None:
    # prompt 120 + 8 outputs: the cache grows to 127 tokens = 8 blocks for its whole life
    # (120 tokens already need ceil(120/16) = 8), so 80 blocks hold exactly 80 / 8 = 10.
    def run(blocks: int, n: int) -> ServeResult:
        config = ServeConfig(num_kv_blocks=blocks, watermark=0.0, bucketing=EXACT)
        return serve(system, "llama2_7b", _burst(n, 120, 8), config=config)

    small, more = run(80, 40), run(80, 80)
    assert small.iterations["decode_tokens"].max() == 10
    assert more.iterations["decode_tokens"].max() == 10
    assert small.summary()["preemptions"] == 0
    # saturated: twice the offered work, same throughput (cohorts of 10 repeat)
    assert more.summary()["throughput_tokens_per_s"] == pytest.approx(
        small.summary()["throughput_tokens_per_s"], rel=1e-6
    )
    doubled = run(160, 80)
    assert doubled.iterations["decode_tokens"].max() == 20
    assert doubled.summary()["throughput_tokens_per_s"] > more.summary()["throughput_tokens_per_s"]


def test_paged_admits_more_than_contiguous_by_reserved_over_used(system: System) -> None:
    # 256 blocks x 16 = 4096 tokens. Requests: 240 prompt + 16 outputs -> 255 tokens = 16 blocks.
    # Contiguous reserves max_seq_len = 1024 tokens (64 blocks): 256 / 64 = 4 at once.
    # Paged holds what is used: 256 / 16 = 16 at once; ratio 16 / 4 = 1024 / 256 reserved/used.
    reqs = _burst(40, 240, 16)
    peak, frag = {}, {}
    for manager in ("paged", "contiguous"):
        config = ServeConfig(
            block_manager=manager,
            num_kv_blocks=256,
            max_seq_len=1024,
            watermark=0.0,
            bucketing=EXACT,
        )
        result = serve(system, "llama2_7b", reqs, config=config)
        _check_conservation(result, reqs)
        peak[manager] = int(result.iterations["decode_tokens"].max())
        its = result.iterations
        busy = its["decode_tokens"] == its["decode_tokens"].max()
        frag[manager] = float(its["kv_fragmentation"][busy][0])
    assert peak == {"paged": 16, "contiguous": 4}
    # first full decode: 241 tokens each in 16-block (256-slot) pages or 1024-slot reservations
    assert frag["paged"] == pytest.approx(1 - 241 / 256)
    assert frag["contiguous"] == pytest.approx(1 - 241 / 1024)
    assert peak["paged"] / peak["contiguous"] == 1024 / 256


def test_swapping_costs_the_blocks_over_pcie(system: System) -> None:
    # Two requests of 144 prompt tokens (9 blocks each) growing to 144 + 40 - 1 = 183 tokens
    # in a 20-block pool: both grow to 160 tokens (10 blocks each, pool full); at 161 the
    # earlier one needs an 11th block and the later one is swapped out with its 10 blocks.
    reqs = _burst(2, 144, 40)
    config = ServeConfig(num_kv_blocks=20, watermark=0.0, kv_swap_tier="ddr", bucketing=EXACT)
    result = serve(system, "llama2_7b", reqs, config=config)
    _check_conservation(result, reqs)
    it = result.iterations
    out = np.flatnonzero(it["swap_out_bytes"] > 0)
    back = np.flatnonzero(it["swap_in_bytes"] > 0)
    assert len(out) == 1 and len(back) == 1
    moved = 10 * BLOCK_BYTES  # 10 x 8 MiB = 83,886,080 bytes
    assert it["swap_out_bytes"][out[0]] == moved
    assert it["swap_in_bytes"][back[0]] == moved
    # PCIe Gen5 x16 of the preset: 64 GB/s x 0.8 achievable, 1 us latency
    assert it["swap_s"][out[0]] == pytest.approx(1e-6 + moved / (64e9 * 0.8), rel=1e-12)
    assert it["swap_s"][back[0]] == pytest.approx(1e-6 + moved / (64e9 * 0.8), rel=1e-12)
    assert result.requests["swapped_bytes"].tolist() == [0.0, 2 * moved]
    s = result.summary()
    assert s["swapped_bytes"] == 2 * moved and s["preemptions"] == 1
    assert s["peak_kv_bytes"] == 20 * BLOCK_BYTES


def test_same_inputs_same_result(system: System) -> None:
    reqs = make_requests(arrival="gamma:20:2", requests=20, output_len="fixed:16", seed=5)
    a = serve(system, "llama2_7b", reqs).summary()
    b = serve(system, "llama2_7b", reqs).summary()
    assert a == b


def test_prefix_sharing_holds_the_system_prompt_once(
    system: System, cfg: workloads.ModelConfig
) -> None:
    # Prompts: a 256-token system prompt + 16 own tokens; 16 outputs -> 287 tokens at the end.
    # Unshared: ceil(287 / 16) = 18 blocks each -> 256 // 18 = 14 at once.
    # Shared: the prefix's 16 blocks once; each request ceil((287 - 256) / 16) = 2 blocks
    # -> (256 - 16) // 2 = 120 at once.
    reqs = make_requests(
        arrival="poisson:1000",
        requests=150,
        prompt_len="fixed:16",
        output_len="fixed:16",
        shared_prefix=256,
    )
    assert set(reqs.prompt_len.tolist()) == {272}
    peak = {}
    for sharing in (False, True):
        config = ServeConfig(
            num_kv_blocks=256, watermark=0.0, prefix_sharing=sharing, bucketing=EXACT
        )
        result = serve(system, cfg, reqs, config=config)
        _check_conservation(result, reqs)
        peak[sharing] = int(result.iterations["decode_tokens"].max())
    assert peak == {False: 14, True: 120}
    # at low load a shared-prefix request prefills only its own 16 tokens after 256 cached
    alone = make_requests(
        arrival="poisson:0.01",
        requests=2,
        prompt_len="fixed:16",
        output_len="fixed:2",
        shared_prefix=256,
    )
    config = ServeConfig(prefix_sharing=True, bucketing=EXACT)
    r = serve(system, cfg, alone, config=config).requests
    opts = config.build_options(system)
    step = workloads.batch_step(cfg, sequences=[(16, 256)], **opts)
    expected = simulate(system, step, fidelity="analytic").makespan_s
    full = simulate(
        system, workloads.prefill(cfg, batch=1, prompt_len=272, **opts), fidelity="analytic"
    ).makespan_s
    assert r["ttft_s"] == pytest.approx([expected] * 2, rel=1e-12)
    assert expected < full  # both read all weights once (H100 is memory-bound here)


def test_disaggregated_prefill_and_decode_pools(cfg: workloads.ModelConfig) -> None:
    dgx = load_system("dgx_h100")
    prompt, output = 300, 4
    reqs = _burst(3, prompt, output, gap_s=50.0)
    config = ServeConfig(disaggregated=True, bucketing=EXACT)
    result = serve(dgx, cfg, reqs, config=config)
    _check_conservation(result, reqs)
    opts = config.build_options(dgx)
    prefill = simulate(
        dgx, workloads.prefill(cfg, batch=1, prompt_len=prompt, **opts), fidelity="analytic"
    ).makespan_s
    steps = [
        simulate(
            dgx,
            workloads.decode(cfg, batch=1, context_len=prompt + k, **opts),
            fidelity="analytic",
        ).makespan_s
        for k in range(output - 1)
    ]
    # the prompt's KV (300 x 512 KiB) crosses NVLink: 450 GB/s x 0.85 achievable, 2 us
    transfer = prompt * KV_PER_TOKEN / (450e9 * 0.85) + 2e-6
    r = result.requests
    assert r["ttft_s"] == pytest.approx([prefill] * 3, rel=1e-12)
    gaps = [transfer + steps[0], *steps[1:]]
    assert result.tbt_s == pytest.approx(gaps * 3, rel=1e-9)
    pools = result.iterations["pool"]
    assert set(pools) == {"prefill", "decode"}
    it = result.iterations
    assert it["prefill_tokens"][pools == "decode"].sum() == 0  # the decode pool only decodes
    assert it["decode_tokens"][pools == "prefill"].sum() == 0
    # on a single-GPU system there is no second pool
    with pytest.raises(SpecError, match="need 2 devices"):
        serve("h100_sxm", cfg, reqs, config=config)


def test_disaggregated_conserves_under_load(cfg: workloads.ModelConfig) -> None:
    reqs = make_requests(
        arrival="poisson:30",
        requests=60,
        prompt_len="uniform:32:600",
        output_len="uniform:1:80",
        seed=9,
    )
    config = ServeConfig(disaggregated=True, num_kv_blocks=150)
    result = serve("dgx_h100", cfg, reqs, config=config)
    _check_conservation(result, reqs)
    s = result.summary()
    assert s["dropped"] == 0 and s["preemptions"] > 0
