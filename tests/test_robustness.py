"""The short version of ``benchmarks/robustness.py``: one bad input of every group and a kill
during extract, convert and sort, each resumed to the uninterrupted result."""

from __future__ import annotations

import random

import pytest
from benchmarks import robustness
from benchmarks.robustness_cases import all_cases
from benchmarks.robustness_common import build_workspace
from benchmarks.robustness_kills import CHAINS, run_chain


@pytest.fixture(scope="module")
def workspace(data_dir, tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("robustness"), data_dir, say=lambda m: None)


def test_suite_generates_enough_cases():
    cases = all_cases()
    assert len([c for c in cases if not c.needs_mount]) >= 60
    assert len({c.name for c in cases}) == len(cases)


def test_one_bad_input_per_group_fails_cleanly(workspace):
    results = robustness.run_cases(workspace, robustness.quick_cases(all_cases()))
    assert len(results) >= 10
    for r in results:
        assert not r.traceback and not r.lost, f"{r.name}: {r.line}"
        assert r.clean or r.skipped, f"{r.name}: rc {r.rc}: {r.line}"
    sentinel = {p.name for p in workspace.sentinel.iterdir()}
    assert sentinel == {"holiday.jpg", "notes.txt"}


@pytest.mark.parametrize("command", ["extract", "convert", "sort"])
def test_a_kill_then_the_same_command_equals_an_uninterrupted_run(workspace, command):
    work = workspace.root / "kills" / command
    work.mkdir(parents=True)
    outcome = run_chain(CHAINS[command](workspace, work), 1, random.Random(7), work)
    assert outcome.tried == 1 and outcome.lost == 0 and outcome.tracebacks == 0, outcome.problems
    assert outcome.survived == 1, outcome.problems
