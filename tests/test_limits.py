"""Size and memory limits (issue 13 #9): headers read before decoding, budgets by RAM."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from swapface.align.masks import StoredMask
from swapface.core import runtime
from swapface.core.images import ImageReadError, header_size, read_image
from swapface.extract import run as extract_run
from tests.extract_helpers import extract


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header that claims ``width``×``height`` with almost no data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".pgm"])
def test_header_size_matches_the_decoded_image(data_dir, ext):
    image = cv2.imread(str(data_dir / "stills" / "obama.jpg"))[:301, :457]
    if ext == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    assert header_size(buf.tobytes()) == (457, 301)


def test_a_bomb_header_is_refused_before_decoding(tmp_path, data_dir, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30_000, 30_000))
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a))
    with pytest.raises(ImageReadError, match="30000×30000 is 900 megapixels"):
        read_image(path)
    assert decoded == []


def test_extract_reports_a_bomb_and_goes_on(tmp_path, data_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(bomb_png(30_000, 30_000))
    (folder / "obama.jpg").write_bytes((data_dir / "stills" / "obama.jpg").read_bytes())
    summary, frames = extract(folder, tmp_path / "out", size=64)
    assert [f.name for f in frames] == ["obama.jpg"] and frames[0].faces
    assert any("bomb.png" in p and "megapixels" in p for p in summary.problems)


def test_a_stored_mask_that_is_not_a_mask_is_refused():
    big = StoredMask("extended", np.eye(2, 3), bomb_png(20_000, 20_000))
    with pytest.raises(ValueError, match="not a mask PNG"):
        big.decode()
    _, buf = cv2.imencode(".png", np.zeros((128, 128), np.uint8))
    assert StoredMask("extended", np.eye(2, 3), buf.tobytes()).decode().shape == (128, 128)


def test_extract_chunks_shrink_with_frame_size_and_ram(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 24 * 1024**3)
    frame_480p, frame_4k = 480 * 854 * 3, 3840 * 2160 * 3
    assert extract_run.chunk_size(frame_480p, 2) == extract_run.CHUNK
    # 4K on 8 cores: 16 tasks in flight must fit 2 GiB, not 9.5 GB.
    size = extract_run.chunk_size(frame_4k, 8)
    assert 1 <= size < extract_run.CHUNK and 16 * size * frame_4k <= 2 * 1024**3
    monkeypatch.setattr(runtime, "available_memory", lambda: 1024**3)  # a small machine
    assert extract_run.chunk_size(frame_4k, 8) == 1  # never fewer than one frame per task


def test_training_cache_follows_the_ram(pair, monkeypatch):
    from swapface.train import data

    full = data.FaceSet(pair.b.faces)
    assert full.cache_all
    monkeypatch.setattr(data, "memory_budget", lambda *a: 10 * 128 * 128 * 6)
    small = data.FaceSet(pair.b.faces)
    assert not small.cache_all and small.cache_limit == 10
    for i in range(len(small.items)):
        small.load(i)
    assert len(small._cache) == 10
    np.testing.assert_array_equal(small.load(len(small.items) - 1), full.load(len(full.items) - 1))


def test_memory_budget_is_bounded(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 100 * 1024**3)
    assert runtime.memory_budget(0.25, 2 * 1024**3) == 2 * 1024**3
    monkeypatch.setattr(runtime, "available_memory", lambda: 0)
    assert runtime.memory_budget(0.25, 2 * 1024**3) == 64 * 1024**2
    monkeypatch.undo()
    assert 0 < runtime.available_memory() < 2**50
