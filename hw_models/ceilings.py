"""Plausibility ceilings: the one table of "no real input is this large" limits.

A spec or a command line may hold values that are representable but absurd: a tier of
``capacity_bytes: 2**64``, a bandwidth of ``1e30 B/s``, a clock of ``1e15 Hz``,
``10**6`` layers, a DRAM timing of ``1e18`` cycles, ``--requests 1e12``. Such a value
is nearly always a typo or a machine-generated point gone wrong, and it turns into
overflowed arithmetic, terabyte allocations or runs that never end. Every numeric
field therefore belongs to a *kind* (decided by the unit in its name, see
:func:`kind_of`), and each kind has a ceiling, listed with its reason in
:data:`CEILINGS` (and in ``docs/robustness.md``). A value above its ceiling is
refused with one line naming the field, the value, the ceiling and how to raise it.

Raising a ceiling is always explicit, never a process-wide switch:

* API: pass ``ceilings=DEFAULT_CEILINGS.raised(bytes=2**62)`` (or
  ``Ceilings.off()``) to the loader (``load_system``, ``load_dram_device``,
  ``load_flash_device``, ``workloads.load_model``, :meth:`Ceilings.check`).
* CLI: ``--ceiling KIND=VALUE`` (repeatable) or ``--allow-extreme`` (every
  plausibility ceiling off) on the command that reads the input.

Independently of these, every number must stay finite and at most ``1e30``
(``hw_models.base.MAX_MAGNITUDE``): that bound keeps arithmetic finite and cannot be
lifted.

>>> from hw_models.ceilings import DEFAULT_CEILINGS
>>> DEFAULT_CEILINGS.problem("tiers.hbm.capacity_bytes", 2**64).message[:40]
'1.845e+19 B is above the plausibility ce'
>>> DEFAULT_CEILINGS.raised(bytes=2**65).problem("tiers.hbm.capacity_bytes", 2**64) is None
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hw_models.errors import Problem, SpecError


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The ceiling of one kind of value: ``limit`` (in ``unit``) and why it is there."""

    kind: str
    limit: float
    unit: str
    reason: str


def _c(kind: str, limit: float, unit: str, reason: str) -> tuple[str, Ceiling]:
    return kind, Ceiling(kind, float(limit), unit, reason)


#: The table. Each reason says what the largest real value is (with its source where
#: it is a published figure) and how far above it the ceiling sits.
CEILINGS: Mapping[str, Ceiling] = MappingProxyType(
    dict(
        [
            # --- hardware specs (by the unit in the field name) ---
            _c(
                "bytes",
                2**60,
                "B",
                "1 EiB: capacities and sizes. A 64-bit address space is 16 EiB; a "
                "24-bay server of ~100 TB SSDs (assumed: the largest sold in 2025) holds "
                "a few PB, ~400x below",
            ),
            _c(
                "bandwidth",
                1e18,
                "B/s",
                "1 EB/s: the fastest memory of a shipping part, Cerebras WSE-3 on-chip "
                "SRAM at 21 PB/s (Cerebras WSE-3 announcement, March 2024), is 50x below",
            ),
            _c(
                "compute",
                1e20,
                "FLOP/s",
                "100 EFLOP/s: a whole NVIDIA GB200 NVL72 rack is 1.4 EFLOP/s at FP4 "
                "(NVIDIA GB200 NVL72 product page), 70x below",
            ),
            _c(
                "clock",
                1e11,
                "Hz",
                "100 GHz: processor and DRAM clocks are below 10 GHz (per-pin data rates "
                "are data_rate_mtps fields, not clocks)",
            ),
            _c(
                "data_rate",
                1e6,
                "MT/s",
                "1,000,000 MT/s per pin: GDDR7, the fastest DRAM interface, reaches "
                "192 GB/s per x32 device, 48,000 MT/s per pin (JEDEC JESD239 "
                "announcement, March 2024), 20x below",
            ),
            _c(
                "time",
                86400,
                "s",
                "one day: latencies, flash array times (tERASE is milliseconds), "
                "overheads and solver limits are far shorter",
            ),
            _c(
                "cycles",
                10_000_000,
                "cycles",
                "10^7 clock cycles (10 ms at 1 GHz): the longest JEDEC timing held in "
                "cycles, the refresh interval tREFI, is 12,480 cycles at DDR4-3200 "
                "(7.8 us, JESD79-4), 800x below; larger values make a simulation run for ever",
            ),
            _c(
                "energy",
                1e-6,
                "J",
                "1 uJ per byte or per FLOP: DRAM access costs ~10-100 pJ/B and NAND "
                "programming ~1 nJ/B, 1,000x below",
            ),
            _c(
                "power",
                1e6,
                "W",
                "1 MW: a GB200 NVL72 rack draws ~120 kW (NVIDIA), 8x below",
            ),
            _c("iops", 1e9, "IO/s", "10^9 IO/s: the fastest NVMe SSDs do ~3 M IOPS, 300x below"),
            _c("volts", 100, "V", "100 V: DRAM supply rails are 1-2.5 V"),
            _c(
                "current",
                1e6,
                "mA",
                "1,000 A: JEDEC IDD currents of one DRAM device are below 1 A (IDD4R of "
                "DDR5-4800 is 530 mA)",
            ),
            _c(
                "count",
                2**24,
                "",
                "16.8 M: counts of units, rows, queue entries, positions; the largest real "
                "ones (WSE-3's 900,000 cores, 10 M-token contexts) are below",
            ),
            _c(
                "dram_columns",
                2**16,
                "",
                "65,536 columns per row: DDR4/DDR5/HBM devices have 1,024-2,048 "
                "(JESD79-4, JESD79-5, JESD238), 32x below; capacity products stay below 2^63",
            ),
            _c(
                "dram_banks",
                256,
                "",
                "256 per level (channels per device, ranks, bank groups, banks per group): "
                "DDR5 has 8 bank groups of 4 banks, HBM3 up to 16 pseudo-channels",
            ),
            _c(
                "cache_lines",
                2**26,
                "",
                "67 M lines in one simulated cache (4 GiB of 64-byte lines): the cache "
                "simulator keeps ~24 B of state per line (~1.6 GiB here), and real last-level "
                "caches hold a few million lines at most (assumed: ~100 MB of L3)",
            ),
            _c(
                "layers",
                1024,
                "",
                "1,024 layers: the deepest published LLMs have ~130 (Llama 3.1 405B: 126)",
            ),
            _c(
                "experts",
                4096,
                "",
                "4,096 experts: published MoE models have up to 256 routed experts (DeepSeek-V3)",
            ),
            # --- command-line counts ---
            _c(
                "requests",
                1_000_000,
                "",
                "10^6 serving requests or RL trace requests: each request holds Python "
                "state through the whole run (~1 KiB), and 10^6 already takes minutes",
            ),
            _c(
                "points",
                10_000_000,
                "",
                "10^7 design points or simulator calls: a sweep store row is ~1 KiB and a "
                "point costs milliseconds at least, so 10^7 is hours and ~10 GiB",
            ),
            _c("seeds", 10_000, "", "10^4 repeated runs: statistics settle after tens"),
            _c(
                "workers",
                1024,
                "",
                "1,024 local processes: each loads the simulator (~200 MiB), so 1,024 "
                "already needs ~200 GiB",
            ),
            _c(
                "batch",
                2**20,
                "",
                "2^20 sequences in one batch: serving engines run up to a few thousand",
            ),
            _c(
                "tokens",
                2**24,
                "",
                "16.8 M tokens of prompt, generation or context: the longest published "
                "context window is 10 M tokens (Llama 4 Scout)",
            ),
            _c(
                "devices",
                2**16,
                "",
                "65,536 devices in one parallel group: the largest training jobs use "
                "~10^4-10^5 GPUs in all, with tensor-parallel groups of 8-64",
            ),
            _c(
                "ops",
                10_000_000,
                "",
                "10^7 ops in one graph: a 405B model's decode step has ~2,000",
            ),
        ]
    )
)

#: Field-name suffixes -> kind (longest first), and the scale to the kind's unit.
_SUFFIXES: tuple[tuple[str, str, float], ...] = (
    ("_bytes_per_s", "bandwidth", 1.0),
    ("_flops_per_s", "compute", 1.0),
    ("_j_per_byte", "energy", 1.0),
    ("_j_per_flop", "energy", 1.0),
    ("_j_per_flop_by_dtype", "energy", 1.0),
    ("_iops", "iops", 1.0),
    ("_bytes", "bytes", 1.0),
    ("_mtps", "data_rate", 1.0),
    ("_hz", "clock", 1.0),
    ("_ns", "time", 1e-9),
    ("_s", "time", 1.0),
    ("_w", "power", 1.0),
)
#: Fields whose kind is not told by a unit suffix.
_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "num_hidden_layers": "layers",
        "num_local_experts": "experts",
        "num_experts_per_tok": "experts",
        "columns": "dram_columns",
        "ranks": "dram_banks",
        "bank_groups": "dram_banks",
        "banks_per_group": "dram_banks",
        "seconds": "time",
        "VDD": "volts",
        "VPP": "volts",
        **dict.fromkeys(
            (
                "channels",
                "rows",
                "devices",
                "count",
                "array_rows",
                "array_cols",
                "ways",
                "level",
                "rrpv_bits",
                "dies_per_channel",
                "planes_per_die",
                "pages_per_block",
                "blocks_per_plane",
                "queue_depth",
                "read_queue_depth",
                "chips_per_rank",
                "bus_width_bits",
                "burst_length",
                "device_width_bits",
                "transfers_per_clock",
                "hidden_size",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "intermediate_size",
                "vocab_size",
                "max_position_embeddings",
                "type_vocab_size",
                "kernels",
                "sections",
                "n",
                "k",
                "m",
            ),
            "count",
        ),
    }
)
_CURRENT = re.compile(r"^I(DD|PP)\w+$")
_DRAM_TIMING = re.compile(r"^n[A-Z][A-Za-z0-9_]*$")
#: Fields that are ratios, fractions or fitted coefficients: no plausibility ceiling.
_UNBOUNDED = frozenset(
    {"value", "std", "ratio", "traffic_factor", "overprovisioning", "position_offset"}
)


def kind_of(field_name: str) -> str | None:
    """The ceiling kind of a numeric field, from its name (None: no plausibility ceiling).

    The unit suffix decides (``_bytes``, ``_bytes_per_s``, ``_hz``, ``_s`` ...); JEDEC
    timing names (``nRCD``) are cycles, ``IDD*``/``IPP*`` currents; counts are listed by
    name. Any other field (a seed, a ratio, a fitted coefficient) has no ceiling.

    >>> kind_of("read_bandwidth_bytes_per_s"), kind_of("nRCD"), kind_of("rows")
    ('bandwidth', 'cycles', 'count')
    """
    if field_name in _UNBOUNDED or "fraction" in field_name:
        return None
    if field_name in _FIELDS:
        return _FIELDS[field_name]
    for suffix, kind, _ in _SUFFIXES:
        if field_name.endswith(suffix):
            return kind
    if _CURRENT.match(field_name):
        return "current"
    if _DRAM_TIMING.match(field_name):
        return "cycles"
    return None


def _scale(field_name: str) -> float:
    for suffix, _, scale in _SUFFIXES:
        if field_name.endswith(suffix):
            return scale
    return 1.0


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}"


@dataclass(frozen=True, slots=True)
class Ceilings:
    """A set of ceilings, one per kind (``math.inf``: none). Immutable; pass it explicitly.

    ``Ceilings()`` is the documented default (:data:`CEILINGS`);
    ``.raised(bytes=2**62)`` lifts some; ``Ceilings.off()`` lifts all.
    """

    limits: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({k: c.limit for k, c in CEILINGS.items()})
    )

    @classmethod
    def off(cls) -> Ceilings:
        """No plausibility ceiling at all (values must still be finite and <= 1e30)."""
        return cls(MappingProxyType(dict.fromkeys(CEILINGS, math.inf)))

    def raised(self, **limits: float) -> Ceilings:
        """These ceilings with some kinds set to new limits (unknown kinds are an error)."""
        return self.with_limits(limits)

    def with_limits(self, limits: Mapping[str, float], *, option: str = "ceilings") -> Ceilings:
        """These ceilings with ``limits`` (kind -> value) applied; raises :class:`SpecError`."""
        bad = [k for k in limits if k not in CEILINGS]
        if bad:
            known = ", ".join(sorted(CEILINGS))
            raise SpecError([Problem(option, f"unknown kind {bad[0]!r} (known: {known})")])
        return Ceilings(MappingProxyType({**self.limits, **limits}))

    def limit(self, kind: str) -> float:
        """The ceiling of ``kind``."""
        return self.limits[kind]

    def problem(
        self, path: str, value: Any, *, kind: str | None = None, name: str | None = None
    ) -> Problem | None:
        """The problem with ``value`` at ``path``, or None when it is within its ceiling.

        ``name`` is the field name that tells the kind and unit (default: the last
        name of ``path``); ``kind`` overrides it (for command-line values).
        """
        name = name or path.rsplit(".", 1)[-1].split("[", 1)[0]
        kind = kind or kind_of(name)
        if kind is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        limit = self.limits[kind]
        scale = _scale(name) if kind == "time" else 1.0
        if abs(value) * scale <= limit:
            return None
        c = CEILINGS[kind]
        unit = f" {c.unit}" if c.unit else ""
        shown = f"{_fmt(value)}{unit}" if scale == 1.0 else f"{_fmt(value)} ({value * scale:.4g} s)"
        return Problem(
            path,
            f"{shown} is above the plausibility ceiling for {kind} of {_fmt(limit)}{unit} "
            f"({c.reason.split(':')[0]}); if meant, raise it with --ceiling {kind}=VALUE "
            f"(API: ceilings=Ceilings().raised({kind}=VALUE))",
        )

    def value_problem(self, name: str, value: Any) -> str | None:
        """Why the value of field ``name`` (a number, or a dict/list of numbers) is above
        its ceiling; None when it is not. Used by ``Spec`` validation."""
        for p in _value(self, value, "", name):
            return p.message
        return None

    def context(self) -> dict[str, Any]:
        """The pydantic validation context that applies these ceilings:
        ``Spec.model_validate(data, context=ceilings.context())``."""
        return {"ceilings": self}

    def check(self, spec: Any, *, prefix: str = "") -> list[Problem]:
        """Every value of ``spec`` (a pydantic model, nested) above its ceiling."""
        return list(_walk(self, spec, prefix))

    def enforce(self, spec: Any, *, source: str | None = None, prefix: str = "") -> None:
        """Raise :class:`SpecError` (with ``source``) if :meth:`check` finds anything."""
        problems = self.check(spec, prefix=prefix)
        if problems:
            raise SpecError(problems, source=source)

    def check_counts(self, counts: Iterable[tuple[str, str, Any]]) -> None:
        """Raise :class:`SpecError` for any ``(option, kind, value)`` above its ceiling.

        For command-line values: ``check_counts([("--batch", "batch", args.batch)])``.
        """
        problems = [
            p
            for option, kind, value in counts
            if value is not None and (p := self.problem(option, value, kind=kind)) is not None
        ]
        if problems:
            raise SpecError(problems)


DEFAULT_CEILINGS = Ceilings()
"""The documented default ceilings (:data:`CEILINGS`)."""


def _walk(ceilings: Ceilings, node: Any, path: str) -> Iterable[Problem]:
    from pydantic import BaseModel

    if not isinstance(node, BaseModel):
        return
    for name in type(node).model_fields:
        value = getattr(node, name)
        here = f"{path}.{name}" if path else name
        yield from _value(ceilings, value, here, name)


def _value(ceilings: Ceilings, value: Any, here: str, name: str) -> Iterable[Problem]:
    from pydantic import BaseModel

    if value is None or isinstance(value, str):
        return
    if isinstance(value, BaseModel):
        yield from _walk(ceilings, value, here)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, BaseModel):
                yield from _walk(ceilings, v, f"{here}.{k}")
            else:
                yield from _value(ceilings, v, f"{here}.{k}", name)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if isinstance(v, BaseModel):
                yield from _walk(ceilings, v, f"{here}[{i}]")
            else:
                yield from _value(ceilings, v, f"{here}[{i}]", name)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        p = ceilings.problem(here, value, name=name)
        if p is not None:
            yield p
