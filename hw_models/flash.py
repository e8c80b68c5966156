"""NAND flash geometry and timing (an SSD or a raw flash array)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from hw_models.base import Spec
from hw_models.units import Bytes, BytesPerS, PositiveSeconds


class FlashGeometry(Spec):
    """Channels x dies x planes of NAND pages, with array and bus timing.

    Peak read bandwidth is the smaller of what the channels can carry and what
    the planes can sense: ``min(channels * channel_rate, planes_total * page / tR)``.
    """

    channels: PositiveInt
    dies_per_channel: PositiveInt
    planes_per_die: PositiveInt = 1
    page_bytes: Bytes = Field(description="NAND page size, e.g. 16 KiB")
    pages_per_block: PositiveInt = 256
    blocks_per_plane: PositiveInt = 1024
    tR_s: PositiveSeconds = Field(description="array read (page sense) time")
    tPROG_s: PositiveSeconds = Field(description="page program time")
    tERASE_s: PositiveSeconds = Field(description="block erase time")
    channel_rate_bytes_per_s: BytesPerS = Field(description="bus rate of one channel")
    queue_depth: PositiveInt = Field(default=32, description="outstanding requests the host keeps")
    overprovisioning: float = Field(default=0.07, ge=0, lt=1)
    rated_tbw_bytes: Bytes | None = Field(default=None, description="rated endurance (TBW)")

    @property
    def planes(self) -> int:
        """All planes in the device."""
        return self.channels * self.dies_per_channel * self.planes_per_die

    @property
    def raw_capacity_bytes(self) -> float:
        """Pages x page size over every block of every plane."""
        return self.planes * self.blocks_per_plane * self.pages_per_block * self.page_bytes

    @property
    def peak_read_bandwidth_bytes_per_s(self) -> float:
        """Upper bound of sequential read bandwidth."""
        sense = self.planes * self.page_bytes / self.tR_s
        bus = self.channels * self.channel_rate_bytes_per_s
        return min(sense, bus)

    @property
    def peak_write_bandwidth_bytes_per_s(self) -> float:
        """Upper bound of sequential write bandwidth."""
        prog = self.planes * self.page_bytes / self.tPROG_s
        bus = self.channels * self.channel_rate_bytes_per_s
        return min(prog, bus)
