"""Projects: two persons with their videos, photos and reference photos, one model, outputs.

The FaceIt workflow as an API (``swapface project`` and the web UI drive the same calls)::

    p = Project.create(workspace, "hepburn_to_ohara", "hepburn", "ohara")
    p.add("ohara", "mclintock.mp4"); p.add("hepburn", "who_trust.mp4")
    p.add_reference("hepburn", "hepburn.jpg")
    p.preprocess(); p.train(minutes=5); p.convert("who_trust.mp4")

Person A's faces are replaced by person B's. Everything lives in one folder::

    <workspace>/<name>/project.json        versioned, validated on every load
    persons/<person>/media/<file>          videos and photo folders, copied in
    persons/<person>/references/<image>    reference photos (also persons/<person>.jpg)
    persons/<person>/faces/                every extracted face of that person (training set)
    persons/<person>/alignments/<file>.db  one alignments store per video / photo folder
    model/                                 the swap model
    outputs/                               converted videos (and frames with photos=True)

Every name that becomes a path (project, person, media) is checked against
:data:`NAME_PATTERN` when it is given and again when ``project.json`` is read, and every path
is confirmed to stay below the project folder: a project folder received from someone else
cannot make swapface read or write outside it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swapface.core.errors import ConfigError, InputError
from swapface.core.fileio import atomic_write_bytes, contained
from swapface.core.images import is_image_path
from swapface.core.progress import NEVER, SILENT, CancelToken, Progress
from swapface.media.video import VIDEO_EXTENSIONS

PROJECT_FILE = "project.json"
FORMAT = 1
KIND = "swapface-project"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,79}$")
SIDES = ("a", "b")


def check_name(name: object, what: str) -> str:
    """``name`` when it can only ever be one plain file or folder name; else a ConfigError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name.endswith((".", " ")) \
            or ".." in name:
        raise ConfigError(f"bad {what} name {name!r}: use letters, digits, '.', '_', '-' and "
                          "spaces (up to 80, not starting with a dot)")
    return name


def media_kind(path: Path) -> str:
    """"video" or "photos" (a folder of images); InputError for anything else."""
    if path.is_dir():
        if not any(is_image_path(p) for p in path.iterdir()):
            raise InputError(f"{path} holds no images")
        return "photos"
    if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    if path.is_file() and is_image_path(path):
        return "photo"
    raise InputError(f"not a video, image or folder of images: {path}")


def _copy_in(src: Path, dest: Path) -> None:
    """Copy (or hard-link, when on the same file system) ``src`` to ``dest`` atomically."""
    tmp = dest.with_name(f".{dest.name}.part{os.getpid()}")
    _remove(tmp)
    if src.is_dir():
        shutil.copytree(src, tmp, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, tmp)
    os.replace(tmp, dest)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _link_or_copy(src: str | Path, dest: str | Path) -> None:
    try:
        os.link(src, dest)  # the media is only ever read: a link costs no space
    except OSError:
        shutil.copy2(src, dest)


def _validated(data: Any, where: Path) -> dict[str, Any]:
    """``project.json`` as read, checked field by field (it may come from someone else)."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{where} is not a valid swapface project ({why})")

    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise bad("no 'kind': 'swapface-project'")
    if not isinstance(data.get("format"), int):
        raise bad("no format number")
    if data["format"] > FORMAT:
        raise ConfigError(f"{where} was written by a newer swapface (format {data['format']}); "
                          "upgrade swapface")
    check_name(data.get("name"), "project")
    persons = data.get("persons")
    if not (isinstance(persons, dict) and set(persons) == set(SIDES)):
        raise bad("'persons' must name persons a and b")
    for side in SIDES:
        check_name(persons[side], "person")
    if persons["a"] == persons["b"]:
        raise bad("persons a and b are the same")
    for key in ("media", "references"):
        table = data.setdefault(key, {})
        if not isinstance(table, dict) or not set(table) <= set(persons.values()):
            raise bad(f"'{key}' must be a table per person")
        for person, items in table.items():
            if not isinstance(items, list):
                raise bad(f"'{key}.{person}' must be a list")
            for item in items:
                name = item.get("name") if isinstance(item, dict) else item
                check_name(name, "media" if key == "media" else "reference")
                if key == "media" and item.get("kind") not in ("video", "photos", "photo"):
                    raise bad(f"media {name!r} has no valid kind")
    for key in ("extract", "train", "outputs"):
        if not isinstance(data.setdefault(key, {}), dict):
            raise bad(f"'{key}' must be a table")
    return data


class Project:
    """One project folder; every change is saved to ``project.json`` atomically."""

    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.dir = folder
        self.data = data

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, workspace: str | os.PathLike[str], name: str, person_a: str,
               person_b: str) -> Project:
        """A new project ``workspace/name``: ``person_a``'s faces are replaced by ``person_b``'s."""
        check_name(name, "project")
        check_name(person_a, "person")
        check_name(person_b, "person")
        if person_a == person_b:
            raise ConfigError("the two persons must differ")
        folder = Path(workspace) / name
        if (folder / PROJECT_FILE).exists():
            raise ConfigError(f"project {name!r} exists already in {workspace}")
        project = cls(folder, {"kind": KIND, "format": FORMAT, "name": name,
                               "persons": {"a": person_a, "b": person_b},
                               "media": {person_a: [], person_b: []},
                               "references": {person_a: [], person_b: []},
                               "extract": {}, "train": {}, "outputs": {},
                               "created": time.time()})
        project.save()
        return project

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        folder = Path(folder)
        path = folder / PROJECT_FILE
        if not path.is_file():
            raise InputError(f"no swapface project in {folder} (no {PROJECT_FILE})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        return cls(folder, _validated(data, path))

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.dir / PROJECT_FILE, text.encode("utf-8"))

    # ------------------------------------------------------------------ names and paths
    @property
    def name(self) -> str:
        return str(self.data["name"])

    def person(self, side: str) -> str:
        return str(self.data["persons"][side])

    def side_of(self, person: str) -> str:
        for side in SIDES:
            if self.data["persons"][side] == person:
                return side
        raise ConfigError(f"project {self.name!r} has no person {person!r} "
                          f"(persons: {self.person('a')}, {self.person('b')})")

    def path(self, *parts: str) -> Path:
        """``self.dir / parts``, refused when it would leave the project folder."""
        path = contained(self.dir, "/".join(parts))
        if path is None:
            raise ConfigError(f"path {'/'.join(parts)!r} leaves project {self.name!r}")
        return path

    def person_dir(self, person: str) -> Path:
        self.side_of(person)
        return self.path("persons", person)

    def media(self, person: str) -> list[dict[str, Any]]:
        self.side_of(person)
        return list(self.data["media"].get(person, []))

    def media_path(self, person: str, name: str) -> Path:
        if not any(m["name"] == name for m in self.media(person)):
            raise InputError(f"{person} has no media {name!r}")
        return self.path("persons", person, "media", check_name(name, "media"))

    def store_path(self, person: str, name: str) -> Path:
        return self.path("persons", person, "alignments", f"{check_name(name, 'media')}.db")

    def faces_dir(self, person: str) -> Path:
        return self.path("persons", person, "faces")

    def references(self, person: str) -> list[Path]:
        """Reference photos: ``references/`` of the person plus ``persons/<person>.jpg``."""
        self.side_of(person)
        out = [self.path("persons", person, "references", check_name(n, "reference"))
               for n in self.data["references"].get(person, [])]
        for suffix in (".jpg", ".jpeg", ".png"):
            single = contained(self.dir, f"persons/{person}{suffix}")
            if single is not None and single.is_file():
                out.append(single)
        return out

    @property
    def model_dir(self) -> Path:
        return self.path("model")

    # ------------------------------------------------------------------ adding media
    def add(self, person: str, source: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a video, photo or folder of photos into ``person``'s media; its name back."""
        src = Path(source)
        kind = media_kind(src)
        name = check_name(name or src.name, "media")
        items = self.data["media"].setdefault(person, [])
        self.side_of(person)
        if any(m["name"] == name for m in items):
            raise ConfigError(f"{person} already has media named {name!r}")
        dest = self.path("persons", person, "media", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "photo":  # one photo: a folder of one, so it extracts like the others
            dest.mkdir(exist_ok=True)
            _copy_in(src, dest / src.name)
            kind = "photos"
        else:
            _copy_in(src, dest)
        items.append({"name": name, "kind": kind, "added": time.time()})
        self.save()
        return name

    def remove(self, person: str, name: str) -> None:
        """Drop a media item with its store (its faces leave the training set at the next
        preprocess: extract's stale sweep)."""
        path = self.media_path(person, name)
        self.data["media"][person] = [m for m in self.media(person) if m["name"] != name]
        self.data["extract"].pop(f"{person}/{name}", None)
        self.save()
        _remove(path)
        self.store_path(person, name).unlink(missing_ok=True)

    def add_reference(self, person: str, image: str | os.PathLike[str]) -> str:
        src = Path(image)
        if not (src.is_file() and is_image_path(src)):
            raise InputError(f"reference photo is not an image: {src}")
        name = check_name(src.name, "reference")
        refs = self.data["references"].setdefault(person, [])
        self.side_of(person)
        dest = self.path("persons", person, "references", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _copy_in(src, dest)
        if name not in refs:
            refs.append(name)
        self.save()
        return name

    # ------------------------------------------------------------------ stages
    def preprocess(self, progress: Progress = SILENT, cancel: CancelToken = NEVER,
                   persons: list[str] | None = None, size: int = 256, every_n: int = 1,
                   identity: bool = True) -> dict[str, int]:
        """Extract every video and photo folder of each person (resumable); faces per media.

        With reference photos of a person only faces that match them are kept; adding
        references later re-extracts that person's media with the filter."""
        from swapface.project.stages import extract_media

        done: dict[str, int] = {}
        for person in persons or [self.person(s) for s in SIDES]:
            for item in self.media(person):
                cancel.check()
                done[f"{person}/{item['name']}"] = extract_media(
                    self, person, item["name"], progress, cancel, size=size, every_n=every_n,
                    identity=identity)
        return done

    def train(self, progress: Progress = SILENT, cancel: CancelToken = NEVER, *,
              model: str = "lightweight", minutes: float = 5.0, iterations: int = 100_000,
              batch_size: int = 16, options: list[str] | None = None,
              preview_every: int = 0) -> dict[str, Any]:
        from swapface.project.stages import train_model

        return train_model(self, progress, cancel, model=model, minutes=minutes,
                           iterations=iterations, batch_size=batch_size, options=options or [],
                           preview_every=preview_every)

    def convert(self, video: str, progress: Progress = SILENT, cancel: CancelToken = NEVER, *,
                face_filter: bool = False, photos: bool = False, swap: dict[str, Any] | None = None,
                overwrite: bool = True) -> Path:
        """Person A's ``video`` (a media name, or a file that is added to A first) with B's
        face → ``outputs/<video>_as_<B>.mp4`` (and a frame folder with ``photos``)."""
        from swapface.project.stages import convert_media

        name = video
        if not any(m["name"] == video for m in self.media(self.person("a"))):
            if not Path(video).exists():
                raise InputError(f"{self.person('a')} has no video {video!r} and no such file exists")
            name = self.add(self.person("a"), video)
        return convert_media(self, name, progress, cancel, face_filter=face_filter,
                             photos=photos, swap=swap or {}, overwrite=overwrite)[0]

    # ------------------------------------------------------------------ status
    def iter_media(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for side in SIDES:
            person = self.person(side)
            for item in self.media(person):
                yield person, item

    def status(self) -> dict[str, Any]:
        """What the CLI's ``status`` and the UI show: persons, media, stage states, outputs."""
        persons = {}
        for side in SIDES:
            person = self.person(side)
            faces = self.faces_dir(person)
            persons[side] = {
                "name": person,
                "media": [{**m, "extract": self.data["extract"].get(f"{person}/{m['name']}", {})}
                          for m in self.media(person)],
                "references": [p.name for p in self.references(person)],
                "faces": sum(1 for p in faces.iterdir() if is_image_path(p)) if faces.is_dir() else 0,
            }
        return {"name": self.name, "folder": str(self.dir), "persons": persons,
                "train": self.data.get("train", {}), "outputs": self.data.get("outputs", {}),
                "model": (self.model_dir / "latest.json").is_file()}  # written by every save

    def lines(self) -> list[str]:
        status = self.status()
        out = [f"project: {self.name} ({self.dir})"]
        for side, info in status["persons"].items():
            role = "replaced" if side == "a" else "put in"
            out.append(f"  {side}: {info['name']} ({role}): {len(info['media'])} media, "
                       f"{len(info['references'])} reference photo(s), {info['faces']} faces")
            for m in info["media"]:
                ext = m["extract"]
                state = f"{ext.get('faces', 0)} faces" if ext.get("done") else "not extracted"
                out.append(f"       {m['name']} ({m['kind']}): {state}")
        train = status["train"]
        out.append(f"  train: {train.get('model', '-')}, {train.get('iteration', 0)} iterations, "
                   f"{train.get('seconds', 0) / 60:.1f} min" if train else "  train: not started")
        for name, out_info in status["outputs"].items():
            out.append(f"  output: {name} → {out_info.get('path')}")
        return out


def list_projects(workspace: str | os.PathLike[str]) -> list[str]:
    root = Path(workspace)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and NAME_PATTERN.match(p.name) and (p / PROJECT_FILE).is_file())


def open_project(workspace: str | os.PathLike[str], name: str) -> Project:
    check_name(name, "project")
    folder = contained(workspace, name)
    if folder is None:
        raise ConfigError(f"bad project name {name!r}")
    return Project.open(folder)
