"""Validation: published results of the field, each reproduced by a case, one table.

``memsim validate`` runs the cases registered in :mod:`validation.cases` and writes
``docs/validation.md``: for each case the source (paper and table or figure), the
paper's figure, memsim's figure, the error, the tolerance class and whether it passed,
with the command that reproduces it. Failures stay in the table with their reason.

This package sits above :mod:`memsim` (like :mod:`explore`): it runs public ``memsim``
calls and reads shipped data; nothing in the engine imports it. The torch-only script
``validation/h200_e2e.py`` (held-out end-to-end timings on a real GPU) is not imported
here.
"""

from __future__ import annotations

from validation.core import (
    TOLERANCES,
    Case,
    CaseResult,
    case_names,
    get_cases,
    render_markdown,
    run_case,
    run_cases,
)

__all__ = [
    "TOLERANCES",
    "Case",
    "CaseResult",
    "case_names",
    "get_cases",
    "render_markdown",
    "run_case",
    "run_cases",
]
