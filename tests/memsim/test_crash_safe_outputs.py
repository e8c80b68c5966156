"""Outputs survive crashes and give the same bytes every time (issue 16, class 8).

* ``kill -9`` at random moments during ``run --out``, ``plot -o`` or ``sweep``, then a
  normal run, leaves exactly the final outputs: no temporary debris, no missing folder.
* Replacing a run folder is one atomic swap; a swap interrupted half-way (old folder
  renamed away, new not yet in place) is restored by the next run.
* Identical runs write identical bytes in every format (CSV, Parquet, JSON, PNG, SVG, PDF,
  YAML, HTML, Markdown) of every command that writes files.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hw_models.fileio import (
    TEMP_MARK,
    atomic_write_text,
    make_temp_dir,
    replace_dir,
    sweep_stale,
)
from memsim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["run", "--fidelity", "analytic", "--prompt", "16", "--gen", "2", "--batch", "1"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _debris_of(target: Path, pid: int, kind: str = TEMP_MARK) -> Path:
    return target.parent / f".{target.name}.{kind}-{pid}-deadbeef"


def test_stale_temporaries_of_dead_processes_are_swept(tmp_path: Path) -> None:
    target = tmp_path / "fig.png"
    dead = _debris_of(target, _dead_pid())
    dead.write_bytes(b"half a figure")
    alive = _debris_of(target, os.getppid())  # a live process: must be left alone
    alive.write_bytes(b"being written")
    other = tmp_path / ".other.png.memsim-tmp-1-x"  # another target's: not ours to judge
    atomic_write_text(target, "new")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert dead.name not in names and alive.name in names
    assert target.read_text() == "new" and not other.exists()


def test_interrupted_swap_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "run"
    trash = _debris_of(out, _dead_pid(), "memsim-old")
    trash.mkdir()
    (trash / "summary.json").write_text("{}")  # the old run, renamed away, never replaced
    assert sweep_stale(out) == [trash]
    assert (out / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_replace_dir_swaps_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    new = make_temp_dir(out)
    assert TEMP_MARK in new.name and str(os.getpid()) in new.name
    (new / "new.txt").write_text("new")
    replace_dir(new, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]


def test_symlinked_out_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert main([*SMALL, "--quiet", "--out", str(link), "--tables", "tiers"]) == 0
    assert link.is_symlink() and (real / "tiers.csv").exists()
    fig = tmp_path / "fig.svg"
    fig.symlink_to(tmp_path / "target.svg")  # dangling: the file it names is created
    assert main(["plot", "roofline", "--system", "h100_sxm", "-o", str(fig)]) == 0
    assert fig.is_symlink() and (tmp_path / "target.svg").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg", "link", "real", "target.svg"]


def test_errors_name_the_users_path_and_read_only_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    link = tmp_path / "fig.png"
    link.symlink_to(blocker / "sub" / "f.png")  # through a file: cannot be created
    assert main(["plot", "roofline", "--system", "h100_sxm", "-o", str(link)]) == 2
    err = capsys.readouterr().err
    assert str(link) in err and TEMP_MARK not in err
    ro = tmp_path / "ro.png"
    ro.write_bytes(b"keep")
    ro.chmod(0o444)
    assert main(["plot", "roofline", "--system", "h100_sxm", "-o", str(ro)]) == 2
    assert "read-only" in capsys.readouterr().err and ro.read_bytes() == b"keep"
    assert main([*SMALL, "--out", ""]) == 2
    assert "empty" in capsys.readouterr().err


def _kill_at_random(argv: list[str], cwd: Path, rng: random.Random, *, span_s: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "memsim.cli.main", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(rng.uniform(0.2, span_s))
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()


def _timed(argv: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "memsim.cli.main", *argv],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "final"),
    [
        ([*SMALL, "--out", "out"], "out"),
        (
            ["plot", "roofline", "--system", "h100_sxm", "--system", "b200", "-o", "fig.pdf"],
            "fig.pdf",
        ),
    ],
    ids=["run", "plot"],
)
def test_kill_9_then_a_normal_run_leaves_only_the_outputs(
    tmp_path: Path, argv: list[str], final: str
) -> None:
    rng = random.Random(16)
    span = _timed(argv, tmp_path)  # a first complete run: later kills hit a replacement
    expected = sorted(p.name for p in (tmp_path / final).iterdir()) if final == "out" else None
    for _ in range(3):
        _kill_at_random(argv, tmp_path, rng, span_s=span)
        assert (tmp_path / final).exists(), "a kill left no output at all"
    _timed(argv, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [final]
    if expected is not None:
        assert sorted(p.name for p in (tmp_path / final).iterdir()) == expected


@pytest.mark.slow
def test_kill_9_during_a_sweep_then_a_normal_run_leaves_only_the_store(tmp_path: Path) -> None:
    import sqlite3

    import yaml

    from tests.explore.spaces import small_decode

    space = tmp_path.parent / f"{tmp_path.name}-space.yaml"
    space.write_text(yaml.safe_dump(small_decode()))  # 12 points
    argv = ["sweep", str(space), "--workers", "1", "--store", "s.db", "--format", "json"]
    rng = random.Random(8)
    for _ in range(3):
        _kill_at_random(argv, tmp_path, rng, span_s=2.5)
    _timed(argv, tmp_path)
    # the store alone: no -wal/-shm journal left open, no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    con = sqlite3.connect(tmp_path / "s.db")
    try:
        rows = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone()
    finally:
        con.close()
    assert tuple(rows) == (12, 12)
    # exporting and plotting after kills leave only their finished files too
    export = ["sweep", "export", "s.db", "points.parquet"]
    _kill_at_random(export, tmp_path, rng, span_s=1.0)
    _timed(export, tmp_path)
    plot = ["sweep", "plot", "s.db", "--out", "figs"]
    _kill_at_random(plot, tmp_path, rng, span_s=3.0)
    _timed(plot, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figs", "points.parquet", "s.db"]
    assert all(TEMP_MARK not in p.name for p in (tmp_path / "figs").iterdir())


@pytest.mark.slow
def test_identical_runs_give_identical_bytes(tmp_path: Path) -> None:
    import yaml

    from tests.explore.spaces import small_decode

    space = tmp_path / "space.yaml"
    doc = small_decode()
    doc["parameters"]["workload.batch"] = {"values": [1, 4]}
    space.write_text(yaml.safe_dump(doc))
    measured = ROOT / "hw_models/presets/calibration/h200_sxm/microbenchmarks.csv"

    def outputs(d: Path) -> dict[str, bytes]:
        d.mkdir(parents=True)
        assert main([*SMALL, "--quiet", "--out", str(d / "csv")]) == 0
        assert main([*SMALL, "--quiet", "--out", str(d / "pq"), "--table-format", "parquet"]) == 0
        for fmt in ("png", "svg", "pdf"):
            assert (
                main(["plot", "roofline", "--system", "h100_sxm", "-o", str(d / f"r.{fmt}")]) == 0
            )
        assert main(["plot", "timeline", str(d / "csv"), "-o", str(d / "t.svg")]) == 0
        assert main(["report", str(d / "csv"), "-o", str(d / "report.html")]) == 0
        serve = ["serve", "--requests", "8", "--out", str(d / "serve")]
        assert main(serve) == 0
        plan = ["plan", "placement", "--model", "llama2_7b", "--batch", "1", "--prompt", "16"]
        assert main([*plan, "--gen", "1", "-o", str(d / "plan.json")]) == 0
        store = str(d / "s.db")
        assert main(["sweep", str(space), "--workers", "1", "--store", store]) == 0
        for ext in ("csv", "parquet"):
            assert main(["sweep", "export", store, str(d / f"points.{ext}")]) == 0
        # a calibrated system (YAML) from the shipped measurements
        cal = ["calibrate", "--measurements", str(measured), "--system", "h200_sxm"]
        assert main([*cal, "--date", "2026-01-01", "-o", str(d / "cal.yaml")]) == 0
        files = (p for p in sorted(d.rglob("*")) if p.is_file() and p.suffix != ".db")
        return {str(p.relative_to(d)): p.read_bytes() for p in files}

    a, b = outputs(tmp_path / "a"), outputs(tmp_path / "b")
    assert a.keys() == b.keys()
    suffixes = {Path(k).suffix for k in a}
    assert {".csv", ".parquet", ".json", ".png", ".svg", ".pdf", ".html", ".yaml"} <= suffixes
    assert [k for k in a if a[k] != b[k]] == []
