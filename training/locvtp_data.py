"""Video–text data for LocVTP pre-training: a captions table, seeded torch augmentation, a decoding collator.

* `load_caption_dataset(path)`: a `datasets.Dataset` of (video_id, video_path, start, end, caption) rows
  from a CSV or JSON(L) file — the shape WebVid- and HowTo100M-style corpora provide (and the embedded
  captioned set writes). Videos stay paths; nothing is decoded here (no `datasets.Video`/torchcodec).
  `unit="video"` joins each video's captions in time order into one sentence over the whole video.
* `VideoAugment`: random resized crop, horizontal flip and colour jitter, the same draw for every frame
  of a video, from a per-item seeded generator (reproducible across DataLoader workers).
* `VideoTextCollator`: runs in DataLoader workers; decodes each item with the project's video reader
  (decord, PyAV fallback), keeps the frames inside [start, end), augments, and calls the LocVTP processor
  (training-mode clip sampling + tokenizer). Unreadable or missing videos are skipped and returned in
  `batch["failed"]` so the training loop can report them; a batch with no readable item is `None`.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import datasets
import numpy as np
import torch

from ..processing.video_reader import VideoDecodeError, read_video

PATH_COLUMNS = ("video_path", "path", "video", "file_name")
EVERY_FRAME = 1e9  # a target rate above any native rate: the reader keeps every frame


def _read_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("rows") or data.get("data") or data.get("annotations")
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of rows (or {{'rows': [...]}})")
        return data
    raise ValueError(f"{path}: unsupported captions file (expected .csv, .json or .jsonl)")


def _float(value, default: float, where: str, field: str) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {field!r} must be a number of seconds, got {value!r}") from None


def load_caption_dataset(
    path: str | os.PathLike, split: str | None = None, unit: str = "segment", joiner: str = " then "
) -> datasets.Dataset:
    """Rows (video_id, video_path, start, end, caption) of a captions CSV/JSON/JSONL.

    Columns: a path column (`video_path`, `path`, `video` or `file_name`; relative paths are resolved
    against the file's folder), `caption` (or `sentence`/`text`), optional `start`/`end` seconds (missing:
    the whole video, end = inf), optional `video_id` (default: the file stem) and `split` (kept when
    `split` is given). `unit="video"` merges each video's rows into one whole-video row whose caption joins
    the captions in start-time order with `joiner`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions file not found")
    if unit not in ("segment", "video"):
        raise ValueError(f"unit must be 'segment' or 'video', got {unit!r}")
    rows = []
    for number, raw in enumerate(_read_rows(path), start=1):
        where = f"{path} row {number}"
        video = next((raw[c] for c in PATH_COLUMNS if raw.get(c)), None)
        caption = next((raw[c] for c in ("caption", "sentence", "text") if raw.get(c) is not None), None)
        if video is None:
            raise ValueError(f"{where}: no video path (expected one of the columns {list(PATH_COLUMNS)})")
        if caption is None or not str(caption).strip():
            raise ValueError(f"{where}: empty or missing 'caption'")
        if split is not None and raw.get("split", split) != split:
            continue
        video_path = Path(video) if Path(video).is_absolute() else path.parent / video
        start = _float(raw.get("start"), 0.0, where, "start")
        end = _float(raw.get("end"), math.inf, where, "end")
        if not end > start:
            raise ValueError(f"{where}: need start < end, got start={start} end={end}")
        rows.append({"video_id": str(raw.get("video_id") or video_path.stem), "video_path": str(video_path),
                     "start": start, "end": end, "caption": str(caption).strip()})
    if unit == "video":
        grouped: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            grouped[row["video_path"]].append(row)
        rows = [
            {"video_id": group[0]["video_id"], "video_path": video_path, "start": 0.0, "end": math.inf,
             "caption": joiner.join(r["caption"] for r in sorted(group, key=lambda r: r["start"]))}
            for video_path, group in grouped.items()
        ]
    if not rows:
        raise ValueError(f"{path}: no rows" + (f" with split == {split!r}" if split else ""))
    return datasets.Dataset.from_list(rows)


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
        return {"box": box, "flip": flip, "brightness": factors[0], "contrast": factors[1], "saturation": factors[2]}

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
        x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * params["contrast"] + gray.mean(dim=(1, 2, 3), keepdim=True)
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        x = (x - gray) * params["saturation"] + gray
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(frames, self.sample(frames.shape[1], frames.shape[2], generator))


def decode_segment(video_path: str, start: float = 0.0, end: float = math.inf) -> tuple[np.ndarray, float]:
    """All frames of `video_path` whose timestamp lies in [start, end), uint8 [N, H, W, 3], and the frame
    rate. Raises `VideoDecodeError` (unreadable/missing file) or `ValueError` (no frame in the span)."""
    if not Path(video_path).is_file():
        raise VideoDecodeError(video_path, "file not found")
    clip = read_video(video_path, fps=EVERY_FRAME, min_duration=0.0)
    keep = (clip.timestamps >= start - 1e-6) & (clip.timestamps < end - 1e-6)
    if not keep.any():
        raise ValueError(f"{video_path}: no frame in the segment [{start}, {end}) s")
    return np.asarray(clip.frames)[keep], float(clip.fps)


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
            try:
                frames, fps = decode_segment(item["video_path"], item["start"], item["end"])
            except (VideoDecodeError, ValueError, OSError) as error:
                failed.append({"video_id": item["video_id"], "video_path": item["video_path"],
                               "error": f"{type(error).__name__}: {error}"})
                continue
            if self.augment is not None:
                index = int(item.get("__index__", 0))
                generator = torch.Generator().manual_seed(
                    (self.seed * 1_000_003 + self.epoch * 10_007 + index) % (2**63 - 1)
                )
                frames = self.augment(torch.from_numpy(frames), generator).numpy()
            videos.append(frames)
            captions.append(item["caption"])
            rates.append(fps)
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
    "decode_segment",
    "load_caption_dataset",
]
