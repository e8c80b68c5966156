"""Hostile spec files of every kind end in one clean SpecError, quickly (issue 16, classes 3,
4, 5 and 9): alias bombs, deep nesting, huge integers, infinities, booleans and odd digits
where numbers belong, control characters and huge values in messages, and files in the
working directory named like presets.

Every kind of spec a user can hand memsim is covered: a system, a DRAM device and a flash
device (YAML), and a model config (JSON).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hw_models import SpecError, load_dram_device, load_flash_device, load_system
from hw_models.loader import DRAM_DIR, SYSTEM_DIR
from workloads import load_model
from workloads.model_config import PRESET_DIR as MODEL_DIR

PLACEHOLDER = "__VALUE__"


@dataclass(frozen=True)
class Kind:
    name: str
    preset: str
    source: Path
    field: tuple[str, ...]  # a numeric field
    load: Callable[[Any], object]
    fmt: str  # "yaml" or "json"

    def text(self, raw: str | None = None) -> str:
        """The preset's document, with the numeric field's value replaced by ``raw`` text."""
        if self.fmt == "yaml":
            data = yaml.safe_load(self.source.read_text())
        else:
            data = json.loads(self.source.read_text())
        if raw is None:
            return self.dump(data)
        node = data
        for part in self.field[:-1]:
            node = node[part]
        node[self.field[-1]] = PLACEHOLDER
        return self.dump(data).replace(
            f'"{PLACEHOLDER}"' if self.fmt == "json" else PLACEHOLDER, raw
        )

    def dump(self, data: Any) -> str:
        if self.fmt == "yaml":
            return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return json.dumps(data, indent=1, ensure_ascii=False)

    @property
    def suffix(self) -> str:
        return ".yaml" if self.fmt == "yaml" else ".json"


KINDS = [
    Kind(
        "system",
        "h100_sxm",
        SYSTEM_DIR / "h100_sxm.yaml",
        ("tiers", "hbm", "capacity_bytes"),
        load_system,
        "yaml",
    ),
    Kind(
        "dram",
        "ddr4_3200",
        DRAM_DIR / "ddr4_3200.yaml",
        ("organization", "rows"),
        load_dram_device,
        "yaml",
    ),
    Kind(
        "flash",
        "apple_m1_max_1tb",
        SYSTEM_DIR.parent / "flash" / "apple_m1_max_1tb.yaml",
        ("geometry", "channels"),
        load_flash_device,
        "yaml",
    ),
    Kind("model", "llama2_7b", MODEL_DIR / "llama2_7b.json", ("hidden_size",), load_model, "json"),
]
IDS = [k.name for k in KINDS]


def _refused(kind: Kind, path: Path, *, within_s: float = 5.0) -> SpecError:
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        kind.load(path)
    assert time.perf_counter() - t0 < within_s
    message = str(info.value)
    assert message.isprintable() or all(c.isprintable() or c == "\n" for c in message)
    assert len(message) < 2000
    return info.value


def _write(tmp_path: Path, kind: Kind, text: str) -> Path:
    path = tmp_path / f"bad{kind.suffix}"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_the_unchanged_document_loads(kind: Kind, tmp_path: Path) -> None:
    kind.load(_write(tmp_path, kind, kind.text()))


# ---- class 3: aliases (YAML kinds; JSON has none)

YAML_KINDS = [k for k in KINDS if k.fmt == "yaml"]
YAML_IDS = [k.name for k in YAML_KINDS]


def _bomb(levels: int = 9) -> str:
    lines = ["x0: &x0 [a, a, a, a, a, a, a, a, a]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", YAML_KINDS, ids=YAML_IDS)
def test_alias_bomb_is_refused_at_once(kind: Kind, tmp_path: Path) -> None:
    # 9 levels of 9 aliases: 9^9 = 387 M leaves if expanded, from a ~400-byte block
    err = _refused(kind, _write(tmp_path, kind, kind.text() + _bomb()), within_s=2.0)
    assert "aliases" in str(err)


@pytest.mark.parametrize("kind", YAML_KINDS, ids=YAML_IDS)
def test_self_referencing_alias_is_refused(kind: Kind, tmp_path: Path) -> None:
    err = _refused(kind, _write(tmp_path, kind, kind.text() + "loop: &loop [*loop]\n"))
    assert "aliases" in str(err)


# ---- class 4: deep nesting and long integers


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_refused(kind: Kind, tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    err = _refused(kind, _write(tmp_path, kind, kind.text(deep)))
    assert "nest" in str(err)


@pytest.mark.parametrize("kind", YAML_KINDS, ids=YAML_IDS)
def test_deep_block_nesting_is_refused(kind: Kind, tmp_path: Path) -> None:
    block = "".join(" " * i + "k:\n" for i in range(900)) + " " * 900 + "1\n"
    err = _refused(
        kind, _write(tmp_path, kind, kind.text() + "deep:\n" + block.replace("k:", " k:"))
    )
    assert "nest" in str(err)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_5000_digit_integer_is_refused(kind: Kind, tmp_path: Path) -> None:
    err = _refused(kind, _write(tmp_path, kind, kind.text("9" * 5000)))
    assert "5000 digits" in str(err)


# ---- class 5: infinities, huge numbers, booleans where numbers belong

BAD_NUMBERS = {
    "yaml": [".inf", "-.inf", "1e999", "1e308", "true", "'1e999 GB'", ".nan"],
    "json": ["Infinity", "-Infinity", "1e999", "1e308", "true", '"1e999 GB"', "NaN"],
}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
@pytest.mark.parametrize("index", range(7))
def test_non_numbers_in_numeric_fields_are_refused(kind: Kind, tmp_path: Path, index: int) -> None:
    raw = BAD_NUMBERS[kind.fmt][index]
    err = _refused(kind, _write(tmp_path, kind, kind.text(raw)))
    if raw not in ("Infinity", "-Infinity", "NaN"):  # not JSON numbers: refused by the parser
        assert any(p.path == ".".join(kind.field) for p in err.problems), str(err)


def test_capacity_true_is_not_one_byte() -> None:
    with pytest.raises(SpecError, match="expected a number, found true"):
        load_system("h100_sxm", overrides={"tiers.hbm.capacity_bytes": True})


# ---- class 9: digits, names, messages


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
@pytest.mark.parametrize("raw", ["1_000", "١٢٣", "'1_000'", "'١٢٣'"])
def test_underscores_and_non_ascii_digits_are_not_numbers(
    kind: Kind, tmp_path: Path, raw: str
) -> None:
    if kind.fmt == "json":
        raw = '"' + raw.strip("'") + '"'
    err = _refused(kind, _write(tmp_path, kind, kind.text(raw)))
    assert any(p.path == ".".join(kind.field) for p in err.problems), str(err)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_messages_escape_control_characters_and_cap_length(kind: Kind, tmp_path: Path) -> None:
    text = kind.text('"\\u001b[31mred\\u0007' + "x" * 1_000_000 + '"')
    err = _refused(kind, _write(tmp_path, kind, text))
    assert "\x1b" not in str(err) and "\x07" not in str(err)
    if kind.fmt == "json":
        return  # a model config ignores the many keys of a Hugging Face config it has no use for
    # an unknown key made of control characters is named, escaped, in the message
    bad_key = kind.text() + '"\\e[2J\\u0007evil": 1\n'
    err = _refused(kind, _write(tmp_path, kind, bad_key))
    assert "\x1b" not in str(err) and "evil" in str(err)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
@pytest.mark.parametrize("what", ["file", "folder"])
def test_cwd_entries_do_not_shadow_presets(
    kind: Kind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    monkeypatch.chdir(tmp_path)
    stray = tmp_path / kind.preset
    if what == "folder":
        stray.mkdir()
    else:
        stray.write_text("not: [a spec\n")
    assert kind.load(kind.preset) == kind.load(kind.source)
    # an explicit path still reads the file
    with pytest.raises(SpecError):
        kind.load(f"./{kind.preset}")


# ---- class 6 (spec files): endless, huge and non-regular files


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_devices_fifos_and_huge_files_are_refused(kind: Kind, tmp_path: Path) -> None:
    assert "not a regular file" in str(_refused(kind, Path("/dev/zero"), within_s=2.0))
    fifo = tmp_path / f"pipe{kind.suffix}"
    os.mkfifo(fifo)  # opening it to read must not wait for a writer
    assert "not a regular file" in str(_refused(kind, fifo, within_s=2.0))
    huge = _write(tmp_path, kind, kind.text() + " " * (17 * 2**20))
    assert "larger than 16 MiB" in str(_refused(kind, huge, within_s=2.0))


def test_override_values_follow_the_same_rules() -> None:
    with pytest.raises(SpecError, match=r"overrides\.notes\[1\]: aliases"):
        load_system("h100_sxm", overrides=["notes=[&a [1, 1], *a]"])
    with pytest.raises(SpecError, match="integer of 100 digits"):
        load_system("h100_sxm", overrides=["devices=" + "9" * 100])
    with pytest.raises(SpecError, match="devices: expected a number"):
        load_system("h100_sxm", overrides=["devices=1_000"])
    assert load_system("h100_sxm", overrides=["devices=4"]).devices == 4
