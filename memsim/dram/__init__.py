"""Request-level DRAM: a JEDEC-timed controller, an independent protocol checker, energy.

>>> from hw_models import load_dram_device
>>> from memsim.dram import ControllerConfig, simulate_requests, traffic
>>> dev = load_dram_device("DDR4_3200")
>>> cfg = ControllerConfig(mapping="RoCoBaRaCh")
>>> st = simulate_requests(dev, traffic.stream(dev, 4000), config=cfg)
>>> st.peak_fraction > 0.9
True
"""

from memsim.dram import traffic
from memsim.dram.checker import Violation, check_commands
from memsim.dram.config import ControllerConfig
from memsim.dram.controller import (
    CommandLog,
    RequestTimes,
    simulate_request_times,
    simulate_requests,
    simulate_with_log,
)
from memsim.dram.mapping import MAPPINGS, AddressMapping, get_mapping
from memsim.dram.policies import ARBITERS, REFRESH_MODES, ROW_POLICIES, SCHEDULERS
from memsim.dram.stats import DRAMStats
from memsim.dram.trace import RequestTrace

__all__ = [
    "ARBITERS",
    "MAPPINGS",
    "REFRESH_MODES",
    "ROW_POLICIES",
    "SCHEDULERS",
    "AddressMapping",
    "CommandLog",
    "ControllerConfig",
    "DRAMStats",
    "RequestTimes",
    "RequestTrace",
    "Violation",
    "check_commands",
    "get_mapping",
    "simulate_request_times",
    "simulate_requests",
    "simulate_with_log",
    "traffic",
]
