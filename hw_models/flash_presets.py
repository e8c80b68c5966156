"""Flash device presets: ``load_flash_device(name_or_yaml)`` and ``flash_device_names()``.

>>> from hw_models.flash_presets import flash_device_names, load_flash_device
>>> "apple_m1_max_1tb" in flash_device_names()
True
>>> dev = load_flash_device("Apple_M1_Max_1TB")
>>> round(dev.geometry.peak_read_bandwidth_bytes_per_s / 1e9, 1)
6.4

Names are case-insensitive and treat ``-`` like ``_``. A path ending in
``.yaml``/``.yml`` (or an existing file) is read as a :class:`FlashDevice`
document. Every problem is one :class:`SpecError` with its YAML path.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import ValidationError

from hw_models.errors import Problem, SpecError, problems_from_pydantic
from hw_models.flash import FlashDevice
from hw_models.loader import Overrides, apply_overrides, normalize_name
from hw_models.yamlio import read_yaml

FLASH_DIR = Path(__file__).parent / "presets" / "flash"


def _preset_files() -> dict[str, Path]:
    return {normalize_name(p.stem): p for p in sorted(FLASH_DIR.glob("*.yaml"))}


def flash_device_names() -> list[str]:
    """Names of the shipped flash device presets (normalised, sorted)."""
    return sorted(_preset_files())


def _resolve(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    files = _preset_files()
    key = normalize_name(str(path_or_name))
    if key not in files:
        known = ", ".join(files)
        raise SpecError(
            [Problem("device", f"unknown flash device {str(path_or_name)!r} (known: {known})")]
        )
    return files[key]


@cache
def _load_cached(path: Path) -> FlashDevice:
    return _validate(path, None)


def _validate(path: Path, overrides: Overrides) -> FlashDevice:
    data, problems = read_yaml(path)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else type(data).__name__
        raise SpecError(
            [*problems, Problem("", f"expected a mapping, found {found}")], source=str(path)
        )
    data, bad = apply_overrides(data, overrides)
    problems += bad
    try:
        device = FlashDevice.model_validate(data)
    except ValidationError as err:
        raise SpecError(problems + problems_from_pydantic(err), source=str(path)) from None
    if problems:
        raise SpecError(problems, source=str(path))
    return device


def load_flash_device(path_or_name: str | Path, *, overrides: Overrides = None) -> FlashDevice:
    """A :class:`FlashDevice` from a preset name or a YAML file, with dotted ``overrides``.

    ``overrides`` are ``{"geometry.queue_depth": 64}`` or ``["geometry.tR_s=60 us"]``.
    Raises :class:`SpecError` for an unknown name or any problem in the document.
    """
    path = _resolve(path_or_name).resolve()
    if overrides:
        return _validate(path, overrides)
    return _load_cached(path)
