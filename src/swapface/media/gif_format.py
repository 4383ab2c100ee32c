"""GIF89a at the block level: adding and reading Comment Extensions.

FFmpeg's GIF muxer writes no metadata, yet a face-swapped GIF must say what it is. The
GIF89a Comment Extension (``0x21 0xFE``) is the format's own place for text: decoders
skip it, and tools (``exiftool``, ``identify -verbose``, Pillow's ``info["comment"]``)
show it. :func:`add_comment` puts one right after the header and colour table, before
any image, so even a reader that stops at the first frame sees it.
"""

from __future__ import annotations

from pathlib import Path

_HEADERS = (b"GIF87a", b"GIF89a")
_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B
_COMMENT = 0xFE


class GifFormatError(ValueError):
    """The bytes are not a GIF this module can walk."""


def _header_end(data: bytes) -> int:
    """Offset just past the logical screen descriptor and global colour table."""
    if len(data) < 13 or data[:6] not in _HEADERS:
        raise GifFormatError("not a GIF file")
    packed = data[10]
    table = 3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0
    return 13 + table


def _skip_sub_blocks(data: bytes, pos: int) -> tuple[int, bytes]:
    """Read data sub-blocks from ``pos``; returns (offset past the terminator, payload)."""
    chunks = []
    while True:
        if pos >= len(data):
            raise GifFormatError("GIF ends inside a block")
        size = data[pos]
        pos += 1
        if size == 0:
            return pos, b"".join(chunks)
        chunks.append(data[pos:pos + size])
        pos += size


def comment_block(text: str) -> bytes:
    """A Comment Extension holding ``text`` (UTF-8; GIF readers treat it as bytes)."""
    payload = text.encode("utf-8")
    blocks = b"".join(
        bytes([len(payload[i:i + 255])]) + payload[i:i + 255] for i in range(0, len(payload), 255)
    )
    return bytes([_EXTENSION, _COMMENT]) + blocks + b"\x00"


def add_comment(data: bytes, text: str) -> bytes:
    """``data`` (a whole GIF) with a Comment Extension holding ``text`` before the images."""
    end = _header_end(data)
    return data[:end] + comment_block(text) + data[end:]


def walk(data: bytes) -> tuple[list[str], int]:
    """(comments, number of images) of a GIF, read block by block without decoding."""
    pos = _header_end(data)
    comments: list[str] = []
    images = 0
    while pos < len(data):
        kind = data[pos]
        if kind == _TRAILER:
            break
        if kind == _EXTENSION:
            if pos + 2 > len(data):
                raise GifFormatError("GIF ends inside an extension")
            label = data[pos + 1]
            pos, payload = _skip_sub_blocks(data, pos + 2)
            if label == _COMMENT:
                comments.append(payload.decode("utf-8", errors="replace"))
        elif kind == _IMAGE:
            if pos + 10 > len(data):
                raise GifFormatError("GIF ends inside an image descriptor")
            packed = data[pos + 9]
            pos += 10 + (3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0)
            pos, _ = _skip_sub_blocks(data, pos + 1)  # + the LZW minimum code size byte
            images += 1
        else:
            raise GifFormatError(f"unknown GIF block 0x{kind:02x} at byte {pos}")
    return comments, images


def read_gif_comment(path: str | Path) -> str | None:
    """The text of a GIF's Comment Extensions (joined by newlines), or None if it has none."""
    comments, _ = walk(Path(path).read_bytes())
    return "\n".join(comments) if comments else None


def metadata_comment(metadata: dict[str, str]) -> str:
    """``{"synthetic_media": "true", ...}`` → ``"synthetic_media=true\\n..."``.

    One ``key=value`` per line: as plain to read for a person as to parse for a program
    (:func:`parse_metadata_comment`), and the same keys as the MP4 tags of a video.
    """
    return "\n".join(f"{key}={' '.join(str(value).split())}" for key, value in metadata.items())


def parse_metadata_comment(text: str | None) -> dict[str, str]:
    """The ``key=value`` lines of a comment as a dict (other lines are ignored)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out
