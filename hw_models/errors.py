"""`SpecError`: every problem with a specification, each with its path.

A user who describes hardware (or a model, or a design space) wrongly gets one
exception listing every problem found, each as ``path: message``::

    tiers.hbm.read_bandwidth_bytes_per_s: expected a value > 0, found -3
    links.pcie.between[1]: unknown tier 'dram' (known: ddr, hbm)

The CLI prints ``str(err)`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where (a dotted path, ``''`` for the whole document) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """Bad user input: a list of :class:`Problem`, never empty.

    ``source`` names the file (or preset) the problems were found in.
    """

    def __init__(self, problems: Iterable[Problem | str], *, source: str | None = None) -> None:
        probs = [p if isinstance(p, Problem) else Problem("", p) for p in problems]
        if not probs:
            probs = [Problem("", "invalid specification")]
        self.problems: tuple[Problem, ...] = tuple(probs)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{_printable(self.source, 200)}: " if self.source else ""
        shown = self.problems[:MAX_SHOWN]
        if len(self.problems) == 1:
            return f"{head}{_printable(str(self.problems[0]))}"
        lines = [f"{head}{len(self.problems)} problems:"]
        lines += [f"  - {_printable(str(p))}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  - ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)

    def with_source(self, source: str) -> SpecError:
        """The same problems, attributed to ``source`` (a file path or preset name)."""
        return SpecError(self.problems, source=source)

    def prefixed(self, prefix: str) -> SpecError:
        """The same problems with ``prefix`` put in front of every path."""
        return SpecError(
            [Problem(join_path(prefix, p.path), p.message) for p in self.problems],
            source=self.source,
        )


MAX_SHOWN = 50
"""Problems listed in a message; the rest are counted (all stay in ``problems``)."""
MAX_LINE = 500
"""Characters of one problem shown in a message."""


def _printable(text: str, limit: int = MAX_LINE) -> str:
    """``text`` safe for a terminal: control characters escaped, length capped."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def join_path(*parts: str | int) -> str:
    """Join path parts: names with dots, integers as ``[i]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("[") and out:  # an already joined index: "[1]" or "[1].x"
            out += part
        elif part == "":
            continue
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from_pydantic(err: ValidationError, *, prefix: str = "") -> list[Problem]:
    """Translate pydantic's errors into :class:`Problem` s with dotted paths."""
    out: list[Problem] = []
    for e in err.errors(include_url=False):
        loc: Sequence[str | int] = [p for p in e["loc"] if not _is_tag(p)]
        path = join_path(prefix, *loc)
        kind = e["type"]
        msg = e["msg"]
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind.startswith("value_error"):
            msg = msg.removeprefix("Value error, ")
            said = "found" in msg or "plausibility ceiling" in msg  # already names the value
            if "input" in e and not said and not isinstance(e["input"], dict | list):
                msg = f"{msg}, found {_describe(e['input'])}"
        elif "input" in e and not isinstance(e["input"], dict | list):
            msg = f"{msg[0].lower()}{msg[1:]}, found {_describe(e['input'])}"
        out.append(Problem(path, msg))
    return out


_TAG = re.compile(r"^[A-Za-z_][\w-]*\[.*\]$", re.DOTALL)


def _is_tag(part: object) -> bool:
    # pydantic puts the name of a function validator or union member into loc
    # ("function-after[...]", "list[str]"); a user's key is not one of those
    return isinstance(part, str) and (part.startswith("function-") or bool(_TAG.match(part)))
