"""ControllerConfig: names from the registries, validated fields, overrides."""

from __future__ import annotations

from typing import Any

import pytest

from hw_models import SpecError
from memsim.dram import ARBITERS, REFRESH_MODES, ROW_POLICIES, SCHEDULERS, ControllerConfig
from memsim.registry import Registry


@pytest.mark.parametrize(
    ("field", "registry"),
    [
        ("scheduler", SCHEDULERS),
        ("row_policy", ROW_POLICIES),
        ("refresh", REFRESH_MODES),
        ("arbiter", ARBITERS),
    ],
)
def test_every_registered_name_is_accepted_and_unknown_ones_listed(
    field: str, registry: Registry[Any]
) -> None:
    for name in registry.names():
        assert getattr(ControllerConfig.parse({field: name}), field) == name
    with pytest.raises(SpecError) as err:
        ControllerConfig.parse({field: "nonsense"}, prefix="controller")
    text = str(err.value)
    assert f"controller.{field}" in text and all(n in text for n in registry.names())


def test_watermarks_must_be_ordered() -> None:
    with pytest.raises(SpecError, match="write_low_watermark"):
        ControllerConfig.parse({"write_low_watermark": 0.8, "write_high_watermark": 0.5})
    cfg = ControllerConfig(write_queue_size=32)
    assert (cfg.write_high, cfg.write_low) == (24, 8)


def test_overrides_are_typed_and_checked() -> None:
    cfg = ControllerConfig().with_overrides(["read_queue_size=64", "bank_xor=true"])
    assert cfg.read_queue_size == 64 and cfg.bank_xor is True
    with pytest.raises(SpecError, match=r"controller\.read_queue_size"):
        ControllerConfig().with_overrides(["read_queue_size=-1"])
    with pytest.raises(SpecError, match="expected key=value"):
        ControllerConfig().with_overrides(["read_queue_size"])
