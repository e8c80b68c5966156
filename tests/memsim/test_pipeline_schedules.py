"""Pipeline schedules beyond 1F1B: valid orders, activation memory per device, time.

World: a 8-layer Llama-like model (h 256, 4 heads, FFN 512, vocabulary 512), one
sequence of 128 tokens per micro-batch, 8 micro-batches over p = 4 devices of a
DGX H100, analytic fidelity. Peaks are simulated (:func:`memsim.stages.stage_peak_bytes`:
a tensor lives from the op that writes it to the last op that reads it, timed by
the simulator) and compared with a hand count of in-flight micro-batches.

Hand count. One micro-batch saves, per layer, ``S = 8 A + 3 F`` bytes for the
backward (tests/memsim/test_training_memory.py: two residual sums, two normalised
inputs, Q, K, V, O of ``A = 128 x 256 x 2`` bytes; gate, up and SiLU·up of
``F = 128 x 512 x 2``). A device holding ``k`` micro-batch-layers in flight peaks
at ``k S`` plus the working set of the layer it runs (its transient gradients and
the embedding/logits), under ``0.75 S`` here.

* 1F1B (Narayanan et al. 2021): stage ``d`` (2 layers) has ``p - d`` micro-batches
  in flight: ``k = 2 (p - d)`` = 8, 6, 4, 2.
* interleaved, ``v = 2`` (1 layer per chunk): ``(p - d - 1) 2 + (v - 1) p`` warm-up
  chunk forwards plus the one running: ``k`` = 11, 9, 7, 5 (Narayanan et al. 2021,
  Sec. 2.2.2: the interleaved schedule holds more activations on early devices).
* ZB-H1 (Qi et al., ICLR 2024): 1F1B's in-flight count, ``k`` = 8, 6, 4, 2.
* V-shape (Qi et al., NeurIPS 2024; the authors' table: V-Min ``(p+4)//3``,
  V-Half ``(p+2)//2``, V-ZB ``p`` micro-batches of a device's two chunks): at most
  ``k`` = 4, 6, 8 on every device, reached on the busiest one.
"""

from __future__ import annotations

import pytest

import memsim
from hw_models.errors import SpecError
from memsim.stages import stage_peak_bytes
from workloads import from_hf_dict, train_step
from workloads.graph import Graph
from workloads.schedules import SCHEDULES, chunk_devices, schedule_order

P, M, L, T = 4, 8, 8, 128
A, F = T * 256 * 2, T * 512 * 2
S = 8 * A + 3 * F
CFG = from_hf_dict(
    {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": L,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "vocab_size": 512,
    },
    name="tiny8",
)
IN_FLIGHT = {  # micro-batch-layers in flight per device, by hand (module doc)
    "1f1b": [8, 6, 4, 2],
    "interleaved": [11, 9, 7, 5],
    "zb_h1": [8, 6, 4, 2],
}
V_BUDGET = {"v_min": 4, "v_half": 6, "v_zb": 8}  # 2 layers x (p+4)//3, (p+2)//2, p
WORKING_SET = 0.75 * S


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Graph, memsim.SimResult]]:
    out = {}
    for s in SCHEDULES:
        g = train_step(CFG, batch=M, seq_len=T, micro_batches=M, pp=P, schedule=s)
        out[s] = (g, memsim.simulate("dgx_h100", g, fidelity="analytic"))
    return out


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_unit_runs_once_on_its_chunks_device(schedule: str) -> None:
    chunks = 1 if schedule in ("1f1b", "zb_h1") else 2
    order = schedule_order(schedule, pp=P, chunks=chunks, micro_batches=M)
    devices = chunk_devices(schedule, pp=P, chunks=chunks)
    kinds = "FBW" if schedule not in ("1f1b", "interleaved") else "FB"
    expected = {(k, c, m) for k in kinds for c in range(P * chunks) for m in range(M)}
    flat = [u for seq in order for u in seq]
    assert len(flat) == len(set(flat)) and set(flat) == expected
    assert all(devices[c] == d for d, seq in enumerate(order) for _, c, _ in seq)
    if schedule.startswith("v_"):  # the V: chunk d and chunk 2p - 1 - d on device d
        assert devices == [0, 1, 2, 3, 3, 2, 1, 0]


def test_interleaved_order_is_megatrons() -> None:
    # p = 4, v = 2: device 0 warms up with (4 - 0 - 1) x 2 + 4 = 10 forwards, chunk 0 for
    # micro-batches 0-3, chunk 4 for 0-3, chunk 0 for 4-5, then F/B in turn; the last
    # device starts its 1F1B after 4 forwards of chunk 3 and one of chunk 7
    order = schedule_order("interleaved", pp=4, chunks=2, micro_batches=8)
    assert order[0][:12] == [
        *(("F", 0, m) for m in range(4)),
        *(("F", 4, m) for m in range(4)),
        ("F", 0, 4),
        ("F", 0, 5),
        ("F", 0, 6),
        ("B", 4, 0),
    ]
    assert order[3][:6] == [*(("F", 3, m) for m in range(4)), ("F", 7, 0), ("B", 7, 0)]


@pytest.mark.parametrize("schedule", ["1f1b", "interleaved", "zb_h1"])
def test_peak_activation_memory_per_device_is_the_in_flight_count(
    runs: dict[str, tuple[Graph, memsim.SimResult]], schedule: str
) -> None:
    g, r = runs[schedule]
    peaks = stage_peak_bytes(r, g)
    for d, k in enumerate(IN_FLIGHT[schedule]):
        assert k * S <= peaks[d] <= k * S + WORKING_SET, (d, peaks[d] / S)


@pytest.mark.parametrize("schedule", sorted(V_BUDGET))
def test_v_shape_peak_activation_memory_keeps_its_budget(
    runs: dict[str, tuple[Graph, memsim.SimResult]], schedule: str
) -> None:
    g, r = runs[schedule]
    peaks = stage_peak_bytes(r, g)
    k = V_BUDGET[schedule]
    assert all(v <= k * S + WORKING_SET for v in peaks.values()), peaks
    assert k * S <= max(peaks.values())
    # the V balances memory: every device holds at least half the busiest one's
    assert min(peaks.values()) >= 0.5 * max(peaks.values())


def test_v_half_and_v_min_cut_1f1b_peak(runs: dict[str, tuple[Graph, memsim.SimResult]]) -> None:
    top = {s: max(stage_peak_bytes(r, g).values()) for s, (g, r) in runs.items()}
    # by hand: 6 S / 8 S and 4 S / 8 S of the busiest device
    assert top["v_half"] / top["1f1b"] == pytest.approx(6 / 8, abs=0.05)
    assert top["v_min"] / top["1f1b"] == pytest.approx(4 / 8, abs=0.05)
    assert top["zb_h1"] == pytest.approx(top["1f1b"], rel=1e-9)


def test_flops_are_conserved_and_bubbles_shrink(
    runs: dict[str, tuple[Graph, memsim.SimResult]],
) -> None:
    flops = {s: g.total_flops for s, (g, _) in runs.items()}
    assert len(set(flops.values())) == 1, flops
    t = {s: r.makespan_s for s, (_, r) in runs.items()}
    # what users pick these schedules for: interleaving shrinks the bubble by v, ZB-H1
    # fills 1F1B's bubbles with deferred W passes, V-ZB (1F1B's memory) beats 1F1B too
    assert t["interleaved"] < t["1f1b"]
    assert t["zb_h1"] < t["1f1b"]
    assert t["v_zb"] < t["1f1b"]
    # and less memory costs time: V-Min is the slowest of the V family
    assert t["v_min"] > t["v_half"] > t["v_zb"]


def test_split_schedules_defer_only_weight_gradients(
    runs: dict[str, tuple[Graph, memsim.SimResult]],
) -> None:
    g, _ = runs["zb_h1"]
    w = [op for op in g.ops if op.attrs.get("pass") == "W"]
    # per micro-batch and layer: q, k, v, o, gate, up, down; plus the LM head's
    assert len(w) == M * (7 * L + 1)
    assert all(op.kind == "gemm" and op.name.endswith(".dw") for op in w)
    assert all(a.tensor.startswith("grad.") for op in w for a in op.writes)


def test_bad_schedule_arguments() -> None:
    with pytest.raises(SpecError, match=r"schedule.*'v_hlaf'.*did you mean 'v_half'"):
        train_step(CFG, batch=4, seq_len=8, micro_batches=4, pp=2, schedule="v_hlaf")
    with pytest.raises(SpecError, match="chunks"):
        train_step(CFG, batch=4, seq_len=8, micro_batches=4, pp=2, schedule="v_half", chunks=3)
    with pytest.raises(SpecError, match=r"micro_batches.*multiple"):
        train_step(CFG, batch=6, seq_len=8, micro_batches=6, pp=4, schedule="interleaved")
    with pytest.raises(SpecError, match=r"chunks.*layers"):
        train_step(CFG, batch=8, seq_len=8, micro_batches=8, pp=4, schedule="interleaved",
                   chunks=4)  # fmt: skip
