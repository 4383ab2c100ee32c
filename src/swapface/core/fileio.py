"""Atomic writes: a crash or Ctrl-C leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs should get the permissions any new file would.
_FILE_MODE = 0o666 & ~_umask()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _temp_prefix(target: Path) -> str:
    # Host and PID in the name tell a leftover of a killed writer from a live one.
    return f".{target.stem}.{socket.gethostname()}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def sweep_partials(folder: str | os.PathLike[str], suffix: str = ".part") -> list[Path]:
    """Remove temp files that writers killed by SIGKILL or a power cut left in ``folder``
    (names ``.<stem>.<host>-<pid>.<random><suffix>`` whose process on this host is gone);
    temp files of live writers, and of other hosts sharing the folder, stay."""
    removed = []
    host = socket.gethostname()
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    marker = f".{host}-"
    for path in entries:
        name = path.name
        at = name.find(marker)
        if not name.startswith(".") or suffix not in name or at < 0:
            continue
        match = re.match(r"(\d+)\.", name[at + len(marker):])
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None,
                durable: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it over the target on success.

    The temp file keeps the target's suffix (or ``suffix``) so writers that pick the format
    from the extension (OpenCV, PyAV) still work. ``durable`` (videos, GIFs: minutes of
    work) also syncs the file before the rename and the folder after it, so a power cut
    leaves the old file or the complete new one. On any exception, Ctrl-C and a SIGTERM
    turned into a cancel included, the temp file is removed; what a SIGKILL leaves of a
    durable write is swept by the next durable write into that folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if durable:
        sweep_partials(target.parent)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=_temp_prefix(target), suffix=suffix or target.suffix + ".part"
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # a replaced file keeps its mode; a new one gets the umask's
            mode = target.stat().st_mode & 0o7777 if target.exists() else _FILE_MODE
            os.chmod(tmp_path, mode)
            if durable:
                _fsync_file(tmp_path)
        os.replace(tmp_path, target)
        if durable:
            fsync_dir(target.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def is_writable_dir(path: Path) -> bool:
    """True when files can be created in ``path`` (or in its nearest existing parent).

    A folder with no write bit at all counts as read-only even for root, who could write
    there anyway: such a folder (a shared dataset) was made read-only on purpose.
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return (
        probe.is_dir()
        and os.access(probe, os.W_OK | os.X_OK)
        and bool(probe.stat().st_mode & 0o222)
    )


def natural_key(name: str) -> list[object]:
    """'frame2' < 'frame10' — the order people number frames in."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def is_safe_name(name: object) -> bool:
    """A name from a file someone else may have written (a store, a JSON import, a log) that
    can only ever mean a path *below* a folder: relative, ``/``-separated, no ``..``/``.``
    or empty parts, no backslash or NUL."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        return False
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def contained(root: str | os.PathLike[str], name: object) -> Path | None:
    """``root / name`` when ``name`` is safe and the path, links resolved, stays below
    ``root``; None otherwise. Check at every use, not only on import."""
    if not is_safe_name(name):
        return None
    base = Path(root)
    path = base / str(name)
    resolved, top = path.resolve(), base.resolve()
    return path if resolved != top and resolved.is_relative_to(top) else None
