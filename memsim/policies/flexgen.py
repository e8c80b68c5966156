"""FlexGen's percentage placement: weights, KV cache and activations over GPU, CPU and disk.

FlexGen (Sheng et al., "FlexGen: High-Throughput Generative Inference of Large
Language Models with a Single GPU", ICML 2023, Section 4) describes an offload
engine by a policy of percentages: ``wg, wc, wd`` of the weights, ``cg, cc, cd``
of the KV cache and ``hg, hc, hd`` of the activations on the GPU, in CPU DRAM and
on disk. Each layer's weights are split by whole tensors: walking the layer's
tensors in order, a tensor goes to the tier whose percentage bracket holds the
midpoint of its cumulative byte range (so 20/80/0 of an OPT layer puts ``wq``
and ``wk``, 2/12 of the layer, on the GPU: a tensor is not cut). Weights off the
GPU are streamed into it layer by layer before use (``stream_weights``); the KV
cache and activations are split the same way over all their tensors in layer
order (the first ``cg`` % of the layers' K/V on the GPU) and accessed in place
over the links.

The spec string (``--policy flexgen:SPEC``) is ``w=20,80,0;kv=0,100,0;act=100,0,0``
(any part omitted: 100,0,0), optionally ``;tiers=gddr,ddr,ssd`` to name the
three tiers (default: the fastest device tier, the fastest host DRAM tier, the
fastest flash tier) and ``;prefetch=1``; or the path of a YAML/JSON file with
the same keys (``w: [20, 80, 0]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw_models import System
from hw_models.errors import Problem, SpecError
from memsim.policies.base import (
    POLICIES,
    Placement,
    check_capacity,
    check_tier,
    placeable_tiers,
    staging_reserve_bytes,
)
from memsim.policies.builtin import fill_fastest
from workloads.graph import Graph

_KEYS = ("w", "kv", "act")
_TIER_ROLES = ("gpu", "cpu", "disk")


def _triple(value: Any, *, path: str) -> tuple[float, float, float]:
    """Three percentages summing to 100, else :class:`SpecError` naming ``path``."""
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",")]
    if not isinstance(value, Sequence) or len(value) != 3:
        raise SpecError(
            [Problem(path, f"expected three percentages (GPU,CPU,disk), found {value!r}")]
        )
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise SpecError([Problem(path, f"expected numbers, found {value!r}")]) from None
    if any(not 0 <= v <= 100 for v in out):
        raise SpecError([Problem(path, f"each percentage must be in [0, 100], found {value!r}")])
    if abs(sum(out) - 100.0) > 1e-6:
        raise SpecError([Problem(path, f"percentages must sum to 100, found {sum(out):g}")])
    return out[0], out[1], out[2]


def parse_flexgen_spec(spec: str) -> dict[str, Any]:
    """``w=..;kv=..;act=..;tiers=..;prefetch=..`` or a YAML/JSON file path -> options."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml", ".json"):
        if not p.is_file():
            raise SpecError([Problem("policy.path", f"no such FlexGen policy file: {p}")])
        try:
            if p.suffix == ".json":
                data: Any = json.loads(p.read_text())
            else:
                from hw_models.yamlio import read_yaml

                data, dups = read_yaml(p)
                if dups:
                    raise SpecError(dups, source=str(p))
        except (OSError, ValueError) as err:
            raise SpecError(
                [Problem("", f"cannot read FlexGen policy: {err}")], source=str(p)
            ) from None
        if not isinstance(data, dict):
            raise SpecError([Problem("", "expected a mapping with w, kv, act")], source=str(p))
        items = {str(k): v for k, v in data.items()}
        source: str | None = str(p)
    else:
        items = {}
        for part in filter(None, (s.strip() for s in spec.split(";"))):
            key, eq, val = part.partition("=")
            if not eq:
                raise SpecError([Problem("policy.flexgen", f"expected KEY=VALUE, found {part!r}")])
            items[key.strip()] = val.strip()
        source = None
    unknown = sorted(set(items) - {*_KEYS, "tiers", "prefetch"})
    if unknown:
        raise SpecError(
            [
                Problem(f"policy.flexgen.{k}", "unknown key (known: w, kv, act, tiers, prefetch)")
                for k in unknown
            ],
            source=source,
        )
    out: dict[str, Any] = {}
    try:
        for key in _KEYS:
            if key in items:
                out[key] = _triple(items[key], path=f"policy.flexgen.{key}")
        if "tiers" in items:
            tiers = items["tiers"]
            tiers = tiers.split(",") if isinstance(tiers, str) else tiers
            if not isinstance(tiers, Sequence) or len(tiers) != 3:
                raise SpecError(
                    [Problem("policy.flexgen.tiers", f"expected three tier names, found {tiers!r}")]
                )
            out["tiers"] = tuple(str(t).strip() for t in tiers)
        if "prefetch" in items:
            try:
                depth = int(items["prefetch"])
            except (TypeError, ValueError):
                depth = -1
            if depth < 0:
                raise SpecError(
                    [
                        Problem(
                            "policy.flexgen.prefetch",
                            f"expected an int >= 0, found {items['prefetch']!r}",
                        )
                    ]
                )
            out["prefetch_depth"] = depth
    except SpecError as err:
        raise err.with_source(source) if source else err from None
    return out


def split_by_midpoint(
    names: Sequence[str],
    sizes: Mapping[str, float],
    percents: Sequence[float],
    tiers: Sequence[str],
) -> dict[str, str]:
    """FlexGen's rule: each tensor to the tier whose percentage bracket holds its byte midpoint."""
    total = sum(sizes[n] for n in names)
    bounds = []
    acc = 0.0
    for pct in percents:
        acc += pct
        bounds.append(acc / 100.0)
    out: dict[str, str] = {}
    before = 0.0
    for name in names:
        size = sizes[name]
        mid = (before + size / 2) / total if total > 0 else 0.0
        before += size
        # the first bracket whose upper bound exceeds the midpoint (empty brackets skipped)
        idx = next(
            (i for i, b in enumerate(bounds) if percents[i] > 0 and mid < b),
            max(i for i, p in enumerate(percents) if p > 0),
        )
        out[name] = tiers[idx]
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FlexGenPolicy:
    """Percentage placement of weights / KV / activations over (GPU, CPU, disk) tiers."""

    w: tuple[float, float, float] = (100.0, 0.0, 0.0)
    kv: tuple[float, float, float] = (100.0, 0.0, 0.0)
    act: tuple[float, float, float] = (100.0, 0.0, 0.0)
    tiers: tuple[str, str, str] | None = None
    prefetch_depth: int = 1
    path: str | None = None
    name: str = "flexgen"

    def resolved(self) -> FlexGenPolicy:
        """This policy with the ``path`` spec (string or file) parsed into its fields."""
        if self.path is None:
            return self
        opts = parse_flexgen_spec(self.path)
        return FlexGenPolicy(
            w=opts.get("w", self.w),
            kv=opts.get("kv", self.kv),
            act=opts.get("act", self.act),
            tiers=opts.get("tiers", self.tiers),
            prefetch_depth=opts.get("prefetch_depth", self.prefetch_depth),
            name=self.name,
        )

    def tier_triple(self, system: System) -> tuple[str, str, str]:
        """The (GPU, CPU, disk) tiers: given, or the fastest device, host DRAM and flash tiers."""
        if self.tiers is not None:
            for role, t in zip(_TIER_ROLES, self.tiers, strict=True):
                check_tier(system, t, path=f"policy.flexgen.tiers.{role}")
            return self.tiers
        order = placeable_tiers(system)
        dev = next((t for t in order if system.tiers[t].scope == "device"), None)
        host = next(
            (
                t
                for t in order
                if system.tiers[t].scope == "host" and system.tiers[t].kind != "flash"
            ),
            None,
        )
        disk = next((t for t in order if system.tiers[t].kind == "flash"), None)
        return (dev or "", host or "", disk or "")

    def place(self, system: System, graph: Graph) -> Placement:
        """Split each kind by its percentages; weights off the GPU streamed into it."""
        pol = self.resolved()
        for key in _KEYS:
            _triple(getattr(pol, key), path=f"policy.flexgen.{key}")
        if pol.prefetch_depth < 0:
            raise SpecError([Problem("policy.flexgen.prefetch", "expected an int >= 0")])
        tiers = pol.tier_triple(system)
        problems = []
        for key in _KEYS:
            for role, pct, tier in zip(_TIER_ROLES, getattr(pol, key), tiers, strict=True):
                if pct > 0 and not tier:
                    problems.append(
                        Problem(
                            f"policy.flexgen.{key}",
                            f"{pct:g}% on {role} but {system.name} has no {role} tier "
                            f"(tiers: {', '.join(system.tiers)})",
                        )
                    )
        if problems:
            raise SpecError(problems)
        sizes = {n: t.bytes for n, t in graph.tensors.items()}
        fixed: dict[str, str] = {}
        by_layer: dict[int | None, list[str]] = {}
        for n, t in graph.tensors.items():
            if t.kind == "weight":
                by_layer.setdefault(t.layer, []).append(n)
        for names in by_layer.values():
            fixed.update(split_by_midpoint(names, sizes, pol.w, tiers))
        kv = [n for n, t in graph.tensors.items() if t.kind == "kv"]
        fixed.update(split_by_midpoint(kv, sizes, pol.kv, tiers))
        acts = [n for n, t in graph.tensors.items() if not t.persistent]
        fixed.update(split_by_midpoint(acts, sizes, pol.act, tiers))
        gpu = tiers[0]
        staged = {
            n: gpu for n, t in graph.tensors.items() if t.kind == "weight" and fixed[n] != gpu
        }
        reserved: dict[str, float] = {}
        for n, tier in fixed.items():
            if graph.tensors[n].persistent:
                reserved[tier] = reserved.get(tier, 0.0) + sizes[n]
        if staged:
            reserved[gpu] = reserved.get(gpu, 0.0) + staging_reserve_bytes(
                graph, staged, prefetch_depth=pol.prefetch_depth
            )
        home = fill_fastest(system, graph, fixed=fixed, reserved=reserved, policy=self.name)
        placement = Placement(
            home=home, staged=staged, prefetch_depth=pol.prefetch_depth, policy=self.name
        )
        check_capacity(system, graph, placement)
        return placement


POLICIES.add("flexgen", FlexGenPolicy)
