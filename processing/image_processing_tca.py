"""Frame preprocessing of TCA's descriptor network (METHODS.md §1.1): resize the short side to 256, centre-crop
224, ImageNet mean/std. torch/numpy only, so it travels with a checkpoint (trust_remote_code)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_nchw_uint8(frames) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] / [H, W, 3] (numpy, torch or a list) -> uint8 tensor [N, 3, H, W]."""
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames: got an empty list")
        frames = np.stack([np.asarray(f) for f in frames])
    x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty uint8 array [N, H, W, 3], got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (0..255), got {x.dtype}")
    return x.permute(0, 3, 1, 2)


class TCAImageProcessor(BaseImageProcessor):
    r"""
    Frames -> `pixel_values` for [`FrameDescriptorModel`]: bilinear (antialiased) resize of the shorter side to
    `shortest_edge`, centre crop `crop_size`, scale to [0, 1], normalise with `image_mean`/`image_std`.

    Two halves can run apart: `resize_and_crop` (uint8 in, uint8 [N, 3, crop, crop] out; cheap to send from
    decoding worker processes) and `normalize_frames` (uint8 -> float32). `processor(frames)` does both.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        shortest_edge: int = 256,
        crop_size: int = 224,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(shortest_edge) < int(crop_size) or int(crop_size) <= 0:
            raise ValueError(
                f"need 0 < crop_size <= shortest_edge, got crop_size={crop_size}, "
                f"shortest_edge={shortest_edge}"
            )
        if len(image_mean) != 3 or len(image_std) != 3 or min(image_std) <= 0:
            raise ValueError(
                f"image_mean/image_std must be 3 values (std > 0), got {image_mean}, {image_std}"
            )
        self.shortest_edge = int(shortest_edge)
        self.crop_size = int(crop_size)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]

    def resize_and_crop(self, frames) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> uint8 [N, 3, crop, crop]."""
        x = _to_nchw_uint8(frames)
        height, width = x.shape[-2:]
        scale = self.shortest_edge / min(height, width)
        size = (max(self.shortest_edge, round(height * scale)), max(self.shortest_edge, round(width * scale)))
        if size != (height, width):
            x = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
            x = x.round_().clamp_(0, 255).to(torch.uint8)
        top, left = (size[0] - self.crop_size) // 2, (size[1] - self.crop_size) // 2
        return x[..., top : top + self.crop_size, left : left + self.crop_size].contiguous()

    def normalize_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> float32 [N, 3, H, W], ImageNet-normalised."""
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

    def preprocess(self, images, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """uint8 frames [N, H, W, 3] -> BatchFeature(pixel_values float32 [N, 3, crop, crop])."""
        if kwargs:
            raise TypeError(f"TCAImageProcessor.preprocess got unexpected arguments {sorted(kwargs)}")
        pixel_values = self.normalize_frames(self.resize_and_crop(images))
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)

    def __call__(self, images, **kwargs) -> BatchFeature:
        return self.preprocess(images, **kwargs)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TCAImageProcessor"]
