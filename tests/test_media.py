"""Video I/O on real clips: frame-exact decoding and export, assembly with audio, bad input.

Clips (../shared/data/video, see SOURCES.md): woman_b.mp4 (354 frames, 30 fps, AAC),
small_faces_with_audio.mp4 (275 frames, 29.97 fps, AAC, video starts 0.85 s after the
audio), man_b.mp4 (352 frames, 720x1280, no audio).
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from swapface.cli.main import main
from swapface.core.errors import InputError
from swapface.core.images import read_image, read_metadata, write_image
from swapface.media.frames_io import assemble_video, export_frames
from swapface.media.source import open_source
from swapface.media.video import iter_video, probe_video
from swapface.media.video_writer import VideoWriter

UNICODE_DIR = "dir with späces ü"


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="session")
def video_dir(data_dir: Path) -> Path:
    path = data_dir / "video"
    if not path.is_dir():
        pytest.skip(f"no video folder in {data_dir}")
    return path


@pytest.fixture(scope="session")
def small_clip(video_dir: Path) -> Path:
    return video_dir / "small_faces_with_audio.mp4"


@pytest.fixture(scope="session")
def small_frames(small_clip: Path) -> list[np.ndarray]:
    """The decoded frames of small_faces_with_audio.mp4 (275 x 640x360, ~190 MB)."""
    return [image for _, _, image in iter_video(small_clip)]


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float | None]]:
    images, stamps = [], []
    for _, ts, image in iter_video(path):
        images.append(image)
        stamps.append(ts)
    return images, stamps


def stream_summary(path: Path) -> dict[str, object]:
    """Packet-level facts about the first video and audio stream (no decoding)."""
    out: dict[str, object] = {}
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        out["fps"] = Fraction(video.average_rate)
        out["video_stream_index"] = video.index
        packets = [p for p in container.demux(video) if p.dts is not None]
        out["video_packets"] = len(packets)
        end = max(p.pts + p.duration for p in packets)
        out["video_end"] = float(end * video.time_base)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return out
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.dts is not None]
        out["audio_packets"] = [(p.pts, bytes(p)) for p in packets]
        out["audio_time_base"] = audio.time_base
        out["audio_end"] = float(max(p.pts + p.duration for p in packets) * audio.time_base)
    return out


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def remux(src: Path, dst: Path, **options: str) -> None:
    """Copy all audio/video packets into a new container (no re-encode)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams
                   if s.type in ("video", "audio")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


# ---------------------------------------------------------------- probing and decoding


@pytest.mark.parametrize(
    ("name", "frames", "fps", "size", "audio"),
    [
        ("woman_b.mp4", 354, Fraction(30), (512, 512), "aac"),
        ("small_faces_with_audio.mp4", 275, Fraction(2997, 100), (640, 360), "aac"),
        ("man_b.mp4", 352, Fraction(30), (720, 1280), None),
    ],
)
def test_probe_and_decode_are_frame_exact(video_dir: Path, name: str, frames: int,
                                          fps: Fraction, size: tuple[int, int],
                                          audio: str | None) -> None:
    info = probe_video(video_dir / name)
    assert (info.frame_count, info.fps, (info.width, info.height)) == (frames, fps, size)
    assert info.frame_count_exact
    assert info.audio_codec == audio and info.has_audio == (audio is not None)
    assert info.duration == pytest.approx(frames / fps, abs=1e-3)

    indices, stamps = [], []
    for index, ts, image in iter_video(video_dir / name):
        indices.append(index)
        stamps.append(ts)
        assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    assert indices == list(range(frames))  # decoded count == container count
    diffs = np.diff(stamps)
    assert (diffs > 0).all()
    assert np.allclose(np.array(stamps) - stamps[0], np.arange(frames) / float(fps), atol=1e-3)


# ---------------------------------------------------------------- export


def test_export_every_frame_with_manifest(video_dir: Path, tmp_path: Path) -> None:
    clip = video_dir / "woman_b.mp4"
    out = tmp_path / "frames"
    summary = export_frames(clip, out)

    assert (summary.container_frames, summary.decoded, summary.written) == (354, 354, 354)
    assert summary.problems == [] and summary.stale_files == []
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"woman_b_{i:06d}.png" for i in range(354)]

    manifest = json.loads((out / "frames.json").read_text(encoding="utf-8"))
    assert manifest["source"] == str(clip.resolve())
    assert manifest["fps"] == 30.0 and manifest["fps_fraction"] == "30/1"
    assert manifest["container_frames"] == manifest["decoded_frames"] == 354
    entries = manifest["frames"]
    assert [e["name"] for e in entries] == files
    assert [e["index"] for e in entries] == list(range(354))
    stamps = np.array([e["timestamp"] for e in entries])
    assert (np.diff(stamps) > 0).all()
    assert np.allclose(stamps, np.arange(354) / 30.0, atol=1e-3)
    assert not list(out.glob(".*"))  # no temp files left behind

    # Images are the decoded frames, losslessly, with their provenance embedded.
    for index, _, image in iter_video(clip):
        if index in (0, 177, 353):
            assert np.array_equal(read_image(out / files[index]), image)
    assert read_metadata(out / files[177]) == {
        "source": "woman_b.mp4", "frame_index": 177, "timestamp": entries[177]["timestamp"]
    }

    # Re-exporting every 5th frame into the same folder flags the other frames as stale.
    again = export_frames(clip, out, every_n=5)
    assert again.written == 71 and again.decoded == 354
    assert len(again.stale_files) == 354 - 71


def test_export_every_n_and_resampled_fps(small_clip: Path, tmp_path: Path) -> None:
    every5 = export_frames(small_clip, tmp_path / "n5", every_n=5, fmt="jpg")
    indices = [e["index"] for e in json.loads((tmp_path / "n5" / "frames.json").read_bytes())
               ["frames"]]
    assert indices == list(range(0, 275, 5)) and every5.written == 55
    assert len(list((tmp_path / "n5").glob("*.jpg"))) == 55

    # 10 fps from 29.97 fps: first frame of each 0.1 s interval, no duplicates, no gaps.
    resampled = export_frames(small_clip, tmp_path / "fps10", fps=10)
    entries = json.loads((tmp_path / "fps10" / "frames.json").read_bytes())["frames"]
    stamps = np.array([e["timestamp"] for e in entries])
    rel = stamps - stamps[0]
    assert resampled.written == len(entries) == int(np.ceil(275 / 29.97 * 10)) == 92
    assert np.array_equal(np.floor(rel * 10 + 1e-6), np.arange(len(entries)))
    assert [e["index"] for e in entries][:5] == [0, 3, 6, 9, 12]
    assert stamps[0] == pytest.approx(10214 / 11988, abs=1e-5)  # the stream's first frame


# ---------------------------------------------------------------- assemble


def test_round_trip_with_audio_in_unicode_paths(small_clip: Path, small_frames: list[np.ndarray],
                                                tmp_path: Path) -> None:
    work = tmp_path / UNICODE_DIR
    work.mkdir()
    clip = work / "clip ü.mp4"
    shutil.copyfile(small_clip, clip)
    frames_dir = work / "frames ü"
    exported = export_frames(clip, frames_dir)
    assert exported.written == 275

    output = work / "out ü.mp4"
    summary = assemble_video(frames_dir, output, reference=clip, crf=18, preset="veryfast")
    assert summary.frames == summary.images == 275
    assert summary.fps == Fraction(2997, 100) and summary.fps_from == "reference"
    assert summary.audio and not summary.padded and summary.problems == []
    assert sorted(p.name for p in work.iterdir()) == ["clip ü.mp4", "frames ü", "out ü.mp4"]

    info = probe_video(output)
    assert (info.frame_count, info.fps, info.width, info.height) == (275, Fraction(2997, 100),
                                                                     640, 360)
    assert info.audio_codec == "aac"
    images, stamps = decode_all(output)
    assert len(images) == 275  # decoded, not just the container's word
    assert np.allclose(stamps, np.arange(275) * 100 / 2997, atol=1e-3)
    diffs = [mean_abs_diff(a, b) for a, b in zip(images, small_frames, strict=True)]
    assert np.mean(diffs) < 3.0 and max(diffs) < 4.0  # measured: 2.16 / 2.44 at crf 18

    src, out = stream_summary(clip), stream_summary(output)
    assert out["video_stream_index"] == 0
    # Audio ends within one frame of the video, like in the source.
    assert abs(out["audio_end"] - out["video_end"]) < 1 / 29.97
    # Lip sync: the source video starts 0.852 s into the audio; the output's frame 0 is at
    # 0 s, so its audio must be the source audio from 0.852 s on, bit for bit.
    offset = round(Fraction(10214, 11988) / src["audio_time_base"])
    src_packets = {pts - offset: data for pts, data in src["audio_packets"]}
    out_packets = out["audio_packets"]
    assert out_packets[0][0] < 0 <= out_packets[2][0]  # decoder primer + straddling packet
    assert all(src_packets[pts] == data for pts, data in out_packets)
    assert len(out_packets) == len([p for p in src_packets if p > -2048])


def test_assemble_odd_size_no_audio_reference_and_metadata(video_dir: Path,
                                                           small_frames: list[np.ndarray],
                                                           tmp_path: Path) -> None:
    frames_dir = tmp_path / "odd"
    crops = [frame[41:118, 201:302] for frame in small_frames[:12]]  # 101x77
    for i, crop in enumerate(crops):
        write_image(frames_dir / f"f{i}.png", crop)  # natural order: f2 before f10
    output = tmp_path / "odd.mp4"
    summary = assemble_video(frames_dir, output, reference=video_dir / "man_b.mp4",
                             preset="veryfast", metadata={"comment": "test",
                                                          "synthetic_media": "true"})
    assert summary.padded and summary.frames == 12 and not summary.audio
    assert summary.fps == 30
    info = probe_video(output)
    assert (info.width, info.height, info.frame_count, info.has_audio) == (102, 78, 12, False)
    images, _ = decode_all(output)
    assert len(images) == 12
    for image, crop in zip(images, crops, strict=True):
        assert mean_abs_diff(image[:77, :101], crop) < 4.0
        # The padding column repeats the edge (up to coding noise), not black.
        assert mean_abs_diff(image[:77, 101], image[:77, 100]) < 3.0
    with av.open(str(output)) as container:
        assert container.metadata["comment"] == "test"
        assert container.metadata["synthetic_media"] == "true"
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range) == (1, 1)  # tagged BT.709, tv range


def test_assemble_unreadable_image_keeps_timing(video_dir: Path, small_frames: list[np.ndarray],
                                                tmp_path: Path) -> None:
    frames_dir = tmp_path / "frames"
    for i in range(6):
        write_image(frames_dir / f"x_{i:06d}.png", small_frames[i])
    (frames_dir / "x_000003.png").write_bytes(b"not a png")
    (frames_dir / "notes.txt").write_text("ignored")
    # --fps wins over the reference's 30 fps; its 11.8 s of audio is cut to the 0.2 s video.
    summary = assemble_video(frames_dir, tmp_path / "out.mkv", fps=Fraction(30000, 1001),
                             reference=video_dir / "woman_b.mp4", preset="ultrafast")
    assert summary.frames == summary.images == 6 and summary.audio
    streams = stream_summary(tmp_path / "out.mkv")
    assert streams["video_end"] == pytest.approx(6 * 1001 / 30000, abs=2e-3)
    assert abs(streams["audio_end"] - streams["video_end"]) < 1001 / 30000
    assert len(summary.problems) == 1 and "x_000003.png" in summary.problems[0]
    images, stamps = decode_all(tmp_path / "out.mkv")
    assert len(images) == 6
    assert np.allclose(stamps, np.arange(6) * 1001 / 30000, atol=2e-3)  # mkv: 1 ms clock
    assert mean_abs_diff(images[3], small_frames[2]) < mean_abs_diff(images[3], small_frames[3])


def test_writer_failures_leave_no_file(small_frames: list[np.ndarray], tmp_path: Path) -> None:
    target = tmp_path / "v.mp4"
    with pytest.raises(ValueError, match="no frames"), VideoWriter(target, 25):
        pass
    with pytest.raises(ValueError, match="but the video is"), VideoWriter(target, 25) as writer:
        writer.write(small_frames[0])
        writer.write(small_frames[0][:100])
    with pytest.raises(RuntimeError), VideoWriter(target, 25) as writer:
        writer.write(small_frames[0])
        raise RuntimeError("stage crashed")
    with pytest.raises(InputError, match="no such file"):
        VideoWriter(target, 25, audio_from=tmp_path / "missing.mp4").__enter__()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- damaged and wrong input


def test_truncated_video_yields_what_it_can(video_dir: Path, tmp_path: Path) -> None:
    # A file cut off after 40 % of its bytes. The clips keep their index (moov) at the
    # end, so a plain cut loses it; a "faststart" copy keeps the index up front.
    faststart = tmp_path / "faststart.mp4"
    remux(video_dir / "woman_b.mp4", faststart, movflags="+faststart")
    data = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])

    source = open_source(cut)
    assert source.count == 354
    frames = list(source.frames())
    assert 100 < len(frames) < 200  # measured: 139
    assert [f.index for f in frames] == list(range(len(frames)))
    assert len(source.problems) == 1 and f"{len(frames)} of 354" in source.problems[0]
    reference = [image for index, _, image in iter_video(faststart) if index < len(frames)]
    assert all(np.array_equal(f.image, r) for f, r in zip(frames, reference, strict=True))

    summary = export_frames(cut, tmp_path / "frames", every_n=10)
    assert summary.decoded == len(frames) and summary.written == (len(frames) + 9) // 10
    assert summary.problems and not summary.complete
    manifest = json.loads((tmp_path / "frames" / "frames.json").read_bytes())
    assert manifest["problems"] == summary.problems

    # Cut before the index: nothing can be decoded, and the error says why.
    plain = tmp_path / "plain cut.mp4"
    raw = (video_dir / "woman_b.mp4").read_bytes()
    plain.write_bytes(raw[: int(len(raw) * 0.4)])
    with pytest.raises(InputError, match="truncated"):
        open_source(plain)


@pytest.mark.parametrize("name", ["notes.mp4", "notes.txt", "empty.mp4"])
def test_non_video_input_is_an_input_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / UNICODE_DIR / name
    path.parent.mkdir()
    path.write_text("" if name.startswith("empty") else "this is not a video\n" * 50)
    with pytest.raises(InputError):
        open_source(path)
    with pytest.raises(InputError):
        probe_video(path)
    with pytest.raises(InputError):
        export_frames(path, tmp_path / "out")


# ---------------------------------------------------------------- CLI


def test_cli_frames_assemble_info(small_clip: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / UNICODE_DIR
    frames_dir, output = work / "frames", work / "short ü.mp4"
    assert main(["video", "frames", str(small_clip), str(frames_dir), "--every-n", "25",
                 "--format", "jpg", "-q"]) == 0
    err = capsys.readouterr().err
    assert "wrote 11 jpg frames" in err and "275 decoded" in err
    assert len(list(frames_dir.glob("small_faces_with_audio_*.jpg"))) == 11

    # No --reference, no --fps: the rate comes from frames.json (29.97 / 25).
    assert main(["video", "assemble", str(frames_dir), str(output), "--preset", "ultrafast",
                 "-q"]) == 0
    assert "frames.json" in capsys.readouterr().err
    info = probe_video(output)
    assert info.frame_count == 11 and info.fps == Fraction(2997, 2500)

    # An existing output stays unless --overwrite; the reference is never written over.
    before = output.read_bytes()
    assert main(["video", "assemble", str(frames_dir), str(output), "--preset", "ultrafast",
                 "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err and output.read_bytes() == before
    reference = work / "reference.mp4"
    shutil.copy(small_clip, reference)
    assert main(["video", "assemble", str(frames_dir), str(reference), "--reference",
                 str(reference), "--overwrite", "-q"]) == 2
    assert "is the reference video" in capsys.readouterr().err
    assert reference.read_bytes() == small_clip.read_bytes()
    assert main(["video", "assemble", str(frames_dir), str(output), "--preset", "ultrafast",
                 "--fps", "10", "--overwrite", "-q"]) == 0
    assert probe_video(output).fps == 10
    capsys.readouterr()

    assert main(["video", "info", str(output), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["frame_count"] == 11 and shown["has_audio"] is False
    assert main(["video", "info", str(small_clip)]) == 0
    text = capsys.readouterr().out
    assert "640x360" in text and "29.97 (2997/100)" in text and "aac" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["video", "info", "{missing}"],
        ["video", "frames", "{missing}", "{tmp}/out"],
        ["video", "assemble", "{tmp}/no frames", "{tmp}/out.mp4"],
        ["video", "assemble", "{tmp}", "{tmp}/out.mp4", "--reference", "{missing}"],
    ],
)
def test_cli_missing_input_is_one_line(tmp_path: Path, argv: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing ü.mp4"
    args = [a.format(missing=missing, tmp=tmp_path) for a in argv]
    assert main(args) != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swapface video: error:")
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out").exists()
