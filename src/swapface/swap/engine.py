"""The swap engine: one frame and its faces in, the frame with new faces out.

``FrameSwapper(model, options).swap(image, faces)`` does, per face: crop the model's input
straight from the frame (one warp), decode it with the target side's decoder, build the
mask in model space, match colour against the original crop, sharpen, and paste back
through the inverse warp. It reads no files, starts no threads, keeps no state between
frames (beyond counters) and gives the same output for the same input every time.

The three steps are public for drivers that overlap them: :meth:`FrameSwapper.prepare`
(crops, cheap; with ``occlusion="hands"`` also one MediaPipe hand pass per frame with
faces, ~30-80 ms on 2 cores; with ``mask_type="mesh"`` one face-mesh pass per face,
~5-20 ms), :meth:`FrameSwapper.infer` (one batched model call over many frames) and
:meth:`FrameSwapper.blend` (per frame, thread-safe). :meth:`FrameSwapper.swap_many` chains
them for a list of frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from swapface.align.landmarks import mouth_opening
from swapface.align.records import FaceRecord
from swapface.align.transform import transform_points
from swapface.core.errors import ConfigError
from swapface.faces.identity import IdentityEncoder, IdentityFilter, shared_encoder
from swapface.swap.blend import paste_face
from swapface.swap.color import COLOR_METHODS
from swapface.swap.exemplars import DETAILS, ExemplarDetail
from swapface.swap.geometry import crop, model_mask, model_matrix
from swapface.swap.masks import MASKS, keep_openings, needs_mesh, refine_mask, window_taper
from swapface.swap.model import InferenceModel
from swapface.swap.occlusion import OCCLUSIONS, face_occlusion
from swapface.swap.options import SwapOptions
from swapface.swap.sharpen import SHARPEN_METHODS


@dataclass
class Prepared:
    """One frame on its way through the engine."""

    image: np.ndarray
    faces: list[FaceRecord]  # the faces that will be swapped
    crops: list[np.ndarray] = field(default_factory=list)
    outputs: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)
    occlusion: np.ndarray | None = None  # frame pixels [0, 1] kept in front of the faces (hands)
    meshes: list[np.ndarray | None] = field(default_factory=list)  # one per face; None: no mesh mask


class FrameSwapper:
    """Swaps faces with ``model`` as ``options`` say; ``identity`` filters whom (``--filter``)."""

    def __init__(self, model: InferenceModel, options: SwapOptions | None = None, *,
                 identity: IdentityFilter | None = None, encoder: IdentityEncoder | None = None,
                 batch_size: int = 8, detail: ExemplarDetail | None = None) -> None:
        """``detail``: the ``options.detail`` plugin already built (its face bank loaded), for
        callers that make a swapper per frame (the preview); else it is built here."""
        self.model = model
        self.options = options = options or SwapOptions()
        if batch_size < 1:
            raise ConfigError("batch size must be at least 1")
        if options.side not in model.sides:
            raise ConfigError(f"the model has no decoder {options.side!r}")
        if options.mask_type == "predicted" and not model.has_mask:
            raise ConfigError("mask 'predicted' needs a model that predicts a mask "
                              "(train with --model-option learn_mask=true)")
        self.batch_size = batch_size
        self.coverage = model.coverage if options.coverage is None else float(options.coverage)
        self._mask_options = MASKS.options(options.mask_type, options.mask_options)  # fails now
        self._mesher = None
        if needs_mesh(options.mask_type):
            if not MASKS.is_available(options.mask_type):
                raise ConfigError(f"mask {options.mask_type!r} needs the optional mediapipe package")
            from swapface.faces.mesh import FaceMesher

            self._mesher = FaceMesher()
        self._color = COLOR_METHODS.create(options.color, options.color_options)
        self._sharpen = SHARPEN_METHODS.create(options.sharpen, options.sharpen_options)
        self._detail = detail if detail is not None else DETAILS.create(
            options.detail, options.detail_options, faces=options.detail_faces)
        self._taper = window_taper(model.output_size, options.blur_size)
        # Built once here, so convert, preview and live all keep hands in front alike.
        self._occluder = OCCLUSIONS.create(options.occlusion, options.occlusion_options)
        self.identity = identity if identity is not None and identity.active else None
        self._encoder = encoder
        self.rejected_by_identity = 0  # faces --filter/--nfilter kept from being swapped

    # ------------------------------------------------------------------ selection
    def _descriptor(self, image: np.ndarray, face: FaceRecord) -> np.ndarray:
        if face.identity is not None:
            return face.identity
        if self._encoder is None:
            self._encoder = shared_encoder()
        return self._encoder.encode(image, np.asarray(face.landmarks, np.float64))

    def select(self, image: np.ndarray, faces: Sequence[FaceRecord]) -> list[FaceRecord]:
        """The faces of a frame that ``options.select`` and the identity filter let through."""
        kept = list(faces)
        if self.identity is not None:
            passed = [f for f in kept if self.identity.accepts(self._descriptor(image, f))]
            self.rejected_by_identity += len(kept) - len(passed)
            kept = passed
        if self.options.select == "largest" and len(kept) > 1:
            kept = [max(kept, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))]
        return kept

    # ------------------------------------------------------------------ the three steps
    def prepare(self, image: np.ndarray, faces: Sequence[FaceRecord], select: bool = True) -> Prepared:
        """Choose the faces, crop each one into the model's input, find the occluders.

        Occluders (``options.occlusion``) are looked for here, on the caller's thread, once
        per frame and only when it has faces to swap.
        """
        chosen = self.select(image, faces) if select else list(faces)
        size = self.model.input_size
        crops = [crop(image, model_matrix(face, self.coverage, size), size) for face in chosen]
        occlusion = self._occluder(image) if self._occluder is not None and chosen else None
        meshes: list[np.ndarray | None] = (
            [self._mesher.mesh(image, face.landmarks) for face in chosen]
            if self._mesher is not None else [None] * len(chosen))
        return Prepared(image, chosen, crops, occlusion=occlusion, meshes=meshes)

    def infer(self, items: Sequence[Prepared]) -> None:
        """Run the model over every crop of ``items``, ``batch_size`` faces per call."""
        crops = [c for item in items for c in item.crops]
        faces: list[np.ndarray] = []
        masks: list[np.ndarray | None] = []
        for i in range(0, len(crops), self.batch_size):
            f, m = self.model.infer(crops[i:i + self.batch_size], self.options.side)
            faces.extend(f)
            masks.extend(m if m is not None else [None] * len(f))
        k = 0
        for item in items:
            n = len(item.crops)
            item.outputs = list(zip(faces[k:k + n], masks[k:k + n], strict=True))
            item.crops = []
            k += n

    def blend(self, item: Prepared) -> np.ndarray:
        """The frame with every inferred face masked, colour-matched, sharpened and pasted."""
        image, size = item.image, self.model.output_size
        for face, (new_face, predicted), mesh in zip(item.faces, item.outputs, item.meshes,
                                                     strict=True):
            m_out = model_matrix(face, self.coverage, size)
            old_face = crop(image, m_out, size)
            mask = self.raw_mask(face, predicted, mesh)
            new_face = self._color(new_face, old_face, mask)
            new_face = self._sharpen(new_face)
            mask = self.finish_mask(mask, face, mesh, m_out)
            if self._detail is not None:  # B's own detail, pasted at the frame's resolution
                new_face, mask, m_out = self._detail.apply(face, new_face, mask, m_out, self.coverage)
            if item.occlusion is not None:  # after feathering, so no swap bleeds onto the hand
                mask = mask * (1.0 - face_occlusion(item.occlusion, m_out, mask.shape[0]))
            image = paste_face(image, new_face, mask, m_out)
        return image

    def raw_mask(self, face: FaceRecord, predicted: np.ndarray | None,
                 mesh: np.ndarray | None = None) -> np.ndarray:
        """The blend mask of one face in model-output space, before feathering."""
        return model_mask(self.options.mask_type, face, self.coverage, self.model.output_size,
                          predicted, mesh, self._mask_options)

    def finish_mask(self, mask: np.ndarray, face: FaceRecord, mesh: np.ndarray | None,
                    m_out: np.ndarray) -> np.ndarray:
        """A raw mask made into the paste mask: eroded, feathered, tapered to the model's
        window, and with the openings the mask keeps (the source's mouth) cut out after."""
        opts = self.options
        mask = refine_mask(mask, opts.erosion, opts.blur_size, opts.mask_threshold) * self._taper
        if mesh is not None:
            mask = keep_openings(mask, transform_points(mesh, m_out), self._mask_options,
                                 mouth_opening(face.landmarks))
        return mask

    # ------------------------------------------------------------------ whole frames
    def swap_many(self, frames: Sequence[tuple[np.ndarray, Sequence[FaceRecord]]]) -> list[np.ndarray]:
        """Swap several frames, their faces batched through the model together."""
        items = [self.prepare(image, faces) for image, faces in frames]
        self.infer(items)
        return [self.blend(item) if item.outputs else item.image for item in items]

    def swap(self, image: np.ndarray, faces: Sequence[FaceRecord]) -> np.ndarray:
        """One frame with its faces swapped (a new array; without faces, ``image`` itself)."""
        return self.swap_many([(image, faces)])[0]
