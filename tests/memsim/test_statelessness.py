"""No hidden state: results do not depend on call order, threads or what ran before.

``simulate()`` keeps nothing between calls unless the caller passes a ``SimCache``;
it changes no process-wide setting (allocator: ``test_alloc.py``; garbage collector
and numba's cache: below).
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workloads
from hw_models import load_system
from memsim import SimCache, simulate
from memsim.compiled import compile_graph
from memsim.memo import active, using

ROOT = Path(__file__).resolve().parents[2]


def _fingerprint(result: Any) -> str:
    """Every number of a result, to the last bit."""
    h = hashlib.sha256(repr(sorted(result.summary().items(), key=str)).encode())
    for name in result.ops:
        col = np.asarray(result.op_column(name))
        h.update(repr(col.tolist()).encode() if col.dtype == object else col.tobytes())
    h.update(repr(result.energy).encode())
    h.update(repr(result.tiers).encode())
    h.update(repr(result.transfers).encode())
    return h.hexdigest()


def _runs() -> list[tuple[Any, Any, dict[str, Any]]]:
    cfg = workloads.load_model("llama2_7b")
    g1 = workloads.generate(cfg, batch=2, prompt_len=128, gen_len=3)
    g2 = workloads.generate(cfg, batch=1, prompt_len=64, gen_len=2, tp=2)
    h100 = load_system("h100_sxm")
    faster = load_system("h100_sxm", overrides={"compute.tensor.peak_flops_per_s.bf16": 1.2e15})
    dgx = load_system("dgx_h100")
    return [
        (h100, g1, {"fidelity": "analytic"}),
        (faster, g1, {"fidelity": "analytic"}),  # same graph, other hardware point
        (h100, g1, {"policy": "stream_weights"}),  # DMA through the event engine
        (dgx, g2, {}),
        (h100, g1, {"fidelity": "analytic"}),  # again, after the others
    ]


def test_two_orders_with_and_without_a_cache_give_identical_results() -> None:
    runs = _runs()
    fresh = [_fingerprint(simulate(s, g, **kw)) for s, g, kw in runs]
    assert fresh[0] == fresh[-1]
    assert fresh[0] != fresh[1]  # the hardware point matters
    cache = SimCache()
    backwards = [_fingerprint(simulate(s, g, cache=cache, **kw)) for s, g, kw in runs[::-1]]
    assert backwards[::-1] == fresh
    assert cache.hits > 0  # the cache was used, and changed nothing
    again = [_fingerprint(simulate(s, g, cache=cache, **kw)) for s, g, kw in runs]
    assert again == fresh


def test_two_threads_sharing_one_cache_give_identical_results() -> None:
    runs = _runs()
    expected = [_fingerprint(simulate(s, g, **kw)) for s, g, kw in runs]
    cache = SimCache()
    got: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(k: int, order: list[int]) -> None:
        try:
            out = {}
            for i in order:
                s, g, kw = runs[i]
                out[i] = _fingerprint(simulate(s, g, cache=cache, **kw))
            got[k] = [out[i] for i in range(len(runs))]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=worker, args=(0, list(range(len(runs))))),
        threading.Thread(target=worker, args=(1, list(range(len(runs)))[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert got[0] == got[1] == expected


def test_no_cross_call_state_without_a_cache() -> None:
    g = workloads.generate(workloads.load_model("llama2_7b"), batch=1, prompt_len=32, gen_len=2)
    # outside simulate() nothing is memoised: each call compiles afresh
    assert compile_graph(g) is not compile_graph(g)
    simulate("h100_sxm", g, fidelity="analytic")
    assert active() is None  # simulate() leaves no cache active behind it
    with using(SimCache()):
        assert compile_graph(g) is compile_graph(g)


def test_generate_does_not_touch_the_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("generate() disabled the garbage collector")

    monkeypatch.setattr(gc, "disable", refuse)
    cfg = workloads.load_model("llama2_7b")
    graph = workloads.generate(cfg, batch=1, prompt_len=16, gen_len=3)
    assert len(graph.ops) > 0
    assert gc.isenabled()


@pytest.mark.slow
def test_read_only_install_runs_and_writes_nothing_into_the_package(tmp_path: Path) -> None:
    # a copy of the packages, read-only; numba's kernels cache under the user's cache
    # directory (XDG_CACHE_HOME), never beside the source (memsim/_jit.py)
    site = tmp_path / "site"
    for pkg in ("hw_models", "workloads", "memsim", "explore", "plots"):
        shutil.copytree(ROOT / pkg, site / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    for p in site.rglob("*"):
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    cache_home = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(cache_home), PYTHONDONTWRITEBYTECODE="1")
    commands = [
        ["run", "--batch", "1", "--prompt", "32", "--gen", "2", "--format", "json"],
        ["dram", "--device", "DDR4_3200", "--pattern", "random", "--requests", "2000"],
    ]
    try:
        for args in commands:
            out = subprocess.run(
                [sys.executable, "-m", "memsim.cli.main", *args],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
            )
            assert out.returncode == 0, out.stderr
        after = sorted(p.relative_to(site) for p in site.rglob("*"))
    finally:
        for p in site.rglob("*"):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert after == before  # nothing written into the package tree
    assert list((cache_home / "numba").rglob("*.nbi"))  # the kernels were cached there


def test_a_result_pickles_with_its_lazily_built_traffic_table() -> None:
    # sweeps send results between processes; the traffic table is built on first read
    import pickle

    g = workloads.generate(workloads.load_model("llama2_7b"), batch=1, prompt_len=16, gen_len=2)
    r = simulate("t4_flexgen", g, policy="stream_weights", fidelity="analytic")
    back = pickle.loads(pickle.dumps(r))
    assert _fingerprint(back) == _fingerprint(r)
    assert back.traffic["labels"] == r.traffic["labels"]
    assert np.array_equal(back.traffic["dma_read"], r.traffic["dma_read"])
    assert back.traffic["dma_read"].sum() > 0  # weights were streamed over DMA
