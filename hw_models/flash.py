"""NAND flash geometry and timing (an SSD or a raw flash array), and flash device presets.

A :class:`FlashGeometry` is the part a simulator needs: channels x dies x planes
of pages, array timing (tR, tPROG, tERASE), channel rate, the controller's
per-command costs and the host link. A :class:`FlashDevice` is a named preset: a
geometry plus the datasheet figures it is checked against and its sources
(load one with :func:`hw_models.flash_presets.load_flash_device`).
"""

from __future__ import annotations

import math

from pydantic import Field, PositiveInt, model_validator

from hw_models.base import Source, Spec
from hw_models.units import Bytes, BytesPerS, PositiveSeconds, Seconds


class FlashGeometry(Spec):
    """Channels x dies x planes of NAND pages, with array and bus timing.

    Peak read bandwidth is the smaller of what the channels can carry, what the
    planes can sense and (if given) what the host link carries:
    ``min(channels * channel_rate, sensing_units * page / tR, host_interface)``,
    where the sensing units are all planes with ``multi_plane_read`` (planes of a
    die sense in parallel) and all dies without it.

    ``overprovisioning`` is the spare fraction of the raw capacity: the host sees
    ``raw * (1 - overprovisioning)``.
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
    multi_plane_read: bool = Field(
        default=True, description="planes of one die sense in parallel (else the die serialises)"
    )
    command_overhead_s: Seconds = Field(
        default=0.0,
        description="fixed latency added to every request (host stack, driver, firmware); "
        "pipelined, so it adds latency but occupies no shared resource",
    )
    controller_command_time_s: Seconds = Field(
        default=0.0,
        description="controller occupancy per command (serial): caps IOPS at 1 / this",
    )
    host_interface_bytes_per_s: BytesPerS | None = Field(
        default=None, description="host link payload rate (PCIe/NVMe); None = not a limit"
    )

    @model_validator(mode="after")
    def _addressable(self) -> FlashGeometry:
        """Refuse geometries whose byte offsets do not fit in 64 bits (the models index
        pages and offsets with int64)."""
        if self.raw_capacity_bytes >= 2**63:
            raise ValueError(
                f"raw capacity {self.raw_capacity_bytes:.3g} B (channels x dies x planes x "
                "blocks x pages x page size) does not fit in 64-bit byte offsets"
            )
        return self

    @property
    def dies(self) -> int:
        """All dies in the device."""
        return self.channels * self.dies_per_channel

    @property
    def planes(self) -> int:
        """All planes in the device."""
        return self.channels * self.dies_per_channel * self.planes_per_die

    @property
    def sensing_units(self) -> int:
        """Units that sense pages independently: planes with multi-plane reads, else dies."""
        return self.planes if self.multi_plane_read else self.dies

    @property
    def blocks(self) -> int:
        """Erase blocks in the device."""
        return self.planes * self.blocks_per_plane

    @property
    def raw_capacity_bytes(self) -> float:
        """Pages x page size over every block of every plane."""
        return self.planes * self.blocks_per_plane * self.pages_per_block * self.page_bytes

    @property
    def user_capacity_bytes(self) -> float:
        """What the host can address: raw capacity less the overprovisioned spare."""
        return self.raw_capacity_bytes * (1.0 - self.overprovisioning)

    @property
    def nand_peak_read_bandwidth_bytes_per_s(self) -> float:
        """``min(channels * channel_rate, sensing_units * page / tR)`` (the NAND side)."""
        sense = self.sensing_units * self.page_bytes / self.tR_s
        bus = self.channels * self.channel_rate_bytes_per_s
        return min(sense, bus)

    @property
    def peak_read_bandwidth_bytes_per_s(self) -> float:
        """Upper bound of sequential read bandwidth (NAND side, then the host link)."""
        peak = self.nand_peak_read_bandwidth_bytes_per_s
        if self.host_interface_bytes_per_s is not None:
            peak = min(peak, self.host_interface_bytes_per_s)
        return peak

    @property
    def peak_write_bandwidth_bytes_per_s(self) -> float:
        """Upper bound of sequential write bandwidth (no garbage collection)."""
        prog = self.planes * self.page_bytes / self.tPROG_s
        bus = self.channels * self.channel_rate_bytes_per_s
        peak = min(prog, bus)
        if self.host_interface_bytes_per_s is not None:
            peak = min(peak, self.host_interface_bytes_per_s)
        return peak

    def read_bandwidth_bytes_per_s(self, request_bytes: float, queue_depth: int) -> float:
        """Achievable read bandwidth with ``queue_depth`` reads of ``request_bytes`` outstanding.

        The asymptotic bounds of a closed queueing network (Lazowska, Zahorjan,
        Graham and Sevcik, *Quantitative System Performance*, 1984, ch. 5): with
        ``N`` requests in circulation, throughput is at most ``N / R0`` (each
        request takes at least its unloaded latency ``R0``) and at most
        ``1 / D_max`` (the busiest resource's time per request)::

            X = S x min(N / R0, 1 / D_max)

        for the resources and order of :func:`memsim.flash.simulate_flash_reads`
        (its event simulation of the same device is the reference): a request of
        ``S`` bytes covers ``p = ceil(S / page)`` pages striped over the channels,
        moving ``b = min(S, page)`` bytes per page;

        * ``D_max = max(controller_command_time, p tR / sensing_units,
          S / (channels x channel_rate), S / host_rate)``;
        * ``R0 = controller_command_time + command_overhead + tR + body + b / host_rate``
          with ``body = max(ceil(p / channels) b / channel_rate,
          (ceil(p / sensing_units) - 1) tR + b / channel_rate,
          (p - 1) b / host_rate + b / channel_rate)`` (sensing, channel and host
          transfers of the pages pipelined).

        A bound: never below what the event simulation measures; equal to it (within
        1 %) at queue depth 1 and well past the knee, and at most about 30 % above it
        near the knee, where random requests collide on dies and channels
        (``tests/memsim/test_flash_bandwidth.py`` checks both presets).

        >>> from hw_models.flash_presets import load_flash_device
        >>> g = load_flash_device("apple_m1_max_1tb").geometry
        >>> round(g.read_bandwidth_bytes_per_s(4096, 1) / 1e6, 1)  # 4096 B / 78.12 us
        52.4
        >>> g.read_bandwidth_bytes_per_s(1 << 20, 32) == g.peak_read_bandwidth_bytes_per_s
        True
        """
        size = float(request_bytes)
        if size <= 0 or queue_depth < 1:
            raise ValueError("request_bytes and queue_depth must be positive")
        page = float(self.page_bytes)
        pages = math.ceil(size / page - 1e-9)
        per_page = min(size, page)
        rate = self.channel_rate_bytes_per_s
        host = self.host_interface_bytes_per_s
        page_x = per_page / rate
        page_h = per_page / host if host else 0.0
        demand = max(
            self.controller_command_time_s,
            pages * self.tR_s / self.sensing_units,
            size / (self.channels * rate),
            size / host if host else 0.0,
        )
        body = max(
            math.ceil(pages / self.channels) * page_x,
            (math.ceil(pages / self.sensing_units) - 1) * self.tR_s + page_x,
            (pages - 1) * page_h + page_x,
        )
        r0 = self.controller_command_time_s + self.command_overhead_s + self.tR_s + body + page_h
        return min(size * queue_depth / r0, size / demand)

    @property
    def peak_read_iops(self) -> float:
        """Upper bound of single-page random read IOPS: sensing and the controller."""
        iops = self.sensing_units / self.tR_s
        if self.controller_command_time_s > 0:
            iops = min(iops, 1.0 / self.controller_command_time_s)
        return iops


class FlashDatasheet(Spec):
    """Figures a vendor (or a paper) publishes for a device, used to check the model."""

    sequential_read_bytes_per_s: BytesPerS | None = None
    sequential_write_bytes_per_s: BytesPerS | None = None
    random_read_iops: float | None = Field(default=None, gt=0, description="4 KiB, high QD")
    random_write_iops: float | None = Field(default=None, gt=0, description="4 KiB, high QD")
    user_capacity_bytes: Bytes | None = None


class FlashDevice(Spec):
    """A named flash device preset: geometry, datasheet figures, sources."""

    name: str = Field(min_length=1)
    description: str = ""
    geometry: FlashGeometry
    datasheet: FlashDatasheet = FlashDatasheet()
    sources: list[Source] = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FlashDevice:
        ds, geo = self.datasheet, self.geometry
        problems: list[str] = []
        seq = ds.sequential_read_bytes_per_s
        if seq is not None and seq > 1.05 * geo.peak_read_bandwidth_bytes_per_s:
            problems.append(
                f"datasheet.sequential_read_bytes_per_s = {seq:.4g} exceeds the geometry's "
                f"peak read bandwidth {geo.peak_read_bandwidth_bytes_per_s:.4g} B/s"
            )
        cap = ds.user_capacity_bytes
        if cap is not None and cap > geo.user_capacity_bytes * 1.0001:
            problems.append(
                f"datasheet.user_capacity_bytes = {cap:.4g} exceeds the geometry's user "
                f"capacity {geo.user_capacity_bytes:.4g} B (raw x (1 - overprovisioning))"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self
