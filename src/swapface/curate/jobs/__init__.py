"""``swapface alignments`` curate jobs: keep a store and its face folder in step.

Each job is a plain function returning a small summary dataclass; the CLI only prints it.
Every job that changes an existing store first writes a timestamped backup made with
SQLite's backup API (so content still in the WAL is included) and then makes its whole
change in one transaction.
"""

from swapface.align.store import backup_store
from swapface.curate.jobs.clean import RemoveFacesSummary, RenameSummary, remove_faces, rename_faces
from swapface.curate.jobs.common import MULTI_FACES_DIR, NO_FACES_DIR, native_size
from swapface.curate.jobs.draw import DrawSummary, draw_alignments
from swapface.curate.jobs.faces import ExtractFacesSummary, extract_faces
from swapface.curate.jobs.from_faces import FromFacesSummary, from_faces
from swapface.curate.jobs.merge import MergeSummary, merge_stores
from swapface.curate.jobs.reports import (
    FrameList,
    MultiFacesSummary,
    NoFacesSummary,
    missing_alignments,
    missing_frames,
    multi_faces,
    no_faces,
)
from swapface.curate.jobs.smooth import SMOOTH_METHODS, SmoothSummary, smooth_landmarks, smooth_track

__all__ = [
    "MULTI_FACES_DIR", "NO_FACES_DIR", "SMOOTH_METHODS", "DrawSummary", "ExtractFacesSummary",
    "FrameList", "FromFacesSummary", "MergeSummary", "MultiFacesSummary", "NoFacesSummary",
    "RemoveFacesSummary", "RenameSummary", "SmoothSummary", "backup_store", "draw_alignments",
    "extract_faces", "from_faces", "merge_stores", "missing_alignments", "missing_frames",
    "multi_faces", "native_size", "no_faces", "remove_faces", "rename_faces", "smooth_landmarks",
    "smooth_track",
]
