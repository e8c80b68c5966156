"""Opt-in allocator tuning for sweeps: keep freed memory instead of returning it.

The analytic path touches a few dozen fresh numpy arrays of ~100k floats per call.
glibc serves such sizes with ``mmap`` and unmaps them on free, so every call pays
page faults on first touch: about 40 % of a warm analytic evaluation of a 62k-op
graph on this project's 2-core reference machine (19-21 ms -> 11-14 ms with the
tuning; see ``benchmarks/bench_engine.py``).

:func:`keep_freed_memory` raises glibc's mmap and trim thresholds (``mallopt``) so
freed blocks are reused. It changes the whole process's allocator (resident memory
stays near its high-water mark, up to the threshold, instead of shrinking back), so
it is a documented side effect: :func:`memsim.simulate` applies it once per process
(:func:`tune_allocator_once`) because explorers call it thousands of times, and
``MEMSIM_NO_MALLOPT=1`` turns it off. Results never depend on it (tested). On
non-glibc platforms it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


@functools.cache
def tune_allocator_once() -> bool:
    """Apply :func:`keep_freed_memory` on the first call in this process (speed only)."""
    return keep_freed_memory()


def keep_freed_memory(*, threshold_bytes: int = 512 * 1024**2) -> bool:
    """Make glibc keep freed blocks up to ``threshold_bytes``; True if it took effect.

    Set ``MEMSIM_NO_MALLOPT=1`` in the environment to disable it.
    """
    if os.environ.get("MEMSIM_NO_MALLOPT"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, threshold_bytes)
    ok &= mallopt(_M_TRIM_THRESHOLD, threshold_bytes)
    ok &= mallopt(_M_TOP_PAD, 64 * 1024**2)
    return bool(ok)
