"""Reading and writing video and image folders; every stage gets its frames from here."""

from swapface.media.frames_io import AssembleSummary, ExportSummary, assemble_video, export_frames
from swapface.media.source import Frame, FrameSource, open_source
from swapface.media.video import VideoInfo, probe_video
from swapface.media.video_writer import VideoWriter

__all__ = [
    "AssembleSummary",
    "ExportSummary",
    "Frame",
    "FrameSource",
    "VideoInfo",
    "VideoWriter",
    "assemble_video",
    "export_frames",
    "open_source",
    "probe_video",
]
