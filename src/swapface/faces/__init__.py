"""Face analysis: find faces, their 68 landmarks and identity; align them; read face files.

Detectors and aligners are plugins (:data:`DETECTORS`, :data:`ALIGNERS`); a
:class:`FaceFinder` combines one of each with tracking and rotation retries. Every stage that
looks at faces (extract, curate, train, convert, evaluate, live) uses this package.
"""

from swapface.faces.aligned import AlignedFace, align_face, write_face_files
from swapface.faces.aligners import ALIGNERS, Aligner
from swapface.faces.blur import blur_score
from swapface.faces.detectors import DETECTORS, Detection, Detector
from swapface.faces.finder import FaceFinder, FinderOptions, FoundFace
from swapface.faces.identity import SAME_PERSON, IdentityEncoder, IdentityFilter, shared_encoder
from swapface.faces.meta import FaceFileMeta

__all__ = [
    "ALIGNERS",
    "DETECTORS",
    "SAME_PERSON",
    "AlignedFace",
    "Aligner",
    "Detection",
    "Detector",
    "FaceFileMeta",
    "FaceFinder",
    "FinderOptions",
    "FoundFace",
    "IdentityEncoder",
    "IdentityFilter",
    "align_face",
    "blur_score",
    "shared_encoder",
    "write_face_files",
]
