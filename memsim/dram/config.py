"""`ControllerConfig`: every knob of the DRAM controller, validated, selectable by name.

>>> cfg = ControllerConfig(scheduler="frfcfs", row_policy="closed", mapping="RoCoBaRaCh")
>>> cfg.with_overrides(["read_queue_size=64"]).read_queue_size
64
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PositiveInt, field_validator, model_validator

from hw_models.base import Spec
from hw_models.dram import DRAMDevice
from hw_models.errors import Problem, SpecError
from memsim.registry import Registry


class ControllerConfig(Spec):
    """Controller parameters; policy fields are names from the registries in
    :mod:`memsim.dram.policies` and :mod:`memsim.dram.mapping`."""

    scheduler: str = "frfcfs"
    row_policy: str = "open"
    mapping: str = "RoBaRaCoCh"
    bank_xor: bool = Field(default=False, description="XOR bank bits with low row bits")
    refresh: str = "all_bank"
    refresh_max_postponed: int = Field(default=0, ge=0, le=8)
    refresh_max_pulled_in: int = Field(default=0, ge=0, le=8)
    arbiter: str = "round_robin"
    buffer_organization: Literal["read_write", "shared", "bank_wise"] = Field(
        default="read_write",
        description="scheduler buffer: separate read and write queues, one queue shared "
        "by reads and writes, or one queue per bank (request_buffer_size split evenly "
        "over the channel's banks)",
    )
    request_buffer_size: PositiveInt = Field(
        default=64,
        description="entries of the scheduler buffer per channel (read_write: half for "
        "reads, half for writes unless read_queue_size / write_queue_size are given)",
    )
    read_queue_size: PositiveInt | None = Field(
        default=None, description="read_write only; None: request_buffer_size // 2"
    )
    write_queue_size: PositiveInt | None = Field(
        default=None, description="read_write only; None: request_buffer_size // 2"
    )
    response_queue: Literal["fifo", "reorder"] = Field(
        default="reorder",
        description="reorder: read data returns as soon as it is read; fifo: in the "
        "order the reads entered the controller (a read waits for older ones)",
    )
    write_high_watermark: float = Field(default=0.75, gt=0, le=1)
    write_low_watermark: float = Field(default=0.25, ge=0, lt=1)
    max_active_transactions: PositiveInt = 128
    row_hit_cap: PositiveInt = 4
    row_timeout_cycles: int = Field(default=64, ge=0)
    powerdown_idle_cycles: int = Field(default=0, ge=0, description="0: never power down")

    @field_validator("scheduler", "row_policy", "refresh", "arbiter", "mapping")
    @classmethod
    def _known(cls, v: str, info: Any) -> str:
        from memsim.dram.mapping import MAPPINGS
        from memsim.dram.policies import ARBITERS, REFRESH_MODES, ROW_POLICIES, SCHEDULERS

        registries: dict[str, Registry[Any]] = {
            "scheduler": SCHEDULERS,
            "row_policy": ROW_POLICIES,
            "refresh": REFRESH_MODES,
            "arbiter": ARBITERS,
            "mapping": MAPPINGS,
        }
        reg = registries[info.field_name]
        if v not in reg:
            from memsim.dram.mapping import MAPPING_NAMES

            known = MAPPING_NAMES if reg is MAPPINGS else reg.names()
            raise ValueError(f"unknown {reg.kind} {v!r} (known: {', '.join(known)})")
        return v

    @model_validator(mode="after")
    def _watermarks(self) -> ControllerConfig:
        if self.write_low_watermark >= self.write_high_watermark:
            raise ValueError(
                f"write_low_watermark = {self.write_low_watermark} must be below "
                f"write_high_watermark = {self.write_high_watermark}"
            )
        return self

    @property
    def read_capacity(self) -> int:
        """Entries reads may occupy: the read queue, or the whole shared/bank-wise buffer."""
        if self.buffer_organization == "read_write":
            return self.read_queue_size or max(1, self.request_buffer_size // 2)
        return self.request_buffer_size

    @property
    def write_capacity(self) -> int:
        """Entries writes may occupy: the write queue, or the whole shared/bank-wise buffer."""
        if self.buffer_organization == "read_write":
            return self.write_queue_size or max(1, self.request_buffer_size // 2)
        return self.request_buffer_size

    @property
    def write_high(self) -> int:
        """Queued writes that start a write drain."""
        return max(1, round(self.write_high_watermark * self.write_capacity))

    @property
    def write_low(self) -> int:
        """Queued writes at which a drain stops when reads wait."""
        return min(self.write_high - 1, round(self.write_low_watermark * self.write_capacity))

    def problems_with(self, device: DRAMDevice) -> list[Problem]:
        """What makes this configuration infeasible on ``device`` (empty: none), without
        simulating: an explorer masks such choices. :func:`simulate_requests` raises
        these as a :class:`SpecError`."""
        problems: list[Problem] = []
        if self.refresh == "per_bank" and device.timing.nRFCpb is None:
            problems.append(
                Problem(
                    "refresh",
                    f"per_bank refresh needs timing.nRFCpb, which {device.name} does not "
                    "define (use all_bank)",
                )
            )
        banks = device.organization.ranks * device.organization.banks
        if self.buffer_organization == "bank_wise" and self.request_buffer_size < banks:
            problems.append(
                Problem(
                    "request_buffer_size",
                    f"a bank-wise buffer needs at least one entry per bank: {device.name} has "
                    f"{banks} banks per channel, found {self.request_buffer_size}",
                )
            )
        return problems

    @classmethod
    def from_file(cls, path: str | Path) -> ControllerConfig:
        """Read a controller configuration from a YAML or JSON file: a mapping of
        fields, or one ``controller:`` key holding it. :class:`SpecError` naming the
        file and the bad field."""
        from hw_models.yamlio import read_yaml

        data, problems = read_yaml(path)
        if problems:
            raise SpecError(problems, source=str(path))
        if isinstance(data, dict) and set(data) == {"controller"}:
            data = data["controller"]
        if not isinstance(data, dict):
            found = "an empty file" if data is None else type(data).__name__
            raise SpecError(
                [Problem("controller", f"expected a mapping of settings, found {found}")],
                source=str(path),
            )
        return cls.parse(data, prefix="controller", source=str(path))

    def with_overrides(self, items: Iterable[str]) -> ControllerConfig:
        """A copy with ``key=value`` strings applied (values read as YAML).

        Raises :class:`SpecError` naming the bad key or value.
        """
        data = self.model_dump()
        problems: list[Problem] = []
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep:
                problems.append(Problem("set", f"expected key=value, found {item!r}"))
                continue
            if key not in data:
                problems.append(
                    Problem(f"set.{key}", f"unknown controller key (known: {', '.join(data)})")
                )
                continue
            try:
                data[key] = yaml.safe_load(raw)
            except yaml.YAMLError:
                data[key] = raw
        if problems:
            raise SpecError(problems)
        return ControllerConfig.parse(data, prefix="controller")


def search_space() -> dict[str, tuple[Any, ...]]:
    """The controller knobs an explorer tunes, each with the values worth trying
    (names from the registries; sizes on powers of two). Some combinations are
    infeasible on some devices: see :meth:`ControllerConfig.problems_with`."""
    from memsim.dram.mapping import MAPPING_NAMES
    from memsim.dram.policies import ARBITERS, ROW_POLICIES, SCHEDULERS

    return {
        "row_policy": tuple(ROW_POLICIES.names()),
        "scheduler": tuple(SCHEDULERS.names()),
        "buffer_organization": ("read_write", "shared", "bank_wise"),
        "request_buffer_size": (8, 16, 32, 64, 128, 256),
        "response_queue": ("reorder", "fifo"),
        "refresh": ("all_bank", "per_bank"),
        "refresh_max_postponed": tuple(range(9)),
        "refresh_max_pulled_in": tuple(range(9)),
        "arbiter": tuple(ARBITERS.names()),
        "max_active_transactions": (1, 2, 4, 8, 16, 32, 64, 128, 256),
        "mapping": tuple(MAPPING_NAMES),
    }
