"""MediaPipe's 478-point face mesh for a face already found, and the contours masks use.

The swap engine's ``mesh`` mask needs the face's outline up to the forehead and the inner
edge of the lips, finer than the 68 iBUG points draw them: iBUG stops at the brows, and its
8 inner-lip points cut the corners of an open mouth. :class:`FaceMesher` runs the
attention mesh model bundled in ``mediapipe`` 0.10.14 (``face_landmark_with_attention``:
refined eyes and lips, 10 iris points) on a region placed from the face's own 68
landmarks, so no detector runs again. The contours (:func:`face_oval`, :func:`inner_lips`)
are read from MediaPipe's own connection tables, ordered into closed loops.
"""

from __future__ import annotations

import threading
from functools import cache
from types import ModuleType

import numpy as np

from swapface.align.landmarks import to_five_points
from swapface.faces.aligners.base import box_from_landmarks
from swapface.faces.aligners.mediapipe_mesh import MediaPipeMeshAligner, MeshOptions
from swapface.faces.detectors.base import Detection
from swapface.faces.detectors.mediapipe_detector import _mediapipe_installed, load_mediapipe

_UPPER_INNER_LIP = 13


def mesh_available() -> bool:
    """Whether the optional ``mediapipe`` package is installed."""
    return _mediapipe_installed()


def _loops(edges: frozenset[tuple[int, int]]) -> list[list[int]]:
    """The closed vertex loops an undirected edge set is made of (each vertex has 2 edges)."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, prev = [start], None
        while True:
            step = next(n for n in neighbours[loop[-1]] if n != prev)
            prev = loop[-1]
            if step == start:
                break
            loop.append(step)
        seen.update(loop)
        loops.append(loop)
    return loops


@cache
def _connections() -> ModuleType:
    load_mediapipe()
    from mediapipe.python.solutions import face_mesh_connections

    return face_mesh_connections


@cache
def face_oval() -> tuple[int, ...]:
    """Mesh vertices of the face outline, in order (jaw, cheeks and the forehead)."""
    (loop,) = _loops(_connections().FACEMESH_FACE_OVAL)
    return tuple(loop)


@cache
def inner_lips() -> tuple[int, ...]:
    """Mesh vertices of the lips' inner edge (the mouth opening), in order."""
    # FACEMESH_LIPS holds two loops, the lips' outer line and their inner edge; vertex 13,
    # the middle of the upper lip's inner edge, tells which is which.
    (loop,) = [loop for loop in _loops(_connections().FACEMESH_LIPS) if _UPPER_INNER_LIP in loop]
    return tuple(loop)


@cache
def eye_openings() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Mesh vertices of each eye's lid margins (the visible eyeball), in order."""
    conn = _connections()
    return tuple(tuple(_loops(edges)[0]) for edges in (conn.FACEMESH_RIGHT_EYE,  # type: ignore[return-value]
                                                        conn.FACEMESH_LEFT_EYE))


class FaceMesher:
    """478 mesh points (frame pixels) for a face given by its 68 landmarks; thread-safe."""

    def __init__(self, passes: int = 1) -> None:
        # One pass suffices here: the region comes from the face's landmarks, not a detector
        # box (a second, re-centred pass moved the points by ~2 % of the eye distance).
        self._aligner = MediaPipeMeshAligner(MeshOptions(refine=True, passes=passes))
        self._lock = threading.Lock()

    def mesh(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(478, 2) mesh points in ``image`` pixels for the face with these 68 ``landmarks``."""
        lm = np.asarray(landmarks, dtype=np.float64)
        detection = Detection(box_from_landmarks(lm), 1.0, to_five_points(lm))
        with self._lock:
            return self._aligner.mesh(image, detection)

    def close(self) -> None:
        self._aligner.close()
