"""Every class of spec error is reported with its YAML path and a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hw_models import SpecError, load_dram_device, load_system, load_system_dict
from hw_models.errors import Problem
from tests.conftest import tiny_system_data


def _problems(data: Any, **kw: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_system_dict(data, **kw)
    return {p.path: p.message for p in info.value.problems}


def test_tiny_system_is_valid(tiny_data: dict[str, Any]) -> None:
    system = load_system_dict(tiny_data)
    assert system.tier("ddr").scope == "host"
    assert system.path("hbm", "ddr") == ["pcie"]


def test_unknown_key_names_its_path(tiny_data: dict[str, Any]) -> None:
    tiny_data["tiers"]["hbm"]["bandwith"] = 1
    assert _problems(tiny_data) == {"tiers.hbm.bandwith": "unknown key"}


def test_missing_key_names_its_path(tiny_data: dict[str, Any]) -> None:
    del tiny_data["tiers"]["ddr"]["capacity_bytes"]
    assert _problems(tiny_data) == {"tiers.ddr.capacity_bytes": "required key is missing"}


@pytest.mark.parametrize("bad", [-3, 0])
def test_non_positive_size_is_rejected(tiny_data: dict[str, Any], bad: int) -> None:
    tiny_data["tiers"]["hbm"]["read_bandwidth_bytes_per_s"] = bad
    probs = _problems(tiny_data)
    assert list(probs) == ["tiers.hbm.read_bandwidth_bytes_per_s"]
    assert "greater than 0" in probs["tiers.hbm.read_bandwidth_bytes_per_s"]
    assert f"found {bad}" in probs["tiers.hbm.read_bandwidth_bytes_per_s"]


def test_wrong_type_is_rejected(tiny_data: dict[str, Any]) -> None:
    tiny_data["devices"] = "eight"
    probs = _problems(tiny_data)
    assert "devices" in probs and "integer" in probs["devices"] and "'eight'" in probs["devices"]


def test_unit_string_of_wrong_kind_is_rejected(tiny_data: dict[str, Any]) -> None:
    tiny_data["tiers"]["hbm"]["capacity_bytes"] = "3 TB/s"
    probs = _problems(tiny_data)
    assert "expected bytes" in probs["tiers.hbm.capacity_bytes"]


def test_link_to_unknown_tier_names_the_endpoint(tiny_data: dict[str, Any]) -> None:
    tiny_data["links"]["pcie"]["between"] = ["hbm", "dram"]
    probs = _problems(tiny_data)
    assert probs == {"links.pcie.between[1]": "unknown tier 'dram' (known: ddr, hbm)"}


def test_peer_link_needs_device_tier(tiny_data: dict[str, Any]) -> None:
    tiny_data["links"]["bad"] = {
        "kind": "nvlink",
        "between": ["ddr", "ddr"],
        "bandwidth_bytes_per_s": 1e9,
    }
    probs = _problems(tiny_data)
    assert "device-scope" in probs["links.bad.between"]


def test_all_problems_are_reported_together(tiny_data: dict[str, Any]) -> None:
    tiny_data["tiers"]["hbm"]["bandwith"] = 1
    tiny_data["tiers"]["ddr"]["read_bandwidth_bytes_per_s"] = -1
    tiny_data["links"]["pcie"]["between"] = ["hbm", "nvme"]
    probs = _problems(tiny_data)
    assert set(probs) == {
        "tiers.hbm.bandwith",
        "tiers.ddr.read_bandwidth_bytes_per_s",
        "links.pcie.between[1]",
    }


def test_dram_attachment_bandwidth_must_agree_with_organisation(tiny_data: dict[str, Any]) -> None:
    # 1 HBM3 stack at 6400 MT/s: 1024 bits x 6.4e9 / 8 = 819.2 GB/s, but the tier claims 1 TB/s
    tiny_data["tiers"]["hbm"]["dram"] = {"device": "hbm3", "count": 1}
    probs = _problems(tiny_data)
    assert "disagrees by more than 5 %" in probs["tiers.hbm"]
    tiny_data["tiers"]["hbm"]["read_bandwidth_bytes_per_s"] = "819.2 GB/s"
    assert load_system_dict(tiny_data).tier("hbm").dram is not None


def test_unknown_dram_device_lists_known(tiny_data: dict[str, Any]) -> None:
    tiny_data["tiers"]["hbm"]["dram"] = {"device": "hbm9", "count": 1}
    probs = _problems(tiny_data)
    assert "unknown DRAM device 'hbm9'" in probs["tiers.hbm.dram.device"]
    assert "hbm3" in probs["tiers.hbm.dram.device"]


def test_flash_device_reference_is_checked(tiny_data: dict[str, Any]) -> None:
    tiny_data["tiers"]["ddr"]["flash_device"] = "apple_m1_max_1tb"  # a DDR tier is not flash
    assert "cannot have a flash geometry" in _problems(tiny_data)["tiers.ddr"]
    tiny_data["tiers"]["ddr"]["kind"] = "flash"
    tiny_data["tiers"]["ddr"]["flash_device"] = "floppy"
    assert "unknown flash device 'floppy'" in _problems(tiny_data)["tiers.ddr.flash_device"]


def _dram_data() -> dict[str, Any]:
    return {
        "name": "test-ddr4",
        "standard": "DDR4",
        "data_rate_mtps": 3200,
        "organization": {
            "channels": 1,
            "ranks": 1,
            "bank_groups": 4,
            "banks_per_group": 4,
            "rows": 65536,
            "columns": 1024,
            "bus_width_bits": 64,
            "burst_length": 8,
        },
        "timing": {
            "tCK_ns": 0.625,
            "nBL": 4,
            "nCL": 22,
            "nCWL": 16,
            "nRCD": 22,
            "nRP": 22,
            "nRAS": 52,
            "nRC": 74,
            "nWR": 24,
            "nRTP": 12,
            "nCCD_S": 4,
            "nCCD_L": 8,
            "nRRD_S": 4,
            "nRRD_L": 8,
            "nFAW": 34,
            "nWTR_S": 4,
            "nWTR_L": 12,
            "nRFC": 560,
            "nREFI": 12480,
        },
        "datasheet_bandwidth_bytes_per_s": "25.6 GB/s",
        "sources": [{"title": "test"}],
    }


def _dram_problems(tmp_path: Path, data: dict[str, Any]) -> dict[str, str]:
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:
        load_dram_device(f)
    return {p.path: p.message for p in info.value.problems}


def test_valid_dram_device_derives_peak_bandwidth(tmp_path: Path) -> None:
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(_dram_data()))
    dev = load_dram_device(f)
    # 64 bits x 3200 MT/s / 8 = 25.6 GB/s; 16 banks x 64K rows x 8 KiB rows = 8 GiB
    assert dev.peak_bandwidth_bytes_per_s == pytest.approx(25.6e9)
    assert dev.capacity_bytes == 8 * 1024**3


def test_jedec_relation_nrc_is_checked(tmp_path: Path) -> None:
    data = _dram_data()
    data["timing"]["nRC"] = 70  # < nRAS + nRP = 52 + 22 = 74
    assert _dram_problems(tmp_path, data) == {
        "timing.nRC": "expected nRC >= nRAS + nRP = 74, found 70"
    }


def test_jedec_relations_report_every_violation(tmp_path: Path) -> None:
    data = _dram_data()
    data["timing"]["nRC"] = 70
    data["timing"]["nCCD_L"] = 2  # shorter than nCCD_S = 4
    data["timing"]["nREFI"] = 500  # not above nRFC = 560
    assert set(_dram_problems(tmp_path, data)) == {"timing.nRC", "timing.nCCD_L", "timing.nREFI"}


def test_datasheet_bandwidth_disagreeing_with_organisation(tmp_path: Path) -> None:
    data = _dram_data()
    data["datasheet_bandwidth_bytes_per_s"] = "32 GB/s"  # organisation gives 25.6 GB/s: 20 % off
    probs = _dram_problems(tmp_path, data)
    assert "disagrees by more than 5 %" in probs[""]


def test_duplicate_yaml_key_names_both_lines(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text(yaml.safe_dump(tiny_system_data(), sort_keys=False) + "devices: 2\n")
    with pytest.raises(SpecError) as info:
        load_system(f)
    (prob,) = [p for p in info.value.problems if p.path == "devices"]
    assert prob.message.startswith("duplicate key (lines")
    assert info.value.source == str(f)


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\ntiers: {hbm: [\n")
    with pytest.raises(SpecError, match=r"line \d+, column \d+: invalid YAML"):
        load_system(f)


def test_non_mapping_document(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text("")
    with pytest.raises(SpecError, match="expected a mapping, found an empty file"):
        load_system(f)


def test_missing_file_and_unknown_preset() -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_system("no/such/file.yaml")
    with pytest.raises(SpecError, match=r"unknown system preset 'h900' \(known: .*h100_sxm"):
        load_system("h900")


def test_overrides_set_dotted_paths(tiny_data: dict[str, Any]) -> None:
    base = load_system_dict(tiny_data)
    big = load_system(base, overrides={"tiers.hbm.capacity_bytes": "96 GB"})
    assert big.tier("hbm").capacity_bytes == 96e9
    assert base.tier("hbm").capacity_bytes == 16e9  # the original is untouched
    again = load_system(base, overrides=["tiers.ddr.read_bandwidth_bytes_per_s=2e11"])
    assert again.tier("ddr").read_bandwidth_bytes_per_s == 2e11


def test_bad_overrides_are_spec_errors(tiny_data: dict[str, Any]) -> None:
    base = load_system_dict(tiny_data)
    with pytest.raises(SpecError) as info:
        load_system(
            base, overrides={"tiers.nvme.capacity_bytes": 1, "tiers.hbm.capacity_bytes": -1}
        )
    paths = {p.path for p in info.value.problems}
    assert paths == {"overrides.tiers.nvme.capacity_bytes", "tiers.hbm.capacity_bytes"}
    with pytest.raises(SpecError, match="expected key=value"):
        load_system(base, overrides=["tiers.hbm.capacity_bytes"])


def test_spec_error_rendering() -> None:
    err = SpecError([Problem("a.b", "bad"), Problem("", "worse")], source="f.yaml")
    assert str(err) == "f.yaml: 2 problems:\n  - a.b: bad\n  - worse"
    assert str(SpecError([Problem("x", "y")])) == "x: y"
    assert err.prefixed("tiers").problems[0].path == "tiers.a.b"
