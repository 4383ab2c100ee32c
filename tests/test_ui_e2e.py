"""The whole workflow in headless Chromium (Debian's, driven by Playwright): create a project,
upload two short cuts, extract both, delete three faces in the grid, train a few iterations,
preview a frame with the slider, convert, play the result, evaluate.

Screenshots of every screen go to ``$SWAPFACE_SCREENSHOTS`` (default: the test's temporary
folder ``screenshots/``).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from swapface.align.store import AlignmentsStore
from swapface.media.video import probe_video
from swapface.project.project import open_project
from tests.extract_helpers import cut_clip
from tests.ui_helpers import start_ui

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
FRAMES = {"a": 36, "b": 30}
ITERATIONS = 30


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


def _faces(ws: Path, person: str, media: str) -> int:
    p = open_project(ws, "hepburn_to_ohara")
    with AlignmentsStore(p.store_path(person, media), readonly=True) as db:
        return db.count_faces()


def test_the_whole_workflow_in_chromium(browser, data_dir: Path, tmp_path: Path):
    shots = Path(os.environ.get("SWAPFACE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    clips = {side: cut_clip(data_dir / "video" / f"woman_{side}.mp4", tmp_path / name, FRAMES[side],
                            audio=side == "a")
             for side, name in (("a", "who_trust.mp4"), ("b", "mclintock.mp4"))}
    ws = tmp_path / "ws"
    proc, url = start_ui(ws)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and "Content Security Policy" in msg.text
            and errors.append(msg.text))  # an inline style or script the page must not need
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        page.goto(url + "/")
        page.wait_for_selector("#create")
        assert "must consent" in page.text_content("#consent") or "agreed" in page.text_content("#consent")
        page.fill("#new-name", "hepburn_to_ohara")
        page.fill("#new-a", "hepburn")
        page.fill("#new-b", "ohara")
        page.screenshot(path=str(shots / "1_projects.png"), full_page=True)
        page.click("#create")
        page.wait_for_selector('h1:has-text("hepburn —")')  # created: the page moved to person A

        for person, clip in (("hepburn", clips["a"]), ("ohara", clips["b"])):
            page.goto(f"{url}/#/p/hepburn_to_ohara/person/{person}")
            page.wait_for_selector(f'h1:has-text("{person} —")')  # this person's screen, not the last
            page.set_input_files("#upload-media", str(clip))
            page.click("#do-upload")
            page.wait_for_selector(f'tr[data-media="{clip.name}"]')
            page.click("#extract")
            page.wait_for_selector(f'tr[data-media="{clip.name}"] >> text=/\\d+ faces/', timeout=180_000)
            page.wait_for_selector("#face-grid .face img")
        assert _faces(ws, "hepburn", "who_trust.mp4") == FRAMES["a"]

        # Delete three of B's faces in the grid: the store has three fewer.
        before = _faces(ws, "ohara", "mclintock.mp4")
        for tile in page.query_selector_all("#face-grid .face")[:3]:
            tile.click()
        page.screenshot(path=str(shots / "2_person_grid.png"), full_page=True)
        page.click("#delete-faces")
        page.wait_for_selector(f"#grid-count >> text=/^{before - 3} faces/")
        assert _faces(ws, "ohara", "mclintock.mp4") == before - 3
        page.click('#face-grid .face .open')
        page.wait_for_selector("dialog[open] img")
        page.wait_for_function("() => document.querySelector('dialog[open] img')?.naturalWidth > 0")
        page.screenshot(path=str(shots / "3_face_in_frame.png"))
        page.keyboard.press("Escape")

        page.goto(f"{url}/#/p/hepburn_to_ohara/train")
        page.wait_for_selector("#train-start")
        page.fill("#opt-iterations", str(ITERATIONS))
        page.fill("#opt-minutes", "2")
        page.fill("#opt-batch_size", "8")
        page.check("#model-options #opt-learn_mask")  # the model's own options form
        page.click("#train-start")
        page.wait_for_selector('.job[data-state="done"]', timeout=240_000)
        page.wait_for_function("() => document.querySelector('#train-preview')?.naturalWidth > 0")
        page.wait_for_function("() => Number(document.querySelector('#loss-chart')?.dataset.points) > 0")
        assert int(page.get_attribute("#loss-chart", "data-points")) >= ITERATIONS // 2
        model = json.loads((ws / "hepburn_to_ohara" / "model" / "model.json").read_text())
        assert model["options"]["learn_mask"] is True
        page.screenshot(path=str(shots / "4_train.png"), full_page=True)

        page.goto(f"{url}/#/p/hepburn_to_ohara/convert")
        page.wait_for_function("() => document.querySelector('#preview-image')?.dataset.frame === '0'",
                               timeout=60_000)
        page.eval_on_selector("#preview-slider",
                              "s => { s.value = 20; s.dispatchEvent(new Event('input')); }")
        page.wait_for_function("() => document.querySelector('#preview-image')?.dataset.frame === '20'")
        assert "1 face(s) swapped" in page.text_content("#preview-timing")
        page.select_option("#preview-view", "mask")
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "5_convert_preview.png"), full_page=True)
        page.select_option("#preview-view", "after")
        page.click("#convert-start")
        page.wait_for_selector("#result-video", timeout=180_000)
        page.wait_for_function("() => document.querySelector('#result-video')?.readyState >= 2",
                               timeout=30_000)
        duration = page.eval_on_selector("#result-video", "v => v.duration")
        info = probe_video(clips["a"])
        assert duration == pytest.approx(FRAMES["a"] / float(info.fps), abs=0.15)
        page.screenshot(path=str(shots / "6_convert_result.png"), full_page=True)

        page.goto(f"{url}/#/p/hepburn_to_ohara/evaluate")
        page.wait_for_selector("#evaluate-start")
        page.click("#evaluate-start")
        page.wait_for_selector("#figures", timeout=240_000)
        page.wait_for_function("() => document.querySelector('#contact-sheet')?.naturalWidth > 0")
        text = page.text_content("#figures")
        assert "closer to B" in text and "sharpness ratio" in text and "n/a" not in text.split("pose")[1][:20]
        page.screenshot(path=str(shots / "7_evaluate.png"), full_page=True)
        page.goto(f"{url}/#/p/hepburn_to_ohara/jobs")
        page.wait_for_selector("#all-jobs .job")
        assert len(page.query_selector_all('#all-jobs .job[data-state="done"]')) == 5
        widths = [b.eval_on_selector("span", "s => s.style.width")
                  for b in page.query_selector_all("#all-jobs .bar")]
        assert widths == ["100%"] * 5  # finished jobs show full bars
        page.screenshot(path=str(shots / "8_jobs.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)  # what the page showed
        print(f"page at failure: {page.url}\n{page.inner_text('body')[:2000]}")
        raise
    finally:
        page.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert not errors, errors
    print(f"screenshots: {shots}")
