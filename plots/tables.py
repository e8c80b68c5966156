"""The tables a plot reads, from a live ``SimResult`` or from a ``memsim run --out`` folder.

Plot functions accept a ``SimResult``, a :class:`RunTables` or the one DataFrame they
need. ``RunTables`` is the common form: every table of the SimResult contract, any of
which may be missing (a result folder holds only some of them), plus the summary
and, where known, the ``hw_models.System``.

Columns (exactly those of ``memsim.result``):

* ``ops``: ``op, name, kind, phase, layer, step, stage, device, unit, dtype, start_s,
  end_s, duration_s, flops, bytes_read, bytes_written, intensity_flop_per_byte, bound``
* ``traffic``: ``op, resource, bytes_read, bytes_written``
* ``tiers``: ``tier, kind, capacity_bytes, instances, bytes_read, bytes_written, busy_s,
  peak_bytes, energy_j, peak_bandwidth_bytes_per_s``
* ``links``: ``link, kind, bytes, busy_s, energy_j, bandwidth_bytes_per_s``
* ``occupancy``: ``time_s, tier, bytes, capacity_bytes``
* ``timeline``: ``resource, resource_kind, start_s, end_s, label, phase``
* ``energy``: ``component, tensor_kind, phase, energy_j``
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hw_models.errors import Problem, SpecError
from hw_models.fileio import read_bytes_bounded

TABLES = ("ops", "traffic", "tiers", "links", "occupancy", "timeline", "energy")

#: Largest ``summary.json`` read (a run writes a few kB).
MAX_SUMMARY_BYTES = 16 << 20
#: Largest table or trace file read (a 70B, 32K-prompt event run writes a 327 MB timeline).
MAX_TABLE_BYTES = 2 << 30
#: keys every ``summary.json`` of ``memsim run --out`` has
SUMMARY_KEYS = ("makespan_s", "meta")
#: required columns that hold numbers (besides those with a unit suffix)
NUMERIC_COLUMNS = ("flops", "bytes", "bytes_read", "bytes_written")
NUMERIC_SUFFIXES = ("_s", "_bytes", "_j")

REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "ops": ("phase", "start_s", "end_s", "duration_s", "flops", "bound"),
    "traffic": ("op", "resource", "bytes_read", "bytes_written"),
    "tiers": ("tier", "kind"),
    "links": ("link", "kind"),
    "occupancy": ("time_s", "tier", "bytes", "capacity_bytes"),
    "timeline": ("resource", "resource_kind", "start_s", "end_s", "phase"),
    "energy": ("component", "tensor_kind", "phase", "energy_j"),
}


def _check_ops_total(ops: pd.DataFrame | None, summary: dict[str, Any], root: Path) -> None:
    """A row-complete ``ops`` table must add up to the summary's FLOPs.

    The table lists one device's share of each op, so the summary's total is a whole
    multiple of it (the tensor- and data-parallel ranks, dividing ``meta.devices``). A
    table cut at a row boundary parses cleanly, but its FLOPs then fall short of every
    such multiple (unless only zero-FLOP ops were lost).
    """
    want = summary.get("flops")
    if ops is None or "flops" not in ops.columns or isinstance(want, bool):
        return
    if not isinstance(want, int | float) or not math.isfinite(want) or want <= 0:
        return
    got = float(ops["flops"].sum())
    meta = summary.get("meta")
    devices = meta.get("devices", 1) if isinstance(meta, dict) else 1
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        devices = 1
    ranks = round(float(want) / got) if got > 0 else 0
    whole = 1 <= ranks <= devices and devices % ranks == 0
    if whole and math.isclose(got * ranks, float(want), rel_tol=1e-6):
        return
    raise SpecError(
        [
            Problem(
                "ops",
                f"its {len(ops)} rows hold {got:.6g} FLOPs but summary.json says "
                f"{float(want):.6g} over {devices} device(s): the table is truncated or "
                "from another run",
            )
        ],
        source=str(root),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTables:
    """The tables of one run; any may be ``None``. Build with :meth:`of` or :meth:`from_dir`."""

    ops: pd.DataFrame | None = None
    traffic: pd.DataFrame | None = None
    tiers: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    occupancy: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None
    energy: pd.DataFrame | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    system: Any = None  # hw_models.System, when known
    source: str = "result"

    @classmethod
    def of(cls, data: Any) -> RunTables:
        """``data`` as RunTables: a RunTables, or anything with the SimResult table views."""
        if isinstance(data, RunTables):
            return data
        if not hasattr(data, "ops_frame"):
            raise TypeError(f"expected a SimResult or RunTables, found {type(data).__name__}")
        frames = {name: getattr(data, f"{name}_frame")() for name in TABLES}
        return cls(**frames, summary=dict(data.summary()), system=getattr(data, "system", None))

    @classmethod
    def from_dir(cls, path: str | Path, *, system: Any = None) -> RunTables:
        """Read a ``memsim run --out`` folder: ``summary.json`` plus whichever of
        ``ops.csv``, ``traffic.csv``, ``tiers.csv``, ``links.csv``, ``occupancy.csv``,
        ``timeline.csv``, ``energy.csv`` exist; the timeline falls back to ``trace.json``.

        ``system`` (a ``hw_models.System``) is used for ceilings; without it the system
        named in the summary is loaded if it is a shipped preset with the same spec hash.
        A missing folder or summary, or an unreadable table, is a :class:`SpecError`.
        """
        root = Path(path)
        if not root.is_dir():
            raise SpecError([Problem("RESULT_DIR", f"{root} is not a directory")])
        summary = read_summary(root)
        frames: dict[str, pd.DataFrame | None] = {}
        for name in TABLES:
            csv, parquet = root / f"{name}.csv", root / f"{name}.parquet"
            if csv.exists():
                frames[name] = _read_csv(csv, name)
            elif parquet.exists():
                frames[name] = _read_parquet(parquet, name)
            else:
                frames[name] = None
        _check_ops_total(frames["ops"], summary, root)
        if frames["timeline"] is None and (root / "trace.json").exists():
            frames["timeline"] = timeline_from_chrome_trace(root / "trace.json")
        if system is None:
            system = _preset_system(summary)
        return cls(**frames, summary=summary, system=system, source=str(root))

    def need(self, name: str) -> pd.DataFrame:
        """Table ``name``; :class:`SpecError` naming the file if this run lacks it."""
        frame = getattr(self, name)
        if frame is None:
            raise SpecError(
                [
                    Problem(
                        f"{name}.csv",
                        f"{self.source} has no {name} table; rerun "
                        "`memsim run --out DIR` or pass --system/--model",
                    )
                ]
            )
        return frame

    def resource_kinds(self) -> dict[str, str]:
        """``{"tier:<name>": kind, "link:<name>": kind}`` from the tier/link tables or system."""
        kinds: dict[str, str] = {}
        if self.system is not None:
            kinds |= {f"tier:{n}": t.kind for n, t in self.system.tiers.items()}
            kinds |= {f"link:{n}": lk.kind for n, lk in self.system.links.items()}
        if self.tiers is not None:
            kinds |= {
                f"tier:{t}": str(k)
                for t, k in zip(self.tiers["tier"], self.tiers["kind"], strict=True)
            }
        if self.links is not None:
            kinds |= {
                f"link:{n}": str(k)
                for n, k in zip(self.links["link"], self.links["kind"], strict=True)
            }
        return kinds

    def tier_kinds(self) -> dict[str, str]:
        """``{tier name: kind}``."""
        return {k[5:]: v for k, v in self.resource_kinds().items() if k.startswith("tier:")}


def check_columns(frame: pd.DataFrame, columns: Iterable[str], *, table: str) -> None:
    """:class:`SpecError` listing every column of ``columns`` missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SpecError(
            [
                Problem(table, f"missing column {c!r} (has: {', '.join(map(str, frame.columns))})")
                for c in missing
            ]
        )


def frame_of(data: Any, name: str) -> pd.DataFrame:
    """Table ``name`` from a SimResult, a RunTables or a DataFrame, with its columns checked."""
    frame = data if isinstance(data, pd.DataFrame) else RunTables.of(data).need(name)
    check_columns(frame, REQUIRED_COLUMNS[name], table=name)
    return frame


def read_summary(root: Path) -> dict[str, Any]:
    """``root/summary.json`` as a dict; :class:`SpecError` if missing or not a JSON object."""
    path = root / "summary.json"
    if not path.exists():
        raise SpecError(
            [
                Problem(
                    "summary.json", f"{root} has no summary.json (not a `memsim run --out` folder?)"
                )
            ]
        )
    raw = read_bytes_bounded(path, limit=MAX_SUMMARY_BYTES, what="summary.json")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SpecError(
            [Problem("summary.json", f"not valid JSON: {err}")], source=str(path)
        ) from None
    if not isinstance(data, dict):
        raise SpecError([Problem("summary.json", "expected a JSON object")], source=str(path))
    problems = [
        Problem(f"summary.json.{key}", "required key is missing (not a memsim run summary?)")
        for key in SUMMARY_KEYS
        if key not in data
    ]
    makespan = data.get("makespan_s")
    if "makespan_s" in data and (
        isinstance(makespan, bool)
        or not isinstance(makespan, int | float)
        or not math.isfinite(makespan)
        or makespan < 0
    ):
        problems.append(
            Problem("summary.json.makespan_s", f"expected seconds >= 0, found {makespan!r:.60}")
        )
    if "meta" in data and not isinstance(data["meta"], dict):
        problems.append(Problem("summary.json.meta", "expected a JSON object"))
    if problems:
        raise SpecError(problems, source=str(path))
    return data


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    raw = read_bytes_bounded(path, limit=MAX_TABLE_BYTES, what=path.name)
    if raw and not raw.endswith(b"\n"):
        raise SpecError(
            [Problem(path.name, "truncated: the last line is incomplete (no final newline)")],
            source=str(path),
        )
    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpecError([Problem(path.name, f"cannot read: {err}")], source=str(path)) from None
    return _checked(frame, name, path)


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    raw = read_bytes_bounded(path, limit=MAX_TABLE_BYTES, what=path.name)
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as err:  # pyarrow raises its own types for a damaged file
        raise SpecError([Problem(path.name, f"cannot read: {err}")], source=str(path)) from None
    return _checked(frame, name, path)


def _checked(frame: pd.DataFrame, name: str, path: Path) -> pd.DataFrame:
    """The table with its required columns present and its numeric columns numbers."""
    check_columns(frame, REQUIRED_COLUMNS[name], table=path.name)
    problems = []
    for col in REQUIRED_COLUMNS[name] if len(frame) else ():  # header only: no rows to check
        if not col.endswith(NUMERIC_SUFFIXES) and col not in NUMERIC_COLUMNS:
            continue
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            problems.append(Problem(f"{path.name}.{col}", "expected numbers in every row"))
        elif values.isna().any():
            row = int(values.isna().to_numpy().argmax()) + 2  # 1-based, after the header
            problems.append(Problem(f"{path.name}.{col}", f"line {row}: value is missing"))
    if problems:
        raise SpecError(problems, source=str(path))
    return frame


def _preset_system(summary: Mapping[str, Any]) -> Any:
    meta = summary.get("meta") or {}
    name = meta.get("system") if isinstance(meta, Mapping) else None
    if isinstance(name, Mapping):
        name = name.get("name")
    if not isinstance(name, str):
        return None
    from hw_models import load_system, system_names
    from hw_models.loader import normalize_name

    if normalize_name(name) not in system_names():
        return None
    system = load_system(name)
    want = meta.get("spec_hash") or meta.get("system_hash")
    return system if want in (None, system.spec_hash) else None


def timeline_from_chrome_trace(path: Path) -> pd.DataFrame:
    """The timeline table from a Chrome/Perfetto trace: complete (``"ph": "X"``) events.

    The resource is the thread name (``"M"`` ``thread_name`` metadata) or the ``tid``;
    ``resource_kind`` and ``phase`` come from the event's ``args`` (or ``cat``);
    ``ts``/``dur`` are microseconds.
    """
    raw = read_bytes_bounded(path, limit=MAX_TABLE_BYTES, what=path.name)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SpecError([Problem(path.name, f"not valid JSON: {err}")], source=str(path)) from None
    events = doc.get("traceEvents", []) if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        raise SpecError([Problem(path.name, "expected a list of trace events")], source=str(path))
    names: dict[tuple[Any, Any], str] = {}
    for ev in events:
        if isinstance(ev, dict) and ev.get("ph") == "M" and ev.get("name") == "thread_name":
            names[(ev.get("pid"), ev.get("tid"))] = str((ev.get("args") or {}).get("name"))
    rows = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get("ph") != "X":
            continue
        args = ev.get("args") or {}
        key = (ev.get("pid"), ev.get("tid"))
        resource = args.get("resource") or names.get(key) or str(ev.get("tid"))
        start = float(ev.get("ts", 0.0)) * 1e-6
        dur = float(ev.get("dur", 0.0)) * 1e-6
        if not math.isfinite(start) or not math.isfinite(dur):
            continue
        rows.append(
            {
                "resource": resource,
                "resource_kind": args.get("resource_kind") or _guess_kind(resource, ev),
                "start_s": start,
                "end_s": start + dur,
                "label": ev.get("name", ""),
                "phase": args.get("phase") or ev.get("cat") or "",
            }
        )
    return pd.DataFrame(rows, columns=[*REQUIRED_COLUMNS["timeline"], "label"])


def _guess_kind(resource: str, ev: Mapping[str, Any]) -> str:
    text = f"{resource} {ev.get('cat', '')}".lower()
    if "dma" in text:
        return "dma"
    if "channel" in text or text.startswith(("tier:", "link:")):
        return "channel"
    return "compute"
