"""``swapface live -m MODEL --source SRC``: the driver that wires source, finder, smoother,
swapper and outputs together (see :mod:`swapface.live.pipeline`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from swapface.core.config import option
from swapface.core.errors import ConfigError
from swapface.core.progress import NEVER, CancelToken
from swapface.live.pipeline import LiveStats, LiveSwap, SwapStep
from swapface.swap.loading import ENGINES, check_model_path
from swapface.swap.options import SwapOptions

SELECT = ("largest", "all")


@dataclass
class LiveConfig:
    model_dir: Path = option(help="trained model folder, or a .onnx file from swapface export",
                             flags=["-m", "--model-dir"])
    source: str = option(help="camera (0, /dev/video0), stream URL, or a video file")
    realtime: bool = option(False, help="play a video file at its own frame rate (a camera stand-in)")
    mjpeg_port: int | None = option(
        8766, help="serve the swapped frames as MJPEG on 127.0.0.1:PORT (0: any free port; "
                   "--no-mjpeg to turn off)")
    mjpeg: bool = option(True, help="serve the MJPEG stream")
    record: Path | None = option(None, help="also record the shown frames to this video file")
    virtual_camera: str | None = option(
        None, help="also send the frames to a v4l2loopback virtual camera: /dev/videoN, or 'auto' "
                   "for the first one (video-call programs and OBS then see them as a camera)")
    badge: bool = option(True, help="draw a small 'SYNTHETIC' badge on the output")
    stats_overlay: bool = option(False, help="draw fps, latency and drops on the output frames "
                                             "(the MJPEG page shows them below the picture anyway)")
    faces: str = option("largest", help="which faces to swap", choices=list(SELECT))
    max_frames: int | None = option(None, help="stop after this many captured frames")
    detector: str = option("hog", help="face detector plugin")
    redetect_every: int = option(8, help="full-frame detection every N frames (tracked between)")
    upsample: int = option(
        0, help="detector upsampling for full detections (0: faces of ~80 px and up, the size of a "
                "face in front of a camera; each step costs ~4× and finds half that size)")
    cpu: bool = option(False, help="run the model on the CPU even when CUDA is present")
    engine: str = option(
        "auto", choices=list(ENGINES),
        help="inference engine: onnx (ONNX Runtime; a model folder is exported once per checkpoint "
             "and cached in it), torch, or auto (ONNX Runtime on the CPU, PyTorch on CUDA)")
    swap: SwapOptions = option(SwapOptions(), cli=False, help="how faces are swapped ([swap] table)")

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be at least 1")
        if self.mjpeg_port is not None and not 0 <= self.mjpeg_port < 65536:
            raise ConfigError("--mjpeg-port must be 0-65535")


def build_live(cfg: LiveConfig, emit) -> LiveSwap:  # type: ignore[no-untyped-def]
    """The pipeline for ``cfg``, its frames handed to ``emit(image, captured)``."""
    from swapface.convert.pipeline import identity_filter
    from swapface.faces import FaceFinder
    from swapface.faces.finder import FinderOptions
    from swapface.media.source import open_source
    from swapface.swap import Causal, FrameSwapper, load_inference

    source = open_source(cfg.source)
    if cfg.realtime and source.kind != "video":
        raise ConfigError("--realtime paces a video file; a camera or stream is real time already")
    fps = float(getattr(source, "fps", None) or 30)
    finder = FaceFinder.create(FinderOptions(detector=cfg.detector, track=True, upsample=cfg.upsample,
                                             redetect_every=cfg.redetect_every))
    model = load_inference(cfg.model_dir, cfg.engine, cfg.cpu, cfg.swap.coverage, side=cfg.swap.side)
    swapper = FrameSwapper(model, cfg.swap, identity=identity_filter(cfg))  # type: ignore[arg-type]
    step = SwapStep(finder, swapper, Causal(fps), largest_only=cfg.faces == "largest")
    return LiveSwap(source, step, emit, realtime=cfg.realtime, badge=cfg.badge,
                    stats_overlay=cfg.stats_overlay,
                    max_frames=cfg.max_frames)


def run_live(cfg: LiveConfig, cancel: CancelToken = NEVER) -> LiveStats:
    from swapface.live.outputs import MjpegServer, Recorder, VirtualCamera

    check_model_path(cfg.model_dir)  # before the MJPEG server starts
    camera = VirtualCamera(cfg.virtual_camera, 30) if cfg.virtual_camera else None
    sinks: list = []
    server = MjpegServer(port=cfg.mjpeg_port or 0) if cfg.mjpeg and cfg.mjpeg_port is not None else None
    if server is not None:
        sinks.append(server)
        print(f"swapface live: MJPEG at {server.url} (page: {server.url.rsplit('/', 1)[0]}/)",
              file=sys.stderr, flush=True)

    def emit(image, captured) -> None:  # type: ignore[no-untyped-def]
        for sink in sinks:
            sink.push(image, captured.index)
        if server is not None:
            server.stats = live.stats.to_dict()

    live = build_live(cfg, emit)
    fps = float(getattr(live.source, "fps", None) or 30)
    if camera is not None:
        camera.fps = fps
        sinks.append(camera)
    recorder = None
    if cfg.record is not None:
        recorder = Recorder(cfg.record, fps)
        sinks.append(recorder)
    failed = True
    try:
        stats = live.run(cancel)
        failed = False
    finally:
        if recorder is not None:
            recorder.close(failed=failed or stats.emitted == 0)
        if server is not None:
            server.close()
        if camera is not None:
            camera.close()
            if camera.error:
                print(f"swapface live: {camera.error}", file=sys.stderr)
    return stats
