"""``ServeResult``: per-request and per-iteration tables and the summary of a serving run.

Metric names follow the serving literature (Vidur, DistServe, Sarathi-Serve):

* TTFT, time to first token: first token's time minus arrival (queueing included);
* TBT, time between tokens: every gap between two consecutive tokens of a request
  (the percentiles are over all gaps; a preemption stall is one long gap);
* E2E, end-to-end latency: last token's time minus arrival;
* goodput: completed requests per second that met both SLOs (TTFT <= ``slo_ttft_s``
  and the request's mean TBT <= ``slo_tbt_s``; an SLO not given always holds);
* ``mean_in_system``: time average of the requests in the system (waiting,
  running or swapped), sampled by the engine at each iteration's start, over
  the run (first arrival to last departure). Little's law says it equals
  throughput x mean E2E; the tests check that it does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: the summary keys ``memsim serve --format json`` promises (docs/serving.md)
SUMMARY_KEYS: tuple[str, ...] = (
    "requests",
    "completed",
    "dropped",
    "generated_tokens",
    "duration_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "tbt_p50_s",
    "tbt_p99_s",
    "e2e_mean_s",
    "e2e_p50_s",
    "e2e_p99_s",
    "throughput_tokens_per_s",
    "goodput_requests_per_s",
    "mean_in_system",
    "preemptions",
    "swapped_bytes",
    "peak_kv_bytes",
)


def _pct(x: FloatArray, q: float) -> float | None:
    return float(np.percentile(x, q)) if len(x) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeResult:
    """What :func:`memsim.serving.serve` returns: two tables (columns as arrays) and context.

    ``requests`` has one row per request (``rid``, ``arrival_s``, ``prompt_len``,
    ``output_len``, ``dropped``, ``first_token_s``, ``finish_s``, ``ttft_s``,
    ``e2e_s``, ``queue_s``, ``tbt_mean_s``, ``preemptions``,
    ``swapped_bytes``; times of dropped requests are NaN). ``iterations`` has
    one row per iteration (``start_s``, ``duration_s``, ``compute_s``,
    ``swap_s``, token and sequence counts, KV blocks and bytes in use,
    queue lengths, ``in_system``, preemptions and swapped bytes).
    ``kv_utilization`` is allocated blocks / pool blocks; ``kv_fragmentation``
    the share of allocated token slots not holding a token (internal
    fragmentation: the last block of each paged request, the unused part of each
    contiguous reservation).
    """

    requests: Mapping[str, np.ndarray[Any, Any]]
    iterations: Mapping[str, np.ndarray[Any, Any]]
    tbt_s: FloatArray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def requests_frame(self) -> Any:
        """The per-request table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(dict(self.requests))

    def iterations_frame(self) -> Any:
        """The per-iteration table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(dict(self.iterations))

    def summary(self) -> dict[str, Any]:
        """Headline figures (every key of :data:`SUMMARY_KEYS`, plus ``meta``)."""
        r, it = self.requests, self.iterations
        done = ~r["dropped"]
        ttft = r["ttft_s"][done]
        e2e = r["e2e_s"][done]
        completed = int(done.sum())
        if completed:
            start = float(r["arrival_s"][done].min())
            duration = float(r["finish_s"][done].max()) - start
        else:
            start, duration = 0.0, 0.0
        generated = int(r["output_len"][done].sum())
        slo_ttft = self.meta.get("slo_ttft_s")
        slo_tbt = self.meta.get("slo_tbt_s")
        good = np.ones(completed, dtype=bool)
        if slo_ttft is not None:
            good &= ttft <= slo_ttft
        if slo_tbt is not None:
            tbt_mean = r["tbt_mean_s"][done]
            good &= np.nan_to_num(tbt_mean, nan=0.0) <= slo_tbt
        if len(it["start_s"]) and duration > 0:
            area = float(np.sum(it["in_system"] * it["duration_s"]))
            mean_in_system = area / duration
        else:
            mean_in_system = 0.0
        kv_bytes = it["kv_bytes"] if len(it["start_s"]) else np.zeros(1)
        out: dict[str, Any] = {
            "requests": len(r["rid"]),
            "completed": completed,
            "dropped": int((~done).sum()),
            "generated_tokens": generated,
            "duration_s": duration,
            "ttft_p50_s": _pct(ttft, 50),
            "ttft_p90_s": _pct(ttft, 90),
            "ttft_p99_s": _pct(ttft, 99),
            "tbt_p50_s": _pct(self.tbt_s, 50),
            "tbt_p90_s": _pct(self.tbt_s, 90),
            "tbt_p99_s": _pct(self.tbt_s, 99),
            "e2e_mean_s": float(e2e.mean()) if completed else None,
            "e2e_p50_s": _pct(e2e, 50),
            "e2e_p90_s": _pct(e2e, 90),
            "e2e_p99_s": _pct(e2e, 99),
            "queue_mean_s": float(r["queue_s"][done].mean()) if completed else None,
            "throughput_tokens_per_s": generated / duration if duration > 0 else None,
            "throughput_requests_per_s": completed / duration if duration > 0 else None,
            "goodput_requests_per_s": int(good.sum()) / duration if duration > 0 else None,
            "slo_attainment": float(good.mean()) if completed else None,
            "mean_in_system": mean_in_system,
            "preemptions": int(r["preemptions"].sum()),
            "swapped_bytes": float(r["swapped_bytes"].sum()),
            "peak_kv_bytes": float(kv_bytes.max()),
            "mean_kv_utilization": (
                float(np.mean(it["kv_utilization"])) if len(it["start_s"]) else None
            ),
            "mean_kv_fragmentation": (
                float(np.mean(it["kv_fragmentation"])) if len(it["start_s"]) else None
            ),
            "iterations": len(it["start_s"]),
            "meta": dict(self.meta),
        }
        return out

    def write(self, out: Path, *, parquet: bool | None = None) -> list[str]:
        """Write ``summary.json``, ``requests.csv`` and ``iterations.csv`` into ``out``
        (and ``.parquet`` copies when pyarrow is installed and ``parquet`` is not False).

        Returns the file names written. The caller makes ``out`` atomic (a temporary
        directory renamed into place).
        """
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(_clean(self.summary()), indent=2) + "\n")
        written = ["summary.json"]
        for name, frame in (
            ("requests", self.requests_frame()),
            ("iterations", self.iterations_frame()),
        ):
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(f"{name}.csv")
            if parquet is not False and _has_pyarrow():
                frame.to_parquet(out / f"{name}.parquet", index=False)
                written.append(f"{name}.parquet")
        return written


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become null."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None
