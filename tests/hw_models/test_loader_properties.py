"""Hypothesis: valid specs load with consistent derived figures; anything else is a SpecError."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw_models import SpecError, System, load_system, load_system_dict
from hw_models.yamlio import parse_yaml
from tests.conftest import tiny_system_data

positive = st.floats(min_value=1e-3, max_value=1e18, allow_nan=False, allow_infinity=False)


@st.composite
def valid_systems(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid systems: 1-4 tiers with positive sizes, a chain of links, 1-8 devices."""
    n = draw(st.integers(1, 4))
    kinds = ["sram", "hbm", "ddr", "flash"]
    tiers: dict[str, Any] = {}
    for i in range(n):
        tiers[f"t{i}"] = {
            "kind": kinds[i],
            "scope": "device" if i < 2 else "host",
            "capacity_bytes": draw(positive),
            "read_bandwidth_bytes_per_s": draw(positive),
            "achievable_bandwidth_fraction": draw(st.floats(0.05, 1.0)),
        }
    links = {
        f"l{i}": {
            "kind": "pcie",
            "between": [f"t{i - 1}", f"t{i}"],
            "bandwidth_bytes_per_s": draw(positive),
        }
        for i in range(2, n)
    }
    return {
        "name": "random",
        "sources": [{"title": "hypothesis"}],
        "devices": draw(st.integers(1, 8)),
        "compute": {"c": {"kind": "simt", "peak_flops_per_s": {"bf16": draw(positive)}}},
        "tiers": tiers,
        "links": links,
    }


@given(valid_systems())
def test_valid_specs_load_with_consistent_derived_figures(data: dict[str, Any]) -> None:
    system = load_system_dict(data)
    peak = data["compute"]["c"]["peak_flops_per_s"]["bf16"]
    expected_total = 0.0
    for name, t in data["tiers"].items():
        assert system.ridge_point(name) == pytest.approx(peak / t["read_bandwidth_bytes_per_s"])
        copies = data["devices"] if t["scope"] == "device" else 1
        expected_total += t["capacity_bytes"] * copies
        # every tier is reachable from the first one (device tiers on the device, others by link)
        system.path("t0", name)
    assert system.total_capacity_bytes() == pytest.approx(expected_total)
    # a round trip through plain data gives an equal spec
    assert load_system_dict(system.model_dump(mode="json")) == system


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["80 GiB", "3 TB/s", "-5 GB", "1 ns", "fast", "1e999"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_systems(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny system with a few values replaced by junk, keys deleted or junk keys added."""
    data = copy.deepcopy(tiny_system_data())
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_junk)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(_junk)
    return data


@pytest.mark.slow
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_systems())
def test_loader_raises_only_spec_errors(data: dict[str, Any]) -> None:
    try:
        system = load_system_dict(data)
    except SpecError as err:
        assert err.problems and all(isinstance(p.message, str) and p.message for p in err.problems)
    else:
        assert isinstance(system, System)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_raises_only_spec_errors(text: str) -> None:
    try:
        data, _dups = parse_yaml(text)
        load_system_dict(data)
    except SpecError:
        pass


def test_presets_round_trip_through_overrides() -> None:
    # An override to the same value changes nothing; the spec hash is stable.
    h100 = load_system("h100_sxm")
    same = load_system(
        "h100_sxm", overrides={"tiers.hbm.capacity_bytes": h100.tier("hbm").capacity_bytes}
    )
    assert same.spec_hash == h100.spec_hash
    other = load_system("h100_sxm", overrides={"tiers.hbm.capacity_bytes": 96e9})
    assert other.spec_hash != h100.spec_hash
