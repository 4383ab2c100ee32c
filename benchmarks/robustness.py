"""Bad inputs and kills as figures: ``python benchmarks/robustness.py [--quick]``.

Prints, and writes as JSON with ``--json``: cases tried, clean errors, tracebacks (must be
0), kills survived / tried, data lost (must be 0). Everything is generated from the test
media (``../shared/data`` or ``$SWAPFACE_TEST_DATA``) into a temp folder; nothing is
written to the repository. The full run (≥ 60 cases, 5 × 20 kills) takes about 15 minutes
on a 2-core CPU; ``--quick`` (a case per group, 1 kill per command) runs in the test suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.robustness_cases import Case, all_cases, outside_changes
from benchmarks.robustness_common import Workspace, build_workspace, cli, snapshot
from benchmarks.robustness_kills import CHAINS, ChainOutcome, run_chain


@dataclass
class CaseOutcome:
    name: str
    group: str
    rc: int | None
    clean: bool
    traceback: bool
    lost: bool
    line: str  # the error line the user saw (or the problem found)
    skipped: str = ""


def _mount(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def run_case(ws: Workspace, case: Case, index: int) -> CaseOutcome:
    folder = ws.case_dir(f"{index:03d}")
    if case.needs_mount:
        why = _mount(folder / "full")
        if why:
            return CaseOutcome(case.name, case.group, None, True, False, False, "",
                               skipped=f"no small filesystem to fill ({why})")
    try:
        before = snapshot(ws.root, exclude=folder.parent)
        args = case.setup(ws, folder)
        ran = cli(args, folder, timeout=300)
        after = snapshot(ws.root, exclude=folder.parent)
        problem = case.check(ws, folder) if case.check else None
    finally:
        if case.needs_mount:
            subprocess.run(["umount", str(folder / "full")], capture_output=True)
    changed = outside_changes(before, after)
    lines = ran.error_lines
    clean = (not ran.traceback and ran.rc in case.expect and problem is None
             and (ran.rc == 0 or len(lines) == 1))
    line = problem or (lines[0] if lines else (ran.err.strip().splitlines() or [""])[-1])
    if changed:
        line = f"changed outside its folder: {changed[:3]}"
    return CaseOutcome(case.name, case.group, ran.rc, clean and not changed, ran.traceback,
                       bool(changed) or (problem is not None and "lost" in problem), line[:240])


def run_cases(ws: Workspace, cases: list[Case], jobs: int = 2) -> list[CaseOutcome]:
    with cf.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda ic: run_case(ws, ic[1], ic[0]), enumerate(cases)))


def run_kills(ws: Workspace, kills: int, seed: int, commands: list[str],
              jobs: int = 2) -> list[ChainOutcome]:
    def one(item: tuple[int, str]) -> ChainOutcome:
        i, name = item
        work = ws.root / "kills" / name
        work.mkdir(parents=True, exist_ok=True)
        return run_chain(CHAINS[name](ws, work), kills, random.Random(seed + i), work)

    with cf.ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, enumerate(commands)))


def quick_cases(cases: list[Case]) -> list[Case]:
    """The first case of every group, and the ones a review found first."""
    seen: set[str] = set()
    out = []
    for case in cases:
        if case.group not in seen or case.name in ("import name '../escape.png'",
                                                   "undo log with ../ paths"):
            seen.add(case.group)
            out.append(case)
    return out


def summarise(cases: list[CaseOutcome], chains: list[ChainOutcome], seconds: float) -> dict:
    tried = [c for c in cases if not c.skipped]
    return {
        "cases_tried": len(tried),
        "cases_skipped": len(cases) - len(tried),
        "clean": sum(c.clean for c in tried),
        "tracebacks": sum(c.traceback for c in tried) + sum(c.tracebacks for c in chains),
        "kills_tried": sum(c.tried for c in chains),
        "kills_survived": sum(c.survived for c in chains),
        "data_lost": sum(c.lost for c in tried) + sum(c.lost for c in chains),
        "seconds": round(seconds, 1),
    }


def report(cases: list[CaseOutcome], chains: list[ChainOutcome], totals: dict) -> str:
    out = ["| group | cases | clean | tracebacks |", "|---|---|---|---|"]
    for group in dict.fromkeys(c.group for c in cases):
        mine = [c for c in cases if c.group == group and not c.skipped]
        out.append(f"| {group} | {len(mine)} | {sum(c.clean for c in mine)} | "
                   f"{sum(c.traceback for c in mine)} |")
    out += ["", "| command | kills | survived | finished first | lost | seconds |",
            "|---|---|---|---|---|---|"]
    for c in chains:
        out.append(f"| {c.name} | {c.tried} | {c.survived} | {c.finished_early} | {c.lost} | "
                   f"{c.seconds:.0f} |")
    out += ["", f"cases tried: {totals['cases_tried']} (skipped {totals['cases_skipped']}), "
            f"clean errors: {totals['clean']}, tracebacks: {totals['tracebacks']}",
            f"kills survived / tried: {totals['kills_survived']} / {totals['kills_tried']}, "
            f"data lost: {totals['data_lost']}, time: {totals['seconds']:.0f} s"]
    bad = [c for c in cases if not c.clean and not c.skipped]
    out += [f"NOT CLEAN: {c.name}: rc {c.rc}: {c.line}" for c in bad]
    out += [f"SKIPPED: {c.name}: {c.skipped}" for c in cases if c.skipped]
    out += [f"PROBLEM: {c.name}: {p}" for c in chains for p in c.problems]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from tests.conftest import find_data_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a case per group, 1 kill per command")
    ap.add_argument("--kills", type=int, default=20, help="kills per command")
    ap.add_argument("--commands", nargs="*", default=list(CHAINS), choices=list(CHAINS))
    ap.add_argument("--cases", help="only the cases whose name matches this regular expression")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    data = find_data_dir()
    if data is None:
        print("test media not found: set SWAPFACE_TEST_DATA or provide ../shared/data")
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="swapface_robustness_") as tmp:
        ws = build_workspace(Path(tmp), data, say=lambda m: print(m, flush=True))
        cases = all_cases()
        cases = quick_cases(cases) if args.quick else cases
        if args.cases:
            cases = [c for c in cases if re.search(args.cases, c.name)]
        print(f"{len(cases)} bad-input cases ...", flush=True)
        case_results = run_cases(ws, cases)
        kills = 1 if args.quick else args.kills
        print(f"{kills} kills × {len(args.commands)} commands ...", flush=True)
        chains = run_kills(ws, kills, args.seed, args.commands)
        totals = summarise(case_results, chains, time.perf_counter() - start)
        print(report(case_results, chains, totals))
        if args.json:
            args.json.write_text(json.dumps({"totals": totals,
                                             "cases": [asdict(c) for c in case_results],
                                             "kills": [asdict(c) for c in chains]}, indent=1))
    return 0 if totals["tracebacks"] == 0 and totals["data_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
