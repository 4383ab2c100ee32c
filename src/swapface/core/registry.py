"""A tiny typed plugin registry: stages look plugins up by name, never by import path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from swapface.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → factory map. Factories are registered lazily so optional deps load on use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._available: dict[str, Callable[[], bool]] = {}

    def register(
        self, name: str, available: Callable[[], bool] = lambda: True
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            self._available[name] = available
            return factory

        return wrap

    def names(self) -> list[str]:
        return sorted(self._factories)

    def available(self) -> list[str]:
        """Names whose optional dependencies are installed."""
        return [n for n in self.names() if self._available[n]()]

    def is_available(self, name: str) -> bool:
        return name in self._factories and self._available[name]()

    def create(self, name: str, **kwargs: object) -> T:
        if name not in self._factories:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
        if not self._available[name]():
            raise ConfigError(
                f"{self.kind} {name!r} needs an optional package that is not installed "
                f"(see README, 'Optional detectors')"
            )
        return self._factories[name](**kwargs)
