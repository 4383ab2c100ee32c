"""MediaPipe BlazeFace detector (``mediapipe``), an optional plugin.

Uses the two BlazeFace models bundled in the ``mediapipe`` 0.10.14 wheel through the legacy
``mediapipe.solutions.face_detection`` API: ``full`` range (model_selection 1, faces up to
~5 m, the default) and ``short`` range (model_selection 0, faces within ~2 m). Nothing is
downloaded at run time. Scores are BlazeFace probabilities in [0, 1].

``points5`` is built from BlazeFace's six keypoints in the usual 5-point order (image-left
eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner):
eyes and nose tip are BlazeFace's own; BlazeFace has only a mouth *centre*, so the two
corners are estimated as mouth centre ∓ 0.415 × (right eye − left eye), the mouth-width to
eye-distance ratio of the common 5-point (ArcFace) template. The two ear tragion points are
dropped.

Install: ``pip install --no-deps mediapipe==0.10.14 "protobuf>=4.25.3,<5" attrs``. The
wheel's other declared dependencies are not needed for these two plugins: absl-py and
flatbuffers (``mediapipe.tasks`` only), jax, jaxlib, sounddevice, matplotlib (see
:func:`load_mediapipe`) and opencv-contrib-python (the installed opencv-python-headless
serves as ``cv2``). mediapipe 0.10.14 works with numpy 2.x.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.faces.detectors.base import DETECTORS, Detection, DetectorOptions

_MODELS = {"full": 1, "short": 0}
_MOUTH_HALF_WIDTH = 0.415  # mouth half-width / eye distance in the 5-point ArcFace template


def _mediapipe_installed() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


class _MissingMatplotlib(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # keep hasattr()/inspect working on the placeholder
            raise AttributeError(name)
        raise ModuleNotFoundError(
            "matplotlib is not installed (only mediapipe's plotting helpers need it)",
            name="matplotlib",
        )


def load_mediapipe() -> types.ModuleType:
    """``import mediapipe``, tolerating a missing matplotlib.

    mediapipe 0.10.14 imports ``matplotlib.pyplot`` at package import time for its drawing
    helpers only. Without matplotlib, placeholder modules stand in during the import and are
    removed from ``sys.modules`` afterwards, so nothing else sees a fake matplotlib.
    """
    if not _mediapipe_installed():
        raise ConfigError("mediapipe is not installed: pip install --no-deps mediapipe==0.10.14 "
                          "'protobuf>=4.25.3,<5' attrs")
    if "mediapipe" in sys.modules or importlib.util.find_spec("matplotlib") is not None:
        return _import("mediapipe")
    stubs = {"matplotlib": _MissingMatplotlib("matplotlib"),
             "matplotlib.pyplot": _MissingMatplotlib("matplotlib.pyplot")}
    stubs["matplotlib"].pyplot = stubs["matplotlib.pyplot"]  # type: ignore[attr-defined]
    sys.modules.update(stubs)
    try:
        return _import("mediapipe")
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # installed but a runtime dependency is missing
        raise ConfigError(
            f"mediapipe is installed but cannot be imported ({exc}); install its runtime "
            "dependencies: pip install 'protobuf>=4.25.3,<5' attrs"
        ) from exc


@contextmanager
def quiet_protobuf() -> Iterator[None]:
    """Silence protobuf 4's GetPrototype() deprecation warning raised inside mediapipe."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*GetPrototype\(\) is deprecated")
        yield


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous RGB uint8 copy of a BGR, BGRA or grayscale image."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def points5_from_keypoints(kps: np.ndarray) -> np.ndarray:
    """5 points (eyes, nose tip, estimated mouth corners) from BlazeFace's 6 keypoints."""
    left_eye, right_eye, nose, mouth = kps[0], kps[1], kps[2], kps[3]
    half = _MOUTH_HALF_WIDTH * (right_eye - left_eye)
    return np.stack([left_eye, right_eye, nose, mouth - half, mouth + half]).astype(np.float64)


@dataclass(frozen=True)
class MediaPipeDetectorOptions(DetectorOptions):
    model: str = option("full", help="BlazeFace model: full range (faces up to ~5 m) or short "
                        "range (within ~2 m)", choices=list(_MODELS))


@DETECTORS.register("mediapipe", options=MediaPipeDetectorOptions, available=_mediapipe_installed,
                    description="MediaPipe BlazeFace (optional package): fast, any pose, "
                    "scores 0-1")
class MediaPipeDetector:
    """BlazeFace via MediaPipe; ``model`` is ``"full"`` (default) or ``"short"`` range.

    ``upsample`` is accepted and ignored: BlazeFace resizes the whole image to its own input
    (128² short range, 192² full range), so the smallest face found is a fraction of the
    image rather than a pixel size. ``threshold`` is the minimum score (default 0.5);
    ``device`` is ignored (MediaPipe's Python graphs run on the CPU).
    """

    name = "mediapipe"
    dlib_box_style = False

    def __init__(self, options: MediaPipeDetectorOptions | None = None, device: str = "cpu") -> None:
        options = options or MediaPipeDetectorOptions()
        if options.model not in _MODELS:
            raise ConfigError(f"mediapipe detector model {options.model!r}: choose from full, short")
        load_mediapipe()
        from mediapipe.python.solutions import face_detection

        self.upsample = options.upsample  # unused, see the class docstring
        self.threshold = 0.5 if options.threshold is None else float(options.threshold)
        self.model = options.model
        self._detector = face_detection.FaceDetection(
            min_detection_confidence=self.threshold, model_selection=_MODELS[options.model]
        )

    def detect(
        self, images: Sequence[np.ndarray], upsample: int | None = None
    ) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        with quiet_protobuf():
            result = self._detector.process(to_rgb(image))
        out = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            box = (rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                   (rel.ymin + rel.height) * h)
            kps = np.array([(k.x * w, k.y * h) for k in det.location_data.relative_keypoints])
            pts = points5_from_keypoints(kps) if len(kps) >= 4 else None
            out.append(Detection(tuple(float(v) for v in box), float(det.score[0]), pts))
        return out

    def close(self) -> None:
        """Free the MediaPipe graph now rather than at garbage collection."""
        self._detector.close()

