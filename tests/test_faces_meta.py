"""Face-file metadata (one typed reader for every stage) and live stream sources."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.align.store import AlignmentsStore
from swapface.core.errors import InputError
from swapface.core.images import META_KEY, read_image, write_image
from swapface.faces import FaceFileMeta
from swapface.media.source import StreamSource, VideoFileSource, is_stream, open_source
from tests.conftest import Pair


@pytest.fixture(scope="module")
def face_file(pair: Pair) -> Path:
    return sorted(pair.b.faces.glob("*.png"))[3]


def test_face_files_carry_the_store_fields(pair: Pair, face_file: Path):
    meta = FaceFileMeta.read(face_file)
    assert meta is not None
    with AlignmentsStore(pair.b.store, readonly=True) as store:
        record = next(face for index, _, face in store.faces()
                      if (index, face.face_index) == meta.key)
    assert record.file == face_file.name
    np.testing.assert_allclose(meta.matrix, record.matrix, atol=1e-6)
    np.testing.assert_allclose(meta.landmarks, record.landmarks, atol=1e-3)
    assert (meta.size, meta.face_span) == (record.size, record.face_span)
    # landmarks in face pixels land inside the aligned face, eyes above the mouth
    points = meta.aligned_landmarks()
    assert points.min() > 0 and points.max() < meta.size
    assert points[36:48, 1].mean() < points[48:68, 1].mean()
    data = meta.to_dict()
    assert "matrix" in data and "face_span" in data and "warp_matrix" not in data


def test_old_key_names_are_read_under_the_new_ones(face_file: Path, tmp_path: Path):
    meta = FaceFileMeta.read(face_file)
    old = meta.to_dict()
    old["warp_matrix"], old["coverage"] = old.pop("matrix"), old.pop("face_span")
    path = tmp_path / "old.png"
    write_image(path, read_image(face_file), old)
    legacy = FaceFileMeta.read(path)
    assert legacy is not None and legacy.key == meta.key
    np.testing.assert_array_equal(legacy.matrix, np.asarray(old["warp_matrix"]))
    assert legacy.face_span == meta.face_span


def _with_itxt(png: bytes, text: bytes) -> bytes:
    """A PNG with our metadata chunk holding ``text`` as given (valid CRC, bad content)."""
    payload = META_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text
    chunk = (struct.pack(">I", len(payload)) + b"iTXt" + payload
             + struct.pack(">I", zlib.crc32(b"iTXt" + payload)))
    after_ihdr = 8 + 25
    return png[:after_ihdr] + chunk + png[after_ihdr:]


@pytest.mark.parametrize("damage", ["not json", "not utf-8", "truncated", "nan matrix", "no landmarks",
                                    "array", "bool index"])
def test_damaged_metadata_reads_as_none(face_file: Path, tmp_path: Path, damage: str):
    path = tmp_path / "damaged.png"
    data = FaceFileMeta.read(face_file).to_dict()
    image = read_image(face_file)
    if damage in ("not json", "not utf-8"):
        _, png = cv2.imencode(".png", image)
        text = b'{"frame_index": 3, "landm' if damage == "not json" else b'{"frame": "\xff\xfe"}'
        path.write_bytes(_with_itxt(png.tobytes(), text))
    elif damage == "truncated":
        write_image(path, image, data)
        path.write_bytes(path.read_bytes()[:200])
    else:
        if damage == "nan matrix":
            data["matrix"] = [[float("nan")] * 3] * 2
        elif damage == "no landmarks":
            del data["landmarks"]
        elif damage == "array":
            data = [data]
        else:
            data["face_index"] = True
        write_image(path, image, data)
    assert FaceFileMeta.read(path) is None
    assert FaceFileMeta.read(tmp_path / "missing.png") is None


# ------------------------------------------------------------------------------ streams
def test_stream_source_reads_frames_live_in_order(pair: Pair):
    assert is_stream("rtsp://camera.local/live") and is_stream("0")
    assert not is_stream(str(pair.a.video))
    stream = StreamSource(str(pair.a.video), name="cam")  # PyAV opens a path like a URL
    assert stream.count is None and stream.sequential and stream.kind == "stream"
    live = []
    for frame in stream.frames(every_n=5):
        live.append(frame)
        if len(live) == 4:
            break
    assert [f.index for f in live] == [0, 5, 10, 15]
    assert [f.name for f in live] == ["cam_000000", "cam_000005", "cam_000010", "cam_000015"]
    stored = VideoFileSource.open(pair.a.video)
    for frame in live:
        assert np.array_equal(frame.image, stored.read(frame.index).image)


def test_missing_camera_and_broken_stream_get_one_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="no camera at /dev/video97"):
        open_source("/dev/video97")
    with pytest.raises(InputError, match="cannot open stream"):
        list(StreamSource("tcp://127.0.0.1:9/none", options={"timeout": "200000"}).frames())
