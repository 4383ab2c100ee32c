"""Writers for convert: audio that follows kept frames, variable frame rate, GIF, no audio.

Clips (../shared/data/video, see SOURCES.md): woman_a.mp4 (1008 frames, 30 fps, AAC 44.1 kHz
whose first packet primes the decoder at -1024), woman_b.mp4 (354 frames, 512x512),
man_b.mp4 (352 frames, no audio).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from swapface.core.errors import ConfigError
from swapface.media import (
    GifWriter,
    VideoWriter,
    kept_spans,
    open_source,
    open_writer,
    parse_metadata_comment,
    probe_video,
    read_gif_comment,
)
from swapface.media.gif_format import walk
from swapface.media.timeline import Timeline, normalise_spans
from swapface.media.video import frame_times, iter_video_timed

RANGES = [(30, 89), (600, 659)]  # two 2-second pieces of woman_a
LABEL = {"comment": "synthetic media: face swapped by swapface", "synthetic_media": "true",
         "generator": "swapface"}


@pytest.fixture(scope="module")
def video_dir(data_dir: Path) -> Path:
    path = data_dir / "video"
    if not path.is_dir():
        pytest.skip(f"no video folder in {data_dir}")
    return path


@pytest.fixture(scope="module")
def kept(video_dir: Path) -> list:
    """The frames of woman_a inside RANGES (120 Frame objects, with exact times)."""
    out = []
    for frame in open_source(video_dir / "woman_a.mp4").frames():
        if frame.index > RANGES[-1][1]:
            break
        if any(lo <= frame.index <= hi for lo, hi in RANGES):
            out.append(frame)
    return out


def audio_packets(path: Path) -> tuple[list[tuple[int, int, bytes]], Fraction]:
    """(pts, duration, bytes) of every audio packet, and the stream's time base."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [(p.pts, p.duration, bytes(p)) for p in container.demux(stream)
                   if p.dts is not None]
        return packets, stream.time_base


def video_times(path: Path) -> list[Fraction]:
    return [f.time for f in iter_video_timed(path)]


# ---------------------------------------------------------------- timeline


def test_timeline_maps_kept_spans_end_to_end() -> None:
    timeline = Timeline([(1, 3), (Fraction(20), 22.5)])
    assert [(s.ref_start, s.ref_end, s.out_start) for s in timeline.segments] == [
        (1, 3, 0), (20, Fraction(45, 2), 2)]
    assert timeline.to_output(1) == 0 and timeline.to_output(Fraction(5, 2)) == Fraction(3, 2)
    assert timeline.to_output(20.5) == Fraction(5, 2)
    assert timeline.to_output(1 - 1e-9) == 0  # float noise at the span's start
    with pytest.raises(ValueError, match="outside the kept spans"):
        timeline.to_output(10)
    open_ended = Timeline()
    open_ended.start_at(Fraction(10214, 11988))
    assert open_ended.to_output(Fraction(10614, 11988)) == Fraction(400, 11988)

    assert normalise_spans([(0, 1), (1, 2), (5, 6)]) == [(0, 2), (5, 6)]  # touching: merged
    for bad in ([(2, 1)], [(0, 3), (2, 4)], [(5, 6), (0, 1)], []):
        with pytest.raises(ValueError):
            normalise_spans(bad)


def test_kept_spans_are_frame_boundaries(video_dir: Path) -> None:
    clip = video_dir / "small_faces_with_audio.mp4"  # video starts 10214/11988 s in
    times = frame_times(clip)
    assert len(times) == 275
    assert [t for t, _ in times] == [f.time for f in iter_video_timed(clip)][:275]
    start = Fraction(10214, 11988)
    spans = kept_spans(clip, [(0, 9), (10, 19), (100, 100), (270, 999)])
    step = Fraction(400, 11988)
    assert spans == [(start, start + 20 * step), (start + 100 * step, start + 101 * step),
                     (start + 270 * step, start + 275 * step)]  # merged and clipped


# ---------------------------------------------------------------- audio that follows the frames


@pytest.mark.parametrize(("suffix", "timed"), [(".mp4", False), (".mkv", True)])
def test_audio_spans_follow_kept_frames(video_dir: Path, kept: list, tmp_path: Path,
                                        suffix: str, timed: bool) -> None:
    clip = video_dir / "woman_a.mp4"
    spans = kept_spans(clip, RANGES)
    assert spans == [(1, 3), (20, 22)]  # 30 fps, video from 0
    out = tmp_path / f"kept{suffix}"
    with VideoWriter(out, 30, audio_from=clip, audio_spans=spans, preset="ultrafast") as writer:
        for frame in kept:
            writer.write(frame.image, pts=frame.time if timed else None)
    assert writer.frames_written == 120

    stamps = video_times(out)
    assert len(stamps) == 120 == probe_video(out).frame_count
    assert np.allclose([float(t - stamps[0]) for t in stamps], np.arange(120) / 30, atol=1e-3)

    src, src_tb = audio_packets(clip)
    packets, tb = audio_packets(out)
    packet = Fraction(1024, 44100)
    pts = [float(p * tb) for p, _, _ in packets]
    assert (np.diff(pts) > 0).all()  # monotonic
    # No gaps or overlaps: each packet starts where the one before ends (to the container's
    # clock: 1 ms in Matroska).
    ends = [float((p + d) * tb) for p, d, _ in packets]
    assert np.allclose(pts[1:], ends[:-1], atol=float(tb) + 1e-9)
    audible = ends[-1] - max(0.0, pts[0])
    kept_seconds = float(sum(e - s for s, e in spans))
    cuts = 2 * len(spans)
    assert abs(audible - kept_seconds) <= cuts * float(packet)  # measured: 8 ms (mp4)
    assert abs(ends[-1] - len(stamps) / 30) <= float(packet)  # audio ends with the video

    # Lip sync: every output packet is a source packet (stream copy), taken from the span
    # its output time falls in, within half a packet (the first span: exactly).
    by_bytes: dict[bytes, list[Fraction]] = {}
    for p, _, data in src:
        by_bytes.setdefault(data, []).append(p * src_tb)
    offsets = []
    for p, _, data in packets:
        at = Fraction(p) * tb
        seg = 0 if at < 2 - packet / 2 else 1
        expected = at + spans[seg][0] - (0 if seg == 0 else 2)
        error = min(abs(t - expected) for t in by_bytes[data])
        offsets.append((seg, float(error)))
    assert max(e for s, e in offsets if s == 0) <= float(tb)
    assert max(e for s, e in offsets if s == 1) <= float(packet) / 2 + float(tb)
    assert sum(1 for s, _ in offsets if s == 1) >= 80  # about 2 s of 23 ms packets


def test_no_audio_reference_writes_video_only(video_dir: Path, tmp_path: Path) -> None:
    clip = video_dir / "man_b.mp4"
    frames = [f.image for f in open_source(clip).frames() if f.index < 5]
    for spans in (None, [(0, Fraction(5, 30))]):
        out = tmp_path / "silent.mp4"
        with VideoWriter(out, 30, audio_from=clip, audio_spans=spans,
                         preset="ultrafast") as writer:
            for image in frames:
                writer.write(image)
        assert writer.audio_packets_written == 0
        info = probe_video(out)
        assert (info.frame_count, info.has_audio) == (5, False)
    assert [p.name for p in tmp_path.iterdir()] == ["silent.mp4"]


# ---------------------------------------------------------------- variable frame rate


def make_vfr(path: Path, gaps_ms: list[int]) -> list[Fraction]:
    """A small H.264 MP4 whose frames come at the irregular intervals ``gaps_ms``."""
    times = [0, *np.cumsum(gaps_ms).tolist()]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(times):
            image = np.full((48, 64, 3), (i * 37) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = int(ms), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [Fraction(int(ms), 1000) for ms in times]


def test_variable_frame_rate_is_kept(tmp_path: Path) -> None:
    source = tmp_path / "vfr.mp4"
    make_vfr(source, [33, 50, 17, 100, 40, 33, 33, 66, 20, 80, 33, 45, 120, 33, 25, 33])
    src_times = video_times(source)
    assert len(src_times) == 17
    out = tmp_path / "out.mp4"
    with VideoWriter(out, probe_video(source).fps, preset="ultrafast") as writer:
        for frame in open_source(source).frames():
            writer.write(frame.image, pts=frame.time, duration=frame.duration)
    out_times = video_times(out)
    assert len(out_times) == 17 == probe_video(out).frame_count
    rel_in = np.array([float(t - src_times[0]) for t in src_times])
    rel_out = np.array([float(t - out_times[0]) for t in out_times])
    assert np.abs(rel_out - rel_in).max() <= 1e-3
    assert probe_video(out).duration == pytest.approx(probe_video(source).duration, abs=1e-3)

    # The same input as a GIF: centisecond delays, same frame count.
    gif = tmp_path / "out.gif"
    with GifWriter(gif, 30, palette_frames=5) as writer:  # the palette before the end
        for frame in open_source(source).frames():
            writer.write(frame.image, pts=frame.time)
    gif_times = np.array([float(t) for t in video_times(gif)])
    assert len(gif_times) == 17
    assert np.abs(gif_times - gif_times[0] - rel_in).max() <= 0.0051

    with pytest.raises(ValueError, match="every frame a pts"), \
            VideoWriter(tmp_path / "mixed.mp4", 30) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8), pts=0)
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert not (tmp_path / "mixed.mp4").exists()


def test_constant_rate_source_with_pts_keeps_its_rate(video_dir: Path, tmp_path: Path) -> None:
    # 29.97 fps, video starting 0.85 s after the audio: with pts, the output is the same as
    # without — exact rate, frame 0 at 0, audio aligned (the clock is 1/29 970 000 s).
    clip = video_dir / "small_faces_with_audio.mp4"
    out = tmp_path / "timed.mp4"
    with VideoWriter(out, probe_video(clip).fps, audio_from=clip, preset="ultrafast") as writer:
        for frame in open_source(clip).frames():
            if frame.index >= 12:
                break
            writer.write(frame.image, pts=frame.time, duration=frame.duration)
    info = probe_video(out)
    assert (info.fps, info.frame_count, info.has_audio) == (Fraction(2997, 100), 12, True)
    assert video_times(out) == [i * Fraction(100, 2997) for i in range(12)]
    packets, _ = audio_packets(out)
    assert packets[0][0] < 0 <= packets[2][0]  # decoder primer, then the straddling packet


# ---------------------------------------------------------------- GIF


def test_gif_writer_frames_palette_and_label(video_dir: Path, tmp_path: Path) -> None:
    from PIL import Image  # dev dependency: an independent reader

    clip = video_dir / "woman_b.mp4"
    frames = [f.image for f in open_source(clip).frames() if f.index < 40]
    out = tmp_path / "swap.gif"
    writer = open_writer(out, probe_video(clip).fps, audio_from=clip, metadata=LABEL)
    assert isinstance(writer, GifWriter)
    with writer:
        for image in frames:
            writer.write(image)
    assert writer.frames_written == 40
    assert [p.name for p in tmp_path.iterdir()] == ["swap.gif"]  # no temp left

    assert parse_metadata_comment(read_gif_comment(out)) == LABEL
    comments, images = walk(out.read_bytes())
    assert images == 40 and len(comments) == 1
    with Image.open(out) as im:
        assert im.n_frames == 40
        assert b"synthetic_media=true" in im.info["comment"]
    decoded = [f.image for f in open_source(out).frames()]
    assert len(decoded) == 40
    assert probe_video(out).duration == pytest.approx(40 / 30, abs=0.011)
    # 256 dithered colours: close to the source after a light blur (measured: 0.9).
    import cv2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (5, 5), 0).astype(np.int16)

    diffs = [np.abs(blur(a) - blur(b)).mean() for a, b in zip(decoded, frames, strict=True)]
    assert max(diffs) < 2.5


def test_open_writer_picks_by_suffix(tmp_path: Path) -> None:
    assert isinstance(open_writer(tmp_path / "a.MP4", 25), VideoWriter)
    assert isinstance(open_writer(tmp_path / "a.mkv", 25), VideoWriter)
    with pytest.raises(ConfigError, match="must end in"):
        open_writer(tmp_path / "a.avi", 25)
    with pytest.raises(ValueError, match="no frames"), open_writer(tmp_path / "e.gif", 10):
        pass
    with pytest.raises(RuntimeError), open_writer(tmp_path / "e.gif", 10) as writer:
        writer.write(np.zeros((8, 8, 3), np.uint8))
        raise RuntimeError("stage crashed")
    assert list(tmp_path.iterdir()) == []


def test_a_writer_sweeps_what_killed_writers_left(tmp_path: Path) -> None:
    """SIGKILL leaves a hidden temp file; the next write into the folder removes it, while
    a live writer's temp file (and a file that only looks similar) stays."""
    import socket
    import subprocess
    import sys

    from swapface.media import open_writer

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = socket.gethostname()
    leftover = tmp_path / f".out.{host}-{dead.stdout.strip()}.k2j3.part.mp4"
    live = tmp_path / f".out.{host}-{os.getpid()}.x9z8.part.mp4"
    other_host = tmp_path / f".out.elsewhere-{dead.stdout.strip()}.a1b2.part.mp4"
    mine = tmp_path / ".notes.part.txt"
    for path in (leftover, live, other_host, mine):
        path.write_bytes(b"x" * 1000)
    with open_writer(tmp_path / "out.mp4", 25) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert not leftover.exists()
    assert live.exists() and other_host.exists() and mine.exists()
    assert (tmp_path / "out.mp4").is_file()
    # Face files and frames are written the same way (their suffix follows ".part").
    from swapface.core.fileio import sweep_partials

    face = tmp_path / f".clip_000016_0.{host}-{dead.stdout.strip()}.g8rjcm3w.png.part"
    face.write_bytes(b"x")
    assert sweep_partials(tmp_path) == [face] and live.exists()
