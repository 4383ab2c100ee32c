"""``swapface evaluate`` end to end: a tiny video, a tiny overfit model, the report folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from swapface.cli.main import main
from swapface.core.images import read_image
from swapface.evaluate.reconstruction import score_faces
from swapface.models import build_model, model_options
from swapface.models.checkpoint import freeze_architecture, save_checkpoint
from swapface.swap.model import load_model
from swapface.train.augment import AugmentConfig, Augmenter
from swapface.train.data import FaceSet
from tests.extract_helpers import cut_clip, extract

FRAMES = 12
COVERAGE = 0.625
SIZE = 32
STEPS = 25


def _clip(source: Path, target: Path, frames: int = FRAMES) -> Path:
    return cut_clip(source, target, frames)


def _centred(folder: Path, size: int) -> torch.Tensor:
    """Every face of a folder as the model's un-augmented input (RGB, [0, 1])."""
    faces = FaceSet(folder)
    data = np.stack([faces.load(i) for i in range(len(faces))])[..., 2::-1].copy()
    rgb = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255.0
    return Augmenter(AugmentConfig(), faces.size, size, COVERAGE).center(rgb).targets


@pytest.fixture(scope="module")
def setup(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 12-frame clip of A and of B, their extracted faces, and a model overfit on them."""
    root = tmp_path_factory.mktemp("evaluate_cli")
    clips = {side: _clip(data_dir / "video" / f"woman_{side}.mp4", root / f"{side}.mp4")
             for side in "ab"}
    faces = {}
    for side, clip in clips.items():
        extract(clip, root / side, size=128)
        faces[side] = root / side / "faces"
    model_dir = root / "model"
    torch.manual_seed(0)
    net = build_model("lightweight", {"input_size": SIZE})  # 32 px: a few seconds of training
    freeze_architecture(model_dir, {"model": "lightweight", "options": model_options(net),
                                    "input_size": net.input_size, "output_size": net.output_size})
    batches = {side: _centred(folder, SIZE) for side, folder in faces.items()}
    opt = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.5, 0.999))
    # One thread: this model's ops are too small to split, and on a busy 2-core machine two
    # threads spin against each other (7× slower here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(STEPS):  # each decoder learns its own face: enough to tell A from B
            loss = sum((net(x, side)[0] - x).abs().mean() for side, x in batches.items())
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    save_checkpoint(model_dir, net, None, {"iteration": STEPS})
    return {"root": root, "clips": clips, "faces": faces, "model": model_dir}


def test_reconstruction_scores_own_faces_above_the_other_identity(setup: dict) -> None:
    loaded = load_model(setup["model"], cpu=True)
    model, device = loaded.module, loaded.device
    faces = setup["faces"]
    aa = score_faces(model, faces["a"], "a", COVERAGE, device=device)
    ba = score_faces(model, faces["b"], "a", COVERAGE, device=device)  # B through A's decoder
    bb = score_faces(model, faces["b"], "b", COVERAGE, device=device)
    ab = score_faces(model, faces["a"], "b", COVERAGE, device=device)
    for s in (aa, ba, bb, ab):
        assert 0.0 <= s.ssim <= 1.0 and np.isfinite(s.l1) and 0.0 <= s.l1 <= 1.0
    assert aa.faces == FRAMES and bb.faces == FRAMES
    assert aa.ssim > ba.ssim + 0.05, (aa, ba)
    assert bb.ssim > ab.ssim + 0.05, (bb, ab)
    assert aa.l1 < ba.l1 and bb.l1 < ab.l1
    few = score_faces(model, faces["a"], "a", COVERAGE, limit=3, device=device)
    assert few.faces == 3
    assert aa.ssim_paste > ba.ssim_paste and bb.ssim_paste > ab.ssim_paste  # at 128 px too
    assert all(s.ssim_paste < s.ssim_paste_ceiling < 1.0 for s in (aa, bb))  # briefly trained


def test_a_perfect_64px_face_is_not_perfect_at_paste_size(setup: dict) -> None:
    """A "model" that returns its input exactly: flawless at 64 px, yet the 128 px face it is
    pasted as lacks the real face's detail, which is what a viewer sees."""

    class Identity:
        input_size = output_size = 64

        def __call__(self, x, side):
            return x, None

    s = score_faces(Identity(), setup["faces"]["b"], "b", COVERAGE)
    assert s.ssim == pytest.approx(1.0, abs=1e-4) and s.l1 < 1e-4
    assert s.ssim_paste < 0.998 and s.l1_paste > 0.002, s  # faces here are ~100 px natively
    # It is the perfect model of its size, so it scores the ceiling evaluate reports.
    assert s.ssim_paste == pytest.approx(s.ssim_paste_ceiling, abs=1e-6)


def test_cli_writes_the_json_and_the_report_pngs(setup: dict, data_dir: Path, capsys) -> None:
    clip = setup["clips"]["a"]
    report = setup["root"] / "report"
    rc = main(["evaluate", "--source", str(clip), "--swapped", str(clip),
               "--reference-b", str(setup["faces"]["b"]), "--report", str(report), "-q",
               "--identity-every", "3", "--max-references", "4", "-m", str(setup["model"]),
               "--faces-a", str(setup["faces"]["a"]), "--faces-b", str(setup["faces"]["b"]), "--cpu"])
    assert rc == 0
    out = capsys.readouterr().out
    for word in ("identity:", "pose:", "expression:", "temporal:", "reconstruction:", "A→A SSIM"):
        assert word in out
    data = json.loads((report / "evaluate.json").read_text())
    assert data["frames"]["compared"] == FRAMES and data["frames"]["faces_paired"] == FRAMES
    figures = {
        "identity": ["closer_to_b", "under_threshold", "mean_distance_b", "mean_distance_a",
                     "source_distance_b"],
        "pose": ["yaw_error", "pitch_error", "roll_error", "error"],
        "expression": ["mouth_open_error", "eye_open_error", "position_error", "error"],
        "temporal": ["jitter_ratio", "frame_diff_ratio", "jitter_source", "frame_diff_source"],
    }
    for family, keys in figures.items():
        for key in keys:
            assert isinstance(data[family][key], float | int), (family, key, data[family][key])
    assert data["identity"]["references_b"] == 4 and data["identity"]["faces"] == FRAMES // 3
    assert data["pose"]["error"] == 0.0 and data["temporal"]["jitter_ratio"] == 1.0
    rec = data["reconstruction"]
    assert rec["model"] == "model" and rec["size"] == SIZE
    for side in "ab":
        assert rec[side]["faces"] == FRAMES and 0.0 < rec[side]["ssim"] <= 1.0
    assert len(data["per_frame"]["frame"]) == FRAMES
    for kind in ("contact_sheet", "identity_plot", "jitter_plot"):
        path = Path(data["report"][kind])
        assert path.parent == report and path.suffix == ".png"
        image = read_image(path)
        assert image.shape[0] > 100 and image.shape[1] > 300 and image.std() > 10


def test_cli_reports_bad_input_in_one_line(setup: dict, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    clip = setup["clips"]["a"]
    rc = main(["evaluate", "--source", str(clip), "--swapped", str(clip), "--reference-b", str(empty),
               "--report", str(tmp_path / "r"), "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: no images in the B reference" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
