"""The one place the DRAM package chooses numba's options.

Every compiled function of :mod:`memsim.dram` (the channel loop, the protocol
checker, the trace parser) is decorated with :func:`njit` from here, so where and
whether numba caches compiled code is decided in this module alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` with the package's defaults: on-disk cache, numpy error model."""
    return numba.njit(cache=True, error_model="numpy", **options)
