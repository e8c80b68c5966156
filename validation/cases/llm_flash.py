"""LLM in a flash (Alizadeh et al., ACL 2024): windowing, bundling and the CPU speed-up.

Setting of the paper (Sec. 4, 4.1): OPT 6.7B in fp32, batch 1, a 128-token prompt, about
half the model's memory in DRAM, Apple M1 Max with a 1 TB SSD; the FFN weights live on
flash, attention weights and embeddings in DRAM; a predictor picks about 10 % of the FFN
neurons per token; a window of k = 5 tokens keeps their neurons in DRAM, so each token
loads 2.4 % of the FFN and the window holds 24 %; bundled up/down rows make each read
2 d_model x 4 B = 32 KiB; on the M1 Max this costs 125 ms of flash loading and 65 ms of
memory management per token. Abstract: 4-5x faster than naive loading on CPU, 20-25x on GPU.

memsim runs one decode step (context 128) of ``opt_6_7b`` in fp32 on ``m1_max_cpu``:
``FFNSparsity(active_fraction=0.10, window=5, persistence=rho)`` with ``rho`` solved so
that the loaded fraction is the paper's 2.4 % (an input, not the judged figure), under
``flash_ffn_bundled``; the naive baseline is the dense step under ``flash_ffn`` (every FFN
matrix read whole from flash each token, at the SSD's sequential rate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import memsim
import workloads
from hw_models import load_system
from memsim.result import Coded
from validation.core import Outcome, case

SOURCE = (
    'Alizadeh et al., "LLM in a flash: Efficient Large Language Model Inference with '
    'Limited Memory", ACL 2024 (arXiv 2312.11514), Sec. 4.1 "Results for OPT 6.7B Model" '
    "(window k = 5; ~10 % of neurons active by the predictor; 2.4 % loaded per token; the "
    "window holds 24 % of the FFN; 32 KiB bundled reads; 125 ms flash loading and 65 ms "
    "memory management per token on the M1 Max)"
)
ABSTRACT = (
    'Alizadeh et al., "LLM in a flash", ACL 2024 (arXiv 2312.11514), Abstract: "4-5x and '
    '20-25x increase in inference speed compared to naive loading approaches in CPU and GPU"'
)
ACTIVE, WINDOW, LOADED = 0.10, 5, 0.024  # published inputs (Sec. 4.1)
SYSTEM = "m1_max_cpu"


def solve_persistence(active: float, window: int, loaded: float) -> float:
    """The persistence ``rho`` at which :class:`workloads.FFNSparsity` loads ``loaded``.

    The loaded fraction ``(1 - p)(1 - q)^(k - 1) q`` rises with ``q = p (1 - rho)`` up to
    ``q = 1/k``; bisection on ``q`` in ``(0, min(p, 1/k)]``.
    """
    lo, hi = 0.0, min(active, 1.0 / window)

    def load(q: float) -> float:
        return (1 - active) * (1 - q) ** (window - 1) * q

    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if load(mid) < loaded else (lo, mid)
    return 1.0 - (lo + hi) / 2 / active


def sparsity(active: float = ACTIVE, window: int = WINDOW) -> workloads.FFNSparsity:
    """The paper's windowing, with persistence solved from its 2.4 % loaded fraction."""
    rho = solve_persistence(active, window, LOADED)
    return workloads.FFNSparsity(active_fraction=active, window=window, persistence=rho)


def _graphs() -> tuple[workloads.Graph, workloads.Graph]:
    cfg = workloads.load_model("opt_6_7b")
    dense = workloads.decode(cfg, batch=1, context_len=128, dtype="fp32")
    sparse = workloads.decode(cfg, batch=1, context_len=128, dtype="fp32", ffn_sparsity=sparsity())
    return dense, sparse


def _run(
    policy: str, *, sparse: bool, overrides: Mapping[str, Any] | None = None
) -> memsim.SimResult:
    dense_g, sparse_g = _graphs()
    system = load_system(SYSTEM, overrides=overrides)
    return memsim.simulate(
        system, sparse_g if sparse else dense_g, policy=policy, fidelity="analytic"
    )


def _load_ms(result: memsim.SimResult) -> float:
    col = result.ops["name"]
    names = col.values() if isinstance(col, Coded) else col
    dur = np.asarray(result.ops["duration_s"], dtype=float)
    mask = np.array([str(n).endswith("ffn_load") for n in names], dtype=bool)
    return 1e3 * float(dur[mask].sum())


@case(
    "llm_in_flash_window_cache",
    title="A 5-token window keeps ~24 % of OPT 6.7B's FFN in DRAM",
    source=SOURCE,
    quantity="FFN share held by the k = 5 neuron window",
    unit="%",
    paper=24.0,
    tolerance="model",
    fitted="none fitted to 24 %. Inputs published in the same section: 10 % active, "
    "k = 5, 2.4 % loaded per token; the persistence rho of the Markov activity model is "
    "solved from the 2.4 % (rho ~ 0.70)",
)
def window_cache() -> Outcome:
    sp = sparsity()
    indep = workloads.FFNSparsity(active_fraction=ACTIVE, window=WINDOW)
    sens = {f"p={p:g}": round(100 * sparsity(active=p).cache_fraction, 1) for p in (0.08, 0.12)}
    note = (
        f"Markov model with p = {ACTIVE:g}, rho = {sp.persistence:.3f}: loads "
        f"{100 * sp.load_fraction:.2f} % per token and caches {100 * sp.cache_fraction:.1f} %; "
        f"independent tokens (rho = 0) would load {100 * indep.load_fraction:.1f} % and cache "
        f"{100 * indep.cache_fraction:.1f} %. Sensitivity to the active fraction (rho re-solved): "
        + ", ".join(f"{k} {v} %" for k, v in sens.items())
    )
    return Outcome(
        memsim=100 * sp.cache_fraction,
        note=note,
        details={"persistence": sp.persistence, "sensitivity_pct": sens},
    )


@case(
    "llm_in_flash_load_ms",
    title="Windowed, bundled FFN loading from the M1 Max SSD costs ~125 ms per token",
    source=SOURCE,
    quantity="flash loading time per token, OPT 6.7B fp32, k = 5, bundled 32 KiB reads",
    unit="ms",
    paper=125.0,
    tolerance="model",
    fitted="none fitted. The SSD geometry (apple_m1_max_1tb) is ASSUMED (Apple publishes "
    "none; only its 6.1 GB/s sequential rate is from the paper); queue depth 32 assumed "
    "(the paper reads with parallel threads, count not used here)",
)
def load_ms() -> Outcome:
    bundled = _load_ms(_run("flash_ffn_bundled", sparse=True))
    plain = _load_ms(_run("flash_ffn", sparse=True))
    qd = {
        f"QD {q}": round(
            _load_ms(
                _run(
                    "flash_ffn_bundled",
                    sparse=True,
                    overrides={"tiers.ssd.read_queue_depth": q},
                )
            ),
            1,
        )
        for q in (4, 8, 16)
    }
    ssd = load_system(SYSTEM).tier("ssd")
    bw = ssd.read_bandwidth_at(32768)
    note = (
        f"memsim reads 2.4 % of the 17.2 GB FFN (412 MB) in 32 KiB bundles at {bw / 1e9:.2f} "
        "GB/s (the geometry's bound at 32 KiB and QD 32 is above the tier's 6.1 GB/s "
        "sequential figure); the paper's 125 ms implies ~3.3 GB/s. Unbundled 16 KiB reads: "
        f"{plain:.1f} ms. Sensitivity to the queue depth: "
        + ", ".join(f"{k} {v} ms" for k, v in qd.items())
        + ". The assumed geometry is too fast for this access pattern (the issue's earlier "
        "finding for 8-16 KiB reads); it is not refitted to this figure"
    )
    return Outcome(memsim=bundled, note=note, details={"unbundled_ms": plain, "queue_depth_ms": qd})


@case(
    "llm_in_flash_cpu_speedup",
    title="Windowing + bundling run OPT 6.7B 4-5x faster than naive flash loading on CPU",
    source=ABSTRACT,
    quantity="decode step time, naive / windowed + bundled (OPT 6.7B fp32, M1 Max CPU)",
    unit="x",
    paper=4.5,
    tolerance="order",
    fitted="none fitted. Naive = the dense step with every FFN matrix read whole from flash "
    "(the paper's naive baseline is not itemised in the sources found: assumed); the CPU "
    "bandwidth fraction 0.5 of 409.6 GB/s is ASSUMED; memory management (65 ms in the "
    "paper) is not modelled; sensitivity in the note",
)
def cpu_speedup() -> Outcome:
    naive = _run("flash_ffn", sparse=False).makespan_s
    ours = _run("flash_ffn_bundled", sparse=True).makespan_s
    sens: dict[str, float] = {"+65 ms memory management": round(naive / (ours + 0.065), 2)}
    for frac in (0.25, 1.0):
        o = {"tiers.lpddr.achievable_bandwidth_fraction": frac}
        n = _run("flash_ffn", sparse=False, overrides=o).makespan_s
        s = _run("flash_ffn_bundled", sparse=True, overrides=o).makespan_s
        sens[f"CPU bandwidth x{frac:g}"] = round(n / s, 2)
    note = (
        f"naive {naive * 1e3:.0f} ms (17.2 GB of FFN at 6.1 GB/s), windowed + bundled "
        f"{ours * 1e3:.0f} ms. memsim's CPU step is its roofline (weights from DRAM at the "
        "assumed 205 GB/s, fp32 NEON peak), far faster than the paper's CPU implementation, "
        "so flash dominates both sides and the ratio comes out near the paper's GPU figure "
        "(20-25x). No M1 Max CPU calibration exists to price the paper's compute. "
        "Sensitivity: " + ", ".join(f"{k} {v}x" for k, v in sens.items())
    )
    return Outcome(
        memsim=naive / ours,
        note=note,
        details={"naive_ms": naive * 1e3, "windowed_bundled_ms": ours * 1e3, "sensitivity": sens},
    )
