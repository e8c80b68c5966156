"""RL environments: Gymnasium and PettingZoo contracts, masks, rewards, replay."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")

from explore.envs import memctrl_parallel_env, memhierarchy_parallel_env, parallel_env  # noqa: E402
from explore.envs.gym_env import ConfigEnv  # noqa: E402
from explore.envs.memctrl import MemCtrlProblem  # noqa: E402
from explore.envs.memhierarchy import MemHierarchyProblem  # noqa: E402
from explore.envs.problem import INFEASIBLE_REWARD  # noqa: E402
from explore.envs.toy import ToyProblem  # noqa: E402

pytestmark = pytest.mark.rl


@pytest.fixture(scope="module")
def memctrl() -> MemCtrlProblem:
    return MemCtrlProblem(trace="mixed", requests=1500, objective="both")


def test_import_registers_ids_without_torch() -> None:
    code = (
        "import sys, explore, gymnasium as gym; "
        "ids = [i for i in gym.registry if i.startswith('memsim/')]; "
        "heavy = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]; "
        "print(sorted(ids), heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['memsim/KVServe-v0', 'memsim/MemCtrl-v0', 'memsim/MemHierarchy-v0', 'memsim/Toy-v0'] []"
    )


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("memsim/Toy-v0", {}),
        ("memsim/MemCtrl-v0", {"requests": 1000, "trace": "random"}),
        ("memsim/MemHierarchy-v0", {}),
    ],
)
def test_check_env(env_id: str, kwargs: dict[str, object]) -> None:
    from gymnasium.utils.env_checker import check_env

    import explore  # noqa: F401  (registers)

    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    assert isinstance(env.action_space, gym.spaces.MultiDiscrete)


def test_parallel_api() -> None:
    from pettingzoo.test import parallel_api_test

    parallel_api_test(parallel_env(ToyProblem()), num_cycles=5)
    parallel_api_test(memctrl_parallel_env(requests=1000, trace="stream"), num_cycles=2)
    parallel_api_test(memhierarchy_parallel_env(), num_cycles=2)


def test_parallel_env_one_agent_per_parameter_shared_reward(memctrl: MemCtrlProblem) -> None:
    env = parallel_env(memctrl)
    assert env.possible_agents == [f"agent_{c.name}" for c in memctrl.choices]
    env.reset(seed=0)
    acts = {a: i for a, i in zip(env.possible_agents, memctrl.default_index(), strict=True)}
    _, rewards, term, _, _ = env.step(acts)
    assert list(rewards.values()) == pytest.approx([1.0] * len(acts))  # the default vs itself
    assert all(term.values()) and env.agents == []


def test_memctrl_knobs_and_mask(memctrl: MemCtrlProblem) -> None:
    names = [c.name for c in memctrl.choices]
    assert names == [
        "row_policy", "scheduler", "buffer_organization", "request_buffer_size",
        "response_queue", "refresh", "refresh_max_postponed", "refresh_max_pulled_in",
        "arbiter", "max_active_transactions", "mapping",
    ]  # fmt: skip
    # DDR4-3200's preset has no tRFCpb: per-bank refresh is masked, never simulated
    refresh = memctrl.choices[names.index("refresh")]
    mask = memctrl.static_mask()[names.index("refresh")]
    assert dict(zip(refresh.values, mask.tolist(), strict=True)) == {"all_bank": 1, "per_bank": 0}
    # the default index is the controller's default (with DDR4's default mapping)
    cfg = memctrl.controller(memctrl.config(memctrl.default_index()))
    from memsim.dram import ControllerConfig

    assert cfg.model_dump() == ControllerConfig(mapping="RoCoBaRaCh").model_dump()


def test_infeasible_combination_is_not_simulated() -> None:
    calls = []
    problem = MemCtrlProblem(device="DDR5_4800", trace="stream", requests=500)
    env = ConfigEnv(problem, evaluator=lambda idx: calls.append(idx))  # type: ignore[arg-type,func-returns-value]
    env.reset(seed=0)
    idx = list(problem.default_index())
    names = [c.name for c in problem.choices]
    idx[names.index("buffer_organization")] = 2  # bank_wise
    idx[names.index("request_buffer_size")] = 1  # 16 entries < 32 banks of DDR5-4800
    _, reward, terminated, _, info = env.step(np.array(idx))
    assert (reward, terminated, info["feasible"], calls) == (INFEASIBLE_REWARD, True, False, [])
    assert "32 banks" in info["why"]


def test_memctrl_metrics_physics(memctrl: MemCtrlProblem) -> None:
    base = memctrl.config(memctrl.default_index())
    m = memctrl.measure(base)
    # power is energy over the trace's offered span (a fixed denominator)
    arr = memctrl.trace.arrival_cycle
    span_s = int(arr.max() - arr.min()) * memctrl.device.timing.tCK_ns * 1e-9
    assert m["power_w"] == pytest.approx(m["energy_j"] / span_s)
    # in-order scheduling of random traffic cannot beat FR-FCFS on latency
    fcfs = memctrl.measure(base | {"scheduler": "fcfs"})
    assert fcfs["latency_ns"] > m["latency_ns"]
    # latency counts the wait for a buffer slot: at least the controller's own
    assert m["latency_ns"] >= m["controller_read_latency_ns"]


def test_reward_modes() -> None:
    p = MemCtrlProblem(trace="stream", requests=800, objective="latency")
    ev = p.evaluate(p.default_index())
    assert ev.reward == pytest.approx(1.0)
    target = {"latency_ns": 2 * ev.metrics["latency_ns"]}
    t = MemCtrlProblem(
        trace="stream", requests=800, objective="latency", reward_mode="target", target=target
    )
    assert t.evaluate(t.default_index()).reward == pytest.approx(2.0)


def test_bad_settings_are_spec_errors() -> None:
    from hw_models.errors import SpecError

    with pytest.raises(SpecError, match="objective"):
        MemCtrlProblem(objective="speed")
    with pytest.raises(SpecError, match=r"target\.latency_ns"):
        MemCtrlProblem(objective="latency", reward_mode="target")
    with pytest.raises(SpecError, match="trace"):
        MemCtrlProblem(trace="zipf")


def test_llm_trace_is_a_decode_step(memctrl: MemCtrlProblem) -> None:
    p = MemCtrlProblem(trace="llm", requests=3000)
    assert len(p.trace) == 3000
    assert p.trace.is_write.any() and (~p.trace.is_write).any()  # weights read, activations written


def test_memhierarchy_budget_by_hand() -> None:
    p = MemHierarchyProblem()
    default = p.config(p.default_index())
    # 80 GB x 15 USD/GB + 3.35 TB/s x 1500 USD + 50 MiB x 2 USD + 64 GB/s x 20 USD
    assert p.spend(default)["cost_usd"] == pytest.approx(1200 + 5025 + 100 + 1280)
    names = [c.name for c in p.choices]
    # 8 TB/s of HBM costs 12,000 USD alone: over the 12,000 USD budget with anything else
    bw = p.static_mask()[names.index("tiers.hbm.read_bandwidth_bytes_per_s")]
    assert bw.tolist() == [1, 1, 1, 0]
    over = list(p.default_index())
    over[names.index("tiers.hbm.capacity_bytes")] = 3  # 192 GB
    over[names.index("tiers.hbm.read_bandwidth_bytes_per_s")] = 2  # 4.8 TB/s
    assert p.feasible(over)  # 2880 + 7200 + 100 + 1280 = 11,460 <= 12,000
    over[names.index("links.pcie.bandwidth_bytes_per_s")] = 2  # 128 GB/s
    assert not p.feasible(over)  # 2880 + 7200 + 100 + 2560 = 12,740 > 12,000
    ev = p.evaluate(p.default_index())
    assert ev.reward == pytest.approx(1.0) and ev.metrics["tpot_s"] > 0


def test_memhierarchy_from_a_sweep_space_file() -> None:
    """MemHierarchy-v0 over a design-space file: its grid, its budget constraint."""
    import itertools

    from explore.envs import make_problem

    p = make_problem("memsim/MemHierarchy-v0", space="explore/spaces/hbm_sram_70b_decode.yaml")
    # 4 HBM bandwidths (2..8 TB/s, log, 4 steps) x 3 capacities x 3 SRAM sizes
    assert p.nvec.tolist() == [4, 3, 3]
    broken = [i for i in itertools.product(*map(range, p.nvec)) if not p.feasible(i)]
    # cost = GB x 15 + TB/s x 1500 + MiB x 2 <= 12,000 USD: at 8 TB/s (12,000 USD alone)
    # every point is over; at 5.04 TB/s (7,560 USD) 192 GB (2,880 USD) + 256 MiB is 10,952
    assert {i[0] for i in broken} == {3} and len(broken) == 9
    assert "cost_usd <= 12000" in (p.infeasibility(broken[0]) or "")
    env = ConfigEnv(p)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array(p.default_index()))
    assert reward == pytest.approx(1.0) and info["metrics"]["tpot_s"] > 0


def test_kvserve_contracts_and_reward() -> None:
    """KVServe-v0: Gymnasium and PettingZoo contracts, infeasible admission, goodput."""
    from gymnasium.utils.env_checker import check_env
    from pettingzoo.test import parallel_api_test

    from explore.envs import kvserve_parallel_env, make_problem

    kw = {"requests": 12, "prompt_len": 256, "output_len": 16}
    p = make_problem("memsim/KVServe-v0", **kw)
    env = ConfigEnv(p)
    check_env(env, skip_render_check=True)
    parallel_api_test(kvserve_parallel_env(**kw), num_cycles=1)
    names = [c.name for c in p.choices]
    bad = list(p.default_index())
    bad[names.index("max_num_batched_tokens")] = 1  # 512 > 256: fine for continuous
    assert p.feasible(bad)
    big = make_problem("memsim/KVServe-v0", requests=4, prompt_len=1024, output_len=4)
    assert "cannot admit a 1024-token prompt" in (big.infeasibility(bad) or "")
    ev = p.evaluate(p.default_index())
    # reward = goodput / offered rate, at most the completed requests' share
    assert ev.reward == pytest.approx(ev.metrics["goodput_requests_per_s"] / 20.0)
    assert 0.0 <= ev.metrics["slo_attainment"] <= 1.0
