"""From a found face to its outputs: aligned image, masks, sharpness, identity, files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface import __version__
from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord
from swapface.align.transform import alignment_matrix, transform_points, warp_face
from swapface.core.images import encode_image, write_image
from swapface.extract.finder import FoundFace

THUMB_SIZE = 64
_BLUR_SIZE = 128  # sharpness is measured at a fixed size so thresholds do not depend on --size


def blur_score(face: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian over the face (higher = sharper)."""
    gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (_BLUR_SIZE, _BLUR_SIZE), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(gray, cv2.CV_64F)
    if mask is not None:
        m = cv2.resize(mask, (_BLUR_SIZE, _BLUR_SIZE), interpolation=cv2.INTER_NEAREST) > 127
        m = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # skip the mask edge
        if m.sum() > 50:
            return float(lap[m].var())
    return float(lap.var())


def _round(a: np.ndarray, digits: int = 3) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


@dataclass
class FaceOutput:
    record: FaceRecord
    face: np.ndarray  # aligned BGR image
    mask: np.ndarray  # the --mask-type mask at face size


def build_face(
    image: np.ndarray, found: FoundFace, face_index: int, size: int, coverage: float, detector: str
) -> FaceOutput:
    lm = found.landmarks
    matrix = alignment_matrix(lm, size, coverage)
    face = warp_face(image, matrix, size)
    masks = {kind: build_mask(lm, kind) for kind in MASK_TYPES}
    record = FaceRecord(
        face_index=face_index,
        box=tuple(float(v) for v in found.detection.box),  # type: ignore[arg-type]
        confidence=float(found.detection.score),
        landmarks=lm,
        matrix=matrix,
        size=size,
        coverage=coverage,
        detector=detector,
        masks=masks,
    )
    extended = masks["extended"].for_face(matrix, size)
    record.blur = blur_score(face, masks["components"].for_face(matrix, size))
    thumb = cv2.resize(face, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    record.thumbnail = encode_image(thumb, ".jpg", jpg_quality=80)
    return FaceOutput(record, face, extended)


def face_metadata(record: FaceRecord, source: str, frame_name: str, frame_index: int,
                  alignments: str) -> dict[str, Any]:
    """What each face file carries so a face folder can be re-linked to its store."""
    return {
        "swapface": __version__,
        "source": source,
        "frame": frame_name,
        "frame_index": frame_index,
        "face_index": record.face_index,
        "box": _round(record.box, 2),
        "landmarks": _round(record.landmarks, 3),
        "warp_matrix": _round(record.matrix, 8),
        "size": record.size,
        "coverage": record.coverage,
        "alignments": alignments,
    }


def write_face_files(out: FaceOutput, folder: Path, name: str, meta: dict[str, Any],
                     mask_kind: str, mask: np.ndarray | None) -> None:
    write_image(folder / name, out.face, meta)
    if mask is not None:
        write_image(folder / "masks" / (Path(name).stem + ".png"), mask,
                    {"mask": mask_kind, "face": name})


def draw_debug(image: np.ndarray, faces: list[FoundFace]) -> tuple[np.ndarray, np.ndarray]:
    """(frame with boxes, frame with landmarks) as the seed script's debug images."""
    boxes, points = image.copy(), image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for f in faces:
        l, t, r, b = (round(v) for v in f.detection.box)
        cv2.rectangle(boxes, (l, t), (r, b), (0, 255, 0), thick)
        cv2.putText(boxes, f"{f.detection.score:.2f}", (l, max(0, t - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 255, 0), thick)
        for x, y in f.landmarks:
            cv2.circle(points, (round(x), round(y)), thick + 1, (0, 0, 255), -1)
    return boxes, points


def draw_aligned_debug(face: np.ndarray, record: FaceRecord) -> np.ndarray:
    out = face.copy()
    for x, y in transform_points(record.landmarks, record.matrix):
        cv2.circle(out, (round(x), round(y)), 2, (0, 0, 255), -1)
    return out
