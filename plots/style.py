"""One look for every memsim figure: fonts, and a fixed colour, hatch, line style and
marker per tier kind, link kind, phase, tensor kind and compute dtype.

Every plot takes its looks from here, so HBM is the same blue with the same ``//``
hatch, dashed line and square marker in a roofline, an occupancy plot and an energy
breakdown. Colours come from the Okabe-Ito palette (safe for colour-blind readers);
hatches, line styles and markers differ between any two entries of one mapping, so a
figure still reads when printed in black and white.

>>> from plots.style import TIER_LOOKS
>>> TIER_LOOKS["hbm"].color
'#0072B2'

Plot functions are wrapped in :func:`styled`, which applies :data:`RC` while the
figure is drawn; :func:`new_axes` makes a headless figure (no pyplot state) when the
caller passes no ``ax``; :func:`save_figure` writes PNG, SVG or PDF atomically.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import matplotlib as mpl
from cycler import cycler

from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LineStyle = str | tuple[float, tuple[float, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Look:
    """How one category is drawn: fill/line colour, bar hatch, line style, marker."""

    color: str
    hatch: str
    linestyle: LineStyle
    marker: str
    label: str


# Okabe & Ito (2008), "Color Universal Design", plus two greys and a brown.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#999999"
DARK_GREY = "#555555"
BROWN = "#8C564B"

_DASHDOTDOT: LineStyle = (0, (5.0, 1.5, 1.0, 1.5, 1.0, 1.5))
_LONGDASH: LineStyle = (0, (9.0, 3.0))
_DENSE_DOT: LineStyle = (0, (1.0, 1.0))

TIER_LOOKS: Mapping[str, Look] = {
    "sram": Look(color=GREEN, hatch="", linestyle="-", marker="o", label="SRAM"),
    "hbm": Look(color=BLUE, hatch="//", linestyle="--", marker="s", label="HBM"),
    "gddr": Look(color=SKY, hatch="..", linestyle=_LONGDASH, marker="D", label="GDDR"),
    "ddr": Look(color=VERMILLION, hatch="\\\\", linestyle="-.", marker="^", label="DDR"),
    "lpddr": Look(color=PURPLE, hatch="xx", linestyle=_DASHDOTDOT, marker="v", label="LPDDR"),
    "cxl": Look(color=ORANGE, hatch="oo", linestyle=":", marker="P", label="CXL memory"),
    "flash": Look(color=BROWN, hatch="++", linestyle=_DENSE_DOT, marker="X", label="Flash"),
}
"""Tier kinds (``hw_models.tier.TierKind``)."""

LINK_LOOKS: Mapping[str, Look] = {
    "pcie": Look(
        color=DARK_GREY, hatch="--", linestyle=(0, (4.0, 1.0, 1.0, 1.0)), marker="<", label="PCIe"
    ),
    "nvlink": Look(
        color="#4D9221", hatch="||", linestyle=(0, (6.0, 2.0, 2.0, 2.0)), marker=">", label="NVLink"
    ),
    "on_package": Look(
        color=YELLOW, hatch="**", linestyle=(0, (2.0, 2.0)), marker="h", label="on-package"
    ),
    "cxl": Look(
        color=ORANGE, hatch="O", linestyle=(0, (3.0, 3.0, 1.0, 3.0)), marker="p", label="CXL link"
    ),
    "inter_chip": Look(
        color="#1F4E79", hatch="\\|", linestyle=(0, (7.0, 1.0)), marker="8", label="inter-chip"
    ),
    "nvme": Look(
        color="#7B3F00", hatch="/|", linestyle=(0, (2.0, 1.0, 2.0, 4.0)), marker="d", label="NVMe"
    ),
    "ethernet": Look(
        color="#B07AA1", hatch="-\\", linestyle=(0, (1.0, 3.0)), marker="1", label="Ethernet"
    ),
    "ici": Look(
        color="#2CA9B7", hatch="x|", linestyle=(0, (8.0, 2.0, 1.0, 2.0)), marker="2", label="ICI"
    ),
}
"""Link kinds (``hw_models.link.LinkKind``)."""

PHASE_LOOKS: Mapping[str, Look] = {
    "prefill": Look(color=BLUE, hatch="//", linestyle="-", marker="o", label="prefill"),
    "decode": Look(color=VERMILLION, hatch="\\\\", linestyle="--", marker="s", label="decode"),
    "forward": Look(color=GREEN, hatch="..", linestyle="-.", marker="^", label="forward"),
    "backward": Look(color=PURPLE, hatch="xx", linestyle=":", marker="v", label="backward"),
    "optimizer": Look(
        color=ORANGE, hatch="++", linestyle=_DASHDOTDOT, marker="D", label="optimizer"
    ),
    "switch": Look(color=GREY, hatch="oo", linestyle=_LONGDASH, marker="X", label="switch"),
}
"""Graph phases (``workloads.graph.Phase``)."""

TENSOR_LOOKS: Mapping[str, Look] = {
    "weight": Look(color=BLUE, hatch="//", linestyle="-", marker="o", label="weights"),
    "kv": Look(color=VERMILLION, hatch="\\\\", linestyle="--", marker="s", label="KV cache"),
    "activation": Look(color=GREEN, hatch="..", linestyle="-.", marker="^", label="activations"),
    "gradient": Look(color=PURPLE, hatch="xx", linestyle=":", marker="v", label="gradients"),
    "optimizer": Look(
        color=ORANGE, hatch="++", linestyle=_DASHDOTDOT, marker="D", label="optimizer state"
    ),
    "logits": Look(color=SKY, hatch="oo", linestyle=_LONGDASH, marker="P", label="logits"),
    "input": Look(color=GREY, hatch="--", linestyle=_DENSE_DOT, marker="X", label="inputs"),
}
"""Tensor kinds (``workloads.graph.TensorKind``)."""

DTYPE_LOOKS: Mapping[str, Look] = {
    "fp32": Look(color=BLACK, hatch="", linestyle=":", marker="", label="FP32"),
    "tf32": Look(
        color=BLACK, hatch="", linestyle=(0, (3.0, 1.0, 1.0, 1.0)), marker="", label="TF32"
    ),
    "bf16": Look(color=BLACK, hatch="", linestyle="-", marker="", label="BF16"),
    "fp16": Look(color=BLACK, hatch="", linestyle=(0, (8.0, 1.0)), marker="", label="FP16"),
    "fp8": Look(color=BLACK, hatch="", linestyle="--", marker="", label="FP8"),
    "int8": Look(color=BLACK, hatch="", linestyle="-.", marker="", label="INT8"),
    "int4": Look(color=BLACK, hatch="", linestyle=_DASHDOTDOT, marker="", label="INT4"),
}
"""Compute ceilings: black, told apart by line style (and their text label)."""

OTHER_LOOKS: Mapping[str, Look] = {
    "compute": Look(color=BLACK, hatch="", linestyle="-", marker="*", label="compute"),
    "latency": Look(color="#CCCCCC", hatch="..", linestyle=":", marker=".", label="latency"),
    "overhead": Look(
        color="#E5E5E5", hatch="xx", linestyle=(0, (1.0, 4.0)), marker=",", label="overhead"
    ),
    "static": Look(color="#777777", hatch="--", linestyle="-.", marker="|", label="static"),
    "offchip": Look(color=DARK_GREY, hatch="", linestyle="-", marker="o", label="off-chip"),
}
"""Bounds and energy components that are neither a tier nor a link."""

_FALLBACK_COLORS = (SKY, YELLOW, BROWN, GREY, PURPLE, GREEN, ORANGE, BLUE, VERMILLION)
_FALLBACK_HATCHES = ("||", "--", "oo", "**", "..", "++", "xx", "//", "\\\\")
_FALLBACK_STYLES: tuple[LineStyle, ...] = ("-", "--", "-.", ":", _LONGDASH, _DASHDOTDOT)
_FALLBACK_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "h", "*")


def fallback_look(name: str) -> Look:
    """A stable look for a category no mapping knows (same name, same look, every run)."""
    h = zlib.crc32(name.encode())
    return Look(
        color=_FALLBACK_COLORS[h % len(_FALLBACK_COLORS)],
        hatch=_FALLBACK_HATCHES[(h // 7) % len(_FALLBACK_HATCHES)],
        linestyle=_FALLBACK_STYLES[(h // 11) % len(_FALLBACK_STYLES)],
        marker=_FALLBACK_MARKERS[(h // 13) % len(_FALLBACK_MARKERS)],
        label=name,
    )


def look(mapping: Mapping[str, Look], key: str) -> Look:
    """``mapping[key]``, or a stable fallback look for unknown keys."""
    return mapping.get(key) or fallback_look(key)


def resource_look(resource: str, kinds: Mapping[str, str] | None = None) -> Look:
    """The look of a resource id: ``"tier:hbm"``, ``"link:pcie"``, ``"compute:tensor"``,
    ``"static"``, ``"latency"``...

    ``kinds`` maps resource ids to their kind (``{"tier:main": "hbm"}``); without an
    entry, the name itself is tried as a kind (a tier called ``hbm`` is of kind hbm).
    The label is the resource's name, the colour/hatch/line/marker its kind's.
    """
    prefix, _, name = resource.partition(":")
    kind = (kinds or {}).get(resource, name or prefix)
    if prefix == "tier":
        base = look(TIER_LOOKS, kind)
    elif prefix == "link":
        base = look(LINK_LOOKS, kind)
    elif prefix == "compute":
        base = OTHER_LOOKS["compute"]
    else:
        base = look(OTHER_LOOKS, prefix)
    return Look(
        color=base.color,
        hatch=base.hatch,
        linestyle=base.linestyle,
        marker=base.marker,
        label=name or base.label,
    )


RC: Mapping[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical on every machine
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=[BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK]),
    "lines.linewidth": 1.4,
    "hatch.linewidth": 0.6,
    "legend.frameon": False,
    "figure.dpi": 100.0,
    "savefig.dpi": 150.0,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}
"""rcParams applied while any memsim figure is drawn."""


def _rc() -> Any:
    return dict(RC)


P = ParamSpec("P")
R = TypeVar("R")


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with :data:`RC` in effect (fonts are fixed when text is created)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(_rc()):
            return func(*args, **kwargs)

    return wrapper


def new_figure(
    *,
    figsize: tuple[float, float] = (6.4, 4.2),
    nrows: int = 1,
    ncols: int = 1,
    sharey: bool = False,
) -> tuple[Figure, list[Axes]]:
    """A headless figure (no pyplot, no global backend) with ``nrows x ncols`` axes."""
    from matplotlib.figure import Figure

    with mpl.rc_context(_rc()):
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False)
    return fig, [a for row in axes for a in row]


def new_axes(ax: Axes | None, *, figsize: tuple[float, float] = (6.4, 4.2)) -> Axes:
    """``ax`` itself, or the axes of a new headless figure."""
    if ax is not None:
        return ax
    return new_figure(figsize=figsize)[1][0]


FORMATS = ("png", "svg", "pdf")


def draw_stack(
    ax: Axes,
    table: Any,
    *,
    look_of: Callable[[str], Look],
    width: float,
    horizontal: bool = False,
) -> None:
    """Stacked bars: one bar per row of ``table`` (a DataFrame), one segment per column,
    in column order, each with its look; segment ``gid`` ``bar:<column>:<row>``."""
    import numpy as np

    pos = np.arange(len(table))
    base = np.zeros(len(table))
    for col in table.columns:
        lk = look_of(str(col))
        sizes = table[col].to_numpy(float)
        style: dict[str, Any] = {
            "color": lk.color,
            "hatch": lk.hatch,
            "edgecolor": "black",
            "linewidth": 0.4,
        }
        if horizontal:
            bars = ax.barh(pos, sizes, width, left=base, label=lk.label, **style)
        else:
            bars = ax.bar(pos, sizes, width, bottom=base, label=lk.label, **style)
        for rect, row in zip(bars, table.index, strict=True):
            rect.set_gid(f"bar:{col}:{row}")
        base = base + sizes


def figure_format(path: str | os.PathLike[str]) -> str:
    """The output format from a file name's suffix; :class:`SpecError` if unsupported."""
    if not str(path).strip():
        raise SpecError([Problem("output", "expected a file name, found an empty string")])
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise SpecError(
            [
                Problem(
                    "output",
                    f"unsupported figure format {suffix or '(none)'!r} for {path} "
                    f"(known: {', '.join(FORMATS)})",
                )
            ]
        )
    return suffix


#: metadata written into every figure: no creation date, a fixed creator, so that
#: identical runs give identical bytes (matplotlib stamps the date and its version
#: otherwise; PNG keeps only the fixed ``Software`` key)
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": "memsim"},
    "svg": {"Date": None, "Creator": "memsim"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "memsim", "Producer": "memsim"},
}


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by suffix) atomically; returns the path.

    The figure is rendered into a temporary file beside ``path`` and renamed over it,
    so a failure never leaves a half-written figure. The bytes depend only on the
    figure: no dates, and SVG element ids drawn from a fixed salt (``svg.hashsalt``,
    set for this call only, never process-wide).
    """
    out = Path(path)
    fmt = figure_format(out)

    def write(fh: Any) -> None:
        with mpl.rc_context({**_rc(), "svg.hashsalt": "memsim"}):
            fig.savefig(fh, format=fmt, metadata=_METADATA[fmt])

    return atomic_write(out, write, binary=True)


# ---- units -------------------------------------------------------------------------

_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def bytes_scale(max_bytes: float) -> tuple[float, str]:
    """``(divisor, unit)`` to show byte counts up to ``max_bytes``: (1e9, "GB")..."""
    for div, prefix in _SI:
        if max_bytes >= div:
            return div, f"{prefix}B"
    return 1.0, "B"


def time_scale(max_s: float) -> tuple[float, str]:
    """``(multiplier, unit)`` to show times up to ``max_s``: (1e3, "ms"), (1e6, "µs")..."""
    if max_s >= 1.0:
        return 1.0, "s"
    if max_s >= 1e-3:
        return 1e3, "ms"
    if max_s >= 1e-6:
        return 1e6, "µs"
    return 1e9, "ns"


_SUFFIX_UNITS = (
    ("_flop_per_byte", "FLOP/B"),
    ("_flops_per_s", "FLOP/s"),
    ("_bytes_per_s", "B/s"),
    ("_j_per_byte", "J/B"),
    ("_bytes", "B"),
    ("_hz", "Hz"),
    ("_j", "J"),
    ("_w", "W"),
    ("_per_s", "1/s"),
    ("_s", "s"),
)


def column_label(column: str) -> str:
    """An axis label with units from a unit-suffixed column name.

    ``tpot_s`` -> ``tpot (s)``, ``hbm_capacity_bytes`` -> ``hbm capacity (B)``,
    ``tokens_per_s`` -> ``tokens/s``, ``mfu`` -> ``mfu``.
    """
    for suffix, unit in _SUFFIX_UNITS:
        if column.endswith(suffix) and len(column) > len(suffix):
            name = column[: -len(suffix)].replace("_", " ")
            return f"{name}/s" if suffix == "_per_s" else f"{name} ({unit})"
    return column.replace("_", " ")


def column_unit(column: str) -> str:
    """The unit of a unit-suffixed column name (``''`` if none)."""
    for suffix, unit in _SUFFIX_UNITS:
        if column.endswith(suffix):
            return unit
    return ""
