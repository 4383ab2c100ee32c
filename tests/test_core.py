"""core: one plugin registry shape, typed options from mappings, progress and cancel objects."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from swapface.cli.main import main
from swapface.cli.plugins import load_plugins
from swapface.cli.progress import CliProgress, event_line
from swapface.core.config import from_mapping, option, parse_key_values
from swapface.core.errors import Cancelled, ConfigError
from swapface.core.progress import CancelToken, Progress
from swapface.core.registry import Registry, all_registries
from swapface.swap import SHARPEN_METHODS

KINDS = {"detector", "aligner", "mask", "colour method", "sharpen method", "model", "loss", "sort method",
         "writer"}


@dataclass(frozen=True)
class _GainOptions:
    gain: float = option(1.0, help="multiply by this")
    mode: str = option("fast", help="how", choices=("fast", "exact"))

    def validate(self) -> None:
        if self.gain <= 0:
            raise ConfigError("gain must be positive")


_TOY: Registry = Registry("toy test kind")


@_TOY.register("gain", options=_GainOptions, description="multiplies")
def _gain(options: _GainOptions, offset: float = 0.0):
    return lambda x: x * options.gain + offset


def test_registry_builds_plugins_from_mappings_with_typed_validated_options():
    assert _TOY.create("gain", parse_key_values(["gain=2.5"]), offset=1.0)(2.0) == 6.0
    with pytest.raises(ConfigError, match="must be float"):
        _TOY.options("gain", {"gain": "2.5"})  # a config file says 2.5, not "2.5"
    assert _TOY.create("gain", _GainOptions(gain=3.0))(2.0) == 6.0
    assert _TOY.options("gain", {}) == _GainOptions()
    with pytest.raises(ConfigError, match="unknown toy test kind 'nope'; choose from gain"):
        _TOY.get("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        _TOY.options("gain", {"gian": 2})
    with pytest.raises(ConfigError, match="gain must be positive"):
        _TOY.options("gain", {"gain": -1})
    with pytest.raises(ConfigError, match="mode"):
        _TOY.options("gain", {"mode": "slow"})
    with pytest.raises(ValueError, match="registered twice"):
        _TOY.register("gain", options=_GainOptions)(_gain)
    with pytest.raises(TypeError, match="must be a dataclass"):
        _TOY.register("bad", options=dict)


def test_key_value_lists_parse_to_typed_options():
    values = parse_key_values(["amount=0.8", "radius=2"])
    opts = SHARPEN_METHODS.options("unsharp", values)
    assert (opts.amount, opts.radius) == (0.8, 2.0)
    with pytest.raises(ConfigError):
        parse_key_values(["amount"])
    assert from_mapping(_GainOptions, {"gain": 4}, "toy").gain == 4.0


def test_sharpen_parameters_change_the_result():
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    weak = SHARPEN_METHODS.create("unsharp", {"amount": 0.2})(image)
    strong = SHARPEN_METHODS.create("unsharp", {"amount": 1.5})(image)
    assert np.abs(strong.astype(int) - image).mean() > 2 * np.abs(weak.astype(int) - image).mean()


def test_every_plugin_kind_uses_the_one_registry_and_is_listed(capsys):
    load_plugins()
    kinds = {r.kind for r in all_registries()}
    assert kinds >= KINDS
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_kind: dict[str, set[str]] = {}
    for plugin in listed:
        by_kind.setdefault(plugin["kind"], set()).add(plugin["name"])
        assert plugin["description"], plugin["name"]
    assert set(by_kind) >= KINDS
    assert {"hog", "mtcnn"} <= by_kind["detector"] and "unsharp" in by_kind["sharpen method"]
    unsharp = next(p for p in listed if p["kind"] == "sharpen method" and p["name"] == "unsharp")
    assert {o["name"] for o in unsharp["options"]} >= {"amount", "radius", "threshold"}
    assert main(["plugins", "sharpen method"]) == 0
    assert "unsharp" in capsys.readouterr().out
    assert main(["plugins", "nonsense"]) == 2


def test_cancel_from_another_thread_stops_a_loop():
    token = CancelToken()
    steps = []

    def work():
        with pytest.raises(Cancelled, match="user"):
            for i in range(10_000):
                token.check()
                steps.append(i)
                time.sleep(0.001)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.05)
    token.cancel("user")
    worker.join(5)
    assert not worker.is_alive() and 0 < len(steps) < 10_000


def test_progress_events_carry_rate_and_eta_and_the_log_renderer_throttles():
    events = []
    with Progress(events.append).task("convert", 100, "frame") as task:
        for _ in range(10):
            time.sleep(0.01)
            task.advance(2, faces=3)
    assert events[0].state == "start" and events[-1].state == "end"
    assert events[-1].done == 20 and events[-1].rate > 0
    assert events[-2].eta is not None and events[-2].eta > 0
    assert "convert: 20/100 frame (20.0%)" in event_line(events[-1])

    assert "faces=3" in event_line(events[-1])
    for interval, expected in ((3600, 1), (0, 11)):  # not a TTY: a line per interval + the end
        log = io.StringIO()
        renderer = CliProgress(stream=log, interval=interval)
        for event in events:
            renderer.emit(event)
        lines = log.getvalue().splitlines()
        assert len(lines) == expected and "in all" in lines[-1], lines
    quiet = io.StringIO()
    for event in events:
        CliProgress(quiet=True, stream=quiet).emit(event)
    assert quiet.getvalue() == ""


def test_a_time_budget_caps_the_eta():
    """Training for 5 minutes with a 20 000-iteration cap: the ETA is what is left of the
    5 minutes, not the hours the cap would take at this rate."""
    events = []
    with Progress(events.append).task("train", 20_000, "it") as task:
        task.set_time_limit(2.0)
        for _ in range(5):
            time.sleep(0.01)
            task.advance(1)
        capped = events[-1].eta
        task.set_time_limit(None)
        task.advance(1)
    assert capped is not None and 1.5 < capped <= 2.0
    assert events[-2].eta > 60  # without the budget: the cap at ~100 it/s
