#!/usr/bin/env bash
# The GPU check: the CUDA-marked tests, then one table of speeds and memory
# (benchmarks/gpu_check.py). Under 8 minutes on an H100/H200; `--dry-run` checks it on a CPU.
#   bash benchmarks/gpu_check.sh            # on a machine with CUDA
#   bash benchmarks/gpu_check.sh --dry-run  # anywhere (CI): tiny sizes, figures mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python3
if [[ ${1:-} != --dry-run ]]; then
    "$PY" -m pytest -q -m cuda
fi
"$PY" benchmarks/gpu_check.py "$@"
