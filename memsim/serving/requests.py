"""Requests: arrival processes and prompt/output length distributions, chosen by name.

An arrival process makes the requests (CONVENTIONS §13); the scheduler and the
block manager never invent one. Every process and distribution is registered
by name and built from a short spec string, as the CLI takes them:

=====================  ==========================================================
``poisson:RATE``       exponential gaps, RATE requests/s
``gamma:RATE:CV``      gamma gaps with mean 1/RATE and coefficient of variation CV
                       (CV > 1 is burstier than Poisson)
``trace:PATH``         arrival time, prompt and output length per request from a
                       CSV (header ``arrival_s,prompt_len,output_len``) or JSONL file
``fixed:N``            every request N tokens
``uniform:A:B``        integers uniform on [A, B]
``lognormal:MEDIAN:SIGMA[:MAX]``  exp(N(ln MEDIAN, SIGMA)), rounded, clipped to [1, MAX]
``file:PATH``          lengths drawn (with replacement) from a file of integers
=====================  ==========================================================

All randomness comes from one :class:`numpy.random.Generator` seeded by the
caller: the same seed gives the same requests.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hw_models.errors import Problem, SpecError
from memsim.registry import Registry

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Requests:
    """``n`` requests: arrival time (s, non-decreasing), prompt and output tokens.

    ``shared_prefix``: the first tokens of every prompt are the same (a system
    prompt); a server with prefix sharing holds and computes them once.
    """

    arrival_s: FloatArray
    prompt_len: IntArray
    output_len: IntArray
    shared_prefix: int = 0

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if len(self.prompt_len) != n or len(self.output_len) != n:
            raise ValueError("arrival_s, prompt_len and output_len must have one entry each")
        if self.shared_prefix < 0 or (n and self.shared_prefix >= int(self.prompt_len.min())):
            raise SpecError(
                [
                    Problem(
                        "shared_prefix",
                        f"expected 0 <= shared prefix < every prompt length, found "
                        f"{self.shared_prefix}",
                    )
                ]
            )

    def __len__(self) -> int:
        return len(self.arrival_s)


LengthSampler = Callable[[np.random.Generator, int], IntArray]
GapSampler = Callable[[np.random.Generator, int], FloatArray]

LENGTHS: Registry[LengthSampler] = Registry("length distribution")
ARRIVALS: Registry[GapSampler] = Registry("arrival process")


def _num(text: str, path: str, *, integer: bool = False, minimum: float = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError([Problem(path, f"expected a number, found {text!r}")]) from None
    if not math.isfinite(value) or value <= minimum or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise SpecError([Problem(path, f"expected {kind} > {minimum:g}, found {text!r}")])
    return value


def _args(spec: str, path: str, count: Sequence[int]) -> tuple[str, list[str]]:
    name, *rest = spec.split(":")
    if len(rest) not in count:
        want = " or ".join(str(c) for c in count)
        raise SpecError(
            [Problem(path, f"{name!r} takes {want} ':'-separated value(s), found {spec!r}")]
        )
    return name, rest


@LENGTHS.register("fixed")
def _fixed(args: list[str], path: str) -> LengthSampler:
    n = int(_num(args[0], path, integer=True))
    return lambda rng, size: np.full(size, n, dtype=np.int64)


@LENGTHS.register("uniform")
def _uniform(args: list[str], path: str) -> LengthSampler:
    lo, hi = (int(_num(a, path, integer=True)) for a in args)
    if hi < lo:
        raise SpecError([Problem(path, f"uniform:A:B needs A <= B, found {lo} > {hi}")])
    return lambda rng, size: rng.integers(lo, hi + 1, size=size, dtype=np.int64)


@LENGTHS.register("lognormal")
def _lognormal(args: list[str], path: str) -> LengthSampler:
    median = _num(args[0], path)
    sigma = _num(args[1], path, minimum=-1e-300)
    cap = int(_num(args[2], path, integer=True)) if len(args) > 2 else None

    def draw(rng: np.random.Generator, size: int) -> IntArray:
        x = np.rint(rng.lognormal(math.log(median), sigma, size=size)).astype(np.int64)
        return np.clip(x, 1, cap if cap is not None else np.iinfo(np.int64).max)

    return draw


@LENGTHS.register("file")
def _from_file(args: list[str], path: str) -> LengthSampler:
    source = ":".join(args)
    try:
        text = Path(source).read_text()
    except OSError as err:
        raise SpecError([Problem(path, f"cannot read {source}: {err.strerror}")]) from None
    values = []
    for i, line in enumerate(text.split(), start=1):
        try:
            v = int(line)
        except ValueError:
            raise SpecError(
                [Problem(f"{source}:{i}", f"expected an integer, found {line!r}")]
            ) from None
        if v < 1:
            raise SpecError([Problem(f"{source}:{i}", f"expected a length >= 1, found {v}")])
        values.append(v)
    if not values:
        raise SpecError([Problem(path, f"{source} holds no lengths")])
    pool = np.asarray(values, dtype=np.int64)
    return lambda rng, size: rng.choice(pool, size=size)


_LENGTH_ARITY = {"fixed": (1,), "uniform": (2,), "lognormal": (2, 3)}


def length_sampler(spec: str, *, path: str = "length") -> LengthSampler:
    """A sampler of token counts from a spec such as ``lognormal:512:0.6:4096``."""
    name = spec.split(":", 1)[0]
    factory = LENGTHS.get(name, error_path=path)
    if name == "file":
        return factory(spec.split(":")[1:], path)
    _, args = _args(spec, path, _LENGTH_ARITY.get(name, (1,)))
    return factory(args, path)


@ARRIVALS.register("poisson")
def _poisson(args: list[str], path: str) -> GapSampler:
    rate = _num(args[0], path)
    return lambda rng, size: rng.exponential(1.0 / rate, size=size)


@ARRIVALS.register("gamma")
def _gamma(args: list[str], path: str) -> GapSampler:
    rate = _num(args[0], path)
    cv = _num(args[1], path)
    shape = 1.0 / (cv * cv)  # gamma with shape k has CV 1/sqrt(k); mean k*theta = 1/rate
    return lambda rng, size: rng.gamma(shape, 1.0 / (rate * shape), size=size)


_ARRIVAL_ARITY = {"poisson": (1,), "gamma": (2,)}


def arrival_rate(spec: str) -> float | None:
    """The mean rate (requests/s) of a ``poisson``/``gamma`` spec; None for a trace."""
    name, *rest = spec.split(":")
    return float(rest[0]) if name in _ARRIVAL_ARITY and rest else None


def read_trace(path: str | Path) -> Requests:
    """Requests from a CSV (``arrival_s,prompt_len,output_len``) or JSONL trace.

    Errors name the file and line. Arrivals are sorted (stable) by time.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise SpecError([Problem("trace", f"cannot read {p}: {err.strerror}")]) from None
    rows: list[tuple[float, int, int]] = []
    keys = ("arrival_s", "prompt_len", "output_len")
    if p.suffix in (".jsonl", ".json"):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise SpecError([Problem(f"{p}:{i}", f"not JSON: {err.msg}")]) from None
            rows.append(_trace_row(rec, keys, f"{p}:{i}"))
    else:
        reader = csv.DictReader(text.splitlines())
        missing = [k for k in keys if k not in (reader.fieldnames or [])]
        if missing:
            raise SpecError([Problem(f"{p}:1", f"header lacks {', '.join(missing)}")])
        for i, rec in enumerate(reader, start=2):
            rows.append(_trace_row(rec, keys, f"{p}:{i}"))
    if not rows:
        raise SpecError([Problem("trace", f"{p} holds no requests")])
    rows.sort(key=lambda r: r[0])
    a, pl, ol = zip(*rows, strict=True)
    return Requests(
        arrival_s=np.asarray(a, dtype=np.float64),
        prompt_len=np.asarray(pl, dtype=np.int64),
        output_len=np.asarray(ol, dtype=np.int64),
    )


def _trace_row(rec: Any, keys: tuple[str, str, str], where: str) -> tuple[float, int, int]:
    if not isinstance(rec, dict):
        raise SpecError([Problem(where, "expected an object with " + ", ".join(keys))])
    try:
        arrival = float(rec[keys[0]])
        prompt, output = int(rec[keys[1]]), int(rec[keys[2]])
    except KeyError as err:
        raise SpecError([Problem(where, f"missing {err.args[0]}")]) from None
    except (TypeError, ValueError):
        raise SpecError([Problem(where, f"expected numbers for {', '.join(keys)}")]) from None
    if not (math.isfinite(arrival) and arrival >= 0) or prompt < 1 or output < 1:
        raise SpecError([Problem(where, "expected arrival_s >= 0 and prompt_len, output_len >= 1")])
    return arrival, prompt, output


def make_requests(
    *,
    arrival: str,
    requests: int | None = None,
    prompt_len: str = "fixed:512",
    output_len: str = "fixed:128",
    seed: int = 0,
    shared_prefix: int = 0,
) -> Requests:
    """``requests`` requests from an arrival spec and two length specs (see the module doc).

    A ``trace:PATH`` arrival gives its own lengths (and, when ``requests`` is
    given, only its first ``requests`` requests). ``shared_prefix``: every
    prompt starts with the same ``shared_prefix`` tokens; generated prompts are
    that prefix plus their drawn length, a trace's prompts must be longer.
    """
    name = arrival.split(":", 1)[0]
    if name == "trace":
        trace = read_trace(arrival.split(":", 1)[1] if ":" in arrival else "")
        n = len(trace) if requests is None else min(requests, len(trace))
        return Requests(
            arrival_s=trace.arrival_s[:n],
            prompt_len=trace.prompt_len[:n],
            output_len=trace.output_len[:n],
            shared_prefix=shared_prefix,
        )
    factory = ARRIVALS.get(name, error_path="arrival")
    _, args = _args(arrival, "arrival", _ARRIVAL_ARITY.get(name, (1,)))
    gaps = factory(args, "arrival")
    if requests is None or requests < 1:
        raise SpecError([Problem("requests", f"expected an integer >= 1, found {requests}")])
    prompts = length_sampler(prompt_len, path="prompt_len")
    outputs = length_sampler(output_len, path="output_len")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(gaps(rng, requests))
    return Requests(
        arrival_s=arrivals.astype(np.float64),
        prompt_len=prompts(rng, requests).astype(np.int64) + shared_prefix,
        output_len=outputs(rng, requests).astype(np.int64),
        shared_prefix=shared_prefix,
    )
