"""The numba hot loop of one set-associative cache level.

State lives in numpy arrays owned by one :class:`memsim.cache.CacheSim`:
``tags[sets, ways]`` (line number, -1 = invalid), ``dirty[sets, ways]``,
``meta[sets, ways]`` (LRU: last-use tick; FIFO: insertion tick; SRRIP: RRPV),
``clock[1]`` (the tick) and ``rng[1]`` (xorshift64 state for the random policy).
"""

from __future__ import annotations

import numpy as np

from memsim._jit import njit

LRU, FIFO, RANDOM, SRRIP = 0, 1, 2, 3

# indices of the counters returned by `run`
HITS, MISSES, READ_MISSES, WRITE_MISSES, EVICTIONS, DIRTY_EVICTIONS = 0, 1, 2, 3, 4, 5
WRITEBACKS, FILLS, WRITE_THROUGHS, WRITES, N_COUNTERS = 6, 7, 8, 9, 10


@njit()
def _xorshift(rng):
    x = rng[0]
    x ^= (x << np.uint64(13)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x ^= x >> np.uint64(7)
    x ^= (x << np.uint64(17)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    rng[0] = x
    return x


@njit()
def run(
    addrs,
    is_write,
    line_shift,
    tags,
    dirty,
    meta,
    clock,
    rng,
    policy,
    rrpv_max,
    write_back,
    write_allocate,
    hit_out,
    out_addr,
    out_write,
):
    """Run ``addrs`` through the cache; fill ``hit_out`` and the next-level stream.

    Returns ``(counters, n_out)``: counters indexed by the constants above and
    the number of entries written to ``out_addr``/``out_write`` (fills as reads,
    then the victim's write-back, then a write-through or no-allocate write).
    """
    sets, ways = tags.shape
    counts = np.zeros(N_COUNTERS, dtype=np.int64)
    n_out = 0
    tick = clock[0]
    for i in range(addrs.size):
        line = addrs[i] >> line_shift
        s = line % sets
        w = is_write[i]
        if w:
            counts[WRITES] += 1
        way = -1
        for j in range(ways):
            if tags[s, j] == line:
                way = j
                break
        if way >= 0:
            counts[HITS] += 1
            hit_out[i] = True
            if policy == LRU:
                tick += 1
                meta[s, way] = tick
            elif policy == SRRIP:
                meta[s, way] = 0
            if w:
                if write_back:
                    dirty[s, way] = True
                else:
                    out_addr[n_out] = line << line_shift
                    out_write[n_out] = True
                    n_out += 1
                    counts[WRITE_THROUGHS] += 1
            continue
        hit_out[i] = False
        counts[MISSES] += 1
        if w:
            counts[WRITE_MISSES] += 1
        else:
            counts[READ_MISSES] += 1
        if w and not write_allocate:
            out_addr[n_out] = line << line_shift
            out_write[n_out] = True
            n_out += 1
            counts[WRITE_THROUGHS] += 1
            continue
        victim = -1
        for j in range(ways):
            if tags[s, j] < 0:
                victim = j
                break
        if victim < 0:
            if policy in (LRU, FIFO):
                best = meta[s, 0]
                victim = 0
                for j in range(1, ways):
                    if meta[s, j] < best:
                        best = meta[s, j]
                        victim = j
            elif policy == RANDOM:
                victim = int(np.int64(_xorshift(rng) % np.uint64(ways)))
            else:
                while victim < 0:
                    for j in range(ways):
                        if meta[s, j] >= rrpv_max:
                            victim = j
                            break
                    if victim < 0:
                        for j in range(ways):
                            meta[s, j] += 1
        # fill first (the critical read), then the victim's write-back
        out_addr[n_out] = line << line_shift
        out_write[n_out] = False
        n_out += 1
        counts[FILLS] += 1
        if tags[s, victim] >= 0:
            counts[EVICTIONS] += 1
            if dirty[s, victim]:
                counts[DIRTY_EVICTIONS] += 1
                counts[WRITEBACKS] += 1
                out_addr[n_out] = tags[s, victim] << line_shift
                out_write[n_out] = True
                n_out += 1
        tags[s, victim] = line
        dirty[s, victim] = w and write_back
        if policy == SRRIP:
            meta[s, victim] = rrpv_max - 1
        else:
            tick += 1
            meta[s, victim] = tick
        if w and not write_back:
            out_addr[n_out] = line << line_shift
            out_write[n_out] = True
            n_out += 1
            counts[WRITE_THROUGHS] += 1
    clock[0] = tick
    return counts, n_out
