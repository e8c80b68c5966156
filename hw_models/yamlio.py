"""Strict YAML reading: syntax errors with line numbers, duplicate keys reported.

PyYAML silently keeps the last of two equal keys; here every duplicate is a
:class:`~hw_models.errors.Problem` with its path and both line numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hw_models.errors import Problem, SpecError, join_path


def _duplicates(node: yaml.Node, path: str, out: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            line = key_node.start_mark.line + 1
            child = join_path(path, str(key))
            if key in seen:
                out.append(Problem(child, f"duplicate key (lines {seen[key]} and {line})"))
            else:
                seen[key] = line
            _duplicates(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, join_path(path, i), out)


def parse_yaml(text: str, *, source: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return the data and the duplicate-key problems.

    Raises :class:`SpecError` for a syntax error (with line and column).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(err, "problem", None) or str(err)
        raise SpecError([Problem("", f"{where}invalid YAML: {what}")], source=source) from None
    problems: list[Problem] = []
    if node is not None:
        _duplicates(node, "", problems)
    return data, problems


def read_yaml(path: str | Path) -> tuple[Any, list[Problem]]:
    """Read a YAML file; :class:`SpecError` if it is missing, unreadable or not YAML."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem("", "file not found")], source=str(p)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError([Problem("", f"cannot read file: {err}")], source=str(p)) from None
    return parse_yaml(text, source=str(p))
