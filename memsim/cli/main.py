"""Entry point of the ``memsim`` console script.

Every user error (bad YAML, unknown preset, impossible sizes, a trace line that
does not parse) is a :class:`hw_models.SpecError`: printed as one clear message
on stderr, exit status 2, no traceback. So is a path that cannot be read or
written (an ``OSError``: permissions, a file where a folder is expected).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from hw_models.errors import SpecError

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand module under ``memsim.cli``."""
    import memsim
    import memsim.cli as cli_pkg

    parser = argparse.ArgumentParser(
        prog="memsim",
        description="Simulate memory hierarchies and accelerators running LLM workloads.",
    )
    parser.add_argument("--version", action="version", version=f"memsim {memsim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"memsim.cli.{info.name}")
        add = getattr(module, "add_parser", None)
        if add is not None:
            add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        status = args.func(args)
    except SpecError as err:
        print(f"memsim: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `memsim ... | head`
        return 0
    except OSError as err:  # a path the user gave cannot be read or written
        where = f" {err.filename}" if err.filename else ""
        reason = err.strerror or str(err)
        if err.errno in (errno.EEXIST, errno.ENOTDIR):  # mkdir through a plain file
            reason = "a part of the path is a file, not a folder"
        print(f"memsim: error: cannot access{where}: {reason}", file=sys.stderr)
        return EXIT_USER_ERROR
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
