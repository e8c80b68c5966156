"""``njit``: numba's compiler with its on-disk cache kept out of the installed package.

``numba.njit(cache=True)`` writes compiled kernels next to the source first
(``__pycache__`` in the package tree): that pollutes an installed package, fails
or silently recompiles on a read-only install, and races when several users share
one. Kernels compiled through :func:`njit` here cache instead, in order:

1. ``NUMBA_CACHE_DIR`` when the user has set it (numba's own setting, respected);
2. the user's cache directory (``~/.cache/numba`` on Linux, via numba's
   ``UserWideCacheLocator``, which follows ``XDG_CACHE_HOME``);
3. nowhere: when neither is writable the kernel is compiled in every process
   (correct, only slower).

This changes no process-wide setting (``numba.config`` and the environment are left
alone): the choice is made per kernel by giving its dispatcher a cache whose locator
list skips the in-tree locator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numba
from numba.core import caching


def _locators() -> list[Any]:
    names = ("UserProvidedCacheLocator", "UserWideCacheLocator")
    found = [getattr(caching, n, None) or getattr(caching, f"_{n}", None) for n in names]
    return [c for c in found if c is not None]


class _UserCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = _locators()


class _UserFunctionCache(caching.FunctionCache):
    _impl_class = _UserCacheImpl


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)`` with the user-directory cache described above."""
    options.pop("cache", None)

    def wrap(fn: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**options)(fn)
        # no writable cache directory (RuntimeError): compile in each process instead
        with contextlib.suppress(RuntimeError):
            dispatcher._cache = _UserFunctionCache(dispatcher.py_func)
        return dispatcher

    return wrap
