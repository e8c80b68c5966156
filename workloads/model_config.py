"""Transformer model configurations: read from Hugging Face ``config.json`` files or presets.

:class:`ModelConfig` holds what the cost of a transformer depends on (sizes,
attention layout, FFN form, norms, biases, position embeddings, MoE). It is read
from a Hugging Face style ``config.json`` (:func:`load_model`), whose naming
varies by family (``n_embd``/``d_model``/``hidden_size``, ``ffn_dim``,
``multi_query``, ...): :func:`from_hf_dict` maps the known aliases, fills the
family's architectural defaults from ``model_type``, and ignores keys that do
not change cost (tokenizer ids, dropout, ``torch_dtype``...).

Shipped presets live in ``workloads/presets/models/NAME.json``; each has a
``_source`` naming the model card or paper its numbers come from.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from hw_models.base import Spec
from hw_models.ceilings import CEILINGS, DEFAULT_CEILINGS, Ceilings
from hw_models.errors import Problem, SpecError
from hw_models.yamlio import read_text

PRESET_DIR = Path(__file__).parent / "presets" / "models"

# HF spellings -> canonical field names (first match wins when several are present)
_ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv", "n_kv_heads"),
    "intermediate_size": ("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "d_ff"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"),
    "num_local_experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "hidden_act": ("hidden_act", "activation_function", "hidden_activation"),
}

# architectural defaults per HF model_type (explicit keys in the file win)
_FAMILY: dict[str, dict[str, Any]] = {
    "llama": {"gated_ffn": True, "norm": "rmsnorm", "position_embedding": "rope"},
    "mistral": {"gated_ffn": True, "norm": "rmsnorm", "position_embedding": "rope"},
    "mixtral": {"gated_ffn": True, "norm": "rmsnorm", "position_embedding": "rope"},
    "qwen2": {"gated_ffn": True, "norm": "rmsnorm", "position_embedding": "rope"},
    "yi": {"gated_ffn": True, "norm": "rmsnorm", "position_embedding": "rope"},
    "opt": {
        "gated_ffn": False,
        "norm": "layernorm",
        "position_embedding": "learned",
        "position_offset": 2,
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
        "hidden_act": "relu",
    },
    "falcon": {
        "gated_ffn": False,
        "norm": "layernorm",
        "position_embedding": "rope",
        "parallel_attn": True,
        "tie_word_embeddings": True,
        "hidden_act": "gelu",
    },
    "gpt2": {
        "gated_ffn": False,
        "norm": "layernorm",
        "position_embedding": "learned",
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
        "hidden_act": "gelu",
    },
    "bert": {
        "architecture": "encoder",
        "gated_ffn": False,
        "norm": "layernorm",
        "position_embedding": "learned",
        "attention_bias": True,
        "mlp_bias": True,
        "pooler": True,
        "lm_head": False,
        "hidden_act": "gelu",
        "type_vocab_size": 2,
    },
}
_FAMILY["gpt3"] = _FAMILY["gpt2"]


#: Plausibility ceilings on a model's size (the "layers" and "experts" rows of
#: :data:`hw_models.ceilings.CEILINGS`, where the reasons are), checked by
#: :func:`load_model` and :func:`from_hf_dict` before any graph is built.
MAX_LAYERS = int(CEILINGS["layers"].limit)
MAX_EXPERTS = int(CEILINGS["experts"].limit)


class ModelConfig(Spec):
    """A transformer's shape: everything its FLOPs and bytes depend on.

    >>> cfg = load_model("llama2_7b")
    >>> round(cfg.params / 1e9, 2)
    6.74
    """

    name: str = "custom"
    model_type: str = "llama"
    architecture: Literal["decoder", "encoder"] = "decoder"
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(default=4096, gt=0)
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    gated_ffn: bool = True
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    attention_bias: bool = False
    mlp_bias: bool = False
    position_embedding: Literal["rope", "learned", "alibi"] = "rope"
    position_offset: int = Field(default=0, ge=0)
    parallel_attn: bool = False
    num_local_experts: int = Field(default=0, ge=0)
    num_experts_per_tok: int = Field(default=0, ge=0)
    type_vocab_size: int = Field(default=0, ge=0)
    pooler: bool = False
    lm_head: bool = True
    source: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            problems.append(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )
        kv = self.num_key_value_heads
        if kv is not None and self.num_attention_heads % kv:
            problems.append(
                f"num_attention_heads {self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads {kv}"
            )
        if (
            self.num_local_experts > 1
            and not 1 <= self.num_experts_per_tok <= self.num_local_experts
        ):
            problems.append(
                f"num_experts_per_tok must be in 1..{self.num_local_experts}, "
                f"found {self.num_experts_per_tok}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ----- derived shape -----------------------------------------------------------------
    @property
    def d_head(self) -> int:
        """Head dimension (``head_dim``, else ``hidden_size / num_attention_heads``)."""
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads (= attention heads unless GQA/MQA)."""
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def is_moe(self) -> bool:
        """Mixture of experts (more than one FFN expert per layer)."""
        return self.num_local_experts > 1

    @property
    def experts(self) -> int:
        """FFN experts per layer (1 for a dense model)."""
        return self.num_local_experts if self.is_moe else 1

    @property
    def active_experts(self) -> int:
        """Experts each token runs through (1 for a dense model)."""
        return self.num_experts_per_tok if self.is_moe else 1

    @property
    def norm_params(self) -> int:
        """Parameters of one norm: gain (RMSNorm) or gain and bias (LayerNorm)."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    # ----- parameter counts --------------------------------------------------------------
    def expert_params(self) -> int:
        """Parameters of one FFN (one expert): 3 matrices if gated, else 2, plus biases."""
        h, f = self.hidden_size, self.intermediate_size
        if self.gated_ffn:
            return 3 * h * f + ((2 * f + h) if self.mlp_bias else 0)
        return 2 * h * f + ((f + h) if self.mlp_bias else 0)

    def param_breakdown(self) -> dict[str, int]:
        """Parameters per component (embedding, attention, ffn, router, norms, head, pooler)."""
        h, L = self.hidden_size, self.num_hidden_layers
        q, kv = self.num_attention_heads * self.d_head, self.kv_heads * self.d_head
        attn = h * q + 2 * h * kv + q * h
        if self.attention_bias:
            attn += q + 2 * kv + h
        embed = self.vocab_size * h
        if self.position_embedding == "learned":
            embed += (self.max_position_embeddings + self.position_offset) * h
        embed += self.type_vocab_size * h
        norms_per_layer = 1 if self.parallel_attn else 2
        # decoders end with a final norm; BERT-style encoders normalise the embeddings instead
        norms = (L * norms_per_layer + 1) * self.norm_params
        out = {
            "embedding": embed,
            "attention": L * attn,
            "ffn": L * self.experts * self.expert_params(),
            "router": L * h * self.num_local_experts if self.is_moe else 0,
            "norms": norms,
            "lm_head": 0 if (self.tie_word_embeddings or not self.lm_head) else self.vocab_size * h,
            "pooler": h * h + h if self.pooler else 0,
        }
        return out

    @property
    def params(self) -> int:
        """Total parameters (tied embeddings counted once)."""
        return sum(self.param_breakdown().values())

    @property
    def active_params(self) -> int:
        """Parameters one token uses: all but the experts it is not routed to."""
        unused = (self.experts - self.active_experts) * self.num_hidden_layers
        return self.params - unused * self.expert_params()

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> float:
        """KV-cache bytes per token: 2 (K and V) x layers x kv_heads x head_dim x element size."""
        from workloads.dtypes import check_dtype, element_bytes

        check_dtype(kv_dtype, field="kv_dtype")
        return 2.0 * self.num_hidden_layers * self.kv_heads * self.d_head * element_bytes(kv_dtype)

    def summary(self) -> dict[str, Any]:
        """Plain-data description for tables and JSON."""
        return {
            "name": self.name,
            "model_type": self.model_type,
            "architecture": self.architecture,
            "layers": self.num_hidden_layers,
            "hidden_size": self.hidden_size,
            "heads": self.num_attention_heads,
            "kv_heads": self.kv_heads,
            "head_dim": self.d_head,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "experts": self.experts,
            "experts_per_token": self.active_experts,
            "params": self.params,
            "active_params": self.active_params,
            "source": self.source,
        }


def from_hf_dict(
    data: Any,
    *,
    name: str | None = None,
    source: str | None = None,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> ModelConfig:
    """Build a :class:`ModelConfig` from a Hugging Face style config mapping.

    Known aliases are mapped, family defaults filled from ``model_type``, keys that
    do not affect cost ignored. Raises :class:`SpecError` naming bad fields, and
    values above their plausibility ``ceilings`` (:mod:`hw_models.ceilings`).
    """
    if not isinstance(data, dict):
        raise SpecError([Problem("", "expected a JSON object")], source=source)
    fields = set(ModelConfig.model_fields)
    model_type = str(data.get("model_type", "llama")).lower()
    out: dict[str, Any] = dict(_FAMILY.get(model_type, {}))
    out["model_type"] = model_type
    for canon, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in data and data[alias] is not None:
                out[canon] = data[alias]
                break
    for key, value in data.items():
        if key in fields and key not in _ALIASES:
            out[key] = value
    if "_source" in data:
        out["source"] = data["_source"]
    if data.get("multi_query") and "num_key_value_heads" not in out:
        out["num_key_value_heads"] = 1
    if model_type == "falcon" and data.get("new_decoder_architecture"):
        out["parallel_attn"] = True
        out.setdefault("num_key_value_heads", data.get("num_kv_heads"))
    if "bias" in data and isinstance(data["bias"], bool):  # falcon
        out.setdefault("attention_bias", data["bias"])
        out.setdefault("mlp_bias", data["bias"])
    if data.get("enable_bias") is not None:  # opt
        out["attention_bias"] = out["mlp_bias"] = bool(data["enable_bias"])
    if "intermediate_size" not in out and "hidden_size" in out:
        out["intermediate_size"] = (
            4 * out["hidden_size"] if isinstance(out["hidden_size"], int) else 0
        )
    if model_type == "mixtral" or out.get("num_local_experts"):
        out.setdefault("num_experts_per_tok", data.get("num_experts_per_tok", 2))
    if isinstance(out.get("hidden_act"), str) and out["hidden_act"] in ("relu", "gelu", "gelu_new"):
        out.setdefault("gated_ffn", False)
    if name is not None:
        out["name"] = name
    elif "name" not in out:
        out["name"] = str(data.get("_name_or_path") or model_type)
    return ModelConfig.parse(out, source=source, ceilings=ceilings)


@cache
def model_names() -> tuple[str, ...]:
    """Names of the shipped model presets."""
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.json")))


def load_model(name_or_path: str | Path, *, ceilings: Ceilings = DEFAULT_CEILINGS) -> ModelConfig:
    """A preset by name (see :func:`model_names`), a ``config.json`` file, or a Hugging
    Face model folder holding one.

    Values above their plausibility ``ceilings`` (:mod:`hw_models.ceilings`: 1,024
    layers, 4,096 experts, ...) are refused; pass raised ceilings to lift them."""
    text_name = str(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in model_names():
        cfg = _load_preset(name_or_path)
        ceilings.enforce(cfg, source=name_or_path)
        return cfg
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SpecError([Problem("", "folder has no config.json")], source=str(path))
        path = path / "config.json"
    if not path.suffix and not path.exists():
        known = ", ".join(model_names())
        raise SpecError([Problem("model", f"unknown model {text_name!r} (known: {known})")])
    return _load_file(path, name=None, ceilings=ceilings)


@cache
def _load_preset(name: str) -> ModelConfig:
    return _load_file(PRESET_DIR / f"{name}.json", name=name)


class _JSONValueError(ValueError):
    """A JSON number a model config cannot hold."""


_MAX_INT_DIGITS = 40


def _json_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _JSONValueError(f"integer of {len(text)} digits (at most {_MAX_INT_DIGITS})")
    return int(text)


def _json_constant(text: str) -> float:
    raise _JSONValueError(f"{text} is not a number a config may hold")


def _load_file(
    path: Path, *, name: str | None, ceilings: Ceilings = DEFAULT_CEILINGS
) -> ModelConfig:
    text = read_text(path)  # bounded; refuses FIFOs and devices
    try:
        data = json.loads(text, parse_int=_json_int, parse_constant=_json_constant)
    except json.JSONDecodeError as err:
        msg = f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}"
        raise SpecError([Problem("", msg)], source=str(path)) from None
    except RecursionError:
        raise SpecError(
            [Problem("", "invalid JSON: nested too deeply")], source=str(path)
        ) from None
    except _JSONValueError as err:
        raise SpecError([Problem("", f"invalid JSON: {err}")], source=str(path)) from None
    if name is None and isinstance(data, dict) and "name" not in data:
        name = path.parent.name if path.name == "config.json" else path.stem
    return from_hf_dict(data, name=name, source=str(path), ceilings=ceilings)
