"""Image reading/writing that survives real-world files.

Reading normalises every image to 8-bit, 3-channel BGR: grayscale is expanded, alpha is
dropped, 16-bit and float images are rescaled, EXIF orientation is applied. Paths with
spaces or unicode work because bytes go through NumPy, not OpenCV's path handling.
Writing embeds JSON metadata (PNG ``iTXt`` chunk, JPEG comment segment) and is atomic.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from swapface.core.fileio import atomic_write_bytes

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm", ".pbm"}
)
META_KEY = "swapface"
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
# Largest image decoded (width × height): 3× an 8K frame. A file that claims more (a
# 30 000² PNG header is 40 bytes and would decode to 2.7 GB) is refused from its header.
MAX_PIXELS = 100_000_000


class ImageReadError(Exception):
    """The file could not be decoded as an image."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image → contiguous uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, BMP, GIF, WebP, TIFF or PNM file,
    without decoding it; None for a format or header this does not know."""
    try:
        if data.startswith(_PNG_SIG) and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456":
            fields = re.split(rb"\s+", re.sub(rb"#[^\n]*", b"", data[2:200]).strip())
            return int(fields[0]), int(fields[1])
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X":
        return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for i in range(min(count, 512)):
        tag, kind, _, value = struct.unpack(order + "HHI4s", data[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            fmt = "H" if kind == 3 else "I"
            found[tag] = struct.unpack(order + fmt, value[: struct.calcsize(fmt)])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def check_pixels(width: int, height: int, what: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageReadError` for a picture larger than ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageReadError(
            f"{what}: {width}×{height} is {width * height / 1e6:.0f} megapixels, above the "
            f"{max_pixels / 1e6:.0f} MP limit (downscale it first)")


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 BGR; raises :class:`ImageReadError` with the reason
    (also for a file whose header claims more than ``max_pixels``: checked before decoding)."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    size = header_size(data[: 1 << 20].tobytes())  # JPEG: the frame header follows EXIF/ICC
    if size is not None:
        check_pixels(*size, str(path), max_pixels)
    # COLOR applies EXIF orientation; ANYDEPTH keeps 16-bit so we can rescale it ourselves.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ImageReadError(f"{path}: not a decodable image (corrupt or unsupported format)")
    return to_bgr8(image)


# ---------------------------------------------------------------- metadata embedding


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with_meta(png: bytes, meta: dict[str, Any]) -> bytes:
    text = json.dumps(meta, separators=(",", ":")).encode("utf-8")
    # iTXt: keyword, NUL, compression flag, method, language NUL, translated keyword NUL, text
    payload = META_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text
    iend = png.rfind(b"IEND") - 4
    return png[:iend] + _png_chunk(b"iTXt", payload) + png[iend:]


def _jpg_with_meta(jpg: bytes, meta: dict[str, Any]) -> bytes:
    text = (META_KEY + ":" + json.dumps(meta, separators=(",", ":"))).encode("utf-8")
    if len(text) > 65533:
        raise ValueError("metadata too large for a JPEG comment segment")
    return jpg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpg[2:]


def encode_image(image: np.ndarray, ext: str, meta: dict[str, Any] | None = None,
                 jpg_quality: int = 95) -> bytes:
    """Encode to PNG/JPEG bytes, with ``meta`` embedded as JSON when given."""
    ext = ext.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpg_quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise ValueError(f"cannot encode image as {ext}")
    data = buf.tobytes()
    if meta is None:
        return data
    if ext == ".png":
        return _png_with_meta(data, meta)
    if ext in (".jpg", ".jpeg"):
        return _jpg_with_meta(data, meta)
    raise ValueError(f"metadata embedding supports .png and .jpg, not {ext}")


def write_image(path: str | Path, image: np.ndarray, meta: dict[str, Any] | None = None) -> None:
    """Atomically write an image (format from the suffix), embedding ``meta`` if given."""
    path = Path(path)
    atomic_write_bytes(path, encode_image(image, path.suffix, meta))


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The JSON metadata swapface embedded in a PNG/JPEG, or None. Never decodes pixels.

    A damaged or foreign chunk (truncated, not UTF-8, not JSON, not an object) counts as no
    metadata; only an unreadable file raises (``OSError``).
    """
    data = Path(path).read_bytes()
    try:
        found = _png_metadata(data) if data.startswith(_PNG_SIG) else (
            _jpg_metadata(data) if data.startswith(b"\xff\xd8") else None)
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError):
        return None  # json.JSONDecodeError is a ValueError
    return found if isinstance(found, dict) else None


def _png_metadata(data: bytes) -> Any:
    pos = len(_PNG_SIG)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"iTXt" and body.startswith(META_KEY.encode() + b"\x00"):
            keyword_end = len(META_KEY) + 1
            rest = body[keyword_end + 2 :]  # skip compression flag + method
            rest = rest[rest.index(b"\x00") + 1 :]  # language tag
            rest = rest[rest.index(b"\x00") + 1 :]  # translated keyword
            return json.loads(rest.decode("utf-8"))
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def _jpg_metadata(data: bytes) -> Any:
    marker = b"\xff\xfe"
    prefix = (META_KEY + ":").encode()
    idx = data.find(marker, 2)
    while idx != -1:
        (length,) = struct.unpack(">H", data[idx + 2 : idx + 4])
        body = data[idx + 4 : idx + 2 + length]
        if body.startswith(prefix):
            return json.loads(body[len(prefix) :].decode("utf-8"))
        idx = data.find(marker, idx + 2 + max(length, 2))
    return None
