"""Aligner plugins; importing this package registers every built-in one."""

from swapface.faces.aligners import dlib68, mediapipe_mesh  # noqa: F401
from swapface.faces.aligners.base import ALIGNERS, Aligner, box_from_landmarks

__all__ = ["ALIGNERS", "Aligner", "box_from_landmarks"]
