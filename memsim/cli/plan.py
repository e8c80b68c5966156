"""``memsim plan``: exact planners (pulp MIPs) whose answers are replayed in the simulator.

    memsim plan --system t4_flexgen --model opt_30b --batch 8 --prompt 128 --gen 4
    memsim plan ... --objective energy -o plan.json --format json
    memsim run ... --policy plan:plan.json                  # replay a saved plan
    memsim plan memory --model llama2_7b --train --ops 200  # static activation offsets
    memsim plan provision SPACE.yaml --target "tpot_s<=0.02"
    memsim plan residency --system h100_sxm --model mixtral_8x7b --select "*.e*.w_*"

The placement plan is replayed with the event engine, next to the single-policy
baselines (``fastest_fit``, ``stream_weights``, ``kv_offload``). An instance where
nothing fits is refused with the tier and the shortfall (exit status 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hw_models import load_system
from hw_models.errors import Problem, SpecError
from hw_models.fileio import atomic_write_text
from hw_models.units import fmt_bytes
from memsim.cli._limits import add_ceiling_options, ceilings_from
from memsim.cli._output import add_format_option, print_json, print_table

COMMANDS = {
    "plan": "exact planners (MIP): placement/offload, memory reuse, provisioning, residency"
}
WHATS = ("placement", "memory", "provision", "residency")
BASELINES = ("fastest_fit", "stream_weights", "kv_offload")


def _graph(args: argparse.Namespace) -> Any:
    import workloads

    for name in ("batch", "prompt", "gen"):
        if getattr(args, name) < 1:
            raise SpecError(
                [Problem(f"--{name}", f"expected an integer >= 1, found {getattr(args, name)}")]
            )
    ceilings = ceilings_from(args)
    ceilings.check_counts(
        [
            ("--batch", "batch", args.batch),
            ("--prompt", "tokens", args.prompt),
            ("--gen", "tokens", args.gen),
            ("--tp", "devices", args.tp),
            ("--ops", "ops", args.ops),
        ]
    )
    cfg = workloads.load_model(args.model, ceilings=ceilings)
    if args.train:
        return workloads.train_step(cfg, batch=args.batch, seq_len=args.prompt, dtype=args.dtype)
    return workloads.generate(
        cfg,
        batch=args.batch,
        prompt_len=args.prompt,
        gen_len=args.gen,
        dtype=args.dtype,
        tp=args.tp,
    )


def _ranges(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Table rows, consecutive layers with the same split merged (``0-33``)."""
    out: list[list[str]] = []
    prev: tuple[str, str] | None = None
    first = last = ""
    for r in rows:
        split = " | ".join(f"{k} {v:.0%}" for k, v in r["fractions"].items())
        key = (r["kind"], split)
        if key == prev and r["layer"] != "-" and last != "-" and int(r["layer"]) == int(last) + 1:
            last = r["layer"]
            out[-1][0] = f"{first}-{last}"
            continue
        first = last = r["layer"]
        prev = key
        out.append([r["layer"], r["kind"], fmt_bytes(r["bytes"]) if r["bytes"] else "", split])
    return out


def _placement(args: argparse.Namespace) -> int:
    from explore.mip import plan_placement
    from memsim.simulate import simulate

    system = load_system(args.system, overrides=args.set or None, ceilings=ceilings_from(args))
    graph = _graph(args)
    plan = plan_placement(
        system,
        graph,
        objective=args.objective,
        time_limit_s=args.time_limit,
        gap=args.gap,
        solver=args.solver,
    )
    result = simulate(system, graph, policy=plan.placement)
    summary = result.summary()
    baselines: dict[str, float | None] = {}
    why: dict[str, str] = {}
    for name in BASELINES:
        try:
            baselines[name] = simulate(system, graph, policy=name).makespan_s
        except SpecError as err:  # the baseline does not fit: say so
            baselines[name] = None
            why[name] = str(err)
    if args.output:
        atomic_write_text(args.output, _file_text(plan.to_dict()))
    out = {
        "status": plan.status,
        "objective": plan.objective,
        "predicted_s": plan.predicted_s,
        "replayed_s": result.makespan_s,
        "gap": plan.gap,
        "bound_s": plan.bound if plan.objective != "energy" else None,
        "solve_s": plan.solve_s,
        "solve_cpu_s": plan.solve_cpu_s,
        "plan_s": plan.plan_s,
        "solver": plan.solver,
        "predicted_energy_j": plan.predicted_energy_j,
        "replayed_energy_j": summary.get("energy_j"),
        "tokens_per_s": summary.get("tokens_per_s"),
        "activation_tier": plan.activation_tier,
        "baselines": baselines,
        "baseline_errors": why,
        "size": dict(plan.size),
        "table": list(plan.table),
        "plan_file": args.output,
    }
    if args.format == "json":
        print_json(out)
        return 0
    print(f"placement plan for {args.model} on {system.name} ({plan.objective})")
    print_table(_ranges(list(plan.table)), ["layer", "kind", "bytes", "where (share of bytes)"])
    print()
    gap = "n/a" if plan.gap is None else f"{plan.gap:.2%}"
    print(
        f"predicted  {plan.predicted_s:.4g} s   replayed (event engine) {result.makespan_s:.4g} s"
    )
    print(
        f"status     {plan.status}, gap {gap}, solve {plan.solve_s:.2f} s "
        f"({plan.solve_cpu_s:.2f} CPU s; planning {plan.plan_s:.2f} s, {plan.solver})"
    )
    if plan.predicted_energy_j is not None:
        print(
            f"energy     predicted {plan.predicted_energy_j:.4g} J, replayed "
            f"{summary.get('energy_j', float('nan')):.4g} J"
        )
    rows = [[n, "does not fit" if v is None else f"{v:.4g} s"] for n, v in baselines.items()]
    print_table([["plan", f"{result.makespan_s:.4g} s"], *rows], ["policy", "replayed"])
    if args.output:
        print(f"wrote {args.output} (replay: memsim run ... --policy plan:{args.output})")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from explore.mip.memory_reuse import buffers_from_graph, plan_memory

    graph = _graph(args)
    buffers = [b for b in buffers_from_graph(graph) if b.start < args.ops]
    buffers = [b for b in buffers if b.end < args.ops] or buffers
    plan = plan_memory(buffers, time_limit_s=args.time_limit, solver=args.solver)
    out = {**plan.to_dict(), "ops": args.ops}
    if args.output:
        atomic_write_text(args.output, _file_text(out))
    if args.format == "json":
        print_json(out)
        return 0
    print(
        f"static offsets for {plan.n_buffers} buffers "
        f"(activation values of the first {args.ops} ops)"
    )
    print_table(
        [
            ["MIP plan", fmt_bytes(plan.peak_bytes)],
            ["best-fit allocator", fmt_bytes(plan.best_fit_bytes)],
            ["lower bound (max live)", fmt_bytes(plan.lower_bound_bytes)],
        ],
        ["layout", "peak"],
    )
    gap = "n/a" if plan.gap is None else f"{plan.gap:.2%}"
    print(
        f"fragmentation removed: {plan.fragmentation_removed:.0%} of the best-fit allocator's "
        f"{fmt_bytes(plan.best_fit_bytes - plan.lower_bound_bytes)} above the bound; "
        f"status {plan.status}, gap {gap}, solve {plan.solve_s:.2f} s"
    )
    return 0


def _provision(args: argparse.Namespace) -> int:
    from explore.mip.provisioning import plan_provision
    from explore.space import DesignSpace

    if not args.space:
        raise SpecError([Problem("SPACE", "memsim plan provision needs a space file")])
    if not args.target:
        raise SpecError([Problem("--target", "give a target such as tpot_s<=0.02")])
    space = DesignSpace.from_yaml(args.space)
    plan = plan_provision(
        space, target=args.target, cost=args.cost, time_limit_s=args.time_limit, solver=args.solver
    )
    out = plan.to_dict()
    if args.output:
        atomic_write_text(args.output, _file_text(out))
    if args.format == "json":
        print_json(out)
        return 0
    print_table([[k, v] for k, v in plan.point.items()], ["knob", "chosen"])
    print(
        f"{plan.cost_name} {plan.cost:g}; {plan.metric} simulated {plan.simulated:.4g} "
        f"(linear model {plan.predicted:.4g}) {plan.sense} {plan.target:g}; "
        f"{plan.evaluations} simulations, {plan.rounds} MIP round(s), {plan.solve_s:.2f} s"
    )
    return 0


def _residency(args: argparse.Namespace) -> int:
    from explore.mip.residency import plan_residency
    from memsim.simulate import simulate

    system = load_system(args.system, overrides=args.set or None, ceilings=ceilings_from(args))
    graph = _graph(args)
    plan = plan_residency(
        system, graph, select=args.select, time_limit_s=args.time_limit, solver=args.solver
    )
    replay = simulate(system, graph, policy=plan.placement).makespan_s
    out = {**plan.to_dict()["residency"], "replayed_s": replay}
    if args.output:
        atomic_write_text(args.output, _file_text(plan.to_dict()))
    if args.format == "json":
        print_json(out)
        return 0
    print(
        f"resident {len(plan.resident)} of {len(plan.resident) + len(plan.offloaded)} "
        f"({fmt_bytes(plan.room_bytes)} of room); predicted {plan.predicted_s:.4g} s, "
        f"replayed {replay:.4g} s, all offloaded {plan.all_offloaded_s:.4g} s"
    )
    return 0


#: timings (wall-clock and CPU): printed, never written to a plan file, so that
#: identical runs write identical bytes
_WALL_CLOCK = frozenset({"solve_s", "solve_cpu_s", "plan_s"})


def _file_text(doc: Any) -> str:
    """The JSON a plan file holds: ``doc`` without its wall-clock timings."""

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in _WALL_CLOCK}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(doc), indent=1) + "\n"


def run(args: argparse.Namespace) -> int:
    """Dispatch on the planner asked for."""
    if args.time_limit <= 0:
        raise SpecError([Problem("--time-limit", f"expected > 0, found {args.time_limit}")])
    if not 0 <= args.gap < 1:
        raise SpecError([Problem("--gap", f"expected 0 <= gap < 1, found {args.gap}")])
    if args.space and args.what != "provision":
        raise SpecError(
            [Problem("SPACE", f"a space file is for 'plan provision', not {args.what!r}")]
        )
    return {
        "placement": _placement,
        "memory": _memory,
        "provision": _provision,
        "residency": _residency,
    }[args.what](args)


def add_parser(sub: Any) -> None:
    """Register ``plan``."""
    p = sub.add_parser(
        "plan",
        help=COMMANDS["plan"],
        description="Solve a planning MIP with pulp (HiGHS if installed, else CBC) and replay "
        "the answer in the simulator.",
    )
    p.add_argument("what", nargs="?", choices=WHATS, default="placement", help="which planner")
    p.add_argument("space", nargs="?", default=None, help="space file (plan provision)")
    p.add_argument("--system", default="h100_sxm", help="system preset or YAML file")
    p.add_argument("--model", default="llama2_7b", help="model preset or config.json")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt", type=int, default=512, help="prompt tokens (--train: sequence)")
    p.add_argument("--gen", type=int, default=4, help="generated tokens")
    p.add_argument("--train", action="store_true", help="plan a training step instead")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--objective", choices=["latency", "throughput", "energy"], default="latency")
    p.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        help="solver CPU seconds (this process and the CBC runs it starts; wall seconds "
        "on an idle machine)",
    )
    p.add_argument("--gap", type=float, default=0.01, help="relative optimality gap to stop at")
    p.add_argument("--solver", choices=["auto", "highs", "cbc"], default="auto")
    p.add_argument("--ops", type=int, default=200, help="plan memory: the first N ops")
    p.add_argument("--target", default=None, help='plan provision: e.g. "tpot_s<=0.02"')
    p.add_argument("--cost", default=None, help="plan provision: derived cost name")
    p.add_argument("--select", default="kv", help="plan residency: tensor kind or glob")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="system override")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the plan (JSON)")
    add_format_option(p)
    add_ceiling_options(p)
    p.set_defaults(func=run)
