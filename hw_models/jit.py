"""``njit``: numba's compiler, loaded on first use, with its on-disk cache kept out of
the installed package.

**Lazy.** Importing numba costs about half a second, which every ``memsim`` command
would pay although most never run a kernel. A function decorated with :func:`njit`
is a small proxy until it is first called (or an attribute of it is read); then
numba is imported and every deferred kernel of the same module is compiled into a
real dispatcher that replaces its proxy in the module, so kernels calling each
other see dispatchers, as numba requires.

**Cache location.** ``numba.njit(cache=True)`` writes compiled kernels next to the
source first (``__pycache__`` in the package tree): that pollutes an installed
package, fails or silently recompiles on a read-only install, and races when
several users share one. Kernels compiled here cache instead, in order:

1. ``NUMBA_CACHE_DIR`` when the user has set it (numba's own setting, respected);
2. the user's cache directory (``~/.cache/numba`` on Linux, via numba's
   ``UserWideCacheLocator``, which follows ``XDG_CACHE_HOME``);
3. nowhere: when neither is writable the kernel is compiled in every process
   (correct, only slower).

This changes no process-wide setting (``numba.config`` and the environment are left
alone): each kernel's dispatcher gets a cache whose locator list skips the in-tree
locator.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()


def _user_cache_class() -> Any:
    """numba's ``FunctionCache`` with the in-tree locator left out (built on first use)."""
    from numba.core import caching

    names = ("UserProvidedCacheLocator", "UserWideCacheLocator")
    found = [getattr(caching, n, None) or getattr(caching, f"_{n}", None) for n in names]

    class UserCacheImpl(caching.CompileResultCacheImpl):
        pass

    UserCacheImpl._locator_classes = [c for c in found if c is not None]

    class UserFunctionCache(caching.FunctionCache):
        _impl_class = UserCacheImpl

    return UserFunctionCache


class Deferred:
    """A kernel not compiled yet: the first call compiles its module's kernels."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = fn
        self.options = options
        self.real: Any = None
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__

    def dispatcher(self) -> Any:
        """The numba dispatcher (compiling this module's deferred kernels on first use)."""
        if self.real is None:
            _materialise(self.py_func.__module__)
        return self.real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.dispatcher()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dispatcher(), name)


def _materialise(module_name: str) -> None:
    import numba

    module = sys.modules[module_name]
    with _LOCK:
        cache_class = None
        deferred = [(k, v) for k, v in vars(module).items() if isinstance(v, Deferred)]
        for _, d in deferred:
            if d.real is None:
                disp = numba.njit(**d.options)(d.py_func)
                if cache_class is None:
                    cache_class = _user_cache_class()
                # no writable cache directory (RuntimeError): compile in each process
                with contextlib.suppress(RuntimeError):
                    disp._cache = cache_class(disp.py_func)
                d.real = disp
        for name, d in deferred:
            setattr(module, name, d.real)


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)``, deferred and with the user-directory cache (see above)."""
    options.pop("cache", None)

    def wrap(fn: Callable[..., Any]) -> Any:
        return Deferred(fn, options)

    return wrap
