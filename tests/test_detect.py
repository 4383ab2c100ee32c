"""``swapface detect`` on real media: faces, people and hands where they are, nothing on the
negatives, drawn outputs and JSON; YOLO decoding and NMS through a model the test builds.

Hands in the test media (MediaPipe, checked by eye): 2009_004587.jpg (a hand on a hip, a
fist on a head), 2008_001009.jpg (hands on a shoulder), two_people.jpg and obama.jpg
(crossed arms), small_faces_with_audio.mp4 (gestures, frames ~60-260). The four portrait
clips show no hands.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from swapface.cli.main import main
from swapface.core.images import read_image, write_image
from swapface.media.video import iter_video, probe_video
from swapface.objects import OBJECT_DETECTORS
from swapface.objects.draw import colour_for
from tests.extract_helpers import cut_clip


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": error:" in line]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def _objects(doc: dict, label: str, frame: int = 0) -> list[dict]:
    return [o for o in doc["frames"][frame]["objects"] if o["class"] == label]


def _inside(inner: list[float], outer: list[float], slack: float = 0.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def _edge_colour(image: np.ndarray, box: list[float]) -> np.ndarray:
    """Mean colour along the middle of a box's left edge (where the outline is drawn)."""
    l, t, _, b = (round(v) for v in box)
    return image[round(t + 0.3 * (b - t)):round(t + 0.7 * (b - t)), max(l, 0)].mean(axis=0)


# ---------------------------------------------------------------------- built-in classes
def test_two_people_faces_and_persons_drawn_with_json(data_dir, tmp_path):
    still = data_dir / "stills" / "two_people.jpg"
    out = tmp_path / "two.png"
    assert main(["detect", str(still), "-o", str(out), "-q"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    faces, persons = _objects(doc, "face"), _objects(doc, "person")
    assert len(faces) == 2 and len(persons) == 2, doc["counts"]
    width = doc["frames"][0]["width"]
    assert (doc["frames"][0]["width"], doc["frames"][0]["height"]) == (1126, 661)
    # Obama stands left, Biden right: one face in each half, each inside its own person.
    faces.sort(key=lambda o: o["box"][0])
    persons.sort(key=lambda o: o["box"][0])
    assert faces[0]["box"][2] < width / 2 < faces[1]["box"][0]
    for face, person in zip(faces, persons, strict=True):
        assert _inside(face["box"], person["box"], slack=5)
        assert 80 < face["box"][2] - face["box"][0] < 300  # a head, not a torso
        assert person["box"][3] - person["box"][1] > 500  # head to the bottom edge
    drawn, source = read_image(out), read_image(still)
    assert drawn.shape == source.shape
    for obj in faces + persons:
        edge = _edge_colour(drawn, obj["box"])
        assert np.abs(edge - colour_for(obj["class"])).max() < 40, (obj, edge)
        assert np.abs(_edge_colour(source, obj["box"]) - colour_for(obj["class"])).max() > 40


def test_video_gets_a_video_with_boxes_audio_and_json_per_frame(data_dir, tmp_path):
    clip = cut_clip(data_dir / "video" / "small_faces_with_audio.mp4", tmp_path / "clip.mp4", 5,
                    audio=True)
    out = tmp_path / "boxes.mp4"
    assert main(["detect", str(clip), "-o", str(out), "--classes", "person,face", "-q"]) == 0
    info = probe_video(out)
    assert info.frame_count == 5 and info.has_audio and (info.width, info.height) == (640, 360)
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [f["index"] for f in doc["frames"]] == list(range(5)) and doc["fps"] == pytest.approx(29.97, 0.01)
    assert all(f["time"] is not None for f in doc["frames"])
    drawn = dict((i, image) for i, _, image in iter_video(out))
    source = dict((i, image) for i, _, image in iter_video(clip))
    for frame in doc["frames"]:
        persons = [o for o in frame["objects"] if o["class"] == "person"]
        assert persons, f"the singer is in frame {frame['index']}"
        box = persons[0]["box"]
        image, original = drawn[frame["index"]], source[frame["index"]]
        # The outline is there in the video, and the picture away from the boxes is the input's.
        assert np.abs(_edge_colour(image, box) - colour_for("person")).max() < 50
        away = np.ones(image.shape[:2], bool)
        for obj in frame["objects"]:
            l, t, r, b = (round(v) for v in obj["box"])
            away[max(t - 30, 0):b + 8, max(l - 8, 0):r + 8] = False  # box, label above it
        assert away.mean() > 0.2
        assert np.abs(image.astype(int) - original)[away].mean() < 3


def test_hands_found_on_real_photos_with_landmarks(data_dir):
    hands = OBJECT_DETECTORS.create("hands")
    try:
        found = hands.detect(read_image(data_dir / "stills" / "dlib_faces" / "2009_004587.jpg"))
        shoulders = hands.detect(read_image(data_dir / "stills" / "dlib_faces" / "2008_001009.jpg"))
    finally:
        hands.close()
    assert len(found) == 2 and shoulders
    found.sort(key=lambda d: d.box[1])
    # The fist on the woman's head (upper middle) and the man's hand on his hip (lower left).
    assert _inside([235, 210, 275, 242], list(found[0].box), slack=8)
    assert _inside([40, 420, 135, 485], list(found[1].box), slack=10)
    for det in found + shoulders:
        assert det.label == "hand" and 0.5 <= det.score <= 1.0
        assert det.landmarks.shape == (21, 2) and _inside(
            list(det.landmarks.min(0)) + list(det.landmarks.max(0)), list(det.box))


def test_people_found_one_pass_each(data_dir):
    pose = OBJECT_DETECTORS.create("pose")
    try:
        group = pose.detect(read_image(data_dir / "stills" / "dlib_faces" / "2008_004176.jpg"))
        one = pose.detect(read_image(data_dir / "stills" / "obama.jpg"))
    finally:
        pose.close()
    assert len(group) >= 3 and len(one) == 1
    boxes = np.array([d.box for d in group])
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    assert np.ptp(centres) > 150, "different people across the group, not one found again"


def test_negatives_folder_has_no_hands_people_or_faces(data_dir, tmp_path):
    out = tmp_path / "drawn"
    assert main(["detect", str(data_dir / "negatives"), "-o", str(out), "-q"]) == 0
    doc = json.loads((out / "detections.json").read_text())
    assert len(doc["frames"]) == 6 and doc["counts"] == {}
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(
        p.stem for p in (data_dir / "negatives").iterdir())


@pytest.mark.skipif(not OBJECT_DETECTORS.is_available("hog"),
                    reason="OpenCV 5 has no built-in HOG people detector (cv2.HOGDescriptor)")
def test_hog_people_on_a_standing_group(data_dir):
    hog = OBJECT_DETECTORS.create("hog")
    assert len(hog.detect(read_image(data_dir / "stills" / "dlib_faces" / "2008_004176.jpg"))) >= 1
    assert not hog.detect(read_image(data_dir / "negatives" / "coffee.png"))


def test_a_stream_source_runs_until_max_frames(data_dir, tmp_path, monkeypatch):
    """A camera stand-in: a StreamSource (no length, no audio, no usable clock)."""
    from swapface.media.source import StreamSource
    from swapface.objects import run as detect_run
    from swapface.objects.config import DetectConfig

    clip = cut_clip(data_dir / "video" / "woman_a.mp4", tmp_path / "cam.mp4", 6)
    monkeypatch.setattr(detect_run, "open_source", lambda _: StreamSource(str(clip), name="cam"))
    cfg = DetectConfig(source="0", output=tmp_path / "cam_boxes.mp4", classes="face", max_frames=3)
    summary = detect_run.run_detect(cfg)
    assert summary.frames == 3 and summary.counts == {"face": 3}
    info = probe_video(tmp_path / "cam_boxes.mp4")
    assert info.frame_count == 3 and not info.has_audio


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("args", "expected"), [
    (["missing.jpg", "-o", "x.png"], "input not found"),
    (["-o", "x.png"], "either INPUT"),
    (["STILL", "-o", "x.png", "--classes", "hand,dog"], "unknown class(es) dog"),
    (["VIDEO", "-o", "x.png"], "drawn into a video"),
    (["STILL", "-o", "x.png", "--model", "none.onnx"], "YOLO model not found"),
])
def test_bad_detect_inputs_give_one_line_and_exit_2(data_dir, tmp_path, monkeypatch, capsys,
                                                    args, expected):
    monkeypatch.chdir(tmp_path)
    media = {"STILL": str(data_dir / "stills" / "obama.jpg"),
             "VIDEO": str(data_dir / "video" / "man_b.mp4")}
    assert main(["detect", *[media.get(a, a) for a in args], "-q"]) == 2
    assert expected in _one_error_line(capsys)
    assert not (tmp_path / "x.png").exists()


def test_existing_output_needs_overwrite(data_dir, tmp_path, capsys):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep")
    still = str(data_dir / "negatives" / "coffee.png")
    assert main(["detect", still, "-o", str(out), "--classes", "hand", "-q"]) == 2
    assert "--overwrite" in _one_error_line(capsys) and out.read_bytes() == b"keep"
    assert main(["detect", still, "-o", str(out), "--classes", "hand", "--overwrite", "-q"]) == 0


# ---------------------------------------------------------------------- YOLO
# Candidates in model-input pixels (320 × 320): cx, cy, w, h, objectness, class probabilities
# (cat, dog, car). Kept: A, A's dog, the car, the car's neighbour and the clipped dog;
# dropped: the near-duplicates of A and of the car (NMS within a class) and two faint boxes.
CANDIDATES = np.array([
    [100, 120, 80, 60, 0.9, 0.90, 0.05, 0.05],   # A: cat 0.81
    [104, 122, 80, 60, 0.8, 0.85, 0.10, 0.05],   # A again: cat 0.68, IoU 0.85 with A → dropped
    [102, 120, 80, 60, 0.9, 0.10, 0.80, 0.10],   # a dog where A is: other class → kept (0.72)
    [250, 200, 60, 100, 0.95, 0.0, 0.0, 1.0],    # car 0.95
    [290, 200, 60, 100, 0.7, 0.0, 0.0, 1.0],     # car 0.7, IoU 0.2 with the car → kept
    [200, 80, 40, 40, 0.2, 0.5, 0.25, 0.25],     # cat 0.1 → below the threshold
    [60, 50, 40, 40, 0.9, 0.0, 1.0, 0.0],        # dog 0.9 reaching into the top padding
    [252, 201, 60, 100, 0.9, 0.0, 0.0, 0.9],     # the car again (0.81) → dropped
    [160, 280, 30, 30, 0.5, 0.2, 0.3, 0.2],      # dog 0.15 → below the threshold
], dtype=np.float32)  # 9 boxes: neither 4 + C nor 5 + C, so "auto" cannot mistake the axes
LABELS = ["cat", "dog", "car"]
# The 640 × 480 image letterboxed into 320 × 320: scale 0.5, 40 px of padding on top, so
# image = (model − (0, 40)) × 2, clipped to the image.
EXPECTED = sorted([
    ("cat", 0.81, [120.0, 100.0, 280.0, 220.0]),
    ("dog", 0.72, [124.0, 100.0, 284.0, 220.0]),
    ("car", 0.95, [440.0, 220.0, 560.0, 420.0]),
    ("car", 0.70, [520.0, 220.0, 640.0, 420.0]),
    ("dog", 0.90, [80.0, 0.0, 160.0, 60.0]),
])


def _yolo_output(layout: str) -> np.ndarray:
    if layout == "v5":
        return CANDIDATES[None]  # [1, N, 5 + C]
    scores = CANDIDATES[:, 5:] * CANDIDATES[:, 4:5]  # v8 has no objectness
    return np.concatenate([CANDIDATES[:, :4], scores], axis=1).T[None]  # [1, 4 + C, N]


def _export_constant_model(output: np.ndarray, path: Path) -> Path:
    """A torch module whose output is always ``output``, exported to ONNX."""
    import torch

    class Constant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("out", torch.from_numpy(output.copy()))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.out + 0.0 * images.mean()  # the image must be an input of the graph

    with pytest.warns(DeprecationWarning):  # the TorchScript exporter: no onnxscript needed
        torch.onnx.export(Constant(), (torch.zeros(1, 3, 320, 320),), str(path), dynamo=False,
                          input_names=["images"], output_names=["output0"])
    return path


@pytest.mark.parametrize("layout", ["v5", "v8"])
def test_yolo_model_boxes_after_letterbox_and_nms(data_dir, tmp_path, layout):
    model = _export_constant_model(_yolo_output(layout), tmp_path / f"yolo_{layout}.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    image = tmp_path / "scene.png"  # a 640 × 480 piece of a real photo
    write_image(image, read_image(data_dir / "stills" / "two_people.jpg")[:480, :640])
    out = tmp_path / "scene_boxes.png"
    assert main(["detect", str(image), "--model", str(model), "--labels", str(labels),
                 "-o", str(out), "-q"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    got = sorted((o["class"], o["score"], o["box"]) for o in doc["frames"][0]["objects"])
    assert [(c, b) for c, _, b in got] == [(c, b) for c, _, b in EXPECTED]
    assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in EXPECTED], abs=1e-4)
    assert doc["detectors"] == ["yolo"] and "face" not in doc["counts"]  # --model alone: YOLO only
    drawn = read_image(out)
    assert np.abs(_edge_colour(drawn, [440.0, 220.0, 560.0, 420.0]) - colour_for("car")).max() < 40


def test_yolo_labels_that_do_not_fit_the_model_are_refused(data_dir, tmp_path, capsys):
    model = _export_constant_model(_yolo_output("v5"), tmp_path / "m.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")  # the model has 3 classes
    still = tmp_path / "s.png"
    shutil.copy(data_dir / "negatives" / "coffee.png", still)
    assert main(["detect", str(still), "--model", str(model), "--labels", str(labels),
                 "-o", str(tmp_path / "o.png"), "-q"]) == 2
    assert "pass --layout" in _one_error_line(capsys)
