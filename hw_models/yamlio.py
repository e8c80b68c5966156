"""Strict YAML reading for specs: one parse, duplicate keys and aliases reported.

PyYAML silently keeps the last of two equal keys; here every duplicate is a
:class:`~hw_models.errors.Problem` with its path and both line numbers.

Specs are plain data, so the reader is deliberately narrower than YAML 1.1:

* **No anchors or aliases.** ``&a`` / ``*a`` let a 300-byte file expand into
  gigabytes (an "alias bomb") or refer to itself; a spec never needs them.
* **Numbers as in YAML 1.2's core schema**, ASCII digits only: ``1_000``,
  ``1:20`` (base 60) and ``0b101`` are not numbers (they stay strings and the
  field that expects a number says so); ``017`` is seventeen, not octal; only
  ``true``/``false`` are booleans (not ``yes``/``on``); dates stay strings.
  Integers longer than :data:`MAX_INT_DIGITS` digits are refused.
* Nesting deeper than :data:`MAX_DEPTH` levels is refused (libyaml itself stops
  at 1000), as are files larger than :data:`MAX_SPEC_BYTES` and anything that is
  not a regular file (a FIFO, ``/dev/zero``).

libyaml's C parser is used when PyYAML was built with it (the pure-Python one
otherwise, with the same results). Parsed documents are memoised by their text
(:func:`parse_yaml` returns a fresh copy of the memoised data, so callers may
change it): the same text always gives the same data, so this changes no result.
"""

from __future__ import annotations

import copy
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.constructor import ConstructorError

from hw_models.errors import Problem, SpecError, join_path

MAX_DEPTH = 64
MAX_SPEC_BYTES = 16 * 2**20
MAX_INT_DIGITS = 40
MEMO_ENTRIES = 64
MEMO_MAX_CHARS = 1 << 20

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_Base):  # type: ignore[misc,valid-type]
    """PyYAML safe loader with YAML 1.2 core-schema scalars (see the module doc)."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}
    yaml_constructors: ClassVar[dict[Any, Any]] = dict(yaml.SafeLoader.yaml_constructors)


_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if not _INT.match(text):
        raise ConstructorError(None, None, f"{text[:40]!r} is not an integer", node.start_mark)
    if len(text) > MAX_INT_DIGITS:
        raise ConstructorError(
            None,
            None,
            f"integer of {len(text)} digits (at most {MAX_INT_DIGITS} are accepted)",
            node.start_mark,
        )
    if text.startswith("0x"):
        return int(text[2:], 16)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    if not _FLOAT.match(text):
        raise ConstructorError(None, None, f"{text[:40]!r} is not a number", node.start_mark)
    low = text.lower()
    if low.endswith(".inf"):
        return -math.inf if low.startswith("-") else math.inf
    if low == ".nan":
        return math.nan
    return float(text)


SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)

_MEMO: OrderedDict[str, tuple[Any, tuple[Problem, ...]]] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _check_nodes(root: yaml.Node) -> list[Problem]:
    """Duplicate keys, aliases and excessive depth, found without recursion."""
    out: list[Problem] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str, int]] = [(root, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if id(node) in seen_nodes:  # the composer gives an alias its anchor's node
            out.append(Problem(path, "aliases (*name) are not allowed in specs"))
            return out
        seen_nodes.add(id(node))
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            out.append(Problem("", f"line {line}: nested deeper than {MAX_DEPTH} levels"))
            return out
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            children = []
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key: object = key_node.value
                    child = join_path(path, _shown(key_node.value))
                else:
                    key = id(key_node)
                    child = join_path(path, "<key>")
                    children.append((key_node, child, depth + 1))
                line = key_node.start_mark.line + 1
                if key in seen:
                    out.append(Problem(child, f"duplicate key (lines {seen[key]} and {line})"))
                else:
                    seen[key] = line
                children.append((value_node, child, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(
                (item, join_path(path, i), depth + 1)
                for i, item in reversed(list(enumerate(node.value)))
            )
    return out


def _shown(text: str, limit: int = 60) -> str:
    """A key as it can appear in a message: control characters escaped, length capped."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _parse(text: str, source: str | None) -> tuple[Any, list[Problem]]:
    loader = SpecLoader(text)
    try:
        node = loader.get_single_node()
        problems = _check_nodes(node) if node is not None else []
        fatal = [p for p in problems if "duplicate key" not in p.message]
        if fatal:
            raise SpecError(fatal, source=source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = _shown(str(getattr(err, "problem", None) or err), 200)
        raise SpecError([Problem("", f"{where}invalid YAML: {what}")], source=source) from None
    finally:
        loader.dispose()
    return data, problems


def parse_yaml(text: str, *, source: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return the data and the duplicate-key problems.

    Raises :class:`SpecError` for a syntax error (with line and column), an alias,
    nesting deeper than :data:`MAX_DEPTH` or an integer longer than
    :data:`MAX_INT_DIGITS` digits. The data is the caller's to change.
    """
    data, problems = parse_yaml_shared(text, source=source)
    return copy.deepcopy(data), problems


def parse_yaml_shared(text: str, *, source: str | None = None) -> tuple[Any, list[Problem]]:
    """Like :func:`parse_yaml` but the data is shared with the memo: never change it.

    For readers that only validate the data (or copy before changing it).
    """
    with _MEMO_LOCK:
        hit = _MEMO.get(text)
        if hit is not None:
            _MEMO.move_to_end(text)
    if hit is None:
        data, problems = _parse(text, source)
        hit = (data, tuple(problems))
        if len(text) <= MEMO_MAX_CHARS:
            with _MEMO_LOCK:
                _MEMO[text] = hit
                while len(_MEMO) > MEMO_ENTRIES:
                    _MEMO.popitem(last=False)
    return hit[0], list(hit[1])


def read_text(path: str | Path, *, limit: int = MAX_SPEC_BYTES) -> str:
    """A spec file's text; :class:`SpecError` if it is missing, unreadable, not a regular
    file (a FIFO, a device such as ``/dev/zero``, a folder) or larger than ``limit`` bytes.

    At most ``limit + 1`` bytes are ever read, so an endless or huge file costs nothing.
    """
    p = Path(path)
    try:
        # non-blocking open: opening a FIFO to read would otherwise wait for a writer
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise SpecError([Problem("", "not a regular file")], source=str(p))
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise SpecError([Problem("", "file not found")], source=str(p)) from None
    except IsADirectoryError:
        raise SpecError([Problem("", "not a regular file (a folder)")], source=str(p)) from None
    except OSError as err:
        raise SpecError([Problem("", f"cannot read file: {err}")], source=str(p)) from None
    if len(raw) > limit:
        raise SpecError(
            [Problem("", f"larger than {limit // 2**20} MiB: not a spec file")], source=str(p)
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError([Problem("", f"cannot read file: {err}")], source=str(p)) from None


def read_yaml(path: str | Path) -> tuple[Any, list[Problem]]:
    """Read a YAML file; :class:`SpecError` if it is missing, unreadable or not YAML."""
    return parse_yaml(read_text(path), source=str(path))
