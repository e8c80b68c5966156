"""The GPU microbenchmark harness, exercised in its CPU mode (tests never use a GPU).

What a user relies on: the CSV has the shared calibration format
(``shared/calibration/h200_sxm/microbenchmarks.csv``: ``section,name,time_s,params_json``),
every requested section appears with the shared row names, derived rates follow from
the time and shape, rows are flushed as measured, one failing section or an exhausted
budget does not spoil the file, and the script imports nothing but the stdlib and torch.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.trace
torch = pytest.importorskip("torch")

from memsim.measure import harness  # noqa: E402

HARNESS = Path(harness.__file__)
E2E = Path(__file__).resolve().parents[2] / "validation" / "h200_e2e.py"

# the shared file's header and row names per section (shared/calibration/h200_sxm/README.md)
HEADER = ["section", "name", "time_s", "params_json"]
NAMES = {
    "gemm": None,  # shape names; the CPU mode uses tiny shapes
    "memory": {"d2d_copy", "read_amax"},
    "launch": {"eager_tiny_kernel"},  # graph_tiny_kernel is CUDA only
    "elementwise": {"rmsnorm_4096", "silu_mul_11008", "residual_add_4096"},
    "attention": {"prefill_causal", "decode"},
    "latency": {"pointer_chase_64B_lines"},
    "layer_ops": {
        "rope_qk",
        "kv_write_prefill",
        "rope_qk_decode",
        "kv_write_decode",
        "rmsnorm_4096",
        "silu_mul_11008",
        "residual_add_4096",
    },
    "graph_checks": None,  # SDPA on model layouts, GEMMs in a graph (tiny shapes on CPU)
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == HEADER
        return [dict(zip(HEADER, row, strict=True)) for row in reader]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]], str]:
    out = tmp_path_factory.mktemp("measure") / "mb.csv"
    log = io.StringIO()
    n = harness.run(str(out), quick=True, device="cpu", log=log)
    rows = _read(out)
    assert n == len(rows)
    return out, rows, log.getvalue()


def test_every_requested_section_appears_with_the_shared_row_names(
    cpu_run: tuple[Path, list[dict[str, str]], str],
) -> None:
    _, rows, log = cpu_run
    for section, names in NAMES.items():
        got = {r["name"] for r in rows if r["section"] == section}
        assert got, f"no {section} rows"
        if names is not None:
            assert got == names
    assert not [r for r in rows if r["section"] == "pcie"]  # CUDA only: skipped, with a note
    assert "pcie: CUDA only" in log


def test_rows_parse_and_rates_follow_from_time_and_shape(
    cpu_run: tuple[Path, list[dict[str, str]], str],
) -> None:
    _, rows, _ = cpu_run
    for r in rows:
        t = float(r["time_s"])
        p = json.loads(r["params_json"])
        assert t > 0 and isinstance(p, dict)
        if r["section"] == "gemm":
            # tflops = 2MNK/t, gbps = (MK + NK + MN) x 2 bytes / t (bf16 and fp16)
            m, n, k = p["m"], p["n"], p["k"]
            assert p["tflops"] == pytest.approx(2 * m * n * k / t / 1e12, rel=1e-5)
            assert p["gbps"] == pytest.approx((m * k + n * k + m * n) * 2 / t / 1e9, rel=1e-5)
            assert p["dtype"] in ("bf16", "fp16")
        elif r["name"] == "d2d_copy":
            assert p["gbps_rw"] == pytest.approx(2 * p["bytes"] / t / 1e9, rel=1e-5)
        elif r["name"] == "decode":
            # K and V read once; the CPU mode runs fp32 (4 bytes)
            kv = 2 * p["b"] * p["hkv"] * p["L"] * p["d"] * 4
            assert p["kv_bytes"] == kv
            assert p["gbps"] == pytest.approx(kv / t / 1e9, rel=1e-5)
        elif r["name"] == "prefill_causal":
            assert p["tflops"] == pytest.approx(
                2 * p["b"] * p["h"] * p["s"] ** 2 * p["d"] / t / 1e12, rel=1e-5
            )
        elif r["section"] == "elementwise" and r["name"] == "rmsnorm_4096":
            assert p["bytes"] == p["m"] * 4096 * 2 * 2  # bf16 read + write
        elif r["section"] == "layer_ops":
            # hand counts of what the kernels move (CPU mode: fp32 q/k/v, head dim 16)
            e, d, tok = 4, p.get("d", 0), p["tokens"]
            want = {
                "rope_qk": 10 * tok * (p.get("h", 0) + p.get("hkv", 0)) * d * e,
                "rope_qk_decode": 10 * tok * (p.get("h", 0) + p.get("hkv", 0)) * d * e,
                "kv_write_prefill": 2 * 2 * tok * p.get("hkv", 0) * d * e,
                "kv_write_decode": 2 * 2 * tok * p.get("hkv", 0) * d * e,
                "rmsnorm_4096": tok * 4096 * 36,  # HF RMSNorm: 36 B per element
                "silu_mul_11008": tok * 11008 * 10,  # 5 bf16 passes
                "residual_add_4096": tok * 4096 * 6,
            }[r["name"]]
            assert p["bytes"] == want, r["name"]
            assert p["gbps"] == pytest.approx(want / t / 1e9, rel=1e-5)
    gemm = {
        (r["name"], json.loads(r["params_json"])["dtype"]) for r in rows if r["section"] == "gemm"
    }
    assert {d for _, d in gemm} == {"bf16", "fp16"}


def test_env_json_describes_the_machine(cpu_run: tuple[Path, list[dict[str, str]], str]) -> None:
    out, _, _ = cpu_run
    env = json.loads(Path(str(out) + ".env.json").read_text())
    assert env["torch"] == torch.__version__
    assert env["device"] == "cpu"
    assert env["date"].startswith("20")


def test_sections_subset_and_unknown_name() -> None:
    assert harness.parse_sections("gemm,launch") == ["launch", "gemm"]
    assert harness.parse_sections("") == list(harness.RUN_ORDER)
    assert sorted(harness.RUN_ORDER) == sorted(harness.SECTIONS)
    with pytest.raises(ValueError, match="unknown section 'gemms'"):
        harness.parse_sections("gemms")


def test_a_failing_section_writes_nothing_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(b: harness.Bench) -> Iterator[harness.Row]:
        def row() -> None:
            b.write("memory", "d2d_copy", float("nan"), {})  # a bad time is refused

        yield row
        raise RuntimeError("boom")

    monkeypatch.setitem(harness.SECTION_ROWS, "memory", broken)
    out, log = tmp_path / "mb.csv", io.StringIO()
    harness.run(str(out), sections=["memory", "launch"], device="cpu", quick=True, log=log)
    rows = _read(out)
    assert [r["section"] for r in rows] == ["launch"]
    assert "memory: a row failed" in log.getvalue()
    assert "memory: section failed: RuntimeError: boom" in log.getvalue()


def test_rows_are_flushed_as_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mb.csv"
    seen: list[int] = []

    def probe(b: harness.Bench) -> Iterator[harness.Row]:
        yield lambda: b.write("launch", "eager_tiny_kernel", 1e-5, {})
        # read the file while the run goes on: rows land in FILE.partial at once,
        # and FILE itself does not exist until the run has finished (never half-written)
        yield lambda: seen.extend([len(_read(partial)), int(out.exists())])

    partial = tmp_path / "mb.csv.partial"
    monkeypatch.setitem(harness.SECTION_ROWS, "launch", probe)
    harness.run(str(out), sections=["launch"], device="cpu", log=io.StringIO())
    assert seen == [1, 0]
    assert len(_read(out)) == 1 and not partial.exists()


def test_a_spent_budget_skips_rows_with_a_note(tmp_path: Path) -> None:
    out, log = tmp_path / "mb.csv", io.StringIO()
    harness.run(str(out), sections=["memory"], device="cpu", budget_s=1e-9, log=log)
    assert _read(out) == []
    assert "memory: budget spent" in log.getvalue()


@pytest.mark.parametrize("script", [HARNESS, E2E], ids=["harness", "h200_e2e"])
def test_scripts_import_only_stdlib_and_torch(script: Path) -> None:
    # they are copied to GPU machines that have torch but not pydantic, simpy or memsim
    allowed = set(sys.stdlib_module_names) | {"torch", "triton", "__future__"}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{script.name}: relative import"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in allowed, f"{script.name} imports {name}"


def test_harness_runs_standalone_from_another_folder(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-I",
            str(HARNESS),
            "-o",
            "mb.csv",
            "--device",
            "cpu",
            "--quick",
            "--sections",
            "launch,attention",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    sections = {r["section"] for r in _read(tmp_path / "mb.csv")}
    assert sections == {"launch", "attention"}
