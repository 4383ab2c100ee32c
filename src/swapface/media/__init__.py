"""Reading and writing video and image folders; every stage gets its frames from here."""

from swapface.media.frames_io import AssembleSummary, ExportSummary, assemble_video, export_frames
from swapface.media.gif_format import parse_metadata_comment, read_gif_comment
from swapface.media.gif_writer import GifWriter
from swapface.media.source import Frame, FrameSource, open_source
from swapface.media.timeline import Timeline, kept_spans
from swapface.media.video import VideoInfo, frame_times, probe_video
from swapface.media.video_writer import VideoWriter
from swapface.media.writers import WRITER_SUFFIXES, FrameWriter, is_writer_path, open_writer

__all__ = [
    "WRITER_SUFFIXES",
    "AssembleSummary",
    "ExportSummary",
    "Frame",
    "FrameSource",
    "FrameWriter",
    "GifWriter",
    "Timeline",
    "VideoInfo",
    "VideoWriter",
    "assemble_video",
    "export_frames",
    "frame_times",
    "is_writer_path",
    "kept_spans",
    "open_source",
    "open_writer",
    "parse_metadata_comment",
    "probe_video",
    "read_gif_comment",
]
