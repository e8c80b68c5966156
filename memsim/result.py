"""`SimResult`: the frozen outcome of one simulation, with table views and exports.

Byte counts and busy times are those of the simulated device (device 0; in an
SPMD tensor-parallel graph every device does the same), host tiers included as
that device's share; ``busy_s`` of a host tier counts the traffic of all ``tp``
devices it serves. Energy is the whole system's (all devices, host included).
``simulate()`` builds a result; it never does I/O. Exports write atomically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hw_models import System
from hw_models.fileio import atomic_write
from memsim.compiled import FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

#: the tables a result writes (:meth:`SimResult.write_tables`), in file order
TABLES = ("ops", "traffic", "tiers", "links", "occupancy", "timeline", "energy")
#: the formats tables are written in
TABLE_FORMATS = ("csv", "parquet")
#: what a result keeps (``simulate(..., detail=...)``): ``full`` every table;
#: ``summary`` the summary, tiers, links, energy and DMA transfers only (sweeps)
DETAILS = ("full", "summary")
#: tables a ``detail="summary"`` result does not keep
PER_OP_TABLES = ("ops", "traffic", "occupancy", "timeline")


@dataclass(frozen=True, slots=True, kw_only=True)
class Coded:
    """A string column stored as integer codes into ``names`` (materialised on demand)."""

    codes: IntArray
    names: tuple[str, ...]

    def values(self) -> np.ndarray:
        """The strings, as an object array."""
        table = np.empty(len(self.names), dtype=object)
        table[:] = self.names
        return table[self.codes]

    def __len__(self) -> int:
        return len(self.codes)


Column = np.ndarray | Coded


@dataclass(frozen=True, slots=True, kw_only=True)
class TierStats:
    """Per tier totals."""

    tier: str
    kind: str
    capacity_bytes: float
    instances: int
    bytes_read: float
    bytes_written: float
    busy_s: float
    peak_bytes: float
    energy_j: float
    peak_bandwidth_bytes_per_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkStats:
    """Per link totals (both directions)."""

    link: str
    kind: str
    bytes: float
    busy_s: float
    energy_j: float
    bandwidth_bytes_per_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """One DMA transfer (prefetch or write-back) of one segment."""

    engine: str  # "dma:prefetch" | "dma:writeback"
    job: int
    start_s: float
    end_s: float
    bytes: float
    src: str
    dst: str
    phase: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Outcome of :func:`memsim.simulate`; table views are built on demand."""

    system: System
    graph_meta: Mapping[str, Any]
    fidelity: str
    execution: str
    policy: str
    seed: int
    version: str
    makespan_s: float
    ops: Mapping[str, Column]
    traffic: Mapping[str, Any]
    tiers: tuple[TierStats, ...]
    links: tuple[LinkStats, ...]
    occupancy: Mapping[str, tuple[FloatArray, FloatArray]]
    transfers: tuple[Transfer, ...]
    energy: tuple[tuple[str, str, str, float], ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: ``full``, or ``summary``: per-op tables (``ops``, ``traffic``) and the occupancy
    #: step functions were not kept (``simulate(..., detail="summary")``)
    detail: str = "full"

    def _require_full(self, what: str) -> None:
        if self.detail != "full":
            from hw_models.errors import Problem, SpecError

            raise SpecError(
                [
                    Problem(
                        "detail",
                        f"{what} is not kept by a detail={self.detail!r} result; "
                        "simulate with detail='full' (the default)",
                    )
                ]
            )

    # ---- table views -----------------------------------------------------------------

    def op_column(self, name: str) -> np.ndarray:
        """One column of :meth:`ops_frame` as an array (strings as objects)."""
        self._require_full("the per-op table")
        col = self.ops[name]
        return col.values() if isinstance(col, Coded) else col

    def ops_frame(self) -> pd.DataFrame:
        """One row per op (columns per the SimResult contract)."""
        self._require_full("the per-op table")
        import pandas as pd

        cols = {k: self.op_column(k) for k in self.ops}
        df = pd.DataFrame(cols)
        layer = np.asarray(cols["layer"])
        df["layer"] = pd.array([int(v) if v >= 0 else None for v in layer.tolist()], dtype="Int64")
        return df.set_index("op", drop=False).rename_axis(None)

    def traffic_frame(self) -> pd.DataFrame:
        """One row per (op, resource); DMA transfers have ``op = -1``."""
        self._require_full("the traffic table")
        import pandas as pd

        tr = self.traffic
        labels = np.empty(len(tr["labels"]), dtype=object)
        labels[:] = tr["labels"]
        moved = (tr["read"] + tr["written"]).T > 0
        op, res = np.nonzero(moved)
        return pd.DataFrame(
            {
                "op": np.concatenate([op, tr["dma_op"]]),
                "resource": labels[np.concatenate([res, tr["dma_resource"]])],
                "bytes_read": np.concatenate([tr["read"].T[op, res], tr["dma_read"]]),
                "bytes_written": np.concatenate([tr["written"].T[op, res], tr["dma_written"]]),
            }
        )

    def tiers_frame(self) -> pd.DataFrame:
        """One row per tier."""
        import pandas as pd

        return pd.DataFrame([_asdict(t) for t in self.tiers], columns=list(TierStats.__slots__))

    def links_frame(self) -> pd.DataFrame:
        """One row per link."""
        import pandas as pd

        return pd.DataFrame([_asdict(lk) for lk in self.links], columns=list(LinkStats.__slots__))

    def occupancy_frame(self) -> pd.DataFrame:
        """Step function per tier: bytes allocated from ``time_s`` on, with the capacity."""
        self._require_full("the occupancy table")
        import pandas as pd

        parts = []
        for tier, (t, b) in self.occupancy.items():
            cap = self.system.tiers[tier].capacity_bytes
            parts.append(
                pd.DataFrame({"time_s": t, "tier": tier, "bytes": b, "capacity_bytes": cap})
            )
        cols = ["time_s", "tier", "bytes", "capacity_bytes"]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)

    def timeline_frame(self) -> pd.DataFrame:
        """Gantt rows: compute units (ops), the tier ports and links each op moves data
        through (``tier:<name>``, ``link:<name>``, kind ``channel``, over the op's span),
        DMA engines and the channels their transfers use (``<src>-><dst>``)."""
        self._require_full("the timeline")
        import pandas as pd

        o = {k: self.op_column(k) for k in ("unit", "start_s", "end_s", "name", "phase")}
        frames = [
            pd.DataFrame(
                {
                    "resource": o["unit"],
                    "resource_kind": "compute",
                    "start_s": o["start_s"],
                    "end_s": o["end_s"],
                    "label": o["name"],
                    "phase": o["phase"],
                }
            )
        ]
        traffic = self.traffic
        labels = np.asarray(traffic["labels"], dtype=object)
        moved = (np.asarray(traffic["read"]) + np.asarray(traffic["written"])).T > 0
        op, res = np.nonzero(moved)
        start, end = np.asarray(o["start_s"]), np.asarray(o["end_s"])
        frames.append(
            pd.DataFrame(
                {
                    "resource": labels[res],
                    "resource_kind": "channel",
                    "start_s": start[op],
                    "end_s": end[op],
                    "label": np.asarray(o["name"], dtype=object)[op],
                    "phase": np.asarray(o["phase"], dtype=object)[op],
                }
            )
        )
        rows = []
        for tr in self.transfers:
            rows.append((tr.engine, "dma", tr.start_s, tr.end_s, tr.label, tr.phase))
            rows.append(
                (f"{tr.src}->{tr.dst}", "channel", tr.start_s, tr.end_s, tr.label, tr.phase)
            )
        cols = ["resource", "resource_kind", "start_s", "end_s", "label", "phase"]
        frames.append(pd.DataFrame(rows, columns=cols))
        return pd.concat(frames, ignore_index=True)

    def energy_frame(self) -> pd.DataFrame:
        """Energy by component, tensor kind and phase."""
        import pandas as pd

        return pd.DataFrame(
            list(self.energy), columns=["component", "tensor_kind", "phase", "energy_j"]
        )

    def summary(self) -> dict[str, Any]:
        """Headline figures (JSON-ready; non-finite values become ``None``)."""
        out: dict[str, Any] = {"makespan_s": self.makespan_s, **dict(self.metrics)}
        out["tiers"] = {
            t.tier: {
                "bytes_read": t.bytes_read,
                "bytes_written": t.bytes_written,
                "peak_bytes": t.peak_bytes,
            }
            for t in self.tiers
        }
        out["meta"] = dict(self.meta)
        return _clean(out)

    # ---- exports ------------------------------------------------------------------------

    def to_json(self, path: str | Path) -> Path:
        """Summary, tiers, links, energy and per-op columns as one JSON document."""
        self._require_full("the per-op table")
        doc = {
            "summary": self.summary(),
            "tiers": [_asdict(t) for t in self.tiers],
            "links": [_asdict(lk) for lk in self.links],
            "energy": [list(e) for e in self.energy],
            "ops": {k: self.op_column(k).tolist() for k in self.ops},
        }
        return _atomic_write(Path(path), lambda f: f.write(json.dumps(_clean(doc))))

    def to_csv(self, directory: str | Path) -> list[Path]:
        """``ops.csv``, ``traffic.csv``, ``tiers.csv``, ``links.csv``, ``occupancy.csv``,
        ``timeline.csv``, ``energy.csv`` in ``directory`` (created if missing)."""
        return self.write_tables(directory, fmt="csv")

    def to_parquet(self, directory: str | Path) -> list[Path]:
        """The same tables as :meth:`to_csv` as Parquet (needs pyarrow)."""
        return self.write_tables(directory, fmt="parquet")

    def write_tables(
        self, directory: str | Path, *, tables: Sequence[str] | None = None, fmt: str = "csv"
    ) -> list[Path]:
        """Write ``tables`` (names from :data:`TABLES`; default all) as ``<name>.<fmt>``
        (``csv`` or ``parquet``) into ``directory``, each file atomically.

        Parquet is far smaller for the large tables (``timeline``, ``ops``) and keeps
        the column types; it needs pyarrow.
        """
        from hw_models.errors import Problem, SpecError

        names = list(TABLES) if tables is None else list(dict.fromkeys(tables))
        unknown = [n for n in names if n not in TABLES]
        if unknown:
            raise SpecError(
                [Problem("tables", f"unknown table(s) {unknown}; known: {', '.join(TABLES)}")]
            )
        if fmt not in TABLE_FORMATS:
            raise SpecError(
                [Problem("table format", f"expected one of {TABLE_FORMATS}, found {fmt!r}")]
            )
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError as err:  # pragma: no cover - pyarrow is a dev dependency
                raise SpecError(
                    ["Parquet export needs pyarrow (pip install memsim[parquet])"]
                ) from err
        for name in names:
            if name in PER_OP_TABLES:
                self._require_full(f"the {name} table")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        frames: dict[str, Callable[[], pd.DataFrame]] = {
            "ops": self.ops_frame,
            "traffic": self.traffic_frame,
            "tiers": self.tiers_frame,
            "links": self.links_frame,
            "occupancy": self.occupancy_frame,
            "timeline": self.timeline_frame,
            "energy": self.energy_frame,
        }
        out = []
        for name in names:
            target = directory / f"{name}.{fmt}"
            out.append(
                _atomic_write(target, _frame_writer(frames[name](), fmt), binary=fmt != "csv")
            )
        return out

    def to_chrome_trace(self, path: str | Path) -> Path:
        """A Chrome trace (JSON array format) that opens in Perfetto / chrome://tracing."""
        self._require_full("the timeline")
        events: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": 0,
                "args": {"name": f"{self.system.name} device 0"},
            },
            {"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "memory tiers"}},
        ]
        o = {k: self.op_column(k) for k in self.ops}
        units = sorted(set(np.asarray(o["unit"]).tolist()))
        tids = {u: i for i, u in enumerate(units)}
        engines = sorted({tr.engine for tr in self.transfers})
        tids.update({e: len(units) + i for i, e in enumerate(engines)})
        for name, tid in tids.items():
            events.append(
                {"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": name}}
            )
        start = np.asarray(o["start_s"]) * 1e6
        dur = np.asarray(o["duration_s"]) * 1e6
        for i in range(len(start)):
            events.append(
                {
                    "name": str(o["name"][i]),
                    "cat": str(o["phase"][i]),
                    "ph": "X",
                    "pid": 0,
                    "tid": tids[str(o["unit"][i])],
                    "ts": float(start[i]),
                    "dur": float(dur[i]),
                    "args": {"bound": str(o["bound"][i]), "flops": float(o["flops"][i])},
                }
            )
        for tr in self.transfers:
            events.append(
                {
                    "name": tr.label,
                    "cat": "dma",
                    "ph": "X",
                    "pid": 0,
                    "tid": tids[tr.engine],
                    "ts": tr.start_s * 1e6,
                    "dur": (tr.end_s - tr.start_s) * 1e6,
                    "args": {"bytes": tr.bytes, "src": tr.src, "dst": tr.dst},
                }
            )
        for tier, (t, b) in self.occupancy.items():
            for ti, bi in zip(np.asarray(t).tolist(), np.asarray(b).tolist(), strict=True):
                events.append(
                    {
                        "name": f"{tier} bytes",
                        "ph": "C",
                        "pid": 1,
                        "ts": ti * 1e6,
                        "args": {"bytes": bi},
                    }
                )
        doc = {"traceEvents": events, "displayTimeUnit": "ns", "otherData": self.summary()["meta"]}
        return _atomic_write(Path(path), lambda f: f.write(json.dumps(_clean(doc))))


def _frame_writer(df: pd.DataFrame, fmt: str) -> Callable[[Any], Any]:
    def write(f: Any) -> Any:
        if fmt == "csv":
            return df.to_csv(f, index=False)
        return df.to_parquet(f, index=False)

    return write


def _asdict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__slots__}


def _clean(obj: Any) -> Any:
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _atomic_write(path: Path, write: Callable[[Any], Any], *, binary: bool = False) -> Path:
    """Write via a temporary file in the same directory, then rename over ``path``."""
    return atomic_write(path, write, binary=binary)


def stepwise(times: FloatArray, deltas: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(time, bytes) step function from allocation events in order (same-time events merged)."""
    if times.size == 0:
        return np.zeros(1), np.zeros(1)
    level = np.cumsum(deltas)
    keep = np.ones(times.size, dtype=bool)
    keep[:-1] = times[1:] != times[:-1]
    t, b = times[keep], level[keep]
    if t[0] > 0:
        t = np.concatenate(([0.0], t))
        b = np.concatenate(([0.0], b))
    return t, np.maximum(b, 0.0)


def peak_of(times: FloatArray, deltas: FloatArray) -> float:
    """Largest level reached, counting every event (not only the merged steps)."""
    return float(np.max(np.cumsum(deltas), initial=0.0))


__all__ = [
    "DETAILS",
    "Coded",
    "IntArray",
    "LinkStats",
    "SimResult",
    "TierStats",
    "Transfer",
    "peak_of",
    "stepwise",
]
