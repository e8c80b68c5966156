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

from pathlib import Path

from hw_models.ceilings import DEFAULT_CEILINGS, Ceilings
from hw_models.flash import FlashDevice
from hw_models.loader import (
    Overrides,
    load_document,
    load_document_memo,
    preset_files,
    resolve_preset,
)

FLASH_DIR = Path(__file__).parent / "presets" / "flash"


def flash_device_names() -> list[str]:
    """Names of the shipped flash device presets (normalised, sorted)."""
    return sorted(preset_files(FLASH_DIR))


def load_flash_device(
    path_or_name: str | Path,
    *,
    overrides: Overrides = None,
    ceilings: Ceilings = DEFAULT_CEILINGS,
) -> FlashDevice:
    """A :class:`FlashDevice` from a preset name or a YAML file, with dotted ``overrides``.

    ``overrides`` are ``{"geometry.queue_depth": 64}`` or ``["geometry.tR_s=60 us"]``.
    Raises :class:`SpecError` for an unknown name or any problem in the document,
    including values above their plausibility ``ceilings`` (:mod:`hw_models.ceilings`).
    """
    path = resolve_preset(path_or_name, FLASH_DIR, what="flash device", error_path="device")
    if overrides:
        return load_document(FlashDevice, path, overrides=overrides, ceilings=ceilings)
    return load_document_memo(FlashDevice, path, ceilings=ceilings)
