"""The swap engine on a briefly trained real pair: who goes where, and convert == FrameSwapper.

The session's ``trained`` model (200 iterations on woman_a / woman_b) is far from a good
swap, but its decoders already draw their own person: these tests judge direction by dlib's
identity descriptor and by reconstruction error, so a swapped ``a``/``b`` anywhere in
training, the engine or convert makes them fail.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from swapface.align.records import FrameRecord
from swapface.align.store import AlignmentsStore
from swapface.cli.main import main
from swapface.core.images import read_image, read_metadata
from swapface.faces.identity import shared_encoder
from swapface.media.video import iter_video, probe_video
from swapface.media.video_writer import VideoWriter
from swapface.swap import Centred, FrameSwapper, SwapOptions, load_model
from swapface.swap.geometry import crop, model_matrix
from tests.conftest import REPO, Pair
from tests.extract_helpers import extract

CLIP_STEP, CLIP_FRAMES = 4, 24  # woman_a frames 0, 4, ..., 92: some head movement


@dataclass(frozen=True)
class Clip:
    video: Path
    store: Path
    images: dict[int, np.ndarray]
    records: dict[int, FrameRecord]


def _pick_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    out = {}
    for index, _, image in iter_video(video):
        if index in wanted:
            out[index] = image
        if len(out) == len(wanted):
            break
    return out


def _store_frames(store: Path, limit: int) -> dict[int, FrameRecord]:
    with AlignmentsStore(store, readonly=True) as s:
        frames = [f for f in s.frames() if len(f.faces) == 1]
    return {f.index: f for f in frames[:limit]}


@pytest.fixture(scope="module")
def clip_a(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A short clip of woman_a (the swap's source person) with its own store."""
    root = tmp_path_factory.mktemp("engine")
    source = data_dir / "video" / "woman_a.mp4"
    picked = _pick_frames(source, set(range(0, CLIP_STEP * CLIP_FRAMES, CLIP_STEP)))
    video = root / "clip_a.mp4"
    with VideoWriter(video, probe_video(source).fps, crf=12, preset="ultrafast") as writer:
        for index in sorted(picked):
            writer.write(picked[index])
    _, frames = extract(video, root / "clip_a", every_n=1, size=128)
    images = {index: image for index, _, image in iter_video(video)}
    records = {f.index: f for f in frames if len(f.faces) == 1}
    assert len(records) >= CLIP_FRAMES - 2, "woman_a's face should be found in nearly every frame"
    return Clip(video, root / "clip_a" / "alignments.db", images, records)


@pytest.fixture(scope="module")
def frames_b(pair: Pair) -> tuple[dict[int, np.ndarray], dict[int, FrameRecord]]:
    """A dozen frames of woman_b (the swap's target person) with their stored faces."""
    records = _store_frames(pair.b.store, 12)
    return _pick_frames(pair.b.video, set(records)), records


@pytest.fixture(scope="module")
def model(trained: Path):
    return load_model(trained, cpu=True)


def _descriptors(images: dict[int, np.ndarray], records: dict[int, FrameRecord]) -> np.ndarray:
    """dlib identity of the face at each record's landmarks (a swap keeps the face in place)."""
    encoder = shared_encoder()
    return np.stack([encoder.encode(images[i], np.asarray(records[i].faces[0].landmarks, np.float64))
                     for i in sorted(records)])


@pytest.fixture(scope="module")
def identities(clip_a: Clip, frames_b) -> dict[str, np.ndarray]:
    """Mean descriptor of each person, from their real frames."""
    return {"a": _descriptors(clip_a.images, clip_a.records).mean(axis=0),
            "b": _descriptors(*frames_b).mean(axis=0)}


def _distance(descriptors: np.ndarray, person: np.ndarray) -> float:
    return float(np.linalg.norm(descriptors - person, axis=1).mean())


def _lean(descriptors: np.ndarray, identities: dict[str, np.ndarray]) -> float:
    """How much nearer to A than to B the faces are: mean d(B) − d(A), > 0 means A-like.

    A briefly trained decoder draws a soft face that is far from everyone, so both distances
    grow with the blur; their difference still says which person the face resembles. The
    controls below compare the two decoders on the same crops, which have the same blur.
    """
    return _distance(descriptors, identities["b"]) - _distance(descriptors, identities["a"])


def _swapped(swapper: FrameSwapper, images, records) -> dict[int, np.ndarray]:
    return {i: swapper.swap(images[i], records[i].faces) for i in sorted(records)}


# ------------------------------------------------------------------------------ training
def _reconstruction_l1(model, images, records, side: str) -> float:
    errors = []
    for i in sorted(records):
        face = records[i].faces[0]
        x = crop(images[i], model_matrix(face, model.coverage, model.input_size), model.input_size)
        target = crop(images[i], model_matrix(face, model.coverage, model.output_size),
                      model.output_size)
        out, _ = model.infer([x], side)
        errors.append(np.abs(out[0].astype(np.float32) - target).mean())
    return float(np.mean(errors))


def test_training_routes_each_person_to_their_own_decoder(model, clip_a: Clip, frames_b):
    """Decoder a redraws A's faces better than decoder b does, and the other way round."""
    a = {side: _reconstruction_l1(model, clip_a.images, clip_a.records, side) for side in "ab"}
    b = {side: _reconstruction_l1(model, *frames_b, side) for side in "ab"}
    assert a["a"] < 0.85 * a["b"], a
    assert b["b"] < 0.85 * b["a"], b


# ------------------------------------------------------------------------------ direction
def test_swap_moves_identity_from_a_to_b(model, clip_a: Clip, identities):
    """On A's frames the swap leans toward B: much more than A's own reconstruction does."""
    images, records = clip_a.images, clip_a.records
    source = _descriptors(images, records)
    swapped = _descriptors(_swapped(FrameSwapper(model, SwapOptions()), images, records), records)
    own = _descriptors(_swapped(FrameSwapper(model, SwapOptions(swap_model=True)), images, records),
                       records)
    assert _lean(swapped, identities) < _lean(source, identities) - 0.15
    assert _lean(swapped, identities) < _lean(own, identities) - 0.08
    assert _distance(swapped, identities["b"]) < _distance(own, identities["b"]) - 0.05


def test_swap_model_reverses_the_direction(model, frames_b, identities):
    """``--swap-model`` on B's frames draws A: the faces lean toward A, not B."""
    images, records = frames_b
    source = _descriptors(images, records)
    reversed_ = _descriptors(
        _swapped(FrameSwapper(model, SwapOptions(swap_model=True)), images, records), records)
    own = _descriptors(_swapped(FrameSwapper(model, SwapOptions()), images, records), records)
    assert _lean(reversed_, identities) > _lean(source, identities) + 0.15
    assert _lean(reversed_, identities) > _lean(own, identities) + 0.08
    assert _distance(reversed_, identities["a"]) < _distance(source, identities["a"]) - 0.03


# ------------------------------------------------------------------------------ convert
def _convert(clip: Clip, model_dir: Path, out: Path, *options: str) -> dict[int, np.ndarray]:
    assert main(["convert", str(clip.video), "-m", str(model_dir), "--alignments",
                 str(clip.store), "-o", str(out), "-q", *options]) == 0
    return {int(p.stem.rsplit("_", 1)[1]): read_image(p) for p in sorted(out.glob("*.png"))}


@pytest.fixture(scope="module")
def converted(clip_a: Clip, trained: Path, tmp_path_factory) -> dict[int, np.ndarray]:
    """What ``swapface convert`` writes for the clip (PNG frames, default settings)."""
    return _convert(clip_a, trained, tmp_path_factory.mktemp("converted") / "frames")


def test_convert_moves_identity_toward_b(clip_a: Clip, trained: Path, converted, identities,
                                         tmp_path):
    assert set(converted) == set(clip_a.images)
    source = _descriptors(clip_a.images, clip_a.records)
    swapped = _descriptors(converted, clip_a.records)
    own = _descriptors(_convert(clip_a, trained, tmp_path / "own", "--swap-model"), clip_a.records)
    assert _lean(swapped, identities) < _lean(source, identities) - 0.15
    assert _lean(swapped, identities) < _lean(own, identities) - 0.08


def test_frame_swapper_on_one_frame_equals_what_convert_wrote(model, clip_a: Clip, converted):
    """The engine alone, fed the store's faces smoothed as convert smooths them."""
    with AlignmentsStore(clip_a.store, readonly=True) as store:
        frames = list(store.frames())
    smoother = Centred(window=5)
    smoothed = [f for frame in frames for f in smoother.push(frame)] + smoother.flush()
    swapper = FrameSwapper(model, SwapOptions())
    checked = 0
    for frame in smoothed:
        if frame.index not in (3, 12, 20) or not frame.faces:
            continue
        mine = swapper.swap(clip_a.images[frame.index], frame.faces)
        diff = np.abs(mine.astype(np.int16) - converted[frame.index]).max()
        assert diff <= 1, f"frame {frame.index}: {diff} grey levels apart"
        assert not np.array_equal(mine, clip_a.images[frame.index])
        checked += 1
    assert checked == 3


def _halves(still: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    return still[:, :width], still[:, width + 8:]  # source | 8 px gap | swapped


def test_preview_frame_is_the_frame_convert_writes(clip_a: Clip, trained: Path, converted,
                                                   tmp_path, capsys):
    still = tmp_path / "still.png"
    assert main(["convert", str(clip_a.video), "-m", str(trained), "--alignments",
                 str(clip_a.store), "--preview-frame", "12", "-o", str(still)]) == 0
    assert "1 swapped (store)" in capsys.readouterr().err
    left, right = _halves(read_image(still), clip_a.images[12].shape[1])
    assert np.array_equal(left, clip_a.images[12])
    assert np.abs(right.astype(np.int16) - converted[12]).max() <= 1
    assert read_metadata(still)["synthetic"] is True
    # no store: the faces are found on the fly; an existing still is not replaced
    assert main(["convert", str(clip_a.video), "-m", str(trained), "--alignments",
                 str(tmp_path / "none.db"), "--preview-frame", "12", "-o", str(still)]) == 2
    assert main(["convert", str(clip_a.video), "-m", str(trained), "--alignments",
                 str(tmp_path / "none.db"), "--preview-frame", "12", "-o", str(still),
                 "--overwrite"]) == 0
    assert "1 swapped (detected)" in capsys.readouterr().err
    _, right = _halves(read_image(still), clip_a.images[12].shape[1])
    assert np.abs(right.astype(np.int16) - converted[12]).mean() < 1.0  # same face, own landmarks
    assert main(["convert", str(clip_a.video), "-m", str(trained), "--preview-frame", "999",
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "has no frame 999" in capsys.readouterr().err


# ------------------------------------------------------------------------------ README
def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- example: swap one photo -->\s*```python\n(.*?)```", text, re.S)
    assert found, "README lost its Python example"
    return found.group(1)


def test_readme_python_example_swaps_a_photo(clip_a: Clip, trained: Path, identities, tmp_path,
                                             monkeypatch):
    index = sorted(clip_a.records)[5]
    photo = clip_a.images[index]
    from swapface.core.images import write_image

    write_image(tmp_path / "photo.jpg", photo)
    (tmp_path / "model").symlink_to(trained, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_example(), "README.md", "exec"), {})
    swapped = read_image(tmp_path / "swapped.png")
    assert swapped.shape == photo.shape
    record = {index: clip_a.records[index]}
    before = _descriptors({index: read_image(tmp_path / "photo.jpg")}, record)
    after = _descriptors({index: swapped}, record)
    assert _lean(after, identities) < _lean(before, identities) - 0.15


def test_swap_is_deterministic_and_leaves_its_input_alone(model, clip_a: Clip):
    index = sorted(clip_a.records)[0]
    image = clip_a.images[index]
    original = image.copy()
    faces = copy.deepcopy(clip_a.records[index].faces)
    swapper = FrameSwapper(model, SwapOptions(color="color-transfer", sharpen="unsharp"))
    first, second = swapper.swap(image, faces), swapper.swap(image, faces)
    assert np.array_equal(first, second) and np.array_equal(image, original)
    assert not np.array_equal(first, image)
    assert swapper.swap(image, []) is image


def test_sigterm_during_convert_exits_130_and_leaves_no_partial_files(pair: Pair, trained: Path,
                                                                      tmp_path: Path):
    """A web job or a service manager stops convert with SIGTERM: nothing half-written stays."""
    import signal
    import subprocess
    import sys
    import time

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "swapface.cli.main", "convert", str(pair.a.video), "-m",
         str(trained), "--alignments", str(pair.a.store), "-o", str(out_dir / "swapped.mp4")],
        stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out_dir.glob(".*.part*")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "convert ended before it could be stopped"
    time.sleep(0.5)  # some frames encoded
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list(out_dir.iterdir()) == [], "partial output left behind"
    assert "Traceback" not in err


def test_preview_honours_the_identity_filter_like_convert(clip_a: Clip, trained: Path, tmp_path,
                                                          capsys):
    """--nfilter with a photo of the source person: convert would skip her, so must preview."""
    from swapface.core.images import write_image

    reference = tmp_path / "her.jpg"
    write_image(reference, clip_a.images[sorted(clip_a.records)[0]])
    still = tmp_path / "still.png"
    assert main(["convert", str(clip_a.video), "-m", str(trained), "--alignments",
                 str(clip_a.store), "--preview-frame", "12", "-o", str(still),
                 "--nfilter", str(reference)]) == 0
    assert "0 swapped (store)" in capsys.readouterr().err
    left, right = _halves(read_image(still), clip_a.images[12].shape[1])
    assert np.array_equal(left, right)
