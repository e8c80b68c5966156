"""Acceptance: a sweep killed with SIGKILL five times at random moments and restarted ends
with exactly one row per point, equal to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from explore import DesignSpace, Store, sweep
from tests.explore.spaces import small_decode

ROOT = Path(__file__).resolve().parents[2]


def _space_doc() -> dict[str, object]:
    doc = small_decode()
    doc["parameters"] = {
        "tiers.hbm.read_bandwidth_bytes_per_s": {"low": 1.0e12, "high": 6.0e12, "steps": 8},
        "tiers.hbm.capacity_bytes": {"values": ["16 GB", "40 GB", "80 GB"]},
        "workload.batch": {"values": [1, 8, 32]},
        "workload.prompt": {"values": [512, 2048]},
    }
    return doc  # 144 points


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _table(db: Path) -> list[tuple[object, ...]]:
    with Store(db) as st:
        return [
            (r["key"], r["index"], r["status"], r["parameters"], r["objectives"], r["metrics"])
            for r in sorted(st.rows(), key=lambda r: r["key"])
        ]


@pytest.mark.slow
def test_kill_9_five_times_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(_space_doc()))
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "memsim.cli.main", "sweep", str(space_file)]
    cmd += ["--workers", "2", "--store", str(db), "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(12)
    kills = 0
    for _ in range(5):
        before = _rows(db)
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        # wait until this run has written something, then kill it at a random moment
        deadline = time.monotonic() + 60
        while _rows(db) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes
            kills += 1
        proc.wait()
    assert kills >= 3, "the sweep finished before it could be killed: make it longer"
    assert _rows(db) < 144
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _rows(db) == 144

    reference = tmp_path / "reference.db"
    sweep(DesignSpace.from_yaml(space_file), store=reference, workers=2)
    assert _table(db) == _table(reference)
    assert len({k for k, *_ in _table(db)}) == 144
