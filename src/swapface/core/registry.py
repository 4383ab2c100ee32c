"""One plugin registry shape for every plugin kind.

Every kind (detector, aligner, mask, colour, sharpen, model, loss, sort method, writer) is a
:class:`Registry`, and every plugin is registered the same way::

    @SHARPEN_METHODS.register("unsharp", options=UnsharpOptions,
                              description="unsharp mask: boost edges above a threshold")
    def _unsharp(options: UnsharpOptions) -> Sharpen: ...

The decorated callable is the plugin's *factory*: ``factory(options, **context)`` returns the
plugin (a class is its own factory). ``options`` is an instance of the plugin's typed options
dataclass, built and validated from a plain mapping by :meth:`Registry.options`, so a CLI
``key=value`` list, a config-file table and a web form all reach a plugin the same way;
``context`` carries run-time things that are not user options (the device, an input size).
Factories load lazily, so an optional dependency is only imported when its plugin is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from swapface.core.config import OptionSpec, from_mapping, option_specs
from swapface.core.errors import ConfigError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class NoOptions:
    """Options of a plugin that has none."""


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Plugin(Generic[T]):
    kind: str
    name: str
    factory: Callable[..., T]
    options: type  # the plugin's options dataclass
    description: str
    available: Callable[[], bool] = _always
    extra: Mapping[str, Any] = field(default_factory=dict)  # kind-specific facts (a writer's suffixes)

    def option_specs(self) -> list[OptionSpec]:
        return option_specs(self.options)


_ALL: dict[str, Registry[Any]] = {}


def all_registries() -> list[Registry[Any]]:
    """Every registry created so far (import the plugin packages first to fill them)."""
    return list(_ALL.values())


class Registry(Generic[T]):
    """Name → :class:`Plugin`. ``missing_hint`` says how to install an unavailable plugin."""

    def __init__(self, kind: str, missing_hint: str = "see the README") -> None:
        if kind in _ALL:
            raise ValueError(f"a {kind} registry exists already")
        self.kind = kind
        self.missing_hint = missing_hint
        self._plugins: dict[str, Plugin[T]] = {}
        _ALL[kind] = self

    def register(self, name: str, *, options: type = NoOptions, description: str = "",
                 available: Callable[[], bool] = _always, **extra: Any) -> Callable[[F], F]:
        """Decorator registering ``factory(options, **context) -> plugin`` under ``name``."""
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"{self.kind} {name!r}: options must be a dataclass, got {options!r}")

        def wrap(factory: F) -> F:
            if name in self._plugins:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._plugins[name] = Plugin(self.kind, name, factory, options, description,
                                         available, extra)
            return factory

        return wrap

    def register_value(self, name: str, value: T, *, description: str = "", **extra: Any) -> T:
        """Register a plugin without options that is a ready value (a function, a constant)."""

        def factory(options: NoOptions) -> T:
            return value

        self.register(name, description=description, **extra)(factory)
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[Plugin[T]]:
        return iter(self._plugins[n] for n in self.names())

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def available(self) -> list[str]:
        """Names whose optional dependencies are installed."""
        return [n for n in self.names() if self._plugins[n].available()]

    def is_available(self, name: str) -> bool:
        return name in self._plugins and self._plugins[name].available()

    def get(self, name: str) -> Plugin[T]:
        if name not in self._plugins:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
        return self._plugins[name]

    def options(self, name: str, values: Mapping[str, Any] | object | None = None) -> Any:
        """The typed options of plugin ``name`` from a mapping (validated) or as given."""
        cls = self.get(name).options
        if isinstance(values, cls):
            return values
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{self.kind} {name!r}: options must be a mapping or {cls.__name__}")
        return from_mapping(cls, dict(values or {}), f"{self.kind} {name!r}")

    def create(self, name: str, options: Mapping[str, Any] | object | None = None,
               **context: Any) -> T:
        """Build plugin ``name`` with ``options`` (mapping or dataclass) and run-time ``context``."""
        plugin = self.get(name)
        if not plugin.available():
            raise ConfigError(f"{self.kind} {name!r} needs an optional package that is not "
                              f"installed ({self.missing_hint})")
        return plugin.factory(self.options(name, options), **context)
