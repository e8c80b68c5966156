"""Hostile inputs of every kind end in exit 0 or 2, with no traceback, within 20 s and
3 GB (issue 16). The corpus is :mod:`tests.fuzz.corpus`; CI runs a seeded sample that
holds at least one case of every (input kind, class) pair, plus every case that needs
a resource-limited subprocess (FIFOs, ``/dev/zero``, sizes that would allocate).

``MEMSIM_FUZZ_N=1000 pytest tests/fuzz`` runs the whole corpus; ``MEMSIM_FUZZ_SEED``
picks another sample.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from memsim.cli.main import main
from tests.fuzz.corpus import (
    DEV_ZERO,
    FIFO,
    HUGE,
    READONLY,
    TEXT_COLUMN,
    TRUNCATE,
    Case,
    corpus,
    sample,
)

SEED = int(os.environ.get("MEMSIM_FUZZ_SEED", "16"))
N = int(os.environ.get("MEMSIM_FUZZ_N", "40"))
LIMIT_S = 20.0
LIMIT_BYTES = 3 << 30
ROOT = Path(__file__).resolve().parents[2]

SAMPLE = sample(N, seed=SEED)
LIGHT = [c for c in SAMPLE if not c.heavy]
#: every heavy case of the unbounded-read and far-future classes; the command-line
#: ceilings (class 2) as sampled, one at least
HEAVY = [c for c in corpus() if c.heavy and (c.cls != 2 or "farfuture" in c.id or c in SAMPLE)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small `memsim run --out` folder, copied and damaged by the report cases."""
    out = tmp_path_factory.mktemp("base") / "run"
    argv = ["run", "--fidelity", "analytic", "--prompt", "16", "--gen", "2", "--batch", "1"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    return out


def materialise(case: Case, d: Path, run_dir: Path) -> list[str]:
    """Create the case's files under ``d``; returns its argv."""
    if case.needs_run:
        shutil.copytree(run_dir, d / "run")
    for name, content in case.files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if content == FIFO:
            os.mkfifo(p)
        elif content == DEV_ZERO:
            p.unlink(missing_ok=True)
            p.symlink_to("/dev/zero")
        elif content == HUGE:
            with open(p, "wb") as f:
                f.truncate(5 << 30)  # sparse: no disk used
        elif content == READONLY:
            p.write_bytes(b"old")
            p.chmod(0o444)
        elif content == TRUNCATE:
            data = p.read_bytes()
            p.write_bytes(data[: len(data) // 2])
        elif content.startswith(TEXT_COLUMN):
            column = content[len(TEXT_COLUMN) : -1].decode()
            frame = pd.read_csv(p)
            frame[column] = "soon"
            frame.to_csv(p, index=False)
        else:
            p.write_bytes(content)
    return [a.replace("{d}", str(d)) for a in case.argv]


def _check(case: Case, status: int, err: str, took: float) -> None:
    assert "Traceback" not in err, f"{case.id}: traceback\n{err[-2000:]}"
    assert status in (0, 2), f"{case.id}: exit {status}\n{err[-2000:]}"
    if case.ceiling_lifted:
        assert "plausibility ceiling" not in err, f"{case.id}: --ceiling did not lift\n{err}"
    if case.must_refuse:
        assert status == 2 and "error:" in err, f"{case.id}: accepted\n{err[-500:]}"
        line = next(x for x in err.splitlines() if "error:" in x)
        assert len(line) < 1000, f"{case.id}: message line too long"
    assert took < LIMIT_S, f"{case.id}: took {took:.1f} s"


@pytest.mark.parametrize("case", LIGHT, ids=[c.id for c in LIGHT])
def test_hostile_input_in_process(
    case: Case, tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = materialise(case, tmp_path, run_dir)
    start = time.perf_counter()
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refusing a value
        status = int(exc.code or 0)
    took = time.perf_counter() - start
    _check(case, status, capsys.readouterr().err, took)


def _limits() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.fixture(scope="module")
def warm_kernels() -> None:
    """Compile the DRAM kernels once (numba caches them on disk), so that the 20 s
    bound measures the work an input causes, not a first compilation."""
    from hw_models import load_dram_device
    from memsim.dram import RequestTrace, simulate_requests

    simulate_requests(load_dram_device("ddr4_3200"), RequestTrace.from_arrays([0, 64]))


@pytest.mark.slow
@pytest.mark.parametrize("case", HEAVY, ids=[c.id for c in HEAVY])
def test_hostile_input_under_limits(
    case: Case, tmp_path: Path, run_dir: Path, warm_kernels: None
) -> None:
    """In a child under RLIMIT_AS = 3 GB (an allocation beyond it fails there), timed
    out at 20 s; its peak resident memory, from wait4, must stay below 3 GB too."""
    argv = materialise(case, tmp_path, run_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    err_file = tmp_path / ".stderr"
    with open(err_file, "w+b") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memsim.cli.main", *argv],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_limits,
        )
        deadline = start + LIMIT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"{case.id}: still running after {LIMIT_S} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    took = time.perf_counter() - start
    assert usage.ru_maxrss * 1024 < LIMIT_BYTES, f"{case.id}: {usage.ru_maxrss} KiB resident"
    _check(case, proc.returncode, stderr, took)


def test_the_memory_limit_is_enforced_in_the_child(tmp_path: Path) -> None:
    """The 3 GB bound is real: a child that allocates 4 GB fails under it."""
    code = "bytearray(4 << 30)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_limits
    )
    assert proc.returncode != 0 and "MemoryError" in proc.stderr


def test_sample_covers_every_kind_and_class() -> None:
    pairs = {(c.kind, c.cls) for c in corpus()}
    assert {(c.kind, c.cls) for c in sample(N, seed=SEED)} == pairs
    kinds = {c.kind for c in corpus()}
    assert {"system", "dram_spec", "flash_spec", "model", "cache_trace", "cli", "plot"} <= kinds
    assert {f"dram_{f}" for f in ("ramulator", "dramsim3", "stl")} <= kinds
    assert {c.cls for c in corpus()} == set(range(1, 10))
