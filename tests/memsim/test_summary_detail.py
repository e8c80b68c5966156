"""``simulate(..., detail="summary")``: the same summary, bit for bit, without per-op tables.

Sweeps, RL environments and the serving loop read a result's summary only; the
summary-only result must give them exactly what a full result gives (the JSON bytes of
``summary()``, tiers, links, energy, DMA transfers), keep nothing per op, and refuse
the per-op views with one clear message.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import memsim
from hw_models import load_system
from hw_models.engine_profile import with_engine
from hw_models.errors import SpecError
from workloads import generate, load_model, train_step

L7 = load_model("llama2_7b")

RUNS: dict[str, Callable[[], tuple[Any, Any, dict[str, Any]]]] = {
    # (system, graph, simulate options)
    "7b_h100": lambda: ("h100_sxm", generate(L7, batch=2, prompt_len=64, gen_len=4), {}),
    "7b_calibrated_eager": lambda: (
        with_engine(load_system("h200_sxm_calibrated"), "eager"),
        generate(L7, batch=2, prompt_len=64, gen_len=3, sram_bytes=math.inf),
        {},
    ),
    "7b_pp4_dgx": lambda: ("dgx_h100", generate(L7, pp=4, batch=2, prompt_len=32, gen_len=2), {}),
    "train_1f1b": lambda: (
        "dgx_h100",
        train_step(L7, batch=2, seq_len=64, micro_batches=2, pp=2, tp=2),
        {},
    ),
    "7b_sn40l_dataflow": lambda: ("sn40l", generate(L7, batch=1, prompt_len=32, gen_len=2), {}),
    "opt_stream_dma": lambda: (
        "t4_flexgen",
        generate(load_model("opt_6_7b"), batch=2, prompt_len=32, gen_len=2),
        {"policy": "stream_weights"},
    ),
}


def _summary_bytes(r: memsim.SimResult) -> bytes:
    doc = {
        "summary": r.summary(),
        "tiers": [repr(t) for t in r.tiers],
        "links": [repr(lk) for lk in r.links],
        "energy": repr(r.energy),
        "transfers": repr(r.transfers),
        "metrics": repr(sorted(r.metrics.items(), key=str)),
        "makespan": r.makespan_s.hex(),
    }
    return json.dumps(doc, sort_keys=True).encode()


@pytest.mark.parametrize("fidelity", ["analytic", "event"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_summary_detail_gives_the_full_summary_bit_for_bit(name: str, fidelity: str) -> None:
    system, graph, opts = RUNS[name]()
    full = memsim.simulate(system, graph, fidelity=fidelity, **opts)
    cache = memsim.SimCache()
    for _ in range(2):  # without and with a warm cache
        brief = memsim.simulate(
            system, graph, fidelity=fidelity, detail="summary", cache=cache, **opts
        )
        assert _summary_bytes(brief) == _summary_bytes(full)
    assert brief.detail == "summary" and full.detail == "full"
    assert len(brief.ops) == 0 and len(brief.traffic) == 0 and len(brief.occupancy) == 0
    assert len(full.ops) > 0


def test_summary_result_keeps_nothing_per_op() -> None:
    graph = generate(L7, batch=2, prompt_len=128, gen_len=32)  # ~13k ops
    full = memsim.simulate("h100_sxm", graph, fidelity="analytic")
    brief = memsim.simulate("h100_sxm", graph, fidelity="analytic", detail="summary")
    dict(full.traffic)  # the lazy tables, as a reader would see them
    dict(full.occupancy)
    # a full result holds several float64 columns per op; the summary none
    assert len(pickle.dumps(full)) > 8 * 8 * len(graph.ops)
    assert len(pickle.dumps(brief)) < len(pickle.dumps(full)) / 20


def test_summary_result_refuses_per_op_views(tmp_path: Path) -> None:
    graph = generate(L7, batch=1, prompt_len=16, gen_len=2)
    r = memsim.simulate("h100_sxm", graph, fidelity="analytic", detail="summary")
    for view in (r.ops_frame, r.traffic_frame, r.occupancy_frame, r.timeline_frame):
        with pytest.raises(SpecError, match="detail='full'"):
            view()
    with pytest.raises(SpecError, match="detail"):
        r.op_column("start_s")
    with pytest.raises(SpecError, match="detail"):
        r.to_json(tmp_path / "r.json")
    with pytest.raises(SpecError, match="the ops table"):
        r.write_tables(tmp_path / "t", tables=["tiers", "ops"])
    assert not (tmp_path / "t").exists()  # nothing half-written
    written = r.write_tables(tmp_path / "t", tables=["tiers", "links", "energy"])
    assert [p.name for p in written] == ["tiers.csv", "links.csv", "energy.csv"]


def test_unknown_detail_is_a_spec_error_naming_the_field() -> None:
    graph = generate(L7, batch=1, prompt_len=16, gen_len=1)
    with pytest.raises(SpecError, match=r"detail.*'brief'"):
        memsim.simulate("h100_sxm", graph, detail="brief")
