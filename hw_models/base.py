"""The base class of every specification read from YAML, and the citation type."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hw_models.errors import SpecError, problems_from_pydantic


class Spec(BaseModel):
    """A frozen pydantic model that rejects unknown keys.

    ``Spec.parse(data)`` validates a plain mapping and raises :class:`SpecError`
    (every problem, with its path) instead of pydantic's ``ValidationError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @classmethod
    def parse(cls, data: Any, *, prefix: str = "", source: str | None = None) -> Self:
        """Validate ``data`` into this spec, or raise :class:`SpecError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise SpecError(problems_from_pydantic(err, prefix=prefix), source=source) from None


class Source(Spec):
    """Where a number comes from: a datasheet, a paper or a standard, and the table."""

    title: str = Field(min_length=1, description="document title, e.g. 'NVIDIA H100 datasheet'")
    url: str | None = Field(default=None, description="where to find it")
    where: str | None = Field(default=None, description="table / page / section")
    notes: str | None = None
