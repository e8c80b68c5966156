"""validation/h200_e2e.py in its CPU mode: the CSV it writes, and that its decode step
(KV cache written at the current position, RoPE at that position) reproduces a full
forward pass, so the timed graphs run the model they claim to run."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.trace
torch = pytest.importorskip("torch")

E2E = Path(__file__).resolve().parents[2] / "validation" / "h200_e2e.py"


@pytest.fixture(scope="module")
def e2e() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("h200_e2e", E2E)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["h200_e2e"] = mod  # dataclasses look their module up while building
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        del sys.modules["h200_e2e"]


def test_tiny_cpu_run_writes_one_row_per_point(e2e: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "e2e.csv"
    assert e2e.main(["-o", str(out), "--device", "cpu", "--tiny", "--reps", "3"]) == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "model", "phase", "batch", "prompt_or_context", "time_s", "n_reps", "date", "device",
        "torch",
    ]  # fmt: skip
    points = {(r["phase"], int(r["batch"]), int(r["prompt_or_context"])) for r in rows}
    expected = {("prefill", b, n) for b, n in e2e.TINY_PREFILL}
    expected |= {("decode", b, n) for b, n in e2e.TINY_DECODE}
    assert points == expected
    for r in rows:
        assert float(r["time_s"]) > 0 and int(r["n_reps"]) == 3
        assert r["device"] == "cpu" and r["torch"] == torch.__version__


def test_decode_step_with_the_cache_matches_a_full_forward(e2e: ModuleType) -> None:
    torch.manual_seed(0)
    cfg = e2e.TINY  # 4 heads, 2 KV heads: exercises native GQA
    assert cfg.kv_heads < cfg.heads
    dev, dt = torch.device("cpu"), torch.float32
    model = e2e.Decoder(cfg, dev, dt).eval()
    b, n = 2, 9
    tokens = torch.randint(0, cfg.vocab, (b, n + 1))

    def caches(ctx: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        shape = (b, cfg.kv_heads, ctx, cfg.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(cfg.layers)]

    with torch.inference_mode():
        cos, sin = model.rope_tables(n + 1, dev, dt)
        full = model(tokens, cos, sin, caches(n + 1), None)  # last-token logits of n+1 tokens
        kv = caches(n + 1)
        model(tokens[:, :n], cos[:n], sin[:n], kv, None)  # prefill fills positions 0..n-1
        step = model(tokens[:, n:], cos, sin, kv, torch.tensor([n]))  # decode at position n
    assert full.shape == (b, cfg.vocab)
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-4)
    # and the cache now holds position n: a decode that skipped the write would differ
    assert all(float(k[:, :, n].abs().sum()) > 0 for k, _ in kv)


def test_no_gpu_exits_2_with_one_line(
    e2e: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert e2e.main(["-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err
    assert not (tmp_path / "x.csv").exists()
