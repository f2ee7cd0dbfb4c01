"""Video–text data for LocVTP pre-training: seeded torch augmentation and a decoding collator.

Rows come from the captions table (`processing.captions.load_caption_dataset`).

* `VideoAugment`: random resized crop, horizontal flip and colour jitter, the same draw for every frame
  of a video, from a per-item seeded generator (reproducible across DataLoader workers).
* `VideoTextCollator`: runs in DataLoader workers; draws each item's jittered sparse clip plan inside
  [start, end) (`LocVTPProcessor.fetch_clips` with the item's generator: new offsets every epoch), decodes
  only those frames with the project's video reader (decord, PyAV fallback; resized while decoding),
  augments them, and calls the LocVTP processor (the plan + tokenizer). Unreadable or missing videos are skipped and returned in
  `batch["failed"]` so the training loop can report them; a batch with no readable item is `None`.
"""

from __future__ import annotations

import dataclasses
import math

import datasets
import torch

from ..processing.video_reader import VideoDecodeError


class VideoAugment:
    """Random resized crop + horizontal flip + colour jitter on uint8 frames [N, H, W, 3] (torch only).

    One draw per video (all frames share it). `scale`: range of the crop's area fraction, `ratio`: of its
    aspect ratio; the crop is resized back to the input size. Jitter multiplies brightness, contrast and
    saturation by factors in [1 - j, 1 + j].
    """

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_prob: float = 0.5,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
    ):
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        if not 0 <= flip_prob <= 1:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.crop_scale, self.crop_ratio, self.flip_prob = crop_scale, crop_ratio, flip_prob
        self.jitter = (brightness, contrast, saturation)

    def sample(self, height: int, width: int, generator: torch.Generator) -> dict:
        """The random parameters of one video: crop box (top, left, h, w), flip, jitter factors."""

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * float(torch.rand((), generator=generator))

        area = height * width
        box = (0, 0, height, width)
        for _ in range(10):
            target = area * uniform(*self.crop_scale)
            aspect = math.exp(uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])))
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                box = (top, left, h, w)
                break
        flip = float(torch.rand((), generator=generator)) < self.flip_prob
        factors = tuple(uniform(1 - j, 1 + j) for j in self.jitter)
        return {
            "box": box,
            "flip": flip,
            "brightness": factors[0],
            "contrast": factors[1],
            "saturation": factors[2],
        }

    @staticmethod
    def apply(frames: torch.Tensor, params: dict) -> torch.Tensor:
        """Apply `params` to uint8 frames [N, H, W, 3]; returns uint8 [N, H, W, 3] of the same size."""
        height, width = frames.shape[1:3]
        top, left, h, w = params["box"]
        x = frames[:, top : top + h, left : left + w].permute(0, 3, 1, 2).float() / 255  # [N, 3, h, w]
        if (h, w) != (height, width):
            x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        if params["flip"]:
            x = x.flip(-1)
        x = x * params["brightness"]
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]  # [N, 1, H, W]
        x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * params["contrast"] + gray.mean(
            dim=(1, 2, 3), keepdim=True
        )
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        x = (x - gray) * params["saturation"] + gray
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(frames, self.sample(frames.shape[1], frames.shape[2], generator))


class VideoTextCollator:
    """Collate rows of `load_caption_dataset` into LocVTP inputs (decoding happens here, in the workers).

    Each item's randomness comes from `torch.Generator().manual_seed(hash(seed, epoch, row index))`, so a run
    is reproducible whatever the number of workers. Call `set_epoch` between epochs (before the loader's
    iterator is created, i.e. with persistent_workers=False).
    """

    def __init__(self, processor, augment: VideoAugment | None = None, seed: int = 0, max_length: int = 32):
        self.processor, self.augment, self.seed, self.max_length = processor, augment, seed, max_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, items: list[dict]) -> dict | None:
        videos, captions, rates, ids, failed = [], [], [], [], []
        for item in items:
            index = int(item.get("__index__", 0))
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**63 - 1)
            )
            try:
                planned = self.processor.fetch_clips(
                    item["video_path"], item["start"], item["end"], mode="train", generator=generator
                )
            except (VideoDecodeError, ValueError, OSError) as error:
                failed.append(
                    {
                        "video_id": item["video_id"],
                        "video_path": item["video_path"],
                        "error": f"{type(error).__name__}: {error}",
                    }
                )
                continue
            if self.augment is not None:
                frames = self.augment(torch.from_numpy(planned.frames), generator).numpy()
                planned = dataclasses.replace(planned, frames=frames)
            videos.append(planned)
            captions.append(item["caption"])
            rates.append(planned.fps)
            ids.append(item["video_id"])
        if not videos:
            return {"failed": failed, "video_ids": []} if failed else None
        batch = dict(
            self.processor(text=captions, videos=videos, mode="train", fps=rates, max_length=self.max_length)
        )
        batch["video_ids"] = ids
        batch["failed"] = failed
        return batch


class IndexedDataset(torch.utils.data.Dataset):
    """Wraps a `datasets.Dataset` so that each row carries its index (`__index__`, for per-item seeds)."""

    def __init__(self, rows: datasets.Dataset):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return {**self.rows[int(index)], "__index__": int(index)}


__all__ = [
    "IndexedDataset",
    "VideoAugment",
    "VideoTextCollator",
]
