"""LLM work as op graphs: model configs, graph builders, PyTorch tracing, trace formats.

>>> import workloads
>>> cfg = workloads.load_model("llama3_8b")
>>> g = workloads.generate(cfg, batch=1, prompt_len=128, gen_len=4)
>>> g.meta["tokens"]
4

``import workloads`` never imports torch: :func:`trace_module` loads
``workloads.trace.torch_trace`` (extra ``trace``) on first use.
"""

from __future__ import annotations

from typing import Any

from workloads.attention import attention_names
from workloads.formats.graph_io import load_graph, save_graph
from workloads.graph import Access, Collective, GemmShape, Graph, Op, Tensor
from workloads.model_config import ModelConfig, from_hf_dict, load_model, model_names
from workloads.moe import composition_of_experts
from workloads.options import FFNSparsity, KVBudget, MoERouting, SparsePrefill
from workloads.requests import RequestStream, request_stream
from workloads.training import train_step
from workloads.transformer import batch_step, decode, generate, prefill


def trace_module(module: Any, example_inputs: Any, **kwargs: Any) -> Graph:
    """Trace a PyTorch module on meta tensors into a :class:`Graph` (needs the ``trace`` extra).

    See :func:`workloads.trace.torch_trace.trace_module`.
    """
    from workloads.trace.torch_trace import trace_module as _trace

    return _trace(module, example_inputs, **kwargs)


__all__ = [
    "Access",
    "Collective",
    "FFNSparsity",
    "GemmShape",
    "Graph",
    "KVBudget",
    "MoERouting",
    "ModelConfig",
    "Op",
    "RequestStream",
    "SparsePrefill",
    "Tensor",
    "attention_names",
    "batch_step",
    "composition_of_experts",
    "decode",
    "from_hf_dict",
    "generate",
    "load_graph",
    "load_model",
    "model_names",
    "prefill",
    "request_stream",
    "save_graph",
    "trace_module",
    "train_step",
]
