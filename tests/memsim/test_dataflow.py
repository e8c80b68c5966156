"""The dataflow execution model keeps a fused group's intermediates on chip.

Residency is per access interval (a write and the reads before the next
write): builders reuse one tensor name per activation across layers and
steps, so a per-tensor rule would keep almost nothing on chip.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import memsim
from hw_models import System, load_system, load_system_dict
from hw_models.loader import SYSTEM_DIR
from memsim.cli import run as run_cli
from memsim.graph_fit import attention_buffer_bytes, fit_graph
from memsim.invariants import check_capacity
from tests.memsim.world import tiny_with_sram
from workloads import generate, load_model
from workloads.graph import Access, Graph, Op, Tensor

PERSISTENT = {"weight", "kv", "optimizer"}


def _two_layer_graph(t_bytes: int = 1_000_000) -> Graph:
    """Two layers reusing the tensor names ``x`` (residual) and ``t`` (intermediate).

    layer l: op ``a{l}`` reads x, writes t; op ``b{l}`` reads t, writes x.
    ``t`` lives from op 0 to op 3 (both layers), but each of its values lives in
    one layer: intervals [a0 w, b0 r] and [a1 w, b1 r] are on chip; x's are not
    (its first read has no producer, [b0 w, a1 r] crosses layers, b1's write is
    the output).
    """
    tensors = {
        "x": Tensor(name="x", bytes=t_bytes, kind="activation"),
        "t": Tensor(name="t", bytes=t_bytes, kind="activation"),
    }
    ops = []
    for layer in (0, 1):
        for name, src, dst in (("a", "x", "t"), ("b", "t", "x")):
            ops.append(
                Op(
                    name=f"{name}{layer}",
                    kind="elementwise",
                    flops=1e3,
                    reads=(Access(tensor=src, bytes=t_bytes),),
                    writes=(Access(tensor=dst, bytes=t_bytes),),
                    layer=layer,
                    phase="decode",
                    step=1,
                )
            )
    return Graph(tensors=tensors, ops=tuple(ops), meta={"batch": 1, "gen_len": 1, "tokens": 1})


def _traffic(result: memsim.SimResult, tier: str) -> float:
    f = result.tiers_frame().set_index("tier")
    return (
        float(f.loc[tier, "bytes_read"] + f.loc[tier, "bytes_written"]) if tier in f.index else 0.0
    )


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_reused_tensor_names_stay_on_chip_per_interval(fidelity: str) -> None:
    g = _two_layer_graph()
    kernel = memsim.simulate(tiny_with_sram(1e6), g, execution="kernel", fidelity=fidelity)
    df = memsim.simulate(tiny_with_sram(1e6), g, execution="dataflow", fidelity=fidelity)
    # kernel: 4 ops x (1 MB read + 1 MB written) all in HBM
    assert _traffic(kernel, "hbm") == 8e6
    # dataflow: t's two intervals (1 MB write + 1 MB read each) move to SRAM
    assert _traffic(df, "hbm") == 4e6
    assert _traffic(df, "sram") == 4e6
    # per layer group: HBM 2 MB / 1 TB/s = 2 us (SRAM 2 MB / 100 TB/s = 20 ns)
    # + 500 ns HBM latency -> 2 x 2.5 us
    assert df.makespan_s == pytest.approx(5e-6, rel=1e-6)
    assert check_capacity(df) == []


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_intervals_that_do_not_fit_fall_back_to_hbm(fidelity: str) -> None:
    g = _two_layer_graph()
    # one byte short of the 1 MB interval: nothing goes on chip
    df = memsim.simulate(tiny_with_sram(999_999), g, execution="dataflow", fidelity=fidelity)
    assert _traffic(df, "sram") == 0.0
    assert _traffic(df, "hbm") == 8e6
    # per group: HBM 4 MB / 1 TB/s = 4 us + 500 ns latency
    assert df.makespan_s == pytest.approx(9e-6, rel=1e-6)
    assert check_capacity(df) == []


def test_placement_use_of_sram_leaves_less_room_for_intervals() -> None:
    # a 64 B weight homed in SRAM (placement `fastest_fit` puts small weights on
    # chip) leaves 1 MB - 64 B: the 1 MB interval no longer fits
    g = _two_layer_graph()
    tensors = dict(g.tensors)
    tensors["w"] = Tensor(name="w", bytes=64, kind="weight")
    ops = list(g.ops)
    ops[0] = Op(
        name="a0",
        kind="elementwise",
        flops=1e3,
        reads=(*ops[0].reads, Access(tensor="w", bytes=64)),
        writes=ops[0].writes,
        layer=0,
        phase="decode",
        step=1,
    )
    g2 = Graph(tensors=tensors, ops=tuple(ops), meta=g.meta)
    placement = memsim.Placement(home={"w": "sram", "x": "hbm", "t": "hbm"})
    df = memsim.simulate(
        tiny_with_sram(1e6), g2, execution="dataflow", fidelity="analytic", policy=placement
    )
    assert _traffic(df, "sram") == 64.0  # only the weight read
    assert check_capacity(df) == []


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=10**7).map(lambda k: 64 * k),
    capacity=st.integers(min_value=64, max_value=64 * 10**7),
)
def test_bytes_are_conserved_and_on_chip_iff_the_interval_fits(size: int, capacity: int) -> None:
    g = _two_layer_graph(size)
    sys_ = tiny_with_sram(capacity)
    kernel = memsim.simulate(sys_, g, execution="kernel", fidelity="analytic")
    df = memsim.simulate(sys_, g, execution="dataflow", fidelity="analytic")
    total = _traffic(df, "hbm") + _traffic(df, "sram")
    assert total == _traffic(kernel, "hbm") == 8 * size
    assert _traffic(df, "sram") == (4 * size if size <= capacity else 0)
    assert df.makespan_s <= kernel.makespan_s * (1 + 1e-9)
    assert check_capacity(df) == []


def _intra_group_intervals(graph: Graph) -> list[tuple[tuple[Any, ...], str, float]]:
    """(group, tensor, bytes moved) of every interval written and read in one group.

    Independent of the engine: a plain walk over the ops in order. The group of
    an op is its fuse group, else its (stage, layer, step, phase) segment; an
    interval is a write (with the writes right after it) and the reads that
    follow it before the tensor's next write, of a transient tensor.
    """
    open_iv: dict[str, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for op in graph.ops:
        group = op.fuse_group or (op.stage, op.layer, op.step, op.phase)
        for acc in op.reads:
            iv = open_iv.setdefault(acc.tensor, {"w": False, "r": 0, "groups": set(), "b": 0.0})
            iv["r"] += 1
            iv["groups"].add(group)
            iv["b"] += acc.bytes
        for acc in op.writes:
            iv = open_iv.get(acc.tensor)
            if iv is None or iv["r"] > 0:
                if iv is not None:
                    done.append({"t": acc.tensor, **iv})
                iv = open_iv[acc.tensor] = {"w": True, "r": 0, "groups": set(), "b": 0.0}
            iv["groups"].add(group)
            iv["b"] += acc.bytes
    done += [{"t": t, **iv} for t, iv in open_iv.items()]
    return [
        (next(iter(iv["groups"])), iv["t"], iv["b"])
        for iv in done
        if iv["w"]
        and iv["r"] > 0
        and len(iv["groups"]) == 1
        and graph.tensors[iv["t"]].kind not in PERSISTENT
    ]


@pytest.fixture(scope="module")
def llama_small() -> Graph:
    return generate(load_model("llama2_7b"), batch=4, prompt_len=256, gen_len=4)


def test_dataflow_beats_kernel_on_sn40l_because_intermediates_stay_on_chip(
    llama_small: Graph,
) -> None:
    sn40l = load_system("sn40l")
    g = fit_graph(sn40l, llama_small)  # the graph that runs: attention tiled by the PCU buffer
    kernel = memsim.simulate(sn40l, g, execution="kernel", fidelity="analytic")
    df = memsim.simulate(sn40l, g, execution="dataflow", fidelity="analytic")
    on_chip = sum(b for _, _, b in _intra_group_intervals(g))
    activations = sum(
        a.bytes
        for op in g.ops
        for a in (*op.reads, *op.writes)
        if g.tensors[a.tensor].kind not in PERSISTENT
    )
    # most activation traffic of a decoder layer is produced and consumed in it
    # (the residual stream crossing layers and the logits are not)
    assert 0.8 * activations < on_chip < activations
    # every interval fits in 520 MiB: HBM traffic drops by it, SRAM rises by it
    # (64 B granularity rounding and GEMM tiling factors ~1 with 520 MiB on chip)
    assert _traffic(kernel, "hbm") - _traffic(df, "hbm") == pytest.approx(on_chip, rel=1e-3)
    assert _traffic(df, "sram") - _traffic(kernel, "sram") == pytest.approx(on_chip, rel=1e-3)
    assert df.makespan_s < kernel.makespan_s
    assert check_capacity(df) == []

    # the same dataflow run with the intervals forced home: SRAM capacity just
    # below the smallest on-chip interval (GEMM tiling sees the same small buffer
    # in both runs, so compare kernel and dataflow at that capacity)
    smallest = min(g.tensors[t].bytes for _, t, _ in _intra_group_intervals(g))
    small = load_system("sn40l", overrides={"tiers.sram.capacity_bytes": smallest - 1})
    k_small = memsim.simulate(small, g, execution="kernel", fidelity="analytic")
    df_small = memsim.simulate(small, g, execution="dataflow", fidelity="analytic")
    assert _traffic(df_small, "sram") == 0.0
    assert _traffic(df_small, "hbm") == _traffic(k_small, "hbm")
    assert check_capacity(df_small) == []

    # the same chip without its SRAM tier (GEMM tiling still sees 1040 x 512 KiB
    # = 520 MiB of local buffers): the intervals' bytes go back to HBM, and the
    # makespan rises by at most their HBM time (prefill groups are compute-bound)
    no_sram = memsim.simulate(_sn40l_without_sram(), g, execution="dataflow", fidelity="analytic")
    assert _traffic(no_sram, "hbm") - _traffic(df, "hbm") == pytest.approx(on_chip, rel=1e-3)
    assert 0 < no_sram.makespan_s - df.makespan_s <= on_chip / (1.6e12 * 0.9)


def _sn40l_without_sram() -> System:
    data = yaml.safe_load((SYSTEM_DIR / "sn40l.yaml").read_text())
    del data["tiers"]["sram"]
    return load_system_dict(data)


def test_makespan_drops_by_the_hbm_time_of_on_chip_intervals_when_memory_bound() -> None:
    # decode only (prompt 1, batch 64): every group is HBM-bound with or without
    # the intervals, so keeping them on chip saves exactly their HBM time:
    # on_chip bytes / (1.6 TB/s x 0.9 achievable) (SRAM at 62.5 TB/s is never the bound)
    built = generate(load_model("llama2_7b"), batch=64, prompt_len=1, gen_len=3)
    g = fit_graph(load_system("sn40l"), built)  # the graph that runs (attention tiled)
    on_chip = sum(b for _, _, b in _intra_group_intervals(g))
    df = memsim.simulate(load_system("sn40l"), g, execution="dataflow", fidelity="analytic")
    home = memsim.simulate(_sn40l_without_sram(), g, execution="dataflow", fidelity="analytic")
    assert _traffic(df, "sram") == pytest.approx(on_chip, rel=1e-3)
    assert _traffic(home, "hbm") - _traffic(df, "hbm") == pytest.approx(on_chip, rel=1e-3)
    assert home.makespan_s - df.makespan_s == pytest.approx(on_chip / (1.6e12 * 0.9), rel=1e-3)


def _attention_bytes(graph: Graph) -> float:
    return sum(
        a.bytes for op in graph.ops if op.kind == "attention" for a in (*op.reads, *op.writes)
    )


def _run_args(**kw: Any) -> argparse.Namespace:
    base = {"model": "llama2_7b", "batch": 1, "prompt": 16384, "gen": 1, "dtype": "bf16"}
    return argparse.Namespace(**{**base, "kv_dtype": None, "tp": 1, **kw})


def test_cli_fused_attention_sees_the_local_sram_of_the_main_compute_unit() -> None:
    # 16k-token prefill, head dim 128 bf16: a K/V tile row is 2 x 128 x 2 B = 512 B, so
    # 16 KiB of local SRAM holds ~32 keys and Q is re-streamed far more often than
    # with 228 KiB (H100 SM): fused attention moves more bytes with the small buffer
    graph = run_cli.build_graph(_run_args())
    small = fit_graph(load_system("h100_sxm", overrides={
        "compute.tensor.local_sram_bytes": "16 KiB"}), graph)  # fmt: skip
    large = fit_graph(load_system("h100_sxm"), graph)
    assert _attention_bytes(small) > 1.5 * _attention_bytes(large)
    # the unbounded buffer moves only the compulsory Q+K+V+O: less than either
    unbounded = generate(load_model("llama2_7b"), batch=1, prompt_len=16384, gen_len=1)
    assert _attention_bytes(unbounded) < _attention_bytes(large)
    # --attention unfused writes and reads the 32 x 16k x 16k score matrix
    unfused = fit_graph(
        load_system("h100_sxm"), run_cli.build_graph(_run_args(attention="unfused"))
    )

    # (as separate GEMM and softmax ops): the whole graph moves more than the fused one
    def total(graph: Graph) -> float:
        return sum(a.bytes for op in graph.ops for a in (*op.reads, *op.writes))

    assert _attention_bytes(unfused) == 0
    assert total(unfused) - total(large) > 32 * 16384 * 16384 * 2
    assert attention_buffer_bytes(load_system("h100_sxm"), "bf16") == 228 * 1024


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
def test_dataflow_units_pay_their_per_kernel_cost_per_call_not_as_a_floor(
    llama_small: Graph, fidelity: str
) -> None:
    # A dataflow unit's per-kernel cost (configuration load + synchronisation) is serial
    # with the kernel: kernel by kernel it adds c per op; fused, c per group.
    c = 20e-6
    base = load_system("sn40l", overrides={"compute.pcu.kernel_launch_overhead_s": 0.0})
    paid = load_system("sn40l", overrides={"compute.pcu.kernel_launch_overhead_s": c})
    g = fit_graph(base, llama_small)
    n_ops = len(g.ops)
    n_groups = memsim.make_plan(base, g, execution="dataflow").n_groups
    assert 1 < n_groups < n_ops

    def span(system: System, execution: str) -> float:
        return memsim.simulate(system, g, execution=execution, fidelity=fidelity).makespan_s

    assert span(paid, "kernel") - span(base, "kernel") == pytest.approx(n_ops * c, rel=1e-6)
    assert span(paid, "dataflow") - span(base, "dataflow") == pytest.approx(n_groups * c, rel=1e-6)
