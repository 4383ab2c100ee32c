"""``swapface sort`` on real extracted faces: identity, blur, distance, yaw, undo, copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from swapface.cli.main import main
from swapface.core.images import read_image, read_metadata, write_image
from swapface.curate import SortConfig, sort_faces, undo_sort
from swapface.curate.features import head_pose
from swapface.curate.sort import CACHE_NAME, list_faces


@pytest.fixture(scope="module")
def faces(pair) -> dict[str, Path]:
    """Faces of two people from the session's extraction (read-only: tests copy them):
    woman_a without stored identities, woman_b with them."""
    return {"a": pair.a.faces, "b": pair.b.faces}


def _copy_faces(src: Path, dst: Path, limit: int | None = None) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in list_faces(src)[:limit]:
        shutil.copy2(p, dst / p.name)
        out.append(dst / p.name)
    return out


def _assert_two_pure_groups(folder: Path, total: int) -> None:
    """The two biggest group folders are ≥ 95 % one woman each, one per woman, and together
    hold ≥ 90 % of the faces (stray singletons are allowed)."""
    groups = sorted((d for d in folder.iterdir() if d.is_dir() and d.name != "masks"),
                    key=lambda d: -len(list_faces(d)))
    assert len(groups) >= 2
    majorities = []
    for group in groups[:2]:
        names = [_orig(p.name) for p in list_faces(group)]
        a = sum(n.startswith("woman_a_") for n in names)
        b = sum(n.startswith("woman_b_") for n in names)
        assert max(a, b) / len(names) >= 0.95, (group.name, a, b)
        majorities.append("a" if a > b else "b")
    assert sorted(majorities) == ["a", "b"]
    assert sum(len(list_faces(g)) for g in groups[:2]) >= 0.9 * total


def _names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(("sort_log_", "."))}


def _orig(name: str) -> str:
    return name.split("_", 1)[1]


def test_identity_groups_two_people(faces: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    _copy_faces(faces["a"], folder)
    _copy_faces(faces["b"], folder)
    total = len(list_faces(folder))
    summary = sort_faces(SortConfig(input=folder, group_by="identity", threshold=0.6))
    assert summary.faces == total
    assert summary.identity_from_store == len(list_faces(faces["b"]))  # woman_b: from its store
    _assert_two_pure_groups(folder, total)
    # re-sort reads descriptors from the cache (names are keyed after the in-place move)
    cache = np.load(folder / CACHE_NAME, allow_pickle=False)
    assert "identity.values" in cache.files and cache["identity.values"].shape[1] == 128


def test_identity_two_level_splits_two_people(faces: dict[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory-bounded path (k-means centroids + centroid linkage) still splits people."""
    import swapface.curate.features as feat

    folder = tmp_path / "two_level"
    _copy_faces(faces["a"], folder)
    _copy_faces(faces["b"], folder)
    total = len(list_faces(folder))
    monkeypatch.setattr(feat, "TWO_LEVEL_ABOVE", 8)
    monkeypatch.setattr(feat, "CENTROIDS", max(4, total // 4))
    calls = []
    real_kmeans = feat.kmeans
    monkeypatch.setattr(feat, "kmeans", lambda *a, **k: calls.append(1) or real_kmeans(*a, **k))
    summary = sort_faces(SortConfig(input=folder, by="identity", group_by="identity",
                                    threshold=0.6))
    assert calls, "the two-level path was not taken"
    assert summary.faces == total and sorted(summary.order) == sorted(
        p.name for p in list(faces["a"].glob("*.png")) + list(faces["b"].glob("*.png")))
    _assert_two_pure_groups(folder, total)
    # the order keeps each person together: few a↔b switches along the sorted list
    people = [n.startswith("woman_a_") for n in summary.order]
    assert np.count_nonzero(np.diff(np.asarray(people, dtype=np.int64))) <= 0.1 * total


def test_greedy_chain_pool_matches_full_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above _FULL faces the pooled chain visits every face once, as good as the full one."""
    import swapface.curate.features as feat

    rng = np.random.default_rng(3)
    values = rng.random((300, 16))
    values /= values.sum(axis=1, keepdims=True)
    prepared = feat.root_hist(values)
    full = feat.greedy_chain(prepared, feat.bhattacharyya_rooted)
    monkeypatch.setattr(feat, "_FULL", 10)
    pooled = feat.greedy_chain(prepared, feat.bhattacharyya_rooted)
    assert sorted(pooled.tolist()) == list(range(300))
    # same greedy rule; only float32 near-ties could differ, so compare the chain lengths
    def length(order: np.ndarray) -> float:
        a, b = prepared[order[:-1]], prepared[order[1:]]
        return float(np.sqrt(1.0 - np.clip((a * b).sum(axis=1), 0.0, 1.0)).sum())

    assert length(pooled) <= 1.01 * length(full)


def test_blur_sorts_blurred_copies_after_originals(faces: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "blur"
    originals = _copy_faces(faces["a"], folder, limit=12)
    for p in originals[:6]:
        img = cv2.GaussianBlur(read_image(p), (0, 0), 2.5)
        write_image(folder / f"aaa_blurred_{p.name}", img, read_metadata(p))
    summary = sort_faces(SortConfig(input=folder, by="blur"))
    rank = {name: i for i, name in enumerate(summary.order)}
    for p in originals[:6]:
        assert rank[f"aaa_blurred_{p.name}"] > rank[p.name]
    # on disk the prefix carries the order; a second sort comes from the cache
    on_disk = sorted(p.name for p in list_faces(folder))
    assert [_orig(n) for n in on_disk] == summary.order
    again = sort_faces(SortConfig(input=folder, by="blur"))
    assert again.cached == again.faces == 18 and again.computed == 0
    assert [_orig(n) for n in sorted(p.name for p in list_faces(folder))] == summary.order
    fft = sort_faces(SortConfig(input=folder, by="blur-fft"))
    rank = {name: i for i, name in enumerate(fft.order)}
    for p in originals[:6]:
        assert rank[f"aaa_blurred_{p.name}"] > rank[p.name]


def _misalign(size: int, degrees: float = 25.0, shift: float = 12.0) -> np.ndarray:
    rot = cv2.getRotationMatrix2D((size / 2, size / 2), degrees, 1.0)
    rot[:, 2] += shift
    return rot


def test_distance_puts_misaligned_faces_last(faces: dict[str, Path], tmp_path: Path) -> None:
    """Faces rotated 25° and shifted, with the matching (wrong) matrix, come last."""
    folder = tmp_path / "distance"
    originals = _copy_faces(faces["a"], folder, limit=20)
    bad = []
    for p in originals[:4]:
        meta = read_metadata(p)
        assert meta is not None
        rot = _misalign(meta["size"])
        meta["matrix"] = (rot @ np.vstack([meta["matrix"], [0, 0, 1]])).tolist()
        img = cv2.warpAffine(read_image(p), rot, (meta["size"], meta["size"]),
                             borderMode=cv2.BORDER_REPLICATE)
        name = f"aaa_bad_{p.name}"
        write_image(folder / name, img, meta)
        bad.append(name)
    summary = sort_faces(SortConfig(input=folder, by="distance"))
    assert set(summary.order[-4:]) == set(bad)


def _turned_landmarks(landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """Lift 2-D landmarks onto a rough head ellipsoid, turn it about the vertical axis."""
    lm = np.asarray(landmarks, dtype=np.float64)
    cx = lm[:, 0].mean()
    half = np.ptp(lm[:, 0]) / 2
    dx = lm[:, 0] - cx
    depth = -np.sqrt(np.clip((1.15 * half) ** 2 - dx * dx, 0, None))  # nearer = negative
    depth[27:36] -= 0.25 * half * np.linspace(0.4, 1.0, 9)  # the nose sticks out
    t = np.radians(degrees)
    out = lm.copy()
    out[:, 0] = cx + dx * np.cos(t) - depth * np.sin(t)
    return out


def test_yaw_orders_a_head_turn(faces: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "yaw"
    folder.mkdir()
    src = list_faces(faces["a"])[0]
    meta = read_metadata(src)
    assert meta is not None
    image = read_image(src)
    base = np.asarray(meta["landmarks"], dtype=np.float64)
    angles = [-35, -25, -15, -5, 5, 15, 25, 35]
    rng = np.random.default_rng(0)
    names = {}
    for i, deg in enumerate(rng.permutation(angles)):
        turned = _turned_landmarks(base, float(deg)) + rng.normal(0, 0.5, base.shape)
        name = f"turn_{i}.png"
        write_image(folder / name, image, {**meta, "landmarks": turned.round(3).tolist()})
        names[name] = float(deg)
    yaws = [head_pose(_turned_landmarks(base, d))[0] for d in angles]
    assert np.all(np.diff(yaws) > 0), yaws  # turning right raises yaw
    summary = sort_faces(SortConfig(input=folder, by="yaw"))
    order = [names[n] for n in summary.order]
    assert order == sorted(order)


def test_yaw_follows_real_head_turns(faces: dict[str, Path]) -> None:
    """On real footage, solvePnP yaw tracks a plain geometric cue of the turn: how far the
    nose tip sits from the midpoint of the eye corners, in inter-ocular units."""
    yaws, cues = [], []
    for path in list_faces(faces["a"]) + list_faces(faces["b"]):
        lm = np.asarray(read_metadata(path)["landmarks"], dtype=np.float64)
        iod = np.linalg.norm(lm[45] - lm[36])
        cues.append((lm[30, 0] - (lm[36, 0] + lm[45, 0]) / 2) / iod)
        yaws.append(head_pose(lm)[0])
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    spearman = np.corrcoef(rank(yaws), rank(cues))[0, 1]
    assert len(yaws) >= 60
    assert spearman > 0.8, spearman
    assert np.ptp(yaws) > 10  # the clips do turn: a real range of yaw, not noise


def test_undo_restores_every_name(faces: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "undo"
    _copy_faces(faces["b"], folder, limit=15)
    masks = faces["b"] / "masks"
    shutil.copytree(masks, folder / "masks")
    before = _names(folder)
    summary = sort_faces(SortConfig(input=folder, by="hist", group_by="size", bins=3))
    assert summary.log is not None
    after = _names(folder)
    assert len(after) == len(before) and after != before
    assert sum(1 for n in after if n.startswith("000_size_")) >= 5
    entries = json.loads(summary.log.read_text())["renames"]
    assert all((summary.log.parent / e["new"]).exists() for e in entries)
    assert not any(Path(e["new"]).is_absolute() or Path(e["old"]).is_absolute() for e in entries)
    assert main(["sort", "--undo", str(summary.log), "-q"]) == 0
    assert _names(folder) == before
    assert not [d for d in folder.iterdir() if d.is_dir() and d.name != "masks"]
    with pytest.raises(Exception, match="already undone"):
        undo_sort(summary.log)


def test_output_copy_with_keep(faces: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "src"
    _copy_faces(faces["a"], folder, limit=10)
    before = _names(folder)
    out = tmp_path / "sorted"
    assert main(["sort", str(folder), "-o", str(out), "--by", "size", "--keep", "-q"]) == 0
    assert _names(folder) == before
    copied = sorted(p.name for p in list_faces(out))
    assert len(copied) == 10 and {_orig(n) for n in copied} == before
    log = next(out.glob("sort_log_*.json"))
    assert undo_sort(log).removed_copies == 10
    assert list_faces(out) == [] and _names(folder) == before
    # without --keep the faces move
    moved = tmp_path / "moved"
    assert main(["sort", str(folder), "-o", str(moved), "--by", "color-luma", "-q"]) == 0
    assert list_faces(folder) == [] and len(list_faces(moved)) == 10


def test_crash_between_phases_is_undoable(faces: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A sort killed half-way through the final renames loses nothing; --undo recovers."""
    import swapface.curate.sort as sort_mod

    folder = tmp_path / "crash"
    _copy_faces(faces["a"], folder, limit=8)
    before = _names(folder)
    real_rename, calls = sort_mod.os.rename, []

    def flaky(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 11:  # 8 to temp names, then 2 final renames, then "crash"
            raise OSError("simulated crash")
        real_rename(src, dst)

    monkeypatch.setattr(sort_mod.os, "rename", flaky)
    with pytest.raises(OSError, match="simulated"):
        sort_faces(SortConfig(input=folder, by="color-orange"))
    monkeypatch.setattr(sort_mod.os, "rename", real_rename)
    assert len(list(folder.iterdir())) - 2 == len(before)  # 8 faces + cache + log, none lost
    log = next(folder.glob("sort_log_*.json"))
    assert json.loads(log.read_text())["state"] == "pending"
    assert undo_sort(log).restored == 8
    assert _names(folder) == before


def test_sort_after_a_crash_rolls_back_and_equals_a_clean_sort(
        faces: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running the same sort again after a kill between the phases: faces under temp names
    come back first, so the result is the uninterrupted sort's, with nothing hidden."""
    import swapface.curate.sort as sort_mod

    clean, crash = tmp_path / "clean", tmp_path / "crash"
    _copy_faces(faces["a"], clean, limit=8)
    _copy_faces(faces["a"], crash, limit=8)
    sort_faces(SortConfig(input=clean, by="color-orange"))
    real_rename, calls = sort_mod.os.rename, []

    def dies(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 11:
            raise KeyboardInterrupt  # stands for SIGKILL: no cleanup runs
        real_rename(src, dst)

    monkeypatch.setattr(sort_mod.os, "rename", dies)
    with pytest.raises(KeyboardInterrupt):
        sort_faces(SortConfig(input=crash, by="color-orange"))
    monkeypatch.setattr(sort_mod.os, "rename", real_rename)
    assert any(p.name.startswith(".sorttmp_") for p in crash.iterdir())
    sort_faces(SortConfig(input=crash, by="color-orange"))
    assert _names(crash) == _names(clean)
    assert not any(p.name.startswith(".sorttmp_") for p in crash.iterdir())


def _sorted_copy(faces: dict[str, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """Ten faces sorted by size into ``sorted/`` with --keep; (input, output, log)."""
    folder, out = tmp_path / "src", tmp_path / "sorted"
    _copy_faces(faces["a"], folder, limit=10)
    assert main(["sort", str(folder), "-o", str(out), "--by", "size", "--keep", "-q"]) == 0
    return folder, out, next(out.glob("sort_log_*.json"))


def test_undo_works_from_another_directory(faces: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("rel")  # typed relative: the log must not depend on the working directory
    _copy_faces(faces["b"], folder, limit=6)
    before = _names(folder)
    summary = sort_faces(SortConfig(input=folder, by="hist"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert undo_sort(tmp_path / summary.log).restored == 6
    assert _names(tmp_path / "rel") == before


def test_undo_that_restores_nothing_keeps_the_log(faces: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder, out, log = _sorted_copy(faces, tmp_path)
    for p in list_faces(folder):  # originals gone: the copies must stay, the log stays live
        p.unlink()
    assert main(["sort", "--undo", str(log), "-q"]) == 2
    assert "nothing in" in capsys.readouterr().err
    assert json.loads(log.read_text())["state"] == "done" and len(list_faces(out)) == 10


def _crafted(log: Path, **changes) -> None:
    payload = json.loads(log.read_text())
    payload.update(changes)
    log.write_text(json.dumps(payload))


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_crafted_undo_log_touches_nothing_outside_the_sorted_folders(
        faces: dict[str, Path], tmp_path: Path, mode: str) -> None:
    """A face folder received with a sort log that points at the user's other files."""
    folder, out, log = _sorted_copy(faces, tmp_path)
    sentinel = tmp_path / "precious"
    sentinel.mkdir()
    photo = sentinel / "holiday.png"
    shutil.copy(list_faces(folder)[0], photo)
    (sentinel / "notes.txt").write_text("mine")
    snapshot = {p.name: p.read_bytes() for p in sentinel.iterdir()}
    victim = str(photo)
    renames = [
        {"old": victim, "new": victim},  # delete / move the user's photo
        {"old": "../precious/notes.txt", "new": "../precious/holiday.png"},
        {"old": "holiday.png", "new": "/etc/hostname"},
        {"old": "../../x.png", "new": "00001_x.png"},
        {"old": 5, "new": None},
        "garbage",
    ]
    if mode == "move":
        renames.append({"old": "a.png", "new": "00002_a.png", "tmp": "../precious/holiday.png"})
    _crafted(log, mode=mode, format=2, input=str(sentinel), renames=renames,
             created_dirs=["..", "../precious", "/tmp"])
    with pytest.raises(Exception, match="nothing in"):
        undo_sort(log)
    assert {p.name: p.read_bytes() for p in sentinel.iterdir()} == snapshot
    assert len(list_faces(out)) == 10 and len(list_faces(folder)) == 10


def test_copy_undo_keeps_a_copy_that_differs_from_its_original(faces: dict[str, Path],
                                                               tmp_path: Path) -> None:
    _, out, log = _sorted_copy(faces, tmp_path)
    edited = list_faces(out)[0]
    edited.write_bytes(edited.read_bytes() + b"edited")  # the user changed this copy
    summary = undo_sort(log)
    assert summary.removed_copies == 9 and list_faces(out) == [edited]


def test_cli_errors() -> None:
    assert main(["sort"]) == 2
    assert main(["sort", "somewhere", "--by", "blur", "--keep"]) == 2
