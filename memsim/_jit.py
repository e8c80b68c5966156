"""``njit`` for memsim's kernels: see :mod:`hw_models.jit` (the one implementation)."""

from __future__ import annotations

from hw_models.jit import njit

__all__ = ["njit"]
