"""The compiled trace reader: one pass over a DRAM trace file's bytes.

:meth:`memsim.dram.RequestTrace.from_file` hands :func:`scan` to
:func:`workloads.formats.dram_traces.read_trace` (which, in the hardware-free
``workloads`` layer, reads line by line without it).

It accepts only the plain shapes of each format (ASCII, decimal or ``0x`` hex
integers below 2^63, space/tab separated, ``#`` comments) and stops at the first
line it does not understand, returning that line's number; the caller then reads
the file with the line-by-line reader, which either accepts the line (a shape
this pass leaves to it) or raises the error that names it. So the two readers
give the same arrays for every file this pass accepts.
"""

from __future__ import annotations

import numpy as np

from memsim.dram._jit import njit

FMT_RAMULATOR, FMT_DRAMSIM3, FMT_STL = 0, 1, 2
_LIMIT = (1 << 63) - 1


@njit(inline="always")
def _int_token(buf, a, b):
    """(value, ok) of the decimal or 0x-hex integer buf[a:b], ok False past 2^63 - 1."""
    if b <= a:
        return 0, False
    v = 0
    if b - a > 2 and buf[a] == 48 and (buf[a + 1] == 120 or buf[a + 1] == 88):  # 0x / 0X
        if b - a - 2 > 16:
            # leading zeros aside, more than 16 hex digits cannot fit
            k = a + 2
            while k < b - 16 and buf[k] == 48:
                k += 1
            if b - k > 16:
                return 0, False
        for k in range(a + 2, b):
            c = buf[k]
            if 48 <= c <= 57:
                d = c - 48
            elif 97 <= c <= 102:
                d = c - 87
            elif 65 <= c <= 70:
                d = c - 55
            else:
                return 0, False
            if v > (_LIMIT - d) >> 4:
                return 0, False
            v = (v << 4) + d
        return v, True
    for k in range(a, b):
        c = buf[k]
        if c < 48 or c > 57:
            return 0, False
        d = c - 48
        if v > (_LIMIT - d) // 10:
            return 0, False
        v = v * 10 + d
    return v, True


@njit(inline="always")
def _is_hex_data(buf, a, b):
    if b - a < 3 or buf[a] != 48 or (buf[a + 1] != 120 and buf[a + 1] != 88):
        return False
    for k in range(a + 2, b):
        c = buf[k]
        if not (48 <= c <= 57 or 97 <= c <= 102 or 65 <= c <= 70):
            return False
    return True


@njit(inline="always")
def _word(buf, a, b, w0, w1, w2, w3, w4):
    """Whether buf[a:b] is the word of the given bytes (w* = -1 pads a short word)."""
    n = b - a
    ws = (w0, w1, w2, w3, w4)
    m = 0
    for w in ws:
        if w >= 0:
            m += 1
    if n != m:
        return False
    for k in range(n):  # noqa: SIM110 (numba compiles no generator inside all())
        if buf[a + k] != ws[k]:
            return False
    return True


@njit()
def scan(buf, fmt):
    """Parse ``buf`` (uint8). Returns (cycles, address, is_write, n, bad_line):
    ``bad_line`` is 0 when every line was read, else the 1-based number of the first
    line this pass does not accept (arrays then hold the lines before it)."""
    size = buf.shape[0]
    lines = 1
    for k in range(size):
        if buf[k] == 10:
            lines += 1
    cycles = np.empty(lines, dtype=np.int64)
    addr = np.empty(lines, dtype=np.int64)
    wr = np.empty(lines, dtype=np.bool_)
    ts = np.empty(6, dtype=np.int64)
    te = np.empty(6, dtype=np.int64)
    n = 0
    prev = 0
    lineno = 0
    pos = 0
    while pos < size:
        lineno += 1
        end = pos
        while end < size and buf[end] != 10:
            end += 1
        stop = end
        # tokens up to a comment; anything outside printable ASCII goes to the slow path
        nt = 0
        k = pos
        while k < stop:
            c = buf[k]
            if c == 35:  # '#'
                break
            if c == 32 or c == 9 or c == 13:
                k += 1
                continue
            if c < 33 or c > 126:
                return cycles, addr, wr, n, lineno
            a = k
            while k < stop and buf[k] != 32 and buf[k] != 9 and buf[k] != 13 and buf[k] != 35:
                if buf[k] < 33 or buf[k] > 126:
                    return cycles, addr, wr, n, lineno
                k += 1
            if nt == 6:
                return cycles, addr, wr, n, lineno
            ts[nt] = a
            te[nt] = k
            nt += 1
        pos = end + 1
        if nt == 0:
            continue
        ok = True
        cyc = 0
        ad = 0
        w = False
        if fmt == FMT_RAMULATOR:
            i = 0
            cyc = prev
            if nt == 3:
                gap, ok = _int_token(buf, ts[0], te[0])
                cyc = prev + gap
                if cyc < 0:  # the sum wrapped past 2^63 - 1
                    ok = False
                i = 1
            elif nt != 2:
                ok = False
            if ok:
                if _word(buf, ts[i], te[i], 76, 68, -1, -1, -1):  # LD
                    w = False
                elif _word(buf, ts[i], te[i], 83, 84, -1, -1, -1):  # ST
                    w = True
                else:
                    ok = False
            if ok:
                ad, ok = _int_token(buf, ts[i + 1], te[i + 1])
        elif fmt == FMT_DRAMSIM3:
            if nt != 3:
                ok = False
            else:
                if _word(buf, ts[1], te[1], 82, 69, 65, 68, -1):  # READ
                    w = False
                elif _word(buf, ts[1], te[1], 87, 82, 73, 84, 69):  # WRITE
                    w = True
                else:
                    ok = False
                if ok:
                    ad, ok = _int_token(buf, ts[0], te[0])
                if ok:
                    cyc, ok = _int_token(buf, ts[2], te[2])
        else:  # stl: "<cycle>: read|write <address> [data]"
            if nt < 3 or nt > 4 or buf[te[0] - 1] != 58:  # ':'
                ok = False
            else:
                if _word(buf, ts[1], te[1], 114, 101, 97, 100, -1):  # read
                    w = False
                    if nt == 4:
                        ok = False
                elif _word(buf, ts[1], te[1], 119, 114, 105, 116, 101):  # write
                    w = True
                    if nt == 4 and not _is_hex_data(buf, ts[3], te[3]):
                        ok = False
                else:
                    ok = False
                if ok:
                    cyc, ok = _int_token(buf, ts[0], te[0] - 1)
                if ok:
                    ad, ok = _int_token(buf, ts[2], te[2])
                if ok and n > 0 and cyc < prev:
                    ok = False  # STL is in time order
        if not ok:
            return cycles, addr, wr, n, lineno
        cycles[n] = cyc
        addr[n] = ad
        wr[n] = w
        n += 1
        prev = cyc
    return cycles, addr, wr, n, 0
