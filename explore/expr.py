"""Small arithmetic expressions for derived parameters, constraints and formula metrics.

A design space may compute values from its parameters (``cost_usd: "tiers.hbm.capacity_bytes
/ 1e9 * prices.hbm_usd_per_gb"``) and state constraints (``"cost_usd <= 30000"``). The
expressions are Python syntax restricted to numbers, dotted names, arithmetic
(``+ - * / // % **``), comparisons, ``and``/``or``/``not``, ``a if c else b`` and a few
functions (:data:`FUNCTIONS`). Nothing else is evaluated: no attribute access on
objects, no subscripts, no imports. A name is a dotted path, resolved by the caller.

>>> e = Expr.parse("max(a, b.c) * 2", path="derived.x")
>>> e.names
('a', 'b.c')
>>> e.evaluate({"a": 1.0, "b.c": 3.0}.__getitem__)
6.0
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hw_models.errors import Problem, SpecError

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "ceil": math.ceil,
    "floor": math.floor,
}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _check(node: ast.AST, path: str, names: list[str]) -> None:
    """Refuse anything outside the small language; collect the dotted names."""
    dotted = _dotted(node)
    if dotted is not None:
        if dotted not in names:
            names.append(dotted)
        return
    if isinstance(node, ast.Expression):
        _check(node.body, path, names)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float | str):
            raise SpecError([Problem(path, f"unsupported constant {node.value!r}")])
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, path, names)
        _check(node.right, path, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        _check(node.operand, path, names)
    elif isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        for sub in (node.left, *node.comparators):
            _check(sub, path, names)
    elif isinstance(node, ast.BoolOp):
        for sub in node.values:
            _check(sub, path, names)
    elif isinstance(node, ast.IfExp):
        for sub in (node.test, node.body, node.orelse):
            _check(sub, path, names)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise SpecError([Problem(path, f"unknown function {node.func.id!r} (known: {known})")])
        for sub in node.args:
            _check(sub, path, names)
    else:
        raise SpecError([Problem(path, f"unsupported expression syntax: {ast.unparse(node)!r}")])


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression: its text, where it came from (for messages) and its names."""

    text: str
    path: str
    names: tuple[str, ...]
    tree: ast.Expression

    @classmethod
    def parse(cls, text: str | float, *, path: str) -> Expr:
        """Parse ``text``; :class:`SpecError` at ``path`` for a syntax error or a construct
        outside the language."""
        src = str(text)
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError as err:
            raise SpecError([Problem(path, f"cannot parse {src!r}: {err.msg}")]) from None
        names: list[str] = []
        _check(tree, path, names)
        return cls(text=src, path=path, names=tuple(names), tree=tree)

    def evaluate(self, lookup: Callable[[str], Any]) -> Any:
        """The value, with every dotted name read through ``lookup``."""
        try:
            return _eval(self.tree.body, lookup)
        except (ArithmeticError, ValueError, TypeError) as err:
            raise SpecError([Problem(self.path, f"cannot evaluate {self.text!r}: {err}")]) from None


def _eval(node: ast.AST, lookup: Callable[[str], Any]) -> Any:
    dotted = _dotted(node)
    if dotted is not None:
        return lookup(dotted)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, lookup), _eval(node.right, lookup))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, lookup)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.Compare):
        left = _eval(node.left, lookup)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, lookup)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, lookup) for v in node.values)
        return any(_eval(v, lookup) for v in node.values)
    if isinstance(node, ast.IfExp):
        test = _eval(node.test, lookup)
        return _eval(node.body, lookup) if test else _eval(node.orelse, lookup)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return FUNCTIONS[node.func.id](*(_eval(a, lookup) for a in node.args))
