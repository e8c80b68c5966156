"""Links between memory tiers or between devices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hw_models.base import Spec
from hw_models.units import BytesPerS, Fraction, JoulesPerByte, Seconds

CollectiveAlgorithm = Literal["ring", "one_shot", "two_shot", "auto"]
LinkKind = Literal["pcie", "nvlink", "on_package", "cxl", "inter_chip", "nvme", "ethernet", "ici"]


class Link(Spec):
    """A link joining two tiers: ``between: [hbm, ddr]``.

    ``bandwidth_bytes_per_s`` is per direction and per device (a PCIe 5 x16 port
    is 64 GB/s each way). A link between a device-scope tier and itself
    (``between: [hbm, hbm]``) joins the devices to one another (NVLink, ICI),
    with ``bandwidth_bytes_per_s`` the bandwidth each device can inject.
    """

    kind: LinkKind
    between: tuple[str, str]
    bandwidth_bytes_per_s: BytesPerS
    latency_s: Seconds = 0.0
    energy_j_per_byte: JoulesPerByte = 0.0
    achievable_bandwidth_fraction: Fraction = 1.0
    duplex: bool = Field(default=True, description="both directions at full bandwidth at once")
    collective_algorithm: CollectiveAlgorithm = Field(
        default="ring",
        description=(
            "how collectives over a device-to-device link are run: ring (any topology), "
            "one_shot / two_shot (direct exchanges, needs a switch or a full mesh), auto "
            "(the cheapest per message, as NCCL / TensorRT-LLM choose by size)"
        ),
    )

    @property
    def peer_to_peer(self) -> bool:
        """True when the link joins devices (both ends the same device tier)."""
        return self.between[0] == self.between[1]

    @property
    def effective_bandwidth_bytes_per_s(self) -> float:
        """Bandwidth after the achievable fraction."""
        return self.bandwidth_bytes_per_s * self.achievable_bandwidth_fraction
