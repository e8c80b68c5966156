"""Entry point of the ``memsim`` console script.

Every user error (bad YAML, unknown preset, impossible sizes, a trace line that
does not parse) is a :class:`hw_models.SpecError`: printed as one clear message
on stderr, exit status 2, no traceback. So is a path that cannot be read or
written (an ``OSError``: permissions, a file where a folder is expected).
"""

from __future__ import annotations

import argparse
import ast
import errno
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_USER_ERROR = 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with every subcommand module under ``memsim.cli``.

    Start-up is kept short: a module that declares ``COMMANDS`` (a literal dict of
    subcommand name to one-line help) is read without being imported (``ast``), and
    only the module of the subcommand named in ``argv`` is imported and builds its
    full parser; the others appear with their help line. Modules without ``COMMANDS``
    are imported and add their parsers as before. ``argv=None``: every module builds
    its full parser (for tools that walk the whole parser).
    """
    import memsim.cli as cli_pkg

    parser = argparse.ArgumentParser(
        prog="memsim",
        description="Simulate memory hierarchies and accelerators running LLM workloads.",
    )
    parser.add_argument("--version", action="version", version=f"memsim {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _first_positional(argv) if argv is not None else None
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        commands = _declared_commands(Path(cli_pkg.__path__[0]) / f"{info.name}.py")
        if argv is None or commands is None or wanted in commands:
            module = importlib.import_module(f"memsim.cli.{info.name}")
            add = getattr(module, "add_parser", None)
            if add is not None:
                add(sub)
        else:
            for name, text in commands.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


def _version() -> str:
    from memsim import __version__

    return __version__


def _first_positional(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _declared_commands(path: Path) -> dict[str, str] | None:
    """The literal ``COMMANDS`` dict of a CLI module's source, or None."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "COMMANDS"
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(value, dict) and all(isinstance(k, str) for k in value):
                return {str(k): str(v) for k, v in value.items()}
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    from hw_models.errors import SpecError  # after parsing: `memsim --help` stays light

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
