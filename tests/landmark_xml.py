"""Reader for dlib imglab XML files with hand-labelled boxes and 68-point landmarks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LabelledFace:
    image: str
    box: tuple[float, float, float, float]  # left, top, right, bottom
    landmarks: np.ndarray  # (68, 2)


def read_labelled_faces(folder: Path) -> list[LabelledFace]:
    faces = []
    for xml in sorted(folder.glob("*_with_face_landmarks.xml")):
        for image in ET.parse(xml).getroot().iter("image"):
            for box in image.iter("box"):
                left, top = float(box.get("left")), float(box.get("top"))
                w, h = float(box.get("width")), float(box.get("height"))
                parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
                pts = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
                faces.append(LabelledFace(image.get("file"), (left, top, left + w, top + h), pts))
    return faces
