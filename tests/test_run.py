"""``swapface run``: one resumable project from two videos to a swapped output."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks.robustness_common import make_clip

from swapface.cli.main import main
from swapface.convert import pipeline
from swapface.core.images import read_image, read_metadata
from swapface.extract import run as extract_run
from swapface.media.video import iter_video
from swapface.project import run as project_run
from swapface.project.project import PROJECT_FILE as PROJECT
from swapface.project.run import RunConfig
from swapface.swap import SwapOptions
from swapface.train import trainer as train_module
from swapface.train.trainer import TrainSummary

FRAMES = 40


@pytest.fixture(scope="module")
def clips(data_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clips")
    return (make_clip(data_dir / "video" / "woman_a.mp4", root / "a.mp4", FRAMES),
            make_clip(data_dir / "video" / "woman_b.mp4", root / "b.mp4", FRAMES))


def _fail(*_a, **_k):
    raise AssertionError("this stage must not run again")


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as container:
        return bool(container.streams.audio)


def test_defaults_and_validation(tmp_path):
    cfg = RunConfig(a_video=Path("a.mp4"), b_video=Path("b.mp4"), output=tmp_path / "out.mp4")
    assert cfg.project_dir == tmp_path / "out_project"
    assert (cfg.quality, cfg.model, cfg.minutes, cfg.iterations, cfg.every_n_b) == (
        "good", None, None, 20_000, 1)
    # the preset fills what the user left out, per device; explicit choices win
    good = cfg.resolved("cpu")
    assert (good.model, good.model_option, good.minutes) == ("lightweight", [], 5.0)
    preview = RunConfig(a_video=Path("a.mp4"), b_video=Path("b.mp4"), output=tmp_path / "o.mp4",
                        quality="preview").resolved("cpu")
    assert (preview.model, preview.model_option, preview.minutes) == ("lightweight", [], 2.0)
    best = RunConfig(a_video=Path("a.mp4"), b_video=Path("b.mp4"), output=tmp_path / "o.mp4",
                     quality="best", minutes=7.0).resolved("cpu")
    assert (best.model, best.minutes) == ("lightweight", 7.0)
    assert RunConfig(a_video=Path("a.mp4"), b_video=Path("b.mp4"), output=tmp_path / "o.mp4",
                     quality="best").resolved("cuda:0").model == "resnet"
    mine = RunConfig(a_video=Path("a.mp4"), b_video=Path("b.mp4"), output=tmp_path / "o.mp4",
                     model="resnet", model_option=["size=96"]).resolved("cuda:0")
    assert (mine.model, mine.model_option, mine.minutes) == ("resnet", ["size=96"], 20.0)
    with pytest.raises(SystemExit) as bad_choice:  # argparse's own one-line error
        main(["run", "a.mp4", "b.mp4", "-o", str(tmp_path / "o.mp4"), "--quality", "ultra"])
    assert bad_choice.value.code == 2
    assert main(["run", "a.mp4", "b.mp4", "-o", str(tmp_path / "o.mp4"),
                 "--model-option", "size=96"]) == 2  # options of which model?
    assert main(["run", "a.mp4", "b.mp4", "-o", str(tmp_path / "o.mp4"), "--every-n-b", "0"]) == 2
    assert main(["run", str(tmp_path / "missing.mp4"), str(tmp_path / "missing.mp4"),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    # convert's settings: B's detail always; A's own mouth opening through the face mesh on ask
    assert cfg.mouth == "auto"
    assert project_run.swap_settings(dataclasses.replace(cfg, mouth="swap")) == {"detail": "exemplars"}
    own = project_run.swap_settings(dataclasses.replace(cfg, mouth="source"))
    options = SwapOptions(**own, detail_faces=tmp_path)  # the project gives B's folder
    assert (options.mask_type, options.mask_options, options.detail) == (
        "mesh", {"mouth": "source"}, "exemplars")
    # auto: A's own mouth only past what B's faces show (95th percentile → widest + 0.03)
    closed, wide = np.zeros((68, 2)), np.zeros((68, 2))
    closed[36], closed[45] = (0, 0), (10, 0)
    wide[:] = closed
    wide[[62, 61, 63]], wide[[66, 67, 65]] = (5, 10), (5, 12)  # inner lips 2 px apart: 0.2
    auto = project_run.swap_settings(cfg, [closed] * 19 + [wide], [closed, wide])
    assert auto["mask_type"] == "mesh" and auto["mask_options"]["mouth"] == "wide"
    assert auto["mask_options"]["wide_from"] == pytest.approx(0.01)  # 95th percentile of 19 × 0, 0.2
    assert auto["mask_options"]["wide_to"] == pytest.approx(0.23)
    # A whose mouth never opens past that: no face mesh to run, the model's mouth as before
    assert project_run.swap_settings(cfg, [closed] * 19 + [wide], [closed]) == {"detail": "exemplars"}
    with pytest.raises(SystemExit) as bad_mouth:
        main(["run", "a.mp4", "b.mp4", "-o", str(tmp_path / "o.mp4"), "--mouth", "lips"])
    assert bad_mouth.value.code == 2


def test_run_interrupt_resume_rerun(clips, tmp_path, monkeypatch, capsys):
    a, b = clips
    out = tmp_path / "out.mp4"
    args = ["run", str(a), str(b), "-o", str(out), "--iterations", "4", "--batch-size", "4", "-q"]
    project_file = tmp_path / "out_project" / "project.json"

    # an existing output is refused before any work
    out.write_bytes(b"old")
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not project_file.exists()
    out.unlink()

    # Ctrl-C during training: the trainer saves and reports the signal; train is not done
    budgets = []

    class StoppedTrainer:
        def __init__(self, cfg):
            budgets.append(cfg.minutes)
            self.cfg = cfg

        def run(self, progress, cancel):
            time.sleep(0.6)
            cancel.cancel("SIGINT")  # what the CLI's signal handler does on Ctrl-C
            return TrainSummary(str(self.cfg.model_dir), 0, 2, 0.6, 1.0, {}, "SIGINT")

    monkeypatch.setattr(train_module, "Trainer", StoppedTrainer)
    assert main(args) == 130
    # before training, what B's faces cover of A's (swapface coverage) is said
    assert "faces of A have a close face of B" in capsys.readouterr().err
    data = json.loads(project_file.read_text())
    assert data["run"]["stages"]["extract_b"]["done"] and not data["run"]["stages"]["train"]["done"]
    assert data["train"]["seconds"] >= 0.6
    monkeypatch.undo()

    # Ctrl-C during convert: extract and train stay done, convert does not; training
    # resumed with what was left of the time budget
    real_trainer = train_module.Trainer

    def recording_trainer(cfg):
        budgets.append(cfg.minutes)
        return real_trainer(cfg)

    monkeypatch.setattr(train_module, "Trainer", recording_trainer)
    monkeypatch.setattr(extract_run, "run_extract", _fail)
    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_convert", interrupted)
    assert main(args) == 130
    # before training, what B's faces cover of A's (swapface coverage) is said
    assert "faces of A have a close face of B" in capsys.readouterr().err
    data = json.loads(project_file.read_text())
    stages = {name: s["done"] for name, s in data["run"]["stages"].items()}
    assert stages == {"extract_a": True, "extract_b": True, "train": True, "convert": False}
    assert data["train"]["seconds"] > 0
    assert data["run"]["stages"]["train"]["iteration"] == 4
    assert not out.exists()
    assert budgets[0] == 5.0 and budgets[1] < 5.0 - 0.6 / 60
    monkeypatch.undo()

    # the re-run only converts
    monkeypatch.setattr(extract_run, "run_extract", _fail)
    monkeypatch.setattr(train_module, "Trainer", _fail)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "extract_a: already done" in err and "train: already done" in err
    assert sum(1 for _ in iter_video(out)) == FRAMES
    assert _has_audio(out)
    assert "side-by-side still:" in err, err
    # --mouth auto: in these first 40 frames woman_a's mouth (0.02 at most) never opens as wide
    # as woman_b's (95th percentile 0.13), so the model draws every mouth and no mesh runs
    assert "mouth:  B's as the model draws it (A never opens the mouth wider" in err, err
    # the run ends with the quality of the swap in words, judged on a sample of its frames
    assert "== quality of the swap, judged on 40 sampled frames (0-39)" in err, err
    quality = err[err.index("== quality of the swap"):]
    for figure in ("identity:", "sharpness:", "seam:"):
        assert figure in quality, quality
    # woman_b's clip holds less detail than woman_a's: the summary says so (the ceiling)
    assert "B's own video holds only 0." in quality, quality
    assert (project_file.parent / "quality_sample" / "evaluate.json").is_file()
    still = read_image(project_file.parent / "side_by_side.png")
    assert still.shape[0] == 360 and still.shape[1] > 2 * 360  # source | swapped
    assert read_metadata(project_file.parent / "side_by_side.png")["synthetic"] is True
    data = json.loads(project_file.read_text())
    assert all(s["done"] for s in data["run"]["stages"].values())

    # a finished project re-run is a quick no-op, even though OUT exists
    monkeypatch.setattr(pipeline, "run_convert", _fail)
    start = time.perf_counter()
    assert main(args) == 0
    assert time.perf_counter() - start < 10
    assert "convert: already done" in capsys.readouterr().err

    # the project belongs to these inputs: swapped videos are refused
    swapped = ["run", str(b), str(a), "-o", str(out), "--project", str(project_file.parent)]
    assert main(swapped) == 2
    assert "other input videos" in capsys.readouterr().err


def test_project_refuses_changed_options_over_done_work(clips, tmp_path):
    a, b = clips
    out = tmp_path / "out.mp4"

    def project(**options):
        return project_run.RunProject(RunConfig(a_video=a, b_video=b, output=out, **options))

    def started(rp, side):
        store = rp.project.store_path(*rp.media(side))
        store.parent.mkdir(parents=True, exist_ok=True)
        store.touch()

    first = project(size=128, minutes=1.0)
    first.project.save()
    # Nothing extracted yet: options may still change.
    project(size=96).project.save()
    started(first, "a")
    with pytest.raises(project_run.ConfigError, match=r"made with --size 96.*extract_a"):
        project(size=128)
    project(size=96, every_n_b=4).project.save()  # B not extracted yet
    started(first, "b")
    with pytest.raises(project_run.ConfigError, match="--every-n-b"):
        project(size=96, every_n_b=1)
    # A larger budget re-opens a finished training instead of being ignored.
    done = project(size=96, every_n_b=4, minutes=1.0)
    done.run["stages"]["train"] = {"done": True}
    done.run["stages"]["convert"] = {"done": True}
    done.project.save()
    again = project(size=96, every_n_b=4, minutes=3.0)
    assert not again.done("train") and not again.done("convert")
    assert project(size=96, every_n_b=4, minutes=1.0).done("train")
    (first.project.dir / PROJECT).write_text("[1, 2]")
    with pytest.raises(project_run.ConfigError, match="damaged"):
        project(size=96)


def test_summary_words_follow_the_figures():
    from types import SimpleNamespace

    from swapface.project.summary import describe, sample_ranges

    assert sample_ranges(40) == ["0-39"]
    assert sample_ranges(1008) == ["0-29", "489-518", "978-1007"]

    def result(closer, sharp, seam):
        return SimpleNamespace(identity=SimpleNamespace(closer_to_b=closer),
                               detail=SimpleNamespace(sharpness_ratio=sharp, seam_delta_e=seam))

    good = "\n".join(describe(result(0.97, 0.8, 0.5)))
    assert "reads as B (97%" in good and "as detailed as the video" in good and "blends" in good
    bad = "\n".join(describe(result(0.4, 0.1, 7.0)))
    assert "still looks much like A" in bad and "blurred" in bad and "visible tone edge" in bad
    assert describe(result(None, float("nan"), None)) == []  # nothing measured: nothing claimed
    # B's footage as the limit: said only when it is low, with what would help
    near = "\n".join(describe(result(0.97, 0.35, 0.5), ceiling=0.41))
    assert "B's own video holds only 0.41 of A's detail" in near and "close to what" in near
    far = "\n".join(describe(result(0.97, 0.1, 0.5), ceiling=0.41))
    assert "more training can still gain" in far
    assert "B's own video" not in "\n".join(describe(result(0.97, 0.35, 0.5), ceiling=1.0))
