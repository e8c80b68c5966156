"""``memsim presets``: list shipped system, DRAM-device, flash-device and model presets."""

from __future__ import annotations

import argparse
from typing import Any

from hw_models import (
    dram_device_names,
    flash_device_names,
    load_dram_device,
    load_flash_device,
    load_system,
    system_names,
)
from memsim.cli._output import add_format_option, print_json, print_table
from workloads import model_names

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"presets": "list shipped system, DRAM device and model presets"}


def run(args: argparse.Namespace) -> int:
    """List presets."""
    systems = {n: load_system(n).description for n in system_names()}
    drams = {}
    for n in sorted(dram_device_names()):
        dev = load_dram_device(n)
        peak_gbps = dev.peak_bandwidth_bytes_per_s / 1e9
        drams[n] = f"{dev.standard} {dev.data_rate_mtps:g} MT/s, {peak_gbps:.1f} GB/s"
    flashes = {}
    for n in flash_device_names():
        geo = load_flash_device(n).geometry
        flashes[n] = f"{geo.peak_read_bandwidth_bytes_per_s / 1e9:.1f} GB/s peak read"
    models = model_names()
    if args.format == "json":
        out: dict[str, Any] = {
            "systems": systems,
            "dram_devices": drams,
            "flash_devices": flashes,
            "models": models,
        }
        print_json(out)
        return 0
    print("Systems")
    print_table(sorted(systems.items()), ["name", "description"])
    print("\nDRAM devices")
    print_table(sorted(drams.items()), ["name", "standard, peak"])
    print("\nFlash devices")
    print_table(sorted(flashes.items()), ["name", "peak"])
    if models:
        print("\nModels")
        print_table([[m] for m in models], ["name"])
    return 0


def add_parser(sub: Any) -> None:
    """Register ``presets``."""
    p = sub.add_parser("presets", help=COMMANDS["presets"])
    add_format_option(p)
    p.set_defaults(func=run)
