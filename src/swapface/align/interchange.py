"""Move alignments between tools: export the store to JSON, import JSON into a store.

Plain JSON both ways; nothing is ever pickled. Both formats are one object with one key per
frame file name, whose value is the list of that frame's faces in face order (``[]`` for a
frame that was processed and has no face)::

    seed      (face_alignments.json)
        {"frame_0001.png": [{"landmark":    [[x, y], ... 68 points],
                             "warp_matrix": [[a, b, c], [d, e, f]]}, ...], ...}
    faceswap  (faceswap's ``alignments export``)
        {"frame_0001.png": [{"detected":     [left, top, right, bottom],
                             "landmarks_2d": [[x, y], ... 68 points]}, ...], ...}

All coordinates are frame pixels. ``warp_matrix`` is the 2×3 affine that maps frame pixels
into the aligned face (:attr:`FaceRecord.matrix`). Export writes exactly these keys, frames
in store order; landmarks are written with the shortest decimals that read back to the same
float32 the store holds, matrices and boxes at full float64 precision.

Import accepts, per face:

* seed: ``landmark`` (required); ``warp_matrix`` (optional: computed from the landmarks with
  :func:`alignment_matrix` at ``size``/``face_span`` when absent; when present it is taken to
  map into a ``size`` px face); ``box`` ``[left, top, right, bottom]`` and ``confidence``
  (optional extras; the box defaults to the landmarks' bounding box).
* faceswap: ``landmarks_2d`` (required); ``detected`` (optional, defaults to the landmarks'
  bounding box). The matrix is always computed at ``size``/``face_span``.

Other keys are ignored. Every face gets ``components`` and ``extended`` masks rebuilt from its
landmarks, ``confidence`` 1.0 unless given, ``detector`` ``"import:<format>"`` and no face
image file, identity or blur (later stages fill those in).

Frames: a name the store already holds keeps its index, timestamp and size and has its faces
replaced. New names are numbered in natural order of their names (``frame2`` < ``frame10``):
from 0 in an empty store, after the highest index already used otherwise, so an import never
overwrites a differently named frame. JSON carries no frame size, so width/height are 0 for new
frames unless ``frames_dir`` is given, in which case each frame image found there is decoded
once to read its size (slow for big folders; missing images keep 0). The whole import is one
transaction: a bad file changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swapface.align.landmarks import bounding_box
from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord, FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.align.transform import DEFAULT_FACE_SPAN, alignment_matrix
from swapface.core.errors import ConfigError, InputError
from swapface.core.fileio import atomic_write_bytes, contained, is_safe_name, natural_key
from swapface.core.images import ImageReadError, read_image

log = logging.getLogger(__name__)

FORMATS = ("seed", "faceswap")
DEFAULT_SIZE = 256
N_LANDMARKS = 68

# Face keys that identify each format (auto-detection) and the one each format requires.
_FORMAT_KEYS = {"seed": {"landmark", "warp_matrix"}, "faceswap": {"landmarks_2d", "detected"}}
_LANDMARK_KEY = {"seed": "landmark", "faceswap": "landmarks_2d"}


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    format: str
    frames: int
    faces: int


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    format: str
    frames: int  # frames in the file
    faces: int
    new_frames: int
    replaced_frames: int  # names the store already had; their faces were replaced
    sized_frames: int  # frames whose width/height were read from frames_dir


@dataclass
class ParsedFace:
    landmarks: np.ndarray  # (68, 2) float64
    box: tuple[float, float, float, float] | None
    confidence: float
    matrix: np.ndarray | None  # (2, 3) float64


@contextlib.contextmanager
def _opened(store: AlignmentsStore | str | Path, *, readonly: bool) -> Iterator[AlignmentsStore]:
    if isinstance(store, AlignmentsStore):
        yield store
        return
    with AlignmentsStore(store, readonly=readonly) as opened:
        yield opened


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise ConfigError(f"unknown alignments format {fmt!r}; choose from {', '.join(allowed)}")
    return fmt


# ---------------------------------------------------------------------------------- export
def _f32_list(points: np.ndarray) -> list[list[float]]:
    """float32 points as the shortest decimals that read back to the same float32."""
    return [[float(str(v)) for v in row] for row in np.asarray(points, np.float32)]


def _export_face(face: FaceRecord, fmt: str) -> dict[str, Any]:
    landmarks = _f32_list(face.landmarks)
    if fmt == "seed":
        return {
            "landmark": landmarks,
            "warp_matrix": np.asarray(face.matrix, np.float64).tolist(),
        }
    return {"detected": [float(v) for v in face.box], "landmarks_2d": landmarks}


def to_json_dict(store: AlignmentsStore, fmt: str = "seed") -> dict[str, list[dict[str, Any]]]:
    """The store as a JSON-ready dict in ``fmt``, frames in store order."""
    _check_format(fmt)
    out: dict[str, list[dict[str, Any]]] = {}
    for frame in store.frames():
        if frame.name in out:
            raise InputError(
                f"{store.path}: frame name {frame.name!r} is used by more than one frame; "
                "JSON needs one key per frame"
            )
        out[frame.name] = [_export_face(face, fmt) for face in frame.faces]
    return out


def export_json(
    store: AlignmentsStore | str | Path, out: str | Path, fmt: str = "seed"
) -> ExportSummary:
    """Write the store to ``out`` as JSON in ``fmt`` (atomically: old file or new, never half)."""
    _check_format(fmt)
    with _opened(store, readonly=True) as st:
        data = to_json_dict(st, fmt)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    atomic_write_bytes(out, text.encode("utf-8"))
    faces = sum(len(v) for v in data.values())
    return ExportSummary(Path(out), fmt, len(data), faces)


# ---------------------------------------------------------------------------------- import
def load_json(path: str | Path) -> Any:
    """Parse a JSON file; unreadable or malformed files raise :class:`InputError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"alignments file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a JSON text file: {exc}") from exc
    except RecursionError:
        raise InputError(f"{path} is nested too deeply to be an alignments file") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


def _check_top(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: expected a JSON object with one key per frame file name, "
            f"got a JSON {_json_type(data)}"
        )
    for name, faces in data.items():
        if not name.strip():
            raise InputError(f"{source}: empty frame name")
        if not is_safe_name(name) or "/" in name:
            raise InputError(f"{source}: frame name {name!r} is not a plain file name "
                             "(no folders, '..' or absolute paths)")
        if not isinstance(faces, list):
            raise InputError(
                f"{source}: frame {name!r}: expected a list of faces, "
                f"got a JSON {_json_type(faces)}"
            )
    return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def detect_format(data: Any, source: str = "alignments JSON") -> str:
    """``seed`` or ``faceswap``, from the keys of the faces (``seed`` when there are no faces)."""
    found: set[str] = set()
    for faces in _check_top(data, source).values():
        for face in faces:
            if isinstance(face, dict):
                found.update(fmt for fmt, keys in _FORMAT_KEYS.items() if keys & face.keys())
        if len(found) > 1:
            raise InputError(
                f"{source}: mixes seed ('landmark'/'warp_matrix') and faceswap "
                "('landmarks_2d'/'detected') faces; pass the format explicitly"
            )
    if not found:
        if any(data.values()):
            raise InputError(
                f"{source}: faces have neither 'landmark' (seed) nor 'landmarks_2d' (faceswap) "
                "keys; not a known alignments format"
            )
        return "seed"
    return found.pop()


COORDINATE_LIMIT = 1e6  # pixels: beyond any frame, and where an alignment stops being numeric


def _array(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape:
        got = "ragged or non-numeric data" if arr is None else f"shape {arr.shape}"
        raise InputError(f"{where}: {what} must be {_shape_words(shape)}, got {got}")
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: {what} holds NaN or infinite values")
    if np.abs(arr).max(initial=0.0) > COORDINATE_LIMIT:
        raise InputError(f"{where}: {what} holds values no frame has (beyond ±{COORDINATE_LIMIT:g})")
    return arr


def _shape_words(shape: tuple[int, ...]) -> str:
    if shape == (N_LANDMARKS, 2):
        return f"{N_LANDMARKS} [x, y] points"
    if shape == (2, 3):
        return "a 2×3 matrix [[a, b, c], [d, e, f]]"
    return f"{shape[0]} numbers"


def _parse_face(face: Any, fmt: str, where: str) -> ParsedFace:
    if not isinstance(face, dict):
        raise InputError(f"{where}: expected a JSON object, got a JSON {_json_type(face)}")
    key = _LANDMARK_KEY[fmt]
    if key not in face:
        raise InputError(f"{where}: missing {key!r} ({fmt} format)")
    landmarks = _array(face[key], (N_LANDMARKS, 2), repr(key), where)
    box_key = "box" if fmt == "seed" else "detected"
    box = None
    if face.get(box_key) is not None:
        left, top, right, bottom = _array(face[box_key], (4,), repr(box_key), where).tolist()
        if right < left or bottom < top:
            raise InputError(f"{where}: {box_key!r} must be [left, top, right, bottom]")
        box = (left, top, right, bottom)
    confidence = 1.0
    if fmt == "seed" and face.get("confidence") is not None:
        value = face["confidence"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value
        ):
            raise InputError(f"{where}: 'confidence' must be a number")
        confidence = float(value)
    matrix = None
    if fmt == "seed" and face.get("warp_matrix") is not None:
        matrix = _array(face["warp_matrix"], (2, 3), "'warp_matrix'", where)
    return ParsedFace(landmarks, box, confidence, matrix)


def parse_faces(
    data: Any, fmt: str, source: str = "alignments JSON"
) -> dict[str, list[ParsedFace]]:
    """Validate a loaded JSON document in ``fmt``; every problem names its frame and face."""
    _check_format(fmt)
    parsed: dict[str, list[ParsedFace]] = {}
    for name, faces in _check_top(data, source).items():
        parsed[name] = [
            _parse_face(face, fmt, f"{source}: frame {name!r}, face {i}")
            for i, face in enumerate(faces)
        ]
    return parsed


def _face_record(
    parsed: ParsedFace, index: int, fmt: str, size: int, face_span: float, where: str
) -> FaceRecord:
    lm = parsed.landmarks
    degenerate = InputError(f"{where}: landmarks are degenerate (all on one point)")
    try:
        matrix = parsed.matrix if parsed.matrix is not None else alignment_matrix(lm, size, face_span)
        masks = {kind: build_mask(lm, kind) for kind in MASK_TYPES}
    except np.linalg.LinAlgError:
        raise degenerate from None
    if not np.isfinite(matrix).all() or not all(np.isfinite(m.matrix).all() for m in masks.values()):
        raise degenerate
    return FaceRecord(
        face_index=index,
        box=parsed.box if parsed.box is not None else bounding_box(lm),
        confidence=parsed.confidence,
        # Stored as float32 anyway; rounding here keeps the records equal to what reads back.
        landmarks=lm.astype(np.float32).astype(np.float64),
        matrix=np.asarray(matrix, np.float64),
        size=size,
        face_span=face_span,
        detector=f"import:{fmt}",
        masks=masks,
    )


def _frame_size(frames_dir: Path, name: str) -> tuple[int, int] | None:
    path = contained(frames_dir, name)
    if path is None or not path.is_file():
        return None
    try:
        image = read_image(path)
    except ImageReadError as exc:
        log.warning("cannot read frame size: %s", exc)
        return None
    return int(image.shape[1]), int(image.shape[0])


def check_options(size: int, face_span: float) -> None:
    if not 16 <= size <= 8192:
        raise ConfigError(f"face size must be 16..8192 px, got {size}")
    if not 0.1 <= face_span <= 1.0:
        raise ConfigError(f"face_span must be in [0.1, 1.0], got {face_span}")


def import_json(
    source: str | Path,
    store: AlignmentsStore | str | Path,
    fmt: str = "auto",
    *,
    size: int = DEFAULT_SIZE,
    face_span: float = DEFAULT_FACE_SPAN,
    frames_dir: str | Path | None = None,
) -> ImportSummary:
    """Import a JSON alignments file into ``store`` (created if missing, merged if not).

    ``fmt`` is ``seed``, ``faceswap`` or ``auto`` (by the faces' keys). The file is validated
    completely before the store is touched, and written in one transaction.
    """
    _check_format(fmt, (*FORMATS, "auto"))
    check_options(size, face_span)
    source = Path(source)
    if frames_dir is not None:
        frames_dir = Path(frames_dir)
        if not frames_dir.is_dir():
            raise InputError(f"frames folder not found: {frames_dir}")
    data = load_json(source)
    label = str(source)
    if fmt == "auto":
        fmt = detect_format(data, label)
    parsed = parse_faces(data, fmt, label)
    records = {
        name: [
            _face_record(face, i, fmt, size, face_span, f"{label}: frame {name!r}, face {i}")
            for i, face in enumerate(faces)
        ]
        for name, faces in parsed.items()
    }

    new_frames = replaced = sized = 0
    with _opened(store, readonly=False) as st, st.transaction():
        # Read under the write lock so a concurrent writer cannot take the same indices.
        existing = st.frame_slots()
        used = st.frame_indices()
        next_index = max(used) + 1 if used else 0
        for name in sorted(records, key=natural_key):
            if name in existing:
                slot = existing[name]
                index, timestamp, width, height = slot.index, slot.timestamp, slot.width, slot.height
                replaced += 1
            else:
                index, timestamp, width, height = next_index, None, 0, 0
                next_index += 1
                new_frames += 1
            if (width == 0 or height == 0) and frames_dir is not None:
                found = _frame_size(frames_dir, name)
                if found:
                    width, height = found
                    sized += 1
            st.put_frame(FrameRecord(index, name, timestamp, width, height, records[name]))
        st.set_meta(
            "imported",
            {"file": source.name, "format": fmt, "frames": len(records),
             "faces": sum(len(v) for v in records.values())},
        )
    return ImportSummary(
        source, fmt, len(records), sum(len(v) for v in records.values()),
        new_frames, replaced, sized,
    )
