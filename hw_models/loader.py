"""Load systems and DRAM devices from YAML files or shipped presets.

>>> from hw_models import load_system
>>> h100 = load_system("h100_sxm")
>>> big = load_system("h100_sxm", overrides={"tiers.hbm.capacity_bytes": "96 GiB"})

Overrides are dotted paths into the YAML document (``tiers.hbm.capacity_bytes``)
with a value, or strings ``"path=value"`` (the value read as YAML). A path that
does not exist is an error, as is any problem of the resulting spec.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from hw_models.base import Spec
from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError, problems_from_pydantic
from hw_models.system import System, link_problems
from hw_models.yamlio import read_yaml

PRESET_DIR = Path(__file__).parent / "presets"
SYSTEM_DIR = PRESET_DIR / "systems"
DRAM_DIR = PRESET_DIR / "dram"

Overrides = Mapping[str, Any] | Iterable[str] | None
SpecT = TypeVar("SpecT", bound=Spec)


def normalize_name(name: str) -> str:
    """Preset names are case-insensitive and treat '-' like '_': ``DDR4-3200`` = ``ddr4_3200``."""
    return name.strip().lower().replace("-", "_")


def preset_files(directory: Path) -> dict[str, Path]:
    """Normalised preset name -> YAML file, for the presets in ``directory``."""
    return {normalize_name(p.stem): p for p in sorted(directory.glob("*.yaml"))}


def system_names() -> list[str]:
    """Names of the shipped system presets."""
    return sorted(preset_files(SYSTEM_DIR))


@cache
def dram_device_names() -> frozenset[str]:
    """Names of the shipped DRAM device presets (normalised)."""
    return frozenset(preset_files(DRAM_DIR))


def _parse_overrides(overrides: Overrides) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(k), v) for k, v in overrides.items()]
    out: list[tuple[str, Any]] = []
    for item in overrides:
        if "=" not in item:
            raise SpecError([Problem("overrides", f"expected key=value, found {item!r}")])
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def apply_overrides(data: Any, overrides: Overrides) -> tuple[Any, list[Problem]]:
    """A deep copy of ``data`` with each dotted override set; problems for unknown paths.

    The last part of a path may be a new key (pydantic then judges it); every
    part before it must exist.
    """
    out = copy.deepcopy(data)
    problems: list[Problem] = []
    for key, value in _parse_overrides(overrides):
        parts = key.split(".")
        node = out
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                problems.append(
                    Problem(f"overrides.{key}", f"no key {'.'.join(parts[: i + 1])!r} to override")
                )
                ok = False
                break
        if not ok:
            continue
        last = parts[-1]
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        else:
            problems.append(Problem(f"overrides.{key}", "cannot set a value here"))
    return out, problems


def resolve_preset(
    path_or_name: str | Path, directory: Path, *, what: str, error_path: str = ""
) -> Path:
    """The YAML file of a preset name in ``directory``, or ``path_or_name`` itself if it
    is a file path; :class:`SpecError` (at ``error_path``) naming the known presets."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    files = preset_files(directory)
    key = normalize_name(str(path_or_name))
    if key not in files:
        known = ", ".join(files)
        raise SpecError(
            [Problem(error_path, f"unknown {what} {str(path_or_name)!r} (known: {known})")]
        )
    return files[key]


def load_document(cls: type[SpecT], path: Path, *, overrides: Overrides = None) -> SpecT:
    """Read ``path`` as a ``cls`` document with dotted ``overrides``; one :class:`SpecError`
    with every problem (YAML syntax, duplicate keys, bad overrides, validation)."""
    data, problems = read_yaml(path)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise SpecError(
            [*problems, Problem("", f"expected a mapping, found {found}")], source=str(path)
        )
    data, bad = apply_overrides(data, overrides)
    problems += bad
    try:
        spec = cls.model_validate(data)
    except ValidationError as err:
        raise SpecError(problems + problems_from_pydantic(err), source=str(path)) from None
    if problems:
        raise SpecError(problems, source=str(path))
    return spec


def _validate_system(data: Any, dup_problems: list[Problem], source: str) -> System:
    problems = list(dup_problems)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise SpecError(
            [*problems, Problem("", f"expected a mapping, found {found}")], source=source
        )
    raw_links = link_problems(data.get("tiers"), data.get("links"))
    problems += raw_links
    try:
        system = System.model_validate(data)
    except ValidationError as err:
        rendered = "; ".join(str(p) for p in raw_links)
        problems += [
            p
            for p in problems_from_pydantic(err)
            if not (p.path == "" and raw_links and p.message == rendered)
        ]
        raise SpecError(problems, source=source) from None
    if problems:
        raise SpecError(problems, source=source)
    return system


def load_system(path_or_name: str | Path | System, *, overrides: Overrides = None) -> System:
    """A :class:`System` from a preset name or a YAML file, with dotted ``overrides``.

    Raises :class:`SpecError` listing every problem with its YAML path.
    """
    if isinstance(path_or_name, System):
        if not overrides:
            return path_or_name
        data: Any = path_or_name.model_dump(mode="json", exclude_none=True)
        dups: list[Problem] = []
        source = path_or_name.name
    else:
        path = resolve_preset(path_or_name, SYSTEM_DIR, what="system preset")
        data, dups = read_yaml(path)
        source = str(path_or_name)
    data, bad = apply_overrides(data, overrides)
    return _validate_system(data, dups + bad, source)


def load_system_dict(data: Any, *, source: str = "<dict>", overrides: Overrides = None) -> System:
    """A :class:`System` from an already parsed mapping (same checks as :func:`load_system`)."""
    data, bad = apply_overrides(data, overrides)
    return _validate_system(data, bad, source)


@cache
def _load_dram_cached(path: Path) -> DRAMDevice:
    return load_document(DRAMDevice, path)


def load_dram_device(path_or_name: str | Path) -> DRAMDevice:
    """A :class:`DRAMDevice` from a preset name (``DDR4_3200``) or a YAML file."""
    path = resolve_preset(path_or_name, DRAM_DIR, what="DRAM device preset")
    return _load_dram_cached(path.resolve())
