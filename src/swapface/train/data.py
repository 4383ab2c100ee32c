"""Training faces: scan a face folder, decode faces + masks, serve random batches fast.

Faces and their masks are decoded once and kept as uint8 when they fit the memory budget
(the usual case: 2,000 faces at 256 px are 400 MB); larger sets are read from disk per
batch. A background thread prepares the next batch while the model trains on this one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from swapface.align.landmarks import LEFT_EYE, MOUTH, RIGHT_EYE
from swapface.align.masks import draw_mask
from swapface.align.transform import transform_points
from swapface.core.errors import InputError
from swapface.core.images import ImageReadError, is_image_path, read_image, read_metadata
from swapface.media.source import natural_key

log = logging.getLogger(__name__)

MEMORY_BUDGET = 3 * 1024**3  # bytes of decoded faces kept in RAM per side


@dataclass
class FaceItem:
    path: Path
    landmarks: np.ndarray | None  # (68, 2) in aligned-face pixels, None if no metadata


def scan_faces(folder: Path) -> list[FaceItem]:
    """Face images of an extract folder (not its masks/ or debug/ sub-folders)."""
    if not folder.is_dir():
        raise InputError(f"face folder not found: {folder}")
    items = []
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if not (path.is_file() and is_image_path(path)):
            continue
        landmarks = None
        try:
            meta = read_metadata(path)
        except (OSError, ValueError):
            meta = None
        if meta and "landmarks" in meta and "warp_matrix" in meta:
            landmarks = transform_points(np.asarray(meta["landmarks"]), np.asarray(meta["warp_matrix"]))
        items.append(FaceItem(path, landmarks))
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
        self.cache_all = len(self.items) * self.size * self.size * 6 <= MEMORY_BUDGET
        self._bad: set[int] = set()
        self._lock = threading.Lock()

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
        scale = 1.0
        if face.shape[0] != self.size or face.shape[1] != self.size:
            scale = self.size / face.shape[0]
            face = cv2.resize(face, (self.size, self.size), interpolation=cv2.INTER_AREA)
        lm = None if item.landmarks is None else item.landmarks * scale
        data = np.concatenate([face, face_masks(lm, self.size)], axis=2)
        if self.cache_all:
            self._cache[index] = data
        return data

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """(count, size, size, 6) random faces (with replacement across epochs)."""
        out = []
        attempts = 0
        while len(out) < count:
            attempts += 1
            if attempts > count * 20 or len(self._bad) >= len(self.items):
                raise InputError(f"too many unreadable faces in {self.folder}")
            data = self.load(int(rng.integers(len(self.items))))
            if data is not None:
                out.append(data)
        return np.stack(out)


class BatchPrefetcher:
    """Draws (A, B) batches in a background thread so the model never waits on decoding."""

    def __init__(self, sets: tuple[FaceSet, FaceSet], batch: int, seed: int, depth: int = 3) -> None:
        self.sets = sets
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self._queue: queue.Queue[tuple[np.ndarray, np.ndarray] | BaseException] = queue.Queue(depth)
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

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
