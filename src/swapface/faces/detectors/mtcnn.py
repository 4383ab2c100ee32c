"""MTCNN (Zhang et al. 2016) in plain PyTorch, using the weights bundled in facenet-pytorch.

facenet-pytorch itself is never imported (its ``__init__`` needs torchvision); only its
``data/{pnet,rnet,onet}.pt`` state dicts are read. Install them with
``pip install --no-deps facenet-pytorch==2.6.0``.

Scores are O-Net face probabilities (0..1); ``points5`` are MTCNN's keypoints: eye, eye, nose,
mouth corner, mouth corner, each pair ordered image-left first (subject's right for a frontal face).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from swapface.core.errors import ConfigError
from swapface.faces.bundled import package_dir
from swapface.faces.detectors.base import DETECTORS, Detection, DetectorOptions

if TYPE_CHECKING:
    import torch

_NETS = ("pnet", "rnet", "onet")
_THRESHOLDS = (0.6, 0.7, 0.7)  # per-stage face-probability cuts of the reference MTCNN
_FACTOR = 0.709  # pyramid step: each level's face size is ~1/sqrt(2) of the previous


def _weight_path(net: str) -> Path | None:
    root = package_dir("facenet_pytorch")
    return root / "data" / f"{net}.pt" if root else None


def _weights_present() -> bool:
    return all((p := _weight_path(n)) is not None and p.is_file() for n in _NETS)


@cache
def _net_classes() -> tuple[type, type, type]:
    """P/R/O-Net modules, built lazily so importing swapface does not import torch.

    Layer names match facenet-pytorch's state dicts. The dense layers flatten in (W, H, C)
    order because the weights come from a column-major (Caffe/Matlab) model.
    """
    from torch import nn

    def conv(name: str, cin: int, cout: int, k: int) -> dict[str, nn.Module]:
        return {f"conv{name}": nn.Conv2d(cin, cout, k), f"prelu{name}": nn.PReLU(cout)}

    def pool(name: str, k: int) -> dict[str, nn.Module]:
        return {f"pool{name}": nn.MaxPool2d(k, 2, ceil_mode=True)}

    class _Net(nn.Module):
        def __init__(self, layers: dict[str, nn.Module], heads: dict[str, nn.Module]) -> None:
            super().__init__()
            self.body = list(layers)  # names in order; modules registered as attributes
            self.heads = list(heads)
            for name, mod in {**layers, **heads}.items():
                self.add_module(name, mod)

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            """Heads in order: box offsets, [keypoints,] face/non-face logits."""
            for name in self.body:
                layer = getattr(self, name)
                if isinstance(layer, nn.Linear) and x.ndim == 4:
                    x = x.permute(0, 3, 2, 1).flatten(1)
                x = layer(x)
            return [getattr(self, h)(x) for h in self.heads]

    class PNet(_Net):  # fully convolutional: 12x12 windows at stride 2
        def __init__(self) -> None:
            super().__init__({**conv("1", 3, 10, 3), **pool("1", 2), **conv("2", 10, 16, 3),
                              **conv("3", 16, 32, 3)},
                             {"conv4_2": nn.Conv2d(32, 4, 1), "conv4_1": nn.Conv2d(32, 2, 1)})

    class RNet(_Net):  # 24x24 crops
        def __init__(self) -> None:
            super().__init__({**conv("1", 3, 28, 3), **pool("1", 3), **conv("2", 28, 48, 3),
                              **pool("2", 3), **conv("3", 48, 64, 2),
                              "dense4": nn.Linear(576, 128), "prelu4": nn.PReLU(128)},
                             {"dense5_2": nn.Linear(128, 4), "dense5_1": nn.Linear(128, 2)})

    class ONet(_Net):  # 48x48 crops; the extra head gives the 5 keypoints
        def __init__(self) -> None:
            super().__init__({**conv("1", 3, 32, 3), **pool("1", 3), **conv("2", 32, 64, 3),
                              **pool("2", 3), **conv("3", 64, 64, 3), **pool("3", 2),
                              **conv("4", 64, 128, 2),
                              "dense5": nn.Linear(1152, 256), "prelu5": nn.PReLU(256)},
                             {"dense6_2": nn.Linear(256, 4), "dense6_3": nn.Linear(256, 10),
                              "dense6_1": nn.Linear(256, 2)})

    return PNet, RNet, ONet


def _nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, thr: float,
         use_min: bool = False) -> torch.Tensor:
    """Greedy NMS per group (image); kept indices, best first. ``use_min``: overlap over the
    smaller area (MTCNN's last stage), which also drops small boxes nested in big ones."""
    import torch

    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    # shift each group far apart so boxes of different images never overlap
    b = boxes[order] + (groups[order] * (boxes.max() + 1)).to(boxes.dtype)[:, None]
    area = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    over = []
    for i in range(0, len(b), 1024):  # row blocks keep memory at 1024 x N
        r = slice(i, i + 1024)
        inter = (torch.minimum(b[r, None, 2:], b[None, :, 2:])
                 - torch.maximum(b[r, None, :2], b[None, :, :2])).clamp(min=0).prod(2)
        a, o = area[r, None], area[None, :]
        denom = torch.minimum(a, o) if use_min else a + o - inter
        over.append(inter > thr * denom)
    over_np = torch.cat(over).cpu().numpy()
    keep = np.ones(len(b), dtype=bool)
    for i in range(len(b)):  # sequential by nature; rows are cheap numpy ops
        if keep[i]:
            keep[i + 1:] &= ~over_np[i, i + 1:]
    return order[torch.from_numpy(keep).to(order.device)]


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply a net's box offsets, given as fractions of the box size."""
    size = (boxes[:, 2:4] - boxes[:, :2]).repeat(1, 2)
    return boxes[:, :4] + reg * size


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (the next net takes square crops)."""
    import torch

    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, :2]).max(1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], 1)


@DETECTORS.register("mtcnn", options=DetectorOptions, available=_weights_present, gpu=True,
                    description="MTCNN cascade in PyTorch (weights from facenet-pytorch): "
                    "batched on a GPU, scores 0-1, 5 keypoints")
class MtcnnDetector:
    """MTCNN cascade; batched over images, same-size images share P-Net passes."""

    name = "mtcnn"
    dlib_box_style = False
    batch_size = 16  # frames per detect() call when the extract is not tracking (GPU)

    def __init__(self, options: DetectorOptions | None = None, device: str = "cpu") -> None:
        import torch

        if not _weights_present():
            raise ConfigError("mtcnn weights not found: pip install --no-deps "
                              "facenet-pytorch==2.6.0 (never without --no-deps)")
        options = options or DetectorOptions()
        self.upsample = options.upsample
        self.threshold = options.threshold
        self.device = device
        nets: list[Any] = [cls() for cls in _net_classes()]
        for net, name in zip(nets, _NETS, strict=True):
            path = str(_weight_path(name))
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            net.to(self.device).eval()
        self.pnet, self.rnet, self.onet = nets

    def detect(self, images: Sequence[np.ndarray], upsample: int | None = None
               ) -> list[list[Detection]]:
        import torch

        up = self.upsample if upsample is None else upsample
        min_face = 80 / 2**up  # dlib's upsample meaning: 80 px at 0, halved per step
        out: list[list[Detection]] = [[] for _ in images]
        if not images:
            return out
        with torch.inference_mode():
            imgs = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device)
                    .permute(2, 0, 1).flip(0).float() for im in images]  # BGR -> RGB, CHW
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, t in enumerate(imgs):
                by_shape.setdefault(tuple(t.shape), []).append(i)
            found = [self._stage1(torch.stack([imgs[i] for i in idx]), idx, min_face)
                     for idx in by_shape.values()]
            boxes, owner, scores, points = self._refine(
                imgs, torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found]))
            for (x1, y1, x2, y2), score, pts, i in zip(
                    boxes.tolist(), scores.tolist(), points.cpu().numpy(), owner.tolist(),
                    strict=True):
                if self.threshold is None or score >= self.threshold:
                    out[i].append(Detection((x1, y1, x2, y2), score, pts))
        return out

    def _stage1(self, batch: torch.Tensor, idx: list[int], min_face: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over a scale pyramid: square candidate boxes and their image indices."""
        import torch
        import torch.nn.functional as F

        h, w = batch.shape[2:]
        scale = 12 / min_face  # maps the smallest wanted face onto P-Net's 12 px window
        cands, owners = [], []
        while min(h, w) * scale >= 12:
            size = (math.ceil(h * scale), math.ceil(w * scale))
            sy, sx = size[0] / h, size[1] / w  # exact per-axis scale after rounding
            reg, prob = self.pnet(_normalise(F.interpolate(batch, size=size, mode="area")))
            prob = prob.softmax(1)[:, 1]
            img, yy, xx = (prob >= _THRESHOLDS[0]).nonzero(as_tuple=True)
            x1, y1 = 2 * xx / sx, 2 * yy / sy  # P-Net output stride is 2
            b = torch.stack([x1, y1, x1 + 12 / sx, y1 + 12 / sy], 1)
            keep = _nms(b, prob[img, yy, xx], img, 0.5)
            cands.append(torch.cat([b, prob[img, yy, xx, None],
                                    reg.permute(0, 2, 3, 1)[img, yy, xx]], 1)[keep])
            owners.append(img[keep])
            scale *= _FACTOR
        if not cands:
            return batch.new_zeros(0, 4), torch.zeros(0, dtype=torch.long, device=batch.device)
        c, img = torch.cat(cands), torch.cat(owners)
        keep = _nms(c[:, :4], c[:, 4], img, 0.7)  # merge the pyramid levels
        ids = torch.as_tensor(idx, device=batch.device)
        return _square(_regress(c[keep], c[keep, 5:9])), ids[img[keep]]

    def _refine(self, imgs: list[torch.Tensor], boxes: torch.Tensor, owner: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """R-Net then O-Net on crops of all images' candidates together."""
        if len(boxes):
            reg, prob = self.rnet(_crops(imgs, boxes, owner, 24))
            score = prob.softmax(1)[:, 1]
            ok = score > _THRESHOLDS[1]
            boxes, owner, score, reg = boxes[ok], owner[ok], score[ok], reg[ok]
            keep = _nms(boxes, score, owner, 0.7)
            boxes, owner = _square(_regress(boxes[keep], reg[keep])), owner[keep]
        if not len(boxes):
            return boxes, owner, boxes.new_zeros(0), boxes.new_zeros(0, 5, 2)
        reg, pts, prob = self.onet(_crops(imgs, boxes, owner, 48))
        score = prob.softmax(1)[:, 1]
        ok = score > _THRESHOLDS[2]
        boxes, owner, score, reg, pts = boxes[ok], owner[ok], score[ok], reg[ok], pts[ok]
        # keypoints are fractions of the square O-Net crop: x1..x5 then y1..y5
        size = boxes[:, 2:4] - boxes[:, :2]
        points = pts.view(-1, 2, 5).transpose(1, 2) * size[:, None] + boxes[:, None, :2]
        boxes = _regress(boxes, reg)
        keep = _nms(boxes, score, owner, 0.7, use_min=True)
        return boxes[keep], owner[keep], score[keep], points[keep]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125  # the [-1, 1] input range MTCNN was trained on


def _crops(imgs: list[torch.Tensor], boxes: torch.Tensor, owner: torch.Tensor, size: int
           ) -> torch.Tensor:
    """Each box resampled to size x size; parts outside the image are black, as in MTCNN."""
    import torch
    import torch.nn.functional as F

    out = []
    for (x1, y1, x2, y2), i in zip(boxes[:, :4].round().int().tolist(), owner.tolist(),
                                   strict=True):
        img = imgs[i]
        h, w = img.shape[1:]
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
            patch = img[:, y1:y2, x1:x2]
        else:
            patch = img.new_zeros(3, y2 - y1, x2 - x1)
            sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if sx2 > sx1 and sy2 > sy1:
                patch[:, sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[:, sy1:sy2, sx1:sx2]
        out.append(F.interpolate(patch[None], size=(size, size), mode="area"))
    return _normalise(torch.cat(out))

