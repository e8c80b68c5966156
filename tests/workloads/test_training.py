"""Training steps: 6 x params x tokens, recomputation, 1F1B order, optimizer state."""

from __future__ import annotations

import pytest

from hw_models.errors import SpecError
from workloads import from_hf_dict, load_model, train_step
from workloads.training import one_f_one_b

L7 = load_model("llama2_7b")
MATMUL_PARAMS_7B = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096


def _flops(g, *, phase: str | None = None, kind: str | None = None) -> float:
    return sum(
        op.flops
        for op in g.ops
        if (phase is None or op.phase == phase) and (kind is None or op.kind == kind)
    )


def test_training_flops_are_six_per_parameter_per_token() -> None:
    g = train_step(L7, batch=1, seq_len=512)
    tokens = 512
    # forward GEMMs 2 N T, backward 4 N T (dX and dW)
    assert _flops(g, phase="forward", kind="gemm") == 2 * MATMUL_PARAMS_7B * tokens
    assert _flops(g, phase="backward", kind="gemm") == 4 * MATMUL_PARAMS_7B * tokens
    # attention forward 4 d x 512 x 513 / 2 pairs x 32 heads x 32 layers; backward 2.5x
    attn = 4 * 128 * (512 * 513 / 2) * 32 * 32
    assert _flops(g, kind="attention") == attn * 3.5
    # plus the Adam update, 12 FLOPs per parameter; norms, RoPE, SiLU are the small rest
    adam = 12 * L7.params
    assert g.total_flops == pytest.approx(
        6 * MATMUL_PARAMS_7B * tokens + 3.5 * attn + adam, rel=1e-3
    )
    assert g.total_flops == pytest.approx(6 * L7.params * tokens, rel=0.03)


def test_full_recompute_adds_one_forward_of_the_layers() -> None:
    none = train_step(L7, batch=1, seq_len=256)
    full = train_step(L7, batch=1, seq_len=256, recompute="full")
    sel = train_step(L7, batch=1, seq_len=256, recompute="selective")
    layer_forward = sum(
        op.flops for op in none.ops if op.phase == "forward" and op.layer is not None
    )
    # minus the residual adds that layers 1..31 fused into their first norm: the re-run
    # starts from the checkpoint, the sum that norm wrote (256 x 4096 adds per layer)
    assert full.total_flops - none.total_flops == pytest.approx(layer_forward - 31 * 256 * 4096)
    attn_forward = _flops(none, phase="forward", kind="attention")
    assert sel.total_flops - none.total_flops == pytest.approx(attn_forward)
    assert all(
        op.attrs.get("recompute")
        for op in full.ops
        if op.phase == "backward" and op.name.endswith(".q")
    )


def test_adam_state_is_twelve_bytes_per_parameter() -> None:
    g = train_step(L7, batch=1, seq_len=64)
    # fp32 master weights and two fp32 moments (mixed precision)
    assert g.tensor_bytes("optimizer") == 12 * L7.params
    assert g.tensor_bytes("weight") == 2 * L7.params
    opt = [op for op in g.ops if op.phase == "optimizer"]
    assert len(opt) == 32 + 1 and sum(op.flops for op in opt) == 12 * L7.params


def test_one_f_one_b_schedule() -> None:
    order = one_f_one_b(4, 6)
    # stage 0 warms up with 3 forwards, stage 3 alternates from the start
    assert order[0][:6] == [
        ("F", 0, 0),
        ("F", 0, 1),
        ("F", 0, 2),
        ("F", 0, 3),
        ("B", 0, 0),
        ("F", 0, 4),
    ]
    assert order[3][:4] == [("F", 3, 0), ("B", 3, 0), ("F", 3, 1), ("B", 3, 1)]
    assert all(len(s) == 12 for s in order)


def test_pipeline_graph_follows_1f1b_and_data_dependencies() -> None:
    tiny = {
        "model_type": "llama",
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "vocab_size": 500,
    }
    cfg = from_hf_dict(tiny, name="tiny")
    g = train_step(cfg, batch=4, seq_len=16, micro_batches=4, pp=2)
    units: list[tuple[int, str, int]] = []  # (stage, F/B, micro-batch) in graph order
    first: dict[tuple[int, str, int], int] = {}
    last: dict[tuple[int, str, int], int] = {}
    for i, op in enumerate(g.ops):
        if op.phase == "optimizer":
            continue
        key = (op.stage, "F" if op.phase == "forward" else "B", op.micro_batch)
        if key not in first:
            first[key] = i
            units.append(key)
        last[key] = i
    for s in (0, 1):
        seq = [(k, m) for st, k, m in units if st == s]
        assert seq == [(k, m) for k, _, m in one_f_one_b(2, 4)[s]]
    # a stage's forward of micro-batch m waits for the previous stage's; backward the reverse
    for m in range(4):
        assert last[(0, "F", m)] in g.dependencies(first[(1, "F", m)])
        assert last[(1, "B", m)] in g.dependencies(first[(0, "B", m)])


def test_bad_training_arguments() -> None:
    with pytest.raises(SpecError, match="micro_batches"):
        train_step(L7, batch=3, seq_len=8, micro_batches=2)
    with pytest.raises(SpecError, match="recompute"):
        train_step(L7, batch=1, seq_len=8, recompute="some")  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["llama2_7b", "mixtral_8x7b", "falcon_7b", "opt_6_7b"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"recompute": "full"},
        {"recompute": "selective", "attention": "unfused"},
        {"micro_batches": 2, "pp": 2, "recompute": "full"},
        {"tp": 2, "recompute": "selective"},
        {"dp": 2, "zero": 1, "micro_batches": 2},
        {"dp": 2, "zero": 2, "micro_batches": 2, "pp": 2},
        {"dp": 2, "zero": 3, "micro_batches": 2, "recompute": "full", "tp": 2},
        {"micro_batches": 4, "pp": 2, "schedule": "interleaved"},
        {"micro_batches": 4, "pp": 2, "schedule": "zb_h1", "dp": 2, "zero": 2},
        {"micro_batches": 4, "pp": 2, "schedule": "v_half", "recompute": "full"},
        {"micro_batches": 4, "pp": 2, "schedule": "v_min", "dp": 2, "zero": 3},
    ],
    ids=[
        "plain",
        "full",
        "selective-unfused",
        "pp2-mb2-full",
        "tp2-selective",
        "zero1-mb2",
        "zero2-pp2-mb2",
        "zero3-tp2-full",
        "interleaved-pp2-mb4",
        "zbh1-zero2-pp2-mb4",
        "vhalf-full-pp2-mb4",
        "vmin-zero3-pp2-mb4",
    ],
)
def test_every_activation_and_gradient_is_written_before_it_is_read(
    model: str, options: dict[str, object]
) -> None:
    """Gradients flow: the loss seeds them and each backward op reads only gradients and
    saved (or re-computed) activations that an earlier op wrote. Catches a backward op
    reading the gradient of a tensor version nobody produces (experts filling one output,
    the LM head's all-gather under tp)."""
    cfg = load_model(model)
    if options.get("tp") and cfg.num_attention_heads % 2:
        pytest.skip(f"{model}: heads do not split over tp=2")
    batch = 4 * int(options.get("dp", 1))  # type: ignore[call-overload]
    g = train_step(cfg, batch=batch, seq_len=32, **options)  # type: ignore[arg-type]
    written: set[str] = set()
    unwritten = []
    for op in g.ops:
        for a in op.reads:
            kind = g.tensors[a.tensor].kind
            if kind in ("activation", "gradient", "logits") and a.tensor not in written:
                unwritten.append((op.name, a.tensor))
        written.update(a.tensor for a in op.writes)
    assert unwritten == []
