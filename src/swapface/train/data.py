"""Training faces: scan a face folder, decode faces + masks, serve random batches fast.

Faces and their masks are decoded once and kept as uint8 when they fit the memory budget
(the usual case: 2,000 faces at 256 px are 400 MB); larger sets are read from disk per
batch. A background thread prepares the next batch while the model trains on this one.
Each batch carries its faces' aligned landmarks and, once :meth:`FaceSet.match_partners` has
run (warp to landmarks), the landmarks of each face's closest faces.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from swapface.align.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE
from swapface.align.masks import draw_mask
from swapface.align.warp_landmarks import NEAREST, nearest_faces
from swapface.core.errors import InputError
from swapface.core.fileio import natural_key
from swapface.core.images import ImageReadError, is_image_path, read_image
from swapface.core.runtime import memory_budget
from swapface.faces.meta import FaceFileMeta

log = logging.getLogger(__name__)

MEMORY_CEILING = 3 * 1024**3  # at most this many bytes of decoded faces kept in RAM per side
POSE_BIN = 10.0  # degrees of yaw and pitch per cell of --balance-pose
MEMORY_FRACTION = 0.2  # and at most this share of the RAM available when training starts


@dataclass
class FaceItem:
    path: Path
    landmarks: np.ndarray | None  # (68, 2) in aligned-face pixels, None if no metadata
    size: int | None = None  # the face image's size as extract wrote it (metadata), if known


class SideBatch(NamedTuple):
    """One side's batch as the prefetcher serves it (NumPy, CPU)."""

    faces: np.ndarray  # (B, S, S, 6) uint8: BGR face + extended/eye/mouth masks
    landmarks: np.ndarray  # (B, 68, 2) float32 at S px, cv2 convention; NaN rows: none known
    partners: np.ndarray | None  # (B, K, 68, 2) closest faces' landmarks (after match_partners)
    partner_count: np.ndarray | None  # (B,) usable rows of ``partners`` per face


@dataclass
class Partners:
    """Each face's closest faces (by landmark distance) in ``pool``, closest first."""

    index: np.ndarray  # (N, K) indices into pool
    count: np.ndarray  # (N,) usable entries per row (0: no landmarks on one side)
    pool: np.ndarray  # (Np, 68, 2) the pool set's landmarks


def scan_faces(folder: Path) -> list[FaceItem]:
    """Face images of an extract folder (not its masks/ or debug/ sub-folders)."""
    if not folder.is_dir():
        raise InputError(f"face folder not found: {folder}")
    items = []
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if not (path.is_file() and is_image_path(path)):
            continue
        meta = FaceFileMeta.read(path)
        if meta is None:
            items.append(FaceItem(path, None, None))
        else:
            items.append(FaceItem(path, meta.aligned_landmarks(), meta.size))
    if not items:
        raise InputError(f"no face images in {folder} (run `swapface extract` first)")
    missing = sum(i.landmarks is None for i in items)
    if missing:
        log.warning("%s: %d face(s) carry no swapface metadata; their masks are blank", folder, missing)
    return items


def face_masks(landmarks: np.ndarray | None, size: int, dilate: int = 2) -> np.ndarray:
    """(size, size, 3) uint8: extended face mask, eye region, mouth region."""
    if landmarks is None:  # no landmarks: the whole crop is face, no eye/mouth weights
        blank = np.zeros((size, size), np.uint8)
        return np.dstack([blank + 255, blank, blank])
    channels = [draw_mask(landmarks, (size, size), "extended")]
    for parts in ((RIGHT_EYE, LEFT_EYE), (MOUTH,)):
        region = np.zeros((size, size), np.uint8)
        for part in parts:
            hull = cv2.convexHull(np.round(landmarks[part]).astype(np.int32))
            cv2.fillConvexPoly(region, hull, 255)
        if dilate:
            k = max(3, size // 32) | 1
            region = cv2.dilate(region, np.ones((k, k), np.uint8))
        channels.append(region)
    return np.dstack(channels)


class FaceSet:
    """All faces of one side, resized to ``size``, with masks; corrupt files are dropped."""

    def __init__(self, folder: Path, size: int | None = None) -> None:
        self.folder = folder
        self.items = scan_faces(folder)
        self._cache: dict[int, np.ndarray] = {}
        self.size = size or self._common_size()
        # Decoded faces stay in RAM up to the budget (all of them for the usual few thousand);
        # past it the first ones stay and the rest are decoded each time they are drawn.
        budget = memory_budget(MEMORY_FRACTION, MEMORY_CEILING)
        self.cache_limit = budget // (self.size * self.size * 6)
        self._bad: set[int] = set()
        self._lock = threading.Lock()
        # Every face's aligned landmarks at ``size`` px, cv2 convention (NaN: none known), from
        # the metadata alone so that no image is decoded: scaled from the face's size as written
        # by extract (else the folder's common size); load() corrects a face whose file differs.
        self.landmarks = np.full((len(self.items), 68, 2), np.nan, np.float32)
        common = None if size else self.size
        for i, item in enumerate(self.items):
            if item.landmarks is None or np.shape(item.landmarks) != (68, 2):
                continue
            if item.size is None:
                item.size = common = common or self._common_size()
            self.landmarks[i] = self._rescale(item.landmarks, item.size)
        self.partners: Partners | None = None
        self.weights: np.ndarray | None = None  # sampling probabilities (None: uniform)

    def balance_pose(self, bin_degrees: float = POSE_BIN) -> None:
        """Draw faces of rare head poses more often: each face's probability is
        1/√(faces in its yaw × pitch cell), so a pose seen 100 times is drawn 10× as often as
        one seen once, not 100×. Faces without landmarks keep the median weight."""
        from swapface.align.pose import head_pose

        known = ~np.isnan(self.landmarks).any(axis=(1, 2))
        if known.sum() < 2:
            return
        poses = np.array([head_pose(lm)[:2] for lm in self.landmarks[known]])
        cells = np.floor(poses / bin_degrees).astype(np.int64)
        _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        weights = np.full(len(self.items), np.nan)
        weights[known] = 1.0 / np.sqrt(counts[inverse.reshape(-1)])
        weights[~known] = np.median(weights[known])
        self.weights = weights / weights.sum()

    @property
    def cache_all(self) -> bool:
        """Every face fits the cache: each is decoded once."""
        return len(self.items) <= self.cache_limit

    @property
    def names(self) -> list[str]:
        return [item.path.name for item in self.items]

    def _rescale(self, landmarks: np.ndarray, native: int) -> np.ndarray:
        """Landmarks of a ``native``-px face at ``size`` px: a resize by s maps a cv2 pixel
        coordinate x to (x + ½)·s − ½."""
        return (landmarks + 0.5) * (self.size / native) - 0.5

    def match_partners(self, pool: FaceSet, k: int = NEAREST) -> None:
        """Find each face's ``k`` closest faces in ``pool`` by landmark distance, once, for warp
        to landmarks (``pool`` may be this set: a face is then never its own partner). Both
        sets must be served at the same size, so their landmarks share one pixel frame."""
        if pool.size != self.size:
            raise ValueError(f"partner pool served at {pool.size} px, this set at {self.size} px")
        index, count = nearest_faces(self.landmarks, pool.landmarks, k, exclude_self=pool is self)
        self.partners = Partners(index, count, pool.landmarks)
        unmatched = int((count == 0).sum())
        if unmatched:
            log.warning("%s: %d face(s) have no landmarks or no partner with landmarks; "
                        "warp to landmarks leaves them unwarped", self.folder, unmatched)

    def _common_size(self) -> int:
        sizes: Counter[int] = Counter()
        for item in self.items[:50]:
            try:
                sizes[read_image(item.path).shape[0]] += 1
            except ImageReadError:
                continue
        if not sizes:
            raise InputError(f"none of the first faces in {self.folder} can be read")
        return sizes.most_common(1)[0][0]

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> np.ndarray | None:
        """(size, size, 6) uint8: BGR face + 3 mask channels; None for unreadable files."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        item = self.items[index]
        try:
            face = read_image(item.path)
        except ImageReadError as exc:
            with self._lock:
                if index not in self._bad:
                    self._bad.add(index)
                    log.warning("skipping unreadable face: %s", exc)
            return None
        lm = None
        if item.landmarks is not None and np.isfinite(self.landmarks[index]).all():
            if item.size != face.shape[0]:  # the metadata's size was not this file's
                item.size = face.shape[0]
                self.landmarks[index] = self._rescale(item.landmarks, item.size)
            lm = self.landmarks[index]
        if face.shape[0] != self.size or face.shape[1] != self.size:
            face = cv2.resize(face, (self.size, self.size), interpolation=cv2.INTER_AREA)
        data = np.concatenate([face, face_masks(lm, self.size)], axis=2)
        if len(self._cache) < self.cache_limit:
            self._cache[index] = data
        return data

    def sample(self, rng: np.random.Generator, count: int) -> SideBatch:
        """``count`` random faces (with replacement across epochs) with their landmarks."""
        out, picks = [], []
        attempts = 0
        while len(out) < count:
            attempts += 1
            if attempts > count * 20 or len(self._bad) >= len(self.items):
                raise InputError(f"too many unreadable faces in {self.folder}")
            index = int(rng.integers(len(self.items)) if self.weights is None
                        else rng.choice(len(self.items), p=self.weights))
            data = self.load(index)
            if data is not None:
                out.append(data)
                picks.append(index)
        return self.batch(np.stack(out), np.asarray(picks))

    def batch(self, faces: np.ndarray, indices: np.ndarray) -> SideBatch:
        """A :class:`SideBatch` of the faces at ``indices`` (already loaded as ``faces``)."""
        if self.partners is None:
            return SideBatch(faces, self.landmarks[indices], None, None)
        p = self.partners
        return SideBatch(faces, self.landmarks[indices], p.pool[p.index[indices]], p.count[indices])


class BatchPrefetcher:
    """Draws (A, B) batches in a background thread so the model never waits on decoding."""

    def __init__(self, sets: tuple[FaceSet, FaceSet], batch: int, seed: int, depth: int = 3) -> None:
        self.sets = sets
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self._queue: queue.Queue[tuple[SideBatch, SideBatch] | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(2)  # cv2 decoding releases the GIL
        self._thread = threading.Thread(target=self._fill, daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                seeds = self.rng.integers(2**32, size=2)
                a, b = self._pool.map(lambda sd: sd[0].sample(np.random.default_rng(sd[1]), self.batch),
                                      zip(self.sets, seeds, strict=True))
                while not self._stop.is_set():
                    try:
                        self._queue.put((a, b), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surfaced to the training loop
            self._queue.put(exc)

    def next(self) -> tuple[SideBatch, SideBatch]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
