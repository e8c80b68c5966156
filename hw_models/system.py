"""A whole system: N identical devices, their compute and tiers, host tiers, links."""

from __future__ import annotations

import hashlib
from collections import deque
from functools import cached_property
from typing import Any

from pydantic import Field, PositiveInt, model_validator

from hw_models.base import Source, Spec
from hw_models.compute import DTYPES, ComputeUnit
from hw_models.engine_profile import EngineProfile
from hw_models.errors import Problem, join_path
from hw_models.link import Link
from hw_models.tier import MemoryTier


def link_problems(tiers: Any, links: Any) -> list[Problem]:
    """Links that name tiers the system does not have, or misuse scopes.

    Works on raw mappings too, so a YAML file with other errors still gets
    these reported.
    """
    if not isinstance(tiers, dict) or not isinstance(links, dict):
        return []
    known = sorted(str(t) for t in tiers)
    out: list[Problem] = []
    for name, link in links.items():
        between = link.get("between") if isinstance(link, dict) else getattr(link, "between", None)
        if not isinstance(between, list | tuple):
            continue
        for i, end in enumerate(between):
            if isinstance(end, str) and end not in tiers:
                out.append(
                    Problem(
                        join_path("links", str(name), "between", i),
                        f"unknown tier {end!r} (known: {', '.join(known)})",
                    )
                )
        if len(between) == 2 and between[0] == between[1] and between[0] in tiers:
            tier = tiers[between[0]]
            scope = tier.get("scope", "device") if isinstance(tier, dict) else tier.scope
            if scope != "device":
                out.append(
                    Problem(
                        join_path("links", str(name), "between"),
                        f"a device-to-device link needs a device-scope tier, {between[0]!r} is "
                        f"{scope}",
                    )
                )
    return out


class System(Spec):
    """A machine: ``devices`` accelerators, each with ``compute`` and device-scope
    ``tiers``, plus host-scope tiers shared by all, joined by ``links``.

    Derived views: :meth:`peak_flops_per_s`, :meth:`ridge_point`,
    :meth:`total_capacity_bytes`, :meth:`path`, :meth:`path_bandwidth_bytes_per_s`.
    """

    name: str = Field(min_length=1)
    description: str = ""
    sources: list[Source] = Field(min_length=1)
    devices: PositiveInt = 1
    compute: dict[str, ComputeUnit] = Field(min_length=1)
    tiers: dict[str, MemoryTier] = Field(min_length=1)
    links: dict[str, Link] = Field(default_factory=dict)
    engine: EngineProfile | None = Field(
        default=None,
        description="the software stack calibrated units are priced for (None: cuda_graphs); "
        "see hw_models/engine_profile.py",
    )
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_caches(cls, data: Any) -> Any:
        if isinstance(data, dict) and "caches" in data:
            raise ValueError(
                "caches: the system simulator does not model caches in front of tiers, so a "
                "`caches:` section would be ignored; simulate caches with `memsim cache` "
                "(hw_models.CacheSpec, memsim.cache)"
            )
        return data

    @model_validator(mode="after")
    def _references(self) -> System:
        problems = link_problems(self.tiers, self.links)
        problems += [
            Problem(
                f"compute.{name}.memory",
                f"unknown tier {u.memory!r} (known: {', '.join(self.tiers)})",
            )
            for name, u in self.compute.items()
            if u.memory is not None and u.memory not in self.tiers
        ]
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        return self

    # ---- derived views -------------------------------------------------------------

    @cached_property
    def spec_hash(self) -> str:
        """A short, stable hash of the whole spec (for result metadata and caches)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def tier(self, name: str) -> MemoryTier:
        """The tier called ``name``; ``KeyError`` listing the known ones otherwise."""
        try:
            return self.tiers[name]
        except KeyError:
            raise KeyError(f"unknown tier {name!r} (known: {', '.join(self.tiers)})") from None

    @property
    def calibrated(self) -> bool:
        """True if every compute unit carries calibrated efficiency parameters."""
        return all(u.efficiency is not None for u in self.compute.values())

    def tiers_by_speed(self) -> list[str]:
        """Tier names, fastest (highest read bandwidth) first; device tiers before host."""
        return sorted(
            self.tiers,
            key=lambda t: (
                self.tiers[t].scope != "device",
                -self.tiers[t].read_bandwidth_bytes_per_s,
            ),
        )

    def main_compute(self, dtype: str = "bf16") -> str:
        """The compute unit with the highest peak for ``dtype``."""
        best, best_peak = None, -1.0
        for name, unit in self.compute.items():
            try:
                peak = unit.peak(dtype)
            except KeyError:
                continue
            if peak > best_peak:
                best, best_peak = name, peak
        if best is None:
            raise KeyError(f"no compute unit of {self.name} supports {dtype}")
        return best

    def peak_flops_per_s(self, dtype: str = "bf16", *, per_device: bool = True) -> float:
        """Dense peak FLOP/s of the fastest unit for ``dtype`` (x devices if not per device)."""
        peak = self.compute[self.main_compute(dtype)].peak(dtype)
        return peak if per_device else peak * self.devices

    def ridge_point(self, tier: str, dtype: str = "bf16") -> float:
        """FLOP per byte at which ``tier``'s peak bandwidth and the peak FLOP/s meet."""
        return self.peak_flops_per_s(dtype) / self.tier(tier).read_bandwidth_bytes_per_s

    def tier_instances(self, name: str) -> int:
        """How many copies of a tier exist: ``devices`` for device scope, else 1."""
        return self.devices if self.tier(name).scope == "device" else 1

    def total_capacity_bytes(self, kind: str | None = None) -> float:
        """Capacity summed over every tier (of ``kind``) and every device."""
        return sum(
            t.capacity_bytes * self.tier_instances(n)
            for n, t in self.tiers.items()
            if kind is None or t.kind == kind
        )

    def path(self, src: str, dst: str) -> list[str]:
        """Names of the links on the shortest path from tier ``src`` to tier ``dst``.

        Device-scope tiers of one device reach each other on the device (no link).

        ``path(t, t)`` is ``[]``: data in a tier does not move. Links between devices'
        copies of a tier are found with :meth:`peer_link`.
        Raises ``KeyError`` if either tier is unknown, ``ValueError`` if no path.
        """
        self.tier(src)
        self.tier(dst)
        if src == dst:
            return []
        adj: dict[str, list[tuple[str, str | None]]] = {t: [] for t in self.tiers}
        on_device = [t for t, spec in self.tiers.items() if spec.scope == "device"]
        for a in on_device:  # device tiers are joined on the device itself, at no link cost
            adj[a] += [(b, None) for b in on_device if b != a]
        for name, lk in self.links.items():
            a, b = lk.between
            if a != b:
                adj[a].append((b, name))
                adj[b].append((a, name))
        prev: dict[str, tuple[str, str | None]] = {}
        queue, seen = deque([src]), {src}
        while queue:
            node = queue.popleft()
            if node == dst:
                break
            for nxt, link in adj[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    prev[nxt] = (node, link)
                    queue.append(nxt)
        if dst not in seen:
            raise ValueError(f"no link path from tier {src!r} to tier {dst!r} in {self.name}")
        out: list[str] = []
        node = dst
        while node != src:
            node, link = prev[node]
            if link is not None:
                out.append(link)
        return out[::-1]

    def peer_link(self, tier: str) -> str | None:
        """The link joining the devices' copies of ``tier`` (NVLink, ICI), if any."""
        self.tier(tier)
        return next((n for n, lk in self.links.items() if lk.between == (tier, tier)), None)

    def path_bandwidth_bytes_per_s(self, src: str, dst: str) -> float:
        """Peak bandwidth of the narrowest link from ``src`` to ``dst`` (inf if none)."""
        links = self.path(src, dst)
        if not links:
            return float("inf")
        return min(self.links[n].bandwidth_bytes_per_s for n in links)

    def summary(self) -> dict[str, Any]:
        """Derived figures in base units, as printed by ``memsim show``."""
        main = self.main_compute("bf16") if self._supports("bf16") else next(iter(self.compute))
        unit = self.compute[main]
        peaks: dict[str, float] = {
            d: float(unit.peak_flops_per_s[d]) for d in DTYPES if d in unit.peak_flops_per_s
        }
        # the ridge point is quoted for the usual training/inference type: bf16, else fp16
        preferred = [d for d in ("bf16", "fp16") if d in peaks]
        ridge_dtype: str = preferred[0] if preferred else max(peaks, key=lambda d: peaks[d])
        tiers: dict[str, dict[str, Any]] = {}
        for name, t in self.tiers.items():
            tiers[name] = {
                "kind": t.kind,
                "scope": t.scope,
                "capacity_bytes": t.capacity_bytes,
                "read_bandwidth_bytes_per_s": t.read_bandwidth_bytes_per_s,
                "write_bandwidth_bytes_per_s": t.write_bandwidth,
                "latency_s": t.latency_s,
                "achievable_bandwidth_fraction": t.achievable_bandwidth_fraction,
                "ridge_point_flop_per_byte": peaks[ridge_dtype] / t.read_bandwidth_bytes_per_s,
                "derived_peak_bandwidth_bytes_per_s": (
                    t.dram.peak_bandwidth_bytes_per_s if t.dram else None
                ),
                "path_from_fastest": self.path(self.tiers_by_speed()[0], name)
                if self._reachable(self.tiers_by_speed()[0], name)
                else None,
            }
        return {
            "name": self.name,
            "description": self.description,
            "devices": self.devices,
            "main_compute": main,
            "peak_flops_per_s": peaks,
            "peak_bf16_flops_per_s": peaks.get("bf16"),
            "peak_flops_per_s_all_devices": peaks[ridge_dtype] * self.devices,
            "ridge_point_dtype": ridge_dtype,
            "tiers": tiers,
            "links": {
                n: {
                    "kind": lk.kind,
                    "between": list(lk.between),
                    "bandwidth_bytes_per_s": lk.bandwidth_bytes_per_s,
                    "latency_s": lk.latency_s,
                }
                for n, lk in self.links.items()
            },
            "total_capacity_bytes": self.total_capacity_bytes(),
            "sources": [s.model_dump(exclude_none=True) for s in self.sources],
            "spec_hash": self.spec_hash,
        }

    def _supports(self, dtype: str, *, unit: ComputeUnit | None = None) -> bool:
        units = [unit] if unit is not None else list(self.compute.values())
        for u in units:
            try:
                u.peak(dtype)
                return True
            except KeyError:
                continue
        return False

    def _reachable(self, a: str, b: str) -> bool:
        try:
            self.path(a, b)
            return True
        except ValueError:
            return False
