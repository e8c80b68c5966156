"""Model configs: preset sizes against published figures, KV bytes, config.json reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hw_models.errors import SpecError
from workloads import from_hf_dict, load_model, model_names

# Published parameter counts (model cards / papers cited in each preset's _source).
PUBLISHED = {
    "llama2_7b": 6.74e9,  # Llama 2 paper / HF card
    "llama2_13b": 13.0e9,
    "llama2_70b": 68.98e9,
    "llama3_8b": 8.03e9,  # HF model card
    "llama3_70b": 70.6e9,
    "mixtral_8x7b": 46.7e9,  # Mixtral paper: 46.7B total
    "opt_6_7b": 6.7e9,  # OPT paper Table 1
    "opt_30b": 30.0e9,
    "opt_175b": 175.0e9,
    "falcon_7b": 6.92e9,  # unique parameters of the module listing (lm_head tied)
    "yi_34b": 34.4e9,  # HF card
    "gpt3_175b": 175.0e9,  # GPT-3 paper Table 2.1
    "bert_large": 336e6,  # HF bert-large-uncased card
}


def test_every_preset_has_a_published_size() -> None:
    assert set(PUBLISHED) == set(model_names())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_published(name: str) -> None:
    cfg = load_model(name)
    assert cfg.params == pytest.approx(PUBLISHED[name], rel=0.01)
    assert cfg.source


def test_llama2_7b_by_hand() -> None:
    # embed 32000*4096 = 131,072,000; per layer 4*4096^2 + 3*4096*11008 + 2*4096
    # = 67,108,864 + 135,266,304 + 8,192 = 202,383,360; x32 = 6,476,267,520;
    # final norm 4,096; untied lm_head 131,072,000 -> 6,738,415,616
    assert load_model("llama2_7b").params == 6_738_415_616


def test_mixtral_active_parameters() -> None:
    cfg = load_model("mixtral_8x7b")
    # one expert: 3 * 4096 * 14336 = 176,160,768; 6 unused experts x 32 layers
    assert cfg.params - cfg.active_params == 6 * 32 * 176_160_768
    assert cfg.active_params == pytest.approx(12.9e9, rel=0.01)


@pytest.mark.parametrize(
    ("name", "kib"),
    [
        ("llama2_7b", 512),  # 2 x 32 layers x 32 heads x 128 x 2 B = 524,288 B
        ("llama3_8b", 128),  # 2 x 32 x 8 x 128 x 2
        ("llama2_70b", 320),  # 2 x 80 x 8 x 128 x 2
        ("mixtral_8x7b", 128),  # 2 x 32 x 8 x 128 x 2
        ("falcon_7b", 8),  # multi-query: 2 x 32 x 1 x 64 x 2
    ],
)
def test_kv_bytes_per_token_fp16(name: str, kib: int) -> None:
    assert load_model(name).kv_bytes_per_token("fp16") == kib * 1024


def test_kv_bytes_scale_with_dtype() -> None:
    cfg = load_model("llama3_8b")
    assert cfg.kv_bytes_per_token("fp8") == cfg.kv_bytes_per_token("bf16") / 2


def _llama(**over: object) -> dict[str, object]:
    base = {
        "model_type": "llama",
        "hidden_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "intermediate_size": 1024,
        "vocab_size": 1000,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"hidden_size": 500}, "not divisible by num_attention_heads"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads"),
        ({"num_local_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok"),
        ({"hidden_size": "big"}, "hidden_size"),
    ],
)
def test_inconsistent_config_is_a_clear_error(over: dict[str, object], needle: str) -> None:
    with pytest.raises(SpecError) as err:
        from_hf_dict(_llama(**over))
    assert needle in str(err.value)


def test_config_json_from_disk_with_family_aliases(tmp_path) -> None:
    # an OPT-style file: ffn_dim, enable_bias, learned positions with offset 2
    path = tmp_path / "opt-tiny" / "config.json"
    path.parent.mkdir()
    data = {
        "model_type": "opt",
        "hidden_size": 64,
        "ffn_dim": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "max_position_embeddings": 32,
        "torch_dtype": "float16",
        "architectures": ["OPTForCausalLM"],
    }
    path.write_text(json.dumps(data))
    cfg = load_model(path)
    assert cfg.name == "opt-tiny"
    assert (cfg.intermediate_size, cfg.norm, cfg.gated_ffn) == (256, "layernorm", False)
    # embed 100*64 + pos 34*64 = 8,576; layer: attn 4*(64*64+64) = 16,640,
    # ffn 64*256+256 + 256*64+64 = 33,088, 2 LayerNorms 256 -> 49,984 x 2 = 99,968;
    # final LN 128; tied head -> 108,672
    assert cfg.params == 108_672


def test_bad_json_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 64,\n  "vocab_size": ,\n}')  # no value on line 3
    with pytest.raises(SpecError) as err:
        load_model(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_unknown_preset_lists_known() -> None:
    with pytest.raises(SpecError, match="llama2_7b"):
        load_model("llama9_1t")


def test_load_model_accepts_a_hugging_face_folder(tmp_path: Path) -> None:
    import shutil

    from workloads.model_config import PRESET_DIR

    folder = tmp_path / "Llama-2-7b-hf"
    folder.mkdir()
    shutil.copy(PRESET_DIR / "llama2_7b.json", folder / "config.json")
    cfg = load_model(folder)
    assert cfg.params == load_model("llama2_7b").params
    with pytest.raises(SpecError, match=r"folder has no config\.json"):
        load_model(tmp_path)
