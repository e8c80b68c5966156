"""Pricing one serving iteration with :func:`memsim.simulate`, memoised by batch shape.

An iteration is a graph built by :func:`workloads.batch_step` from the requests
in it (prompt chunks and decode tokens at their own positions) and priced by
the same :func:`memsim.simulate` path as ``memsim run``: no cost formula lives
here. The memo is an :class:`IterationCost` object that one :func:`serve` call
owns; nothing is kept between calls.

Bucketing (why a 10,000-request run takes seconds). An iteration's shape is
summarised by five numbers: decode sequences ``n_d`` and their mean context
``c``, prompt chunks ``n_p``, their mean length ``q`` and mean cached prefix
``p``. Each number is bracketed on a grid (every integer up to
``exact_below``, then ``steps_per_octave`` points per doubling), the graphs at
the bracketing grid points are simulated once each, and the iteration's time
is the multilinear interpolation between them. Decode time is affine in the
KV bytes read (``n_d * c``) and in the rows of the projections while they stay
on one side of the roofline ridge, which is what bilinear interpolation
reproduces exactly; the error left comes from crossing the ridge inside a
bucket and from representing sequences of different lengths by their mean
(exact for decode attention, whose cost is linear in the keys read; for a
prompt chunk's causal attention, quadratic in its length, it is a small part of
the iteration). ``benchmarks/bench_serve.py`` measures the error against
``exact=True`` (every distinct shape simulated as it is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hw_models import System
from memsim.cost import link_time, tier_read_time, tier_write_time
from memsim.policies import Placement
from memsim.simulate import simulate
from workloads import ModelConfig, batch_step


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucketing:
    """How iteration shapes are grouped for memoisation (see the module doc)."""

    exact: bool = False
    """simulate every distinct shape as it is (slow, no interpolation error)"""
    exact_below: int = 16
    """every integer up to here is a grid point"""
    steps_per_octave: int = 2
    """grid points per doubling of a token or sequence count (2: about 41 % apart)"""
    context_steps_per_octave: int = 1
    """grid points per doubling of a context length (cost is affine in it: coarser)"""

    def bracket(self, x: float, *, context: bool = False) -> tuple[int, int, float]:
        """Grid points ``lo <= x <= hi`` and the weight of ``hi`` in the interpolation."""
        if x <= self.exact_below:
            lo = math.floor(x)
            hi = lo if lo == x else lo + 1
        else:
            s = self.context_steps_per_octave if context else self.steps_per_octave
            e = self.exact_below
            j = math.floor(s * math.log2(x / e))
            lo, hi = self._point(j, s), self._point(j + 1, s)
            while lo > x:
                j -= 1
                lo, hi = self._point(j, s), self._point(j + 1, s)
            while hi < x:
                j += 1
                lo, hi = self._point(j, s), self._point(j + 1, s)
        return lo, hi, (x - lo) / (hi - lo) if hi > lo else 0.0

    def _point(self, j: int, steps: int) -> int:
        return max(self.exact_below, round(self.exact_below * 2.0 ** (j / steps)))


class DeviceResident:
    """Every tensor of an iteration graph in the device tier the block manager sizes.

    The block manager admits only what fits (weights + activations + KV pool),
    so the iteration's graph is priced with everything on the device; a
    capacity check of each graph would duplicate (and contradict) the
    manager's accounting.
    """

    def __init__(self, tier: str) -> None:
        self.tier = tier

    def place(self, system: System, graph: Any) -> Placement:
        """All tensors in ``tier``."""
        return Placement(home=dict.fromkeys(graph.tensors, self.tier), policy="serving")


Shape = tuple[int, int, int, int, int]
"""``(n_decode, decode_context, n_prompt, prompt_chunk, prompt_cached)`` at grid points"""


class IterationCost:
    """Iteration times of one model on one system, memoised (owned by one serve call)."""

    def __init__(
        self,
        system: System,
        cfg: ModelConfig,
        *,
        device_tier: str,
        build_options: dict[str, Any],
        fidelity: str = "analytic",
        bucketing: Bucketing | None = None,
    ) -> None:
        self.system = system
        self.cfg = cfg
        self.build_options = dict(build_options)
        self.fidelity = fidelity
        self.bucketing = bucketing or Bucketing()
        self.policy = DeviceResident(device_tier)
        self._memo: dict[Any, float] = {}
        self._grid_memo: dict[Shape, float] = {}
        self.simulations = 0

    def simulate_sequences(self, sequences: Sequence[tuple[int, int]]) -> float:
        """Seconds of one iteration over ``(new, past)`` sequences, simulated as given."""
        key = tuple(sorted(sequences))
        t = self._memo.get(key)
        if t is None:
            graph = batch_step(self.cfg, sequences=list(key), **self.build_options)
            result = simulate(
                self.system, graph, policy=self.policy, fidelity=self.fidelity, detail="summary"
            )
            t = self._memo[key] = float(result.makespan_s)
            self.simulations += 1
        return t

    def _grid(self, shape: Shape) -> float:
        n_d, c, n_p, q, p = shape
        seqs = [(1, c)] * n_d + [(q, p)] * n_p
        return self.simulate_sequences(seqs)

    def time(
        self,
        *,
        decode_contexts: Sequence[int],
        prompt_chunks: Sequence[tuple[int, int]],
    ) -> float:
        """Seconds of an iteration: decodes at ``decode_contexts`` cached tokens, and prompt
        chunks ``(tokens, cached before)``; exact or interpolated per :attr:`bucketing`."""
        if self.bucketing.exact:
            seqs = [(1, c) for c in decode_contexts] + list(prompt_chunks)
            return self.simulate_sequences(seqs)
        n_d, n_p = len(decode_contexts), len(prompt_chunks)
        c = sum(decode_contexts) / n_d if n_d else 0.0
        q = sum(n for n, _ in prompt_chunks) / n_p if n_p else 0.0
        p = sum(k for _, k in prompt_chunks) / n_p if n_p else 0.0
        return self.interpolate(n_d, c, n_p, q, p)

    def interpolate(self, n_d: float, c: float, n_p: float, q: float, p: float) -> float:
        """Multilinear interpolation of the iteration time between grid shapes."""
        b = self.bucketing.bracket
        none = (0, 0, 0.0)
        dims = (
            b(n_d),
            b(c, context=True) if n_d else none,
            b(n_p),
            b(q) if n_p else none,
            b(p, context=True) if n_p else none,
        )
        base = [lo for lo, _, _ in dims]
        active = [(i, hi, w) for i, (lo, hi, w) in enumerate(dims) if hi > lo and w > 0.0]
        total = 0.0
        for mask in range(1 << len(active)):
            point = base.copy()
            weight = 1.0
            for j, (i, hi, w) in enumerate(active):
                if mask >> j & 1:
                    point[i] = hi
                    weight *= w
                else:
                    weight *= 1.0 - w
            if point[0] == 0:
                point[1] = 0
            if point[2] == 0:
                point[3] = point[4] = 0
            key = (point[0], point[1], point[2], point[3], point[4])
            t = self._grid_memo.get(key)
            if t is None:
                t = self._grid_memo[key] = self._grid(key)
            total += weight * t
        return total

    def swap_time(self, nbytes: float, *, src: str, dst: str) -> float:
        """Seconds to move ``nbytes`` of KV from tier ``src`` to tier ``dst``.

        A pipelined copy runs at its slowest stage: reading ``src``
        (:func:`memsim.cost.tier_read_time`), each link on the path
        (:func:`memsim.cost.link_time`) and writing ``dst``
        (:func:`memsim.cost.tier_write_time`; a flash tier's program bandwidth
        bounds a swap to flash); each link's latency is paid once.
        """
        if nbytes <= 0:
            return 0.0
        links = [self.system.links[n] for n in self.system.path(src, dst)]
        stages = [link_time(lk, nbytes) for lk in links]
        stages.append(tier_read_time(self.system.tier(src), nbytes))
        stages.append(tier_write_time(self.system.tier(dst), nbytes))
        return max(stages) + sum(lk.latency_s for lk in links)
