"""Save and load graphs: JSON (any size, readable) or Parquet (with pyarrow; compact).

Schema ``memsim.graph`` version 1 (documented in ``docs/workloads.md``)::

    {"schema": "memsim.graph", "version": 1,
     "meta": {...},
     "tensors": [{"name", "bytes", "kind", "dtype", "shape", "layer", "stage"}, ...],
     "ops": [{"name", "kind", "flops", "reads": [[tensor, bytes], ...], "writes": [...],
              "dtype", "gemm": [m, n, k, batch] | null,
              "collective": {"kind", "bytes", "group"} | null,
              "layer", "phase", "step", "stage", "micro_batch", "fuse_group",
              "deps": [i, ...] | null, "attrs": {...}}, ...]}

Fields at their default may be left out. Parquet holds one row per op (``reads``,
``writes``, ``gemm``, ``collective``, ``deps`` and ``attrs`` as JSON text) and
keeps ``meta`` and ``tensors`` as JSON in the file's key-value metadata. A file
that does not follow the schema raises :class:`SpecError` naming the file and the
field (``ops[12].reads[0]``), or the line for a JSON syntax error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from hw_models.base import Spec
from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_temp_path, atomic_write_text, commit_temp_path
from workloads.graph import (
    OP_KINDS,
    PHASES,
    TENSOR_KINDS,
    Access,
    Collective,
    GemmShape,
    Graph,
    Op,
    Tensor,
)

SCHEMA = "memsim.graph"
VERSION = 1
_KINDS_T = Literal[TENSOR_KINDS]  # type: ignore[valid-type]
_KINDS_O = Literal[OP_KINDS]  # type: ignore[valid-type]
_PHASES = Literal[PHASES]  # type: ignore[valid-type]


class _TensorRec(Spec):
    name: str = Field(min_length=1)
    bytes: float = Field(ge=0)
    kind: _KINDS_T
    dtype: str = "bf16"
    shape: tuple[int, ...] = ()
    layer: int | None = None
    stage: int = Field(default=0, ge=0)


class _CollectiveRec(Spec):
    kind: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"]
    bytes: float = Field(ge=0)
    group: int = Field(ge=1)


class _OpRec(Spec):
    name: str
    kind: _KINDS_O
    flops: float = Field(default=0.0, ge=0)
    reads: tuple[tuple[str, float], ...] = ()
    writes: tuple[tuple[str, float], ...] = ()
    dtype: str = "bf16"
    gemm: tuple[int, int, int, int] | None = None
    collective: _CollectiveRec | None = None
    layer: int | None = None
    phase: _PHASES = "forward"
    step: int = Field(default=0, ge=0)
    stage: int = Field(default=0, ge=0)
    micro_batch: int = Field(default=0, ge=0)
    fuse_group: str | None = None
    deps: tuple[int, ...] | None = None
    attrs: dict[str, Any] = Field(default_factory=dict)


class _GraphRec(Spec):
    schema_: Literal["memsim.graph"] = Field(alias="schema")
    version: Literal[1]
    meta: dict[str, Any] = Field(default_factory=dict)
    tensors: list[_TensorRec]
    ops: list[_OpRec]


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The graph as plain data following the schema (defaults left out)."""
    tensors = []
    for t in graph.tensors.values():
        rec: dict[str, Any] = {"name": t.name, "bytes": t.bytes, "kind": t.kind, "dtype": t.dtype}
        if t.shape:
            rec["shape"] = list(t.shape)
        if t.layer is not None:
            rec["layer"] = t.layer
        if t.stage:
            rec["stage"] = t.stage
        tensors.append(rec)
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "meta": dict(graph.meta),
        "tensors": tensors,
        "ops": [_op_to_dict(op) for op in graph.ops],
    }


def _op_to_dict(op: Op) -> dict[str, Any]:
    rec: dict[str, Any] = {"name": op.name, "kind": op.kind}
    if op.flops:
        rec["flops"] = op.flops
    if op.reads:
        rec["reads"] = [[a.tensor, a.bytes] for a in op.reads]
    if op.writes:
        rec["writes"] = [[a.tensor, a.bytes] for a in op.writes]
    rec["dtype"] = op.dtype
    if op.gemm is not None:
        g = op.gemm
        rec["gemm"] = [g.m, g.n, g.k, g.batch]
    if op.collective is not None:
        c = op.collective
        rec["collective"] = {"kind": c.kind, "bytes": c.bytes, "group": c.group}
    for key in ("layer", "fuse_group", "deps"):
        value = getattr(op, key)
        if value is not None:
            rec[key] = list(value) if key == "deps" else value
    rec["phase"] = op.phase
    for key in ("step", "stage", "micro_batch"):
        if getattr(op, key):
            rec[key] = getattr(op, key)
    if op.attrs:
        rec["attrs"] = dict(op.attrs)
    return rec


def graph_from_dict(data: Any, *, source: str | None = None) -> Graph:
    """Validate plain data against the schema and build the :class:`Graph`."""
    if (
        isinstance(data, dict)
        and data.get("schema") == SCHEMA
        and data.get("version") not in (None, 1)
    ):
        msg = f"unsupported version {data.get('version')!r} (this memsim reads version {VERSION})"
        raise SpecError([Problem("version", msg)], source=source)
    rec = _GraphRec.parse(data, source=source)
    tensors = {
        t.name: Tensor(
            name=t.name,
            bytes=t.bytes,
            kind=t.kind,
            dtype=t.dtype,
            shape=t.shape,
            layer=t.layer,
            stage=t.stage,
        )
        for t in rec.tensors
    }
    problems: list[Problem] = []
    if len(tensors) != len(rec.tensors):
        problems.append(Problem("tensors", "duplicate tensor names"))
    ops = []
    for i, o in enumerate(rec.ops):
        for field in ("reads", "writes"):
            for j, (name, _) in enumerate(getattr(o, field)):
                if name not in tensors:
                    problems.append(Problem(f"ops[{i}].{field}[{j}]", f"unknown tensor {name!r}"))
        for j, d in enumerate(o.deps or ()):
            if not 0 <= d < i:
                problems.append(Problem(f"ops[{i}].deps[{j}]", f"{d} is not an earlier op"))
        ops.append(
            Op(
                name=o.name,
                kind=o.kind,
                flops=o.flops,
                reads=tuple(Access(tensor=n, bytes=b) for n, b in o.reads),
                writes=tuple(Access(tensor=n, bytes=b) for n, b in o.writes),
                dtype=o.dtype,
                gemm=None
                if o.gemm is None
                else GemmShape(m=o.gemm[0], n=o.gemm[1], k=o.gemm[2], batch=o.gemm[3]),
                collective=None
                if o.collective is None
                else Collective(
                    kind=o.collective.kind, bytes=o.collective.bytes, group=o.collective.group
                ),
                layer=o.layer,
                phase=o.phase,
                step=o.step,
                stage=o.stage,
                micro_batch=o.micro_batch,
                fuse_group=o.fuse_group,
                deps=None if o.deps is None else tuple(o.deps),
                attrs=o.attrs,
            )
        )
    if problems:
        raise SpecError(problems, source=source)
    return Graph(tensors=tensors, ops=tuple(ops), meta=rec.meta)


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("json", "parquet"):
            raise SpecError(
                [Problem("format", f"unknown graph format {fmt!r} (known: json, parquet)")]
            )
        return fmt
    return "parquet" if path.suffix == ".parquet" else "json"


def save_graph(
    graph: Graph, path: str | Path, *, format: Literal["json", "parquet"] | None = None
) -> Path:
    """Write ``graph`` to ``path`` (format from the suffix unless given); atomic."""
    p = Path(path)
    fmt = _format(p, format)
    if fmt == "json":
        text = json.dumps(graph_to_dict(graph), separators=(",", ":")) + "\n"
        return atomic_write_text(p, text)
    tmp = atomic_temp_path(p)
    try:
        _write_parquet(graph, tmp)
        return commit_temp_path(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


def load_graph(path: str | Path, *, format: Literal["json", "parquet"] | None = None) -> Graph:
    """Read a graph written by :func:`save_graph` (or by hand, following the schema)."""
    p = Path(path)
    fmt = _format(p, format)
    if not p.exists():
        raise SpecError([Problem("", "file not found")], source=str(p))
    if fmt == "parquet":
        return _read_parquet(p)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as err:
        raise SpecError([Problem("", f"not UTF-8 text: {err}")], source=str(p)) from None
    except json.JSONDecodeError as err:
        msg = f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}"
        raise SpecError([Problem("", msg)], source=str(p)) from None
    return graph_from_dict(data, source=str(p))


_PARQUET_JSON_COLS = ("reads", "writes", "gemm", "collective", "deps", "attrs")


def _write_parquet(graph: Graph, path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise SpecError(
            [Problem("format", "parquet needs pyarrow (pip install memsim[parquet])")]
        ) from None
    data = graph_to_dict(graph)
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "name",
            "kind",
            "flops",
            "dtype",
            "layer",
            "phase",
            "step",
            "stage",
            "micro_batch",
            "fuse_group",
            *_PARQUET_JSON_COLS,
        )
    }
    for rec in data["ops"]:
        full = _OpRec.model_validate(rec).model_dump()
        for k in cols:
            v = full[k]
            cols[k].append(json.dumps(v) if k in _PARQUET_JSON_COLS and v is not None else v)
    table = pa.table(cols)
    table = table.replace_schema_metadata(
        {
            "memsim.schema": SCHEMA,
            "memsim.version": str(VERSION),
            "memsim.meta": json.dumps(data["meta"]),
            "memsim.tensors": json.dumps(data["tensors"]),
        }
    )
    pq.write_table(table, path)


def _read_parquet(path: Path) -> Graph:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover
        raise SpecError(
            [Problem("format", "parquet needs pyarrow (pip install memsim[parquet])")]
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise SpecError([Problem("", f"not a Parquet file: {err}")], source=str(path)) from None
    md = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if md.get("memsim.schema") != SCHEMA:
        raise SpecError(
            [Problem("schema", "not a memsim graph (no memsim.schema metadata)")], source=str(path)
        )
    try:
        ops = []
        for i, row in enumerate(table.to_pylist()):
            for k in _PARQUET_JSON_COLS:
                if row.get(k) is not None:
                    row[k] = json.loads(row[k])
            ops.append({k: v for k, v in row.items() if v is not None or k == "layer"})
            del i
        data = {
            "schema": SCHEMA,
            "version": int(md.get("memsim.version", "0")),
            "meta": json.loads(md.get("memsim.meta", "{}")),
            "tensors": json.loads(md.get("memsim.tensors", "[]")),
            "ops": ops,
        }
    except (ValueError, KeyError) as err:
        raise SpecError(
            [Problem("", f"corrupt memsim metadata: {err}")], source=str(path)
        ) from None
    return graph_from_dict(data, source=str(path))
