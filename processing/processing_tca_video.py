"""Processor of the composite TCA video model: decode a video (decord, PyAV fallback: `video_reader`), sample
it at the model's frame rate, resize / crop / normalise the frames (`TCAImageProcessor`) and pad a batch.

Imports only numpy, torch, transformers and its siblings `image_processing_tca.py` and `video_reader.py`, so it
travels with a checkpoint (trust_remote_code).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .image_processing_tca import TCAImageProcessor
from .video_reader import fps_step, read_video, uniform_indices


class TCAVideoProcessor(ProcessorMixin):
    r"""
    Videos -> `pixel_values` [B, F, 3, crop, crop], `attention_mask` [B, F] (1 = frame, 0 = padding) and
    `timestamps` [B, F] (seconds; padding holds -1) for [`TCAVideoModel`].

    A video is a file path (decoded with decord, PyAV as fallback, sampled at `fps`: frame 0 and every
    `round(native_fps / fps)`-th frame) or decoded uint8 frames [N, H, W, 3]; frames given with `video_fps`
    (their rate) are sampled the same way, without it they are taken as already sampled at `fps`.

    Args:
        image_processor ([`TCAImageProcessor`], *optional*): the frame preprocessing (default 256 -> 224).
        fps (`float`, defaults to 1.0): frames kept per second (the paper's 1 fps).
        max_frames (`int`, *optional*): at most this many frames per video, uniformly spread over the sampled ones.
        backend (`str`, defaults to `"auto"`): `"auto"` (decord, PyAV fallback), `"decord"` or `"pyav"`.
        min_duration (`float`, defaults to 0.0): shortest accepted video file, seconds.
    """

    attributes = ["image_processor"]

    def __init__(
        self,
        image_processor=None,
        fps: float = 1.0,
        max_frames: int | None = None,
        backend: str = "auto",
        min_duration: float = 0.0,
        **kwargs,
    ):
        if not float(fps) > 0:
            raise ValueError(f"TCAVideoProcessor.fps must be positive, got {fps!r}")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames <= 0):
            raise ValueError(
                f"TCAVideoProcessor.max_frames must be a positive int or None, got {max_frames!r}"
            )
        self.fps = float(fps)
        self.max_frames = max_frames
        self.backend = backend
        self.min_duration = float(min_duration)
        super().__init__(image_processor if image_processor is not None else TCAImageProcessor(), **kwargs)

    def sample_video(self, video, video_fps: float | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """One video -> (uint8 [F, 3, crop, crop] resized and cropped frames, timestamps [F] in seconds)."""
        if isinstance(video, (str, os.PathLike)):
            clip = read_video(
                video,
                fps=self.fps,
                backend=self.backend,
                transform=self.image_processor.resize_and_crop,
                min_duration=self.min_duration,
            )
            frames, stamps = clip.frames, np.asarray(clip.timestamps, dtype=np.float64)
        else:
            array = video if isinstance(video, torch.Tensor) else np.asarray(video)
            if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
                raise ValueError(
                    f"TCAVideoProcessor: a video must be a path or uint8 frames [N, H, W, 3], got shape "
                    f"{tuple(array.shape)}"
                )
            if video_fps is not None:
                step = fps_step(video_fps, self.fps)
                array = array[::step]
                stamps = np.arange(array.shape[0], dtype=np.float64) * step / float(video_fps)
            else:
                stamps = np.arange(array.shape[0], dtype=np.float64) / self.fps
            frames = self.image_processor.resize_and_crop(array)
        if self.max_frames is not None and frames.shape[0] > self.max_frames:
            keep = uniform_indices(frames.shape[0], self.max_frames)
            frames, stamps = frames[torch.as_tensor(keep)], stamps[keep]
        return frames, stamps

    def __call__(self, videos=None, video_fps=None, return_tensors: str = "pt", **kwargs) -> BatchFeature:
        """`videos`: one video or a list (paths or frame arrays); `video_fps`: the rate of given frame arrays
        (one value or one per video)."""
        if kwargs:
            raise TypeError(f"TCAVideoProcessor got unexpected arguments {sorted(kwargs)}")
        if videos is None:
            raise ValueError(
                "TCAVideoProcessor needs `videos` (a path, frames [N, H, W, 3], or a list of them)"
            )
        if isinstance(videos, (str, os.PathLike)) or getattr(videos, "ndim", 0) == 4:
            videos = [videos]
        videos = list(videos)
        if not videos:
            raise ValueError("TCAVideoProcessor: got an empty list of videos")
        rates = list(video_fps) if isinstance(video_fps, (list, tuple)) else [video_fps] * len(videos)
        if len(rates) != len(videos):
            raise ValueError(f"video_fps: got {len(rates)} values for {len(videos)} videos")
        sampled = [self.sample_video(v, r) for v, r in zip(videos, rates)]
        longest = max(frames.shape[0] for frames, _ in sampled)
        crop = self.image_processor.crop_size
        pixel_values = torch.zeros(len(sampled), longest, 3, crop, crop, dtype=torch.float32)
        attention_mask = torch.zeros(len(sampled), longest, dtype=torch.long)
        timestamps = torch.full((len(sampled), longest), -1.0, dtype=torch.float64)
        for i, (frames, stamps) in enumerate(sampled):
            n = frames.shape[0]
            pixel_values[i, :n] = self.image_processor.normalize_frames(frames)
            attention_mask[i, :n] = 1
            timestamps[i, :n] = torch.as_tensor(stamps)
        data = {"pixel_values": pixel_values, "attention_mask": attention_mask, "timestamps": timestamps}
        return BatchFeature(data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values", "attention_mask"]


__all__ = ["TCAVideoProcessor"]
