"""Start-up stays light: `memsim --help` and importing memsim load no heavy package.

Timings live in benchmarks/bench_points.py; these tests pin the cause (what is
imported), which does not depend on the machine's load.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "numba", "scipy", "pandas", "simpy", "matplotlib", "pydantic")

PROBE = """
import contextlib, io, json, sys
from memsim.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(argv: list[str]) -> list[str]:
    code = PROBE.format(argv=argv, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_top_level_help_imports_nothing_heavy() -> None:
    assert _loaded(["--help"]) == []


def test_a_subcommand_loads_only_what_it_needs() -> None:
    # `memsim run --help` needs the specs (pydantic, numpy), never numba, scipy, simpy,
    # pandas or matplotlib; `memsim dram --help` never compiles or imports numba
    run = _loaded(["run", "--help"])
    assert not {"numba", "scipy", "simpy", "pandas", "matplotlib"} & set(run)
    assert "numba" not in _loaded(["dram", "--help"])


def test_import_memsim_is_light() -> None:
    code = f"import sys, memsim; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
