"""One look per category, distinguishable in black and white, the same in every plot."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from hw_models.errors import SpecError
from hw_models.link import LinkKind
from hw_models.tier import TierKind
from plots.style import (
    LINK_LOOKS,
    PHASE_LOOKS,
    TENSOR_LOOKS,
    TIER_LOOKS,
    column_label,
    new_figure,
    resource_look,
    save_figure,
)
from workloads.graph import PHASES, TENSOR_KINDS


def test_every_tier_and_link_kind_has_a_look() -> None:
    assert set(TIER_LOOKS) == set(typing.get_args(TierKind))
    assert set(LINK_LOOKS) == set(typing.get_args(LinkKind))
    assert set(PHASE_LOOKS) == set(PHASES)
    assert set(TENSOR_LOOKS) == set(TENSOR_KINDS)


@pytest.mark.parametrize("mapping", [TIER_LOOKS, LINK_LOOKS, PHASE_LOOKS, TENSOR_LOOKS])
def test_looks_differ_without_colour(mapping: typing.Mapping[str, typing.Any]) -> None:
    # in black-and-white print, only hatch, line style and marker tell entries apart
    looks = list(mapping.values())
    for attr in ("hatch", "linestyle", "marker", "color"):
        values = [repr(getattr(lk, attr)) for lk in looks]
        assert len(set(values)) == len(values), f"two entries share a {attr}"


def test_resource_look_uses_the_kind_not_the_name() -> None:
    # a tier called "main" of kind hbm is drawn like any HBM tier, labelled by its name
    lk = resource_look("tier:main", {"tier:main": "hbm"})
    assert (lk.color, lk.hatch, lk.linestyle) == (
        TIER_LOOKS["hbm"].color,
        TIER_LOOKS["hbm"].hatch,
        TIER_LOOKS["hbm"].linestyle,
    )
    assert lk.label == "main"
    assert resource_look("link:x", {"link:x": "pcie"}).color == LINK_LOOKS["pcie"].color
    # an unknown kind gets a stable fallback
    assert resource_look("tier:weird").color == resource_look("tier:weird").color


@pytest.mark.parametrize(
    ("column", "label"),
    [
        ("tpot_s", "tpot (s)"),
        ("hbm_bandwidth_bytes_per_s", "hbm bandwidth (B/s)"),
        ("peak_flops_per_s", "peak (FLOP/s)"),
        ("capacity_bytes", "capacity (B)"),
        ("energy_j", "energy (J)"),
        ("tokens_per_s", "tokens/s"),
        ("mfu", "mfu"),
    ],
)
def test_column_label_carries_the_unit(column: str, label: str) -> None:
    assert column_label(column) == label


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_save_figure_writes_each_format_atomically(tmp_path: Path, fmt: str) -> None:
    fig, (ax,) = new_figure()
    ax.plot([0, 1], [0, 1])
    out = save_figure(fig, tmp_path / f"f.{fmt}")
    head = out.read_bytes()[:8]
    assert head.startswith({"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[fmt])
    assert [p.name for p in tmp_path.iterdir()] == [f"f.{fmt}"]  # no temp file left


def test_save_figure_rejects_unknown_format(tmp_path: Path) -> None:
    fig, _ = new_figure()
    with pytest.raises(SpecError, match=r"'jpg'.*png, svg, pdf"):
        save_figure(fig, tmp_path / "f.jpg")
    assert not list(tmp_path.iterdir())
