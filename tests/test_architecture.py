"""The flow stays one-directional and the core stays light.

hw_models -> (nothing of ours); workloads -> hw_models' hardware-free utilities only;
memsim -> hw_models, workloads (its CLI, the top layer, also explore and plots);
explore -> memsim (+ the two leaves); plots -> anything but explore.
`import memsim`, `hw_models`, `workloads` load no torch, stable-baselines3 or matplotlib.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hw_models", "workloads", "memsim", "explore", "plots", "validation")
ALLOWED: dict[str, set[str]] = {
    "hw_models": set(),
    "workloads": {
        "hw_models.errors",
        "hw_models.units",
        "hw_models.yamlio",
        "hw_models.base",
        "hw_models.fileio",
        "hw_models.jit",
        "hw_models.ceilings",
    },
    "memsim": {"hw_models", "workloads"},
    "explore": {"hw_models", "workloads", "memsim"},
    "plots": {"hw_models", "workloads", "memsim"},
    # validation reproduces published results through public calls, like a user would
    "validation": {"hw_models", "workloads", "memsim", "plots"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


# The CLI is the top layer: its subcommands may drive explorers and draw figures.
CLI_EXTRA = {"explore", "plots", "validation"}


def _allowed(pkg: str, module: str, *, cli: bool = False) -> bool:
    top = module.split(".")[0]
    if top not in PACKAGES or top == pkg:
        return True
    rules = ALLOWED[pkg] | (CLI_EXTRA if cli else set())
    return any(module == r or module.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_imports_point_the_right_way(pkg: str) -> None:
    bad = []
    for path in sorted((ROOT / pkg).rglob("*.py")):
        cli = path.is_relative_to(ROOT / "memsim" / "cli")
        for module in _imports(path):
            if not _allowed(pkg, module, cli=cli):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "\n".join(bad)


def test_core_imports_are_light() -> None:
    code = (
        "import sys, memsim, hw_models, workloads, memsim.cli.main; "
        "heavy = [m for m in ('torch', 'stable_baselines3', 'matplotlib', 'transformers') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("pkg", PACKAGES)
def test_packages_are_typed(pkg: str) -> None:
    assert (ROOT / pkg / "py.typed").exists()
