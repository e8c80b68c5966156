"""Plausibility ceilings (issue 16): absurd but representable values are refused in one
line naming the field, the value and the ceiling; raising a ceiling is explicit."""

from __future__ import annotations

import inspect
import math
import pkgutil

import pytest
import yaml

import hw_models
from hw_models import (
    CEILINGS,
    DEFAULT_CEILINGS,
    Ceilings,
    SpecError,
    load_dram_device,
    load_flash_device,
    load_system,
)
from hw_models.base import Spec, _numeric_leaf
from hw_models.ceilings import kind_of
from hw_models.flash_presets import flash_device_names
from hw_models.loader import DRAM_DIR, SYSTEM_DIR, dram_device_names, system_names
from memsim.cli.main import main
from workloads.model_config import ModelConfig, load_model, model_names

DIMENSIONLESS = {
    "value",
    "std",
    "ratio",
    "traffic_factor",
    "overprovisioning",
    "achievable_bandwidth_fraction",
    "position_offset",
}


def _spec_classes() -> list[type[Spec]]:
    import importlib

    out = {ModelConfig}
    for m in pkgutil.iter_modules(hw_models.__path__):
        mod = importlib.import_module(f"hw_models.{m.name}")
        out |= {c for c in vars(mod).values() if inspect.isclass(c) and issubclass(c, Spec)}
    return sorted(out, key=lambda c: c.__name__)


def test_every_numeric_field_has_a_known_kind() -> None:
    for cls in _spec_classes():
        for name, f in cls.model_fields.items():
            if _numeric_leaf(f.annotation):
                kind = kind_of(name)
                # only dimensionless ratios and fitted coefficients go unbounded
                assert kind in CEILINGS or name in DIMENSIONLESS, (cls.__name__, name, kind)
    # a few by hand: the unit in the name decides
    assert kind_of("capacity_bytes") == "bytes"
    assert kind_of("read_bandwidth_bytes_per_s") == "bandwidth"
    assert kind_of("peak_flops_per_s") == "compute"
    assert kind_of("clock_hz") == "clock"
    assert kind_of("nREFI") == "cycles"
    assert kind_of("IDD4R") == "current"
    assert kind_of("achievable_bandwidth_fraction") is None


def test_every_shipped_preset_is_within_the_default_ceilings() -> None:
    # the ceilings are for typos, never for real hardware or models
    for n in system_names():
        assert DEFAULT_CEILINGS.check(load_system(n)) == [], n
    for n in dram_device_names():
        assert DEFAULT_CEILINGS.check(load_dram_device(n)) == [], n
    for n in flash_device_names():
        assert DEFAULT_CEILINGS.check(load_flash_device(n)) == [], n
    for n in model_names():
        assert DEFAULT_CEILINGS.check(load_model(n)) == [], n


def test_every_ceiling_has_a_reason_and_a_positive_limit() -> None:
    for kind, c in CEILINGS.items():
        assert c.kind == kind and c.limit > 0 and math.isfinite(c.limit)
        assert len(c.reason) > 20 and ":" in c.reason, kind


@pytest.mark.parametrize(
    ("override", "kind"),
    [
        ("tiers.hbm.capacity_bytes=18446744073709551616", "bytes"),
        ("tiers.sram.read_bandwidth_bytes_per_s=1e30", "bandwidth"),
        ("compute.tensor.clock_hz=1e15", "clock"),
        ("tiers.hbm.latency_s=1e9", "time"),
        ("tiers.hbm.read_energy_j_per_byte=0.5", "energy"),
    ],
)
def test_absurd_system_values_are_refused_and_can_be_raised(override: str, kind: str) -> None:
    with pytest.raises(SpecError) as err:
        load_system("h100_sxm", overrides=[override])
    msg = str(err.value)
    field = override.split("=")[0]
    assert field in msg and "plausibility ceiling" in msg and f"--ceiling {kind}=" in msg
    assert "\n" not in msg
    limit = CEILINGS[kind].limit
    raised = load_system(
        "h100_sxm", overrides=[override], ceilings=Ceilings().raised(**{kind: 1e30})
    )
    assert raised.name == "h100_sxm"
    assert load_system("h100_sxm", overrides=[override], ceilings=Ceilings.off()) is not None
    # the default object was not changed by raising: no process-wide state
    assert DEFAULT_CEILINGS.limit(kind) == limit
    with pytest.raises(SpecError):
        load_system("h100_sxm", overrides=[override])


@pytest.mark.parametrize(
    ("section", "key", "value", "kind"),
    [("timing", "nXP", 10**18, "cycles"), ("organization", "columns", 2**30, "dram_columns")],
)
def test_absurd_dram_timing_and_organisation(
    tmp_path, section: str, key: str, value: int, kind: str
) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((DRAM_DIR / "ddr4_3200.yaml").read_text())
    doc[section][key] = value
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as err:
        load_dram_device(path)
    assert {p.path for p in err.value.problems} == {f"{section}.{key}"}
    assert f"is above the plausibility ceiling for {kind}" in str(err.value)
    # raised: the ceiling no longer speaks (other checks may still refuse the device)
    try:
        load_dram_device(path, ceilings=Ceilings().raised(**{kind: 1e20}))
    except SpecError as other:
        assert "plausibility ceiling" not in str(other)


def test_the_representable_bound_stays_with_ceilings_off() -> None:
    with pytest.raises(SpecError, match="magnitude"):
        load_system(
            "h100_sxm",
            overrides=["tiers.hbm.capacity_bytes=1e31"],
            ceilings=Ceilings.off(),
        )


def test_model_layers_ceiling_is_raised_explicitly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from workloads.model_config import PRESET_DIR

    doc = json.loads((PRESET_DIR / "llama2_7b.json").read_text())
    doc["num_hidden_layers"] = 1100
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match=r"num_hidden_layers: 1100 is above .* of 1024"):
        load_model(path)
    assert load_model(path, ceilings=Ceilings().raised(layers=2048)).num_hidden_layers == 1100


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(SpecError, match="unknown kind 'nope'"):
        Ceilings().raised(nope=1.0)


def test_cli_refuses_in_one_line_and_raises_on_request(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((SYSTEM_DIR / "h100_sxm.yaml").read_text())
    doc["tiers"]["hbm"]["capacity_bytes"] = 2**64
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "tiers.hbm.capacity_bytes" in err and "1.845e+19 B" in err
    assert "1.153e+18 B (1 EiB)" in err and "--ceiling bytes=VALUE" in err
    assert main(["show", str(path), "--ceiling", "bytes=1e20", "--format", "json"]) == 0
    assert main(["show", str(path), "--allow-extreme", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["serve", "--requests", "1000000000000"]) == 2
    err = capsys.readouterr().err
    assert "--requests: 1000000000000 is above the plausibility ceiling" in err
    assert main(["show", "h100_sxm", "--ceiling", "bytes=-1"]) == 2
    assert "VALUE > 0" in capsys.readouterr().err


def test_the_documented_table_is_the_code_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "robustness.md").read_text()
    for kind, c in CEILINGS.items():
        assert f"| `{kind}` |" in doc and c.reason in doc, kind
