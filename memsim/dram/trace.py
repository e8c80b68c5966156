"""`RequestTrace`: a columnar array of memory requests, the controller's input.

One entry is one column access of the device (``organization.access_bytes``:
64 B on DDR4/DDR5, 32 B on LPDDR5/HBM); an address inside the burst selects that
burst. Arrival times are in cycles of the device's command clock (tCK).

>>> import numpy as np
>>> tr = RequestTrace.from_arrays(np.arange(4) * 64, arrival_cycle=[0, 0, 10, 10])
>>> len(tr), int(tr.is_write.sum())
(4, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw_models.errors import Problem, SpecError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Latest arrival cycle a trace may hold: 2^50 cycles is about 13 days of a 1 GHz
#: command clock; the controller's event arithmetic stays exact far beyond it.
MAX_ARRIVAL_CYCLE = 1 << 50


def _int64(name: str, values: npt.ArrayLike) -> IntArray:
    try:
        return np.ascontiguousarray(values, dtype=np.int64).reshape(-1)
    except OverflowError:
        raise SpecError(
            [Problem(f"trace.{name}", "a value does not fit in a signed 64-bit integer")]
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTrace:
    """Requests as parallel arrays: arrival cycle, byte address, write flag, requestor id."""

    arrival_cycle: IntArray
    address: IntArray
    is_write: BoolArray
    requestor: IntArray

    def __len__(self) -> int:
        return int(self.address.shape[0])

    @classmethod
    def from_arrays(
        cls,
        address: npt.ArrayLike,
        *,
        arrival_cycle: npt.ArrayLike | None = None,
        is_write: npt.ArrayLike | None = None,
        requestor: npt.ArrayLike | None = None,
    ) -> RequestTrace:
        """Validate and copy arrays into a trace (missing ones: 0, read, requestor 0)."""
        addr = _int64("address", address)
        n = addr.shape[0]
        arr = (
            np.zeros(n, np.int64)
            if arrival_cycle is None
            else _int64("arrival_cycle", arrival_cycle)
        )
        wr = (
            np.zeros(n, bool)
            if is_write is None
            else np.ascontiguousarray(is_write, dtype=bool).reshape(-1)
        )
        req = np.zeros(n, np.int64) if requestor is None else _int64("requestor", requestor)
        problems = [
            Problem(f"trace.{name}", f"expected {n} entries (one per address), found {a.shape[0]}")
            for name, a in (("arrival_cycle", arr), ("is_write", wr), ("requestor", req))
            if a.shape[0] != n
        ]
        if not problems:
            for name, a in (("arrival_cycle", arr), ("requestor", req), ("address", addr)):
                bad = np.flatnonzero(a < 0)
                if bad.size:
                    i = int(bad[0])
                    problems.append(
                        Problem(f"trace.{name}[{i}]", f"expected a value >= 0, found {int(a[i])}")
                    )
        if not problems and n and int(arr.max()) > MAX_ARRIVAL_CYCLE:
            i = int(np.argmax(arr))
            problems.append(
                Problem(
                    f"trace.arrival_cycle[{i}]",
                    f"expected a cycle <= 2**50 = {MAX_ARRIVAL_CYCLE} "
                    f"(memsim.dram.trace.MAX_ARRIVAL_CYCLE), found {int(arr[i])}",
                )
            )
        if problems:
            raise SpecError(problems)
        return cls(arrival_cycle=arr, address=addr, is_write=wr, requestor=req)

    def split(self, *, size_bytes: npt.ArrayLike, burst_bytes: int) -> RequestTrace:
        """Requests of ``size_bytes`` each, as consecutive bursts of ``burst_bytes``
        (the device's ``organization.access_bytes``): request ``i`` becomes
        ``ceil((address % burst + size) / burst)`` bursts from its aligned address,
        all with its arrival, direction and requestor."""
        size = np.ascontiguousarray(size_bytes, dtype=np.int64).reshape(-1)
        if size.shape[0] != len(self):
            raise SpecError(
                [
                    Problem(
                        "trace.size_bytes", f"expected {len(self)} entries, found {size.shape[0]}"
                    )
                ]
            )
        bad = np.flatnonzero(size <= 0)
        if bad.size:
            i = int(bad[0])
            raise SpecError(
                [Problem(f"trace.size_bytes[{i}]", f"expected > 0, found {int(size[i])}")]
            )
        start = self.address - self.address % burst_bytes
        count = (self.address - start + size + burst_bytes - 1) // burst_bytes
        rep = np.repeat(np.arange(len(self)), count)
        first = np.repeat(np.cumsum(count) - count, count)
        offset = (np.arange(rep.shape[0]) - first) * burst_bytes
        return RequestTrace.from_arrays(
            start[rep] + offset,
            arrival_cycle=self.arrival_cycle[rep],
            is_write=self.is_write[rep],
            requestor=self.requestor[rep],
        )

    @classmethod
    def from_times(
        cls,
        address: npt.ArrayLike,
        *,
        arrival_s: npt.ArrayLike,
        tck_ns: float,
        is_write: npt.ArrayLike | None = None,
        requestor: npt.ArrayLike | None = None,
    ) -> RequestTrace:
        """A trace whose arrivals are given in seconds (rounded down to cycles of ``tck_ns``)."""
        cycles = np.floor(np.asarray(arrival_s, dtype=np.float64) / (tck_ns * 1e-9))
        return cls.from_arrays(
            address, arrival_cycle=cycles, is_write=is_write, requestor=requestor
        )

    @classmethod
    def from_file(cls, path: str, *, format: str) -> RequestTrace:
        """Read a Ramulator 2 / DRAMsim3 / DRAMSys STL trace
        (see :mod:`workloads.formats.dram_traces`)."""
        from memsim.dram.trace_scan import scan
        from workloads.formats.dram_traces import read_trace

        tr = read_trace(path, format=format, scanner=scan)
        return cls.from_arrays(tr.address, arrival_cycle=tr.cycles, is_write=tr.is_write)

    @classmethod
    def concat(cls, traces: list[RequestTrace]) -> RequestTrace:
        """All requests of ``traces`` in one trace (requestor ids kept as given)."""
        return cls.from_arrays(
            np.concatenate([t.address for t in traces]),
            arrival_cycle=np.concatenate([t.arrival_cycle for t in traces]),
            is_write=np.concatenate([t.is_write for t in traces]),
            requestor=np.concatenate([t.requestor for t in traces]),
        )
