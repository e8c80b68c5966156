"""``memsim plot KIND ... -o FILE``: draw one figure.

The subcommand belongs to the ``plots`` package (:mod:`plots.cli`: its kinds, options
and drawing); this module only registers it with the ``memsim`` command, importing
``plots`` (and matplotlib) when the command line names ``plot``.
"""

from __future__ import annotations

from typing import Any

#: the subcommands this module adds, with their one-line help (read by memsim.cli.main)
COMMANDS = {"plot": "draw a figure (roofline, memory wall, timeline, ...)"}


def add_parser(sub: Any) -> None:
    """Register ``plot``: :func:`plots.cli.add_parser`."""
    from plots.cli import add_parser as add_plot

    add_plot(sub, help=COMMANDS["plot"])
