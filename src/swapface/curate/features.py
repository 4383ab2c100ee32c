"""Per-face features for ``swapface sort``: a registry of small scorer functions.

Each method computes one float vector per face from the face image and/or the JSON metadata
that extract embeds in every face PNG, and orders a folder from those vectors alone, so a
sort streams over the images and keeps only the vectors in memory.

Colour definitions (all on the aligned face, 8-bit BGR):

* ``color-black``: fraction of pixels whose brightest channel is below 32; most black first.
* ``color-gray``: fraction of near-neutral pixels (max − min channel below 20); grayest first.
* ``color-luma``: mean BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; brightest first.
* ``color-green``: mean YCgCo green chroma ``Cg = (−R + 2G − B) / 4``; greenest first.
* ``color-orange``: mean YCgCo orange chroma ``Co = (R − B) / 2``; most orange first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.align.landmarks import to_five_points
from swapface.align.pose import head_pose
from swapface.align.store import AlignmentsStore
from swapface.align.transform import mean_face_points
from swapface.core.errors import InputError
from swapface.core.images import read_image
from swapface.core.registry import NoOptions, Registry
from swapface.faces.blur import blur_score
from swapface.faces.meta import FaceFileMeta

log = logging.getLogger(__name__)

SORT_PREFIX_DIGITS = 5


@dataclass
class FaceItem:
    """One face file; image and metadata are read on first use and dropped after scoring."""

    path: Path
    context: FeatureContext
    _meta: FaceFileMeta | None = None
    _image: np.ndarray | None = None
    _meta_read: bool = False

    @property
    def meta(self) -> FaceFileMeta:
        if not self._meta_read:
            self._meta = FaceFileMeta.read(self.path)
            self._meta_read = True
        if self._meta is None:
            raise InputError(f"{self.path.name}: no swapface metadata (not written by extract)")
        return self._meta

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = read_image(self.path)
        return self._image

    @property
    def size(self) -> int:
        return self.meta.size

    @property
    def matrix(self) -> np.ndarray:
        return self.meta.matrix

    @property
    def frame_landmarks(self) -> np.ndarray:
        return self.meta.landmarks

    @property
    def aligned_landmarks(self) -> np.ndarray:
        """Metadata landmarks mapped by the face's matrix into the aligned face (pixels)."""
        return self.meta.aligned_landmarks()


@dataclass
class FeatureContext:
    """Shared, lazily built helpers (identity encoder, open alignments stores)."""

    encoder: Any = None
    stores: dict[str, AlignmentsStore | None] = field(default_factory=dict)
    from_store: int = 0
    computed: int = 0

    def identity_encoder(self) -> Any:
        if self.encoder is None:
            from swapface.faces.identity import IdentityEncoder

            self.encoder = IdentityEncoder()
        return self.encoder

    def store(self, path: str | None) -> AlignmentsStore | None:
        """The alignments store a face names, opened read-only once; None when unusable."""
        if not path:
            return None
        if path not in self.stores:
            store = None
            if Path(path).is_file():
                try:
                    store = AlignmentsStore(path, readonly=True)
                except InputError as exc:
                    log.warning("not reading identities from %s: %s", path, exc)
            self.stores[path] = store
        return self.stores[path]

    def close(self) -> None:
        for store in self.stores.values():
            if store is not None:
                store.close()
        self.stores.clear()


# ---------------------------------------------------------------- orderings


def order_ascending(values: np.ndarray) -> np.ndarray:
    return np.argsort(values[:, 0], kind="stable")


def order_descending(values: np.ndarray) -> np.ndarray:
    return np.argsort(-values[:, 0], kind="stable")


Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a: m×d, b: n×d) → m×n distances
_BLOCK = 512  # rows per distance block: memory stays O(n·d), never O(n²)
_FULL = 4096


def greedy_chain(values: np.ndarray, metric: Metric) -> np.ndarray:
    """Start at the first face, always step to the nearest face not yet visited."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n > _FULL:
        return _greedy_chain_pool(values, metric)
    # Up to _FULL faces the whole distance matrix (≤ 64 MiB float32) beats row-by-row calls.
    full = metric(values, values).astype(np.float32)
    visited = np.zeros(n, dtype=bool)
    order = [0]
    visited[0] = True
    for _ in range(n - 1):
        row = np.where(visited, np.inf, full[order[-1]])
        nxt = int(np.argmin(row))
        order.append(nxt)
        visited[nxt] = True
    return np.asarray(order, dtype=np.int64)


def _greedy_chain_pool(values: np.ndarray, metric: Metric) -> np.ndarray:
    """:func:`greedy_chain` in O(n·d) memory: a float32 pool of the faces not yet visited.

    Each step measures the current face against the unvisited pool only and swaps the last
    pool row into the chosen face's slot, so the pool shrinks and no mask is needed.
    """
    n = len(values)
    pool = np.array(values, dtype=np.float32)  # a copy: rows are swapped around
    ids = np.arange(n, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    current = pool[0].copy()
    order[0] = 0
    size = n
    pool[0], ids[0] = pool[size - 1], ids[size - 1]
    size -= 1
    for step in range(1, n):
        dist = metric(current[None], pool[:size])[0]
        pos = int(np.argmin(dist))
        order[step] = ids[pos]
        current = pool[pos].copy()
        pool[pos], ids[pos] = pool[size - 1], ids[size - 1]
        size -= 1
    return order


def root_hist(values: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(values, 0, None))


def bhattacharyya_rooted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya distances (as OpenCV's HISTCMP) of square-rooted unit-sum histograms."""
    return np.sqrt(1.0 - np.clip(a @ b.T, 0.0, 1.0))


def l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b, metric="cityblock")


def _same(values: np.ndarray) -> np.ndarray:
    return values


def order_chain(metric: Metric, prepare: Callable[[np.ndarray], np.ndarray] = _same
                ) -> Callable[[np.ndarray], np.ndarray]:
    return lambda values: greedy_chain(prepare(values), metric)


def order_dissim(metric: Metric, prepare: Callable[[np.ndarray], np.ndarray] = _same
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """Most dissimilar (largest mean distance to every other face) first."""

    def order(values: np.ndarray) -> np.ndarray:
        values = prepare(values)
        total = np.zeros(len(values))
        for i in range(0, len(values), _BLOCK):
            total[i : i + _BLOCK] = metric(values[i : i + _BLOCK], values).sum(axis=1)
        return np.argsort(-total, kind="stable")

    return order


# Above TWO_LEVEL_ABOVE faces, identity ordering/grouping is two-level: k-means to at most
# CENTROIDS centroids, average linkage over the centroids, faces follow their centroid. A
# linkage over all n faces needs the n(n-1)/2 condensed distance matrix (3.6 GB for 30k).
TWO_LEVEL_ABOVE = 4096
CENTROIDS = 1024
_KMEANS_ITERS = 15
_KMEANS_BLOCK = 4096


def identity_linkage(values: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage

    return linkage(values.astype(np.float64), method="average", metric="euclidean")


def kmeans(values: np.ndarray, k: int, iters: int = _KMEANS_ITERS, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, label per row): batched Lloyd k-means, seeded, empty clusters dropped.

    Memory is O(n·d + block·k): distances are computed ``_KMEANS_BLOCK`` rows at a time.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centroids = x[np.sort(rng.choice(n, size=k, replace=False))].copy()
    x_sq = np.einsum("ij,ij->i", x, x)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iters):
        c_sq = np.einsum("ij,ij->i", centroids, centroids)
        new = np.empty(n, dtype=np.int64)
        for i in range(0, n, _KMEANS_BLOCK):
            block = x[i : i + _KMEANS_BLOCK]
            d2 = x_sq[i : i + _KMEANS_BLOCK, None] - 2.0 * (block @ centroids.T) + c_sq[None]
            new[i : i + _KMEANS_BLOCK] = np.argmin(d2, axis=1)
        changed = not np.array_equal(new, labels)
        labels = new
        counts = np.bincount(labels, minlength=len(centroids))
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if not changed:
            break
    counts = np.bincount(labels, minlength=len(centroids))
    keep = np.flatnonzero(counts > 0)
    remap = np.full(len(centroids), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    return centroids[keep], remap[labels]


def _two_level(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroid linkage, face → centroid label, centroids) for the two-level scheme."""
    centroids, labels = kmeans(values, CENTROIDS)
    if len(centroids) < 2:  # all faces (nearly) identical: one centroid, a trivial tree
        return np.zeros((0, 4)), labels, centroids
    return identity_linkage(centroids), labels, centroids


def _order_members(values: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Order inside one centroid cluster: leaf order of a small linkage, else by distance."""
    m = len(values)
    if m < 3:
        return np.arange(m)
    if m <= TWO_LEVEL_ABOVE:
        from scipy.cluster.hierarchy import leaves_list

        return leaves_list(identity_linkage(values)).astype(np.int64)
    return np.argsort(np.linalg.norm(values - centre, axis=1), kind="stable")


def order_identity(values: np.ndarray) -> np.ndarray:
    if len(values) < 3:
        return np.arange(len(values))
    from scipy.cluster.hierarchy import leaves_list

    if len(values) <= TWO_LEVEL_ABOVE:
        return leaves_list(identity_linkage(values)).astype(np.int64)
    tree, labels, centroids = _two_level(values)
    corder = leaves_list(tree) if len(tree) else np.arange(len(centroids))
    by_label = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=len(centroids)))])
    parts = []
    for c in corder:
        members = by_label[bounds[c] : bounds[c + 1]]
        parts.append(members[_order_members(values[members], centroids[c])])
    return np.concatenate(parts).astype(np.int64)


def identity_clusters(values: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 0.. (largest cluster first) cut at ``threshold`` (dlib distance).

    Above ``TWO_LEVEL_ABOVE`` faces the centroid tree is cut and faces join their centroid.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(values) == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster

    if len(values) <= TWO_LEVEL_ABOVE:
        raw = fcluster(identity_linkage(values), t=threshold, criterion="distance")
    else:
        tree, labels, _ = _two_level(values)
        per_centroid = (fcluster(tree, t=threshold, criterion="distance") if len(tree)
                        else np.ones(1, dtype=np.int64))
        raw = per_centroid[labels]
    labels, counts = np.unique(raw, return_counts=True)
    rank = {lab: i for i, lab in enumerate(labels[np.argsort(-counts, kind="stable")])}
    return np.asarray([rank[r] for r in raw], dtype=np.int64)


# ---------------------------------------------------------------- scorers


def feat_blur(item: FaceItem) -> np.ndarray:
    return np.array([blur_score(item.image)])


def feat_blur_fft(item: FaceItem) -> np.ndarray:
    """Mean log-magnitude of the spectrum outside a low-frequency disc (sharp = high)."""
    gray = cv2.cvtColor(item.image, cv2.COLOR_BGR2GRAY)
    gray = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    spec = np.fft.fftshift(np.fft.fft2(gray - gray.mean()))
    yy, xx = np.mgrid[-64:64, -64:64]
    high = (xx * xx + yy * yy) > 16 * 16
    return np.array([float(np.log1p(np.abs(spec[high])).mean())])


def feat_distance(item: FaceItem) -> np.ndarray:
    """Mean distance (fraction of the face size) of the aligned 5 points from the mean face."""
    size = item.size
    five = to_five_points(item.aligned_landmarks)
    ref = mean_face_points(size, item.meta.face_span)
    return np.array([float(np.linalg.norm(five - ref, axis=1).mean() / size)])


def feat_pose(item: FaceItem) -> np.ndarray:
    return np.array(head_pose(item.frame_landmarks))


def feat_hist(item: FaceItem) -> np.ndarray:
    gray = cv2.cvtColor(item.image, cv2.COLOR_BGR2GRAY)
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).reshape(-1).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def _color_stats(item: FaceItem) -> np.ndarray:
    img = item.image.astype(np.float32)
    b, g, r = img[..., 0], img[..., 1], img[..., 2]
    hi, lo = img.max(axis=2), img.min(axis=2)
    return np.array([
        float((hi < 32).mean()),
        float(((hi - lo) < 20).mean()),
        float((0.299 * r + 0.587 * g + 0.114 * b).mean()),
        float(((-r + 2 * g - b) / 4).mean()),
        float(((r - b) / 2).mean()),
    ])


def feat_size(item: FaceItem) -> np.ndarray:
    """Face size in the source frame (px): sqrt of the box area, else size / warp scale."""
    box = item.meta.box
    if box is not None:
        w, h = box[2] - box[0], box[3] - box[1]
        if w > 0 and h > 0:
            return np.array([float(np.sqrt(w * h))])
    scale = float(np.sqrt(abs(np.linalg.det(item.matrix[:, :2])))) or 1.0
    return np.array([item.size / scale])


def feat_landmarks(item: FaceItem) -> np.ndarray:
    return (item.aligned_landmarks / item.size).reshape(-1)


def _store_identity(item: FaceItem) -> np.ndarray | None:
    meta = item.meta
    store = item.context.store(meta.alignments)
    if store is None:
        return None
    names = [item.path.name]
    stripped = strip_sort_prefix(item.path.name)
    if stripped != item.path.name:
        names.append(stripped)
    files = [f for name in names for f in (name, f"blurry/{name}")]
    found = store.identity_of(files, meta.frame or None, meta.face_index)
    return None if found is None else found.astype(np.float64)


def feat_identity(item: FaceItem) -> np.ndarray:
    stored = _store_identity(item)
    if stored is not None and stored.shape == (128,):
        item.context.from_store += 1
        return stored
    item.context.computed += 1
    encoder = item.context.identity_encoder()
    return encoder.encode(item.image, item.aligned_landmarks).astype(np.float64)


def strip_sort_prefix(name: str) -> str:
    """``00012_face.png`` → ``face.png`` so re-sorting does not stack prefixes."""
    head, sep, rest = name.partition("_")
    if sep and len(head) == SORT_PREFIX_DIGITS and head.isdigit() and rest:
        return rest
    return name


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Method:
    """A sort method: which cached feature it reads, which column scores it, how it orders."""

    feature: str  # cache key: methods sharing a feature compute it once
    compute: Callable[[FaceItem], np.ndarray]
    order: Callable[[np.ndarray], np.ndarray]
    column: int | None = 0  # scalar used for --bins (None: no scalar; bins by sort order)


SORT_METHODS: Registry[Method] = Registry("sort method")


def _col(index: int, descending: bool) -> Callable[[np.ndarray], np.ndarray]:
    def order(values: np.ndarray) -> np.ndarray:
        col = values[:, index]
        return np.argsort(-col if descending else col, kind="stable")

    return order


def _method(name: str, description: str, feature: str, compute: Callable[[FaceItem], np.ndarray],
            order: Callable[[np.ndarray], np.ndarray], column: int | None = 0) -> None:
    method = Method(feature, compute, order, column)

    @SORT_METHODS.register(name, description=description)
    def factory(options: NoOptions) -> Method:
        return method


_method("blur", "Laplacian variance, sharpest first", "blur", feat_blur, order_descending)
_method("blur-fft", "high-frequency FFT energy, sharpest first", "blur-fft", feat_blur_fft,
        order_descending)
_method("distance", "aligned landmarks vs the mean face, misalignments last", "distance",
        feat_distance, order_ascending)
_method("yaw", "head yaw (solvePnP), left to right", "pose", feat_pose, _col(0, False), 0)
_method("pitch", "head pitch, up to down", "pose", feat_pose, _col(1, False), 1)
_method("roll", "head roll, counter-clockwise first", "pose", feat_pose, _col(2, False), 2)
_method("hist", "grayscale histograms, similar faces adjacent", "hist", feat_hist,
        order_chain(bhattacharyya_rooted, root_hist), None)
_method("hist-dissim", "grayscale histograms, most dissimilar first", "hist", feat_hist,
        order_dissim(bhattacharyya_rooted, root_hist), None)
_method("color-black", "fraction of black pixels", "color", _color_stats, _col(0, True), 0)
_method("color-gray", "fraction of gray pixels", "color", _color_stats, _col(1, True), 1)
_method("color-luma", "mean luma, brightest first", "color", _color_stats, _col(2, True), 2)
_method("color-green", "mean green chroma (Cg)", "color", _color_stats, _col(3, True), 3)
_method("color-orange", "mean orange chroma (Co)", "color", _color_stats, _col(4, True), 4)
_method("size", "face size in the frame, largest first", "size", feat_size, order_descending)
_method("landmarks", "aligned landmarks, similar layouts adjacent", "landmarks", feat_landmarks,
        order_chain(l1), None)
_method("landmarks-dissim", "aligned landmarks, most unusual first", "landmarks", feat_landmarks,
        order_dissim(l1), None)
_method("identity", "dlib descriptors, hierarchical clustering order", "identity", feat_identity,
        order_identity, None)


def sort_method(name: str) -> Method:
    return SORT_METHODS.create(name)
