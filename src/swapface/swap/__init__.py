"""The swap engine: crop → model → mask → colour → sharpen → paste, one frame at a time.

``FrameSwapper(load_inference(folder_or_onnx), SwapOptions(...)).swap(image, faces)`` is what convert,
the one-frame preview, live mode and the web UI all drive. Masks, colour matching and
sharpening are plugins (:data:`MASKS`, :data:`COLOR_METHODS`, :data:`SHARPEN_METHODS`);
landmark smoothing along tracks is :class:`Centred` (offline, no lag) or :class:`Causal`
(live, no delay).
"""

from swapface.swap.color import COLOR_METHODS
from swapface.swap.engine import FrameSwapper, Prepared
from swapface.swap.loading import load_inference
from swapface.swap.masks import MASKS
from swapface.swap.model import InferenceModel, TorchModel, load_model
from swapface.swap.onnx_model import OnnxModel
from swapface.swap.options import SwapOptions
from swapface.swap.sharpen import SHARPEN_METHODS
from swapface.swap.smoothing import Causal, Centred, Smoother, SmoothStats

__all__ = [
    "COLOR_METHODS",
    "MASKS",
    "SHARPEN_METHODS",
    "Causal",
    "Centred",
    "FrameSwapper",
    "InferenceModel",
    "OnnxModel",
    "Prepared",
    "SmoothStats",
    "Smoother",
    "SwapOptions",
    "TorchModel",
    "load_inference",
    "load_model",
]
