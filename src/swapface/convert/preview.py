"""Stills people judge a swap by: source | swapped side by side, and the one-frame preview.

``swapface convert INPUT -m MODEL --preview-frame N -o still.png`` swaps frame N alone —
seeking to it, taking its faces from the alignments store when there is one (smoothed with
the frames around it, as a whole convert would) or finding them on the fly — so a user
tuning mask and colour settings sees the result in seconds, not after a whole video.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapface.align.records import FaceRecord
from swapface.align.store import AlignmentsStore
from swapface.convert.config import ConvertConfig
from swapface.convert.output import synthetic_label
from swapface.convert.pipeline import identity_filter
from swapface.core.errors import ConfigError, InputError
from swapface.core.images import write_image
from swapface.media.source import FrameSource, open_source
from swapface.swap import Centred, FrameSwapper, SwapOptions, load_inference
from swapface.swap.exemplars import DETAILS, ExemplarDetail
from swapface.swap.geometry import model_matrix

STILL_SUFFIXES = (".png", ".jpg", ".jpeg")


def side_by_side_image(left: np.ndarray, right: np.ndarray, height: int = 360) -> np.ndarray:
    """Both images scaled to ``height`` with a white gap between them."""
    tiles = [cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height),
                        interpolation=cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_CUBIC)
             for img in (left, right)]
    gap = np.full((height, 8, 3), 255, np.uint8)
    return np.hstack([tiles[0], gap, tiles[1]])


def write_still(out: Path, image: np.ndarray, content: str) -> Path:
    """A still that is half swapped carries the synthetic-media label like every output."""
    write_image(out, image, synthetic_label(content=content))
    return out


def side_by_side(source: Path, swapped: Path, out: Path, index: int, height: int = 360) -> Path:
    """Write frame ``index`` of ``source`` and of ``swapped`` next to each other as a PNG."""
    left, right = open_source(source).read(index), open_source(swapped).read(index)
    if left is None or right is None:
        raise ValueError(f"frame {index} is missing from {source if left is None else swapped}")
    return write_still(out, side_by_side_image(left.image, right.image, height),
                       f"left: frame {index} of {source.name}; right: the same frame swapped")


@dataclass
class PreviewSummary:
    input: str
    output: str
    frame: int
    faces: int
    faces_from: str  # "store" or "detected"
    seconds: float

    def lines(self) -> list[str]:
        return [f"preview: frame {self.frame} of {self.input} → {self.output}",
                f"faces:   {self.faces} swapped ({self.faces_from})",
                f"time:    {self.seconds:.2f} s"]


def _store_faces(cfg: ConvertConfig, source: FrameSource, path: Path, index: int,
                 width: int, height: int) -> list[FaceRecord] | None:
    """Frame ``index``'s faces from the store, smoothed with its neighbours; None if absent."""
    with AlignmentsStore(path, readonly=True) as store:
        smooth = cfg.smooth if cfg.smooth is not None else source.sequential
        if not smooth:
            record = store.frame(index, with_masks=True)
            records = [] if record is None else [record]
        else:
            smoother = Centred(cfg.smooth_window)
            reach = smoother.delay + cfg.smooth_window  # enough on each side for the same fit
            records = []
            for frame in store.frames(True, index - reach, index + reach + 1):
                records += smoother.push(frame)
            records += smoother.flush()
    record = next((r for r in records if r.index == index), None)
    if record is None:
        return None
    if record.width and (record.width, record.height) != (width, height):
        raise InputError(f"{path} was made from another video (frame {index} is "
                         f"{record.width}×{record.height}, the input {width}×{height})")
    return record.faces


def _found_faces(image: np.ndarray) -> list[FaceRecord]:
    from swapface.faces import FaceFinder

    return FaceFinder.create().records(image)  # extract's defaults: 256 px, default face span


def run_preview(cfg: ConvertConfig) -> PreviewSummary:
    """Swap frame ``cfg.preview_frame`` alone and write ``cfg.output`` as source | swapped."""
    began = time.perf_counter()
    if cfg.output.suffix.lower() not in STILL_SUFFIXES:
        raise ConfigError(f"--preview-frame writes a still: the output must end in "
                          f"{', '.join(STILL_SUFFIXES)}, not {cfg.output.name!r}")
    if cfg.output.exists() and not cfg.overwrite:
        raise ConfigError(f"output exists: {cfg.output} (pass --overwrite to replace it)")
    images = FramePreviewer(cfg.model_dir, cfg.cpu, cfg.swap.coverage, cfg.engine,
                            cfg.swap.side).render(cfg)
    index = cfg.preview_frame
    write_still(cfg.output, side_by_side_image(images.source, images.swapped,
                                               max(images.source.shape[0], 360)),
                f"left: frame {index} of {cfg.input.name}; right: the same frame swapped")
    return PreviewSummary(str(cfg.input), str(cfg.output), int(index or 0), images.faces,
                          images.faces_from, time.perf_counter() - began)


@dataclass
class PreviewImages:
    source: np.ndarray
    swapped: np.ndarray
    mask: np.ndarray  # the swapped frame with the blend mask tinted over it
    faces: int
    faces_from: str
    seconds: float


class FramePreviewer:
    """Swap single frames again and again with one loaded model (``--preview-frame`` and the
    web UI's preview).

    The model loads once (and the identity filter of the last references used is kept);
    each :meth:`render` reads one frame (seeking), takes its faces from the store (smoothed
    as convert does) or finds them, and swaps with ``cfg.swap``.
    """

    def __init__(self, model_dir: Path, cpu: bool = False, coverage: float | None = None,
                 engine: str = "auto", side: str = "b") -> None:
        self.model_dir = model_dir
        # faces=1: auto runs torch, a still swaps too few faces to pay for an ONNX export
        self.model = load_inference(model_dir, engine, cpu, coverage, side=side, faces=1)
        self._identity: tuple[tuple[object, ...], object] | None = None
        self._detail: tuple[str, ExemplarDetail | None] | None = None  # (options, plugin)

    def _detail_plugin(self, options: SwapOptions) -> ExemplarDetail | None:
        key = repr((options.detail, sorted(options.detail_options.items()), options.detail_faces))
        if self._detail is None or self._detail[0] != key:  # B's face bank loaded once
            self._detail = (key, DETAILS.create(options.detail, options.detail_options,
                                                faces=options.detail_faces))
        return self._detail[1]

    def _identity_filter(self, cfg: ConvertConfig):  # -> IdentityFilter | None
        key = (tuple(cfg.swap.filter), tuple(cfg.swap.nfilter), cfg.swap.ref_threshold)
        if self._identity is None or self._identity[0] != key:  # references encoded once
            self._identity = (key, identity_filter(cfg))
        return self._identity[1]

    def render(self, cfg: ConvertConfig) -> PreviewImages:
        """Frame ``cfg.preview_frame`` of ``cfg.input``: source, swapped and mask overlay."""
        began = time.perf_counter()
        index, options = cfg.preview_frame, cfg.swap
        assert index is not None
        source = open_source(cfg.input)
        frame = source.read(index)
        if frame is None:
            raise InputError(f"{cfg.input} has no frame {index}"
                             + (f" (it has {source.count})" if source.count else ""))
        h, w = frame.image.shape[:2]
        store = cfg.alignments if cfg.alignments is not None else source.default_store()
        faces = _store_faces(cfg, source, store, index, w, h) if store.is_file() else None
        faces_from = "store"
        if faces is None:
            faces, faces_from = _found_faces(frame.image), "detected"
        swapper = FrameSwapper(self.model, options, identity=self._identity_filter(cfg),
                               batch_size=cfg.batch_size, detail=self._detail_plugin(options))
        item = swapper.prepare(frame.image, faces)
        swapper.infer([item])
        swapped = swapper.blend(item) if item.outputs else frame.image
        tinted = swapped.astype(np.float32)
        size = self.model.output_size
        for face, (_, predicted), mesh in zip(item.faces, item.outputs, item.meshes, strict=True):
            m_out = model_matrix(face, swapper.coverage, size)
            mask = swapper.finish_mask(swapper.raw_mask(face, predicted, mesh), face, mesh, m_out)
            full = cv2.warpAffine(mask.astype(np.float32), m_out, (w, h), flags=cv2.WARP_INVERSE_MAP
                                  | cv2.INTER_LINEAR)
            tint = np.array([60, 60, 255], np.float32)  # BGR red
            tinted = tinted * (1 - 0.5 * full[..., None]) + tint * 0.5 * full[..., None]
        return PreviewImages(frame.image, swapped, np.clip(tinted, 0, 255).astype(np.uint8),
                             len(item.faces), faces_from, time.perf_counter() - began)
