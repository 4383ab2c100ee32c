"""Blend masks for convert, built in the aligned face space, and their refinement.

Every builder returns a float32 ``size``×``size`` mask in [0, 1] for the aligned face image
that will be pasted back (the swapped face). Coordinates follow cv2: pixel ``i`` is centred
on ``i``; a *window* ``(x0, y0, x1, y1)`` is in continuous pixels, pixel ``i`` covering
``[i, i+1)`` (the train augmenter's convention), so a window of the whole face is
``(0, 0, size, size)``.

The window is the square of the aligned face that the model's output covers (its
``coverage`` crop, :func:`centre_window`); outside it the "swapped" face is just the original
one. Kinds (registry :data:`MASKS`):

``rect``
    The window, i.e. the whole model output (the whole crop when no window is given).
``facehull``
    Convex hull of all 68 landmarks, anti-aliased, clipped only by the crop.
``facehullandrect``
    The seed's behaviour: ``facehull × rect``. The seed multiplied a frame-space hull by the
    warped face square; here the crop already clips the hull, so this differs from
    ``facehull`` only where the hull leaves the window (turned heads, small coverage).
``components`` / ``extended``
    The stored landmark-hull masks (:class:`~swapface.align.masks.StoredMask`) warped into
    this face when the face has them and its matrix is given, else drawn from the landmarks
    with :func:`~swapface.align.masks.draw_mask` — the same shapes either way.
``mesh``
    MediaPipe's refined 478-point mesh (:class:`~swapface.faces.mesh.FaceMesher`, run on the
    frame by the engine): the face outline up to the forehead, so the mask's top edge lies
    above the brows, not across them. ``mouth="source"`` cuts the mouth opening (the
    lips' inner edge) out of it (:func:`keep_openings`, after feathering): teeth and tongue
    stay the frame's own, and the mouth opens exactly as far as the source's, which a
    briefly trained model draws soft or half-shut. ``eyes="source"`` does the same for the
    eyeballs inside the lid margins (gaze, irises) — they carry identity, though.
``predicted``
    The model's own mask (model-size, float [0, 1] or uint8 [0, 255]) resized into the window,
    zero outside it.

:func:`face_mask` builds one from face-space inputs; :func:`build` from a
:class:`~swapface.align.records.FaceRecord` at any face size. :func:`refine_mask` erodes or
dilates, feathers and thresholds the result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from swapface.align.masks import StoredMask, draw_mask
from swapface.align.records import FaceRecord
from swapface.align.transform import rescale, transform_points
from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.registry import Registry
from swapface.faces.mesh import eye_openings, face_oval, inner_lips, mesh_available

Window = tuple[float, float, float, float]  # x0, y0, x1, y1 in continuous face pixels

MaskBuilder = Callable[["MaskInputs"], np.ndarray]
MASKS: Registry[MaskBuilder] = Registry("mask")


@dataclass(frozen=True)
class MaskInputs:
    """What a mask builder may use; all in the aligned face space of ``size`` px."""

    landmarks: np.ndarray  # (68, 2) face pixels
    size: int
    window: Window
    stored: Mapping[str, StoredMask] | None = None
    face_matrix: np.ndarray | None = None  # 2×3 frame → this face (for stored masks)
    predicted: np.ndarray | None = None  # the model's mask covering ``window``
    mesh: np.ndarray | None = None  # (478, 2) refined face mesh, face pixels (``mesh`` mask)


def centre_window(size: int, fraction: float = 1.0) -> Window:
    """The centred square covering ``fraction`` of a ``size`` px face (the model's coverage crop)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"window fraction must be in (0, 1], got {fraction}")
    half = size * fraction / 2.0
    return (size / 2.0 - half, size / 2.0 - half, size / 2.0 + half, size / 2.0 + half)


def window_matrix(window: Window, model_size: int) -> np.ndarray:
    """2×3 affine mapping model-output pixels onto the face pixels of ``window`` (cv2 centres)."""
    x0, y0, x1, y1 = window
    sx, sy = (x1 - x0) / model_size, (y1 - y0) / model_size
    # Model pixel u covers [u, u+1) → face [x0 + u·sx, x0 + (u+1)·sx); centres map to centres.
    return np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])


def _coverage_1d(size: int, lo: float, hi: float) -> np.ndarray:
    i = np.arange(size, dtype=np.float64)
    return np.clip(np.minimum(i + 1.0, hi) - np.maximum(i, lo), 0.0, 1.0)


def _window_mask(size: int, window: Window) -> np.ndarray:
    """Exact fractional pixel coverage of the window (1 inside, partial on a sub-pixel edge)."""
    x0, y0, x1, y1 = window
    return np.outer(_coverage_1d(size, y0, y1), _coverage_1d(size, x0, x1)).astype(np.float32)


def _rect(inputs: MaskInputs) -> np.ndarray:
    return _window_mask(inputs.size, inputs.window)


def _facehull(inputs: MaskInputs) -> np.ndarray:
    mask = np.zeros((inputs.size, inputs.size), dtype=np.uint8)
    points = np.round(np.asarray(inputs.landmarks, dtype=np.float64) * 16).astype(np.int32)
    cv2.fillConvexPoly(mask, cv2.convexHull(points), 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / np.float32(255)


def _facehull_and_rect(inputs: MaskInputs) -> np.ndarray:
    return _facehull(inputs) * _rect(inputs)


def _landmark_mask(kind: str, inputs: MaskInputs) -> np.ndarray:
    stored = inputs.stored.get(kind) if inputs.stored else None
    if stored is not None and inputs.face_matrix is not None:
        mask = stored.for_face(inputs.face_matrix, inputs.size)
    else:
        mask = draw_mask(inputs.landmarks, (inputs.size, inputs.size), kind)
    return mask.astype(np.float32) / np.float32(255)


def _components(inputs: MaskInputs) -> np.ndarray:
    return _landmark_mask("components", inputs)


def _extended(inputs: MaskInputs) -> np.ndarray:
    return _landmark_mask("extended", inputs)


def _predicted(inputs: MaskInputs) -> np.ndarray:
    if inputs.predicted is None:
        raise ConfigError("mask 'predicted' needs a model that predicts a mask")
    pred = np.asarray(inputs.predicted)
    if pred.ndim == 3:
        pred = pred[..., 0]
    if pred.ndim != 2 or pred.shape[0] != pred.shape[1]:
        raise ValueError(f"predicted mask must be square (m, m) or (m, m, 1), got {pred.shape}")
    pred = pred.astype(np.float32) / np.float32(255) if pred.dtype == np.uint8 else pred
    pred = np.clip(pred.astype(np.float32, copy=False), 0.0, 1.0)
    matrix = window_matrix(inputs.window, pred.shape[0])
    return cv2.warpAffine(pred, matrix, (inputs.size, inputs.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


@dataclass(frozen=True)
class MeshMaskOptions:
    mouth: str = option("swap", help="swap: the mouth is the model's; source: the mouth opening "
                        "(teeth, tongue) stays the frame's; wide: only when the frame's mouth "
                        "opens wider than wide_from", choices=["swap", "source", "wide"])
    # In mouth_opening's units (inner-lip gap ÷ outer-eye-corner distance): woman_b's faces
    # open to 0.23 (95th percentile) and 0.25 at most, woman_a's to 0.36.
    wide_from: float = option(0.25, help="mouth=wide: the frame's mouth starts to show through "
                              "at this opening (inner-lip gap ÷ eye-corner distance)")
    wide_to: float = option(0.3, help="mouth=wide: ... and is wholly the frame's from this opening")
    eyes: str = option("swap", help="swap: the eyes are the model's; source: the eyeballs inside "
                       "the lids (gaze, irises) stay the frame's", choices=["swap", "source"])

    @staticmethod
    def wide_for(b_openings: np.ndarray) -> dict[str, float | str]:
        """``mouth=wide`` options for a B whose faces open the mouth as far as ``b_openings``:
        the frame's mouth fades in from B's 95th percentile to a little past B's widest, where
        the model has no example of B to learn that mouth from."""
        openings = np.asarray(b_openings, np.float64)
        if openings.size == 0:
            return {"mouth": "source"}
        start = float(np.percentile(openings, 95))
        return {"mouth": "wide", "wide_from": round(start, 4),
                "wide_to": round(max(float(openings.max()), start) + 0.03, 4)}

    def validate(self) -> None:
        if not 0.0 <= self.wide_from < self.wide_to:
            raise ConfigError(f"mask mesh: need 0 <= wide_from < wide_to, got "
                              f"{self.wide_from}, {self.wide_to}")


def _polygon(mask: np.ndarray, points: np.ndarray, value: int) -> None:
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], value, lineType=cv2.LINE_AA, shift=4)


@MASKS.register("mesh", options=MeshMaskOptions, available=mesh_available, needs_mesh=True,
                description="MediaPipe's refined face mesh: outline to the forehead, "
                            "optionally the source's own mouth opening and eyes")
def _mesh_mask(options: MeshMaskOptions) -> MaskBuilder:
    def build_mask(inputs: MaskInputs) -> np.ndarray:
        if inputs.mesh is None:
            raise ConfigError("mask 'mesh' needs the face mesh (MediaPipe), which was not run")
        mask = np.zeros((inputs.size, inputs.size), dtype=np.uint8)
        _polygon(mask, np.asarray(inputs.mesh, np.float64)[list(face_oval())], 255)
        return mask.astype(np.float32) / np.float32(255)

    return build_mask


def keep_openings(mask: np.ndarray, mesh: np.ndarray, options: MeshMaskOptions,
                  opening: float = 0.0) -> np.ndarray:
    """``mask`` (already feathered) with the openings ``options`` keep cut out of it.

    ``mesh`` is in the mask's pixels; ``opening`` is the frame face's :func:`mouth_opening`
    (for ``mouth="wide"``). Cut after feathering, with a one-pixel soft edge: the feather
    would otherwise reach into an eye (a few pixels high) and leave it half swapped.
    """
    keep = {"swap": 0.0, "source": 1.0}.get(options.mouth)
    if keep is None:  # wide: fade in with the opening, so no frame pops
        keep = float(np.clip((opening - options.wide_from) / (options.wide_to - options.wide_from),
                             0.0, 1.0))
    holes = np.zeros(mask.shape[:2], dtype=np.float32)
    loops = [(inner_lips(), keep)] + [(eye, 1.0 if options.eyes == "source" else 0.0)
                                      for eye in eye_openings()]
    for loop, strength in loops:
        if strength > 0.0:
            hole = np.zeros(mask.shape[:2], dtype=np.uint8)
            _polygon(hole, np.asarray(mesh, np.float64)[list(loop)], 255)
            hard = hole.astype(np.float32) / np.float32(255)
            soft = np.maximum(cv2.GaussianBlur(hard, (3, 3), 0.6), hard)
            holes = np.maximum(holes, np.float32(strength) * soft)
    if not holes.any():
        return mask
    return mask * (np.float32(1) - holes)


MASKS.register_value("rect", _rect, description="the whole model output square")
MASKS.register_value("facehull", _facehull, description="convex hull of the 68 landmarks")
MASKS.register_value("facehullandrect", _facehull_and_rect,
                     description="the seed's: landmark hull clipped by the model's square")
MASKS.register_value("components", _components,
                     description="landmark hull of jaw, cheeks, nose, eyes and brows")
MASKS.register_value("extended", _extended,
                     description="components with the brows raised to take in the forehead (default)")
MASKS.register_value("predicted", _predicted,
                     description="the model's own learned mask (learn_mask=true)")


def face_mask(
    kind: str,
    landmarks: np.ndarray,
    size: int,
    *,
    window: Window | None = None,
    stored: Mapping[str, StoredMask] | None = None,
    face_matrix: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    mesh: np.ndarray | None = None,
    options: Mapping[str, object] | object | None = None,
) -> np.ndarray:
    """float32 (size, size) mask in [0, 1] of ``kind`` for an aligned face of ``size`` px.

    ``landmarks`` are the 68 points in that face; ``window`` the model output's square
    (default: the whole crop); ``stored`` + ``face_matrix`` (frame → this face) let
    ``components``/``extended`` use the extract-time masks; ``predicted`` is the model's mask;
    ``mesh`` the refined face mesh in that face (``mesh``); ``options`` the plugin's options.
    """
    inputs = MaskInputs(
        landmarks=np.asarray(landmarks, dtype=np.float64),
        size=int(size),
        window=(0.0, 0.0, float(size), float(size)) if window is None else window,
        stored=stored,
        face_matrix=face_matrix,
        predicted=predicted,
        mesh=None if mesh is None else np.asarray(mesh, dtype=np.float64),
    )
    return MASKS.create(kind, options)(inputs)


def build(
    kind: str,
    face: FaceRecord,
    size: int | None = None,
    *,
    window: Window | None = None,
    predicted: np.ndarray | None = None,
    mesh: np.ndarray | None = None,
    options: Mapping[str, object] | object | None = None,
) -> np.ndarray:
    """:func:`face_mask` for a stored face, aligned as extracted but at ``size`` px (default its
    own); ``mesh`` is in frame pixels, like the face's landmarks."""
    size = face.size if size is None else int(size)
    matrix = rescale(face.matrix, size / face.size)
    return face_mask(kind, transform_points(face.landmarks, matrix), size, window=window,
                     stored=face.masks, face_matrix=matrix, predicted=predicted,
                     mesh=None if mesh is None else transform_points(mesh, matrix),
                     options=options)


def needs_mesh(kind: str) -> bool:
    """Whether mask ``kind`` is drawn from the face mesh (the engine runs it per face)."""
    return bool(MASKS.get(kind).extra.get("needs_mesh", False))


def refine_mask(mask: np.ndarray, erosion: int = 0, blur: int = 0, threshold: float = 0.0) -> np.ndarray:
    """Erode (or, negative, dilate) by ``erosion`` px, feather by ``blur`` px, zero below ``threshold``.

    Sizes are pixels of the face the mask is for. Outside the crop counts as background, so
    a ``rect`` mask erodes and feathers from the crop edges too (no seam at the crop border).
    Feathering spreads the edge ``blur`` px to each side, so the support grows by up to
    ``blur`` px; combine with ``erosion`` to keep it inside the original edge.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    out = np.asarray(mask, dtype=np.float32)
    erosion, blur = int(erosion), int(blur)
    if erosion:
        radius = abs(erosion)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        op = cv2.erode if erosion > 0 else cv2.dilate
        out = op(out, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if blur > 0:
        k = 2 * blur + 1
        out = cv2.GaussianBlur(out, (k, k), sigmaX=blur / 3.0, borderType=cv2.BORDER_CONSTANT)
    if threshold > 0.0:
        out = np.where(out < threshold, np.float32(0), out)
    return np.clip(out, 0.0, 1.0)


@functools.cache
def window_taper(size: int, blur: int) -> np.ndarray:
    """1 inside the model's window, falling smoothly to 0 at its border (read-only array).

    The model only sees (and produces) the coverage window; a mask that reaches past it
    (``extended`` at the forehead) would otherwise end in a hard straight seam there.
    A wider fall (1/10 or 1/8 of the window instead of 1/16) hid the man pair's window edge on
    the cheek but let A's brows and jaw show: closer to B 97.5 → 86 / 52 %, woman 97 → 92 / 78 %.
    """
    width = max(2, blur, size // 16)
    taper = refine_mask(np.ones((size, size), np.float32), erosion=width, blur=width)
    taper.flags.writeable = False  # shared between callers through the cache
    return taper
