"""Pipeline parallelism: stages are lanes on their own devices, ordered by the graph's deps.

Hand calculations use ``tiny_pp`` (tests/memsim/pipeline_world.py): per layer op,
HBM demand = (1e9 B weight + 4096 B read + 4096 B written) / 1 TB/s = 1.000008192 ms,
compute 2e6 FLOP / 100 TFLOP/s = 20 ns, latency 500 ns, no launch overhead:
``d = 1.000508192e-3`` s.
"""

from __future__ import annotations

import pytest

import memsim
from hw_models import System, load_system
from memsim.invariants import roofline_lower_bound
from tests.memsim.pipeline_world import pipeline_graph, tiny_pp
from workloads import ModelConfig, generate, load_model, train_step

D = 1.000508192e-3
FIDELITIES = ["analytic", "event"]


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_a_sequential_graph_over_two_stages_runs_as_one_chain(fidelity: str) -> None:
    # one micro-batch: stage 1 has nothing to do until stage 0 is done -> 2 d, not d
    g = pipeline_graph(stages=2, micro_batches=1)
    r = memsim.simulate(tiny_pp(), g, fidelity=fidelity)
    ops = r.ops_frame()
    assert r.makespan_s == pytest.approx(2 * D, rel=1e-9)
    assert ops["start_s"].tolist() == pytest.approx([0.0, D], rel=1e-9)
    assert ops["stage"].tolist() == [0, 1]


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_micro_batches_overlap_the_stages(fidelity: str) -> None:
    # m0 on stage 0 [0, d]; m1 on stage 0 and m0 on stage 1 at once [d, 2d] on their own
    # devices; m1 on stage 1 [2d, 3d]: 3 d where one device would need 4 d
    g = pipeline_graph(stages=2, micro_batches=2)
    r = memsim.simulate(tiny_pp(), g, fidelity=fidelity)
    starts = dict(zip(r.ops_frame()["name"], r.ops_frame()["start_s"], strict=True))
    assert r.makespan_s == pytest.approx(3 * D, rel=1e-9)
    assert starts == pytest.approx({"m0.L0": 0.0, "m0.L1": D, "m1.L0": D, "m1.L1": 2 * D})


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_tensor_and_pipeline_parallel_together(fidelity: str) -> None:
    # each layer adds a 2-way all-reduce of 1 MB: each device sends 2 (p-1)/p x 1 MB = 1 MB
    # over the 100 GB/s link = 10 us, plus 2 (p-1) x 2 us ring latency = 4 us -> c = 14 us;
    # the critical path is three (layer + all-reduce) units: 3 (d + c)
    g = pipeline_graph(stages=2, micro_batches=2, tp=2)
    r = memsim.simulate(tiny_pp(), g, fidelity=fidelity)
    assert r.makespan_s == pytest.approx(3 * (D + 14e-6), rel=1e-9)


def test_stages_contend_only_for_shared_host_resources() -> None:
    # weights in host DDR slowed to 5 GB/s: each op needs 0.2 s of the shared DDR (PCIe is
    # per device: 0.1 s), latency 100 ns + 1 us. Analytic (no contention): 3 x 0.2000011.
    # Event: m1.L0 and m0.L1 share the DDR from 0.2000011 s, each at half rate, so both take
    # 0.4 s: 0.2000011 + 0.4000011 + 0.2000011 = 0.8000033 s, the DDR's total work (0.8 s)
    # plus the latencies of the critical path.
    system = tiny_pp(**{"tiers.ddr.read_bandwidth_bytes_per_s": 5e9})
    g = pipeline_graph(stages=2, micro_batches=2)
    policy = memsim.make_policy("explicit", mapping={"weight": "ddr"})
    a = memsim.simulate(system, g, policy=policy, fidelity="analytic")
    e = memsim.simulate(system, g, policy=policy, fidelity="event")
    assert a.makespan_s == pytest.approx(3 * 0.2000011, rel=1e-9)
    assert e.makespan_s == pytest.approx(0.8000033, rel=1e-9)
    bound = roofline_lower_bound(system, g, policy.place(system, g))
    assert bound == pytest.approx(0.8, rel=1e-9)  # 4 x 1 GB over the one shared 5 GB/s DDR
    # the analytic path ignores contention, so it may beat the shared tier's bound; the
    # event engine may not
    assert e.makespan_s >= bound


def test_the_bound_totals_device_resources_per_stage() -> None:
    # 2 stages x 2 micro-batches: each stage's HBM reads its weight twice: 2 x 1.000008192 ms;
    # summing both stages on one HBM would give twice that (above the 3 d the schedule takes)
    system = tiny_pp()
    g = pipeline_graph(stages=2, micro_batches=2)
    bound = roofline_lower_bound(system, g, memsim.make_policy("fastest_fit").place(system, g))
    assert bound == pytest.approx(2 * 1.000008192e-3, rel=1e-9)
    assert memsim.simulate(system, g).makespan_s >= bound


@pytest.fixture(scope="module")
def dgx() -> System:
    return load_system("dgx_h100")


@pytest.fixture(scope="module")
def llama() -> ModelConfig:
    return load_model("llama2_7b")


def test_pipelined_generation_on_dgx_h100_is_not_faster_than_one_gpu(
    dgx: System, llama: ModelConfig
) -> None:
    # the acceptance review's case: one batch, no micro-batches -> the 4 stages take turns,
    # so pp=4 cannot beat pp=1 (it adds the stage-boundary sends); the event engine once ran
    # the stages at once (0.0218 s vs 0.0862 s analytic, below its own lower bound)
    kw = {"batch": 8, "prompt_len": 512, "gen_len": 4}
    g4 = generate(llama, pp=4, **kw)
    one = memsim.simulate(dgx, generate(llama, **kw), fidelity="analytic").makespan_s
    a = memsim.simulate(dgx, g4, fidelity="analytic")
    e = memsim.simulate(dgx, g4, fidelity="event")
    assert e.makespan_s == pytest.approx(a.makespan_s, rel=0.01)
    assert a.makespan_s >= one * (1 - 1e-9)
    bound = roofline_lower_bound(dgx, g4, memsim.make_policy("fastest_fit").place(dgx, g4))
    assert min(a.makespan_s, e.makespan_s) >= bound
    for r in (a, e):  # stage 1's first op (L8.attn_norm) starts after stage 0's prefill
        ops = r.ops_frame()
        pre = ops[ops["phase"] == "prefill"]
        first = pre[pre["stage"] == 1].iloc[0]
        assert first["name"] == "L8.attn_norm"
        assert first["start_s"] >= pre[pre["stage"] == 0]["end_s"].max()
    starts = e.ops_frame().set_index("name")["start_s"]
    assert starts["L8.q"] == pytest.approx(a.ops_frame().set_index("name")["start_s"]["L8.q"])


def test_one_f_one_b_bound_is_per_stage(dgx: System, llama: ModelConfig) -> None:
    # the review's 1F1B step took 1.704 s in both fidelities while the bound said 3.64 s
    # (every stage's work on one GPU). Per stage, the bound lies between the one-GPU bound / 4
    # (perfectly even stages) and the one-GPU bound, and below the simulated step.
    g1 = train_step(llama, batch=8, seq_len=512, micro_batches=8)
    g4 = train_step(llama, batch=8, seq_len=512, micro_batches=8, pp=4)
    ff = memsim.make_policy("fastest_fit")
    # Training state of 7B (~16 B/param, ~108 GB) does not fit one 80 GB GPU, so the
    # one-GPU reference gets HBM room for it: both bounds then count the same traffic
    # (each pp=4 stage holds its quarter in its own HBM).
    roomy = load_system("dgx_h100", overrides={"tiers.hbm.capacity_bytes": 1e12})
    one = roofline_lower_bound(roomy, g1, ff.place(roomy, g1))
    four = roofline_lower_bound(dgx, g4, ff.place(dgx, g4))
    a = memsim.simulate(dgx, g4, fidelity="analytic").makespan_s
    e = memsim.simulate(dgx, g4, fidelity="event").makespan_s
    assert one / 4 <= four < one / 2
    assert e == pytest.approx(a, rel=0.01)
    assert min(a, e) >= four
