"""Set-associative cache specifications."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from hw_models.base import Spec
from hw_models.units import Bytes, JoulesPerByte, Seconds

ReplacementPolicy = Literal["lru", "fifo", "random", "srrip"]


class CacheSpec(Spec):
    """A set-associative cache: capacity = sets x ways x line.

    ``write_back``/``write_allocate`` choose the write policy (write-back with
    write-allocate by default; write-through and no-write-allocate otherwise).
    ``policy`` names the replacement policy (``memsim.cache.replacement_policies``).
    """

    capacity_bytes: Bytes
    line_bytes: PositiveInt = 64
    ways: PositiveInt = 8
    policy: ReplacementPolicy = "lru"
    write_back: bool = True
    write_allocate: bool = True
    hit_latency_s: Seconds = 0.0
    energy_j_per_byte: JoulesPerByte = 0.0
    level: PositiveInt = Field(default=1, description="1 = closest to compute")
    backing_tier: str | None = Field(default=None, description="tier this cache sits in front of")
    rrpv_bits: int = Field(
        default=2, ge=1, le=7, description="SRRIP RRPV bits (M); insert at 2^M - 2"
    )

    @model_validator(mode="after")
    def _geometry(self) -> CacheSpec:
        block = self.line_bytes * self.ways
        if self.capacity_bytes % block:
            raise ValueError(
                f"capacity_bytes = {self.capacity_bytes:g} is not a multiple of "
                f"line_bytes x ways = {block}"
            )
        return self

    @field_validator("line_bytes")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"line_bytes = {v} must be a power of two")
        return v

    @property
    def sets(self) -> int:
        """Number of sets."""
        return int(self.capacity_bytes) // (self.line_bytes * self.ways)
