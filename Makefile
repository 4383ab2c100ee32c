# Everything a fresh machine needs: `make demo` (main job) and `make test` (test suite).
# torch is installed first, pinned to the local CPU wheel, so no CUDA packages are pulled.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed
DATA ?= $(or $(SWAPFACE_TEST_DATA),../shared/data)
OUT ?= out

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	# Optional detectors. MTCNN: only the weight files of facenet-pytorch are used; --no-deps
	# keeps its torchvision requirement (a CUDA build that breaks CPU torch) out.
	$(PIP) --no-deps facenet-pytorch==2.6.0
	# MediaPipe 0.10.14 (BlazeFace, Face Mesh): its declared deps would add opencv-contrib,
	# jax and matplotlib; it runs with protobuf<5 and attrs alone.
	$(PIP) --no-deps mediapipe==0.10.14 "protobuf>=4.25.3,<5" attrs
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/swapface run "$(DATA)/video/woman_a.mp4" "$(DATA)/video/woman_b.mp4" \
		-o $(OUT)/woman_a_as_b.mp4

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/extract_speed.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
