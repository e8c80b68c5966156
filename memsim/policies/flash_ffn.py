"""LLM in a flash: FFN weights on flash, read neuron by neuron (or in row-column bundles).

Alizadeh et al., "LLM in a flash: Efficient Large Language Model Inference with
Limited Memory" (ACL 2024, arXiv 2312.11514) keep the attention weights and
embeddings in DRAM and the FFN weights on flash. With contextual sparsity
(:class:`workloads.FFNSparsity`, built into decode graphs by ``ffn_sparsity=``)
each decode step loads only the newly active neurons into a DRAM neuron cache
(*windowing*: the ``L{i}.ffn_load`` op reads them from flash, the FFN GEMMs read
the cache). A neuron's weights are a row of the up (and gate) projection and a
column of the down projection:

* ``flash_ffn``: each matrix stored on its own, so a neuron costs one read of
  ``d_model x element bytes`` per matrix;
* ``flash_ffn_bundled``: *row-column bundling* (Sec. 3.2): a neuron's rows of all
  FFN matrices stored together, one read of ``(2 or 3) x d_model x element bytes``.

The flash tier prices each read at its size and queue depth
(:meth:`hw_models.MemoryTier.read_bandwidth_at`): bigger chunks get more bandwidth.
Without sparsity (a dense graph) the FFN matrices are read whole, at the tier's own
request size (the "naive" flash loading of the paper's baselines).
"""

from __future__ import annotations

from dataclasses import dataclass

from hw_models import System
from hw_models.errors import Problem, SpecError
from memsim.policies.base import POLICIES, Placement, check_capacity, check_tier
from memsim.policies.builtin import fill_fastest
from workloads.graph import Graph

FFN_MATRICES = ("w_gate", "w_up", "w_down")


def ffn_weights(graph: Graph) -> dict[int, list[str]]:
    """The FFN weight tensors of each layer (``L{i}.w_up``, ``w_gate``, ``w_down``)."""
    out: dict[int, list[str]] = {}
    for name, t in graph.tensors.items():
        if t.kind == "weight" and t.layer is not None and name.rsplit(".", 1)[-1] in FFN_MATRICES:
            out.setdefault(t.layer, []).append(name)
    return out


def neuron_row_bytes(graph: Graph, name: str) -> float:
    """Bytes of one neuron's slice of an FFN matrix: ``bytes / d_ff`` (``d_ff`` = the
    matrix's neuron dimension: columns of up/gate ``(d_model, d_ff)``, rows of down)."""
    t = graph.tensors[name]
    if len(t.shape) != 2:
        raise SpecError([Problem(f"tensors.{name}.shape", "expected a 2-D FFN matrix")])
    d_ff = t.shape[0] if name.endswith("w_down") else t.shape[1]
    return t.bytes / d_ff


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashFFN:
    """FFN weights homed in the flash ``tier``; everything else fastest-fit.

    ``bundle``: store each neuron's rows of all FFN matrices together (one read per
    neuron) instead of one read per matrix. Applies to sparse decode graphs only
    (those with a neuron cache); dense FFN reads stream whole matrices.
    """

    tier: str | None = None
    bundle: bool = False
    name: str = "flash_ffn"

    def place(self, system: System, graph: Graph) -> Placement:
        """FFN weights on flash with per-neuron read sizes; the rest fastest-fit."""
        if self.tier:
            flash = check_tier(system, self.tier, path="policy.tier")
            if system.tiers[flash].kind != "flash":
                raise SpecError([Problem("policy.tier", f"{flash!r} is not a flash tier")])
        else:
            flashes = [t for t in system.tiers_by_speed() if system.tiers[t].kind == "flash"]
            if not flashes:
                raise SpecError([Problem("policy.tier", f"{system.name} has no flash tier")])
            flash = flashes[0]
        by_layer = ffn_weights(graph)
        if not by_layer:
            raise SpecError([Problem("policy", f"{self.name}: the graph has no FFN weights")])
        names = [n for layer in by_layer.values() for n in layer]
        sparse = any(n.endswith(".ffn_cache") for n in graph.tensors)
        requests: dict[str, float] = {}
        if sparse:
            for layer in by_layer.values():
                rows = {n: neuron_row_bytes(graph, n) for n in layer}
                bundle = sum(rows.values())
                for n in layer:
                    requests[n] = bundle if self.bundle else rows[n]
        fixed = dict.fromkeys(names, flash)
        reserved = {flash: sum(graph.tensors[n].bytes for n in names)}
        home = fill_fastest(system, graph, fixed=fixed, reserved=reserved, policy=self.name)
        placement = Placement(home=home, policy=self.name, read_request_bytes=requests)
        check_capacity(system, graph, placement)
        return placement


def _bundled(**options: object) -> FlashFFN:
    return FlashFFN(bundle=True, name="flash_ffn_bundled", **options)  # type: ignore[arg-type]


POLICIES.add("flash_ffn", FlashFFN)
POLICIES.add("flash_ffn_bundled", _bundled)
