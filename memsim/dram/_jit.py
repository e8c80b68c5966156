"""The one place the DRAM package chooses numba's options.

Every compiled function of :mod:`memsim.dram` (the channel loop, the protocol
checker, the trace parser) is decorated with :func:`njit` from here: numba's
numpy error model, compiled through :func:`memsim._jit.njit`, which keeps the
on-disk cache in the user's cache directory (never in the package tree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memsim._jit import njit as _njit


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``memsim._jit.njit`` with the DRAM package's default: the numpy error model."""
    return _njit(error_model="numpy", **options)
