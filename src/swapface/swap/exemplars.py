"""B's own fine detail on the face the model draws: its closest real faces, warped onto the frame.

A decoder trained for minutes gets B's shape, tone, pose and expression roughly right but
draws them soft: eyes without lashes or irises, lips without lines, no skin grain. Its
64 px output, pasted into a frame where the face spans 200 px, cannot hold that detail
anyway. B's extracted faces hold exactly that detail, at full resolution. So, per face:

1. the ``count`` faces of B whose aligned landmarks are closest to this face's (pose and
   expression; eyes and mouth weigh double) are chosen, weighted by closeness;
2. each is cut to the model's coverage window at the *paste size* (about one pixel per
   frame pixel, up to ``max_size``) and warped by a thin-plate spline that moves its 68
   landmarks ``warp`` (¾) of the way onto the frame face's
   (:func:`swapface.align.warp_landmarks.landmark_field`, the training warp), so its eyes,
   lids and lips sit about where the model drew B's while B keeps most of its proportions;
3. only the band the model cannot draw is kept — the luminance minus its Gaussian blur of
   ``sigma`` model-output pixels — averaged over the chosen faces, and added to the model's
   face upscaled to the paste size. Shape, tone and expression stay the model's (and the
   colour matching's); the detail is B's own, so it adds B's identity, never A's.

Holding a blend of a few neighbours, rather than the single nearest, makes the detail
change smoothly as the face moves: a new nearest neighbour fades in instead of popping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapface.align.landmarks import LEFT_BROW, LEFT_EYE, MOUTH, RIGHT_BROW, RIGHT_EYE
from swapface.align.records import FaceRecord
from swapface.align.transform import transform_points
from swapface.core.config import option
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import ImageReadError, is_image_path, read_image
from swapface.core.registry import NoOptions, Registry
from swapface.faces.meta import FaceFileMeta
from swapface.swap.geometry import model_matrix
from swapface.swap.masks import centre_window, window_matrix

log = logging.getLogger(__name__)

_WEIGHTS = np.ones(68)
_WEIGHTS[RIGHT_EYE] = _WEIGHTS[LEFT_EYE] = _WEIGHTS[MOUTH] = 2.0  # expression lives there


@dataclass(frozen=True)
class ExemplarOptions:
    count: int = option(4, help="closest faces of B blended for each face")
    amount: float = option(1.0, help="strength of B's detail (1 = as in B's faces)")
    # Measured on woman (quality table, 5 CPU min): σ 1 → sharpness 0.18, 2 → 0.27, 3.5 → 0.31,
    # 6 → 0.32 while identity fell to 85 % (B's mid frequencies of other expressions creep in).
    sigma: float = option(3.0, help="detail band: finer than a Gaussian of this many model-output "
                          "pixels (what the model draws too soft)")
    # The frame's landmarks carry A's proportions too (eye spacing, nose and mouth shape):
    # moved all the way, B's detail takes A's shape and dlib judged fewer faces closer to B
    # (man, 5 CPU min: 88 % at 1.0, 99 % at 0.75, 100 % at 0.5 with doubled edges showing).
    warp: float = option(0.75, help="how far each neighbour's landmarks are moved onto the frame "
                         "face's (1: all the way; less keeps more of B's own proportions)")
    # Measured (5 CPU min): 2 brought woman's expression error to 0.045 but fewer faces read as
    # B (woman 98 → 95 %, man 99 → 95 %), so B's coarser feature structure stays opt-in.
    features: float = option(1.0, help="in the eyes, brows and mouth the detail reaches this many "
                             "times sigma (coarser structure of B's features; 1 = as elsewhere)")
    max_size: int = option(256, help="largest paste size in pixels (the face is pasted at about one "
                           "pixel per frame pixel, up to this)")
    max_faces: int = option(800, help="faces of B kept in memory (evenly spaced when more)")

    def validate(self) -> None:
        if not 1 <= self.count <= 16:
            raise ConfigError(f"detail count must be 1-16, got {self.count}")
        if not 0.0 <= self.amount <= 2.0:
            raise ConfigError(f"detail amount must be in [0, 2], got {self.amount}")
        if not 0.3 <= self.sigma <= 8.0:
            raise ConfigError(f"detail sigma must be in [0.3, 8] model pixels, got {self.sigma}")
        if not 0.0 <= self.warp <= 1.0:
            raise ConfigError(f"detail warp must be in [0, 1], got {self.warp}")
        if not 1.0 <= self.features <= 4.0:
            raise ConfigError(f"detail features must be in [1, 4], got {self.features}")
        if not 64 <= self.max_size <= 1024:
            raise ConfigError(f"detail max_size must be 64-1024 px, got {self.max_size}")
        if self.max_faces < 1:
            raise ConfigError(f"detail max_faces must be at least 1, got {self.max_faces}")


@dataclass
class ExemplarBank:
    """Grey aligned faces of one identity with their landmarks (normalised to the face size)."""

    faces: list[np.ndarray]  # uint8 grey, each its own size
    landmarks: np.ndarray  # [N, 68, 2] aligned landmarks / face size

    @classmethod
    def load(cls, folder: Path, limit: int) -> ExemplarBank:
        if not Path(folder).is_dir():
            raise InputError(f"detail faces: folder not found: {folder}")
        paths = sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_path(p))
        if len(paths) > limit:  # evenly spaced before any file is read (metadata is at the end)
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
        metas = [(p, m) for p, m in ((p, FaceFileMeta.read(p)) for p in paths) if m is not None]
        faces, landmarks = [], []
        for path, meta in metas:
            try:
                image = read_image(path)
            except ImageReadError:
                continue
            if image.shape[0] != image.shape[1]:
                continue
            faces.append(cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY))
            landmarks.append(meta.aligned_landmarks(image.shape[0]) / image.shape[0])
        if not faces:
            raise InputError(f"detail faces: {folder} has no extracted face files "
                             "(a face folder written by swapface extract)")
        return cls(faces, np.stack(landmarks))

    def nearest(self, landmarks: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the ``count`` faces closest to normalised aligned ``landmarks`` and their
        blend weights (the nearest weighs most; weights fall with the squared distance)."""
        d = np.sqrt(((self.landmarks - landmarks) ** 2).sum(-1) @ _WEIGHTS / _WEIGHTS.sum())
        k = min(count, len(d))
        order = np.argpartition(d, k - 1)[:k]
        order = order[np.argsort(d[order])]
        scale = max(float(d[order[0]]), 1e-3)
        weights = np.exp(-0.5 * ((d[order] ** 2 - d[order[0]] ** 2) / scale**2))
        return order, weights / weights.sum()


def _feature_weight(landmarks: np.ndarray, size: int) -> np.ndarray:
    """float32 ``size²``: 1 over the eyes, brows and mouth (their hulls grown by a fifth of
    the eye distance), fading out over as much again."""
    iod = float(np.linalg.norm(landmarks[RIGHT_EYE].mean(0) - landmarks[LEFT_EYE].mean(0))) or 1.0
    mask = np.zeros((size, size), np.uint8)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, MOUTH):
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks[part]).astype(np.int32)), 255)
    grow = max(1, round(0.2 * iod))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.1 * iod)


class ExemplarDetail:
    """Adds B's fine detail to a model face, pasting it at about the frame's resolution."""

    def __init__(self, bank: ExemplarBank, options: ExemplarOptions | None = None) -> None:
        self.options = options = options or ExemplarOptions()
        options.validate()
        self.bank = bank

    def paste_size(self, m_out: np.ndarray, size: int) -> int:
        """About one pixel per frame pixel over the coverage window, at least ``size``."""
        frame_px = size / float(np.sqrt(abs(np.linalg.det(np.asarray(m_out)[:, :2]))))
        return int(np.clip(round(frame_px / 8) * 8, size, max(size, self.options.max_size)))

    def detail(self, face: FaceRecord, coverage: float, size: int, model_size: int) -> np.ndarray:
        """float32 ``size²`` luminance detail of B for ``face`` in the model-output window
        at ``size`` px (``model_size``: what the model draws, which sets the band)."""
        import torch

        from swapface.align.warp_landmarks import landmark_field

        frame_lm = np.asarray(face.landmarks, np.float64)
        aligned = transform_points(frame_lm, face.matrix) / face.size
        chosen, weights = self.bank.nearest(aligned, self.options.count)
        dst = transform_points(frame_lm, model_matrix(face, coverage, size))
        crops, srcs = [], []
        for index in chosen:
            image = self.bank.faces[index]
            n = image.shape[0]
            to_window = cv2.invertAffineTransform(window_matrix(centre_window(n, coverage), size))
            crops.append(cv2.warpAffine(image, to_window, (size, size), flags=cv2.INTER_CUBIC,
                                        borderMode=cv2.BORDER_REPLICATE).astype(np.float32))
            srcs.append(transform_points(self.bank.landmarks[index] * n, to_window))
        # landmark_field works in pixel-edge coordinates (a pixel's centre at i + 0.5)
        src = np.stack(srcs)
        target = src + self.options.warp * (dst[None] - src)
        field = landmark_field(torch.from_numpy(src + 0.5).float(),
                               torch.from_numpy(target + 0.5).float(), size).numpy() - 0.5
        sigma = self.options.sigma * size / model_size
        wide = self.options.features * sigma
        mean = np.zeros((size, size), np.float32)
        for crop, mapping, weight in zip(crops, field, weights, strict=True):
            mean += np.float32(weight) * cv2.remap(crop, mapping[0], mapping[1], cv2.INTER_LINEAR,
                                                   borderMode=cv2.BORDER_REPLICATE)
        # the band is linear: the blend's band is the band of the blended neighbours
        fine = cv2.GaussianBlur(mean, (0, 0), sigma)
        out = mean - fine
        if wide > sigma:  # eyes, brows and mouth: B's detail down to coarser structure
            where = _feature_weight(target.mean(0), size)
            out += where * (fine - cv2.GaussianBlur(mean, (0, 0), wide))
        return out * np.float32(self.options.amount)

    def apply(self, face: FaceRecord, new_face: np.ndarray, mask: np.ndarray, m_out: np.ndarray,
              coverage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face, mask, frame → face matrix) at the paste size with B's detail added; the model
        face is upscaled bicubically, the mask bilinearly."""
        size = new_face.shape[0]
        paste = self.paste_size(m_out, size)
        if paste != size:
            new_face = cv2.resize(new_face, (paste, paste), interpolation=cv2.INTER_CUBIC)
            mask = cv2.resize(mask, (paste, paste), interpolation=cv2.INTER_LINEAR)
            m_out = model_matrix(face, coverage, paste)
        detail = self.detail(face, coverage, paste, size)
        return new_face.astype(np.float32) + detail[..., None], mask, m_out


DETAILS: Registry[ExemplarDetail | None] = Registry("detail")


@DETAILS.register("none", description="the model's face as it is drawn (default)")
def _none(options: NoOptions, faces: Path | None = None) -> None:
    return None


@DETAILS.register("exemplars", options=ExemplarOptions,
                  description="B's own fine detail from its closest faces (--detail-faces), "
                  "warped onto each frame's landmarks; the face is pasted at the frame's resolution")
def _exemplars(options: ExemplarOptions, faces: Path | None = None) -> ExemplarDetail:
    if faces is None:
        raise ConfigError("detail 'exemplars' needs --detail-faces: B's face folder")
    options.validate()
    return ExemplarDetail(ExemplarBank.load(faces, options.max_faces), options)
