"""Uploads: streamed to a temporary file inside the workspace, size-limited while they
arrive, and checked for what they claim to be (a decodable video, an image of sane size)
before anything keeps them."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException, UploadFile

from swapface.core.errors import InputError
from swapface.core.images import IMAGE_EXTENSIONS, check_pixels, header_size
from swapface.media.video import VIDEO_EXTENSIONS
from swapface.project.project import check_name

if TYPE_CHECKING:
    from swapface.ui.app import UiState

UPLOAD_DIR = ".uploads"
_CHUNK = 1 << 20


def _kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in VIDEO_EXTENSIONS and suffix != ".gif":
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "photo"
    return "other"


def _check_content(path: Path, kind: str, max_pixels: int) -> None:
    if kind == "photo":
        with open(path, "rb") as fh:
            size = header_size(fh.read(1 << 16))
        if size is None:
            raise HTTPException(415, f"{path.name.split('_', 1)[-1]} is not a readable image")
        try:
            check_pixels(size[0], size[1], "upload", max_pixels)
        except Exception as exc:
            raise HTTPException(413, str(exc)) from None
        return
    from swapface.media.source import open_source

    try:
        source = open_source(path)
        frame = source.read(0)
    except (InputError, OSError, ValueError) as exc:
        raise HTTPException(415, f"not a readable video: {exc}") from None
    if frame is None:
        raise HTTPException(415, "the video has no readable frame")
    h, w = frame.image.shape[:2]
    if w * h > max_pixels:
        raise HTTPException(413, f"video frames of {w}×{h} are over the pixel limit")


@contextlib.contextmanager
def receive_upload(ui: UiState, file: UploadFile, kinds: tuple[str, ...]) -> Iterator[Path]:
    """The upload as a checked temporary file (named like the upload); removed afterwards."""
    name = check_name(file.filename or "", "upload")
    kind = _kind_of(name)
    if kind not in kinds:
        wanted = " or ".join({"video": "a video", "photo": "an image"}[k] for k in kinds)
        raise HTTPException(415, f"{name}: expected {wanted} (by its extension)")
    folder = ui.workspace / UPLOAD_DIR
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{secrets.token_hex(8)}_{name}"
    limit = ui.limits.upload_bytes
    try:
        written = 0
        with open(tmp, "wb") as out:
            while chunk := file.file.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise HTTPException(413, f"{name} is larger than the upload limit "
                                             f"({limit // (1 << 20)} MB)")
                out.write(chunk)
        _check_content(tmp, kind, ui.limits.upload_pixels)
        final = folder / f"{tmp.name}.d" / name  # the project copies it under its own name
        final.parent.mkdir()
        os.replace(tmp, final)
        try:
            yield final
        finally:
            final.unlink(missing_ok=True)
            final.parent.rmdir()
    finally:
        tmp.unlink(missing_ok=True)
