"""``swapface plugins [KIND]``: every plugin of every kind, with its options."""

from __future__ import annotations

import argparse
import importlib
import json

from swapface.core.registry import all_registries

# The modules that register the built-in plugins of each kind.
PLUGIN_MODULES = (
    "swapface.faces.detectors", "swapface.faces.aligners", "swapface.swap.masks",
    "swapface.swap.color", "swapface.swap.sharpen", "swapface.models", "swapface.train.losses",
    "swapface.curate.features", "swapface.media.writers", "swapface.objects",
)


def load_plugins() -> None:
    for module in PLUGIN_MODULES:
        importlib.import_module(module)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plugins", help="list every plugin (detectors, masks, models, ...) with its options",
        description="List the plugins of every kind (or of one KIND), whether each can run here "
        "(optional packages installed), what it does, and its options with their defaults. "
        "Options are given as key=value, e.g. --sharpen unsharp --sharpen-options amount=0.8.")
    parser.add_argument("kind", nargs="?", help="only this kind (detector, mask, model, ...)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(func=run)


def _describe() -> list[dict]:
    out = []
    for registry in all_registries():
        for plugin in registry:
            out.append({
                "kind": registry.kind, "name": plugin.name, "available": plugin.available(),
                "description": plugin.description,
                "options": [{"name": s.name, "type": s.type, "default": s.default, "help": s.help,
                             "choices": list(s.choices) if s.choices else None}
                            for s in plugin.option_specs()],
            })
    return out


def run(args: argparse.Namespace) -> int:
    load_plugins()
    plugins = [p for p in _describe() if args.kind in (None, p["kind"])]
    if args.kind is not None and not plugins:
        kinds = sorted({r.kind for r in all_registries()})
        print(f"no plugin kind {args.kind!r}; kinds: {', '.join(kinds)}")
        return 2
    if args.json:
        print(json.dumps(plugins, indent=2, default=str))
        return 0
    kind = None
    for p in plugins:
        if p["kind"] != kind:
            kind = p["kind"]
            print(f"\n{kind}:")
        flag = "" if p["available"] else "  (not installed)"
        print(f"  {p['name']:18s} {p['description']}{flag}")
        for o in p["options"]:
            choices = f" {{{', '.join(map(str, o['choices']))}}}" if o["choices"] else ""
            print(f"      {o['name']}={o['default']!r} ({o['type']}{choices}) {o['help']}")
    return 0
