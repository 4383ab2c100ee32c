#!/usr/bin/env bash
# Runtime-dependency smoke pass: a fresh venv with the runtime dependencies only (torch, then
# `pip install .` without the dev extra, plus the Makefile's --no-deps optional detectors), then
# `--help` of every command and sub-command and one short real run of each on the test media.
# Everything is written to a temporary folder; the media are read in place, never copied.
#
#   bash tests/smoke_runtime.sh            # venv in .venv-runtime (git-ignored), rebuilt each run
#   SMOKE_VENV=/tmp/v SMOKE_REUSE=1 ...    # reuse a venv this script built (skip the install)
#   SWAPFACE_TEST_DATA=/path/to/data ...   # media (default ../shared/data from the repo root)
#   SMOKE_KEEP=1 ...                       # keep the scratch folder (always kept on failure)
#
# Prints "ok  <command>  <seconds>" per step and stops at the first failure with its name.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV=${SMOKE_VENV:-.venv-runtime}
case $VENV in /*) ;; *) VENV=$ROOT/$VENV ;; esac
# Without the test media the real runs are skipped, as the test suite skips its tests then;
# the install and every --help still run.
DATA=$(cd "$ROOT" && cd "${SWAPFACE_TEST_DATA:-../shared/data}" 2>/dev/null && pwd) || DATA=
VA=$DATA/video/woman_a.mp4
VB=$DATA/video/woman_b.mp4
if [[ -n $DATA && ! ( -f $VA && -f $VB ) ]]; then
    echo "smoke: $VA or $VB missing" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/swapface-smoke.XXXXXX")
LOG=$WORK/step.log
ok=0
cleanup() {
    if [[ $ok == 1 && ${SMOKE_KEEP:-0} != 1 ]]; then rm -rf "$WORK"
    else echo "smoke: outputs kept in $WORK" >&2; fi
}
trap cleanup EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }
T_START=$(now_us)

# step NAME CMD...: run CMD (output to $LOG), print "ok  NAME  SECONDS" or fail with NAME.
step() {
    local name=$1 t0 t1 rc=0
    shift
    t0=$(now_us)
    "$@" </dev/null >"$LOG" 2>&1 || rc=$?
    t1=$(now_us)
    if [[ $rc != 0 ]]; then
        echo "FAIL  $name  (exit $rc)"
        tail -n 40 "$LOG"
        exit 1
    fi
    printf 'ok  %s  %d.%d\n' "$name" $(((t1 - t0) / 1000000)) $(((t1 - t0) / 100000 % 10))
}

# expect NAME FIND-ARGS...: at least one file matches (a run that exits 0 must have written it).
expect() {
    local name=$1
    shift
    [[ -n $(find "$@" -type f -print -quit 2>/dev/null) ]] || {
        echo "FAIL  $name  (exited 0 but wrote no ${*: -1})"
        exit 1
    }
}

# --- the venv: runtime dependencies only ------------------------------------------------------
# swapface is installed from a copy of the files a clean clone would have (tracked and
# not-ignored files), so neither a stale build/ nor ignored local files reach the wheel, and
# nothing is written into the checkout.
SRC=$WORK/source
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -xf - -C "$SRC"
else
    cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/src" "$SRC/"
fi
install() {  # runs in step's `||` context, where set -e is off: chain with &&
    local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    rm -rf "$VENV" &&
        "$PYTHON" -m venv "$VENV" &&
        "${pip[@]}" torch==2.13.0 &&      # first, pinned to the local CPU wheel (no CUDA packages)
        "${pip[@]}" "$SRC" &&             # `pip install .`: [project] dependencies, no dev extra
        # The optional detectors exactly as the Makefile installs them (--no-deps).
        "${pip[@]}" --no-deps facenet-pytorch==2.6.0 &&
        "${pip[@]}" --no-deps mediapipe==0.10.14 "protobuf>=4.25.3,<5" attrs &&
        touch "$VENV/.smoke-installed"
}
if [[ ${SMOKE_REUSE:-0} == 1 && -f $VENV/.smoke-installed ]]; then
    # Reinstall swapface itself (not its dependencies) so the current source is what runs.
    step "install (reuse $VENV)" "$VENV/bin/python" -m pip install --quiet \
        --disable-pip-version-check --no-deps --force-reinstall "$SRC"
else
    step "install (fresh $VENV)" install
fi
# No dev/test-only package may have slipped in: they would hide a missing runtime dependency.
step "no dev packages in the venv" "$VENV/bin/python" -c '
import importlib.util, sys
dev = [m for m in ("pytest", "skimage", "PIL", "tensorboard", "ruff", "matplotlib")
       if importlib.util.find_spec(m)]
sys.exit(f"dev-only packages installed: {dev}" if dev else 0)'

export PATH=$VENV/bin:$PATH
SF=$VENV/bin/swapface
cd "$WORK"   # run from a scratch folder: nothing may rely on the checkout being the cwd

# Snapshot of the media folder: the smoke pass must leave it untouched.
snapshot() { find "$DATA" -printf '%P %s %T@\n' | sort; }
[[ -z $DATA ]] || snapshot >"$WORK/data.before"

# --- --help of every command and sub-command, discovered from the parser ----------------------
"$VENV/bin/python" - >"$WORK/commands.txt" <<'EOF' || { echo "FAIL  command discovery"; exit 1; }
import argparse
from swapface.cli.main import COMMANDS, build_parser

def walk(parser, prefix):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                print(" ".join([*prefix, name]))
                walk(child, [*prefix, name])

parser = build_parser([])  # no command chosen: every command module registers its parser
walk(parser, [])
EOF
top=$(grep -vc ' ' "$WORK/commands.txt" || true)
[[ $top -ge 9 ]] || { echo "FAIL  command discovery (found $top commands)"; exit 1; }
# Every command the parser has must also be listed by `swapface --help`.
step "swapface --help" "$SF" --help
while read -r cmd; do
    grep -Eq "^    $cmd( |$)" "$LOG" || { echo "FAIL  swapface --help does not list $cmd"; exit 1; }
done < <(grep -v ' ' "$WORK/commands.txt")
while read -r line; do
    read -ra words <<<"$line"
    step "swapface $line --help" "$SF" "${words[@]}" --help
done <"$WORK/commands.txt"

# --- one short real run of each command -------------------------------------------------------
if [[ -z $DATA ]]; then
    echo "smoke: test media not found (set SWAPFACE_TEST_DATA or provide ../shared/data): real runs skipped"
    ok=1
    exit 0
fi
W=$WORK
step "swapface plugins" "$SF" plugins
step "swapface plugins --json" "$SF" plugins --json

step "swapface video info" "$SF" video info "$VA"
step "swapface video info --json" "$SF" video info --json "$VB"
step "swapface video frames" "$SF" video frames -q --every-n 90 --format jpg "$VA" "$W/frames_a"
step "swapface video frames (b)" "$SF" video frames -q --every-n 30 --format jpg "$VB" "$W/frames_b"
step "swapface video assemble" "$SF" video assemble -q --preset ultrafast "$W/frames_a" "$W/clip_a.mp4"
expect "swapface video assemble" "$W/clip_a.mp4"
step "swapface video assemble (b)" "$SF" video assemble -q --preset ultrafast "$W/frames_b" "$W/clip_b.mp4"

step "swapface extract (woman_a)" "$SF" extract -q --every-n 50 "$VA" \
    --faces "$W/faces_a" --alignments "$W/a.db"
step "swapface extract (woman_b)" "$SF" extract -q --every-n 50 "$VB" \
    --faces "$W/faces_b" --alignments "$W/b.db"
expect "swapface extract (woman_a)" "$W/faces_a" -maxdepth 1 -name "*.png"
expect "swapface extract (woman_b)" "$W/faces_b" -maxdepth 1 -name "*.png"
step "swapface extract (frames folder)" "$SF" extract -q --identity "$W/frames_a" \
    --faces "$W/faces_fr" --alignments "$W/fr.db"

step "swapface alignments info" "$SF" alignments info "$W/a.db"
step "swapface alignments export" "$SF" alignments export "$W/a.db" "$W/a.json"
step "swapface alignments export --format faceswap" "$SF" alignments export --format faceswap \
    "$W/a.db" "$W/a_faceswap.json"
step "swapface alignments import" "$SF" alignments import "$W/a.json" "$W/imported.db"
step "swapface alignments missing-frames" "$SF" alignments missing-frames "$W/fr.db" "$W/frames_a"
step "swapface alignments missing-alignments" "$SF" alignments missing-alignments "$W/a.db"
step "swapface alignments multi-faces" "$SF" alignments multi-faces "$W/a.db" "$W/faces_a"
step "swapface alignments no-faces" "$SF" alignments no-faces "$W/fr.db" "$W/frames_a"
step "swapface alignments draw" "$SF" alignments draw "$W/fr.db" "$W/frames_a" "$W/drawn"
step "swapface alignments merge" "$SF" alignments merge "$W/a.db" "$W/b.db" "$W/merged.db"
step "swapface alignments from-faces" "$SF" alignments from-faces "$W/faces_a" "$W/from_faces.db"
cp "$W/a.db" "$W/smoothed.db"
step "swapface alignments smooth" "$SF" alignments smooth "$W/smoothed.db"
step "swapface alignments extract" "$SF" alignments extract "$W/fr.db" "$W/frames_a" "$W/re_extracted"
# rename and remove-faces change a face folder and its store: work on copies.
cp -r "$W/faces_fr" "$W/faces_work"
cp "$W/fr.db" "$W/work.db"
step "swapface sort --by blur (in place)" "$SF" sort -q --by blur "$W/faces_work"
step "swapface alignments rename" "$SF" alignments rename "$W/work.db" "$W/faces_work"
victim=$(find "$W/faces_work" -maxdepth 1 -type f -name '*.png' | sort | head -n 1)
[[ -n $victim ]] || { echo "FAIL  no face in $W/faces_work to delete"; exit 1; }
rm -- "$victim"
step "swapface alignments remove-faces" "$SF" alignments remove-faces "$W/work.db" "$W/faces_work"

# The command of issue 13 #18 (scipy was not a declared dependency).
step "swapface sort --by identity --group-by identity" "$SF" sort -q --by identity \
    --group-by identity "$W/faces_a" -o "$W/sorted_a" --keep
expect "swapface sort --by identity" "$W/sorted_a" -mindepth 2 -name "*.png"

step "swapface train" "$SF" train -q -A "$W/faces_a" -B "$W/faces_b" -m "$W/model" \
    --model lightweight --iterations 5 --batch-size 4
expect "swapface train" "$W/model" -name "*.safetensors"
step "swapface convert" "$SF" convert -q "$VA" -m "$W/model" -o "$W/swapped.mp4" \
    --alignments "$W/a.db" --frame-ranges 0-20 --discard-frames --preset ultrafast
expect "swapface convert" "$W/swapped.mp4"
step "swapface convert --preview-frame" "$SF" convert -q "$VA" -m "$W/model" -o "$W/preview.png" \
    --alignments "$W/a.db" --preview-frame 0
step "swapface evaluate" "$SF" evaluate -q --source "$VA" --swapped "$W/swapped.mp4" \
    --reference-b "$W/faces_b" --frame-ranges 0-20 --identity-every 10 --max-references 4 \
    --sheet-frames 2 --report "$W/evaluate"
expect "swapface evaluate" "$W/evaluate" -name evaluate.json
step "swapface detect" "$SF" detect -q "$W/clip_a.mp4" -o "$W/detect/boxes.mp4" --max-frames 3
expect "swapface detect" "$W/detect" -name boxes.json
step "swapface run" "$SF" run -q "$W/clip_a.mp4" "$W/clip_b.mp4" -o "$W/run/out.mp4" \
    --iterations 5 --minutes 1 --batch-size 4 --size 128
expect "swapface run" "$W/run/out.mp4"

PW=$W/workspace
step "swapface project new" "$SF" project new --workspace "$PW" demo alice bob
step "swapface project add" "$SF" project add --workspace "$PW" demo alice "$W/clip_a.mp4"
step "swapface project add (b)" "$SF" project add --workspace "$PW" demo bob "$W/clip_b.mp4"
step "swapface project preprocess" "$SF" project preprocess -q --workspace "$PW" demo --size 64
step "swapface project train" "$SF" project train -q --workspace "$PW" demo --iterations 5 \
    --batch-size 4
step "swapface project convert" "$SF" project convert -q --workspace "$PW" demo clip_a.mp4
expect "swapface project convert" "$PW/demo/outputs" -name "*.mp4"
step "swapface project status" "$SF" project status --workspace "$PW" demo
# The web UI with the runtime dependencies: it starts, answers, lists the project, stops.
ui_check() {
    local url
    "$SF" ui --workspace "$PW" --port 0 >"$W/ui.out" 2>"$W/ui.err" &
    local pid=$!
    for _ in $(seq 1 100); do url=$(grep -o 'http://[^ ]*' "$W/ui.out" || true); [[ -n $url ]] && break; sleep 0.1; done
    "$VENV/bin/python" -c 'import json, sys, urllib.request as u
projects = json.load(u.urlopen(sys.argv[1] + "api/projects"))
assert [p["name"] for p in projects] == ["demo"], projects
assert b"app.js" in u.urlopen(sys.argv[1]).read()' "$url"
    local rc=$?
    kill -TERM $pid && wait $pid
    return $rc
}
step "swapface ui" ui_check

snapshot >"$WORK/data.after"
if ! cmp -s "$WORK/data.before" "$WORK/data.after"; then
    echo "FAIL  the smoke pass changed the media folder $DATA:"
    diff "$WORK/data.before" "$WORK/data.after" | head -n 20
    exit 1
fi

T_END=$(now_us)
printf 'smoke: all steps passed in %d s (runtime dependencies only, %s)\n' \
    $(((T_END - T_START) / 1000000)) "$VENV"
ok=1
