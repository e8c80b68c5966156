"""A dynamic expert cache for MoE inference with offloaded experts.

The device memory (HBM) holds ``slots`` experts of every MoE layer; the rest of a
layer's experts live in a host tier (DDR, CXL or flash). A *routing trace* says,
for every step (a decoded token, or a batch's step) and every layer, which experts
run; an expert that is not resident is a *miss*: its weights are copied from the
host tier into HBM, evicting a resident expert of the same layer chosen by the
replacement policy. A *hit* reads its weights from HBM.

Replacement policies (registered by name in :data:`REPLACEMENT`):

* ``lru`` — evict the resident expert used least recently;
* ``lfu`` — evict the resident expert used least often since the start of the
  trace (counts survive eviction), ties broken by least recent use;
* ``belady`` — the offline optimum (Belady 1966): evict the resident expert whose
  next use is farthest in the future. It needs the whole trace and is the
  reference the online policies are judged against.

Prefetch (``prefetch=``) changes *when* a miss is copied, not *which* experts miss:

* ``none`` (on demand): a layer's missing experts are copied when compute reaches
  the layer, and the layer waits for them;
* ``pregated`` (Hwang et al., "Pre-gated MoE", ISCA 2024): a pre-gate in layer
  ``l - 1`` selects layer ``l``'s experts, so their copy starts when compute reaches
  layer ``l - 1`` and overlaps its execution. Layer 0 has no previous layer in the
  step and is fetched on demand. Pre-gating selects exactly the experts that then
  run (the paper fine-tunes the pre-gate to be the gate), so hits and misses are
  the same as without prefetch.

Step time. Per layer, the compute time with the step's experts resident comes from
:func:`memsim.simulate` on the model's decode graph for that many active experts
(every weight, the KV cache and the activations in HBM: hits read HBM; capacity
checked), and the copy of ``m`` missing experts is priced by :mod:`memsim.cost`
along the link path from the home tier to HBM (``latency + max(bytes / bandwidth)``
over the home tier's read port, every link on the path, and HBM's write port:
the DMA rule of :func:`memsim.plan.dma_duration`). They are composed with the
engine's overlap rule for one DMA engine (:mod:`memsim.analytic`, rule 3): copies
run one after another, in layer order; a layer starts when the previous layer is
done and its copy has arrived. With every layer missing, this is exactly what
:func:`memsim.simulate` gives for the step with the missed experts streamed
(``home->hbm``) at ``prefetch_depth`` 0 (on demand) or 1 (pre-gated); the tests
check it.

>>> trace = sample_routing(experts=8, layers=2, steps=50, k=2, distribution="zipf", seed=0)
>>> stats = simulate_expert_cache(trace, slots=8, policy="lru")
>>> stats.misses == stats.compulsory_misses
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hw_models import System
from hw_models.errors import Problem, SpecError
from memsim.registry import Registry

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: distributions :func:`sample_routing` draws from
DISTRIBUTIONS = ("uniform", "zipf")
#: prefetch modes
PREFETCH_MODES = ("none", "pregated")


# ---- routing traces ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingTrace:
    """Experts used per step and layer: ``ids[s, l]`` holds their ids, ``-1`` pads.

    ``ids`` has shape ``(steps, layers, width)``; a row lists distinct experts in
    ``0 .. experts - 1`` (a token's top-k, or the union over a batch's tokens).
    Build one with :func:`routing_trace`, :func:`sample_routing` or :func:`load_routing`.
    """

    experts: int
    ids: IntArray
    source: str = "array"

    @property
    def steps(self) -> int:
        """Steps (tokens or batch iterations) in the trace."""
        return int(self.ids.shape[0])

    @property
    def layers(self) -> int:
        """MoE layers per step."""
        return int(self.ids.shape[1])

    def entry(self, step: int, layer: int) -> list[int]:
        """The experts of ``layer`` at ``step``, in the order given."""
        return [int(e) for e in self.ids[step, layer] if e >= 0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form :func:`load_routing` reads (``experts`` and ``steps``)."""
        return {
            "experts": self.experts,
            "steps": [
                [self.entry(s, layer) for layer in range(self.layers)] for s in range(self.steps)
            ],
        }


def routing_trace(
    steps: Sequence[Sequence[Sequence[int]]] | npt.ArrayLike,
    *,
    experts: int,
    source: str = "routing",
) -> RoutingTrace:
    """A checked :class:`RoutingTrace` from nested lists ``[step][layer][ids]`` or an array.

    Every step must list the same number of layers; each entry needs at least one
    expert, ids in ``0 .. experts - 1`` and no repeats (``-1`` in an array pads).
    Problems are reported as ``SOURCE[s][l]``.
    """
    if not isinstance(experts, int) or isinstance(experts, bool) or experts < 1:
        raise SpecError([Problem(f"{source}.experts", f"expected an int >= 1, found {experts!r}")])
    if isinstance(steps, np.ndarray):
        if steps.ndim != 3:
            raise SpecError(
                [Problem(source, f"expected an array (steps, layers, width), found {steps.shape}")]
            )
        rows = [[[int(e) for e in row if e != -1] for row in step] for step in steps.tolist()]
    else:
        rows = steps  # type: ignore[assignment]
    problems: list[Problem] = []
    if not isinstance(rows, Sequence) or isinstance(rows, str) or len(rows) == 0:
        raise SpecError([Problem(source, "expected a non-empty list of steps")])
    layers = -1
    width = 1
    for s, step in enumerate(rows):
        if not isinstance(step, Sequence) or isinstance(step, str) or len(step) == 0:
            problems.append(Problem(f"{source}[{s}]", "expected a non-empty list of layers"))
            continue
        if layers < 0:
            layers = len(step)
        elif len(step) != layers:
            problems.append(
                Problem(f"{source}[{s}]", f"expected {layers} layers, found {len(step)}")
            )
        for li, entry in enumerate(step):
            path = f"{source}[{s}][{li}]"
            if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) == 0:
                problems.append(Problem(path, "expected a non-empty list of expert ids"))
                continue
            bad = [
                e
                for e in entry
                if not isinstance(e, (int, np.integer))
                or isinstance(e, bool)
                or not 0 <= e < experts
            ]
            if bad:
                problems.append(
                    Problem(path, f"expert ids must be ints in 0..{experts - 1}, found {bad[0]!r}")
                )
            elif len(set(entry)) != len(entry):
                problems.append(Problem(path, f"an expert is listed twice in {list(entry)}"))
            width = max(width, len(entry))
        if len(problems) >= 20:
            break
    if problems:
        raise SpecError(problems)
    ids = np.full((len(rows), layers, width), -1, dtype=np.int64)
    for s, step in enumerate(rows):
        for li, entry in enumerate(step):
            ids[s, li, : len(entry)] = entry
    return RoutingTrace(experts=experts, ids=ids, source=source)


def sample_routing(
    *,
    experts: int,
    layers: int,
    steps: int,
    k: int,
    distribution: str = "uniform",
    skew: float = 1.0,
    locality: float = 0.0,
    seed: int = 0,
) -> RoutingTrace:
    """A synthetic routing trace (one token per step, ``k`` distinct experts per layer).

    * ``uniform``: every expert equally likely;
    * ``zipf``: expert of popularity rank ``r`` (1-based) has weight ``r^-skew``; each
      layer gets its own random ranking of the experts (hot experts differ by layer);
    * ``locality`` in ``[0, 1]``: each of the previous step's experts of a layer is
      kept with that probability (temporal locality); the others are drawn from the
      distribution among the experts not already chosen.

    Draws use ``numpy.random.default_rng(seed)``: the same arguments give the same trace.
    """
    problems: list[Problem] = []
    for name, value, low in (("experts", experts, 1), ("layers", layers, 1), ("steps", steps, 1)):
        if not isinstance(value, int) or value < low:
            problems.append(Problem(name, f"expected an int >= {low}, found {value!r}"))
    if not isinstance(k, int) or not 1 <= k <= max(experts, 1):
        problems.append(Problem("k", f"expected an int in 1..{experts}, found {k!r}"))
    if distribution not in DISTRIBUTIONS:
        problems.append(
            Problem(
                "distribution",
                f"unknown distribution {distribution!r} (known: {', '.join(DISTRIBUTIONS)})",
            )
        )
    if not (math.isfinite(skew) and skew >= 0):
        problems.append(Problem("skew", f"expected a number >= 0, found {skew!r}"))
    if not 0.0 <= locality <= 1.0:
        problems.append(Problem("locality", f"expected a fraction in [0, 1], found {locality!r}"))
    if problems:
        raise SpecError(problems)
    rng = np.random.default_rng(seed)
    weights = np.ones((layers, experts))
    if distribution == "zipf":
        base = 1.0 / np.arange(1, experts + 1, dtype=float) ** skew
        for li in range(layers):
            weights[li] = base[rng.permutation(experts)]
    ids = np.empty((steps, layers, k), dtype=np.int64)
    for li in range(layers):
        w = weights[li]
        prev: list[int] = []
        for s in range(steps):
            keep = [e for e in prev if rng.random() < locality] if prev else []
            p = w.copy()
            p[keep] = 0.0
            fresh = rng.choice(experts, size=k - len(keep), replace=False, p=p / p.sum())
            row = keep + [int(e) for e in fresh]
            ids[s, li] = row
            prev = row
    return RoutingTrace(experts=experts, ids=ids, source=f"{distribution} (seed {seed})")


def load_routing(path: str | Path, *, experts: int | None = None) -> RoutingTrace:
    """Read a routing trace: JSON ``{"experts": E, "steps": [[[ids]...]...]}`` or ``.npy``.

    A ``.npy`` file holds an int array ``(steps, layers, width)`` (``-1`` pads) and
    needs ``experts``; in JSON, ``experts`` overrides the file's count if given.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError([Problem("trace", f"no such file: {p}")])
    if p.suffix == ".npy":
        if experts is None:
            raise SpecError([Problem("experts", "a .npy routing trace needs the expert count")])
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise SpecError([Problem(str(p), f"not a numpy array file: {err}")]) from None
        if not np.issubdtype(arr.dtype, np.integer):
            raise SpecError([Problem(str(p), f"expected integer expert ids, found {arr.dtype}")])
        return routing_trace(arr.astype(np.int64), experts=experts, source=str(p))
    try:
        data = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError([Problem(str(p), f"not a JSON routing trace: {err}")]) from None
    if not isinstance(data, dict) or "steps" not in data:
        raise SpecError([Problem(str(p), 'expected {"experts": E, "steps": [...]}')])
    extra = sorted(set(data) - {"experts", "steps"})
    if extra:
        raise SpecError([Problem(f"{p}.{extra[0]}", "unknown key (known: experts, steps)")])
    count = experts if experts is not None else data.get("experts")
    if count is None:
        raise SpecError([Problem(f"{p}.experts", "missing: how many experts each layer has")])
    return routing_trace(data["steps"], experts=count, source=f"{p}.steps")


# ---- replacement ------------------------------------------------------------------------


class Replacement(Protocol):
    """Chooses which resident experts of one layer make room for the missing ones."""

    def victims(self, resident: set[int], needed: set[int], count: int, *, now: int) -> list[int]:
        """``count`` experts of ``resident - needed`` to evict at step ``now``."""
        ...

    def touch(self, used: Sequence[int], *, now: int) -> None:
        """Record that ``used`` ran at step ``now``."""
        ...


#: Replacement policies by name; each factory takes ``(trace_of_one_layer)``.
REPLACEMENT: Registry[Replacement] = Registry("expert replacement policy")


def replacement_names() -> list[str]:
    """Names of the registered replacement policies."""
    return REPLACEMENT.names()


class _LRU:
    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        del rows
        self.last: dict[int, tuple[int, int]] = {}

    def touch(self, used: Sequence[int], *, now: int) -> None:
        for order, e in enumerate(used):
            self.last[e] = (now, order)

    def victims(self, resident: set[int], needed: set[int], count: int, *, now: int) -> list[int]:
        del now
        cands = sorted(resident - needed, key=lambda e: (self.last.get(e, (-1, 0)), e))
        return cands[:count]


class _LFU(_LRU):
    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        super().__init__(rows)
        self.count: dict[int, int] = {}

    def touch(self, used: Sequence[int], *, now: int) -> None:
        super().touch(used, now=now)
        for e in used:
            self.count[e] = self.count.get(e, 0) + 1

    def victims(self, resident: set[int], needed: set[int], count: int, *, now: int) -> list[int]:
        del now
        key: Callable[[int], tuple[int, tuple[int, int], int]] = lambda e: (  # noqa: E731
            self.count.get(e, 0),
            self.last.get(e, (-1, 0)),
            e,
        )
        return sorted(resident - needed, key=key)[:count]


class _Belady:
    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        # uses[e]: the steps using e, in order; a pointer walks them
        self.uses: dict[int, list[int]] = {}
        for s, row in enumerate(rows):
            for e in row:
                self.uses.setdefault(e, []).append(s)
        self.ptr: dict[int, int] = dict.fromkeys(self.uses, 0)

    def _next_use(self, e: int, now: int) -> float:
        steps = self.uses.get(e, [])
        i = self.ptr.get(e, 0)
        while i < len(steps) and steps[i] <= now:
            i += 1
        self.ptr[e] = i
        return float(steps[i]) if i < len(steps) else math.inf

    def touch(self, used: Sequence[int], *, now: int) -> None:
        del used, now

    def victims(self, resident: set[int], needed: set[int], count: int, *, now: int) -> list[int]:
        cands = sorted(resident - needed, key=lambda e: (-self._next_use(e, now), e))
        return cands[:count]


REPLACEMENT.add("lru", _LRU)
REPLACEMENT.add("lfu", _LFU)
REPLACEMENT.add("belady", _Belady)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Hits and misses of one replacement policy on one trace.

    ``misses_per_entry[s, l]``: experts of layer ``l`` copied in at step ``s``.
    Counts (``hits``, ``misses``, ``hit_rate``) cover the steps from ``warmup_steps``
    on (the cache evolves during warm-up but is not counted); ``compulsory_misses``
    is the number of first uses in the counted steps (no policy can avoid them).
    """

    policy: str
    slots: int
    warmup_steps: int
    hits: int
    misses: int
    compulsory_misses: int
    misses_per_entry: IntArray = field(repr=False)
    used_per_entry: IntArray = field(repr=False)

    @property
    def accesses(self) -> int:
        """Expert uses counted (hits + misses)."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """``hits / accesses`` over the counted steps (1.0 if nothing was counted)."""
        return self.hits / self.accesses if self.accesses else 1.0


def simulate_expert_cache(
    trace: RoutingTrace, *, slots: int, policy: str = "lru", warmup_steps: int = 0
) -> CacheStats:
    """Run ``trace`` through per-layer caches of ``slots`` experts under ``policy``.

    Every layer's cache starts empty. ``slots`` must hold the largest entry of the
    trace (the experts of one layer and step run together). ``slots >= experts``
    never evicts: only first uses miss.
    """
    factory = REPLACEMENT.get(policy, error_path="policy")
    width = int((trace.ids >= 0).sum(axis=2).max())
    if not isinstance(slots, int) or slots < width:
        raise SpecError(
            [
                Problem(
                    "slots",
                    f"expected an int >= {width} (the most experts one layer runs in one step), "
                    f"found {slots!r}",
                )
            ]
        )
    if not 0 <= warmup_steps < trace.steps:
        raise SpecError(
            [Problem("warmup_steps", f"expected 0..{trace.steps - 1}, found {warmup_steps}")]
        )
    misses = np.zeros((trace.steps, trace.layers), dtype=np.int64)
    used = (trace.ids >= 0).sum(axis=2).astype(np.int64)
    compulsory = 0
    for li in range(trace.layers):
        rows = [trace.entry(s, li) for s in range(trace.steps)]
        repl = factory(rows)
        resident: set[int] = set()
        seen: set[int] = set()
        for s, row in enumerate(rows):
            needed = set(row)
            missing = [e for e in row if e not in resident]
            over = len(resident) + len(missing) - slots
            if over > 0:
                for v in repl.victims(resident, needed, over, now=s):
                    resident.discard(v)
            resident.update(missing)
            repl.touch(row, now=s)
            misses[s, li] = len(missing)
            if s >= warmup_steps:
                compulsory += len(needed - seen)
            seen |= needed
    counted = slice(warmup_steps, None)
    n_miss = int(misses[counted].sum())
    return CacheStats(
        policy=policy,
        slots=slots,
        warmup_steps=warmup_steps,
        hits=int(used[counted].sum()) - n_miss,
        misses=n_miss,
        compulsory_misses=compulsory,
        misses_per_entry=misses,
        used_per_entry=used,
    )


# ---- step time --------------------------------------------------------------------------


def compose_step(
    compute_s: Sequence[float] | FloatArray,
    fetch_s: Sequence[float] | FloatArray,
    *,
    prefetch: str,
    other_s: float = 0.0,
) -> float:
    """Seconds of one step: layers of ``compute_s`` with copies of ``fetch_s`` before them.

    One DMA engine copies in layer order. Layer ``l``'s copy starts when the engine
    is free and compute has reached layer ``l`` (``none``) or layer ``l - 1``
    (``pregated``; layer 0 on demand); layer ``l`` starts when layer ``l - 1`` is done
    and its copy has arrived. ``other_s`` (embedding, final norm, head) is added.
    """
    if prefetch not in PREFETCH_MODES:
        raise SpecError(
            [
                Problem(
                    "prefetch",
                    f"unknown prefetch {prefetch!r} (known: {', '.join(PREFETCH_MODES)})",
                )
            ]
        )
    t = 0.0
    dma_free = 0.0
    prev_arrival = 0.0
    for li, (c, f) in enumerate(zip(compute_s, fetch_s, strict=True)):
        arrival = t
        if f > 0:
            start = prev_arrival if (prefetch == "pregated" and li > 0) else arrival
            ready = max(dma_free, start) + float(f)
            dma_free = ready
            t = max(t, ready)
        t += float(c)
        prev_arrival = arrival
    return t + other_s


def transfer_seconds(system: System, *, home: str, device: str, nbytes: float) -> float:
    """Seconds to copy ``nbytes`` from tier ``home`` to tier ``device`` (DMA, priced by cost.py).

    As the engine's DMA routes (:mod:`memsim.plan`): the latencies of both tiers and of
    every link on the path, plus the busiest of the home tier's read port, each link
    and the device tier's write port at their achievable bandwidths
    (:func:`memsim.cost.transfer_time` each).
    """
    from memsim import cost

    if nbytes <= 0:
        return 0.0
    src, dst = system.tier(home), system.tier(device)
    links = [system.links[n] for n in system.path(home, device)]
    bandwidths = [
        src.effective_read_bandwidth_bytes_per_s,
        dst.effective_write_bandwidth_bytes_per_s,
    ]
    bandwidths += [lk.effective_bandwidth_bytes_per_s for lk in links]
    latency = src.latency_s + dst.latency_s + sum(lk.latency_s for lk in links)
    return latency + max(cost.transfer_time(nbytes, bandwidth=bw) for bw in bandwidths)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpertCacheResult:
    """Hit rate, bytes over the host link and step times of one expert-cache run."""

    model: str
    system: str
    home: str
    device: str
    prefetch: str
    stats: CacheStats
    expert_bytes: float
    step_s: FloatArray = field(repr=False)
    resident_step_s: float
    layer_compute_s: dict[int, list[float]] = field(repr=False)

    @property
    def bytes_moved(self) -> float:
        """Bytes copied into HBM over the counted steps: misses x expert bytes."""
        return self.stats.misses * self.expert_bytes

    @property
    def mean_step_s(self) -> float:
        """Mean step time over the counted steps."""
        return float(self.step_s[self.stats.warmup_steps :].mean())

    def summary(self) -> dict[str, Any]:
        """Plain values for JSON and tables."""
        st = self.stats
        return {
            "model": self.model,
            "system": self.system,
            "home": self.home,
            "policy": st.policy,
            "prefetch": self.prefetch,
            "slots": st.slots,
            "steps": int(self.step_s.size),
            "warmup_steps": st.warmup_steps,
            "accesses": st.accesses,
            "hits": st.hits,
            "misses": st.misses,
            "compulsory_misses": st.compulsory_misses,
            "hit_rate": st.hit_rate,
            "expert_bytes": self.expert_bytes,
            "bytes_moved": self.bytes_moved,
            "mean_step_s": self.mean_step_s,
            "resident_step_s": self.resident_step_s,
            "slowdown_vs_resident": self.mean_step_s / self.resident_step_s,
        }


def expert_bytes(cfg: Any, *, dtype: str = "bf16") -> float:
    """Bytes of one expert's weights (one layer) in ``dtype``."""
    from memsim.cost import elem_bytes

    return float(cfg.expert_params()) * elem_bytes(dtype)


def _layer_times(
    system: System,
    cfg: Any,
    *,
    active: int,
    slots: int,
    home: str,
    device: str,
    batch: int,
    context_len: int,
    dtype: str,
    fidelity: str,
) -> tuple[list[float], float, float]:
    """Per-layer compute seconds with ``active`` experts resident, the rest, and the makespan."""
    import memsim
    import workloads
    from workloads.options import MoERouting

    E = cfg.experts
    popularity = [1.0] * active + [0.0] * (E - active)
    graph = workloads.decode(
        cfg,
        batch=batch,
        context_len=context_len,
        dtype=dtype,
        moe=MoERouting(popularity=popularity),
    )
    mapping: dict[str, str] = {"weight": device, "kv": device, "activation": device}
    for name, t in graph.tensors.items():
        parts = name.split(".")
        if t.kind == "weight" and len(parts) >= 3 and parts[1].startswith("e"):
            e = int(parts[1][1:])
            mapping[name] = device if e < slots else home
    res = memsim.simulate(system, graph, policy=mapping, fidelity=fidelity)
    layer = np.asarray(res.op_column("layer"), dtype=object)
    start = np.asarray(res.op_column("start_s"), dtype=float)
    end = np.asarray(res.op_column("end_s"), dtype=float)
    times = []
    for li in range(cfg.num_hidden_layers):
        sel = np.array([x == li for x in layer])
        times.append(float(end[sel].max() - start[sel].min()))
    return times, res.makespan_s - sum(times), res.makespan_s


def run_expert_cache(
    system: System | str | Path,
    model: Any,
    trace: RoutingTrace,
    *,
    slots: int,
    policy: str = "lru",
    prefetch: str = "none",
    home: str | None = None,
    batch: int = 1,
    context_len: int = 512,
    dtype: str = "bf16",
    warmup_steps: int = 0,
    fidelity: str = "analytic",
) -> ExpertCacheResult:
    """Hits, bytes moved and step times of ``model`` decoding ``trace`` on ``system``.

    ``model``: a model preset name, a config path or a :class:`workloads.ModelConfig`
    with experts; the trace must have its layer and expert counts. ``home``: the tier
    the offloaded experts live in (default: the fastest host tier). HBM (the fastest
    device tier that is not SRAM) holds every other weight, the KV cache of
    ``batch`` sequences at ``context_len`` and ``slots`` experts per layer; a
    :class:`~memsim.policies.CapacityError` says if it cannot.
    """
    import workloads
    from hw_models import load_system

    sys_ = system if isinstance(system, System) else load_system(system)
    cfg = model if not isinstance(model, (str, Path)) else workloads.load_model(model)
    if not cfg.is_moe:
        raise SpecError([Problem("model", f"{cfg.name} has no experts (not a mixture of experts)")])
    problems = []
    if trace.layers != cfg.num_hidden_layers:
        problems.append(
            Problem("trace", f"has {trace.layers} layers, {cfg.name} has {cfg.num_hidden_layers}")
        )
    if trace.experts != cfg.experts:
        problems.append(
            Problem("trace", f"has {trace.experts} experts, {cfg.name} has {cfg.experts}")
        )
    if prefetch not in PREFETCH_MODES:
        problems.append(
            Problem(
                "prefetch", f"unknown prefetch {prefetch!r} (known: {', '.join(PREFETCH_MODES)})"
            )
        )
    if problems:
        raise SpecError(problems)
    device = next(
        (
            t
            for t in sys_.tiers_by_speed()
            if sys_.tiers[t].scope == "device" and sys_.tiers[t].kind != "sram"
        ),
        None,
    )
    hosts = [t for t in sys_.tiers_by_speed() if sys_.tiers[t].scope == "host"]
    if device is None or not hosts:
        raise SpecError([Problem("system", f"{sys_.name} needs a device memory and a host tier")])
    if home is None:
        home = hosts[0]
    elif home not in sys_.tiers:
        raise SpecError(
            [Problem("home", f"unknown tier {home!r} (known: {', '.join(sys_.tiers)})")]
        )
    stats = simulate_expert_cache(trace, slots=slots, policy=policy, warmup_steps=warmup_steps)
    per_expert = expert_bytes(cfg, dtype=dtype)
    cached_slots = min(slots, cfg.experts)
    layer_s: dict[int, list[float]] = {}
    other: dict[int, float] = {}
    for n in sorted({int(x) for x in np.unique(stats.used_per_entry)}):
        layer_s[n], other[n], _ = _layer_times(
            sys_,
            cfg,
            active=n,
            slots=cached_slots,
            home=home,
            device=device,
            batch=batch,
            context_len=context_len,
            dtype=dtype,
            fidelity=fidelity,
        )
    fetch_of = {
        m: transfer_seconds(sys_, home=home, device=device, nbytes=m * per_expert)
        for m in {int(x) for x in np.unique(stats.misses_per_entry)}
    }
    steps = np.empty(trace.steps)
    resident = np.empty(trace.steps)
    for s in range(trace.steps):
        used = stats.used_per_entry[s]
        compute = [layer_s[int(n)][li] for li, n in enumerate(used)]
        # the non-layer ops do not depend on the experts; any active count gives them
        rest = other[int(used[0])]
        fetch = [fetch_of[int(m)] for m in stats.misses_per_entry[s]]
        steps[s] = compose_step(compute, fetch, prefetch=prefetch, other_s=rest)
        resident[s] = sum(compute) + rest
    return ExpertCacheResult(
        model=cfg.name,
        system=sys_.name,
        home=home,
        device=device,
        prefetch=prefetch,
        stats=stats,
        expert_bytes=per_expert,
        step_s=steps,
        resident_step_s=float(resident[warmup_steps:].mean()),
        layer_compute_s=layer_s,
    )
