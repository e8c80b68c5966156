"""Serving invariants over random configurations (hypothesis): requests and tokens are
conserved, capacity is never exceeded, time only moves forward."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw_models import load_system
from memsim.serving import (
    BLOCK_MANAGERS,
    SCHEDULERS,
    ServeConfig,
    make_requests,
    serve,
)

SYSTEM = load_system("h100_sxm")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheduler=st.sampled_from(SCHEDULERS.names()),
    manager=st.sampled_from(BLOCK_MANAGERS.names()),
    blocks=st.integers(40, 400),
    block_size=st.sampled_from([8, 16, 32]),
    swap=st.booleans(),
    rate=st.floats(2.0, 200.0),
    seed=st.integers(0, 1000),
)
def test_conservation_and_capacity(
    scheduler: str, manager: str, blocks: int, block_size: int, swap: bool, rate: float, seed: int
) -> None:
    reqs = make_requests(
        arrival=f"poisson:{rate}",
        requests=25,
        prompt_len="uniform:1:300",
        output_len="uniform:1:60",
        seed=seed,
    )
    config = ServeConfig(
        scheduler=scheduler,
        block_manager=manager,
        num_kv_blocks=blocks,
        block_size=block_size,
        max_seq_len=400,
        max_num_batched_tokens=512,
        kv_swap_tier="ddr" if swap else None,
    )
    result = serve(SYSTEM, "llama2_7b", reqs, config=config)
    r, it, s = result.requests, result.iterations, result.summary()
    done = ~r["dropped"]
    assert s["completed"] + s["dropped"] == 25
    assert s["generated_tokens"] == int(r["output_len"][done].sum())
    assert len(result.tbt_s) + s["completed"] == s["generated_tokens"]
    assert np.all(it["kv_blocks"] <= blocks)
    assert np.all(it["duration_s"] > 0)
    assert np.all(np.diff(it["start_s"]) >= it["duration_s"][:-1] * (1 - 1e-12))
    assert np.all(r["first_token_s"][done] > r["arrival_s"][done])
    # swapped bytes come back: every byte swapped out is swapped in again
    assert it["swap_out_bytes"].sum() == it["swap_in_bytes"].sum()
    assert s["swapped_bytes"] == it["swap_out_bytes"].sum() + it["swap_in_bytes"].sum()
