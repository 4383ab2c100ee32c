"""Bad inputs, generated from the real test media: each a ``swapface`` command line that must
end with the right exit code, one clear line and no traceback, and touch nothing outside
its own folder.

A case builds its inputs in its folder (``setup``) and returns the command; ``check`` looks
at what the command left and returns a problem, or None. Exit codes: 0 where the input is
one a tool must cope with (a bad image in a folder is skipped), 1/2 where it must refuse.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.robustness_common import Workspace, snapshot

REFUSE = frozenset({1, 2})
COPE = frozenset({0})
EITHER = frozenset({0, 1, 2})

Setup = Callable[[Workspace, Path], list]
Check = Callable[[Workspace, Path], "str | None"]


@dataclass
class Case:
    name: str
    group: str
    setup: Setup
    expect: frozenset[int] = REFUSE
    check: Check | None = None
    needs_mount: bool = False


# ------------------------------------------------------------------ generated files
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def with_itxt(png: bytes, text: bytes, raw_length: int | None = None) -> bytes:
    """``png`` with its swapface iTXt chunk's text replaced (``raw_length``: a lying
    length field)."""
    pos, out = 8, [png[:8]]
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos:pos + 12 + length]
        if kind == b"iTXt" and png[pos + 8:pos + 17] == b"swapface\0":
            body = b"swapface\x00\x00\x00\x00\x00" + text
            chunk = png_chunk(b"iTXt", body)
            if raw_length is not None:
                chunk = struct.pack(">I", raw_length) + chunk[4:]
        out.append(chunk)
        pos += 12 + length
    return b"".join(out)


def face_image(ws: Workspace) -> np.ndarray:
    return cv2.imread(str(ws.stills / "obama.jpg"))


def canvas_8k(image: np.ndarray) -> np.ndarray:
    """The photo enlarged to 4320 px high (aspect kept) on a 7680×4320 frame."""
    h, w = image.shape[:2]
    big = cv2.resize(image, (round(w * 4320 / h), 4320), interpolation=cv2.INTER_CUBIC)
    frame = np.full((4320, 7680, 3), 90, np.uint8)
    frame[:, : min(7680, big.shape[1])] = big[:, :7680]
    return frame


def folder_with(case: Path, files: dict[str, bytes]) -> Path:
    folder = case / "in"
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def encoded(image: np.ndarray, ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def pil_bytes(image: np.ndarray, fmt: str, mode: str, **save) -> bytes:
    import io

    from PIL import Image

    pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).convert(mode)
    buf = io.BytesIO()
    pil.save(buf, fmt, **save)
    return buf.getvalue()


def exif_rotated(image: np.ndarray) -> bytes:
    """The photo stored turned 90° with EXIF orientation 6 saying how to turn it back."""
    import io

    from PIL import Image

    pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def extract_args(ws: Workspace, case: Path, source: Path, *extra: object) -> list:
    return ["extract", source, "--faces", case / "faces", "--alignments", case / "a.db",
            "--size", "64", "--workers", "1", "-q", *extra]


def stored_frames(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM frames ORDER BY idx")]


def faces_found(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])


def expect_faces(minimum: int) -> Check:
    def check(ws: Workspace, case: Path) -> str | None:
        db = case / "a.db"
        if not db.is_file():
            return "no store written"
        found = faces_found(db)
        return None if found >= minimum else f"{found} faces found, expected ≥ {minimum}"
    return check


# ------------------------------------------------------------------ the cases
def video_cases() -> list[Case]:
    cases = []
    for frac in (0.0, 0.01, 0.03, 0.1, 0.25, 0.4, 0.5, 0.7, 0.9, 0.99):
        def setup(ws: Workspace, case: Path, frac: float = frac) -> list:
            data = ws.clip_a.read_bytes()
            (case / "cut.mp4").write_bytes(data[: int(len(data) * frac)])
            return extract_args(ws, case, case / "cut.mp4", "--every-n", "10")
        cases.append(Case(f"truncated video at {frac:.0%}", "video", setup, EITHER))

    def zero(ws: Workspace, case: Path) -> list:
        (case / "empty.mp4").write_bytes(b"")
        return extract_args(ws, case, case / "empty.mp4")

    def text(ws: Workspace, case: Path) -> list:
        (case / "notes.mp4").write_text("this is not a video\n" * 50)
        return extract_args(ws, case, case / "notes.mp4")

    def info_text(ws: Workspace, case: Path) -> list:
        (case / "notes.mkv").write_text("hello")
        return ["video", "info", case / "notes.mkv"]

    def convert_text(ws: Workspace, case: Path) -> list:
        (case / "notes.mp4").write_text("not a video")
        return ["convert", case / "notes.mp4", "-m", ws.model, "-o", case / "out.mp4", "-q"]

    def no_file(ws: Workspace, case: Path) -> list:
        return extract_args(ws, case, case / "missing.mp4")

    return [*cases, Case("zero-byte video", "video", zero), Case("text as video", "video", text),
            Case("video info on text", "video", info_text),
            Case("convert a text file", "video", convert_text),
            Case("missing input", "video", no_file)]


def image_cases() -> list[Case]:
    def one(name: str, make: Callable[[Workspace], dict[str, bytes]], expect=COPE,
            check: Check | None = None) -> Case:
        def setup(ws: Workspace, case: Path) -> list:
            return extract_args(ws, case, folder_with(case, make(ws)))
        return Case(name, "images", setup, expect, check)

    face = face_image
    cases = [
        one("PNG header claiming 30000×30000", lambda ws: {
            "bomb.png": bomb_png(30_000, 30_000), "obama.jpg": encoded(face(ws), ".jpg")},
            check=expect_faces(1)),
        one("16-bit PNG", lambda ws: {"deep.png": encoded(face(ws).astype(np.uint16) * 257, ".png")},
            check=expect_faces(1)),
        one("CMYK JPEG", lambda ws: {"cmyk.jpg": pil_bytes(face(ws), "JPEG", "CMYK")},
            check=expect_faces(1)),
        one("palette PNG", lambda ws: {"pal.png": pil_bytes(face(ws), "PNG", "P")},
            check=expect_faces(1)),
        one("animated PNG", lambda ws: {"anim.png": pil_bytes(
            face(ws), "PNG", "RGB", save_all=True,
            append_images=[__import__("PIL.Image").Image.new("RGB", face(ws).shape[1::-1])])},
            check=expect_faces(1)),
        one("1×1 image", lambda ws: {"dot.png": encoded(np.zeros((1, 1, 3), np.uint8), ".png")}),
        one("8K frame", lambda ws: {"big.jpg": encoded(canvas_8k(face(ws)), ".jpg")},
            check=expect_faces(1)),
        one("rotated EXIF", lambda ws: {"turned.jpg": exif_rotated(face(ws))}, check=expect_faces(1)),
        one("mixed folder", lambda ws: {
            "a.jpg": encoded(face(ws), ".jpg"), "notes.txt": b"hello", "labels.xml": b"<x/>",
            "empty.jpg": b"", "half.jpg": encoded(face(ws), ".jpg")[:3000],
            "fake.png": b"not a png at all", "png_named.jpg": encoded(face(ws), ".png")},
            check=expect_faces(2)),
        one("grayscale image", lambda ws: {
            "gray.png": encoded(cv2.cvtColor(face(ws), cv2.COLOR_BGR2GRAY), ".png")},
            check=expect_faces(1)),
        one("only unreadable images", lambda ws: {"x.jpg": b"\xff\xd8\xff garbage", "y.png": b""},
            expect=EITHER),
    ]

    def unicode_path(ws: Workspace, case: Path) -> list:
        folder = case / "fäce photos ☺"
        folder.mkdir()
        shutil.copy(ws.stills / "obama.jpg", folder / "ob ama é.jpg")
        return ["extract", folder, "--faces", case / "faces ü", "--alignments", case / "a.db",
                "--size", "64", "--workers", "1", "-q"]

    def readonly_input(ws: Workspace, case: Path) -> list:
        folder = case / "shared"
        folder.mkdir()
        shutil.copy(ws.stills / "obama.jpg", folder / "obama.jpg")
        folder.chmod(0o555)
        return ["extract", folder, "--size", "64", "--workers", "1", "-q"]

    def readonly_input_check(ws: Workspace, case: Path) -> str | None:
        folder = case / "shared"
        folder.chmod(0o755)
        names = sorted(p.name for p in folder.iterdir())
        if names != ["obama.jpg"]:
            return f"read-only input folder changed: {names}"
        written = (case / "shared_swapface" / "alignments.db").is_file()
        return None if written else "outputs not written under the working directory"

    def readonly_output(ws: Workspace, case: Path) -> list:
        out = case / "locked"
        out.mkdir()
        out.chmod(0o555)
        return ["extract", ws.stills / "obama.jpg", "--faces", out / "faces", "--alignments",
                case / "a.db", "--size", "64", "--workers", "1", "-q"]

    return [
        *cases,
        Case("unicode and space paths", "images", unicode_path, COPE, expect_faces(1)),
        Case("read-only input folder", "images", readonly_input, COPE, readonly_input_check),
        Case("read-only output folder", "images", readonly_output, EITHER),
    ]


# ------------------------------------------------------------------ fuzzed documents
def _fuzz_json(doc: object, rng: random.Random, kind: str) -> bytes:
    text = json.dumps(doc)
    if kind == "truncate":
        return text[: rng.randrange(1, len(text))].encode()
    if kind == "bytes":
        data = bytearray(text.encode())
        for _ in range(12):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == "deep":
        return ("[" * 100_000 + "]" * 100_000).encode()
    if kind == "top":
        return json.dumps([doc]).encode()

    replacement = {"types": "text", "nan": float("nan"), "huge": 1e308}.get(kind)

    def walk(node: object) -> object:
        if isinstance(node, dict):
            items = list(node.items())
            if kind == "drop-key" and items and rng.random() < 0.3:
                items.pop(rng.randrange(len(items)))
            return {k: walk(v) for k, v in items}
        if isinstance(node, list):
            return [walk(v) for v in node]
        number = isinstance(node, int | float) and not isinstance(node, bool)
        if number and replacement is not None and rng.random() < 0.2:
            return replacement
        return node
    return json.dumps(walk(doc)).encode()


def alignments_json_cases() -> list[Case]:
    cases = []
    kinds = ("truncate", "bytes", "deep", "top", "drop-key", "types", "nan", "huge")
    for fmt in ("seed", "faceswap"):
        for kind in kinds:
            def setup(ws: Workspace, case: Path, fmt: str = fmt, kind: str = kind) -> list:
                exported = ws.root / f"export_{fmt}.json"
                doc = json.loads(exported.read_text())
                (case / "doc.json").write_bytes(_fuzz_json(doc, random.Random(f"{fmt}{kind}"), kind))
                return ["alignments", "import", case / "doc.json", case / "b.db", "--format", fmt]
            cases.append(Case(f"fuzzed {fmt} JSON ({kind})", "alignments JSON", setup, EITHER,
                              _safe_store_names))
    for name in ("../escape.png", "/etc/passwd", "sub/../../x.png"):
        def crafted(ws: Workspace, case: Path, name: str = name) -> list:
            (case / "doc.json").write_text(json.dumps({name: []}))
            return ["alignments", "import", case / "doc.json", case / "b.db"]
        cases.append(Case(f"import name {name!r}", "names", crafted, REFUSE, _safe_store_names))
    return cases


def _safe_store_names(ws: Workspace, case: Path) -> str | None:
    db = case / "b.db"
    if not db.is_file():
        return None
    try:
        names = stored_frames(db)
    except sqlite3.Error:
        return None
    bad = [n for n in names if "/" in n or "\\" in n or n.startswith(".")]
    return f"unsafe names stored: {bad[:3]}" if bad else None


def face_metadata_cases() -> list[Case]:
    mutations: dict[str, Callable[[dict], tuple[bytes, int | None]]] = {
        "truncated JSON": lambda m: (json.dumps(m).encode()[:40], None),
        "landmarks wrong shape": lambda m: (json.dumps({**m, "landmarks": [[1, 2]] * 5}).encode(), None),
        "frame_index text": lambda m: (json.dumps({**m, "frame_index": "seven"}).encode(), None),
        "NaN matrix": lambda m: (json.dumps({**m, "matrix": [[float("nan")] * 3] * 2}).encode(), None),
        "huge numbers": lambda m: (json.dumps({**m, "size": 10**30, "face_index": 10**30}).encode(), None),
        "not UTF-8": lambda m: (b"\xff\xfe\xfa" * 20, None),
        "chunk length past the end": lambda m: (json.dumps(m).encode(), 2**31),
        "singular matrix": lambda m: (json.dumps({**m, "matrix": [[0, 0, 0], [0, 0, 0]]}).encode(), None),
    }
    cases = []
    for label, mutate in mutations.items():
        for command in ("from-faces", "sort", "rename"):
            def setup(ws: Workspace, case: Path, mutate=mutate, command: str = command) -> list:
                faces = case / "faces"
                faces.mkdir()
                files = sorted(ws.faces_a.glob("*.png"))[:4]
                for f in files:
                    shutil.copy(f, faces / f.name)
                from swapface.core.images import read_metadata

                meta = read_metadata(files[0])
                text, length = mutate(meta)
                (faces / files[0].name).write_bytes(with_itxt(files[0].read_bytes(), text, length))
                if command == "from-faces":
                    return ["alignments", "from-faces", faces, case / "b.db"]
                if command == "sort":
                    return ["sort", faces, "--by", "pitch", "-q"]
                return ["alignments", "rename", faces]
            cases.append(Case(f"face metadata: {label} ({command})", "face metadata", setup, EITHER))
    return cases


# ------------------------------------------------------------------ stores and models
def _store_copy(ws: Workspace, case: Path) -> Path:
    db = case / "a.db"
    with sqlite3.connect(ws.store_a) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    return db


def store_cases() -> list[Case]:
    def edited(sql: str) -> Setup:
        def setup(ws: Workspace, case: Path) -> list:
            db = _store_copy(ws, case)
            with sqlite3.connect(db) as conn:
                conn.executescript(sql)
            return ["alignments", "export", db, case / "out.json"]
        return setup

    def not_sqlite(ws: Workspace, case: Path) -> list:
        (case / "a.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
        return ["alignments", "info", case / "a.db"]

    def other_video(ws: Workspace, case: Path) -> list:
        return ["convert", ws.clip_b, "-m", ws.model, "--alignments", _store_copy(ws, case),
                "-o", case / "out.mp4", "-q"]

    return [
        Case("store with an extra trigger", "stores", edited(
            "CREATE TRIGGER evil AFTER INSERT ON frames BEGIN DELETE FROM faces; END;")),
        Case("store with an extra view", "stores", edited("CREATE VIEW v AS SELECT * FROM faces;")),
        Case("store with malformed blobs", "stores", edited(
            "UPDATE faces SET landmarks = x'0102', matrix = x'00';")),
        Case("store of a newer schema", "stores", edited("UPDATE schema_version SET version = 99;")),
        Case("store that is not SQLite", "stores", not_sqlite),
        Case("store from another video", "stores", other_video),
    ]


def model_cases() -> list[Case]:
    def copy_model(ws: Workspace, case: Path) -> Path:
        model = case / "model"
        shutil.copytree(ws.model, model)
        return model

    def convert(model: Path, ws: Workspace, case: Path) -> list:
        return ["convert", ws.clip_a, "-m", model, "--alignments", ws.store_a,
                "-o", case / "out.mp4", "-q"]

    def other_arch(ws: Workspace, case: Path) -> list:
        model = copy_model(ws, case)
        spec = json.loads((model / "model.json").read_text())
        spec["model"], spec["options"] = "original", {}
        (model / "model.json").write_text(json.dumps(spec))
        return convert(model, ws, case)

    def truncated(ws: Workspace, case: Path) -> list:
        model = copy_model(ws, case)
        for weights in model.rglob("model.safetensors"):
            weights.write_bytes(weights.read_bytes()[:1000])
        return convert(model, ws, case)

    def garbage_json(ws: Workspace, case: Path) -> list:
        model = copy_model(ws, case)
        (model / "model.json").write_text("{not json")
        return convert(model, ws, case)

    def missing(ws: Workspace, case: Path) -> list:
        return convert(case / "no_model", ws, case)

    return [Case("checkpoint from another model", "models", other_arch),
            Case("truncated weights", "models", truncated),
            Case("model.json garbage", "models", garbage_json),
            Case("model folder missing", "models", missing)]


# ------------------------------------------------------------------ names, outputs, options
def _undo_log(ws: Workspace, case: Path, target: str) -> list:
    faces = case / "faces"
    faces.mkdir()
    payload = {"format": 2, "mode": "move", "state": "done", "input": str(faces),
               "renames": [{"old": target, "new": target, "tmp": target}]}
    (faces / "sort_log_x.json").write_text(json.dumps(payload))
    return ["sort", "--undo", faces / "sort_log_x.json"]


def output_cases() -> list[Case]:
    def assemble_over_reference(ws: Workspace, case: Path) -> list:
        frames = case / "frames"
        frames.mkdir()
        for i in range(3):
            cv2.imwrite(str(frames / f"f_{i:06d}.png"), np.full((32, 32, 3), i * 60, np.uint8))
        shutil.copy(ws.clip_a, case / "ref.mp4")
        return ["video", "assemble", frames, case / "ref.mp4", "--reference", case / "ref.mp4",
                "--overwrite", "-q"]

    def ref_intact(ws: Workspace, case: Path) -> str | None:
        same = (case / "ref.mp4").read_bytes() == ws.clip_a.read_bytes()
        return None if same else "the reference video was overwritten"

    def convert_into_photos(ws: Workspace, case: Path) -> list:
        photos = case / "Pictures"
        photos.mkdir()
        shutil.copy(ws.stills / "obama.jpg", photos / "mine.jpg")
        cv2.imwrite(str(photos / "mine.png"), face_image(ws))
        return ["convert", ws.clip_a, "-m", ws.model, "--alignments", ws.store_a,
                "-o", photos, "--overwrite", "-q"]

    def photos_intact(ws: Workspace, case: Path) -> str | None:
        left = {p.name for p in (case / "Pictures").iterdir()}
        return None if {"mine.jpg", "mine.png"} <= left else f"user photos deleted: {left}"

    def bad_config(ws: Workspace, case: Path) -> list:
        (case / "c.toml").write_text("[extract\nsize = = 3")
        return ["extract", ws.stills, "--config", case / "c.toml"]

    def bad_detector(ws: Workspace, case: Path) -> list:
        return extract_args(ws, case, ws.stills, "--detector", "nope")

    def bad_size(ws: Workspace, case: Path) -> list:
        return extract_args(ws, case, ws.stills, "--size", "0")

    def bad_suffix(ws: Workspace, case: Path) -> list:
        return ["convert", ws.clip_a, "-m", ws.model, "--alignments", ws.store_a,
                "-o", case / "out.avi", "-q"]

    def image_suffix(ws: Workspace, case: Path) -> list:
        return ["convert", ws.clip_a, "-m", ws.model, "--alignments", ws.store_a,
                "-o", case / "out.png", "-q"]

    def filter_not_image(ws: Workspace, case: Path) -> list:
        (case / "ref.jpg").write_text("not an image")
        return extract_args(ws, case, ws.stills, "--filter", case / "ref.jpg")

    sentinel_file = "sentinel/holiday.jpg"
    return [
        Case("undo log with ../ paths", "names", lambda ws, case: _undo_log(
            ws, case, "../../../" + sentinel_file), EITHER),
        Case("undo log with absolute paths", "names", lambda ws, case: _undo_log(
            ws, case, str(ws.root / sentinel_file)), EITHER),
        Case("assemble over its own reference", "outputs", assemble_over_reference, REFUSE, ref_intact),
        Case("convert --overwrite into a photo folder", "outputs", convert_into_photos, COPE,
             photos_intact),
        Case("malformed config file", "options", bad_config),
        Case("unknown detector", "options", bad_detector),
        Case("face size 0", "options", bad_size),
        Case("output as .avi (not written)", "options", bad_suffix),
        Case("output named like an image", "options", image_suffix),
        Case("--filter that is not an image", "options", filter_not_image),
    ]


def disk_full_cases() -> list[Case]:
    def extract_full(ws: Workspace, case: Path) -> list:
        return ["extract", ws.clip_a, "--faces", case / "full" / "faces", "--alignments",
                case / "a.db", "--size", "256", "--workers", "1", "-q"]

    def convert_full(ws: Workspace, case: Path) -> list:
        return ["convert", ws.clip_a, "-m", ws.model, "--alignments", ws.store_a,
                "-o", case / "full" / "frames", "-q"]

    def train_full(ws: Workspace, case: Path) -> list:
        shutil.copy(ws.model / "model.json", case / "full" / "model.json")
        return ["train", "-A", ws.faces_a, "-B", ws.faces_b, "-m", case / "full",
                "--iterations", "3", "--batch-size", "2", "--save-interval", "1",
                "--cpu-conv", "native", "--no-tensorboard", "-q"]

    return [Case("disk full during extract", "disk full", extract_full, REFUSE, needs_mount=True),
            Case("disk full during convert", "disk full", convert_full, REFUSE, needs_mount=True),
            Case("disk full during train", "disk full", train_full, REFUSE, needs_mount=True)]


def all_cases() -> list[Case]:
    return (video_cases() + image_cases() + alignments_json_cases() + face_metadata_cases()
            + store_cases() + model_cases() + output_cases() + disk_full_cases())


def outside_changes(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


__all__ = ["Case", "all_cases", "outside_changes", "snapshot"]
