"""One source of truth for options: dataclass configs feed the CLI and config files alike.

A stage declares its options once, as a dataclass whose fields carry ``help`` (and optional
``flags``, ``choices``, ``nargs``, ``positional``) in ``field(metadata=...)``.
:func:`add_arguments` builds the argparse options from it; :func:`build_config` merges
defaults < config file (TOML or JSON section) < explicit command-line values.
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
    """A dataclass field with CLI metadata. ``default`` may be a list (copied per instance)."""
    meta["help"] = help
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda d=default: list(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(scalar type, is_list) for annotations like ``int``, ``list[str]``, ``Path | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin is list:
        return typing.get_args(tp)[0], True
    return tp, False


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
        else:
            kwargs["type"] = tp
            if is_list:
                kwargs["nargs"] = meta.get("nargs", "+")
        if f.default is not dataclasses.MISSING and f.default not in (None, False):
            kwargs["help"] += f" (default: {f.default})"
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
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ConfigError(f"unknown option(s) in config file: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    merged: dict[str, Any] = {}
    for name, value in {**file_values, **{k: v for k, v in cli_values.items() if k in names}}.items():
        tp, is_list = _base_type(hints[name])
        if value is not None and tp is Path:
            value = [Path(v) for v in value] if is_list else Path(value)
        merged[name] = value
    try:
        return cls(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (Paths as strings) — for logs and stores."""
    out: dict[str, Any] = {}
    for k, v in dataclasses.asdict(cfg).items():
        if isinstance(v, Path):
            v = str(v)
        elif isinstance(v, list):
            v = [str(x) if isinstance(x, Path) else x for x in v]
        out[k] = v
    return out
