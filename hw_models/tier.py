"""Memory tiers: SRAM, HBM, DDR, LPDDR, GDDR, CXL-attached memory, flash."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from hw_models.base import Spec
from hw_models.flash import FlashGeometry
from hw_models.units import Bytes, BytesPerS, Fraction, JoulesPerByte, Seconds

TierKind = Literal["sram", "hbm", "ddr", "lpddr", "gddr", "cxl", "flash"]
Scope = Literal["device", "host"]
DRAM_KINDS: frozenset[str] = frozenset({"hbm", "ddr", "lpddr", "gddr", "cxl"})
# Read request size of a flash tier when the spec gives none: the `aio.block_size` of
# the ZeRO-3 NVMe-offload example in the Hugging Face Transformers DeepSpeed
# integration docs (262144 B, with queue_depth 32): an assumption, not a measurement.
DEFAULT_FLASH_REQUEST_BYTES = 256 * 1024


class DRAMAttachment(Spec):
    """The DRAM devices a tier is built from: ``count`` x a DRAM preset.

    ``data_rate_mtps`` overrides the preset's data rate where a product runs the
    memory below the JEDEC maximum (H100's HBM3 at about 5.2 Gb/s per pin).
    """

    device: str = Field(min_length=1, description="name of a DRAM device preset")
    count: PositiveInt = Field(description="devices (stacks, DIMMs, packages) in this tier")
    data_rate_mtps: float | None = Field(default=None, gt=0)

    @field_validator("device")
    @classmethod
    def _known(cls, v: str) -> str:
        from hw_models.loader import dram_device_names, normalize_name

        if normalize_name(v) not in dram_device_names():
            raise ValueError(
                f"unknown DRAM device {v!r} (known: {', '.join(sorted(dram_device_names()))})"
            )
        return v

    @property
    def peak_bandwidth_bytes_per_s(self) -> float:
        """count x the device's peak, at ``data_rate_mtps`` if given."""
        from hw_models.loader import load_dram_device

        dev = load_dram_device(self.device)
        scale = (self.data_rate_mtps / dev.data_rate_mtps) if self.data_rate_mtps else 1.0
        return self.count * dev.peak_bandwidth_bytes_per_s * scale

    @property
    def capacity_bytes(self) -> float:
        """count x the device's capacity."""
        from hw_models.loader import load_dram_device

        return self.count * load_dram_device(self.device).capacity_bytes


class MemoryTier(Spec):
    """One level of the memory hierarchy.

    ``scope: device`` tiers exist once per device (HBM, on-chip SRAM);
    ``scope: host`` tiers exist once per system (host DDR, an SSD, a CXL pool).
    Bandwidths are peak figures from the datasheet; ``achievable_bandwidth_fraction``
    scales them to what real kernels sustain.

    A flash tier with a geometry (``flash`` inline or ``flash_device``) is read in
    requests of ``read_request_bytes`` with ``read_queue_depth`` outstanding, as an
    offloading runtime's asynchronous I/O does; its achievable read bandwidth is the
    smaller of the scaled datasheet figure and what the geometry delivers for that
    request size and queue depth (:meth:`FlashGeometry.read_bandwidth_bytes_per_s`).
    Writes use the tier's write bandwidth.
    """

    kind: TierKind
    scope: Scope = "device"
    capacity_bytes: Bytes
    read_bandwidth_bytes_per_s: BytesPerS
    write_bandwidth_bytes_per_s: BytesPerS | None = Field(
        default=None, description="defaults to the read bandwidth"
    )
    latency_s: Seconds = 0.0
    read_energy_j_per_byte: JoulesPerByte = 0.0
    write_energy_j_per_byte: JoulesPerByte | None = None
    access_granularity_bytes: PositiveInt = 64
    achievable_bandwidth_fraction: Fraction = 1.0
    background_power_w: float = Field(default=0.0, ge=0)
    dram: DRAMAttachment | None = None
    flash: FlashGeometry | None = Field(default=None, description="inline flash geometry")
    flash_device: str | None = Field(
        default=None, description="name of a flash device preset (instead of `flash`)"
    )
    read_request_bytes: Bytes | None = Field(
        default=None,
        description="flash tiers with a geometry: bytes per read request (default "
        f"{DEFAULT_FLASH_REQUEST_BYTES // 1024} KiB)",
    )
    read_queue_depth: PositiveInt | None = Field(
        default=None,
        description="flash tiers with a geometry: reads kept outstanding (default: the "
        "geometry's queue_depth)",
    )
    fidelity: Literal["bandwidth", "request"] = Field(
        default="bandwidth", description="`request`: timing from the DRAM controller model"
    )
    dram_controller: dict[str, Any] | None = Field(
        default=None,
        description="DRAM controller settings for `fidelity: request` (scheduler, row_policy, "
        "mapping, ...); checked by the simulator, overridden by simulate(dram_config=...)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MemoryTier:
        problems: list[str] = []
        if self.dram is not None and self.kind not in DRAM_KINDS:
            problems.append(f"dram: a {self.kind} tier cannot be built from DRAM devices")
        if (self.flash is not None or self.flash_device is not None) and self.kind != "flash":
            problems.append(f"flash: a {self.kind} tier cannot have a flash geometry")
        if self.flash is not None and self.flash_device is not None:
            problems.append("flash_device: give either `flash` or `flash_device`, not both")
        if self.dram_controller is not None and self.fidelity != "request":
            problems.append("dram_controller: only used with `fidelity: request`")
        if self.fidelity == "request" and self.dram is None:
            problems.append("fidelity: `request` needs a `dram` attachment to simulate")
        if self.dram is not None:
            derived = self.dram.peak_bandwidth_bytes_per_s
            given = self.read_bandwidth_bytes_per_s
            if abs(derived - given) > 0.05 * given:
                problems.append(
                    f"read_bandwidth_bytes_per_s = {given:.4g} disagrees by more than 5 % with "
                    f"{self.dram.count} x {self.dram.device} = {derived:.4g} B/s"
                )
        geometry = self.flash_geometry
        if geometry is None and (
            self.read_request_bytes is not None or self.read_queue_depth is not None
        ):
            problems.append(
                "read_request_bytes/read_queue_depth: only used by a flash tier with a "
                "`flash` or `flash_device` geometry"
            )
        if geometry is not None:
            peak = geometry.peak_read_bandwidth_bytes_per_s
            if self.read_bandwidth_bytes_per_s > 1.05 * peak:
                problems.append(
                    f"read_bandwidth_bytes_per_s = {self.read_bandwidth_bytes_per_s:.4g} exceeds "
                    f"the flash geometry's peak {peak:.4g} B/s"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("flash_device")
    @classmethod
    def _known_flash(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from hw_models.flash_presets import flash_device_names
        from hw_models.loader import normalize_name

        if normalize_name(v) not in flash_device_names():
            known = ", ".join(flash_device_names())
            raise ValueError(f"unknown flash device {v!r} (known: {known})")
        return v

    @property
    def flash_geometry(self) -> FlashGeometry | None:
        """The flash geometry, inline or from the named flash device preset."""
        if self.flash_device is not None:
            from hw_models.flash_presets import load_flash_device

            return load_flash_device(self.flash_device).geometry
        return self.flash

    @property
    def write_bandwidth(self) -> float:
        """Write bandwidth in B/s (read bandwidth if not given)."""
        return float(self.write_bandwidth_bytes_per_s or self.read_bandwidth_bytes_per_s)

    @property
    def write_energy(self) -> float:
        """Write energy in J/B (read energy if not given)."""
        if self.write_energy_j_per_byte is None:
            return self.read_energy_j_per_byte
        return self.write_energy_j_per_byte

    @property
    def flash_read_request_bytes(self) -> float:
        """Bytes per read request of a flash tier (``read_request_bytes`` or the default)."""
        return float(self.read_request_bytes or DEFAULT_FLASH_REQUEST_BYTES)

    @property
    def flash_read_queue_depth(self) -> int:
        """Reads a flash tier keeps outstanding (``read_queue_depth`` or the geometry's)."""
        if self.read_queue_depth is not None:
            return self.read_queue_depth
        geometry = self.flash_geometry
        return geometry.queue_depth if geometry is not None else 1

    @cached_property
    def effective_read_bandwidth_bytes_per_s(self) -> float:
        """Read bandwidth after the achievable fraction; for a flash tier with a geometry,
        at most what the geometry delivers at the tier's request size and queue depth."""
        return self.read_bandwidth_at(self.flash_read_request_bytes)

    def read_bandwidth_at(self, request_bytes: float) -> float:
        """Achievable read bandwidth when reads are ``request_bytes`` each.

        For a flash tier with a geometry: the smaller of the scaled datasheet figure and
        :meth:`FlashGeometry.read_bandwidth_bytes_per_s` at ``request_bytes`` and the
        tier's queue depth (small scattered reads are slower than large ones). Other
        tiers: the scaled datasheet figure, whatever the request size.
        """
        bandwidth = self.read_bandwidth_bytes_per_s * self.achievable_bandwidth_fraction
        geometry = self.flash_geometry
        if geometry is not None:
            bandwidth = min(
                bandwidth,
                geometry.read_bandwidth_bytes_per_s(request_bytes, self.flash_read_queue_depth),
            )
        return bandwidth

    @property
    def effective_write_bandwidth_bytes_per_s(self) -> float:
        """Write bandwidth after the achievable fraction."""
        return self.write_bandwidth * self.achievable_bandwidth_fraction
