"""``--detail exemplars``: B's own fine detail from its closest faces, warped onto each frame.

On real woman_a frames swapped by the session's briefly trained model: the detail must make
the pasted face sharper (evaluate's sharpness ratio), move its identity toward B — and the
same detail taken from A's faces must move it toward A instead, so a swapped folder or a
detail that carried the frame's own face would fail here — while tone and shape (the low
frequencies) stay the model's.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.store import AlignmentsStore
from swapface.core.errors import ConfigError, InputError
from swapface.evaluate.detail import FaceRegion, sharpness_ratio
from swapface.faces.identity import shared_encoder
from swapface.media.video import iter_video
from swapface.swap import FrameSwapper, SwapOptions, load_model
from swapface.swap.exemplars import ExemplarBank, ExemplarDetail, ExemplarOptions
from tests.conftest import Pair

FRAMES = 8


@pytest.fixture(scope="module")
def frames(pair: Pair) -> list[tuple[np.ndarray, list]]:
    """Eight woman_a frames, evenly spread, with their stored faces."""
    with AlignmentsStore(pair.a.store, readonly=True) as store:
        records = {f.index: f for f in store.frames() if len(f.faces) == 1}
    keys = sorted(records)
    wanted = {keys[i] for i in np.linspace(0, len(keys) - 1, FRAMES).round().astype(int)}
    out = []
    for index, _, image in iter_video(pair.a.video):
        if index in wanted:
            out.append((image, records[index].faces))
        if index >= max(wanted):
            break
    return out


def _mean_identity(store: Path) -> np.ndarray:
    with AlignmentsStore(store, readonly=True) as s:
        found = [f.identity for fr in s.frames() for f in fr.faces if f.identity is not None]
    mean = np.mean(found, axis=0)
    return mean / np.linalg.norm(mean)


def test_b_detail_sharpens_the_face_and_moves_it_toward_b(trained: Path, pair: Pair, frames):
    model = load_model(trained, cpu=True)
    plain = FrameSwapper(model, SwapOptions())
    with_b = FrameSwapper(model, SwapOptions(detail="exemplars", detail_faces=pair.b.faces))
    with_a = FrameSwapper(model, SwapOptions(detail="exemplars", detail_faces=pair.a.faces))
    encoder = shared_encoder()
    b_mean = _mean_identity(pair.b.store)
    sharp: dict[str, list[float]] = {"plain": [], "b": []}
    dist: dict[str, list[float]] = {"plain": [], "b": [], "a": []}
    for image, faces in frames:
        lm = np.asarray(faces[0].landmarks, np.float64)
        region = FaceRegion.of(lm, image.shape)
        assert region is not None
        out = {"plain": plain.swap(image, faces), "b": with_b.swap(image, faces),
               "a": with_a.swap(image, faces)}
        for key in sharp:
            sharp[key].append(sharpness_ratio(image, out[key], region))
        for key, swapped in out.items():
            dist[key].append(float(np.linalg.norm(encoder.encode(swapped, lm) - b_mean)))
        # only detail is added: the face's tone and broad shading stay the model's
        diff = out["b"].astype(np.float32) - out["plain"].astype(np.float32)
        hull = np.zeros(image.shape[:2], np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm).astype(np.int32)), 1)
        inside = hull > 0
        assert np.abs(diff[inside].mean(axis=0)).max() < 2.0  # grey levels: invisible
        assert np.abs(cv2.GaussianBlur(diff, (0, 0), 24.0)[inside]).mean() < 2.5
        assert np.abs(diff[inside]).mean() > 2.0  # and the detail is really there
    mean = {k: float(np.mean(v)) for k, v in dist.items()}
    assert np.mean(sharp["b"]) > np.mean(sharp["plain"]) + 0.08, sharp
    assert mean["b"] < mean["plain"], mean  # B's detail makes the face more B
    assert mean["a"] > mean["b"] + 0.02, mean  # A's detail would make it less: direction matters


def test_the_bank_finds_a_face_itself_first_and_refuses_bad_folders(pair: Pair, tmp_path):
    bank = ExemplarBank.load(pair.b.faces, 1000)
    assert len(bank.faces) == len(bank.landmarks) > 10
    order, weights = bank.nearest(bank.landmarks[5], 4)
    assert order[0] == 5 and weights[0] == weights.max() and weights.sum() == pytest.approx(1.0)
    limited = ExemplarBank.load(pair.b.faces, 7)
    assert len(limited.faces) == 7
    with pytest.raises(InputError, match="no extracted face files"):
        ExemplarBank.load(tmp_path, 10)
    with pytest.raises(InputError, match="not found"):
        ExemplarBank.load(tmp_path / "missing", 10)
    with pytest.raises(ConfigError, match="detail-faces"):
        SwapOptions(detail="exemplars")
    with pytest.raises(ConfigError):
        SwapOptions(detail="exemplars", detail_faces=pair.b.faces, detail_options={"count": 0})
    detail = ExemplarDetail(bank, ExemplarOptions())
    # paste size: about a pixel per frame pixel, from the model size up to max_size
    assert detail.paste_size(np.array([[0.5, 0, 0], [0, 0.5, 0]]), 64) == 128
    assert detail.paste_size(np.array([[2.0, 0, 0], [0, 2.0, 0]]), 64) == 64
    assert detail.paste_size(np.array([[0.05, 0, 0], [0, 0.05, 0]]), 64) == 256


def test_project_swap_options_take_no_paths_from_the_caller(tmp_path):
    from swapface.project.project import Project
    from swapface.project.stages import project_swap_options

    p = Project.create(tmp_path, "demo", "alice", "bob")
    options = project_swap_options(p, {"detail": "exemplars", "detail_faces": "/etc",
                                       "filter": ["/etc/passwd"]})
    assert options.detail_faces == p.faces_dir("bob")
    assert options.filter == []
    assert project_swap_options(p, {}).detail_faces is None
    # swapped the other way, the face drawn is A's: so is the detail
    assert project_swap_options(p, {"detail": "exemplars", "swap_model": True}).detail_faces == \
        p.faces_dir("alice")


def test_the_preview_loads_b_faces_once_across_frames(trained: Path, pair: Pair, monkeypatch, tmp_path):
    from swapface.convert.config import ConvertConfig
    from swapface.convert.preview import FramePreviewer

    calls: list[Path] = []
    real = ExemplarBank.load.__func__  # type: ignore[attr-defined]

    def counting(cls, folder, limit):
        calls.append(folder)
        return real(cls, folder, limit)

    monkeypatch.setattr(ExemplarBank, "load", classmethod(counting))
    with AlignmentsStore(pair.a.store, readonly=True) as store:
        indices = [f.index for f in store.frames() if len(f.faces) == 1][:2]
    previewer = FramePreviewer(trained, cpu=True)
    swap = SwapOptions(detail="exemplars", detail_faces=pair.b.faces)
    for index in indices:
        images = previewer.render(ConvertConfig(input=pair.a.video, model_dir=trained,
                                                output=tmp_path / "p.png", alignments=pair.a.store,
                                                preview_frame=index, swap=swap))
        assert images.faces == 1 and not np.array_equal(images.source, images.swapped)
    assert calls == [pair.b.faces]
