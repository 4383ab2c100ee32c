"""Per-frame work of an extract, run in-process or in worker processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swapface.align.records import FrameRecord
from swapface.core.images import write_image
from swapface.core.runtime import configure_worker
from swapface.extract.config import ExtractConfig
from swapface.extract.faces import draw_aligned_debug, draw_debug
from swapface.faces import (
    Detection,
    FaceFileMeta,
    FaceFinder,
    IdentityEncoder,
    IdentityFilter,
    align_face,
    write_face_files,
)
from swapface.media.source import Frame


@dataclass
class ProcessorSetup:
    """Everything a worker needs; plain data so it crosses process boundaries."""

    cfg: ExtractConfig
    export_dir: Path
    source: str
    alignments: str
    track: bool
    identity_filter: IdentityFilter | None = None


@dataclass
class FrameResult:
    record: FrameRecord
    filtered: int = 0
    blurry: int = 0
    rotated: int = 0


@dataclass
class FrameProcessor:
    setup: ProcessorSetup
    finder: FaceFinder = field(init=False)
    encoder: IdentityEncoder | None = field(init=False, default=None)
    _last_index: int = field(init=False, default=-10)

    def __post_init__(self) -> None:
        cfg = self.setup.cfg
        self.finder = FaceFinder.create(cfg.finder_options(self.setup.track))
        flt = self.setup.identity_filter
        if cfg.identity or (flt is not None and flt.active):
            self.encoder = IdentityEncoder()

    def process(self, frames: list[Frame]) -> list[FrameResult]:
        # A chunk may follow any other chunk; tracking restarts at each chunk's first frame.
        self.finder.reset()
        batch = getattr(self.finder.detector, "batch_size", 1)
        if self.finder.track or batch <= 1:
            return [self.process_frame(f) for f in frames]
        results = []
        for start in range(0, len(frames), batch):
            group = frames[start:start + batch]
            found = self.finder.detect_many([f.image for f in group])
            results += [self.process_frame(f, d) for f, d in zip(group, found, strict=True)]
        return results

    def process_frame(self, frame: Frame, detections: list[Detection] | None = None) -> FrameResult:
        cfg, setup = self.setup.cfg, self.setup
        if frame.index != self._last_index + cfg.every_n:
            self.finder.reset()
        self._last_index = frame.index
        image = frame.image
        h, w = image.shape[:2]
        result = FrameResult(FrameRecord(frame.index, frame.name, frame.timestamp, w, h))
        found = self.finder.find(image, detections)
        stem = frame.face_stem or Path(frame.name).stem
        ext = ".jpg" if cfg.jpg else ".png"
        debug_dir = setup.export_dir / "debug"
        kept = []
        for i, face in enumerate(found):
            out = align_face(image, face, i, cfg.size, cfg.face_span, cfg.detector)
            rec = out.record
            if self.encoder is not None:
                rec.identity = self.encoder.encode(image, face.landmarks)
                flt = setup.identity_filter
                if flt is not None and flt.active and not flt.accepts(rec.identity):
                    result.filtered += 1
                    continue
            name = f"{stem}_{i}{ext}"
            if cfg.blur_threshold > 0 and (rec.blur or 0.0) < cfg.blur_threshold:
                name = f"blurry/{name}"
                result.blurry += 1
            rec.file = name
            result.rotated += face.rotation != 0
            meta = FaceFileMeta.from_record(rec, frame.name, frame.index, setup.source,
                                            setup.alignments)
            mask = out.mask if cfg.mask_type == "extended" else rec.masks[cfg.mask_type].for_face(
                rec.matrix, cfg.size)
            write_face_files(out.image, setup.export_dir, name, meta, cfg.mask_type, mask)
            if cfg.debug:
                write_image(debug_dir / f"face_aligned_{stem}_{i}.png", draw_aligned_debug(out.image, rec))
                write_image(debug_dir / f"face_mask_{stem}_{i}.png", mask)
            result.record.faces.append(rec)
            kept.append(face)
        if cfg.debug:
            boxes, points = draw_debug(image, kept)
            write_image(debug_dir / f"face_bbox_{stem}.jpg", boxes)
            write_image(debug_dir / f"face_landmarks_{stem}.jpg", points)
        return result


# ------------------------------------------------------------------ worker process side
_PROCESSOR: FrameProcessor | None = None


def init_worker(setup: ProcessorSetup) -> None:
    """Pool initializer: one thread per library, models loaded once per worker."""
    global _PROCESSOR
    configure_worker()
    _PROCESSOR = FrameProcessor(setup)
    configure_worker()  # again: a neural plugin may have loaded torch meanwhile


def process_chunk(frames: list[Frame]) -> list[FrameResult]:
    assert _PROCESSOR is not None, "init_worker was not called"
    return _PROCESSOR.process(frames)
