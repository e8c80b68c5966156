"""Learning curves of explorers: best reward so far against simulator calls.

Input: a mapping ``{explorer: array (seeds, calls)}`` of best-so-far rewards (as
:meth:`explore.compare.CompareResult.curves` returns), or a long DataFrame with
columns ``explorer``, ``seed``, ``call``, ``best``. Each explorer is drawn as its mean
over seeds with a band of +- one standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from plots.style import (
    BLACK,
    BLUE,
    BROWN,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    SKY,
    VERMILLION,
    new_axes,
    styled,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_COLORS = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BROWN, GREY, BLACK)


def _curves(data: Any) -> dict[str, np.ndarray]:
    if isinstance(data, Mapping):
        return {str(k): np.atleast_2d(np.asarray(v, dtype=float)) for k, v in data.items()}
    out = {}
    for name, g in data.groupby("explorer", sort=False):
        wide = g.pivot(index="seed", columns="call", values="best")
        out[str(name)] = wide.to_numpy(float)
    return out


@styled
def learning_curves(
    data: Any,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str = "best reward so far",
) -> Axes:
    """Best-so-far reward vs simulator calls per explorer (mean over seeds, +- s.e.)."""
    ax = new_axes(ax)
    for i, (name, arr) in enumerate(_curves(data).items()):
        calls = np.arange(1, arr.shape[1] + 1)
        mean = np.nanmean(arr, axis=0)
        color = _COLORS[i % len(_COLORS)]
        ax.plot(calls, mean, color=color, label=f"{name} (n={arr.shape[0]})", gid=f"curve:{name}")
        if arr.shape[0] > 1:
            se = np.nanstd(arr, axis=0, ddof=1) / np.sqrt(arr.shape[0])
            ax.fill_between(calls, mean - se, mean + se, color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("simulator calls")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax
