"""Check that a change to the engine keeps results bit-identical: digests of reference runs.

    .venv/bin/python benchmarks/check_identical.py --write ref.json   # before the change
    .venv/bin/python benchmarks/check_identical.py --compare ref.json # after it

Each reference run (7B/13B/70B TP8, pipeline and training graphs, dataflow on sn40l,
calibrated h200, weight streaming over DMA, a request-fidelity DRAM tier; analytic
and event) is reduced to a SHA-256 of every field of its :class:`memsim.SimResult`
(summary, per-op columns, traffic, occupancy, tiers, links, transfers, energy), plus
its summary for a readable diff. Not a test: a tool for performance work, whose rule
is that the bytes do not change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import memsim
from hw_models import load_system
from hw_models.engine_profile import with_engine
from workloads import generate, load_model, train_step


def _digest(r: memsim.SimResult) -> str:
    h = hashlib.sha256()

    def add(x: Any) -> None:
        if isinstance(x, np.ndarray) and x.dtype != object:
            h.update(str(x.dtype).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, np.ndarray):
            h.update(repr(x.tolist()).encode())
        else:
            h.update(repr(x).encode())

    add(json.dumps(r.summary(), sort_keys=True, default=repr))
    for k in r.ops:
        add(k)
        add(r.op_column(k))
    for k in r.traffic:
        add(k)
        add(r.traffic[k])
    for tier, (t, b) in r.occupancy.items():
        add(tier)
        add(t)
        add(b)
    add(r.tiers)
    add(r.links)
    add(r.transfers)
    add(r.energy)
    return h.hexdigest()


def _cases() -> dict[str, Callable[[memsim.SimCache | None], memsim.SimResult]]:
    l7, l13, l70 = load_model("llama2_7b"), load_model("llama2_13b"), load_model("llama2_70b")
    g7 = generate(l7, batch=8, prompt_len=512, gen_len=16)
    g13 = generate(l13, batch=4, prompt_len=256, gen_len=8)
    g70 = generate(l70, tp=8, batch=8, prompt_len=512, gen_len=8)
    gpp = generate(l7, pp=4, batch=2, prompt_len=64, gen_len=3)
    gtr = train_step(l7, batch=4, seq_len=128, micro_batches=4, pp=4, tp=2)
    gsn = generate(l7, batch=1, prompt_len=64, gen_len=4)
    gcal = generate(load_model("llama3_8b"), batch=16, prompt_len=1024, gen_len=8)
    gstream = generate(load_model("opt_30b"), batch=4, prompt_len=64, gen_len=2)
    h100 = load_system("h100_sxm")
    h200c = load_system("h200_sxm_calibrated")
    hbm_req = load_system("h100_sxm", overrides={"tiers.hbm.fidelity": "request"})
    out: dict[str, Callable[[memsim.SimCache | None], memsim.SimResult]] = {}
    for fid in ("analytic", "event"):
        out[f"7b_h100_{fid}"] = lambda c, f=fid: memsim.simulate(h100, g7, fidelity=f, cache=c)
        out[f"13b_a100_{fid}"] = lambda c, f=fid: memsim.simulate(
            "a100_80gb_sxm", g13, fidelity=f, cache=c
        )
        out[f"70b_tp8_dgx_{fid}"] = lambda c, f=fid: memsim.simulate(
            "dgx_h100", g70, fidelity=f, cache=c
        )
        out[f"7b_pp4_dgx_{fid}"] = lambda c, f=fid: memsim.simulate(
            "dgx_h100", gpp, fidelity=f, cache=c
        )
        out[f"train_1f1b_dgx_{fid}"] = lambda c, f=fid: memsim.simulate(
            "dgx_h100", gtr, fidelity=f, cache=c
        )
        out[f"7b_sn40l_dataflow_{fid}"] = lambda c, f=fid: memsim.simulate(
            "sn40l", gsn, fidelity=f, cache=c
        )
        out[f"8b_h200_calibrated_{fid}"] = lambda c, f=fid: memsim.simulate(
            "h200_sxm_calibrated", gcal, fidelity=f, cache=c
        )
        out[f"opt30b_t4_stream_{fid}"] = lambda c, f=fid: memsim.simulate(
            "t4_flexgen", gstream, policy="stream_weights", fidelity=f, cache=c
        )
    for dt in ("int4", "int8"):  # weight-only quantised GEMMs: calibrated dequantisation
        gq = generate(l7, batch=4, prompt_len=128, gen_len=4, dtype=dt)
        for fid in ("analytic", "event"):
            out[f"7b_{dt}_h200_calibrated_{fid}"] = lambda c, f=fid, g=gq: memsim.simulate(
                "h200_sxm_calibrated", g, fidelity=f, cache=c
            )
    # decode attention on the host CPU (a unit with its own memory tier: rerouted accesses)
    gcpu = generate(load_model("opt_6_7b"), batch=4, prompt_len=64, gen_len=3, attention_unit="cpu")
    for fid in ("analytic", "event"):
        out[f"opt6.7b_t4_cpu_attention_{fid}"] = lambda c, f=fid: memsim.simulate(
            "t4_flexgen", gcpu, fidelity=f, cache=c
        )
    out["7b_h100_hbm_request_analytic"] = lambda c: memsim.simulate(
        hbm_req, gsn, fidelity="analytic", cache=c
    )
    out["7b_h200_eager_analytic"] = lambda c: memsim.simulate(
        with_engine(h200c, "eager"), gsn, fidelity="analytic", cache=c
    )
    # hardware points of a sweep over one graph: each one alone, and all through one cache
    sweep = {
        "peak": "compute.tensor.peak_flops_per_s.bf16",
        "hbm": "tiers.hbm.read_bandwidth_bytes_per_s",
    }
    for gname, system, g in (("7b", "h100_sxm", g7), ("70b_tp8", "dgx_h100", g70)):
        for knob, path in sweep.items():
            for v in (2.0e15, 3.0e12) if knob == "peak" else (2.0e12, 4.0e12):
                pt = load_system(system, overrides={path: v})
                out[f"sweep_{gname}_{knob}_{v:g}"] = lambda c, s=pt, g=g: memsim.simulate(
                    s, g, fidelity="analytic", cache=c
                )
    return out


def main() -> int:
    """Write or compare the digests; exit 1 when any differs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="FILE")
    mode.add_argument("--compare", metavar="FILE")
    ap.add_argument("--with-cache", action="store_true", help="also run twice with one SimCache")
    args = ap.parse_args()
    got: dict[str, Any] = {}
    cache = memsim.SimCache()  # a sweep's cache: a second pass hits it and must agree
    for name, run in _cases().items():
        r = run(None)
        got[name] = {"digest": _digest(r), "summary": json.loads(json.dumps(r.summary()))}
        print(f"{name:36s} {got[name]['digest'][:16]}  makespan {r.makespan_s:.9g}")
        if args.with_cache:
            for _ in range(2):  # one cache through every case, twice
                if _digest(run(cache)) != got[name]["digest"]:
                    print(f"   {name}: differs with a SimCache")
                    got[name]["digest"] += "-cache-differs"
    if args.write:
        with open(args.write, "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
        return 0
    with open(args.compare) as f:
        ref = json.load(f)
    bad = [n for n in ref if n not in got or got[n]["digest"] != ref[n]["digest"]]
    for n in bad:
        print(f"DIFFERS: {n}")
        if n in got and got[n]["summary"] != ref[n]["summary"]:
            for k in ref[n]["summary"]:
                if got[n]["summary"].get(k) != ref[n]["summary"][k]:
                    print(f"   {k}: {ref[n]['summary'][k]!r} -> {got[n]['summary'].get(k)!r}")
    print("all identical" if not bad else f"{len(bad)} of {len(ref)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
