"""Cost and effect of running a tier at request fidelity (DRAM controller calibration).

    .venv/bin/python benchmarks/bench_request_fidelity.py [--repeat 5] \
        [--json benchmarks/results/request_fidelity.json]

Prints two tables and writes JSON (wall clock, median of ``--repeat`` runs):

1. Llama-2-13B generation on one H100 (batch 16, prompt 2048, 128 generated tokens),
   HBM at ``bandwidth`` vs ``request`` fidelity: the first request-fidelity call in the
   process (numba JIT / cache load + calibration), the calibration alone (after
   ``SimCache.clear``), then warm analytic and event runs, whose ratio to bandwidth fidelity
   should stay within 2x; and the makespans.
2. Per DRAM preset (at its JEDEC data rate, default controller): each access pattern's
   measured fraction of peak, unloaded read latency and calibration time, under the
   default mapping for its standard and under each other address mapping (fractions only),
   which is what DEFAULT_MAPPING in memsim/request_fidelity.py was chosen from.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _timing import timed

import memsim
from hw_models import load_dram_device, load_system
from hw_models.fileio import atomic_write_text
from memsim import SimCache
from memsim import request_fidelity as rf
from workloads import generate, load_model

DEVICES = ("DDR4_3200", "DDR5_4800", "LPDDR5_6400", "HBM2E", "HBM3")


def engine_rows(repeat: int) -> list[dict[str, Any]]:
    """Table 1: the 13B/H100 request with HBM at both fidelities."""
    rows: list[dict[str, Any]] = []

    def row(name: str, seconds: float, **extra: Any) -> None:
        rows.append({"case": name, "seconds": seconds, **extra})
        more = "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()
        )
        print(f"{name:<56} {seconds * 1e3:10.1f} ms  {more}")

    graph = generate(load_model("llama2_13b"), batch=16, prompt_len=2048, gen_len=128)
    cache = SimCache()  # what a sweep keeps per worker: compiled graph, layout, calibrations
    bw = load_system("h100_sxm")
    req = load_system("h100_sxm", overrides={"tiers.hbm.fidelity": "request"})
    memsim.simulate(bw, graph, fidelity="analytic", cache=cache)  # compile, place, lay out
    t0 = time.perf_counter()
    first = memsim.simulate(req, graph, fidelity="analytic", cache=cache)
    row("request, first call (JIT/cache load + calibration)", time.perf_counter() - t0)
    cache.clear()
    memsim.simulate(bw, graph, fidelity="analytic", cache=cache)
    t0 = time.perf_counter()
    memsim.simulate(req, graph, fidelity="analytic", cache=cache)
    row("request, calibration after cache.clear() (+1 analytic run)", time.perf_counter() - t0)
    info = first.meta["tier_fidelity"]["hbm"]
    for fid in ("analytic", "event"):
        t_bw, r_bw = timed(
            lambda fid=fid: memsim.simulate(bw, graph, fidelity=fid, cache=cache), repeat
        )
        t_rq, r_rq = timed(
            lambda fid=fid: memsim.simulate(req, graph, fidelity=fid, cache=cache), repeat
        )
        row(f"{fid}, HBM bandwidth fidelity (warm)", t_bw, makespan_s=r_bw.makespan_s)
        row(
            f"{fid}, HBM request fidelity (warm)",
            t_rq,
            makespan_s=r_rq.makespan_s,
            slowdown=t_rq / t_bw,
        )
    rows.append({"case": "hbm calibration", "tier_fidelity": info})
    print(
        f"HBM3 x5 @ 5234 MT/s: effective fraction {info['bandwidth_fraction']:.3f} "
        f"(spec 0.9), latency {info['latency_s'] * 1e9:.1f} ns (spec 500 ns)"
    )
    for name, c in info["classes"].items():
        print(
            f"  {name:<12} run {c['run_bytes']:>8} B  fraction {c['bandwidth_fraction']:.3f}  "
            f"latency {c['read_latency_s'] * 1e9:5.1f} ns  bytes {c['bytes']:.3g}"
        )
    return rows


def device_rows() -> list[dict[str, Any]]:
    """Table 2: each preset's access patterns."""
    rows: list[dict[str, Any]] = []
    print(
        f"\n{'device':<12} {'pattern':<16} {'run B':>8} {'requests':>9} {'fraction':>9} "
        f"{'lat ns':>7} {'hit rate':>8} {'calib ms':>9}"
    )
    for name in DEVICES:
        dev = load_dram_device(name)
        window = rf.window_requests(dev) * dev.organization.access_bytes
        patterns = (
            ("stream read", False, window),
            ("stream write", True, window),
            ("kv page read", False, rf.KV_PAGE_BYTES),
            ("kv append", True, rf.KV_TOKEN_BYTES),
            ("random burst", False, dev.organization.access_bytes),
        )
        for label, write, run in patterns:
            t0 = time.perf_counter()
            cfg = rf.device_config(rf.DEFAULT_CONFIG, dev)
            c = rf.calibrate_class(dev, config=cfg, write=write, run_bytes=run)
            sec = time.perf_counter() - t0
            rows.append(
                {"device": name, "mapping": cfg.mapping, "pattern": label, "seconds": sec}
                | c.to_dict()
            )
            print(
                f"{name:<12} {label:<16} {c.run_bytes:>8} {c.requests:>9} "
                f"{c.bandwidth_fraction:>9.3f} {c.read_latency_s * 1e9:>7.1f} "
                f"{c.row_hit_rate:>8.2f} {sec * 1e3:>9.1f}"
            )
    return rows


def mapping_rows() -> list[dict[str, Any]]:
    """Table 3: fractions of the three main patterns under every address mapping."""
    from memsim.dram import ControllerConfig
    from memsim.dram.mapping import MAPPING_NAMES

    rows: list[dict[str, Any]] = []
    print(f"\n{'device':<12} {'mapping':<11} {'stream':>7} {'kv page':>8} {'append':>7}  default")
    for name in DEVICES:
        dev = load_dram_device(name)
        window = rf.window_requests(dev) * dev.organization.access_bytes
        default = rf.device_config(rf.DEFAULT_CONFIG, dev).mapping
        for mapping in MAPPING_NAMES:
            cfg = ControllerConfig(mapping=mapping)
            fr = [
                rf.calibrate_class(dev, config=cfg, write=w, run_bytes=r).bandwidth_fraction
                for w, r in ((False, window), (False, rf.KV_PAGE_BYTES), (True, rf.KV_TOKEN_BYTES))
            ]
            rows.append(
                {
                    "device": name,
                    "mapping": mapping,
                    "default": mapping == default,
                    "stream_read": fr[0],
                    "kv_page_read": fr[1],
                    "kv_append": fr[2],
                }
            )
            mark = "*" if mapping == default else ""
            print(f"{name:<12} {mapping:<11} {fr[0]:>7.3f} {fr[1]:>8.3f} {fr[2]:>7.3f}  {mark}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default="benchmarks/results/request_fidelity.json")
    args = ap.parse_args()
    engine = engine_rows(args.repeat)
    devices = device_rows()
    mappings = mapping_rows()
    doc = {
        "benchmark": "request_fidelity",
        "engine": engine,
        "devices": devices,
        "mappings": mappings,
    }
    out = atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
