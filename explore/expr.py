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
import copy
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


class _Names(ast.NodeTransformer):
    """Rewrite every dotted name ``a.b.c`` as ``_n("a.b.c")`` (after :func:`_check`)."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return self._call(node.id, node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        dotted = _dotted(node)
        return self._call(dotted, node) if dotted is not None else node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.args = [self.visit(a) for a in node.args]
        return node  # the function name stays a name

    @staticmethod
    def _call(name: str | None, node: ast.AST) -> ast.AST:
        call = ast.Call(
            func=ast.Name(id="_n", ctx=ast.Load()), args=[ast.Constant(name)], keywords=[]
        )
        return ast.copy_location(call, node)


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

    @property
    def code(self) -> Any:
        """The checked expression compiled, dotted names read through ``_n`` (built once
        per process: code objects do not travel to workers, the tree does)."""
        code = _CODE.get(self.text)
        if code is None:
            tree = ast.fix_missing_locations(_Names().visit(copy.deepcopy(self.tree)))
            code = _CODE[self.text] = compile(tree, self.path or "<expr>", "eval")
        return code

    def evaluate(self, lookup: Callable[[str], Any]) -> Any:
        """The value, with every dotted name read through ``lookup``."""
        try:
            return eval(self.code, {"__builtins__": {}, "_n": lookup, **FUNCTIONS})
        except (ArithmeticError, ValueError, TypeError) as err:
            raise SpecError([Problem(self.path, f"cannot evaluate {self.text!r}: {err}")]) from None


# compiled code by expression text: a pure function of the text (the checked language)
_CODE: dict[str, Any] = {}
