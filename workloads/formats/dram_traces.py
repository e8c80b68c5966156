"""DRAM request traces: read and write the line formats of the reference simulators.

Three formats, one request per line (blank lines and ``#`` comments are skipped):

* ``ramulator`` (Ramulator 2 ``LoadStoreTrace``): ``LD 0x1f40`` / ``ST 0x1f40``.
  The address may also be decimal. An optional leading integer is the number of
  idle (bubble) cycles before the request, as in Ramulator's CPU traces:
  ``12 LD 0x1f40``. Without it every request is ready at once (cycle 0: the
  frontend sends them as fast as the memory accepts).
* ``dramsim3``: ``0x1f40 READ 121`` / ``0x1f40 WRITE 121`` (address, operation,
  arrival cycle).
* ``stl`` (DRAMSys trace player): ``121: read 0x1f40`` / ``121: write 0x1f40``,
  optionally followed by the write data as hex (``121: write 0x1f40 0x00ff...``).

Cycles are in the memory controller's clock. A line that does not parse raises
:class:`hw_models.SpecError` naming the file and the line number.

>>> lines = format_lines([64, 128], is_write=[False, True], cycles=[0, 5], format="dramsim3")
>>> lines
['0x40 READ 0', '0x80 WRITE 5']
>>> parse_lines(lines, format="dramsim3").cycles.tolist()
[0, 5]
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write_text

FORMATS = ("ramulator", "dramsim3", "stl")
_ALIASES = {
    "ramulator": "ramulator",
    "ramulator2": "ramulator",
    "loadstore": "ramulator",
    "dramsim3": "dramsim3",
    "dramsim": "dramsim3",
    "stl": "stl",
    "dramsys": "stl",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DRAMTrace:
    """A trace as parallel arrays: arrival cycle, byte address, write flag."""

    cycles: npt.NDArray[np.int64]
    address: npt.NDArray[np.int64]
    is_write: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.address.shape[0])


def normalize_format(name: str) -> str:
    """The canonical format name; :class:`SpecError` listing the known ones."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise SpecError(
            [
                Problem(
                    "trace_format", f"unknown trace format {name!r} (known: {', '.join(FORMATS)})"
                )
            ]
        )
    return _ALIASES[key]


#: An integer of a trace: ASCII decimal digits, or ``0x`` and hex digits.
_INT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
_INT64_MAX = (1 << 63) - 1

#: Largest trace file read (a guard against endless or device files given by mistake).
MAX_TRACE_BYTES = 4 << 30


def _int(token: str) -> int:
    t = token.strip()
    if not _INT.fullmatch(t):
        raise ValueError(f"{t[:40]!r} is not a decimal or 0x-hex integer")
    v = int(t, 16) if t[:2].lower() == "0x" else int(t, 10)
    if v > _INT64_MAX:
        raise ValueError(f"{t[:40]!r} does not fit in 64 bits (the largest is 2**63 - 1)")
    return v


def _parse_line(fmt: str, tokens: list[str], prev_cycle: int) -> tuple[int, int, bool]:
    if fmt == "ramulator":
        cycle = prev_cycle
        if len(tokens) == 3:
            gap = _int(tokens[0])
            if gap < 0:
                raise ValueError("negative bubble count")
            cycle = prev_cycle + gap
            if cycle > _INT64_MAX:
                raise ValueError("the running cycle count passes 2**63 - 1")
            tokens = tokens[1:]
        if len(tokens) != 2 or tokens[0] not in ("LD", "ST"):
            raise ValueError("expected '[bubbles] LD|ST <address>'")
        return cycle, _int(tokens[1]), tokens[0] == "ST"
    if fmt == "dramsim3":
        if len(tokens) != 3 or tokens[1] not in ("READ", "WRITE"):
            raise ValueError("expected '<address> READ|WRITE <cycle>'")
        return _int(tokens[2]), _int(tokens[0]), tokens[1] == "WRITE"
    # stl: "<cycle>: read|write <address> [data]"
    if len(tokens) < 3 or not tokens[0].endswith(":") or tokens[1] not in ("read", "write"):
        raise ValueError("expected '<cycle>: read|write <address> [data]'")
    if len(tokens) > 4 or (len(tokens) == 4 and tokens[1] != "write"):
        raise ValueError("only a write may carry data, as one hex token")
    if len(tokens) == 4 and not re.fullmatch(r"0[xX][0-9a-fA-F]+", tokens[3]):
        raise ValueError("write data must be one 0x-hex token")  # it is not kept
    return _int(tokens[0][:-1]), _int(tokens[2]), tokens[1] == "write"


def parse_lines(lines: Iterable[str], *, format: str, source: str = "<lines>") -> DRAMTrace:
    """Parse trace lines of ``format``; :class:`SpecError` at the first bad line."""
    fmt = normalize_format(format)
    cycles: list[int] = []
    addrs: list[int] = []
    writes: list[bool] = []
    prev = 0
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        tokens = text.replace(":", ": ", 1).split() if fmt == "stl" else text.split()
        if fmt == "stl" and tokens and tokens[0] == ":":
            tokens = tokens[1:]
        try:
            cycle, addr, is_write = _parse_line(fmt, tokens, prev)
            if addr < 0 or cycle < 0:
                raise ValueError("addresses and cycles must be >= 0")
            if fmt == "stl" and cycles and cycle < prev:
                raise ValueError(f"cycle {cycle} is before the previous line's {prev}")
        except ValueError as err:
            shown = raw.strip()
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise SpecError(
                [Problem(f"line {lineno}", f"cannot read {shown!r} as {fmt}: {err}")],
                source=source,
            ) from None
        cycles.append(cycle)
        addrs.append(addr)
        writes.append(is_write)
        prev = cycle
    return DRAMTrace(
        cycles=np.asarray(cycles, dtype=np.int64),
        address=np.asarray(addrs, dtype=np.int64),
        is_write=np.asarray(writes, dtype=bool),
    )


#: A fast reader of a whole trace file's bytes: ``scanner(bytes_as_uint8, format_code)``
#: returns ``(cycles, address, is_write, n, bad_line)`` (see
#: :func:`memsim.dram.trace_scan.scan`); format codes index :data:`FORMATS`.
Scanner = Callable[
    [npt.NDArray[np.uint8], int],
    tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_], int, int],
]


def read_trace(path: str | Path, *, format: str, scanner: Scanner | None = None) -> DRAMTrace:
    """Read a trace file; :class:`SpecError` naming the file (and line) on bad input.

    With a ``scanner`` (``memsim.dram.RequestTrace.from_file`` passes its compiled
    one, about 0.1 s for a million lines) the plain shapes of each format are read
    in one pass; a file the scanner does not fully understand, or any file without
    one, is read line by line, which accepts the rarer shapes or names the bad line.
    """
    fmt = normalize_format(format)
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SpecError([Problem("trace", f"{str(p)!r} is not a regular file")])
        if st.st_size > MAX_TRACE_BYTES:
            raise SpecError(
                [
                    Problem(
                        "trace",
                        f"{str(p)!r} has {st.st_size} bytes, above the ceiling of "
                        f"{MAX_TRACE_BYTES} (workloads.formats.dram_traces.MAX_TRACE_BYTES); "
                        "split the trace",
                    )
                ]
            )
        data = p.read_bytes()
    except OSError as err:
        raise SpecError([Problem("trace", f"cannot read {str(p)!r}: {err.strerror}")]) from None
    if scanner is not None:
        cycles, addr, wr, n, bad = scanner(np.frombuffer(data, dtype=np.uint8), FORMATS.index(fmt))
        if bad == 0:
            return DRAMTrace(
                cycles=cycles[:n].copy(), address=addr[:n].copy(), is_write=wr[:n].copy()
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([Problem("trace", f"{str(p)!r} is not a text file")]) from None
    return parse_lines(io.StringIO(text, newline=None), format=fmt, source=str(p))


def format_lines(
    addresses: npt.ArrayLike,
    *,
    is_write: npt.ArrayLike | None = None,
    cycles: npt.ArrayLike | None = None,
    format: str,
) -> list[str]:
    """Trace lines for the given requests (``cycles`` must not decrease for
    ``ramulator`` and ``stl``, whose lines are in time order)."""
    fmt = normalize_format(format)
    addr = np.asarray(addresses, dtype=np.int64).reshape(-1)
    n = addr.shape[0]
    wr = np.zeros(n, bool) if is_write is None else np.asarray(is_write, dtype=bool).reshape(-1)
    cyc = np.zeros(n, np.int64) if cycles is None else np.asarray(cycles, np.int64).reshape(-1)
    problems = [
        Problem(name, f"expected {n} entries (one per address), found {a.shape[0]}")
        for name, a in (("is_write", wr), ("cycles", cyc))
        if a.shape[0] != n
    ]
    if not problems and ((addr < 0).any() or (cyc < 0).any()):
        problems.append(Problem("addresses", "addresses and cycles must be >= 0"))
    if not problems and fmt != "dramsim3" and n and (np.diff(cyc) < 0).any():
        problems.append(Problem("cycles", f"{fmt} traces are in time order; cycles decrease"))
    if problems:
        raise SpecError(problems)
    a_list = addr.tolist()
    w_list = wr.tolist()
    c_list = cyc.tolist()
    if fmt == "dramsim3":
        return [
            f"{a:#x} {'WRITE' if w else 'READ'} {c}"
            for a, w, c in zip(a_list, w_list, c_list, strict=True)
        ]
    if fmt == "stl":
        return [
            f"{c}: {'write' if w else 'read'} {a:#x}"
            for a, w, c in zip(a_list, w_list, c_list, strict=True)
        ]
    gaps = np.diff(cyc, prepend=0).tolist()
    timed = any(g != 0 for g in gaps)
    return [
        (f"{g} " if timed else "") + f"{'ST' if w else 'LD'} {a:#x}"
        for a, w, g in zip(a_list, w_list, gaps, strict=True)
    ]


def write_trace(
    path: str | Path,
    *,
    addresses: npt.ArrayLike,
    is_write: npt.ArrayLike | None = None,
    cycles: npt.ArrayLike | None = None,
    format: str,
) -> Path:
    """Write a trace file (to a temporary name, then renamed: no half-written file)."""
    lines = format_lines(addresses, is_write=is_write, cycles=cycles, format=format)
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def write_dram_trace(path: str | Path, trace: DRAMTrace, *, format: str) -> Path:
    """Write a :class:`DRAMTrace` (see :func:`write_trace`)."""
    return write_trace(
        path, addresses=trace.address, is_write=trace.is_write, cycles=trace.cycles, format=format
    )


def known_formats() -> Sequence[str]:
    """The canonical format names."""
    return FORMATS
