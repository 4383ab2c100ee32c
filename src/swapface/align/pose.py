"""Head pose (yaw, pitch, roll) from 68 landmarks: ``cv2.solvePnP`` against a generic 3-D face.

Shared by ``sort --by yaw/pitch/roll`` (curate) and ``swapface evaluate`` (pose error of a
swap), so both read the same angles off the same model.
"""

from __future__ import annotations

import cv2
import numpy as np

# Generic 3-D face (mm-ish units, camera convention: x right, y down, z away from the
# camera; nose tip at the origin). Indices are the 68-point (iBUG) layout.
MODEL_POINTS: dict[int, tuple[float, float, float]] = {
    8: (0.0, 330.0, 65.0),  # chin
    17: (-270.0, -230.0, 170.0),  # brow, image-left end
    26: (270.0, -230.0, 170.0),
    27: (0.0, -175.0, 100.0),  # nose bridge top
    30: (0.0, 0.0, 0.0),  # nose tip
    31: (-55.0, 35.0, 75.0),  # nostrils
    35: (55.0, 35.0, 75.0),
    36: (-225.0, -170.0, 135.0),  # outer eye corners
    39: (-75.0, -165.0, 120.0),  # inner eye corners
    42: (75.0, -165.0, 120.0),
    45: (225.0, -170.0, 135.0),
    48: (-150.0, 150.0, 125.0),  # mouth corners
    54: (150.0, 150.0, 125.0),
    51: (0.0, 120.0, 85.0),  # upper lip
}
MODEL_IDX = np.array(list(MODEL_POINTS), dtype=np.int64)
MODEL_3D = np.array(list(MODEL_POINTS.values()), dtype=np.float64)


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 68 frame landmarks, via ``cv2.solvePnP``.

    Yaw > 0: the face turns toward image-right; pitch > 0: chin down; roll > 0: clockwise.
    The camera is a pinhole centred on the face with a focal length of 2× the face width.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[MODEL_IDX]
    centre = pts.mean(axis=0)
    width = float(np.ptp(np.asarray(landmarks)[:, 0])) or 1.0
    focal = 2.0 * width
    cam = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]], dtype=np.float64)
    rvec0 = np.zeros((3, 1))
    tvec0 = np.array([[0.0], [0.0], [focal * 500.0 / width]])
    ok, rvec, _tvec = cv2.solvePnP(MODEL_3D, pts, cam, np.zeros(4), rvec0, tvec0,
                                   useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return 0.0, 0.0, 0.0
    rot, _ = cv2.Rodrigues(rvec)
    angles = cv2.RQDecomp3x3(rot)[0]  # degrees about x, y, z
    pitch, yaw, roll = float(angles[0]), float(angles[1]), float(angles[2])
    return -yaw, pitch, roll


def angle_difference(a: float, b: float) -> float:
    """|a − b| in degrees on the circle (359° and 1° are 2° apart)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


# Degrees of yaw per inter-ocular distance of nose-tip offset from the eyes' midpoint (in
# the eye-line frame): fitted against head_pose on the woman_a/woman_b training clips
# (118 and 117; correlation 0.94/0.97, 2–3° RMS over ±15–28°).
_YAW_PER_IOD = 118.0


def approx_yaw(landmarks: np.ndarray) -> np.ndarray:
    """Yaw in degrees of many faces at once, (n, 68, 2) → (n,): a cheap stand-in for
    :func:`head_pose` (0.6 ms per face) where only an order or a rough figure is needed."""
    lm = np.asarray(landmarks, np.float64)
    left, right = lm[:, 36:42].mean(axis=1), lm[:, 42:48].mean(axis=1)
    eyes = right - left
    iod = np.maximum(np.linalg.norm(eyes, axis=1), 1e-6)
    nose = lm[:, 30] - (left + right) / 2
    along = (nose * eyes).sum(axis=1) / iod  # the nose offset along the eye line
    return _YAW_PER_IOD * along / iod
