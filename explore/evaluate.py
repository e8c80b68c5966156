"""Evaluators: a :class:`~explore.space.Job` in, an :class:`EvalRecord` out.

Evaluators are registered by name (``evaluator:`` in a space file):

* ``simulate`` (default) loads the system with the point's overrides, builds (or
  reuses) the workload graph and calls :func:`memsim.simulate`, which places the
  tensors first: a point whose tensors do not fit is ``infeasible`` (a
  ``CapacityError`` before anything is scheduled). Its metrics are every number of
  ``SimResult.summary()``.
* ``formula`` computes metrics from the space's ``formulas`` (expressions over the
  parameters): synthetic spaces with known answers, and overhead benchmarks.

* ``serve`` serves a stream of requests with :func:`memsim.serving.serve` (continuous
  batching, paged KV) on the point's system; its metrics are ``ServeResult.summary()``.

Another evaluator registers itself the same way (:func:`register_evaluator`).

Each worker (process, or thread of a Dask worker) keeps one evaluator per space in
:func:`worker_evaluator`; it holds the caches that make a point cheap once its
workload was built: graphs by workload, model configs, and the simulator's own
:class:`memsim.memo.SimCache` (compiled graphs, layouts, fitted graphs). The caches
never change a result: they hold immutable values keyed by everything that defines them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from explore.objective import flatten_metrics
from hw_models.errors import Problem, SpecError
from memsim.registry import Registry

if TYPE_CHECKING:
    from explore.space import DesignSpace, Job

STATUSES = ("ok", "infeasible", "invalid")
"""``ok``: evaluated; ``infeasible``: a constraint or capacity refused it before
simulation; ``invalid``: the point's specification was refused (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalRecord:
    """The outcome of one point: the record stores, sweeps, RL and plots share."""

    key: str
    index: int
    parameters: dict[str, Any]
    derived: dict[str, Any]
    status: str
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def id(self) -> str:
        """The short id of the point (the first 12 hex digits of its key)."""
        return self.key[:12]

    def objectives(self, space: DesignSpace) -> dict[str, float | None]:
        """The space's objectives for this point (derived values count as metrics)."""
        values = {**self.metrics, **self.derived}
        return {o.name: o.value(values) for o in space.objectives}


class BaseEvaluator:
    """What every evaluator provides (subclass and :func:`register_evaluator`)."""

    sections: ClassVar[frozenset[str]] = frozenset()
    """Parameter roots it understands: system, workload, policy, engine, serve, or free."""

    def __init__(self, space: DesignSpace) -> None:
        self.space = space

    @classmethod
    def check_space(cls, space: DesignSpace) -> None:
        """Refuse a space this evaluator cannot run (unknown objectives, bad values)."""
        known = cls.known_metrics(space)
        derived = {name for name, _ in space.derived}
        bad = [
            Problem(f"objectives.{o.name}", f"unknown metric (known: {', '.join(sorted(known))})")
            for o in space.objectives
            if o.name not in derived and not _known(o.name, known)
        ]
        if bad:
            raise SpecError(bad)

    @classmethod
    def known_metrics(cls, space: DesignSpace) -> set[str]:
        """Metric names the evaluator reports (``tiers.*`` style prefixes end with ``.*``)."""
        return set()

    @classmethod
    def key_payload(cls, space: DesignSpace, job: Job) -> dict[str, Any]:
        """What the point's key hashes: everything that decides its result."""
        raise NotImplementedError

    def evaluate(self, job: Job) -> EvalRecord:
        """Evaluate one job (never raises for a bad point: the record says why)."""
        raise NotImplementedError


def _known(name: str, known: set[str]) -> bool:
    return name in known or any(k.endswith(".*") and name.startswith(k[:-1]) for k in known)


EVALUATORS: Registry[type[BaseEvaluator]] = Registry("evaluator")


def register_evaluator(name: str, cls: type[BaseEvaluator]) -> None:
    """Register an evaluator class under ``name`` (``evaluator: name`` in a space)."""
    EVALUATORS.add(name, lambda: cls)


def evaluator_class(name: str, *, error_path: str = "") -> type[BaseEvaluator]:
    """The evaluator class registered as ``name``; :class:`SpecError` listing the known."""
    return EVALUATORS.create(name, error_path=error_path)


# ---- simulate -----------------------------------------------------------------------

SIM_METRICS = {
    "makespan_s",
    "ttft_s",
    "tpot_s",
    "tokens_per_s",
    "energy_j",
    "energy_per_token_j",
    "mfu",
    "achieved_bandwidth_bytes_per_s",
    "flops",
    "offchip_bytes",
    "tiers.*",
    "bound_time_s.*",
}


class SimulateEvaluator(BaseEvaluator):
    """``memsim.simulate`` of a generation request on the point's system."""

    sections = frozenset({"system", "workload", "policy", "engine"})
    graph_cache_size = 4

    def __init__(self, space: DesignSpace) -> None:
        from memsim.memo import SimCache

        super().__init__(space)
        self._graphs: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._models: dict[str, Any] = {}
        self.cache = SimCache()
        """The simulator's caller-owned cache (compiled graphs, layouts, DRAM
        calibrations, fitted graphs), one per worker: results are bit-identical with
        or without it."""

    @classmethod
    def known_metrics(cls, space: DesignSpace) -> set[str]:
        """The numbers of ``SimResult.summary()``."""
        return set(SIM_METRICS)

    @classmethod
    def check_space(cls, space: DesignSpace) -> None:
        """Objectives, a system, and each system parameter's extreme values loadable."""
        from explore.space import check_system_values

        super().check_space(space)
        if not space.system_docs:
            raise SpecError([Problem("system", "the simulate evaluator needs a system")])
        check_system_values(space)

    @classmethod
    def key_payload(cls, space: DesignSpace, job: Job) -> dict[str, Any]:
        """System (document digest + overrides), workload, policy, engine, version, seed."""
        import memsim

        preset = str(job.system)
        return {
            "evaluator": "simulate",
            "system": {"digest": space.system_digests[preset], "overrides": job.system_overrides},
            "workload": job.workload,
            "policy": job.policy or "fastest_fit",
            "engine": job.engine,
            "version": memsim.__version__,
            "seed": job.seed,
        }

    def _graph(self, w: Mapping[str, Any]) -> Any:
        """The workload's graph, built once per worker (hardware-dependent options such as
        the attention buffer are left open: ``simulate`` fits them per system)."""
        import workloads

        key = tuple(sorted((k, repr(v)) for k, v in w.items()))
        graph = self._graphs.get(key)
        if graph is not None:
            self._graphs.move_to_end(key)
            return graph
        model = str(w["model"])
        cfg = self._models.get(model)
        if cfg is None:
            cfg = self._models[model] = workloads.load_model(model)
        opts: dict[str, Any] = {
            "dtype": w["dtype"],
            "kv_dtype": w["kv_dtype"],
            "tp": int(w["tp"]),
            "pp": int(w["pp"]),
            "attention": w["attention"],
        }
        batch = int(w["batch"])
        if w["kind"] == "prefill":
            graph = workloads.prefill(cfg, batch=batch, prompt_len=int(w["prompt"]), **opts)
        elif w["kind"] == "decode":
            graph = workloads.decode(cfg, batch=batch, context_len=int(w["prompt"]), **opts)
        else:
            graph = workloads.generate(
                cfg, batch=batch, prompt_len=int(w["prompt"]), gen_len=int(w["gen"]), **opts
            )
        self._graphs[key] = graph
        while len(self._graphs) > self.graph_cache_size:
            self._graphs.popitem(last=False)
        return graph

    def evaluate(self, job: Job) -> EvalRecord:
        """Load, build, place (capacity checked first), simulate."""
        from hw_models.loader import load_system_dict
        from memsim.policies import CapacityError
        from memsim.simulate import simulate

        t0 = time.perf_counter()
        base: dict[str, Any] = dict(
            key=job.key, index=job.index, parameters=job.parameters, derived=job.derived
        )
        preset = str(job.system)
        doc = self.space.system_docs[preset]
        try:
            system = load_system_dict(doc, source=preset, overrides=job.system_overrides)
            w = job.workload
            if int(w["tp"]) * int(w["pp"]) > system.devices:
                raise SpecError(
                    [
                        Problem(
                            "workload.tp",
                            f"{system.name} has {system.devices} device(s), cannot run "
                            f"tp={w['tp']} x pp={w['pp']}",
                        )
                    ]
                )
            graph = self._graph(w)
            # placement comes first inside simulate(): tensors that do not fit raise
            # CapacityError before anything is scheduled
            result = simulate(
                system,
                graph,
                policy=job.policy,
                fidelity=str(job.engine["fidelity"]),
                execution=job.engine.get("execution"),
                seed=job.seed,
                dram_config=job.engine.get("dram_config") or None,
                cache=self.cache,
                detail="summary",  # a record keeps the summary only: no per-op tables
            )
        except CapacityError as err:
            return EvalRecord(
                **base, status="infeasible", message=str(err), elapsed_s=time.perf_counter() - t0
            )
        except SpecError as err:
            return EvalRecord(
                **base, status="invalid", message=str(err), elapsed_s=time.perf_counter() - t0
            )
        summary = result.summary()
        meta = summary.get("meta", {})
        provenance = {
            k: meta.get(k)
            for k in ("system", "system_hash", "model", "graph_hash", "version", "fidelity")
        }
        provenance.update(policy=meta.get("policy"), execution=meta.get("execution"))
        return EvalRecord(
            **base,
            status="ok",
            metrics=flatten_metrics(summary),
            provenance=provenance,
            elapsed_s=time.perf_counter() - t0,
        )


# ---- formula --------------------------------------------------------------------------


class FormulaEvaluator(BaseEvaluator):
    """Metrics computed by the space's ``formulas`` from its parameters (no simulation)."""

    sections = frozenset({"free"})

    @classmethod
    def known_metrics(cls, space: DesignSpace) -> set[str]:
        """The formula names."""
        return {name for name, _ in space.formulas}

    @classmethod
    def check_space(cls, space: DesignSpace) -> None:
        """Formulas given, reading only parameters, derived values, prices and earlier formulas."""
        if not space.formulas:
            raise SpecError([Problem("formulas", "the formula evaluator needs `formulas`")])
        known = set(space.names()) | {n for n, _ in space.derived}
        known |= {f"prices.{k}" for k in space.prices}
        problems = []
        for name, expr in space.formulas:
            problems += [
                Problem(expr.path, f"unknown name {n!r}") for n in expr.names if n not in known
            ]
            known.add(name)
        if problems:
            raise SpecError(problems)
        super().check_space(space)

    @classmethod
    def key_payload(cls, space: DesignSpace, job: Job) -> dict[str, Any]:
        """Parameters, formulas, version and seed."""
        import memsim

        return {
            "evaluator": "formula",
            "parameters": job.parameters,
            "formulas": [(n, e.text) for n, e in space.formulas],
            "prices": space.prices,
            "version": memsim.__version__,
            "seed": job.seed,
        }

    def evaluate(self, job: Job) -> EvalRecord:
        """Evaluate the formulas in order."""
        t0 = time.perf_counter()
        values: dict[str, Any] = {**job.parameters, **job.derived}
        values.update({f"prices.{k}": v for k, v in self.space.prices.items()})
        metrics: dict[str, float] = {}
        base: dict[str, Any] = dict(
            key=job.key, index=job.index, parameters=job.parameters, derived=job.derived
        )
        try:
            for name, expr in self.space.formulas:
                metrics[name] = values[name] = float(expr.evaluate(values.__getitem__))
        except SpecError as err:
            return EvalRecord(**base, status="invalid", message=str(err))
        return EvalRecord(**base, status="ok", metrics=metrics, elapsed_s=time.perf_counter() - t0)


# ---- serve ----------------------------------------------------------------------------

SERVE_REQUEST_DEFAULTS: dict[str, Any] = {
    "arrival": "poisson:4",
    "rate": None,
    "requests": 200,
    "prompt_len": "fixed:512",
    "output_len": "fixed:128",
}
"""The request side of a ``serve:`` section: an arrival spec (``poisson:RATE``,
``gamma:RATE:CV``, ``trace:FILE``), ``rate`` (when given, ``poisson:<rate>``: sweep
the arrival rate as a number), the request count and the length specs."""
SERVE_ALIASES = {"max_batched_tokens": "max_num_batched_tokens"}
_FROM_WORKLOAD = ("dtype", "kv_dtype", "tp", "attention")


def _serve_config_fields() -> set[str]:
    import dataclasses

    from memsim.serving import ServeConfig

    taken = {*_FROM_WORKLOAD, "fidelity", "bucketing"}
    return {f.name for f in dataclasses.fields(ServeConfig)} - taken


class ServeEvaluator(BaseEvaluator):
    """:func:`memsim.serving.serve`: requests served on the point's system.

    The ``serve:`` section (and ``serve.<field>`` parameters) holds the requests
    (:data:`SERVE_REQUEST_DEFAULTS`) and any :class:`memsim.serving.ServeConfig` field
    (``scheduler``, ``block_size``, ``max_num_batched_tokens`` — or its CLI name
    ``max_batched_tokens`` —, ``kv_swap_tier``, ``num_kv_blocks``, SLOs...). The model,
    dtypes, ``tp`` and attention come from ``workload``, the fidelity from ``engine``.
    A point whose weights leave no room for a KV block is ``infeasible`` before any
    request is served. Metrics: ``ServeResult.summary()`` (``ttft_p99_s``,
    ``tbt_p99_s``, ``throughput_tokens_per_s``, ``goodput_requests_per_s``...).
    """

    sections = frozenset({"system", "workload", "engine", "serve"})

    def __init__(self, space: DesignSpace) -> None:
        super().__init__(space)
        self._models: dict[str, Any] = {}
        self._requests: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def known_metrics(cls, space: DesignSpace) -> set[str]:
        """The numbers of ``ServeResult.summary()``."""
        from memsim.serving import SUMMARY_KEYS

        return set(SUMMARY_KEYS)

    @classmethod
    def settings(cls, serve: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(request settings with defaults, ServeConfig fields) of a serve section; a
        :class:`SpecError` names an unknown field."""
        allowed = _serve_config_fields()
        req = dict(SERVE_REQUEST_DEFAULTS)
        cfg: dict[str, Any] = {}
        bad = []
        for key, value in (serve or {}).items():
            name = SERVE_ALIASES.get(key, key)
            if name in req:
                req[name] = value
            elif name in allowed:
                cfg[name] = value
            else:
                known = ", ".join(sorted({*SERVE_REQUEST_DEFAULTS, *allowed, *SERVE_ALIASES}))
                bad.append(Problem(f"serve.{key}", f"unknown serving field (known: {known})"))
        if bad:
            raise SpecError(bad)
        if req["rate"] is not None:
            req["arrival"] = f"poisson:{req['rate']}"
        return req, cfg

    @classmethod
    def check_space(cls, space: DesignSpace) -> None:
        """Objectives, a system, serve fields known, their extreme values accepted."""
        from explore.space import check_system_values
        from memsim.serving import ServeConfig, make_requests

        super().check_space(space)
        if not space.system_docs:
            raise SpecError([Problem("system", "the serve evaluator needs a system")])
        wl = [p for p in space.parameters if space.routes[p.name].section == "workload"]
        for p in wl:
            if space.routes[p.name].path not in ("model", *_FROM_WORKLOAD):
                raise SpecError(
                    [
                        Problem(
                            f"parameters.{p.name}",
                            "serving takes model, dtype, kv_dtype, tp, attention from workload",
                        )
                    ]
                )
        cls.settings(space.serve)
        problems: list[Problem] = []
        for p in space.parameters:
            route = space.routes[p.name]
            if route.section != "serve":
                continue
            try:
                cls.settings({route.path: None})
            except SpecError as err:
                problems += [Problem(f"parameters.{p.name}", q.message) for q in err.problems]
                continue
            for value in p.corners():
                try:
                    req, cfg = cls.settings({**(space.serve or {}), route.path: value})
                    ServeConfig(**cfg).check()
                    make_requests(
                        arrival=str(req["arrival"]),
                        requests=1,
                        prompt_len=str(req["prompt_len"]),
                        output_len=str(req["output_len"]),
                    )
                except (SpecError, TypeError) as err:
                    msg = (
                        "; ".join(q.message for q in err.problems)
                        if isinstance(err, SpecError)
                        else str(err)
                    )
                    problems.append(Problem(f"parameters.{p.name}", f"at {value!r}: {msg}"))
                    break
        if problems:
            raise SpecError(problems)
        check_system_values(space)

    @classmethod
    def key_payload(cls, space: DesignSpace, job: Job) -> dict[str, Any]:
        """System, workload, engine, the whole serve section, version, seed."""
        import memsim

        req, cfg = cls.settings(job.serve)
        preset = str(job.system)
        return {
            "evaluator": "serve",
            "system": {"digest": space.system_digests[preset], "overrides": job.system_overrides},
            "workload": job.workload,
            "engine": job.engine,
            "serve": {"requests": req, "config": cfg},
            "version": memsim.__version__,
            "seed": job.seed,
        }

    def evaluate(self, job: Job) -> EvalRecord:
        """Load the system, plan the KV pool (capacity first), serve the requests."""
        import workloads
        from hw_models.loader import load_system_dict
        from memsim.serving import ServeConfig, make_requests, plan_kv, serve

        t0 = time.perf_counter()
        base: dict[str, Any] = dict(
            key=job.key, index=job.index, parameters=job.parameters, derived=job.derived
        )
        preset = str(job.system)
        w = job.workload
        try:
            system = load_system_dict(
                self.space.system_docs[preset], source=preset, overrides=job.system_overrides
            )
            req, cfg_fields = self.settings(job.serve)
            model = str(w["model"])
            cfg = self._models.get(model)
            if cfg is None:
                cfg = self._models[model] = workloads.load_model(model)
            config = ServeConfig(
                **cfg_fields,
                dtype=str(w["dtype"]),
                kv_dtype=w["kv_dtype"],
                tp=int(w["tp"]),
                attention=str(w["attention"]),
                fidelity=str(job.engine["fidelity"]),
            )
            rkey = repr((sorted(req.items()), job.seed))
            requests = self._requests.get(rkey)
            if requests is None:
                requests = make_requests(
                    arrival=str(req["arrival"]),
                    requests=int(req["requests"]),
                    prompt_len=str(req["prompt_len"]),
                    output_len=str(req["output_len"]),
                    seed=job.seed,
                )
                self._requests[rkey] = requests
                while len(self._requests) > 8:
                    self._requests.popitem(last=False)
            try:
                plan_kv(system, cfg, config)
            except SpecError as err:
                if not all(q.path.endswith(".capacity_bytes") for q in err.problems):
                    raise
                return EvalRecord(  # the weights leave no room for a KV block
                    **base,
                    status="infeasible",
                    message=str(err),
                    elapsed_s=time.perf_counter() - t0,
                )
            result = serve(system, cfg, requests, config=config)
        except SpecError as err:
            return EvalRecord(
                **base, status="invalid", message=str(err), elapsed_s=time.perf_counter() - t0
            )
        summary = result.summary()
        meta = summary.get("meta", {})
        provenance = {
            k: meta.get(k) for k in ("system", "model", "scheduler", "block_manager", "fidelity")
        }
        return EvalRecord(
            **base,
            status="ok",
            metrics=flatten_metrics(summary),
            provenance=provenance,
            elapsed_s=time.perf_counter() - t0,
        )


register_evaluator("simulate", SimulateEvaluator)
register_evaluator("formula", FormulaEvaluator)
register_evaluator("serve", ServeEvaluator)


# ---- per-worker evaluators -------------------------------------------------------------

_local = threading.local()


def worker_evaluator(space: DesignSpace) -> BaseEvaluator:
    """This worker's (process's, or Dask worker thread's) evaluator of ``space``, built on
    first use and kept, with its caches, for the points that follow."""
    cache: dict[str, BaseEvaluator] | None = getattr(_local, "evaluators", None)
    if cache is None:
        cache = _local.evaluators = {}
    ev = cache.get(space.digest)
    if ev is None:
        cache.clear()  # one space at a time per worker
        ev = cache[space.digest] = evaluator_class(space.evaluator)(space)
    return ev


def evaluate_job(space: DesignSpace, job: Job) -> EvalRecord:
    """Evaluate ``job`` with this worker's evaluator (the task sweeps send to workers)."""
    return worker_evaluator(space).evaluate(job)


def evaluate_jobs(space: DesignSpace, jobs: list[Job]) -> list[EvalRecord]:
    """Evaluate a chunk of jobs in order (fewer round trips for cheap points)."""
    ev = worker_evaluator(space)
    return [ev.evaluate(job) for job in jobs]
