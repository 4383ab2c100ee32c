"""One source of truth for options: dataclass configs feed the CLI, config files and forms.

A stage (or a plugin) declares its options once, as a dataclass whose fields carry ``help``
(and optional ``flags``, ``choices``, ``nargs``, ``positional``) in ``field(metadata=...)``.
:func:`add_arguments` builds the argparse options from it; :func:`build_config` merges
defaults < config file (TOML or JSON section) < explicit command-line values;
:func:`from_mapping` builds one from a plain mapping with type checks (plugin options, web
forms); :func:`option_specs` describes the fields for help listings and generated forms.

A ``dict[str, Any]`` field (a plugin's options) is ``key=value ...`` on the command line and
a table in a config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from swapface.core.errors import ConfigError

C = TypeVar("C")


def option(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:
    """A dataclass field with CLI metadata. ``default`` may be a list or dict (copied per instance)."""
    meta["help"] = help
    if dataclasses.is_dataclass(default) and not isinstance(default, type):  # nested options
        return dataclasses.field(default_factory=lambda d=default: dataclasses.replace(d), metadata=meta)
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(scalar type, is_list) for annotations like ``int``, ``list[str]``, ``Path | None``.

    A ``dict[...]`` field comes back as ``(dict, False)``.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin is list:
        return typing.get_args(tp)[0], True
    if origin is dict or tp is dict:
        return dict, False
    return tp, False


def parse_key_values(items: list[str], what: str = "option") -> dict[str, Any]:
    """``["amount=0.5", "fast=true", "name=x"]`` → JSON-typed values (numbers, booleans, strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} expects key=value, got {item!r}")
        text = value.lower() if value.lower() in ("true", "false", "null") else value
        try:
            out[key.strip().replace("-", "_")] = json.loads(text)
        except ValueError:
            out[key.strip().replace("-", "_")] = value
    return out


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if meta.get("cli") is False:
            continue
        tp, is_list = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"help": meta.get("help", ""), "dest": f.name}
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if meta.get("positional"):
            kwargs.pop("dest")
            kwargs["type"] = tp
            kwargs["metavar"] = f.name.upper()
            parser.add_argument(f.name, **kwargs)
            continue
        flags = meta.get("flags") or ["--" + f.name.replace("_", "-")]
        kwargs["default"] = argparse.SUPPRESS
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs["required"] = True
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif tp is dict:
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "KEY=VALUE"
        else:
            kwargs["type"] = tp
            if is_list:
                kwargs["nargs"] = meta.get("nargs", "+")
        if f.default is not dataclasses.MISSING and f.default not in (None, False):
            kwargs["help"] += f" (default: {f.default})"
        if meta.get("hidden"):
            kwargs["help"] = argparse.SUPPRESS
        parser.add_argument(*flags, **kwargs)


def load_config_file(path: Path, section: str) -> dict[str, Any]:
    """Read one stage's section from a TOML or JSON config file."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    values = data.get(section, {})
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] in {path} must be a table")
    return {k.replace("-", "_"): v for k, v in values.items()}


def build_config(cls: type[C], cli_values: dict[str, Any], file_values: dict[str, Any]) -> C:
    """Merge defaults < config file < explicit CLI values into a ``cls`` instance."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    file_values = _unalias(cls, file_values)
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ConfigError(f"unknown option(s) in config file: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    merged: dict[str, Any] = {}
    for name, value in {**file_values, **{k: v for k, v in cli_values.items() if k in names}}.items():
        tp, is_list = _base_type(hints[name])
        if value is not None and tp is Path:
            value = [Path(v) for v in value] if is_list else Path(value)
        elif tp is dict and isinstance(value, list):  # key=value words from the command line
            value = parse_key_values(value, f"--{name.replace('_', '-')}")
        elif tp is dict and value is not None and not isinstance(value, dict):
            raise ConfigError(f"option {name} must be a table of key = value")
        merged[name] = value
    try:
        return cls(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def _unalias(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Old names of renamed options (field metadata ``aliases``) → their current names."""
    renamed = {alias: f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               for alias in f.metadata.get("aliases", ())}
    return {renamed.get(k, k): v for k, v in values.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (Paths as strings, nested options as tables)."""
    return _jsonable(dataclasses.asdict(cfg))


# ------------------------------------------------------------------ mappings and specs
def _type_name(tp: Any) -> str:
    base, is_list = _base_type(tp)
    name = getattr(base, "__name__", str(base))
    return f"list[{name}]" if is_list else name


def _check_value(cls: type, f: dataclasses.Field[Any], tp: Any, value: Any, what: str) -> Any:
    """``value`` for field ``f`` (of annotation ``tp``), type-checked; Paths from strings."""
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{what}: option {f.name} must not be empty")
    base, is_list = _base_type(tp)
    values = value if is_list else [value]
    if is_list and not isinstance(value, list):
        raise ConfigError(f"{what}: option {f.name} must be a list, got {value!r}")
    out = []
    for item in values:
        if base is Path and isinstance(item, str | Path):
            out.append(Path(item))
            continue
        # bool is an int subclass: reject True for an int option; ints are fine for floats.
        allowed: tuple[type, ...] = (int, float) if base is float else (base,)
        ok = isinstance(item, allowed) and (base is bool) == isinstance(item, bool)
        if not ok:
            raise ConfigError(f"{what}: option {f.name} must be {_type_name(tp)}, got {item!r}")
        choices = f.metadata.get("choices")
        if choices is not None and item not in choices:
            raise ConfigError(f"{what}: option {f.name}={item!r} not in {list(choices)}")
        out.append(float(item) if base is float else item)
    return out if is_list else out[0]


def from_mapping(cls: type[C], values: dict[str, Any], what: str = "options") -> C:
    """``cls(**values)`` with unknown keys, wrong types and bad choices as :class:`ConfigError`.

    Keys may use ``-`` for ``_``. A ``validate()`` method, if the class has one, runs after.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = _unalias(cls, {str(k).replace("-", "_"): v for k, v in values.items()})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(fields) or "none"
        raise ConfigError(f"{what}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    hints = typing.get_type_hints(cls)
    checked = {k: _check_value(cls, fields[k], hints[k], v, what) for k, v in values.items()}
    try:
        obj = cls(**checked)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One option as a help listing or a generated form shows it."""

    name: str
    type: str  # int, float, bool, str, Path, list[str], dict
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    required: bool = False


def option_specs(cls: type) -> list[OptionSpec]:
    """The fields of an options dataclass, in declaration order (CLI-only fields too)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default, required = f.default, False
        elif f.default_factory is not dataclasses.MISSING:
            default, required = f.default_factory(), False
        else:
            default, required = None, True
        choices = f.metadata.get("choices")
        out.append(OptionSpec(f.name, _type_name(hints[f.name]), default, f.metadata.get("help", ""),
                              tuple(choices) if choices is not None else None, required))
    return out
