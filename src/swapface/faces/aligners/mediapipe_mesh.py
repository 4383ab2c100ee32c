"""MediaPipe Face Mesh as a 68-point aligner (``mediapipe``), an optional plugin.

The 468-point Face Mesh model bundled in the ``mediapipe`` 0.10.14 wheel runs on a rotated
square region around each detection box: the same ``FaceLandmarkCpu`` graph that
``mediapipe.solutions.face_mesh`` uses, fed our box as its region of interest instead of
running MediaPipe's own short-range detector again on a crop (which may find no face, while
an aligner must return landmarks for every box; on the dlib_faces set it was also slightly
less accurate: 0.054 vs 0.050 of the inter-ocular distance). A second pass re-centres the
region on the first pass's mesh and levels it by the eye corners, as Face Mesh does when it
tracks, so the result hardly depends on how the detector framed the face.

The 468 points become the 68 iBUG 300-W points through :data:`MESH_TO_IBUG68`, a fixed
table of one or two mesh vertices per iBUG point (two are averaged). Each entry was
picked, symmetrically left/right, as the vertex or vertex pair nearest on average to dlib's
68-point predictor on 193 frames of the four talking-head test clips (not the stills).
The jaw points sit on mesh vertices inside the face oval: the oval runs under the jaw,
while iBUG's jaw line is the visible cheek/chin outline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swapface.core.config import option
from swapface.faces.aligners.base import ALIGNERS
from swapface.faces.detectors.base import Detection
from swapface.faces.detectors.mediapipe_detector import (
    _mediapipe_installed,
    load_mediapipe,
    quiet_protobuf,
    to_rgb,
)

# iBUG 68 point i = mean of the mesh vertices MESH_TO_IBUG68[i].
MESH_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, subject's right (image left) to left
    (127,), (234, 137), (93, 177), (215,), (138, 172), (136,), (149, 150), (148, 176),
    (152,),
    (377, 400), (378, 379), (365,), (367, 397), (435,), (323, 401), (454, 366), (356,),
    # right brow 17-21, left brow 22-26 (outer to inner, inner to outer)
    (71, 124), (63,), (105, 66), (66, 107), (107, 55),
    (336, 285), (296, 336), (334, 296), (293,), (301, 353),
    # nose bridge 27-30, nostrils 31-35
    (168, 6), (197,), (5, 195), (4,),
    (240,), (97,), (2, 164), (326,), (460,),
    # right eye 36-41: outer corner, upper lid ×2, inner corner, lower lid ×2
    (33, 7), (160, 159), (157, 159), (133, 155), (153,), (144,),
    # left eye 42-47: inner corner, upper lid ×2, outer corner, lower lid ×2
    (362, 382), (384, 386), (387, 386), (263, 249), (373,), (380,),
    # outer lips 48-59 from the right corner, over the upper lip, back under the lower
    (61,), (39, 74), (37,), (0, 11), (267,), (269, 304), (291,), (405,), (314,), (17,),
    (84,), (181,),
    # inner lips 60-67
    (62, 77), (82,), (13,), (312,), (292, 307), (317,), (14,), (87,),
)
assert len(MESH_TO_IBUG68) == 68

_ROI_SCALE = 1.5  # square region side / face size, as Face Mesh uses for its crops
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER = 33, 263

_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""


def _mapping_matrix(n_mesh: int) -> np.ndarray:
    """(68, n_mesh) averaging matrix: ibug = W @ mesh."""
    w = np.zeros((68, n_mesh))
    for i, idx in enumerate(MESH_TO_IBUG68):
        w[i, list(idx)] = 1.0 / len(idx)
    return w


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points from (468+, 2) Face Mesh points."""
    mesh = np.asarray(mesh, dtype=np.float64)[:, :2]
    return _mapping_matrix(len(mesh)) @ mesh


def _roi_from_mesh(mesh: np.ndarray) -> tuple[float, float, float, float]:
    """(cx, cy, side, angle): a square around the mesh, levelled by the eye corners."""
    dx, dy = mesh[_LEFT_EYE_OUTER] - mesh[_RIGHT_EYE_OUTER]
    angle = math.atan2(dy, dx)
    c, s = math.cos(angle), math.sin(angle)
    rel = mesh - mesh.mean(axis=0)
    u = rel @ (c, s)  # along the eye line
    v = rel @ (-s, c)  # across it
    mu, mv = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    cx, cy = mesh.mean(axis=0) + mu * np.array([c, s]) + mv * np.array([-s, c])
    side = max(u.max() - u.min(), v.max() - v.min()) * _ROI_SCALE
    return float(cx), float(cy), float(side), angle


def _roi_from_detection(det: Detection) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = det.box
    angle = 0.0
    if det.points5 is not None:  # level by the eyes when the detector gives them
        dx, dy = det.points5[1] - det.points5[0]
        if dx > 0:
            angle = math.atan2(dy, dx)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0, 1.0) * _ROI_SCALE, angle


@dataclass(frozen=True)
class MeshOptions:
    refine: bool = option(False, help="the attention mesh model: finer eyes and lips, ~1.3x slower")
    passes: int = option(2, help="1: the detection box only; 2: again on a box re-centred on "
                         "the first mesh", choices=[1, 2])


@ALIGNERS.register("mediapipe", options=MeshOptions, available=_mediapipe_installed,
                   description="MediaPipe Face Mesh mapped to the 68 iBUG points (optional package)")
class MediaPipeMeshAligner:
    """Face Mesh → iBUG 68. ``refine=True`` uses the attention mesh model (finer eyes and
    lips, ~1.3× slower); ``passes`` is 1 (detection box only) or 2 (default, re-centred)."""

    name = "mediapipe"

    def __init__(self, options: MeshOptions | None = None, device: str = "cpu") -> None:
        options = options or MeshOptions()
        refine, passes = options.refine, options.passes
        load_mediapipe()
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python.solution_base import SolutionBase

        self._rect = rect_pb2.NormalizedRect
        self.refine = refine
        self.passes = max(1, int(passes))
        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = SolutionBase(
            graph_config=config,
            side_inputs={"with_attention": refine},
            outputs=["landmarks"],
            # Face Mesh drops a face whose presence score is not above this; we always want
            # points for every box, so no score may fail it.
            calculator_params={"facelandmarkcpu__ThresholdingCalculator.threshold": -1.0},
        )

    def _mesh(self, rgb: np.ndarray, roi: tuple[float, float, float, float]) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        cx, cy, side, angle = roi
        rect = self._rect(x_center=cx / w, y_center=cy / h, width=side / w, height=side / h,
                          rotation=angle)
        with quiet_protobuf():
            result = self._graph.process({"image": rgb, "roi": rect})
        if result.landmarks is None:
            return None
        return np.array([(p.x * w, p.y * h) for p in result.landmarks.landmark])

    def mesh(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """The raw (468, 2) mesh (478 with ``refine``) in ``image`` pixels for one box."""
        return self._mesh_rgb(to_rgb(image), detection)

    def _mesh_rgb(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        roi = _roi_from_detection(detection)
        mesh = self._mesh(rgb, roi)
        if mesh is None:
            raise RuntimeError("mediapipe face mesh returned no landmarks")
        for _ in range(self.passes - 1):
            again = self._mesh(rgb, _roi_from_mesh(mesh))
            if again is None:
                break
            mesh = again
        return mesh

    def landmarks(
        self, image: np.ndarray, detections: Sequence[Detection], dlib_box_style: bool = True
    ) -> list[np.ndarray]:
        if not detections:
            return []
        rgb = to_rgb(image)
        return [mesh_to_ibug68(self._mesh_rgb(rgb, det)) for det in detections]

    def close(self) -> None:
        """Free the MediaPipe graph now rather than at garbage collection."""
        self._graph.close()

