"""`Store`: the resumable results of a sweep, in one SQLite file (WAL mode, one writer).

Every finished point is written at once, in its own transaction, by the process that
runs the sweep (workers never write). A row is keyed by the point's content key (a hash
of system spec, workload, policy, engine, memsim version and seed), so a sweep killed at
any moment — ``kill -9`` included — and started again skips what is stored, loses
nothing that was committed and writes no point twice.

The file also records the space the sweep explores; a store holds one space, and
opening it with another is refused.

>>> # store = Store("results.db"); store.bind(space); store.put(record, space)
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explore.evaluate import EvalRecord
from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write

if TYPE_CHECKING:
    import pandas as pd

    from explore.space import DesignSpace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    parameters TEXT NOT NULL,
    derived TEXT NOT NULL,
    objectives TEXT NOT NULL,
    metrics TEXT NOT NULL,
    provenance TEXT NOT NULL,
    elapsed_s REAL NOT NULL,
    written_at REAL NOT NULL
);
"""


def _json(obj: Any, *, sort: bool = True) -> str:
    return json.dumps(obj, sort_keys=sort, allow_nan=False, default=_finite)


def _finite(obj: Any) -> Any:  # numpy scalars
    return obj.item() if hasattr(obj, "item") else str(obj)


def _fidelity(doc: Any) -> str:
    engine = doc.get("engine", {}) if isinstance(doc, dict) else {}
    return str(engine.get("fidelity", "analytic"))


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


class Store:
    """One sweep's results. ``Store(path)`` creates the file if missing.

    Opening a path that is not a store (another SQLite file, a text file) is a
    :class:`SpecError`; so is a store of another space (:meth:`bind`).
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise SpecError([Problem("STORE", f"{self.path}: no such store")])
        if self.path.exists() and self.path.is_dir():
            raise SpecError([Problem("--store", f"{self.path} is a directory")])
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise SpecError(
                [Problem("", f"not a memsim sweep store: {err}")], source=str(path)
            ) from None

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the file)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the space --------------------------------------------------------------------

    def meta(self, name: str) -> Any:
        """A stored meta value (JSON-decoded), or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def bind(self, space: DesignSpace) -> None:
        """Record ``space`` in a new store; refuse a store that holds another space."""
        held = self.meta("space_digest")
        if held is None:
            with self._tx():
                for name, value in (
                    ("space_digest", space.digest),
                    ("space", space.doc),
                    ("source", space.source),
                    ("parameters", space.names()),
                    ("objectives", [[o.name, o.sense] for o in space.objectives]),
                ):
                    self._db.execute(  # the space keeps its order (parameters, derived)
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        (name, _json(value, sort=False)),
                    )
        elif held != space.digest:
            raise SpecError(
                [
                    Problem(
                        "--store",
                        f"{self.path} holds a sweep of another space ({self.meta('source')}, "
                        f"fidelity {_fidelity(self.meta('space'))}); a store holds "
                        "one space at one fidelity: give another --store, or delete this one",
                    )
                ]
            )

    def add_run(self, run: dict[str, Any]) -> None:
        """Append a sweep run (sampler, budget, seed) to the store's history."""
        runs = list(self.meta("runs") or [])
        if not runs or runs[-1] != run:
            runs.append(run)
            with self._tx():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('runs', ?)", (_json(runs),))

    def space(self) -> DesignSpace:
        """The space this store was made for, rebuilt from its stored document."""
        from explore.space import DesignSpace

        doc = self.meta("space")
        if doc is None:
            raise SpecError([Problem("", "the store holds no sweep yet")], source=str(self.path))
        source = str(self.meta("source") or self.path)
        return DesignSpace.from_dict(doc, base_dir=Path(source).parent, source=source)

    def objectives(self) -> list[tuple[str, str]]:
        """The stored objectives as (name, sense)."""
        return [(str(x[0]), str(x[1])) for x in (self.meta("objectives") or [])]

    def parameter_names(self) -> list[str]:
        """The stored parameter names, in the space's order."""
        return list(self.meta("parameters") or [])

    # ---- rows -------------------------------------------------------------------------

    def _tx(self) -> Any:
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: object, *rest: object) -> None:
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    def keys(self) -> set[str]:
        """Keys of every stored point."""
        return {r[0] for r in self._db.execute("SELECT key FROM points")}

    def __contains__(self, key: object) -> bool:
        return self._db.execute("SELECT 1 FROM points WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0])

    def put(self, record: EvalRecord, space: DesignSpace) -> bool:
        """Write ``record`` now (its own committed transaction); ``False`` if its key was
        already stored (the stored row is kept)."""
        objectives = record.objectives(space) if record.status == "ok" else {}
        cur = self._db.execute(
            "INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.key,
                record.index,
                record.status,
                record.message,
                _json(record.parameters),
                _json(_clean(record.derived)),
                _json(_clean(objectives)),
                _json(_clean(record.metrics)),
                _json(record.provenance),
                float(record.elapsed_s),
                time.time(),
            ),
        )
        return cur.rowcount == 1

    def records(self) -> Iterator[EvalRecord]:
        """Every stored point, in sweep order (by index, then key)."""
        for row in self._db.execute(
            "SELECT key, idx, status, message, parameters, derived, metrics, provenance, "
            "elapsed_s FROM points ORDER BY idx, key"
        ):
            yield EvalRecord(
                key=row[0],
                index=row[1],
                status=row[2],
                message=row[3],
                parameters=json.loads(row[4]),
                derived=json.loads(row[5]),
                metrics=json.loads(row[6]),
                provenance=json.loads(row[7]),
                elapsed_s=row[8],
            )

    def rows(self) -> list[dict[str, Any]]:
        """Every point as ``{"id", "key", "index", "status", "message", "parameters",
        "derived", "objectives", "metrics"}``, in sweep order."""
        out = []
        for row in self._db.execute(
            "SELECT key, idx, status, message, parameters, derived, objectives, metrics "
            "FROM points ORDER BY idx, key"
        ):
            out.append(
                {
                    "id": row[0][:12],
                    "key": row[0],
                    "index": row[1],
                    "status": row[2],
                    "message": row[3],
                    "parameters": json.loads(row[4]),
                    "derived": json.loads(row[5]),
                    "objectives": json.loads(row[6]),
                    "metrics": json.loads(row[7]),
                }
            )
        return out

    # ---- tables -----------------------------------------------------------------------

    def to_frame(self, *, metrics: bool = True) -> pd.DataFrame:
        """One row per point: ``id, index, status``, one column per parameter (its dotted
        path), derived value and objective, ``pareto`` (on the front of the objectives),
        then (``metrics=True``) every other metric and ``message``."""
        import pandas as pd

        from explore.pareto import front_ids

        params = self.parameter_names()
        objs = [n for n, _ in self.objectives()]
        records: list[dict[str, Any]] = []
        rows = self.rows()
        front = set(front_ids(rows, self.objectives()))
        for r in rows:
            rec: dict[str, Any] = {"id": r["id"], "index": r["index"], "status": r["status"]}
            rec.update({p: r["parameters"].get(p) for p in params})
            rec.update(r["derived"])
            rec.update({o: r["objectives"].get(o) for o in objs})
            rec["pareto"] = r["id"] in front
            if metrics:
                for k, v in r["metrics"].items():
                    if k not in rec:
                        rec[k] = v
                rec["message"] = r["message"]
            records.append(rec)
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            cols = ["id", "index", "status", *params, *objs, "pareto"]
            return pd.DataFrame(columns=cols)
        return frame

    def export(self, path: str | Path) -> Path:
        """Write the table to ``path``: ``.csv`` or ``.parquet`` (atomically)."""
        target = Path(path)
        frame = self.to_frame()
        if target.suffix == ".csv":
            return atomic_write(target, lambda f: frame.to_csv(f, index=False))
        if target.suffix in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:  # pragma: no cover - pyarrow is a dev dependency
                raise SpecError(
                    ["Parquet export needs pyarrow (pip install memsim[parquet])"]
                ) from None
            return atomic_write(target, lambda f: frame.to_parquet(f, index=False), binary=True)
        raise SpecError(
            [Problem("OUT", f"expected a .csv or .parquet path, found {target.name!r}")]
        )


def ok_rows(
    rows: Iterable[dict[str, Any]], objectives: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The rows evaluated ``ok`` with every objective a finite number."""
    out = []
    for r in rows:
        if r["status"] != "ok":
            continue
        vals = [r["objectives"].get(n) for n, _ in objectives]
        if all(isinstance(v, int | float) and math.isfinite(v) for v in vals):
            out.append(r)
    return out
