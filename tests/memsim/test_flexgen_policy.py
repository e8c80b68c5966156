"""FlexGen's percentage placement (Sheng et al., ICML 2023, Section 4) on its T4 platform.

Hand figures: an OPT-30B layer (h = 7168, FFN 4h, fp16, biases) holds four h x h
projections (wq, wk, wv, wo: 102.77 MB each) then w_up and w_down (4h x h: 411.1 MB
each), so the projections are 4/12 = 1/3 of the layer's bytes. Each tensor goes to
the tier whose percentage bracket holds its byte midpoint (FlexGen's rule).
PCIe 3.0 x16 host-to-GPU: 16 GB/s x 0.865 = 13.84 GB/s (FlexGen measured 12.89 GiB/s);
the SSD reads 2 GB/s (FlexGen Section 6).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

import memsim
import workloads
from hw_models import load_system
from hw_models.errors import SpecError
from memsim.cli.main import main
from memsim.policies import FlexGenPolicy, make_policy, parse_flexgen_spec

H = 7168
PCIE_H2D = 16e9 * 0.865
SSD_READ = 2e9
PASSES = 3  # prefill + 2 decode steps, each streams every layer's weights once


@pytest.fixture(scope="module")
def opt30b() -> workloads.Graph:
    return workloads.generate(workloads.load_model("opt_30b"), batch=4, prompt_len=64, gen_len=2)


def _bytes_by(graph: workloads.Graph, home: dict[str, str]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = defaultdict(float)
    for name, t in graph.tensors.items():
        out[(t.kind, home[name])] += t.bytes
    return out


def test_weight_percentages_split_each_layer_at_tensor_boundaries() -> None:
    # OPT-6.7B: h = 4096, 32 layers (OPT-30B's third, 20 GB, would not fit in 16 GB)
    h, layers = 4096, 32
    graph = workloads.generate(workloads.load_model("opt_6_7b"), batch=4, prompt_len=64, gen_len=2)
    system = load_system("t4_flexgen")
    p = make_policy("flexgen:w=34,66,0;kv=50,50,0;act=100,0,0").place(system, graph)
    # every layer: the norms and the four projections (midpoints 1/24 .. 7/24 < 0.34) on
    # the GPU, w_up (midpoint 6/12) and w_down in DDR
    for li in range(layers):
        for n in ("wq", "wk", "wv", "wo"):
            assert p.home[f"L{li}.{n}"] == "gddr"
            assert f"L{li}.{n}" not in p.staged
        for n in ("w_up", "w_down"):
            assert p.home[f"L{li}.{n}"] == "ddr"
            assert p.staged[f"L{li}.{n}"] == "gddr"  # streamed into the GPU before use
    by = _bytes_by(graph, dict(p.home))
    layer_w = [
        (n, t.bytes) for n, t in graph.tensors.items() if t.kind == "weight" and t.layer is not None
    ]
    layer_bytes = sum(b for _, b in layer_w)
    gpu_layer = sum(b for n, b in layer_w if p.home[n] == "gddr")
    # four (h x h + h) fp16 projections and two LayerNorms (weight + bias) per layer
    assert gpu_layer == pytest.approx(layers * (4 * (h * h + h) * 2 + 2 * 2 * h * 2))
    assert gpu_layer / layer_bytes == pytest.approx(1 / 3, rel=1e-3)
    # KV: 64 equal tensors, the first half (layers 0..15) on the GPU
    kv_total = by[("kv", "gddr")] + by[("kv", "ddr")]
    assert by[("kv", "gddr")] == pytest.approx(kv_total / 2)
    assert p.home["L15.v_cache"] == "gddr" and p.home["L16.k_cache"] == "ddr"
    assert by[("activation", "ddr")] == 0 and by[("activation", "ssd")] == 0


def test_all_weights_in_ddr_replay_as_streaming_them_over_pcie(opt30b) -> None:
    res = memsim.simulate("t4_flexgen", opt30b, policy="flexgen:w=0,100,0;kv=100,0,0")
    weights = sum(t.bytes for t in opt30b.tensors.values() if t.kind == "weight")
    hand = PASSES * weights / PCIE_H2D  # 3 x 59.95 GB / 13.84 GB/s = 13.0 s
    assert res.makespan_s >= hand * (1 - 1e-9)  # never beats the link
    assert res.makespan_s == pytest.approx(hand, rel=0.03)


def test_disk_share_replays_at_the_ssd_read_rate(opt30b) -> None:
    system = load_system("t4_flexgen")
    p = make_policy("flexgen:w=0,50,50").place(system, opt30b)
    # midpoint rule: w_up's midpoint is exactly 6/12 = 50 % -> disk; so disk holds
    # w_up + w_down of every layer (2/3 of the layer bytes); of the embeddings group
    # (embed 50272 x h, then pos_embed 2050 x h, final LayerNorm 2h) the last two
    on_ssd = sum(t.bytes for n, t in opt30b.tensors.items() if p.home[n] == "ssd")
    layers = 48 * 2 * (4 * H * H + 2.5 * H) * 2
    assert on_ssd == pytest.approx(layers + (2050 * H + 2 * H) * 2, rel=1e-9)
    res = memsim.simulate(system, opt30b, policy="flexgen:w=0,50,50")
    hand = PASSES * on_ssd / SSD_READ  # 3 x 39.49 GB / 2 GB/s = 59.2 s
    assert res.makespan_s >= hand * (1 - 1e-9)
    assert res.makespan_s == pytest.approx(hand, rel=0.03)
    ssd = res.tiers_frame().set_index("tier").loc["ssd"]
    assert ssd["bytes_read"] == pytest.approx(PASSES * on_ssd, rel=1e-6)


def test_spec_string_and_file_and_api_agree(tmp_path, opt30b) -> None:
    system = load_system("t4_flexgen")
    f = tmp_path / "fg.yaml"
    f.write_text("w: [20, 80, 0]\nkv: [0, 100, 0]\nact: [100, 0, 0]\n")
    a = make_policy("flexgen:w=20,80,0;kv=0,100,0;act=100,0,0").place(system, opt30b)
    b = make_policy(f"flexgen:{f}").place(system, opt30b)
    c = FlexGenPolicy(w=(20, 80, 0), kv=(0, 100, 0)).place(system, opt30b)
    assert dict(a.home) == dict(b.home) == dict(c.home)
    assert dict(a.staged) == dict(c.staged)
    assert parse_flexgen_spec("tiers=gddr,ddr,ssd;prefetch=2") == {
        "tiers": ("gddr", "ddr", "ssd"),
        "prefetch_depth": 2,
    }


@pytest.mark.parametrize(
    ("spec", "system", "field"),
    [
        ("w=20,70,0", "t4_flexgen", "policy.flexgen.w"),  # sums to 90
        ("kv=50,50", "t4_flexgen", "policy.flexgen.kv"),  # two numbers
        ("act=100,0,x", "t4_flexgen", "policy.flexgen.act"),
        ("w=120,-20,0", "t4_flexgen", "policy.flexgen.w"),
        ("wt=100,0,0", "t4_flexgen", "policy.flexgen.wt"),  # unknown key
        ("w=0,50,50", "h100_sxm", "policy.flexgen.w"),  # no disk tier
        ("tiers=gddr,ddr,nvme0", "t4_flexgen", "policy.flexgen.tiers.disk"),
    ],
)
def test_bad_specs_name_the_field(spec: str, system: str, field: str) -> None:
    graph = workloads.generate(workloads.load_model("opt_6_7b"), batch=1, prompt_len=8, gen_len=1)
    with pytest.raises(SpecError) as err:
        make_policy(f"flexgen:{spec}").place(load_system(system), graph)
    assert field in str(err.value)


def test_cli_runs_a_flexgen_policy_and_rejects_a_bad_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--system", "t4_flexgen", "--model", "opt_6_7b", "--batch", "1"]
    argv += ["--prompt", "8", "--gen", "1", "--fidelity", "analytic", "--format", "json"]
    assert main([*argv, "--policy", "flexgen:w=0,100,0"]) == 0
    assert '"flexgen"' in capsys.readouterr().out
    assert main([*argv, "--policy", "flexgen:w=0,100"]) == 2
    err = capsys.readouterr().err
    assert "policy.flexgen.w" in err and "Traceback" not in err


# ---- FlexGen's block schedule: K GPU batches share each layer's weight fetch ----------


def test_block_schedule_fetches_each_layer_once_per_block() -> None:
    cfg = workloads.load_model("opt_6_7b")
    one = workloads.generate(cfg, batch=4, prompt_len=64, gen_len=2)
    block = workloads.generate(cfg, batch=16, prompt_len=64, gen_len=2, num_gpu_batches=4)
    assert len(block.ops) == 4 * len(one.ops)
    assert block.meta["batch"] == 16 and block.meta["tokens"] == 32
    kv_one = sum(t.bytes for t in one.tensors.values() if t.kind == "kv")
    kv_block = sum(t.bytes for t in block.tensors.values() if t.kind == "kv")
    assert kv_block == pytest.approx(4 * kv_one)  # each GPU batch its own K/V
    assert block.tensors["L3.k_cache.b2"].bytes == one.tensors["L3.k_cache"].bytes
    # OPT ties the LM head to the token embedding (50272 x 4096 fp16): it is fetched for
    # the embedding segment and again for the LM-head segment of every pass
    weights = sum(t.bytes for t in one.tensors.values() if t.kind == "weight")
    weights += 50272 * 4096 * 2
    spec = "flexgen:w=0,100,0;kv=100,0,0;act=100,0,0"  # only weights cross PCIe
    pcie: dict[str, float] = {}
    for name, graph in (("one", one), ("block", block)):
        res = memsim.simulate("t4_flexgen", graph, policy=spec, fidelity="analytic")
        pcie[name] = float(res.links_frame().set_index("link")["bytes"]["pcie"])
        # every pass (prefill + 2 decode steps) streams each layer's weights once
        assert pcie[name] == pytest.approx(PASSES * weights, rel=1e-6)
        assert res.makespan_s >= PASSES * weights / PCIE_H2D * (1 - 1e-9)
        assert res.makespan_s == pytest.approx(PASSES * weights / PCIE_H2D, rel=0.03)
    # per generated token: 4 sequences x 2 tokens vs 16 x 2 -> a quarter of the traffic
    assert (pcie["block"] / 32) / (pcie["one"] / 8) == pytest.approx(1 / 4)


def test_block_schedule_needs_a_divisible_batch() -> None:
    cfg = workloads.load_model("opt_6_7b")
    with pytest.raises(SpecError, match="num_gpu_batches"):
        workloads.generate(cfg, batch=10, prompt_len=8, gen_len=1, num_gpu_batches=4)
    with pytest.raises(SpecError, match="num_gpu_batches"):
        workloads.generate(cfg, batch=10, prompt_len=8, gen_len=1, num_gpu_batches=0)


def test_cli_block_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--system", "t4_flexgen", "--model", "opt_6_7b", "--prompt", "8", "--gen", "1"]
    argv += ["--fidelity", "analytic", "--format", "json", "--policy", "flexgen:w=0,100,0"]
    assert main([*argv, "--batch", "4", "--num-gpu-batches", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tokens_per_s"] == pytest.approx(4 * 1 / doc["makespan_s"])
    assert main([*argv, "--batch", "3", "--num-gpu-batches", "2"]) == 2
    assert "num_gpu_batches" in capsys.readouterr().err


# ---- FlexGen --cpu: decode attention on the host CPU, over the KV cache in host DRAM ----

CPU_PEAK = 16 * 2.0e9 * 64  # 16 cores x 2.0 GHz x 64 fp32 FLOP/cycle (AVX-512, assumed)
DDR_EFF = 128e9 * 0.7  # t4_flexgen host DRAM: 6 x DDR4-2666 channels x 0.7 achievable


def _read_by_resource(traffic: Any) -> dict[str, float]:
    sums = traffic.groupby("resource")["bytes_read"].sum()
    return {str(k): float(v) for k, v in sums.items()}


def test_cpu_attention_reads_the_kv_cache_without_crossing_pcie() -> None:
    system = load_system("t4_flexgen")
    assert system.compute["cpu"].peak("fp16") == CPU_PEAK
    assert system.main_compute("fp16") == "tensor"  # the CPU runs only what is put on it
    cfg = workloads.load_model("opt_6_7b")
    spec = "flexgen:w=100,0,0;kv=0,100,0;act=100,0,0"
    runs: dict[str | None, Any] = {}
    for unit in (None, "cpu"):
        g = workloads.generate(cfg, batch=8, prompt_len=512, gen_len=2, attention_unit=unit)
        runs[unit] = memsim.simulate(system, g, policy=spec, fidelity="analytic")
    res = runs["cpu"]
    ops, traffic = res.ops_frame(), res.traffic_frame()
    attn = ops[(ops.kind == "attention") & (ops.phase == "decode")]
    assert set(attn.unit) == {"cpu"}
    mine = _read_by_resource(traffic[traffic.op.isin(attn.op)])
    # K and V of 32 layers, 8 sequences x 4096 fp16 per token, at contexts 513 and 514
    kv = 32 * 2 * 8 * 4096 * 2 * (513 + 514)
    assert mine["tier:ddr"] == pytest.approx(kv)
    # over PCIe only what the CPU reads from / writes to GPU memory (q, outputs): no KV
    assert mine["link:pcie"] == pytest.approx(mine["tier:gddr"])
    assert mine["link:pcie"] < kv / 50
    # each op: its K/V over host DRAM (0.75 ms) > its FLOPs over the CPU (33 us)
    one_kv = 2 * 8 * 4096 * 2 * 513
    first = attn.iloc[0]
    hand = max(float(first["flops"]) / CPU_PEAK, one_kv / DDR_EFF)
    assert float(first["duration_s"]) >= hand * (1 - 1e-9)
    assert float(first["duration_s"]) == pytest.approx(hand, rel=0.02)
    # on the GPU the same op pulls its K/V over PCIe (13.84 GB/s): 4.9 ms
    gpu = runs[None].ops_frame()
    gpu_first = gpu[(gpu.kind == "attention") & (gpu.phase == "decode")].iloc[0]
    assert float(gpu_first["duration_s"]) >= one_kv / PCIE_H2D * (1 - 1e-9)
    pcie = {u: _read_by_resource(r.traffic_frame())["link:pcie"] for u, r in runs.items()}
    assert pcie[None] - pcie["cpu"] == pytest.approx(kv - mine["link:pcie"])
    assert res.makespan_s < runs[None].makespan_s


def test_unknown_attention_unit_and_bad_unit_memory_are_named() -> None:
    cfg = workloads.load_model("opt_6_7b")
    g = workloads.generate(cfg, batch=1, prompt_len=8, gen_len=1, attention_unit="npu")
    with pytest.raises(SpecError, match="npu"):
        memsim.simulate("h100_sxm", g, fidelity="analytic")
    with pytest.raises(SpecError, match=r"compute\.cpu\.memory"):
        load_system("t4_flexgen", overrides={"compute.cpu.memory": "hbm"})


def test_cli_attention_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--system", "t4_flexgen", "--model", "opt_6_7b", "--prompt", "256", "--gen"]
    argv += ["2", "--batch", "8", "--fidelity", "analytic", "--format", "json", "--policy"]
    argv += ["flexgen:w=100,0,0;kv=0,100,0"]
    assert main(argv) == 0
    gpu = json.loads(capsys.readouterr().out)
    assert main([*argv, "--attention-unit", "cpu"]) == 0
    cpu = json.loads(capsys.readouterr().out)
    assert cpu["makespan_s"] < gpu["makespan_s"]
    assert main([*argv, "--attention-unit", "npu"]) == 2
    assert "npu" in capsys.readouterr().err


# ---- ZeRO-Offload: the Adam update on the host CPU, the optimizer states in host DRAM ----


def test_optimizer_on_the_cpu_moves_gradients_and_weights_not_states() -> None:
    # a 2-layer OPT-6.7B (617 M parameters) fits a T4 for training; Adam states (fp32
    # m, v and master weights: 12 B per parameter, 7.4 GB) in host DRAM
    cfg = workloads.load_model("opt_6_7b").model_copy(update={"num_hidden_layers": 2})
    runs: dict[str | None, Any] = {}
    for unit in (None, "cpu"):
        g = workloads.train_step(cfg, batch=2, seq_len=128, optimizer_unit=unit)
        runs[unit] = memsim.simulate(
            "t4_flexgen", g, policy={"optimizer": "ddr"}, fidelity="analytic"
        )
    psi = g.tensor_bytes("optimizer") / 12  # parameters updated (12 B of states each)
    assert g.tensor_bytes("weight") / 2 == pytest.approx(psi, rel=1e-3)  # bf16 weights
    moved: dict[str | None, dict[tuple[str, str], float]] = {}
    time: dict[str | None, float] = {}
    for unit, res in runs.items():
        ops = res.ops_frame()
        opt = ops[ops.kind == "optimizer"]
        assert set(opt.unit) == {"cpu" if unit else "tensor"}
        t = res.traffic_frame()
        sums = t[t.op.isin(opt.op)].groupby("resource").sum(numeric_only=True)
        moved[unit] = {
            (str(r), str(c)): float(v) for (r, c), v in sums.stack().items() if c != "op"
        }
        time[unit] = float(opt.duration_s.sum())
    cpu, gpu = moved["cpu"], moved[None]
    # on the GPU the update pulls the states over PCIe and pushes them back: 12 psi each way
    assert gpu[("link:pcie", "bytes_read")] == pytest.approx(12 * psi, rel=1e-3)
    assert gpu[("link:pcie", "bytes_written")] == pytest.approx(12 * psi, rel=1e-3)
    # on the CPU (ZeRO-Offload, Ren et al. 2021, Sec. 4.1) only bf16 gradients and weights
    # cross, once each: 2 psi of gradients to the host, 2 psi of updated weights back (the
    # fp32 master copy is on the host, so the old bf16 weights are not read); the states
    # stay in DDR
    assert cpu[("link:pcie", "bytes_read")] == pytest.approx(2 * psi, rel=1e-3)
    assert cpu[("link:pcie", "bytes_written")] == pytest.approx(2 * psi, rel=1e-3)
    assert cpu[("tier:ddr", "bytes_read")] == pytest.approx(12 * psi, rel=1e-3)
    # time: the slowest of PCIe (2 psi / 13.84 GB/s = 89 ms), DDR (24 psi / 89.6 GB/s =
    # 165 ms) and Adam's 12 FLOP per parameter on 2.05 TFLOP/s (3.6 ms)
    hand = max(2 * psi / PCIE_H2D, 24 * psi / DDR_EFF, 12 * psi / CPU_PEAK)
    assert time["cpu"] >= hand * (1 - 1e-6)
    assert time["cpu"] == pytest.approx(hand, rel=0.02)
    assert time[None] == pytest.approx(12 * psi / PCIE_H2D, rel=0.02)
