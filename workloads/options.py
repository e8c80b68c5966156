"""Options of the graph builders that change the bytes moved (KV budgets, FFN sparsity, MoE).

Each is a small frozen value checked on construction; bad values raise
:class:`~hw_models.errors.SpecError` naming the field.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hw_models.errors import Problem, SpecError


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise SpecError([Problem(path, message)])


@dataclass(frozen=True, slots=True, kw_only=True)
class KVBudget:
    """Keep only part of the KV cache during decode.

    * ``sink``: the first tokens, always kept (StreamingLLM, Xiao et al. 2024);
    * ``recent``: a window of the most recent tokens;
    * ``heavy_fraction``: a fraction of the context kept as "heavy hitters"
      (H2O, Zhang et al. 2023).

    A decode step at context ``c`` reads ``min(c, sink + recent + ceil(heavy_fraction * c))``
    tokens of K and V instead of ``c``. Pass ``kv_budget=None`` for no budget.
    """

    sink: int = 0
    recent: int = 0
    heavy_fraction: float = 0.0

    def __post_init__(self) -> None:
        _require(self.sink >= 0, "kv_budget.sink", f"expected >= 0, found {self.sink}")
        _require(self.recent >= 0, "kv_budget.recent", f"expected >= 0, found {self.recent}")
        _require(
            0.0 <= self.heavy_fraction <= 1.0,
            "kv_budget.heavy_fraction",
            f"expected a fraction in [0, 1], found {self.heavy_fraction}",
        )
        _require(
            self.sink + self.recent > 0 or self.heavy_fraction > 0,
            "kv_budget",
            "keeps no token: give sink, recent or heavy_fraction",
        )

    def tokens(self, context: int) -> int:
        """Tokens of K/V kept (and read) at ``context`` tokens of context."""
        kept = self.sink + self.recent + math.ceil(self.heavy_fraction * context)
        return min(context, kept)


@dataclass(frozen=True, slots=True, kw_only=True)
class FFNSparsity:
    """Contextual FFN activation sparsity with a sliding window of loaded neurons.

    As in "LLM in a flash" (Alizadeh et al., ACL 2024, Sec. 3.1 "windowing"): per
    token only a fraction ``active_fraction`` of the FFN neurons (rows of up/gate,
    columns of down) is used; the neurons used by the last ``window`` tokens are
    kept in a faster tier (the neuron cache), so a decode step only loads the
    neurons that none of the last ``window`` tokens used.

    A neuron's activity over tokens is modelled as a two-state Markov chain with
    stationary probability ``p = active_fraction`` and lag-1 correlation
    ``persistence = rho`` (0: independent tokens; real activations are correlated
    across neighbouring tokens). An inactive neuron turns on with probability
    ``q = p (1 - rho)`` per token, so (derivation in docs/engine.md, "LLM in a flash")::

        loaded per step  = (1 - p) (1 - q)^(window - 1) q      (window >= 1; p at 0)
        cache (k + 1 tokens) = 1 - (1 - p) (1 - q)^window

    With ``rho = 0`` these are ``p (1 - p)^window`` and ``1 - (1 - p)^(window + 1)``.
    :meth:`from_trace` estimates ``p`` and ``rho`` from a recorded activation trace.
    """

    active_fraction: float
    window: int = 5
    persistence: float = 0.0

    def __post_init__(self) -> None:
        _require(
            0.0 < self.active_fraction <= 1.0,
            "ffn_sparsity.active_fraction",
            f"expected a fraction in (0, 1], found {self.active_fraction}",
        )
        _require(self.window >= 0, "ffn_sparsity.window", f"expected >= 0, found {self.window}")
        _require(
            0.0 <= self.persistence < 1.0,
            "ffn_sparsity.persistence",
            f"expected a correlation in [0, 1), found {self.persistence}",
        )

    @property
    def turn_on_probability(self) -> float:
        """``q``: probability that an inactive neuron is active at the next token."""
        return self.active_fraction * (1.0 - self.persistence)

    @property
    def load_fraction(self) -> float:
        """Fraction of FFN weights loaded from the home tier per decode step."""
        p, q, k = self.active_fraction, self.turn_on_probability, self.window
        if k == 0:
            return p
        return (1.0 - p) * (1.0 - q) ** (k - 1) * q

    @property
    def cache_fraction(self) -> float:
        """Fraction of FFN weights held by the sliding-window neuron cache."""
        p, q = self.active_fraction, self.turn_on_probability
        return 1.0 - (1.0 - p) * (1.0 - q) ** self.window

    @classmethod
    def from_trace(cls, active: Sequence[Sequence[bool]], *, window: int = 5) -> FFNSparsity:
        """Estimate ``active_fraction`` and ``persistence`` from an activation trace.

        ``active[t][n]``: whether neuron ``n`` was active at token ``t`` (at least two
        tokens). ``p`` is the mean activity; ``q`` the share of (token, neuron) pairs
        inactive at ``t`` that are active at ``t + 1``; ``rho = 1 - q / p``.
        """
        rows = [[bool(x) for x in row] for row in active]
        _require(len(rows) >= 2, "ffn_sparsity.trace", "expected at least two tokens")
        width = len(rows[0])
        _require(
            width > 0 and all(len(r) == width for r in rows),
            "ffn_sparsity.trace",
            "expected rows of one non-zero length (neurons)",
        )
        ones = sum(sum(r) for r in rows)
        p = ones / (len(rows) * width)
        _require(p > 0, "ffn_sparsity.trace", "no neuron is ever active")
        off = on = 0
        for prev, cur in itertools.pairwise(rows):
            for a, b in zip(prev, cur, strict=True):
                if not a:
                    off += 1
                    on += b
        q = on / off if off else p
        rho = min(max(1.0 - q / p, 0.0), 1.0 - 1e-12)
        return cls(active_fraction=p, window=window, persistence=rho)


@dataclass(frozen=True, slots=True, kw_only=True)
class MoERouting:
    """How tokens are spread over experts.

    ``popularity[e]`` is the share of routing slots going to expert ``e`` (sums to
    1; default uniform). With ``seed=None`` routing is by expectation: expert ``e``
    gets ``tokens * k * p_e`` tokens and its weights are read with the probability
    that at least one token picks it, ``1 - (1 - k p_e)^tokens``. With a seed,
    every step samples each token's ``k`` distinct experts.
    """

    popularity: Sequence[float] | None = None
    zipf_alpha: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.popularity is not None:
            p = [float(x) for x in self.popularity]
            _require(all(x >= 0 for x in p), "moe.popularity", "expected shares >= 0")
            _require(sum(p) > 0, "moe.popularity", "expected some share > 0")
        if self.zipf_alpha is not None:
            _require(
                self.zipf_alpha >= 0, "moe.zipf_alpha", f"expected >= 0, found {self.zipf_alpha}"
            )

    def probabilities(self, experts: int) -> tuple[float, ...]:
        """Normalised popularity over ``experts`` experts."""
        if self.popularity is not None:
            p = [float(x) for x in self.popularity]
            _require(
                len(p) == experts,
                "moe.popularity",
                f"expected {experts} shares (one per expert), found {len(p)}",
            )
        elif self.zipf_alpha is not None:
            p = [1.0 / (i + 1) ** self.zipf_alpha for i in range(experts)]
        else:
            p = [1.0] * experts
        total = sum(p)
        return tuple(x / total for x in p)


#: sparse-prefill patterns of :class:`SparsePrefill` and the fields each one uses
SPARSE_PATTERNS: dict[str, tuple[str, ...]] = {
    "a_shape": ("sink", "local"),
    "vertical_slash": ("vertical", "slash"),
    "block_sparse": ("blocks", "block_size"),
    "density": ("density",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SparsePrefill:
    """Sparse attention in prefill: each query computes only some of the keys it may see.

    The patterns of MInference (Jiang et al., NeurIPS 2024, Sec. 3): every query
    computes at most a fixed budget of keys,

    * ``a_shape``: the first ``sink`` keys and a ``local`` window before the query;
    * ``vertical_slash``: ``vertical`` key columns and ``slash`` diagonals;
    * ``block_sparse``: the ``blocks`` most important key blocks of ``block_size``;
    * ``density``: a given fraction of the causal score matrix (no pattern).

    Query ``i`` (which may see ``n_i`` keys) computes ``min(n_i, budget)`` of them, so
    :meth:`fraction` is ``sum_i min(n_i, B) / sum_i n_i`` (1.0 for short prompts).
    The attention FLOPs and the K/V bytes read scale by that fraction; Q, O and
    the softmax statistics do not. Decode (one query) is never sparse.
    The cost of building the sparse index online is not modelled.
    """

    pattern: str
    sink: int = 0
    local: int = 0
    vertical: int = 0
    slash: int = 0
    blocks: int = 0
    block_size: int = 64
    density: float = 1.0

    def __post_init__(self) -> None:
        _require(
            self.pattern in SPARSE_PATTERNS,
            "sparse_prefill.pattern",
            f"unknown pattern {self.pattern!r} (known: {', '.join(SPARSE_PATTERNS)})",
        )
        for name in ("sink", "local", "vertical", "slash", "blocks"):
            value = getattr(self, name)
            _require(value >= 0, f"sparse_prefill.{name}", f"expected >= 0, found {value}")
        _require(
            self.block_size >= 1,
            "sparse_prefill.block_size",
            f"expected >= 1, found {self.block_size}",
        )
        _require(
            0.0 < self.density <= 1.0,
            "sparse_prefill.density",
            f"expected a fraction in (0, 1], found {self.density}",
        )
        if self.pattern != "density":
            _require(
                self.budget > 0,
                "sparse_prefill",
                f"pattern {self.pattern} computes no key: give "
                f"{' and '.join(SPARSE_PATTERNS[self.pattern])}",
            )

    @property
    def budget(self) -> int:
        """Keys each query computes at most (0 for ``density``)."""
        if self.pattern == "a_shape":
            return self.sink + self.local
        if self.pattern == "vertical_slash":
            return self.vertical + self.slash
        if self.pattern == "block_sparse":
            return self.blocks * self.block_size
        return 0

    def fraction(self, q_len: int, kv_len: int, *, causal: bool = True) -> float:
        """Fraction of the (causal) score matrix computed for ``q_len`` queries."""
        if q_len <= 1:
            return 1.0
        if self.pattern == "density":
            return self.density
        b = self.budget
        if not causal:
            return min(1.0, b / kv_len)
        lo, hi = kv_len - q_len + 1, kv_len  # keys visible to the first and last query
        dense = (lo + hi) * q_len / 2.0
        if b >= hi:
            return 1.0
        if b < lo:
            return b * q_len / dense
        within = (lo + b) * (b - lo + 1) / 2.0  # queries that see at most b keys
        return (within + b * (hi - b)) / dense
