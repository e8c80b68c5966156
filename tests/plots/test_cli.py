"""`memsim plot ...` and `memsim report ...`: files written, user errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsim.cli.main import main
from tests.plots.conftest import SUMMARY, synthetic_frames


def _run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    for name, frame in synthetic_frames().items():
        frame.to_csv(d / f"{name}.csv", index=False)
    (d / "summary.json").write_text(json.dumps(SUMMARY))
    return d


@pytest.mark.slow
def test_plot_roofline_of_presets_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "r.svg"
    assert (
        main(
            [
                "plot",
                "roofline",
                "--system",
                "h100_sxm",
                "--system",
                "h100_sxm",
                "--set",
                "compute.tensor.peak_flops_per_s.bf16=500TFLOP/s",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    svg = out.read_text()
    assert "Arithmetic intensity (FLOP/B)" in svg
    assert "BF16 peak 500 TFLOP/s" in svg  # the override reached the ceiling


@pytest.mark.parametrize("kind", ["timeline", "occupancy", "breakdown"])
def test_plot_from_a_run_folder(tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(_run_dir(tmp_path)), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_plot_memory_wall_sensitivity_and_dram(tmp_path: Path) -> None:
    assert (
        main(["plot", "memory-wall", "--system", "h100_sxm@2022", "-o", str(tmp_path / "w.pdf")])
        == 0
    )
    assert (tmp_path / "w.pdf").read_bytes()[:4] == b"%PDF"
    sweep = tmp_path / "sweep.csv"
    sweep.write_text("hbm_bandwidth_bytes_per_s,tpot_s,energy_j\n1e12,0.03,2\n2e12,0.015,1.5\n")
    assert (
        main(
            [
                "plot",
                "sensitivity",
                str(sweep),
                "--knob",
                "hbm_bandwidth_bytes_per_s",
                "--objective",
                "tpot_s",
                "--objective",
                "energy_j",
                "-o",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    stats = tmp_path / "frfcfs.json"
    stats.write_text(
        json.dumps(
            {"row_hits": 8, "row_misses": 1, "row_conflicts": 1, "avg_read_latency_ns": 30.0}
        )
    )
    assert main(["plot", "dram", str(stats), "-o", str(tmp_path / "d.png")]) == 0


def test_report_is_one_self_contained_page(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    assert (
        main(
            ["plot", "roofline", str(run), "--system", "h100_sxm", "-o", str(run / "roofline.svg")]
        )
        == 0
    )
    out = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    page = out.read_text()
    assert "<svg" in page and "data:image/png;base64," in page  # inline SVG + drawn breakdown
    assert "Time per output token" in page and "61 ms" in page  # tpot 0.061 s
    assert "tier:hbm" in page  # the bottleneck
    assert 'src="http' not in page and "<link" not in page and "<script" not in page


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{tmp}/nope", "-o", "{tmp}/r.html"], "is not a directory"),
        (["report", "{tmp}", "-o", "{tmp}/r.html"], "has no summary.json"),
        (["plot", "roofline", "--system", "h100_sxm", "-o", "{tmp}/r.jpg"], "unsupported figure"),
        (["plot", "roofline", "--system", "nope", "-o", "{tmp}/r.png"], "nope"),
        (["plot", "timeline", "-o", "{tmp}/t.png"], "RESULT_DIR"),
        (["plot", "memory-wall", "--system", "h100_sxm", "-o", "{tmp}/w.png"], "NAME@YEAR"),
        (["plot", "dram", "{tmp}/missing.json", "-o", "{tmp}/d.png"], "does not exist"),
    ],
)
def test_user_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.html"))
