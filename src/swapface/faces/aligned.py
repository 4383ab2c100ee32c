"""From a found face to an aligned face: its image, masks, sharpness, thumbnail and files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapface.align.masks import MASK_TYPES, build_mask
from swapface.align.records import FaceRecord
from swapface.align.transform import alignment_matrix, warp_face
from swapface.core.images import encode_image, write_image
from swapface.faces.blur import blur_score
from swapface.faces.finder import FoundFace
from swapface.faces.meta import FaceFileMeta

THUMB_SIZE = 64


@dataclass
class AlignedFace:
    record: FaceRecord
    image: np.ndarray  # aligned BGR face of ``record.size`` px
    mask: np.ndarray  # the ``extended`` mask at that size, uint8


def align_face(image: np.ndarray, found: FoundFace, face_index: int, size: int,
               face_span: float, detector: str) -> AlignedFace:
    """Warp ``found`` out of ``image`` and describe it as a store record (no identity yet)."""
    lm = found.landmarks
    matrix = alignment_matrix(lm, size, face_span)
    face = warp_face(image, matrix, size)
    masks = {kind: build_mask(lm, kind) for kind in MASK_TYPES}
    record = FaceRecord(
        face_index=face_index,
        box=tuple(float(v) for v in found.detection.box),  # type: ignore[arg-type]
        confidence=float(found.detection.score),
        landmarks=lm,
        matrix=matrix,
        size=size,
        face_span=face_span,
        detector=detector,
        masks=masks,
    )
    extended = masks["extended"].for_face(matrix, size)
    record.blur = blur_score(face, masks["components"].for_face(matrix, size))
    thumb = cv2.resize(face, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    record.thumbnail = encode_image(thumb, ".jpg", jpg_quality=80)
    return AlignedFace(record, face, extended)


def write_face_files(face: np.ndarray, folder: Path, name: str, meta: FaceFileMeta,
                     mask_kind: str, mask: np.ndarray | None) -> None:
    """``folder/name`` with its metadata embedded, and ``masks/<stem>.png`` when a mask is given."""
    write_image(folder / name, face, meta.to_dict())
    if mask is not None:
        write_image(folder / "masks" / (Path(name).stem + ".png"), mask,
                    {"mask": mask_kind, "face": name})
