"""`memsim measure`: refuses cleanly without a GPU or without torch; CPU test mode works."""

from __future__ import annotations

import builtins
import csv
from pathlib import Path
from typing import Any

import pytest

from memsim.cli.main import main

pytestmark = pytest.mark.trace


def test_without_a_gpu_one_line_exit_2_and_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "mb.csv"
    assert main(["measure", "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "needs an NVIDIA GPU" in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_without_torch_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert main(["measure", "-o", str(tmp_path / "mb.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch is not installed" in err


def test_unknown_section_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["measure", "-o", str(tmp_path / "mb.csv"), "--sections", "gemm,flops"]) == 2
    assert "--sections: unknown section 'flops'" in capsys.readouterr().err


def test_cpu_mode_writes_the_shared_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "mb.csv"
    code = main(["measure", "-o", str(out), "--device", "cpu", "--quick", "--sections", "memory"])
    assert code == 0
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["section", "name", "time_s", "params_json"]
    assert {r[1] for r in rows[1:]} == {"d2d_copy", "read_amax"}
    assert f"wrote {len(rows) - 1} rows" in capsys.readouterr().out
