"""Trace a real PyTorch module into a :class:`~workloads.graph.Graph` (extra ``trace``).

The module runs on the ``meta`` device (shapes and dtypes only: no weights, no
compute, no network) under a ``TorchDispatchMode`` that records every aten op
with the tensors it reads and writes, and a ``TorchFunctionMode`` that keeps
``scaled_dot_product_attention`` as one fused attention op (as a FlashAttention
kernel runs it; its output is laid out ``(batch, seq, heads, dim)`` as those
kernels write it, so the usual ``transpose(1, 2).contiguous()`` copies nothing).

Accounting, the same as the analytic builders' (``docs/workloads.md``):

* GEMMs (``mm``, ``addmm``, ``bmm``, ``baddbmm``): ``2 M N K`` FLOPs per product.
* attention: ``4 d`` FLOPs per (query, key) pair computed (``is_causal``: the
  pairs on or below the diagonal).
* softmax: 5 FLOPs per element; other reductions 1 per input element; other
  arithmetic 1 per output element; copies, casts, concatenations, gathers,
  creation ops: 0. Views move nothing.
* Kernel fusion (``fuse=True``): the aten ops between two GEMM/attention/embedding
  ops form one fused kernel. Tensors made and used only inside it stay on chip;
  it reads every tensor it uses that was made before it, and writes every tensor
  it makes that is used after it (or returned). Bytes of an access are the
  distinct elements the (possibly strided or broadcast) view touches.
* Data-dependent Python control flow (``.item()``) cannot see data on meta
  tensors: such scalars read as ``scalar_default`` (True for booleans, 0 else).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch.nn import functional as F  # noqa: N812
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from workloads.attention import SOFTMAX_FLOPS_PER_ELEMENT
from workloads.graph import Access, GemmShape, Graph, Op, OpKind, Phase, Tensor

aten = torch.ops.aten

_DTYPES = {
    torch.float32: "fp32",
    torch.float64: "fp64",
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.int8: "int8",
    torch.uint8: "int8",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.bool: "bool",
}
for _name in ("float8_e4m3fn", "float8_e5m2"):
    if hasattr(torch, _name):
        _DTYPES[getattr(torch, _name)] = "fp8"

_GEMMS = {"mm", "addmm", "bmm", "baddbmm"}
_ZERO_FLOP = {
    "_to_copy", "clone", "copy_", "copy", "cat", "stack", "index_select", "gather", "arange",
    "full", "ones", "zeros", "empty", "empty_strided", "new_empty", "new_zeros", "new_ones",
    "new_full", "fill_", "fill", "tril", "triu", "scalar_tensor", "lift_fresh", "lift_fresh_copy",
    "expand_copy", "constant_pad_nd", "slice_scatter", "select_scatter", "index_copy_",
    "index_copy", "index_put_", "index_put", "zeros_like", "ones_like", "empty_like", "full_like",
    "_unsafe_index",
    "repeat", "repeat_interleave", "where", "masked_fill", "masked_fill_", "embedding",
    "_local_scalar_dense", "detach", "alias",
}  # fmt: skip
_SOFTMAX = {"_softmax", "_safe_softmax", "_log_softmax", "softmax"}
_REDUCTIONS = {
    "sum", "mean", "amax", "amin", "max", "min", "var_mean", "var", "cumsum", "all", "any", "prod",
    "norm", "linalg_vector_norm", "argmax", "argmin", "topk", "sort",
}  # fmt: skip
_NORMS = {"native_layer_norm": 7.0, "_fused_rms_norm": 4.0, "native_group_norm": 7.0}
_ALIASING_COPIES = {"_unsafe_view"}  # reshape of a fresh tensor: same storage
_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?:\.|$)")


def _opname(func: Any) -> str:
    return str(func._schema.name).split("::")[-1]


def _touched_bytes(t: torch.Tensor) -> float:
    """Bytes of the distinct elements a (strided, maybe broadcast) view addresses."""
    if t.numel() == 0:
        return 0.0
    n = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            n *= size
    return float(n * t.element_size())


@dataclass(slots=True)
class _Rec:
    name: str
    module: str
    heavy: str | None  # "gemm" | "attention" | "embedding" | None (fusable)
    flops: float
    reads: list[tuple[int, float]]
    writes: list[tuple[int, float]]
    gemm: GemmShape | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


class _Recorder:
    def __init__(
        self, names: Mapping[int, str], scalar_default: Callable[[torch.dtype], Any]
    ) -> None:
        self.records: list[_Rec] = []
        self.buf_of: dict[int, int] = {}  # id(tensor) -> buffer
        self.buffers: list[dict[str, Any]] = []
        self.keep: list[torch.Tensor] = []  # keep tensors alive so ids stay unique
        self.names = names  # id(param) -> parameter name
        self.modules: list[str] = [""]
        self.paused = False
        self.scalar_default = scalar_default

    def buffer(self, t: torch.Tensor, *, made: bool = False) -> int:
        key = id(t)
        b = self.buf_of.get(key)
        if b is None:
            b = len(self.buffers)
            self.buf_of[key] = b
            self.keep.append(t)
            pname = self.names.get(key)
            self.buffers.append(
                {
                    "name": pname,
                    "kind": "weight" if pname else ("activation" if made else "input"),
                    "bytes": float(t.numel() * t.element_size()),
                    "dtype": _DTYPES.get(t.dtype, str(t.dtype).replace("torch.", "")),
                    "shape": tuple(int(s) for s in t.shape),
                }
            )
        return b

    def alias(self, out: torch.Tensor, src: torch.Tensor) -> None:
        self.buf_of[id(out)] = self.buffer(src)
        self.keep.append(out)

    @contextmanager
    def pause(self) -> Iterator[None]:
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was

    def record(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        name = _opname(func)
        ins = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        returns = func._schema.returns
        alias = returns and returns[0].alias_info is not None
        if (alias and not returns[0].alias_info.is_write) or name in _ALIASING_COPIES:
            if ins and outs:
                self.alias(outs[0], ins[0])
            return
        reads = [(self.buffer(t), _touched_bytes(t)) for t in ins]
        if alias:  # in place: the written buffer is the mutated argument
            for o in outs:
                self.alias(o, ins[0])
            writes = [(self.buffer(ins[0]), _touched_bytes(ins[0]))]
        else:
            writes = [(self.buffer(o, made=True), _touched_bytes(o)) for o in outs]
        heavy: str | None = None
        gemm = None
        if name in _GEMMS:
            a, b = (ins[1], ins[2]) if name in ("addmm", "baddbmm") else (ins[0], ins[1])
            batch = a.shape[0] if a.dim() == 3 else 1
            m, k, n = int(a.shape[-2]), int(a.shape[-1]), int(b.shape[-1])
            gemm = GemmShape(m=m, n=n, k=k, batch=int(batch))
            flops, heavy = gemm.flops, "gemm"
            if name in ("addmm", "baddbmm"):
                reads = reads[1:] + reads[:1]  # x, w, then bias
        elif name == "embedding":
            heavy, flops = "embedding", 0.0
            reads = [
                (self.buffer(ins[0]), _touched_bytes(outs[0])),
                (self.buffer(ins[1]), _touched_bytes(ins[1])),
            ]
        elif name in _SOFTMAX:
            flops = SOFTMAX_FLOPS_PER_ELEMENT * outs[0].numel()
        elif name in _NORMS:
            flops = _NORMS[name] * ins[0].numel()
        elif name in _REDUCTIONS:
            flops = float(ins[0].numel()) if ins else 0.0
        elif name in _ZERO_FLOP:
            flops = 0.0
        else:
            flops = float(outs[0].numel()) if outs else 0.0
        self.records.append(
            _Rec(name, self.modules[-1], heavy, flops, _dedupe(reads), _dedupe(writes), gemm)
        )

    def sdpa(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        names = (
            "query",
            "key",
            "value",
            "attn_mask",
            "dropout_p",
            "is_causal",
            "scale",
            "enable_gqa",
        )
        bound = dict(zip(names, args, strict=False)) | kwargs
        q, k, v = bound["query"], bound["key"], bound["value"]
        mask = bound.get("attn_mask")
        causal = bool(bound.get("is_causal", False))
        *lead, lq, d = q.shape
        s_len, dv = k.shape[-2], v.shape[-1]
        heads = math.prod(lead)
        pairs = sum(min(s_len, i + 1) for i in range(lq)) if causal else lq * s_len
        with self.pause():
            out = torch.empty(
                *lead[:-1], lq, lead[-1] if lead else 1, dv, dtype=q.dtype, device=q.device
            )
            out = out.transpose(-2, -3) if lead else out.reshape(lq, dv)
        ins = [q, k, v] + ([mask] if isinstance(mask, torch.Tensor) else [])
        reads = [(self.buffer(t), _touched_bytes(t)) for t in ins]
        writes = [(self.buffer(out, made=True), _touched_bytes(out))]
        flops = 4.0 * d * pairs * heads
        attrs = {"q_len": int(lq), "kv_len": int(s_len), "causal": causal}
        self.records.append(
            _Rec("attention", self.modules[-1], "attention", flops, reads, writes, None, attrs)
        )
        return out


def _dedupe(acc: list[tuple[int, float]]) -> list[tuple[int, float]]:
    seen: dict[int, float] = {}
    for b, n in acc:
        seen[b] = max(seen.get(b, 0.0), n)
    return list(seen.items())


class _Dispatch(TorchDispatchMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default:
            return self.rec.scalar_default(args[0].dtype)
        out = func(*args, **kwargs)
        if not self.rec.paused:
            self.rec.record(func, args, kwargs, out)
        return out


class _Functions(TorchFunctionMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and not self.rec.paused:
            return self.rec.sdpa(tuple(args), kwargs)
        return func(*args, **kwargs)


def _default_scalar(dtype: torch.dtype) -> Any:
    if dtype == torch.bool:
        return True
    return 0.0 if dtype.is_floating_point else 0


def _to_meta(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x if x.device.type == "meta" else torch.empty_like(x, device="meta")
    if isinstance(x, tuple | list):
        return type(x)(_to_meta(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_meta(v) for k, v in x.items()}
    return x


def trace_module(
    module: torch.nn.Module,
    example_inputs: Any,
    *,
    kwargs: Mapping[str, Any] | None = None,
    phase: str = "prefill",
    fuse: bool = True,
    name: str | None = None,
    scalar_default: Callable[[torch.dtype], Any] = _default_scalar,
) -> Graph:
    """Run ``module(*example_inputs, **kwargs)`` on meta tensors and return its op graph.

    ``example_inputs`` is a tensor, a tuple of positional arguments or a dict of
    keyword arguments; tensors elsewhere than on ``meta`` are replaced by meta
    tensors of the same shape. A module with real parameters is deep-copied to
    ``meta`` first (build it on ``torch.device("meta")`` to avoid the copy).
    """
    if any(p.device.type != "meta" for p in module.parameters()):
        module = copy.deepcopy(module).to("meta")
    args: tuple[Any, ...]
    kw: dict[str, Any]
    if isinstance(example_inputs, dict):
        args, kw = (), dict(_to_meta(example_inputs))
    elif isinstance(example_inputs, tuple | list):
        args, kw = tuple(_to_meta(list(example_inputs))), {}
    else:
        args, kw = (_to_meta(example_inputs),), {}
    kw.update(kwargs or {})
    names = {id(p): n for n, p in module.named_parameters(remove_duplicate=False)}
    names.update({id(b): n for n, b in module.named_buffers()})
    rec = _Recorder(names, scalar_default)
    for t in tree_flatten((args, kw))[0]:
        if isinstance(t, torch.Tensor):
            rec.buffer(t)

    def enter(name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            rec.modules.append(name)

        return hook

    def leave(*_: Any) -> None:
        rec.modules.pop()

    hooks = []
    for mname, sub in module.named_modules():
        hooks.append(sub.register_forward_pre_hook(enter(mname)))
        hooks.append(sub.register_forward_hook(leave))
    try:
        with torch.no_grad(), _Functions(rec), _Dispatch(rec):
            result = module(*args, **kw)
    finally:
        for h in hooks:
            h.remove()
    logits = getattr(result, "logits", None)
    if isinstance(result, dict) and "logits" in result:
        logits = result["logits"]
    outputs = {
        rec.buf_of[id(t)]
        for t in tree_flatten(result)[0]
        if isinstance(t, torch.Tensor) and id(t) in rec.buf_of
    }
    if isinstance(logits, torch.Tensor) and id(logits) in rec.buf_of:
        rec.buffers[rec.buf_of[id(logits)]]["kind"] = "logits"
    ops = _fuse(rec, outputs) if fuse else [_single(r) for r in rec.records]
    return _to_graph(
        rec,
        ops,
        phase=phase,
        meta={
            "model": name or type(module).__name__,
            "source": "trace",
            "params": sum(p.numel() for p in module.parameters()),
            "fused": fuse,
        },
    )


@dataclass(slots=True)
class _Kernel:
    name: str
    kind: str
    flops: float
    reads: list[tuple[int, float]]
    writes: list[tuple[int, float]]
    module: str
    gemm: GemmShape | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _single(r: _Rec) -> _Kernel:
    kind = r.heavy or _light_kind([r])
    return _Kernel(
        f"{r.module}.{r.name}".lstrip("."),
        kind,
        r.flops,
        r.reads,
        r.writes,
        r.module,
        r.gemm,
        r.attrs,
    )


def _light_kind(group: list[_Rec]) -> str:
    names = {r.name for r in group}
    if names & _SOFTMAX:
        return "softmax"
    if names & {"rsqrt", *_NORMS}:
        return "norm"
    if names & {"cos", "sin"} or any("rotary" in r.module for r in group):
        return "rope"
    return "elementwise"


def _fuse(rec: _Recorder, outputs: set[int]) -> list[_Kernel]:
    recs = rec.records
    last_use: dict[int, int] = {}
    for i, r in enumerate(recs):
        for b, _ in r.reads:
            last_use[b] = i
    kernels: list[_Kernel] = []
    group: list[int] = []

    def close() -> None:
        if not group:
            return
        made: set[int] = set()
        reads: dict[int, float] = {}
        writes: dict[int, float] = {}
        end = group[-1]
        for i in group:
            r = recs[i]
            for b, n in r.reads:
                if b not in made:
                    reads[b] = max(reads.get(b, 0.0), n)
            read_here = {b for b, _ in r.reads}
            for b, n in r.writes:
                if b in read_here and b not in made:  # in-place update of an outside tensor
                    writes[b] = max(writes.get(b, 0.0), n)
                made.add(b)
        for i in group:
            for b, n in recs[i].writes:
                if b in made and (last_use.get(b, -1) > end or b in outputs):
                    writes[b] = max(writes.get(b, 0.0), n)
        flops = sum(recs[i].flops for i in group)
        rs = [recs[i] for i in group]
        if reads or writes or flops:
            module = max(rs, key=lambda r: r.flops).module
            kind = _light_kind(rs)
            kernels.append(
                _Kernel(
                    f"{module}.{kind}".lstrip("."),
                    kind,
                    flops,
                    list(reads.items()),
                    list(writes.items()),
                    module,
                    None,
                    {"aten": [r.name for r in rs]},
                )
            )
        group.clear()

    for i, r in enumerate(recs):
        if r.heavy is None:
            group.append(i)
            continue
        close()
        kernels.append(_single(r))
    close()
    return _sink_pointwise(kernels, outputs)


def _sink_pointwise(kernels: list[_Kernel], outputs: set[int]) -> list[_Kernel]:
    """Merge a pointwise kernel into the one pointwise kernel that consumes all it makes.

    A graph compiler moves such a kernel past the independent GEMMs between them
    (``silu(gate(x)) * up(x)``: the SiLU joins the multiply), so its outputs never
    leave the chip.
    """
    consumers: dict[int, set[int]] = {}
    for j, k in enumerate(kernels):
        for b, _ in k.reads:
            consumers.setdefault(b, set()).add(j)
    merged: set[int] = set()
    light = {"elementwise", "rope", "norm", "softmax"}
    for i, a in enumerate(kernels):
        if a.kind not in light or not a.writes:
            continue
        targets = set()
        for b, _ in a.writes:
            targets |= consumers.get(b, {-1})
            if b in outputs:
                targets.add(-1)
        if len(targets) != 1:
            continue
        j = targets.pop()
        if j <= i or kernels[j].kind not in light:
            continue
        c = kernels[j]
        made = {b for b, _ in a.writes}
        reads = {b: n for b, n in c.reads if b not in made}
        for b, n in a.reads:
            reads[b] = max(reads.get(b, 0.0), n)
        c.reads = list(reads.items())
        c.flops += a.flops
        c.attrs = {"aten": [*a.attrs.get("aten", []), *c.attrs.get("aten", [])]}
        for b, _ in a.reads:
            consumers.setdefault(b, set()).add(j)
        merged.add(i)
    return [k for i, k in enumerate(kernels) if i not in merged]


def _to_graph(rec: _Recorder, kernels: list[_Kernel], *, phase: str, meta: dict[str, Any]) -> Graph:
    tensors: dict[str, Tensor] = {}
    label: dict[int, str] = {}
    ops: list[Op] = []
    used: dict[str, int] = {}

    def tname(b: int, producer: str, k: int) -> str:
        if b in label:
            return label[b]
        info = rec.buffers[b]
        base = info["name"] or (
            f"input{sum(1 for x in label.values() if x.startswith('input'))}"
            if info["kind"] == "input"
            else f"{producer}.out{k}"
        )
        n = used.get(base, 0)
        used[base] = n + 1
        nm = base if n == 0 else f"{base}#{n}"
        label[b] = nm
        layer_m = _LAYER.search(info["name"] or producer)
        tensors[nm] = Tensor(
            name=nm,
            bytes=info["bytes"],
            kind=info["kind"],
            dtype=info["dtype"],
            shape=info["shape"],
            layer=int(layer_m.group(1)) if layer_m else None,
        )
        return nm

    for kern in kernels:
        writes = tuple(
            Access(tensor=tname(b, kern.name, k), bytes=n) for k, (b, n) in enumerate(kern.writes)
        )
        reads = tuple(
            Access(tensor=tname(b, kern.name, k), bytes=n) for k, (b, n) in enumerate(kern.reads)
        )
        layer_m = _LAYER.search(kern.module)
        dtype = tensors[reads[0].tensor].dtype if reads else "bf16"
        ops.append(
            Op(
                name=kern.name,
                kind=cast(OpKind, kern.kind),
                flops=kern.flops,
                reads=reads,
                writes=writes,
                dtype=dtype,
                gemm=kern.gemm,
                layer=int(layer_m.group(1)) if layer_m else None,
                phase=cast(Phase, phase),
                attrs=kern.attrs,
            )
        )
    return Graph(tensors=tensors, ops=tuple(ops), meta=meta)
