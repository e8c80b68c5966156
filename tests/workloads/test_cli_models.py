"""``memsim models`` and ``memsim model NAME``."""

from __future__ import annotations

import json

from memsim.cli.main import main
from workloads import model_names


def test_models_lists_every_preset(capsys) -> None:
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(model_names())
    assert main(["models"]) == 0
    assert "mixtral_8x7b" in capsys.readouterr().out


def test_model_figures(capsys) -> None:
    assert main(["model", "llama2_7b", "--context", "1023", "--format", "json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["params"] == 6_738_415_616
    assert fig["kv_bytes_per_token"] == 512 * 1024  # bf16, as fp16
    # decode at context 1023: 2 x matmul params + attention over 1024 keys (+ norms etc.)
    matmul = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096
    attention = 4 * 128 * 1024 * 32 * 32
    assert abs(fig["decode_flops_per_token"] / (2 * matmul + attention) - 1) < 1e-3
    assert fig["weight_bytes"]["bf16"] == 2 * fig["params"]
    assert main(["model", "mixtral_8x7b"]) == 0
    out = capsys.readouterr().out
    assert "active per token: 12.880 B" in out


def test_bad_input_exits_2(capsys) -> None:
    assert main(["model", "nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nonexistent'" in err and "Traceback" not in err
    assert main(["model", "llama2_7b", "--kv-dtype", "fp5"]) == 2
    assert "kv_dtype" in capsys.readouterr().err
    assert main(["model", "llama2_7b", "--context", "0"]) == 2
