"""Graph files (JSON, Parquet) and memory-request streams."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw_models.errors import SpecError
from workloads import (
    Access,
    Graph,
    Op,
    Tensor,
    from_hf_dict,
    generate,
    load_graph,
    request_stream,
    save_graph,
    train_step,
)

TINY = {
    "model_type": "llama",
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 256,
    "vocab_size": 300,
}
CFG = from_hf_dict(TINY, name="tiny")


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_round_trip(tmp_path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    for g in (generate(CFG, batch=2, prompt_len=8, gen_len=3, tp=2),
              train_step(CFG, batch=2, seq_len=8, micro_batches=2, pp=2)):  # fmt: skip
        path = save_graph(g, tmp_path / f"g{suffix}")
        back = load_graph(path)
        assert back.ops == g.ops
        assert dict(back.tensors) == dict(g.tensors)
        assert dict(back.meta) == json.loads(json.dumps(dict(g.meta)))


def test_json_schema_header(tmp_path) -> None:
    path = save_graph(generate(CFG, batch=1, prompt_len=4, gen_len=1), tmp_path / "g.json")
    data = json.loads(path.read_text())
    assert (data["schema"], data["version"]) == ("memsim.graph", 1)


def test_malformed_graph_names_file_and_field(tmp_path) -> None:
    g = generate(CFG, batch=1, prompt_len=4, gen_len=1)
    data = json.loads(save_graph(g, tmp_path / "g.json").read_text())
    data["ops"][3]["reads"][0][0] = "nowhere"
    data["ops"][5]["kind"] = "magic"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_graph(bad)
    assert str(bad) in str(err.value) and "ops[5].kind" in str(err.value)
    data["ops"][5]["kind"] = "gemm"
    bad.write_text(json.dumps(data))
    with pytest.raises(SpecError, match=r"ops\[3\]\.reads\[0\]: unknown tensor 'nowhere'"):
        load_graph(bad)


def test_json_syntax_error_names_the_line(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "memsim.graph",\n "version": 1,\n "tensors": [,\n}')
    with pytest.raises(SpecError, match="line 3"):
        load_graph(bad)


def test_future_version_is_refused(tmp_path) -> None:
    bad = tmp_path / "v9.json"
    bad.write_text(json.dumps({"schema": "memsim.graph", "version": 9, "tensors": [], "ops": []}))
    with pytest.raises(SpecError, match="version"):
        load_graph(bad)


def _hand_graph() -> Graph:
    tensors = {
        "a": Tensor(name="a", bytes=256, kind="weight"),
        "b": Tensor(name="b", bytes=100, kind="activation"),
        "c": Tensor(name="c", bytes=64, kind="activation"),
    }
    ops = (
        Op(
            name="op0",
            kind="gemm",
            reads=(Access(tensor="a", bytes=256),),
            writes=(Access(tensor="b", bytes=100),),
        ),
        Op(
            name="op1",
            kind="other",
            reads=(Access(tensor="a", bytes=512), Access(tensor="c", bytes=64)),
        ),
    )
    return Graph(tensors=tensors, ops=ops)


def test_request_stream_by_hand() -> None:
    g = _hand_graph()
    s = request_stream(g, {"a": "hbm", "b": "hbm", "c": "ddr"}, tier="hbm")
    # a at 0 (4 lines), b at the next 4 KiB boundary (ceil(100 / 64) = 2 lines);
    # op1 re-reads a twice over (512 B of a 256 B tensor: lines wrap); c is elsewhere
    assert s.bases == {"a": 0, "b": 4096}
    assert s.address.tolist() == [0, 64, 128, 192, 4096, 4160] + [0, 64, 128, 192] * 2
    assert s.is_write.tolist() == [False] * 4 + [True] * 2 + [False] * 8
    assert s.order.tolist() == [0] * 6 + [1] * 8
    assert (s.bytes_read, s.bytes_written) == (12 * 64, 2 * 64)
    assert s.address.dtype == np.uint64


def test_request_stream_errors() -> None:
    g = _hand_graph()
    with pytest.raises(SpecError, match=r"placement\.zz"):
        request_stream(g, {"zz": "hbm"}, tier="hbm")
    with pytest.raises(SpecError, match="max_requests"):
        request_stream(g, {"a": "hbm"}, tier="hbm", max_requests=3)
    with pytest.raises(SpecError, match="base_addresses"):
        request_stream(g, {"a": "hbm"}, tier="hbm", base_addresses={})


def test_request_stream_of_a_decode_step_matches_its_bytes() -> None:
    g = generate(CFG, batch=1, prompt_len=8, gen_len=2)
    placement = {n: ("hbm" if t.kind in ("weight", "kv") else "sram") for n, t in g.tensors.items()}
    step = g.select(i for i, op in enumerate(g.ops) if op.step == 2)
    s = request_stream(step, {n: placement[n] for n in step.tensors}, tier="hbm")
    expected = sum(
        -(-a.bytes // 64)
        for op in step.ops
        for a in (*op.reads, *op.writes)
        if placement[a.tensor] == "hbm"
    )
    assert len(s) == expected
