"""Declarative hardware: memory tiers, DRAM and flash devices, caches, compute, links, systems.

Everything here is validated, frozen data; nothing runs. Load a shipped preset or
a YAML file with :func:`load_system`; errors come as one :class:`SpecError`.
"""

from hw_models.base import Source, Spec
from hw_models.cache import CacheSpec
from hw_models.ceilings import CEILINGS, DEFAULT_CEILINGS, Ceilings
from hw_models.compute import DTYPE_BYTES, DTYPES, ComputeUnit, DataflowKernelCost, KernelTerm
from hw_models.dram import DRAMDevice, DRAMOrganization, DRAMPower, DRAMTiming
from hw_models.errors import Problem, SpecError
from hw_models.flash import FlashDevice, FlashGeometry
from hw_models.flash_presets import flash_device_names, load_flash_device
from hw_models.link import Link
from hw_models.loader import (
    dram_device_names,
    load_dram_device,
    load_system,
    load_system_dict,
    system_names,
)
from hw_models.system import System
from hw_models.tier import DRAMAttachment, MemoryTier
from hw_models.units import parse_quantity

__all__ = [
    "CEILINGS",
    "DEFAULT_CEILINGS",
    "DTYPES",
    "DTYPE_BYTES",
    "CacheSpec",
    "Ceilings",
    "ComputeUnit",
    "DRAMAttachment",
    "DRAMDevice",
    "DRAMOrganization",
    "DRAMPower",
    "DRAMTiming",
    "DataflowKernelCost",
    "FlashDevice",
    "FlashGeometry",
    "KernelTerm",
    "Link",
    "MemoryTier",
    "Problem",
    "Source",
    "Spec",
    "SpecError",
    "System",
    "dram_device_names",
    "flash_device_names",
    "load_dram_device",
    "load_flash_device",
    "load_system",
    "load_system_dict",
    "parse_quantity",
    "system_names",
]
