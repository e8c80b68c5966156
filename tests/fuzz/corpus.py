"""A corpus of hostile inputs for every input kind memsim reads (issue 16).

Each :class:`Case` is a command line plus the files it names, built from the shipped
presets with one thing broken. Every class of the issue is covered for every kind it
applies to:

1. integers beyond 64 bits             6. unbounded reads (/dev/zero, FIFO, huge file)
2. unbounded work from a tiny input    7. plot inputs (unknown dtype, bad stats, tables)
3. YAML alias bombs                    8. outputs (empty, read-only, symlinked targets)
4. deep nesting, long integers         9. names and odd numbers (``1_000``, non-ASCII
5. infinity, NaN, booleans                digits, control characters, decreasing cycles)

Kinds: system / DRAM / flash specs (YAML), HF model configs (JSON), DRAM traces in each
format (ramulator, dramsim3, stl), cache traces, CLI values, plot inputs (DRAM stats,
sensitivity tables, roofline options) and report inputs (a ``run --out`` folder with
one file damaged).

The contract every case checks: exit 0 or 2, no traceback, within 20 s and 3 GB.
``python -m tests.fuzz.corpus`` prints the corpus size per kind and class.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hw_models.loader import DRAM_DIR, SYSTEM_DIR
from workloads.model_config import PRESET_DIR as MODEL_DIR

SPACE_DIR = Path(__file__).resolve().parents[2] / "explore" / "spaces"

#: a file content that stands for a FIFO (created with os.mkfifo by the runner)
FIFO = b"<fifo>"
#: a file content that stands for a symbolic link to /dev/zero
DEV_ZERO = b"<dev-zero>"
#: a file content that stands for a sparse regular file of 5 GiB
HUGE = b"<huge>"
#: a file content that stands for an existing read-only file
READONLY = b"<readonly>"
#: contents that damage a file of the shared run folder
TRUNCATE = b"<truncate>"
TEXT_COLUMN = b"<text-column:"

TWO_64 = str(2**64)
LONG_INT = "9" * 5000
#: scalars that are not acceptable numbers, with the class each stands for
BAD_NUMBERS: tuple[tuple[int, str], ...] = (
    (1, TWO_64),
    (1, "0x" + "f" * 40),
    (4, LONG_INT),
    (5, ".inf"),
    (5, "1e999"),
    (5, ".nan"),
    (5, "true"),
    (9, "1_000"),
    (9, "\u0661\u0662\u0663"),  # Arabic-Indic digits
    (9, "-3"),
)


@dataclass(frozen=True)
class Case:
    """One hostile input: ``argv`` (``{d}`` is the case's folder) and the files it needs."""

    id: str
    kind: str
    cls: int
    argv: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)
    #: copy the shared small ``run --out`` folder to ``{d}/run`` first
    needs_run: bool = False
    #: run in a subprocess under resource limits (may allocate or block if broken)
    heavy: bool = False
    #: also require exit status 2 (a refusal), not only "0 or 2"
    must_refuse: bool = True
    #: a plausibility ceiling is raised on the command line: it must not refuse
    ceiling_lifted: bool = False


def _yaml_with(source: Path, path: tuple[str, ...], raw: str) -> bytes:
    data = yaml.safe_load(source.read_text())
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = "__V__"
    return yaml.safe_dump(data, sort_keys=False).replace("__V__", raw).encode()


def _json_with(source: Path, key: str, raw: str) -> bytes:
    data = json.loads(source.read_text())
    data[key] = "__V__"
    return json.dumps(data, indent=1).replace('"__V__"', raw).encode()


#: per spec kind: (YAML path, absurd value, the --ceiling that admits it)
ABSURD: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    "system": [
        (("tiers", "hbm", "capacity_bytes"), TWO_64, "bytes=1e20"),
        (("tiers", "hbm", "read_bandwidth_bytes_per_s"), "1e30", "bandwidth=1e30"),
        (("compute", "tensor", "clock_hz"), "1e15", "clock=1e16"),
        (("tiers", "hbm", "latency_s"), "1e9", "time=1e10"),
        (("devices",), "100000000000", "count=1e12"),
    ],
    "dram_spec": [
        (("timing", "nRCD"), str(10**18), "cycles=1e19"),
        (("organization", "rows"), str(2**40), "count=1e13"),
        (("organization", "columns"), str(2**30), "dram_columns=1e10"),
        (("timing", "tCK_ns"), "1e15", "time=1e7"),
        (("data_rate_mtps",), "1e12", "data_rate=1e13"),
    ],
    "flash_spec": [
        (("geometry", "page_bytes"), str(2**61), "bytes=1e19"),
        (("geometry", "tR_s"), "1e9", "time=1e10"),
        (("geometry", "channels"), str(10**9), "count=1e10"),
    ],
}

_BOMB = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _spec_cases() -> list[Case]:
    kinds = {
        "system": (
            SYSTEM_DIR / "h100_sxm.yaml",
            ("tiers", "hbm", "capacity_bytes"),
            ("show", "{d}/spec.yaml"),
        ),
        "dram_spec": (
            DRAM_DIR / "ddr4_3200.yaml",
            ("organization", "rows"),
            ("dram", "--device", "{d}/spec.yaml", "--requests", "200"),
        ),
        "flash_spec": (
            SYSTEM_DIR.parent / "flash" / "apple_m1_max_1tb.yaml",
            ("geometry", "channels"),
            ("flash", "--device", "{d}/spec.yaml", "--requests", "200"),
        ),
    }
    out = []
    for kind, (source, path, argv) in kinds.items():
        for i, (cls, raw) in enumerate(BAD_NUMBERS):
            out.append(
                Case(
                    f"{kind}/{cls}/num{i}",
                    kind,
                    cls,
                    argv,
                    {"spec.yaml": _yaml_with(source, path, raw)},
                )
            )
        # absurd but representable values: refused by a plausibility ceiling
        # (hw_models.ceilings), and accepted once the ceiling is raised explicitly
        for j, (where, raw, kind_ceiling) in enumerate(ABSURD[kind]):
            files = {"spec.yaml": _yaml_with(source, where, raw)}
            out.append(Case(f"{kind}/2/absurd{j}", kind, 2, argv, files))
            out.append(
                Case(
                    f"{kind}/2/absurd{j}_raised",
                    kind,
                    2,
                    (*argv, "--ceiling", kind_ceiling),
                    files,
                    must_refuse=False,
                    ceiling_lifted=True,
                )
            )
        good = source.read_bytes()
        out += [
            Case(f"{kind}/3/bomb", kind, 3, argv, {"spec.yaml": good + b"\n" + _BOMB}),
            Case(f"{kind}/3/self", kind, 3, argv, {"spec.yaml": good + b"\nloop: &l [*l]\n"}),
            Case(
                f"{kind}/4/deep",
                kind,
                4,
                argv,
                {"spec.yaml": good + b"\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n"},
            ),
            Case(f"{kind}/6/devzero", kind, 6, argv, {"spec.yaml": DEV_ZERO}, heavy=True),
            Case(f"{kind}/6/fifo", kind, 6, argv, {"spec.yaml": FIFO}, heavy=True),
            Case(f"{kind}/6/huge", kind, 6, argv, {"spec.yaml": HUGE}, heavy=True),
            Case(f"{kind}/9/ctrl", kind, 9, argv, {"spec.yaml": good + b"\n\x1b[31mkey\x07: 1\n"}),
            Case(
                f"{kind}/9/longline",
                kind,
                9,
                argv,
                {"spec.yaml": good + b"\nzz: " + b"x" * 2_000_000 + b"\n"},
            ),
        ]
    return out


_RUN_MODEL = ("run", "--fidelity", "analytic", "--prompt", "16", "--gen", "1", "--batch", "1")


def _model_cases() -> list[Case]:
    source = MODEL_DIR / "llama2_7b.json"
    argv = (*_RUN_MODEL, "--model", "{d}/config.json")
    out = []
    for i, (cls, raw) in enumerate(BAD_NUMBERS):
        raw = {".inf": "Infinity", ".nan": "NaN"}.get(raw, raw)
        if not raw.lstrip("-").isdigit() and raw not in ("Infinity", "NaN", "true", "1e999"):
            raw = json.dumps(raw)  # a string where a number belongs
        out.append(
            Case(
                f"model/{cls}/num{i}",
                "model",
                cls,
                argv,
                {"config.json": _json_with(source, "hidden_size", raw)},
            )
        )
    out += [
        Case(
            "model/2/layers",
            "model",
            2,
            argv,
            {"config.json": _json_with(source, "num_hidden_layers", "1000000")},
        ),
        Case(
            "model/2/experts",
            "model",
            2,
            argv,
            {"config.json": _json_with(source, "num_local_experts", "1000000")},
        ),
        *(
            Case(
                f"model/2/absurd_{key}",
                "model",
                2,
                argv,
                {"config.json": _json_with(source, key, raw)},
            )
            for key, raw in (
                ("hidden_size", str(10**9)),
                ("vocab_size", str(10**12)),
                ("max_position_embeddings", str(10**12)),
                ("num_attention_heads", str(2**40)),
            )
        ),
        Case(
            "model/2/layers_raised",
            "model",
            2,
            (*argv, "--ceiling", "layers=2000"),
            {"config.json": _json_with(source, "num_hidden_layers", "1100")},
            must_refuse=False,
            ceiling_lifted=True,
        ),
        Case("model/4/deep", "model", 4, argv, {"config.json": b"[" * 5000 + b"]" * 5000}),
        Case("model/6/devzero", "model", 6, argv, {"config.json": DEV_ZERO}, heavy=True),
        Case("model/6/fifo", "model", 6, argv, {"config.json": FIFO}, heavy=True),
        Case("model/6/huge", "model", 6, argv, {"config.json": HUGE}, heavy=True),
    ]
    return out


_TRACE_LINE = {
    "ramulator": "{c} LD {a}",
    "dramsim3": "{a} READ {c}",
    "stl": "{c}: read {a}",
}


def _trace_cases() -> list[Case]:
    out = []
    for fmt, line in _TRACE_LINE.items():
        argv = ("dram", "--device", "ddr4_3200", "--trace", "{d}/t.trace", "--trace-format", fmt)

        def trace(rows: list[tuple[object, object]], line: str = line) -> bytes:
            return "".join(line.format(c=c, a=a) + "\n" for c, a in rows).encode()

        ok = [(i * 4, hex(64 * i)) for i in range(50)]
        out += [
            Case(
                f"dram_{fmt}/1/addr",
                f"dram_{fmt}",
                1,
                argv,
                {"t.trace": trace([*ok, (300, "0x" + "f" * 20)])},
            ),
            Case(
                f"dram_{fmt}/1/cycle",
                f"dram_{fmt}",
                1,
                argv,
                {"t.trace": trace([*ok, (TWO_64, "0x40")])},
            ),
            Case(
                f"dram_{fmt}/2/farfuture",
                f"dram_{fmt}",
                2,
                argv,
                {"t.trace": trace([*ok, (10**15, "0x40")])},
                must_refuse=False,
                heavy=True,  # run under the 3 GB limit: the idle gap must cost O(1)
            ),
            Case(
                f"dram_{fmt}/2/beyond_device",
                f"dram_{fmt}",
                2,
                argv,
                {"t.trace": trace([*ok, (300, hex(2**62))])},
            ),
            Case(
                f"dram_{fmt}/2/cycle_ceiling",
                f"dram_{fmt}",
                2,
                argv,
                {"t.trace": trace([*ok, (2**55, "0x40")])},
            ),
            Case(
                f"dram_{fmt}/4/longint",
                f"dram_{fmt}",
                4,
                argv,
                {"t.trace": trace([(LONG_INT, "0x40")])},
            ),
            Case(
                f"dram_{fmt}/6/devzero", f"dram_{fmt}", 6, argv, {"t.trace": DEV_ZERO}, heavy=True
            ),
            Case(f"dram_{fmt}/6/fifo", f"dram_{fmt}", 6, argv, {"t.trace": FIFO}, heavy=True),
            Case(
                f"dram_{fmt}/9/garbage", f"dram_{fmt}", 9, argv, {"t.trace": bytes(range(256)) * 4}
            ),
            Case(
                f"dram_{fmt}/9/digits",
                f"dram_{fmt}",
                9,
                argv,
                {"t.trace": trace([("\u0661\u0662", "0x40")])},
            ),
            Case(
                f"dram_{fmt}/9/longline",
                f"dram_{fmt}",
                9,
                argv,
                {"t.trace": b"1" * 3_000_000 + b"\n"},
            ),
        ]
        if fmt == "stl":  # STL lines are in time order; dramsim3 lines carry their own cycle
            out.append(
                Case(
                    f"dram_{fmt}/9/decreasing",
                    f"dram_{fmt}",
                    9,
                    argv,
                    {"t.trace": trace([(100, "0x40"), (5, "0x80")])},
                )
            )
    argv = ("cache", "--trace", "{d}/c.txt")
    out += [
        Case("cache_trace/1/addr", "cache_trace", 1, argv, {"c.txt": b"R 0x" + b"f" * 30 + b"\n"}),
        Case("cache_trace/4/longint", "cache_trace", 4, argv, {"c.txt": LONG_INT.encode() + b"\n"}),
        Case("cache_trace/6/devzero", "cache_trace", 6, argv, {"c.txt": DEV_ZERO}, heavy=True),
        Case("cache_trace/6/fifo", "cache_trace", 6, argv, {"c.txt": FIFO}, heavy=True),
        Case("cache_trace/6/huge", "cache_trace", 6, argv, {"c.txt": HUGE}, heavy=True),
        Case("cache_trace/9/garbage", "cache_trace", 9, argv, {"c.txt": bytes(range(256))}),
        Case("cache_trace/9/underscore", "cache_trace", 9, argv, {"c.txt": b"R 1_000\n"}),
    ]
    return out


def _cli_cases() -> list[Case]:
    rows: list[tuple[str, int, tuple[str, ...]]] = [
        ("cache_accesses", 2, ("cache", "--accesses", "1000000000000")),
        (
            "flash_requests",
            2,
            ("flash", "--device", "samsung_pm9a3_7t68", "--requests", "10000000000"),
        ),
        ("dram_requests", 2, ("dram", "--device", "ddr4_3200", "--requests", "1000000000000")),
        ("run_gen", 2, ("run", "--gen", "1000000000")),
        ("run_prompt", 2, ("run", "--prompt", "100000000")),
        ("run_context", 2, ("run", "--prompt", "4000", "--gen", "200")),
        ("run_negative", 9, ("run", "--batch", "-1")),
        ("run_underscore", 9, ("run", "--gen", "1_000")),
        ("run_out_empty", 8, (*_RUN_MODEL, "--out", "")),
        ("run_tables", 8, (*_RUN_MODEL, "--out", "{d}/o", "--tables", "ops,nope")),
        ("cache_seed", 9, ("cache", "--seed", "-5", "--accesses", "10")),
        (
            "flash_bytes",
            1,
            ("flash", "--device", "apple_m1_max_1tb", "--request-bytes", TWO_64 + "KiB"),
        ),
        ("plot_out_empty", 8, ("plot", "roofline", "--system", "h100_sxm", "-o", "")),
        # absurd but well-formed counts: plausibility ceilings (hw_models.ceilings)
        ("serve_requests", 2, ("serve", "--requests", "1000000000000")),
        ("serve_block", 2, ("serve", "--requests", "5", "--block-size", "1000000000000")),
        ("run_batch", 2, ("run", "--fidelity", "analytic", "--batch", "100000000")),
        ("run_tp", 2, ("run", "--fidelity", "analytic", "--tp", "100000000")),
        ("plan_ops", 2, ("plan", "memory", "--ops", "1000000000000")),
        ("model_context", 2, ("model", "llama2_7b", "--context", "1000000000000")),
        ("sweep_budget", 2, ("sweep", "{d}/s.yaml", "--budget", "1000000000000")),
        ("sweep_workers", 2, ("sweep", "{d}/s.yaml", "--workers", "100000")),
        (
            "explore_seeds",
            2,
            (
                "explore",
                "rl",
                "--env",
                "memsim/MemCtrl-v0",
                "--algo",
                "random",
                "--budget",
                "2",
                "--seeds",
                "1000000000",
                "--requests",
                "100",
            ),
        ),
        (
            "explore_requests",
            2,
            (
                "explore",
                "rl",
                "--env",
                "memsim/MemCtrl-v0",
                "--algo",
                "random",
                "--budget",
                "2",
                "--seeds",
                "1",
                "--requests",
                "1000000000000",
            ),
        ),
        (
            "plot_batch",
            2,
            (
                "plot",
                "roofline",
                "--system",
                "h100_sxm",
                "--model",
                "llama2_7b",
                "--batch",
                "1000000000000",
                "-o",
                "{d}/r.png",
            ),
        ),
        ("cache_capacity", 2, ("cache", "--capacity", "16PiB", "--accesses", "100")),
        ("cache_ways", 2, ("cache", "--ways", "1000000000", "--accesses", "100")),
        (
            "flash_qd",
            2,
            (
                "flash",
                "--device",
                "apple_m1_max_1tb",
                "--requests",
                "10",
                "--set",
                "geometry.queue_depth=1000000000",
            ),
        ),
        ("ceiling_unknown", 2, ("show", "h100_sxm", "--ceiling", "nope=5")),
        ("ceiling_value", 2, ("show", "h100_sxm", "--ceiling", "bytes=-1")),
    ]
    space = (SPACE_DIR / "smallest.yaml").read_bytes()
    out = [
        Case(
            f"cli/{cls}/{name}",
            "cli",
            cls,
            argv,
            {"s.yaml": space} if "{d}/s.yaml" in argv else {},
            heavy=cls == 2,
        )
        for name, cls, argv in rows
    ]
    out.append(
        Case(
            "cli/8/plot_out_readonly",
            "cli",
            8,
            ("plot", "roofline", "--system", "h100_sxm", "-o", "{d}/ro.png"),
            {"ro.png": READONLY},
        )
    )
    return out


def _plot_cases() -> list[Case]:
    stats = {"row_hits": 10, "row_misses": 5, "row_conflicts": 1, "read_latencies_ns": [40, 50, 60]}

    def with_(key: str, raw: str) -> bytes:
        return json.dumps({**stats, key: "__V__"}).replace('"__V__"', raw).encode()

    dram = ("plot", "dram", "{d}/s.json", "-o", "{d}/d.png")
    sens = (
        "plot",
        "sensitivity",
        "{d}/t.csv",
        "--knob",
        "k",
        "--objective",
        "y",
        "-o",
        "{d}/s.png",
    )
    out = [
        Case(
            "plot/7/dtype",
            "plot",
            7,
            ("plot", "roofline", "--system", "h100_sxm", "--dtype", "fp7", "-o", "{d}/r.png"),
        ),
        Case(
            "plot/7/dtype_unsupported",
            "plot",
            7,
            ("plot", "roofline", "--system", "h100_sxm", "--dtype", "fp4", "-o", "{d}/r.png"),
        ),
        Case("plot/7/stats_string", "plot", 7, dram, {"s.json": with_("row_hits", '"abc"')}),
        Case("plot/5/stats_bool", "plot", 5, dram, {"s.json": with_("row_misses", "true")}),
        Case("plot/5/stats_inf", "plot", 5, dram, {"s.json": with_("row_misses", "1e999")}),
        Case(
            "plot/7/stats_samples",
            "plot",
            7,
            dram,
            {"s.json": with_("read_latencies_ns", '["x", {}]')},
        ),
        Case("plot/7/stats_empty", "plot", 7, dram, {"s.json": b""}),
        Case("plot/4/stats_deep", "plot", 4, dram, {"s.json": b"[" * 100000 + b"]" * 100000}),
        Case("plot/6/stats_devzero", "plot", 6, dram, {"s.json": DEV_ZERO}, heavy=True),
        Case("plot/6/stats_fifo", "plot", 6, dram, {"s.json": FIFO}, heavy=True),
        Case("plot/7/table_text", "plot", 7, sens, {"t.csv": b"k,y\n1,a\n2,b\n"}),
        Case("plot/6/table_devzero", "plot", 6, sens, {"t.csv": DEV_ZERO}, heavy=True),
        Case("plot/7/table_empty", "plot", 7, sens, {"t.csv": b""}),
    ]
    return out


def _report_cases() -> list[Case]:
    report = ("report", "{d}/run", "-o", "{d}/r.html")
    timeline = ("plot", "timeline", "{d}/run", "-o", "{d}/t.png")
    roof = ("plot", "roofline", "{d}/run", "-o", "{d}/r.svg")
    damaged = {
        "summary_empty": {"run/summary.json": b""},
        "summary_object": {"run/summary.json": b"{}"},
        "summary_list": {"run/summary.json": b"[1, 2]"},
        "summary_makespan": {"run/summary.json": b'{"makespan_s": "soon", "meta": {}}'},
        "summary_devzero": {"run/summary.json": DEV_ZERO},
        "ops_truncated": {"run/ops.csv": TRUNCATE},
        "ops_text": {"run/ops.csv": TEXT_COLUMN + b"start_s>"},
        "timeline_header": {"run/timeline.csv": b"resource\n"},
    }
    out = []
    for name, files in damaged.items():
        cls = 6 if "devzero" in name else 7
        for cmd, argv in (("report", report), ("timeline", timeline), ("roofline", roof)):
            out.append(
                Case(
                    f"report/{cls}/{name}/{cmd}",
                    "report",
                    cls,
                    argv,
                    files,
                    needs_run=True,
                    heavy=cls == 6,
                )
            )
    return out


def corpus() -> list[Case]:
    """Every case, in a fixed order."""
    return (
        _spec_cases()
        + _model_cases()
        + _trace_cases()
        + _cli_cases()
        + _plot_cases()
        + _report_cases()
    )


def sample(n: int, *, seed: int) -> list[Case]:
    """``n`` cases drawn with ``seed``, always including one of each (kind, class) pair."""
    cases = corpus()
    rng = random.Random(seed)
    by_pair: dict[tuple[str, int], list[Case]] = {}
    for c in cases:
        by_pair.setdefault((c.kind, c.cls), []).append(c)
    chosen = {rng.choice(group).id for group in by_pair.values()}
    rest = [c for c in cases if c.id not in chosen]
    chosen |= {c.id for c in rng.sample(rest, max(0, min(len(rest), n - len(chosen))))}
    return [c for c in cases if c.id in chosen]


if __name__ == "__main__":  # pragma: no cover
    counts = Counter((c.kind, c.cls) for c in corpus())
    for (kind, cls), n in sorted(counts.items()):
        print(f"{kind:16s} class {cls:2d}: {n}")
    print(f"total {sum(counts.values())}")
