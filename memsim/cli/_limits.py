"""Ceilings on the sizes users give on the command line, checked before any work.

A typo (``--accesses 1e12`` for ``1e6``) must be refused in a second with one line,
not allocate terabytes. Each ceiling is generous for real use, documented in the
option's help, and raised by a ``--max-...`` option of the same subcommand.
"""

from __future__ import annotations

import argparse
import re

from hw_models.ceilings import CEILINGS, DEFAULT_CEILINGS, Ceilings
from hw_models.errors import Problem, SpecError


def count_problem(
    value: int, *, option: str, ceiling: int, raise_with: str, bytes_each: int, what: str
) -> Problem | None:
    """The problem with a count ``value`` (None when it is in ``1..ceiling``).

    The message names the ceiling, the working memory it stands for (``bytes_each``
    per unit, measured) and the option that raises it.
    """
    if value < 1:
        return Problem(option, f"expected an integer >= 1, found {value}")
    if value > ceiling:
        gib = ceiling * bytes_each / 2**30
        return Problem(
            option,
            f"{value} is above the ceiling of {ceiling} {what} (about {gib:.1f} GiB of "
            f"working memory); raise it with {raise_with} N if the machine has the memory",
        )
    return None


_INT = re.compile(r"[-+]?[0-9]+")


def strict_int(text: str) -> int:
    """An argparse ``type`` for integers: ASCII digits only, with an optional sign.

    Python's ``int()`` also takes ``1_000`` and non-ASCII digits (``١٢٣``); a count
    typed that way is more likely a mistake than meant, so it is refused.
    """
    if not _INT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer in ASCII digits, found {text!r:.60}")
    return int(text)


def add_ceiling_options(p: argparse.ArgumentParser) -> None:
    """``--ceiling KIND=VALUE`` and ``--allow-extreme``: raise the plausibility ceilings
    (:mod:`hw_models.ceilings`) for this one command, explicitly."""
    kinds = ", ".join(sorted(CEILINGS))
    p.add_argument(
        "--ceiling",
        action="append",
        default=[],
        metavar="KIND=VALUE",
        help=f"raise one plausibility ceiling (kinds: {kinds}; reasons in docs/robustness.md)",
    )
    p.add_argument(
        "--allow-extreme",
        action="store_true",
        help="lift every plausibility ceiling (values must still be finite and <= 1e30)",
    )


def ceilings_from(args: argparse.Namespace) -> Ceilings:
    """The ceilings a command runs under: the defaults, raised by ``--ceiling`` /
    ``--allow-extreme`` (a namespace without those options gets the defaults)."""
    base = Ceilings.off() if getattr(args, "allow_extreme", False) else DEFAULT_CEILINGS
    raised: dict[str, float] = {}
    for item in getattr(args, "ceiling", None) or []:
        kind, sep, value = item.partition("=")
        try:
            number = float(value) if sep and value.strip().isascii() else float("nan")
        except ValueError:
            number = float("nan")
        if not number == number or number <= 0 or number == float("inf"):
            raise SpecError(
                [Problem("--ceiling", f"expected KIND=VALUE with VALUE > 0, found {item!r:.60}")]
            )
        raised[kind.strip()] = number
    return base.with_limits(raised, option="--ceiling")
