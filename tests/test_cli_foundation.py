"""`memsim presets` and `memsim show`: listing, derived figures, clean user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hw_models import system_names
from memsim.cli.main import main
from tests.conftest import tiny_system_data


def test_presets_lists_every_system_and_dram_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["systems"]) == system_names()
    assert "hbm3" in out["dram_devices"]
    assert "apple_m1_max_1tb" in out["flash_devices"]


def test_show_h100_json_has_the_headline_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "h100_sxm", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    # NVIDIA H100 SXM datasheet: 989.4 TFLOP/s dense BF16, 80 GB HBM3 at 3.35 TB/s
    assert s["peak_bf16_flops_per_s"] == pytest.approx(989.4e12)
    hbm = s["tiers"]["hbm"]
    assert hbm["capacity_bytes"] == pytest.approx(80e9)
    assert hbm["read_bandwidth_bytes_per_s"] == pytest.approx(3.35e12)
    assert hbm["ridge_point_flop_per_byte"] == pytest.approx(989.4e12 / 3.35e12)


def test_show_table_and_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "h100_sxm", "--set", "tiers.hbm.capacity_bytes=96e9"]) == 0
    out = capsys.readouterr().out
    assert "89.4 GiB" in out  # 96e9 B
    assert "989 TFLOP/s" in out


def test_malformed_yaml_lists_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_system_data()
    data["tiers"]["hbm"]["bandwith"] = 5  # unknown key
    data["tiers"]["ddr"]["read_bandwidth_bytes_per_s"] = -100  # negative bandwidth
    data["links"]["pcie"]["between"] = ["hbm", "nvme"]  # link to a missing tier
    text = yaml.safe_dump(data, sort_keys=False) + "devices: 2\n"  # duplicate key
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["show", str(f)]) == 2
    err = capsys.readouterr().err
    assert "4 problems" in err
    for fragment in (
        "tiers.hbm.bandwith: unknown key",
        "tiers.ddr.read_bandwidth_bytes_per_s: input should be greater than 0, found -100",
        "links.pcie.between[1]: unknown tier 'nvme'",
        "devices: duplicate key (lines",
    ):
        assert fragment in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: [unclosed\n")
    proc = subprocess.run(
        [sys.executable, "-m", "memsim.cli.main", "show", str(f)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid YAML" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "memsim.cli.main", "show", "no_such_system"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown system preset" in proc.stderr


def test_unwritable_output_path_is_a_clean_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    # a plain file where a folder is expected
    code = main(["run", "--batch", "1", "--prompt", "8", "--gen", "1", "--out", str(afile / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert "memsim: error: cannot access" in err and str(afile) in err
    assert "Traceback" not in err
    assert afile.read_text() == "x"  # nothing half-written
