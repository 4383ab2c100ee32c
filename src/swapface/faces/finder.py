"""Finding faces in a frame: full detection, tracking between detections, rotation retries.

Why tracking: a full-frame HOG pass at upsample 1 costs ~85 ms on a 480² frame, while a
detection inside a small crop around where the face was a frame ago costs ~2.5 ms. Full
detection still runs every ``redetect_every`` frames (new faces enter) and whenever a
tracked face is lost, so recall matches per-frame detection on talking-head footage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.align.tracks import box_iou
from swapface.align.transform import DEFAULT_FACE_SPAN, transform_points
from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.runtime import choose_device
from swapface.faces.aligners import ALIGNERS
from swapface.faces.aligners.base import Aligner
from swapface.faces.detectors import DETECTORS
from swapface.faces.detectors.base import Detection, Detector

_ROI_FACE_PX = 100  # tracked faces are rescaled to this width: above HOG's ~80 px window
_ROI_MARGIN = 1.0  # crop = box grown by this × its width on every side


@dataclass
class FoundFace:
    detection: Detection  # in frame pixels
    landmarks: np.ndarray  # (68, 2) frame pixels
    rotation: int = 0  # angle the face was found at (0 = upright)


def dedupe(dets: list[Detection], iou: float = 0.5) -> list[Detection]:
    kept: list[Detection] = []
    for det in sorted(dets, key=lambda d: -d.score):
        if all(box_iou(det.box, k.box) < iou for k in kept):
            kept.append(det)
    return kept


def _rotation(shape: tuple[int, ...], angle: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine rotating a frame by ``angle`` degrees onto a canvas that holds all of it."""
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = round(h * sin + w * cos), round(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m, (nw, nh)


@dataclass
class FinderOptions:
    """How faces are found: detector and aligner plugins, sizes, tracking, rotation retries."""

    detector: str = option("hog", help="face detector plugin (swapface plugins lists them)")
    detector_options: dict[str, Any] = option({}, help="detector plugin options, key=value")
    aligner: str = option(
        "auto", help="68-point landmark plugin: dlib68, mediapipe, or auto (mesh with mediapipe)")
    aligner_options: dict[str, Any] = option({}, help="aligner plugin options, key=value")
    upsample: int = option(
        1, help="detector upsampling: each step halves the smallest face found (~80 px at 0)")
    min_confidence: float | None = option(
        None, help="detector score threshold (hog: SVM margin, default 0; mtcnn: probability)")
    max_detection_size: int = option(
        1280, help="detect on a copy downscaled so its long side is at most this (0 = never)")
    min_size: float = option(0.0, help="drop faces whose box area is below this fraction of the frame")
    track: bool = option(False, help="track faces between full detections")
    redetect_every: int = option(8, help="with tracking: full-frame detection every N frames")
    rotate: list[int] = option(
        [], help="angles (degrees) to retry on frames where no face is found, e.g. 90 180 270")
    cpu: bool = option(False, help="run neural detectors on the CPU even when CUDA is present")

    def __post_init__(self) -> None:
        if self.redetect_every < 1:
            raise ConfigError("--redetect-every must be at least 1")
        if not 0.0 <= self.min_size < 1.0:
            raise ConfigError("--min-size is a fraction of the frame area in [0, 1)")
        if self.upsample < 0 or self.upsample > 4:
            raise ConfigError("--upsample must be between 0 and 4")
        self.rotate = [a % 360 for a in self.rotate if a % 360]

    @property
    def aligner_name(self) -> str:
        if self.aligner != "auto":
            return self.aligner
        return "mediapipe" if self.detector == "mediapipe" else "dlib68"

    @property
    def device(self) -> str:
        """Where the detector runs: CUDA for the neural ones when present, else the CPU."""
        gpu = DETECTORS.get(self.detector).extra.get("gpu", False)
        return choose_device(self.cpu) if gpu else "cpu"


class FaceFinder:
    """Detector + aligner + optional tracker for one stream of frames."""

    def __init__(
        self,
        detector: Detector,
        aligner: Aligner,
        *,
        max_detection_size: int = 1280,
        min_size: float = 0.0,
        track: bool = False,
        redetect_every: int = 8,
        rotate: list[int] | None = None,
    ) -> None:
        self.detector = detector
        self.aligner = aligner
        self.max_detection_size = max_detection_size
        self.min_size = min_size
        self.track = track
        self.redetect_every = redetect_every
        self.rotate = rotate or []
        self._tracks: list[tuple[float, float, float, float]] = []
        self._since_full = 0

    @classmethod
    def create(cls, options: FinderOptions | None = None) -> FaceFinder:
        """Load the detector and aligner plugins ``options`` name (the models load here)."""
        options = options or FinderOptions()
        device = options.device
        detector = DETECTORS.create(
            options.detector, {"upsample": options.upsample, "threshold": options.min_confidence,
                               **options.detector_options}, device=device)
        aligner = ALIGNERS.create(options.aligner_name, options.aligner_options, device=device)
        return cls(detector, aligner, max_detection_size=options.max_detection_size,
                   min_size=options.min_size, track=options.track,
                   redetect_every=options.redetect_every, rotate=options.rotate)

    def spawn(self, **changes: Any) -> FaceFinder:
        """A finder on the same loaded models with its own tracking state (``track=``, ...)."""
        settings = {"max_detection_size": self.max_detection_size, "min_size": self.min_size,
                    "track": self.track, "redetect_every": self.redetect_every,
                    "rotate": self.rotate, **changes}
        return FaceFinder(self.detector, self.aligner, **settings)

    def reset(self) -> None:
        """Forget tracks (call at a cut, a seek, or a gap between frames)."""
        self._tracks = []

    # -------------------------------------------------------------- detection
    def _detect_full(self, image: np.ndarray) -> list[Detection]:
        return self.detect_many([image])[0]

    def _detect_roi(self, image: np.ndarray, box: tuple[float, float, float, float]) -> Detection | None:
        h, w = image.shape[:2]
        bw = max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = bw * (0.5 + _ROI_MARGIN)
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = _ROI_FACE_PX / bw
        crop = cv2.resize(image[y0:y1, x0:x1], None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        best = None
        for det in self.detector.detect([crop], upsample=0)[0]:
            d = det.mapped(scale, x0, y0)
            dist = np.hypot(d.center[0] - cx, d.center[1] - cy)
            if dist < 0.5 * bw and 0.6 < d.width / bw < 1.6 and (best is None or d.score > best.score):
                best = d
        return best

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Full detection of several frames in one detector call (batched on the GPU).

        Only meaningful without tracking, where frames do not depend on each other.
        """
        scales = []
        batch = []
        for image in images:
            h, w = image.shape[:2]
            scale = 1.0
            if self.max_detection_size and max(h, w) > self.max_detection_size:
                scale = self.max_detection_size / max(h, w)
                image = cv2.resize(image, (round(w * scale), round(h * scale)),
                                   interpolation=cv2.INTER_AREA)
            scales.append(scale)
            batch.append(image)
        found = self.detector.detect(batch)
        return [[d.mapped(s) for d in dets] if s != 1.0 else dets
                for dets, s in zip(found, scales, strict=True)]

    def _detect(self, image: np.ndarray) -> list[Detection]:
        full = not (self.track and self._tracks) or self._since_full >= self.redetect_every
        dets: list[Detection] = []
        if not full:
            for box in self._tracks:
                det = self._detect_roi(image, box)
                if det is None:  # lost: a full pass finds it elsewhere, or confirms it left
                    full = True
                    break
                dets.append(det)
        if full:
            dets = self._detect_full(image)
            self._since_full = 0
        else:
            self._since_full += 1
        return dedupe(dets)

    def _keep(self, det: Detection, frame_area: float) -> bool:
        return det.width * det.height >= self.min_size * frame_area and det.width > 4

    # -------------------------------------------------------------- public
    def find(self, image: np.ndarray, detections: list[Detection] | None = None) -> list[FoundFace]:
        """Faces in a BGR frame, left to right, with 68 landmarks in frame pixels.

        ``detections`` from :meth:`detect_many` skip this frame's own detection step.
        """
        area = float(image.shape[0] * image.shape[1])
        raw = self._detect(image) if detections is None else dedupe(detections)
        dets = [d for d in raw if self._keep(d, area)]
        faces = []
        if dets:
            lms = self.aligner.landmarks(image, dets, self.detector.dlib_box_style)
            faces = [FoundFace(d, lm) for d, lm in zip(dets, lms, strict=True)]
        elif self.rotate:
            faces = self._find_rotated(image, area)
        self._tracks = [f.detection.box for f in faces if f.rotation == 0]
        return sorted(faces, key=lambda f: f.detection.center[0])

    def records(self, image: np.ndarray, size: int = 256,
                face_span: float = DEFAULT_FACE_SPAN) -> list[FaceRecord]:
        """:meth:`find`, each face aligned as extract aligns it (``size`` px), as store records."""
        from swapface.faces.aligned import align_face

        return [align_face(image, found, i, size, face_span, self.detector.name).record
                for i, found in enumerate(self.find(image))]

    def _find_rotated(self, image: np.ndarray, area: float) -> list[FoundFace]:
        for angle in self.rotate:
            m, (nw, nh) = _rotation(image.shape, angle)
            rotated = cv2.warpAffine(image, m, (nw, nh), flags=cv2.INTER_LINEAR)
            dets = [d for d in self._detect_full(rotated) if self._keep(d, area)]
            if not dets:
                continue
            back = cv2.invertAffineTransform(m)
            lms = self.aligner.landmarks(rotated, dets, self.detector.dlib_box_style)
            faces = []
            for det, lm in zip(dets, lms, strict=True):
                l, t, r, b = det.box
                corners = transform_points(np.array([[l, t], [r, t], [r, b], [l, b]]), back)
                box = (*corners.min(axis=0), *corners.max(axis=0))
                pts = None if det.points5 is None else transform_points(det.points5, back)
                faces.append(FoundFace(Detection(tuple(map(float, box)), det.score, pts),
                                       transform_points(lm, back), angle))
            return faces
        return []
