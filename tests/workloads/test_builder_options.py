"""Typed boundaries of the builders: misspelt options and badly typed metadata are
``SpecError``s naming the field, not ``TypeError``s from deep inside."""

from __future__ import annotations

import pytest

import memsim
import workloads
from hw_models.errors import SpecError
from workloads.graph import Graph, GraphMeta


@pytest.mark.parametrize(
    ("builder", "sizes"),
    [
        (workloads.prefill, {"batch": 1, "prompt_len": 8}),
        (workloads.decode, {"batch": 1, "context_len": 8}),
        (workloads.generate, {"batch": 1, "prompt_len": 8, "gen_len": 1}),
        (workloads.train_step, {"batch": 1, "seq_len": 8}),
    ],
)
def test_a_misspelt_option_is_a_spec_error_naming_it(builder, sizes) -> None:  # type: ignore[no-untyped-def]
    cfg = workloads.load_model("llama2_7b")
    with pytest.raises(SpecError) as err:
        builder(cfg, kv_dtyp="fp8", **sizes)
    problem = err.value.problems[0]
    assert problem.path == "kv_dtyp"
    assert "did you mean 'kv_dtype'" in problem.message


def test_graph_meta_is_typed_and_checked() -> None:
    cfg = workloads.load_model("llama2_7b")
    g = workloads.generate(cfg, batch=2, prompt_len=16, gen_len=3, tp=1)
    meta = GraphMeta.of(g.meta)
    assert (meta.model, meta.batch, meta.gen_len, meta.tokens, meta.tp) == (
        "llama2_7b",
        2,
        3,
        6,
        1,
    )
    assert meta.sram_bytes is None  # left to the hardware
    bad = Graph(tensors=g.tensors, ops=g.ops, meta={**g.meta, "tp": "8"})
    with pytest.raises(SpecError, match=r"meta\.tp: expected int, found '8'"):
        memsim.simulate("h100_sxm", bad, fidelity="analytic")
