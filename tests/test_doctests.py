"""Every docstring example in the packages runs and shows what it says.

Modules are found by their source text (a ``>>>`` line), so a module is imported
only when it has examples; a module whose imports need an extra that is not
installed (torch for tracing, the RL stack) is skipped with the reason, never
silently: CI installs every extra, so there they all run.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hw_models", "workloads", "memsim", "explore", "plots")
EXTRAS = {"torch", "transformers", "gymnasium", "pettingzoo", "stable_baselines3", "dask"}


def _modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    # the scan itself: these modules document their API with examples
    assert {"hw_models.units", "memsim.registry", "workloads"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:  # pragma: no cover - only without an extra
        if err.name and err.name.split(".")[0] in EXTRAS:
            pytest.skip(f"{name} needs the {err.name} extra")
        raise
    tests = doctest.DocTestFinder().find(module)
    runnable = [e for t in tests for e in t.examples if not e.options.get(doctest.SKIP)]
    if not runnable:  # e.g. an example that writes files: shown, not run (and said so)
        pytest.skip(f"{name}: every example is marked +SKIP")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, report=True)
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
