"""A tiny generic registry: implementations registered by name, created by name.

>>> reg: Registry[int] = Registry("example")
>>> @reg.register("one")
... def _one() -> int:
...     return 1
>>> reg.create("one")
1
>>> reg.names()
['one']

An unknown name raises :class:`hw_models.SpecError` listing the known names, so
a YAML key or a CLI flag that names an implementation fails with one clear
message. Names are case-insensitive and treat ``-`` like ``_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from hw_models.errors import Problem, SpecError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class Registry(Generic[T]):
    """Named factories of ``T``; ``kind`` names what is registered (for messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``factory`` under ``name`` (a duplicate name is an error)."""

        def deco(factory: F) -> F:
            self.add(name, factory)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T]) -> None:
        """Register ``factory`` under ``name``; :class:`ValueError` if the name is taken."""
        key = _key(name)
        if key in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[key] = factory

    def get(self, name: str, *, error_path: str = "") -> Callable[..., T]:
        """The factory registered as ``name``; :class:`SpecError` (at ``error_path``) if unknown."""
        key = _key(name)
        try:
            return self._factories[key]
        except KeyError:
            known = ", ".join(self.names())
            raise SpecError(
                [Problem(error_path, f"unknown {self.kind} {name!r} (known: {known})")]
            ) from None

    def create(self, name: str, /, *args: Any, error_path: str = "", **kwargs: Any) -> T:
        """Call the factory registered as ``name`` with the given arguments.

        ``error_path`` is where an unknown name is reported; every other keyword
        goes to the factory.
        """
        return self.get(name, error_path=error_path)(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._factories)
