"""The base class of every specification read from YAML, and the citation type."""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from hw_models.ceilings import DEFAULT_CEILINGS, Ceilings, kind_of
from hw_models.errors import SpecError, problems_from_pydantic

MAX_MAGNITUDE = 1e30
"""No number in a spec is larger than this (bytes, FLOP/s, cycles, layers ...): far beyond
any real hardware or model, small enough that products of a few never overflow."""

_NUMBER_TYPES = (int, float)
_NUMERIC_FIELDS: dict[type, frozenset[str]] = {}


def _numeric_leaf(annotation: Any) -> bool:
    """Whether a field of this type holds numbers (int/float, optional, or containers of them)."""
    if annotation in _NUMBER_TYPES:
        return True
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin is typing.Annotated:
        return _numeric_leaf(args[0]) if args else False
    if origin in (typing.Union, types.UnionType):
        return bool(args) and all(_numeric_leaf(a) for a in args)
    if origin is dict:
        return len(args) == 2 and _numeric_leaf(args[1])
    if origin in (list, tuple):
        return bool(args) and all(_numeric_leaf(a) for a in args)
    return False


def _number_problem(value: Any) -> str | None:
    """Why ``value`` is not acceptable where a number is expected (None if it may be)."""
    if isinstance(value, bool):
        return f"expected a number, found {str(value).lower()}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"expected a finite number, found {value!r}"
        if abs(value) > MAX_MAGNITUDE:
            return f"expected a magnitude of at most {MAX_MAGNITUDE:g}, found {value:g}"
    elif isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            shown = f"{value:.3g}" if value.bit_length() < 1000 else "a longer integer"
            return f"expected a magnitude of at most {MAX_MAGNITUDE:g}, found {shown}"
    elif isinstance(value, str):
        if not value.isascii() or "_" in value:
            shown = repr(value) if len(value) <= 40 else repr(value[:37]) + "..."
            return f"expected a number in ASCII digits without '_' separators, found {shown}"
    elif isinstance(value, dict):
        for item in value.values():
            if (why := _number_problem(item)) is not None:
                return why
    elif isinstance(value, list | tuple):
        for item in value:
            if (why := _number_problem(item)) is not None:
                return why
    return None


def _numeric_fields(cls: type[BaseModel]) -> frozenset[str]:
    """The fields of ``cls`` that hold numbers (a fact about the class, computed once)."""
    numeric = _NUMERIC_FIELDS.get(cls)
    if numeric is None:
        numeric = frozenset(n for n, f in cls.model_fields.items() if _numeric_leaf(f.annotation))
        _NUMERIC_FIELDS[cls] = numeric
    return numeric


class Spec(BaseModel):
    """A frozen pydantic model that rejects unknown keys.

    ``Spec.parse(data)`` validates a plain mapping and raises :class:`SpecError`
    (every problem, with its path) instead of pydantic's ``ValidationError``.

    Numeric fields accept numbers only: not booleans (``capacity_bytes: true``), not
    infinity or NaN, nothing above :data:`MAX_MAGNITUDE`, and no strings with non-ASCII
    digits or ``_`` separators (``"1_000"``).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, BaseModel):
            return value
        if info.field_name not in _numeric_fields(cls):
            return value
        why = _number_problem(value)
        if why is not None:
            raise ValueError(why)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _plausible(cls, value: Any, info: ValidationInfo) -> Any:
        """Values above their plausibility ceiling (:mod:`hw_models.ceilings`): those of
        the validation context (``context=ceilings.context()``), else the defaults."""
        if value is None or isinstance(value, str | bool | BaseModel):
            return value
        name = info.field_name
        if name is None or name not in _numeric_fields(cls) or kind_of(name) is None:
            return value
        context = info.context
        ceilings = context.get("ceilings") if isinstance(context, dict) else None
        why = (ceilings or DEFAULT_CEILINGS).value_problem(name, value)
        if why is not None:
            raise ValueError(why)
        return value

    @classmethod
    def parse(
        cls,
        data: Any,
        *,
        prefix: str = "",
        source: str | None = None,
        ceilings: Ceilings = DEFAULT_CEILINGS,
    ) -> Self:
        """Validate ``data`` into this spec, or raise :class:`SpecError` (values above
        their plausibility ``ceilings``, :mod:`hw_models.ceilings`, included)."""
        try:
            return cls.model_validate(data, context=ceilings.context())
        except ValidationError as err:
            raise SpecError(problems_from_pydantic(err, prefix=prefix), source=source) from None


class Source(Spec):
    """Where a number comes from: a datasheet, a paper or a standard, and the table."""

    title: str = Field(min_length=1, description="document title, e.g. 'NVIDIA H100 datasheet'")
    url: str | None = Field(default=None, description="where to find it")
    where: str | None = Field(default=None, description="table / page / section")
    notes: str | None = None
