"""Opt-in allocator tuning for long sweeps: keep freed memory instead of returning it.

The analytic path touches a few dozen fresh numpy arrays of ~100k floats per call.
glibc serves such sizes with ``mmap`` and unmaps them on free, so every call pays
page faults on first touch: about 40 % of a warm analytic evaluation of a 62k-op
graph on this project's 2-core reference machine (``benchmarks/bench_engine.py``).

:func:`keep_freed_memory` raises glibc's mmap and trim thresholds (``mallopt``) so
freed blocks are reused. It changes the whole process's allocator (resident memory
stays near its high-water mark, up to the threshold, instead of shrinking back), so
nothing in memsim calls it: a program that owns its process (a sweep worker, a
benchmark) calls it once if it wants the speed. Results never depend on it
(tested). On non-glibc platforms it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(*, threshold_bytes: int = 512 * 1024**2) -> bool:
    """Make glibc keep freed blocks up to ``threshold_bytes``; True if it took effect.

    A process-wide setting: call it only from a program that owns its process.
    """
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
