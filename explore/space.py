"""`DesignSpace`: what a sweep varies, what it fixes, what it must respect and what it optimises.

A space is read from YAML (:meth:`DesignSpace.from_yaml`) or built from a mapping
(:meth:`DesignSpace.from_dict`). The smallest one::

    system: h100_sxm
    workload: {model: llama2_7b, batch: 1, prompt: 512, gen: 32}
    parameters:
      tiers.hbm.read_bandwidth_bytes_per_s: {values: [2.0e12, 3.35e12, 5.0e12]}
      workload.batch: {values: [1, 4, 16]}
    objectives: {tpot_s: min, energy_j: min}

Parameters address a field by dotted path:

* ``workload.<field>`` — the generation request (:data:`WORKLOAD_DEFAULTS` lists the fields);
* ``policy`` — the placement policy name;
* ``engine.<field>`` — ``fidelity``, ``execution`` or ``dram_config.<setting>``;
* ``serve.<field>`` — the serving configuration (evaluators that serve);
* ``system`` — the system preset itself; any other path (``tiers.hbm.capacity_bytes``,
  optionally written ``system.tiers...``) is a dotted override of the system document
  (:func:`hw_models.load_system`).

A parameter is ``{values: [...]}`` (categorical or discrete), ``{low, high}`` (a range,
integer when both bounds are integers or ``type: int``), with ``log: true`` for a
log-scale range and ``steps: N`` for the points a grid takes.

``prices`` is a table of numbers; ``derived`` computes named values from parameters,
system fields and prices (:mod:`explore.expr`); ``constraints`` are expressions every
point must satisfy (checked before anything is simulated); ``objectives`` name metrics
or derived values with ``min``/``max``. Every problem is a :class:`SpecError` naming
its path.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from explore.expr import Expr
from explore.objective import SENSES, Objective
from hw_models.base import Spec
from hw_models.errors import Problem, SpecError
from hw_models.loader import SYSTEM_DIR, apply_overrides, load_system_dict, resolve_preset
from hw_models.units import UnitError, parse_quantity
from hw_models.yamlio import read_yaml

WORKLOAD_DEFAULTS: dict[str, Any] = {
    "model": "llama2_7b",
    "kind": "generate",
    "batch": 1,
    "prompt": 512,
    "gen": 32,
    "tp": 1,
    "pp": 1,
    "dtype": "bf16",
    "kv_dtype": None,
    "attention": "fused",
}
"""The workload fields and their defaults. ``kind``: ``generate`` (prefill + ``gen``
decode steps), ``prefill`` or ``decode`` (one step at context ``prompt``)."""

ENGINE_DEFAULTS: dict[str, Any] = {"fidelity": "analytic", "execution": None, "dram_config": {}}
"""The engine fields: ``fidelity`` (``analytic`` by default in sweeps, or ``event``),
``execution`` (``kernel``/``dataflow``, default by hardware) and ``dram_config``."""

MAX_GRID_POINTS = 10_000_000
Point = dict[str, Any]


class ParamSpec(Spec):
    """One parameter as written in YAML."""

    values: list[Any] | None = None
    low: float | int | str | None = None
    high: float | int | str | None = None
    log: bool = False
    steps: int | None = Field(default=None, ge=1)
    type: Literal["int", "float"] | None = None


class WorkloadSpec(Spec):
    """The workload fields of a space (defaults in :data:`WORKLOAD_DEFAULTS`)."""

    model: str = "llama2_7b"
    kind: Literal["generate", "prefill", "decode"] = "generate"
    batch: int = Field(default=1, ge=1)
    prompt: int = Field(default=512, ge=1)
    gen: int = Field(default=32, ge=1)
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    dtype: str = "bf16"
    kv_dtype: str | None = None
    attention: str = "fused"


class EngineSpec(Spec):
    """The engine fields of a space."""

    fidelity: Literal["analytic", "event"] = "analytic"
    execution: Literal["kernel", "dataflow"] | None = None
    dram_config: dict[str, Any] = Field(default_factory=dict)


class SpaceFile(Spec):
    """The YAML document of a design space."""

    description: str | None = None
    evaluator: str = "simulate"
    system: str | None = None
    workload: dict[str, Any] = Field(default_factory=dict)
    policy: str | None = None
    engine: dict[str, Any] = Field(default_factory=dict)
    serve: dict[str, Any] | None = None
    parameters: dict[str, ParamSpec]
    objectives: dict[str, str]
    prices: dict[str, float] = Field(default_factory=dict)
    derived: dict[str, str | float] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    formulas: dict[str, str | float] = Field(default_factory=dict)
    sampler: str | None = None
    budget: int | None = Field(default=None, ge=1)
    seed: int = 0


def _number(value: Any, path: str) -> float:
    """A plain number, or a quantity string with any unit (``"80 GiB"``) in its base unit."""
    if isinstance(value, bool):
        raise SpecError([Problem(path, f"expected a number, found {value!r}")])
    if isinstance(value, int | float):
        return float(value)
    for kind in ("bytes", "bytes_per_s", "s", "hz", "flops_per_s", "j_per_byte", "j", "w"):
        try:
            return parse_quantity(value, kind)
        except UnitError:
            continue
    raise SpecError([Problem(path, f"expected a number or a quantity, found {value!r}")])


def _yaml_number(value: Any) -> Any:
    """A number written as a string by YAML 1.1 (``2.0e12`` has no sign in its exponent,
    so PyYAML reads a string) becomes the number; other values are kept."""
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return value
        return int(f) if f.is_integer() and "e" not in value.lower() and "." not in value else f
    return value


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones (JSON, SQLite and Optuna want plain values)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True, slots=True)
class Parameter:
    """One dimension of a space: a dotted ``name`` and its values or range."""

    name: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    steps: int | None = None
    integer: bool = False

    @classmethod
    def from_spec(cls, name: str, spec: ParamSpec) -> Parameter:
        """Check ``spec`` (empty lists and ranges, log of non-positive bounds)."""
        path = f"parameters.{name}"
        if spec.values is not None:
            if spec.low is not None or spec.high is not None or spec.steps is not None:
                raise SpecError([Problem(path, "give either `values` or `low`/`high`, not both")])
            if not spec.values:
                raise SpecError([Problem(f"{path}.values", "empty list of values")])
            bad = [v for v in spec.values if not isinstance(v, str | int | float | bool | None)]
            if bad:
                raise SpecError(
                    [Problem(f"{path}.values", f"values must be scalars, found {bad[0]!r}")]
                )
            if len(set(map(repr, spec.values))) != len(spec.values):
                raise SpecError([Problem(f"{path}.values", "duplicate values")])
            return cls(name=name, values=tuple(_yaml_number(v) for v in spec.values))
        if spec.low is None or spec.high is None:
            raise SpecError([Problem(path, "expected `values: [...]` or both `low` and `high`")])
        low, high = _number(spec.low, f"{path}.low"), _number(spec.high, f"{path}.high")
        integer = spec.type == "int" or (
            spec.type is None and isinstance(spec.low, int) and isinstance(spec.high, int)
        )
        if integer and (low != int(low) or high != int(high)):
            raise SpecError([Problem(path, "an integer range needs integer bounds")])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SpecError([Problem(path, "bounds must be finite")])
        if low > high:
            raise SpecError([Problem(path, f"empty range: low {low:g} > high {high:g}")])
        if spec.log and low <= 0:
            raise SpecError([Problem(f"{path}.low", f"a log range needs low > 0, found {low:g}")])
        if spec.steps is not None and spec.steps > 1 and low == high:
            raise SpecError(
                [Problem(path, f"empty range: low = high = {low:g} with {spec.steps} steps")]
            )
        return cls(name=name, low=low, high=high, log=spec.log, steps=spec.steps, integer=integer)

    @property
    def discrete(self) -> bool:
        """True when the parameter takes a finite list of values (values, steps or integers)."""
        return self.values is not None or self.steps is not None

    def grid(self) -> list[Any]:
        """The values a grid takes: the list, ``steps`` points of the range, or every integer."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.steps is None:
            if self.integer and self.high - self.low < 10_000:
                return list(range(int(self.low), int(self.high) + 1))
            raise SpecError(
                [Problem(f"parameters.{self.name}", "a grid needs `steps` for this range")]
            )
        if self.steps == 1:
            pts = np.array([self.low])
        elif self.log:
            pts = np.geomspace(self.low, self.high, self.steps)
        else:
            pts = np.linspace(self.low, self.high, self.steps)
        if self.integer:
            return list(dict.fromkeys(round(float(p)) for p in pts))
        return [float(p) for p in pts]

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in [0, 1): uniform over the list or grid, log-uniform on a log
        range, uniform over the integers of an integer range."""
        u = min(max(float(u), 0.0), math.nextafter(1.0, 0.0))
        if self.discrete:
            vals = self.grid()
            return _plain(vals[int(u * len(vals))])
        assert self.low is not None and self.high is not None
        if self.integer:
            lo, hi = int(self.low), int(self.high)
            if self.log:
                x = math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
                return min(int(x), hi)
            return lo + int(u * (hi - lo + 1))
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def to_unit(self, value: Any) -> float:
        """The position of ``value`` in [0, 1] (the inverse of :meth:`from_unit`, for
        sensitivity analysis and plots): its index for lists, its (log) fraction otherwise."""
        if self.values is not None:
            keys = [repr(v) for v in self.values]
            n = len(keys)
            return (keys.index(repr(value)) + 0.5) / n if n else 0.0
        assert self.low is not None and self.high is not None
        if self.high == self.low:
            return 0.0
        v = float(value)
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def corners(self) -> list[Any]:
        """The smallest and largest values (the first and last of a list)."""
        if self.values is not None:
            return list(dict.fromkeys([self.values[0], self.values[-1]]))
        assert self.low is not None and self.high is not None
        lo, hi = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return list(dict.fromkeys([lo, hi]))


@dataclass(frozen=True, slots=True)
class Route:
    """Where a parameter goes: ``section`` (system, workload, policy, engine, serve, free)
    and the path inside it."""

    section: str
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One point made concrete: everything an evaluator needs, and its content key."""

    key: str
    index: int
    parameters: Point
    derived: dict[str, Any]
    system: str | None
    system_overrides: dict[str, Any]
    workload: dict[str, Any]
    policy: str | None
    engine: dict[str, Any]
    serve: dict[str, Any] | None
    seed: int


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON (the text hashed into keys and digests)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)


def digest(obj: Any) -> str:
    """sha256 of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class DesignSpace:
    """A checked design space (build with :meth:`from_yaml` or :meth:`from_dict`)."""

    doc: dict[str, Any]
    source: str
    base_dir: str
    evaluator: str
    system: str | None
    system_docs: dict[str, Any]
    system_digests: dict[str, str]
    workload: dict[str, Any]
    policy: str | None
    engine: dict[str, Any]
    serve: dict[str, Any] | None
    parameters: tuple[Parameter, ...]
    routes: dict[str, Route]
    objectives: tuple[Objective, ...]
    prices: dict[str, float]
    derived: tuple[tuple[str, Expr], ...]
    constraints: tuple[Expr, ...]
    formulas: tuple[tuple[str, Expr], ...]
    sampler: str | None
    budget: int | None
    seed: int
    digest: str = field(default="")

    # ---- construction ----------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | Path) -> DesignSpace:
        """Read and check a space file; relative system paths are relative to the file."""
        data, problems = read_yaml(path)
        if problems:
            raise SpecError(problems, source=str(path))
        if not isinstance(data, dict):
            raise SpecError([Problem("", "expected a mapping")], source=str(path))
        try:
            return cls.from_dict(data, base_dir=Path(path).parent, source=str(path))
        except SpecError as err:
            raise err.with_source(str(path)) from None

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base_dir: str | Path = ".", source: str = "<space>"
    ) -> DesignSpace:
        """Check a space given as a mapping (the same document as the YAML file)."""
        from explore.evaluate import evaluator_class

        f = SpaceFile.parse(dict(data))
        ev = evaluator_class(f.evaluator, error_path="evaluator")
        if not f.parameters:
            raise SpecError([Problem("parameters", "a space needs at least one parameter")])
        if not f.objectives:
            raise SpecError([Problem("objectives", "a space needs at least one objective")])
        params = tuple(Parameter.from_spec(n, s) for n, s in f.parameters.items())
        problems: list[Problem] = []
        for name, sense in f.objectives.items():
            if sense not in SENSES:
                problems.append(
                    Problem(f"objectives.{name}", f"expected min or max, found {sense!r}")
                )
        if problems:
            raise SpecError(problems)
        system_docs: dict[str, Any] = {}
        system_param = next((p for p in params if p.name in ("system", "system.name")), None)
        presets = list(system_param.values or ()) if system_param is not None else []
        if f.system is not None and f.system not in presets:
            presets.insert(0, f.system)
        for preset in presets:
            path = (
                "system"
                if preset == f.system
                else f"parameters.{system_param and system_param.name}"
            )
            p = Path(str(preset))
            if not p.is_absolute() and (Path(base_dir) / p).exists():
                p = Path(base_dir) / p
            file = resolve_preset(
                p if p.exists() else str(preset), SYSTEM_DIR, what="system preset", error_path=path
            )
            doc, dups = read_yaml(file)
            if dups:
                raise SpecError(dups, source=str(file))
            system_docs[str(preset)] = doc
        workload = WorkloadSpec.parse(f.workload, prefix="workload").model_dump()
        engine = EngineSpec.parse(f.engine, prefix="engine").model_dump()
        space = cls(
            doc=json.loads(json.dumps(f.model_dump(exclude_none=True), default=_plain)),
            source=source,
            base_dir=str(base_dir),
            evaluator=f.evaluator,
            system=f.system,
            system_docs=system_docs,
            system_digests={k: digest(v) for k, v in system_docs.items()},
            workload=workload,
            policy=f.policy,
            engine=engine,
            serve=f.serve,
            parameters=params,
            routes={},
            objectives=tuple(Objective(n, s) for n, s in f.objectives.items()),  # type: ignore[arg-type]
            prices=dict(f.prices),
            derived=_ordered({n: Expr.parse(e, path=f"derived.{n}") for n, e in f.derived.items()}),
            constraints=tuple(
                Expr.parse(c, path=f"constraints[{i}]") for i, c in enumerate(f.constraints)
            ),
            formulas=tuple((n, Expr.parse(e, path=f"formulas.{n}")) for n, e in f.formulas.items()),
            sampler=f.sampler,
            budget=f.budget,
            seed=f.seed,
        )
        routes = {p.name: space._route(p.name, ev.sections) for p in params}
        object.__setattr__(space, "routes", routes)
        doc = {k: v for k, v in space.doc.items() if k not in ("sampler", "budget", "seed")}
        object.__setattr__(space, "digest", digest(doc))
        space._check_names()
        space._check_request_values()
        ev.check_space(space)
        space._check_feasible()
        return space

    def _route(self, name: str, sections: frozenset[str]) -> Route:
        path = f"parameters.{name}"
        head, _, rest = name.partition(".")
        if "free" in sections:
            return Route("free", name)
        if name in ("system", "system.name"):
            return Route("system", "")
        if head in ("workload", "engine", "serve") or name == "policy":
            section = "policy" if name == "policy" else head
            if section not in sections:
                raise SpecError(
                    [Problem(path, f"the {self.evaluator!r} evaluator has no {section} settings")]
                )
            if section == "workload" and rest not in WORKLOAD_DEFAULTS:
                known = ", ".join(WORKLOAD_DEFAULTS)
                raise SpecError(
                    [Problem(path, f"unknown workload field {rest!r} (known: {known})")]
                )
            if (
                section == "engine"
                and rest not in ("fidelity", "execution")
                and not rest.startswith("dram_config.")
            ):
                raise SpecError(
                    [
                        Problem(
                            path,
                            "unknown engine field "
                            "(known: fidelity, execution, dram_config.<setting>)",
                        )
                    ]
                )
            if section == "serve" and not rest:
                raise SpecError([Problem(path, "expected serve.<field>")])
            return Route(section, rest)
        sys_path = rest if head == "system" else name
        if "system" not in sections or not self.system_docs:
            raise SpecError([Problem(path, "unknown parameter path (no system to override)")])
        for preset, doc in self.system_docs.items():
            _, bad = apply_overrides(doc, {sys_path: 0})
            if bad:
                raise SpecError(
                    [Problem(path, f"no such field in system {preset!r} ({bad[0].message})")]
                )
        return Route("system", sys_path)

    def _check_request_values(self) -> None:
        """Workload and engine parameters at their extreme values must be valid fields."""
        problems: list[Problem] = []
        for p in self.parameters:
            route = self.routes[p.name]
            if route.section not in ("workload", "engine") or "." in route.path:
                continue
            spec: type[Spec] = WorkloadSpec if route.section == "workload" else EngineSpec
            base = self.workload if route.section == "workload" else self.engine
            for value in p.corners():
                try:
                    spec.parse({**base, route.path: value})
                except SpecError as err:
                    msg = "; ".join(q.message for q in err.problems)
                    problems.append(Problem(f"parameters.{p.name}", f"at {value!r}: {msg}"))
                    break
        if problems:
            raise SpecError(problems)

    def _check_names(self) -> None:
        """Every name an expression reads must be known; objectives must be metrics or derived."""
        known = set(self.routes) | {f"prices.{k}" for k in self.prices}
        problems: list[Problem] = []
        for name, expr in self.derived:
            for n in expr.names:
                if n not in known and not self._system_field(n) and not n.startswith("workload."):
                    problems.append(Problem(expr.path, f"unknown name {n!r}"))
            known.add(name)
        for expr in self.constraints:
            for n in expr.names:
                if n not in known and not self._system_field(n) and not n.startswith("workload."):
                    problems.append(Problem(expr.path, f"unknown name {n!r}"))
        if problems:
            raise SpecError(problems)

    def _system_field(self, name: str) -> bool:
        path = name.removeprefix("system.")
        if not self.system_docs:
            return False
        try:
            for doc in self.system_docs.values():
                _lookup(doc, path)
        except KeyError:
            return False
        return True

    def _check_feasible(self) -> None:
        """Refuse constraints no point satisfies (over the grid, or 4096 LHS points)."""
        if not self.constraints:
            return
        try:
            n = self.grid_size()
        except SpecError:
            n = MAX_GRID_POINTS + 1
        points: Iterator[Point]
        if n <= 4096:
            points = self.grid_points()
        else:
            from scipy.stats import qmc

            u = qmc.LatinHypercube(d=len(self.parameters), seed=self.seed).random(4096)
            points = (self.point_from_unit(row) for row in u)
        ok = [0] * len(self.constraints)
        for point in points:
            derived = self.derived_values(point)
            for i, c in enumerate(self.constraints):
                ok[i] += bool(c.evaluate(self._lookup_fn(point, derived)))
        bad = [
            Problem(c.path, f"no point of the space satisfies {c.text!r}")
            for c, k in zip(self.constraints, ok, strict=True)
            if k == 0
        ]
        if bad:
            raise SpecError(bad)

    def with_engine(self, **fields: Any) -> DesignSpace:
        """The same space with engine fields replaced (``fidelity="event"``)."""
        doc = dict(self.doc)
        doc["engine"] = {**doc.get("engine", {}), **fields}
        return DesignSpace.from_dict(doc, base_dir=self.base_dir, source=self.source)

    # ---- points ----------------------------------------------------------------------

    def names(self) -> list[str]:
        """Parameter names in file order."""
        return [p.name for p in self.parameters]

    def grid_size(self) -> int:
        """Number of points of the full grid."""
        return math.prod(len(p.grid()) for p in self.parameters)

    def grid_points(self) -> Iterator[Point]:
        """Every point of the grid, the last parameter varying fastest."""
        grids = [p.grid() for p in self.parameters]
        for combo in itertools.product(*grids):
            yield {p.name: _plain(v) for p, v in zip(self.parameters, combo, strict=True)}

    def point_from_unit(self, u: Sequence[float]) -> Point:
        """The point at ``u`` in the unit cube (one coordinate per parameter)."""
        return {p.name: _plain(p.from_unit(x)) for p, x in zip(self.parameters, u, strict=True)}

    def derived_values(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The derived parameters of ``point``, in file order."""
        out: dict[str, Any] = {}
        for name, expr in self.derived:
            out[name] = _plain(expr.evaluate(self._lookup_fn(point, out)))
        return out

    def violations(self, point: Mapping[str, Any], derived: Mapping[str, Any]) -> list[str]:
        """The constraints ``point`` breaks (their text)."""
        lookup = self._lookup_fn(point, derived)
        return [c.text for c in self.constraints if not c.evaluate(lookup)]

    def _lookup_fn(self, point: Mapping[str, Any], derived: Mapping[str, Any]) -> Any:
        def lookup(name: str) -> Any:
            if name in point:
                v = point[name]
                if isinstance(v, str):
                    try:
                        return _number(v, name)
                    except SpecError:
                        return v
                return v
            if name in derived:
                return derived[name]
            if name.startswith("prices."):
                return self.prices[name.removeprefix("prices.")]
            if name.startswith("workload."):
                field_ = name.removeprefix("workload.")
                return self.workload.get(field_)
            path = name.removeprefix("system.")
            for pname, route in self.routes.items():
                if route.section == "system" and route.path == path:
                    return _number(point[pname], name)
            preset = str(point.get("system", point.get("system.name", self.system)))
            return _number(_lookup(self.system_docs[preset], path), name)

        return lookup

    def job(self, point: Mapping[str, Any], *, index: int, seed: int | None = None) -> Job:
        """The concrete :class:`Job` of ``point`` (derived values computed, key hashed)."""
        from explore.evaluate import evaluator_class

        seed = self.seed if seed is None else seed
        derived = self.derived_values(point)
        overrides: dict[str, Any] = {}
        workload = dict(self.workload)
        engine = json.loads(json.dumps(self.engine))
        serve = dict(self.serve) if self.serve is not None else None
        policy = self.policy
        system = self.system
        for name, value in point.items():
            route = self.routes[name]
            if route.section == "system":
                if route.path:
                    overrides[route.path] = value
                else:
                    system = str(value)
            elif route.section == "workload":
                workload[route.path] = value
            elif route.section == "policy":
                policy = str(value)
            elif route.section == "engine":
                if route.path.startswith("dram_config."):
                    engine["dram_config"][route.path.removeprefix("dram_config.")] = value
                else:
                    engine[route.path] = value
            elif route.section == "serve":
                serve = {**(serve or {}), route.path: value}
        job = Job(
            key="",
            index=index,
            parameters=dict(point),
            derived=derived,
            system=system,
            system_overrides=overrides,
            workload=workload,
            policy=policy,
            engine=engine,
            serve=serve,
            seed=seed,
        )
        payload = evaluator_class(self.evaluator).key_payload(self, job)
        object.__setattr__(job, "key", digest(payload))
        return job


def _ordered(derived: dict[str, Expr]) -> tuple[tuple[str, Expr], ...]:
    """Derived values in an order where each comes after the derived values it reads;
    a cycle is refused naming its members."""
    out: list[tuple[str, Expr]] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise SpecError([Problem(f"derived.{name}", f"circular definition: {cycle}")])
        visiting.append(name)
        for dep in derived[name].names:
            if dep in derived:
                visit(dep)
        visiting.pop()
        done.add(name)
        out.append((name, derived[name]))

    for name in derived:
        visit(name)
    return tuple(out)


def _lookup(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def check_system_values(space: DesignSpace) -> None:
    """Load the system at each system parameter's smallest and largest value; a value the
    system spec refuses is reported at ``parameters.<name>``."""
    problems: list[Problem] = []
    for p in space.parameters:
        route = space.routes[p.name]
        if route.section != "system" or not route.path:
            continue
        for value in p.corners():
            for preset, doc in space.system_docs.items():
                try:
                    load_system_dict(doc, source=preset, overrides={route.path: value})
                except SpecError as err:
                    msg = "; ".join(str(q) for q in err.problems)
                    problems.append(
                        Problem(f"parameters.{p.name}", f"at {value!r} on {preset}: {msg}")
                    )
                    break
    if problems:
        raise SpecError(problems)
