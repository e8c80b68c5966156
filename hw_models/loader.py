"""Load systems and DRAM devices from YAML files or shipped presets.

>>> from hw_models import load_system
>>> h100 = load_system("h100_sxm")
>>> big = load_system("h100_sxm", overrides={"tiers.hbm.capacity_bytes": "96 GiB"})

Overrides are dotted paths into the YAML document (``tiers.hbm.capacity_bytes``)
with a value, or strings ``"path=value"`` (the value read as YAML). A path that
does not exist is an error, as is any problem of the resulting spec.

A tier built from DRAM devices (``dram: {device, count, data_rate_mtps}``) has its
bandwidth fixed by them, so the two move together under overrides: overriding the
tier's ``read_bandwidth_bytes_per_s`` sets the attachment's ``data_rate_mtps`` to
match, and overriding the attachment (data rate, count, device) scales the tier's
bandwidths by the same factor. Given together, both are taken as written (and must
agree within 5 %, as in a file).

Parsed preset documents are memoised by their text (:mod:`hw_models.yamlio`), so
overriding a preset in a loop costs one validation, well under a millisecond.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from hw_models.base import Spec
from hw_models.ceilings import DEFAULT_CEILINGS, Ceilings
from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError, problems_from_pydantic
from hw_models.system import System, link_problems
from hw_models.units import parse_quantity
from hw_models.yamlio import parse_yaml, parse_yaml_shared, read_text

PRESET_DIR = Path(__file__).parent / "presets"
SYSTEM_DIR = PRESET_DIR / "systems"
DRAM_DIR = PRESET_DIR / "dram"

Overrides = Mapping[str, Any] | Iterable[str] | None
SpecT = TypeVar("SpecT", bound=Spec)


def normalize_name(name: str) -> str:
    """Preset names are case-insensitive and treat '-' like '_': ``DDR4-3200`` = ``ddr4_3200``."""
    return name.strip().lower().replace("-", "_")


def preset_files(directory: Path) -> dict[str, Path]:
    """Normalised preset name -> YAML file, for the presets in ``directory``.

    The shipped preset folders are package data, fixed for the life of a process, so
    their listing is read once.
    """
    return dict(_listing(directory))


@cache
def _listing(directory: Path) -> tuple[tuple[str, Path], ...]:
    return tuple((normalize_name(p.stem), p) for p in sorted(directory.glob("*.yaml")))


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
            value, _ = parse_yaml(raw)
        except SpecError as err:
            # not YAML: the text itself, unless the YAML reader refused it on purpose
            if any(word in str(err) for word in ("aliases", "nested", "digits")):
                raise err.prefixed(f"overrides.{key.strip()}") from None
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


def _attachment_peak(dram: Mapping[str, Any]) -> float:
    dev = load_dram_device(str(dram["device"]))
    rate = dram.get("data_rate_mtps") or dev.data_rate_mtps
    return float(dram["count"]) * dev.peak_bandwidth_bytes_per_s * float(rate) / dev.data_rate_mtps


def _dram_follows(original: Any, data: Any, keys: list[str]) -> None:
    """Keep each DRAM-backed tier's bandwidth and attachment in step (see the module doc).

    Works on the raw documents before validation; anything it cannot read is left
    for validation to report.
    """
    tiers = data.get("tiers") if isinstance(data, dict) else None
    old_tiers = original.get("tiers") if isinstance(original, dict) else None
    if not isinstance(tiers, dict) or not isinstance(old_tiers, dict):
        return
    for name, tier in tiers.items():
        old = old_tiers.get(name)
        if not isinstance(tier, dict) or not isinstance(old, dict):
            continue
        dram, old_dram = tier.get("dram"), old.get("dram")
        if not isinstance(dram, dict) or not isinstance(old_dram, dict):
            continue
        prefix = f"tiers.{name}."
        bw_set = prefix + "read_bandwidth_bytes_per_s" in keys
        dram_set = any(k == prefix + "dram" or k.startswith(prefix + "dram.") for k in keys)
        if bw_set == dram_set:
            continue
        try:
            old_bw = parse_quantity(old["read_bandwidth_bytes_per_s"], "bytes_per_s")
            if bw_set:
                ratio = parse_quantity(tier["read_bandwidth_bytes_per_s"], "bytes_per_s") / old_bw
                dev_rate = load_dram_device(str(dram["device"])).data_rate_mtps
                dram["data_rate_mtps"] = float(dram.get("data_rate_mtps") or dev_rate) * ratio
            else:
                ratio = _attachment_peak(dram) / _attachment_peak(old_dram)
                tier["read_bandwidth_bytes_per_s"] = old_bw * ratio
            write_key = "write_bandwidth_bytes_per_s"
            if tier.get(write_key) is not None and prefix + write_key not in keys:
                # one bus carries both directions: writes scale with the data rate too
                tier[write_key] = parse_quantity(tier[write_key], "bytes_per_s") * ratio
        except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue  # malformed: validation reports it


def resolve_preset(
    path_or_name: str | Path, directory: Path, *, what: str, error_path: str = ""
) -> Path:
    """The YAML file of a preset name in ``directory``, or ``path_or_name`` itself if it
    is a file path; :class:`SpecError` (at ``error_path``) naming the known presets.

    A plain name (no ``.yaml``/``.yml`` suffix, no folder) that names a preset is that
    preset even if a file or folder of that name sits in the working directory: a stray
    ``h100_sxm`` there does not change what ``h100_sxm`` means.
    """
    p = Path(path_or_name)
    files = dict(_listing(directory))
    key = normalize_name(str(path_or_name))
    plain = isinstance(path_or_name, str) and p.suffix not in (".yaml", ".yml")
    if plain and len(p.parts) == 1 and key in files:
        return files[key]
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    if key not in files:
        known = ", ".join(files)
        shown = repr(str(path_or_name)[:80]) + ("..." if len(str(path_or_name)) > 80 else "")
        raise SpecError([Problem(error_path, f"unknown {what} {shown} (known: {known})")])
    return files[key]


_DEVICES: OrderedDict[tuple[Any, ...], Spec] = OrderedDict()
_DEVICES_LOCK = threading.Lock()


def load_document_memo(
    cls: type[SpecT], path: Path, *, ceilings: Ceilings = DEFAULT_CEILINGS
) -> SpecT:
    """:func:`load_document` without overrides, memoised by the file's text.

    The plausibility ``ceilings`` are checked on every call (outside the memo).

    A device spec is frozen, and the same text always validates to the same spec, so
    the memo changes no result; a file rewritten between calls is read again (the key
    is its content, not its name).
    """
    text = read_text(path)
    key = (cls, text, tuple(sorted(ceilings.limits.items())))
    with _DEVICES_LOCK:
        hit = _DEVICES.get(key)
        if hit is not None:
            _DEVICES.move_to_end(key)
    if hit is None:
        hit = _load_text(cls, text, path, None, ceilings)
        with _DEVICES_LOCK:
            _DEVICES[key] = hit
            while len(_DEVICES) > 64:
                _DEVICES.popitem(last=False)
    assert isinstance(hit, cls)
    return hit


def load_document(
    cls: type[SpecT],
    path: Path,
    *,
    overrides: Overrides = None,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> SpecT:
    """Read ``path`` as a ``cls`` document with dotted ``overrides``; one :class:`SpecError`
    with every problem (YAML syntax, duplicate keys, bad overrides, validation, values
    above their plausibility ``ceilings``)."""
    return _load_text(cls, read_text(path), path, overrides, ceilings)


def _load_text(
    cls: type[SpecT],
    text: str,
    path: Path,
    overrides: Overrides,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> SpecT:
    data, problems = parse_yaml_shared(text, source=str(path))
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise SpecError(
            [*problems, Problem("", f"expected a mapping, found {found}")], source=str(path)
        )
    data, bad = apply_overrides(data, overrides)
    problems += bad
    try:
        spec = cls.model_validate(data, context=ceilings.context())
    except ValidationError as err:
        raise SpecError(problems + problems_from_pydantic(err), source=str(path)) from None
    if problems:
        raise SpecError(problems, source=str(path))
    return spec


def _validate_system(
    data: Any, dup_problems: list[Problem], source: str, ceilings: Ceilings
) -> System:
    problems = list(dup_problems)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise SpecError(
            [*problems, Problem("", f"expected a mapping, found {found}")], source=source
        )
    raw_links = link_problems(data.get("tiers"), data.get("links"))
    problems += raw_links
    try:
        system = System.model_validate(data, context=ceilings.context())
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


def load_system(
    path_or_name: str | Path | System,
    *,
    overrides: Overrides = None,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> System:
    """A :class:`System` from a preset name or a YAML file, with dotted ``overrides``.

    Raises :class:`SpecError` listing every problem with its YAML path, including
    values above their plausibility ``ceilings`` (:mod:`hw_models.ceilings`).
    """
    if isinstance(path_or_name, System):
        if not overrides:
            ceilings.enforce(path_or_name, source=path_or_name.name)
            return path_or_name
        original: Any = path_or_name.model_dump(mode="json", exclude_none=True)
        dups: list[Problem] = []
        source = path_or_name.name
    else:
        path = resolve_preset(path_or_name, SYSTEM_DIR, what="system preset")
        original, dups = parse_yaml_shared(read_text(path), source=str(path))
        source = str(path_or_name)
    return _validate_system(*_overridden(original, overrides, dups), source, ceilings)


def _overridden(
    original: Any, overrides: Overrides, problems: list[Problem]
) -> tuple[Any, list[Problem]]:
    """A copy of ``original`` with ``overrides`` applied (DRAM tiers kept in step)."""
    pairs = _parse_overrides(overrides)
    data, bad = apply_overrides(original, dict(pairs))
    if pairs:
        _dram_follows(original, data, [k for k, _ in pairs])
    return data, problems + bad


def load_system_dict(
    data: Any,
    *,
    source: str = "<dict>",
    overrides: Overrides = None,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> System:
    """A :class:`System` from an already parsed mapping (same checks as :func:`load_system`)."""
    return _validate_system(*_overridden(data, overrides, []), source, ceilings)


def load_dram_device(
    path_or_name: str | Path, *, ceilings: Ceilings = DEFAULT_CEILINGS
) -> DRAMDevice:
    """A :class:`DRAMDevice` from a preset name (``DDR4_3200``) or a YAML file (values
    above their plausibility ``ceilings`` refused)."""
    path = resolve_preset(path_or_name, DRAM_DIR, what="DRAM device preset")
    return load_document_memo(DRAMDevice, path, ceilings=ceilings)
