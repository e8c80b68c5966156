"""`sweep(space, store=...)`: evaluate a design space, resumably, on local processes or Dask.

The process that calls :func:`sweep` is the one writer of the store: workers evaluate
points and send records back; each is written in its own transaction as soon as it
arrives. Points whose key is stored are skipped, so a sweep that was killed resumes
where it stopped. Points that break a constraint are stored as ``infeasible`` without
being evaluated.

Execution: ``workers=1`` evaluates in this process; ``workers=N`` uses a
``ProcessPoolExecutor`` of N processes (each builds a workload's graph once and
reuses it across hardware points); ``scheduler="tcp://host:port"`` (or a
``distributed.Client``) sends the points to a Dask cluster.

>>> # from explore import DesignSpace, sweep
>>> # report = sweep(DesignSpace.from_yaml("space.yaml"), store="results.db", workers=2)
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explore.evaluate import EvalRecord, evaluate_jobs
from explore.space import DesignSpace, Job
from explore.store import Store
from explore.strategies import AdaptiveSampler, Sampler, make_sampler, need_budget
from hw_models.errors import Problem, SpecError

SCHEDULERS = ("local", "dask")


@dataclass(slots=True)
class SweepReport:
    """What a sweep did: counts of points and where they are."""

    store: str
    sampler: str
    points: int = 0
    evaluated: int = 0
    skipped: int = 0
    infeasible: int = 0
    invalid: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for a terminal."""
        return (
            f"{self.points} point(s): {self.evaluated} evaluated, {self.skipped} already stored, "
            f"{self.infeasible} infeasible, {self.invalid} invalid in {self.elapsed_s:.1f} s; "
            f"store {self.store}"
        )


class SweepInterruptedError(Exception):
    """Raised (from ``KeyboardInterrupt``) after the pool is shut down; carries the report."""

    def __init__(self, report: SweepReport) -> None:
        super().__init__(report.line())
        self.report = report


# ---- executors ------------------------------------------------------------------------

_WORKER_SPACE: list[DesignSpace] = []  # the space of this pool worker (set by its initializer)


def _init_worker(space: DesignSpace) -> None:
    # Ctrl-C reaches the whole process group: the sweep's process stops the pool and
    # says how to resume; its workers leave that to it instead of printing tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_SPACE[:] = [space]


def _run_local(jobs: list[Job]) -> list[EvalRecord]:
    return evaluate_jobs(_WORKER_SPACE[0], jobs)


class _Inline:
    """Evaluates in the calling process (``workers=1``)."""

    def __init__(self, space: DesignSpace) -> None:
        self.space = space
        self.slots = 1

    def submit(self, jobs: list[Job]) -> Any:
        f: cf.Future[list[EvalRecord]] = cf.Future()
        f.set_result(evaluate_jobs(self.space, jobs))
        return f

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        return set(pending), set()

    def result(self, fut: Any) -> list[EvalRecord]:
        return fut.result()

    def close(self, *, cancel: bool) -> None:
        pass


class _Pool:
    """A ``ProcessPoolExecutor``; each worker receives the space once, at start."""

    def __init__(self, space: DesignSpace, workers: int) -> None:
        self.slots = 2 * workers
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(space,)
        )

    def submit(self, jobs: list[Job]) -> Any:
        return self.pool.submit(_run_local, jobs)

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        done, rest = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return set(done), set(rest)

    def result(self, fut: Any) -> list[EvalRecord]:
        return fut.result()

    def close(self, *, cancel: bool) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _Dask:
    """A Dask ``distributed`` client; the space is scattered to every worker once."""

    def __init__(self, space: DesignSpace, scheduler: Any) -> None:
        try:
            import distributed
        except ImportError:  # pragma: no cover - the dask extra
            raise SpecError(
                [Problem("--scheduler", "Dask is not installed (pip install memsim[dask])")]
            ) from None
        self._distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self.own = scheduler, False
        else:
            try:
                self.client = distributed.Client(str(scheduler), timeout="10s")
            except (OSError, TimeoutError) as err:
                raise SpecError(
                    [Problem("--scheduler", f"cannot reach the Dask scheduler {scheduler}: {err}")]
                ) from None
            self.own = True
        threads = sum(self.client.nthreads().values()) or 1
        self.slots = 2 * threads
        self.space = self.client.scatter(space, broadcast=True)

    def submit(self, jobs: list[Job]) -> Any:
        return self.client.submit(evaluate_jobs, self.space, jobs, pure=False)

    def wait_any(self, pending: set[Any]) -> tuple[set[Any], set[Any]]:
        done, rest = self._distributed.wait(list(pending), return_when="FIRST_COMPLETED")
        return set(done), set(rest)

    def result(self, fut: Any) -> list[EvalRecord]:
        return fut.result()

    def close(self, *, cancel: bool) -> None:
        if self.own:
            self.client.close()


def _executor(space: DesignSpace, workers: int, scheduler: Any) -> Any:
    if scheduler is not None:
        return _Dask(space, scheduler)
    if workers <= 1:
        return _Inline(space)
    return _Pool(space, workers)


# ---- the sweep ------------------------------------------------------------------------


def _progress(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="pt",
        desc="sweep",
        disable=None if enabled is None else not enabled,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def _infeasible(job: Job, violated: Sequence[str]) -> EvalRecord:
    return EvalRecord(
        key=job.key,
        index=job.index,
        parameters=job.parameters,
        derived=job.derived,
        status="infeasible",
        message="constraint not met: " + "; ".join(violated),
    )


def _count(report: SweepReport, record: EvalRecord) -> None:
    if record.status == "ok":
        report.evaluated += 1
    elif record.status == "infeasible":
        report.infeasible += 1
    else:
        report.invalid += 1


def sweep(
    space: DesignSpace,
    *,
    store: str | Path | Store,
    sampler: str | None = None,
    budget: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: Any = None,
    chunk: int = 1,
    progress: bool | None = None,
    on_record: Callable[[EvalRecord], None] | None = None,
) -> SweepReport:
    """Evaluate ``space`` into ``store``; returns a :class:`SweepReport`.

    ``sampler``, ``budget`` and ``seed`` default to the space file's (then ``grid``,
    the whole grid, 0). ``workers`` defaults to the CPU count; ``scheduler`` is a Dask
    scheduler address or client. ``chunk`` points travel per task (more amortises the
    per-task cost of cheap points). ``progress``: ``None`` shows a bar on a terminal
    only. Ctrl-C raises :class:`SweepInterruptedError` once the workers are stopped; what
    was stored stays, and running the same sweep again resumes.
    """
    name = sampler or space.sampler or "grid"
    budget = budget if budget is not None else space.budget
    seed = space.seed if seed is None else seed
    if chunk < 1:
        raise SpecError([Problem("chunk", f"expected >= 1, found {chunk}")])
    smp = make_sampler(name, space, seed=seed, budget=budget)
    if smp.needs_budget:
        need_budget(name, budget)
    own = not isinstance(store, Store)
    st = Store(store) if not isinstance(store, Store) else store
    report = SweepReport(store=str(st.path), sampler=name)
    t0 = time.perf_counter()
    try:
        st.bind(space)
        st.add_run({"sampler": name, "budget": budget, "seed": seed})
        n_workers = workers if workers is not None else (os.cpu_count() or 1)
        if isinstance(smp, AdaptiveSampler):
            _adaptive(
                space, smp, st, report, budget or 0, seed, n_workers, scheduler, progress, on_record
            )
        else:
            _fixed(space, smp, st, report, seed, n_workers, scheduler, chunk, progress, on_record)
    except KeyboardInterrupt:
        report.interrupted = True
        raise SweepInterruptedError(report) from None
    finally:
        report.elapsed_s = time.perf_counter() - t0
        if own:
            st.close()
    return report


def _fixed(
    space: DesignSpace,
    smp: Sampler,
    st: Store,
    report: SweepReport,
    seed: int,
    workers: int,
    scheduler: Any,
    chunk: int,
    progress: bool | None,
    on_record: Callable[[EvalRecord], None] | None,
) -> None:
    done = st.keys()
    seen: set[str] = set()
    todo: list[Job] = []
    for i, point in enumerate(smp.points()):
        job = space.job(point, index=i, seed=seed)
        if job.key in seen:
            continue
        seen.add(job.key)
        if job.key in done:
            report.skipped += 1
            continue
        violated = space.violations(point, job.derived)
        if violated:
            rec = _infeasible(job, violated)
            st.put(rec, space)
            _count(report, rec)
            continue
        todo.append(job)
    report.points = len(seen)
    if not todo:
        return
    chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    ex = _executor(space, min(workers, len(chunks)), scheduler)
    bar = _progress(len(seen), len(seen) - len(todo), progress)
    pending: set[Any] = set()
    it = iter(chunks)
    try:
        while True:
            while len(pending) < ex.slots:
                nxt = next(it, None)
                if nxt is None:
                    break
                pending.add(ex.submit(nxt))
            if not pending:
                break
            finished, pending = ex.wait_any(pending)
            for fut in finished:
                for rec in ex.result(fut):
                    st.put(rec, space)
                    _count(report, rec)
                    bar.update(1)
                    if on_record is not None:
                        on_record(rec)
    finally:
        bar.close()
        ex.close(cancel=bool(pending))


def _values(space: DesignSpace, rec: EvalRecord) -> list[float] | None:
    if rec.status != "ok":
        return None
    objs = rec.objectives(space)
    vals = [objs[o.name] for o in space.objectives]
    return None if any(v is None for v in vals) else [float(v) for v in vals]  # type: ignore[arg-type]


def _adaptive(
    space: DesignSpace,
    smp: AdaptiveSampler,
    st: Store,
    report: SweepReport,
    budget: int,
    seed: int,
    workers: int,
    scheduler: Any,
    progress: bool | None,
    on_record: Callable[[EvalRecord], None] | None,
) -> None:
    stored = {rec.key: rec for rec in st.records()}
    for rec in stored.values():
        smp.replay(rec.parameters, _values(space, rec))
    report.skipped = len(stored)
    index = max((r.index for r in stored.values()), default=-1) + 1
    have = len(stored)
    ex = _executor(space, max(1, min(workers, budget)), scheduler) if have < budget else None
    bar = _progress(budget, min(have, budget), progress)
    asks, finished = 0, False
    try:
        while have < budget and asks < 10 * budget:
            batch: list[tuple[Any, Job]] = []
            pending: dict[Any, list[Any]] = {}
            for _ in range(min(max(1, workers), budget - have)):
                token, point = smp.ask()
                asks += 1
                job = space.job(point, index=index, seed=seed)
                if job.key in stored or any(j.key == job.key for _, j in batch):
                    prev = stored.get(job.key)
                    smp.tell(token, _values(space, prev) if prev is not None else None)
                    continue
                index += 1
                violated = space.violations(point, job.derived)
                if violated:
                    rec = _infeasible(job, violated)
                    _store(st, space, rec, stored, report, bar, on_record)
                    have += 1
                    smp.tell(token, None)
                    continue
                batch.append((token, job))
            assert ex is not None
            for token, job in batch:
                pending[ex.submit([job])] = [token, job]
            results: dict[str, EvalRecord] = {}
            waiting = set(pending)
            while waiting:
                finished, waiting = ex.wait_any(waiting)
                for fut in finished:
                    (rec,) = ex.result(fut)
                    results[rec.key] = rec
                    _store(st, space, rec, stored, report, bar, on_record)
                    have += 1
            for token, job in batch:  # tell in asking order: the same results, the same study
                smp.tell(token, _values(space, results[job.key]))
        report.points = len(stored)
        finished = True
    finally:
        bar.close()
        if ex is not None:
            ex.close(cancel=not finished)


def _store(
    st: Store,
    space: DesignSpace,
    rec: EvalRecord,
    stored: dict[str, EvalRecord],
    report: SweepReport,
    bar: Any,
    on_record: Callable[[EvalRecord], None] | None,
) -> None:
    st.put(rec, space)
    stored[rec.key] = rec
    _count(report, rec)
    bar.update(1)
    if on_record is not None:
        on_record(rec)
