"""Processor of LocVTP: clip sampling + frame preprocessing (torch/numpy only) + a DistilBERT tokenizer.

Training takes `num_clips` clips of `frames_per_clip` consecutive frames (`METHODS.md` §2.1, sparse
sampling): the range of possible clip starts is cut into `num_clips` equal segments and, with a random
generator (training), each clip starts at a uniformly drawn frame of its segment (a new draw every epoch, as
ClipBERT / TSN); without one (evaluation, tests) the starts are the fixed equidistant plan (first clip at
frame 0, last ending at the last frame). Inference cuts the whole video into consecutive non-overlapping
`frames_per_clip`-frame clips and reports their start/end seconds, the clip-level features a localization
head (e.g. 2D-TAN) consumes.

Paths are decoded by the project's video reader fetching only the planned frames, resized while decoding to
the image processor's shorter side (`fetch_clips`, `iter_inference_clips`): memory holds one plan's frames,
whatever the video's length.

Frames are resized/cropped/normalised by the TCA image processor (`image_processing_tca.py`) configured
with TimeSformer's statistics. This file imports only numpy, torch, transformers, that sibling file (and
PyAV lazily, to decode paths) so that it can travel with a checkpoint (trust_remote_code).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .image_processing_tca import TCAImageProcessor
from .video_reader import VideoDecodeError, read_frames, segment_frame_range

KINETICS_MEAN = (0.45, 0.45, 0.45)  # TimeSformer / VideoMAE statistics
KINETICS_STD = (0.225, 0.225, 0.225)


def default_image_processor(
    size: int = 224, image_mean: Sequence[float] = KINETICS_MEAN, image_std: Sequence[float] = KINETICS_STD
) -> TCAImageProcessor:
    """TimeSformer's frame preprocessing: shorter side to `size`, centre crop `size`, Kinetics mean/std unless
    given. (The frame resize/crop/normalise is the TCA image processor's, configured for LocVTP; a vision tower
    started from another checkpoint, such as an ImageNet-21k ViT or CLIP, wants that checkpoint's statistics.)"""
    return TCAImageProcessor(shortest_edge=size, crop_size=size, image_mean=image_mean, image_std=image_std)


# ----------------------------------------------------------------------------------------------------------
# Clip sampling
# ----------------------------------------------------------------------------------------------------------


def training_clip_indices(
    num_frames: int,
    num_clips: int,
    frames_per_clip: int,
    frame_stride: int = 1,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Frame indices [num_clips, frames_per_clip] of `num_clips` sparse clips; frames step by `frame_stride`
    inside a clip. Without `generator`: starts equidistant over the video (first clip at frame 0, last one
    ending at the last frame). With one: the start range [0, num_frames - span] is cut into `num_clips` equal
    segments and clip t starts at a uniformly drawn frame of segment t (jittered sparse sampling). Videos
    shorter than one clip repeat their last frame."""
    if num_frames <= 0:
        raise ValueError(f"video has no frames (num_frames={num_frames})")
    span = (frames_per_clip - 1) * frame_stride + 1
    max_start = max(num_frames - span, 0)
    if generator is None:
        starts = np.rint(np.linspace(0, max_start, num_clips)).astype(np.int64)  # [T]
    else:
        edges = np.linspace(0, max_start + 1, num_clips + 1)  # segment t: [edges[t], edges[t + 1])
        offsets = torch.rand(num_clips, generator=generator, dtype=torch.float64).numpy()
        starts = np.floor(edges[:-1] + offsets * np.diff(edges)).astype(np.int64)
        starts = np.minimum(starts, max_start)
    indices = starts[:, None] + np.arange(frames_per_clip, dtype=np.int64)[None, :] * frame_stride
    return np.minimum(indices, num_frames - 1)


def inference_clip_indices(num_frames: int, frames_per_clip: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive non-overlapping clips covering the whole video: frame indices [T, F] and the frame range
    [T, 2] (start, end exclusive) of each clip; the last, partial clip repeats its last frame."""
    if num_frames <= 0:
        raise ValueError(f"video has no frames (num_frames={num_frames})")
    num_clips = math.ceil(num_frames / frames_per_clip)
    starts = np.arange(num_clips, dtype=np.int64) * frames_per_clip
    indices = np.minimum(
        starts[:, None] + np.arange(frames_per_clip, dtype=np.int64)[None, :], num_frames - 1
    )
    ranges = np.stack([starts, np.minimum(starts + frames_per_clip, num_frames)], axis=1)
    return indices, ranges


def decode_video_frames(path: str | os.PathLike, short_side: int | None = None) -> tuple[np.ndarray, float]:
    """All frames of a video file as uint8 [N, H, W, 3] (shorter side resized to `short_side` while decoding,
    if given) and its frame rate, through `video_reader.read_frames`; ValueError naming the file when it
    cannot be decoded. Prefer `LocVTPProcessor.fetch_clips`, which decodes only a clip plan's frames."""
    try:
        first, stop, _ = segment_frame_range(path)
        return read_frames(path, np.arange(first, stop), short_side, backend="pyav")
    except VideoDecodeError as err:
        raise ValueError(f"{path}: cannot decode video ({err.reason})") from err


@dataclass
class PlannedVideo:
    """The frames of one clip plan: `frames` uint8 [U, h, w, 3] (each needed frame once), `clip_indices`
    [T, F] into `frames`, `clip_frames` [T, 2] (start, end-exclusive frame of each clip, counted from the
    segment's first frame) and the frame rate `fps` (None when unknown)."""

    frames: np.ndarray
    clip_indices: np.ndarray
    clip_frames: np.ndarray
    fps: float | None


# ----------------------------------------------------------------------------------------------------------
# Processor
# ----------------------------------------------------------------------------------------------------------


class LocVTPProcessor(ProcessorMixin):
    r"""
    LocVTP processor: an image processor for frames (default: `default_image_processor()`, the TCA frame
    processor at 224 with Kinetics mean/std), a DistilBERT tokenizer for sentences, and the clip sampler.

    `processor(text=[...], videos=[...], mode="train" | "inference", fps=...)` returns `input_ids`,
    `attention_mask` and, for videos (frame arrays [N, H, W, 3] or paths), `pixel_values`
    [B, T, F, 3, H, W], `clip_mask` [B, T] (videos with fewer clips are zero-padded), `clip_frames` [B, T, 2]
    (start, end-exclusive frame of each clip) and, when the frame rate is known, `clip_times` [B, T, 2]
    in seconds.

    Args:
        num_clips (`int`, defaults to 8): clips per video in training mode.
        frames_per_clip (`int`, defaults to 16): frames F of a clip.
        frame_stride (`int`, defaults to 1): step between the frames of a training clip.
    """

    attributes = ["image_processor", "tokenizer"]

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        num_clips: int = 8,
        frames_per_clip: int = 16,
        frame_stride: int = 1,
        **kwargs,
    ):
        for name, value in (
            ("num_clips", num_clips),
            ("frames_per_clip", frames_per_clip),
            ("frame_stride", frame_stride),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"LocVTPProcessor.{name} must be a positive integer, got {value!r}")
        self.num_clips = num_clips
        self.frames_per_clip = frames_per_clip
        self.frame_stride = frame_stride
        if image_processor is None:
            image_processor = default_image_processor()
        super().__init__(image_processor, tokenizer, **kwargs)

    @property
    def special_token_ids(self) -> list[int]:
        """[PAD]/[CLS]/[SEP] ids, to store in `LocVTPConfig.special_token_ids` (never treated as words).
        [UNK] stays a word: it stands for a real (out-of-vocabulary) word of the sentence."""
        tok = self.tokenizer
        return sorted({i for i in (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id) if i is not None})

    def word_candidate_mask(self, tokens) -> torch.Tensor:
        """[B, S] 1 on the word candidates of L_f / L_t: the first sub-token of each whole word (WordPiece
        continuations "##..." and later pieces of a word are not candidates; the word is represented by its
        first piece, whose contextual feature sees the rest), excluding punctuation (tokens without a letter
        or digit) and special tokens. [UNK] stays a word. Needs a fast tokenizer (`word_ids`)."""
        ids = tokens["input_ids"]
        mask = torch.zeros(ids.shape, dtype=torch.long)
        special = set(self.special_token_ids)
        for row in range(ids.shape[0]):
            word_ids = tokens.word_ids(row)
            pieces = self.tokenizer.convert_ids_to_tokens(ids[row].tolist())
            previous = None
            for col, (word, piece) in enumerate(zip(word_ids, pieces)):
                first_piece = word is not None and word != previous
                previous = word
                is_unknown = piece == self.tokenizer.unk_token
                wordy = is_unknown or any(ch.isalnum() for ch in piece)
                if first_piece and wordy and int(ids[row, col]) not in special:
                    mask[row, col] = 1
        if "attention_mask" in tokens:
            mask = mask * tokens["attention_mask"].long()
        return mask

    def sample_clips(
        self, num_frames: int, mode: str = "train", generator: torch.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame indices [T, F] and frame ranges [T, 2] (start, end exclusive) of the clips of a video
        (training mode: jittered with `generator`, the fixed equidistant plan without)."""
        if mode == "train":
            indices = training_clip_indices(
                num_frames, self.num_clips, self.frames_per_clip, self.frame_stride, generator
            )
            return indices, np.stack([indices[:, 0], indices[:, -1] + 1], axis=1)
        if mode == "inference":
            return inference_clip_indices(num_frames, self.frames_per_clip)
        raise ValueError(f"mode must be 'train' or 'inference', got {mode!r}")

    @property
    def decode_short_side(self) -> int | None:
        """The shorter side frames are resized to while decoding (the image processor's resize target)."""
        return getattr(self.image_processor, "shortest_edge", None)

    def _fetch(self, path, first: int, indices: np.ndarray, ranges: np.ndarray) -> PlannedVideo:
        unique, inverse = np.unique(indices, return_inverse=True)
        try:
            frames, fps = read_frames(path, first + unique, self.decode_short_side)
        except VideoDecodeError as err:
            raise ValueError(f"{path}: cannot decode video ({err.reason})") from err
        rate = fps if math.isfinite(fps) and fps > 0 else None
        return PlannedVideo(frames, inverse.reshape(indices.shape), ranges, rate)

    def fetch_clips(
        self,
        path: str | os.PathLike,
        start: float = 0.0,
        end: float = math.inf,
        mode: str = "train",
        generator: torch.Generator | None = None,
    ) -> PlannedVideo:
        """Decode only the frames of the clip plan of the segment [start, end) s of `path` (`sample_clips`),
        resized while decoding (`decode_short_side`)."""
        try:
            first, stop, _ = segment_frame_range(path, start, end)
        except VideoDecodeError as err:
            raise ValueError(f"{path}: cannot decode video ({err.reason})") from err
        indices, ranges = self.sample_clips(stop - first, mode, generator)
        return self._fetch(path, first, indices, ranges)

    def iter_inference_clips(
        self, path: str | os.PathLike, start: float = 0.0, end: float = math.inf, clips_per_chunk: int = 32
    ) -> Iterator[PlannedVideo]:
        """The inference plan of [start, end) s (consecutive clips) in chunks of `clips_per_chunk` clips, each
        decoded on its own: memory holds one chunk's frames, whatever the video's length."""
        try:
            first, stop, _ = segment_frame_range(path, start, end)
        except VideoDecodeError as err:
            raise ValueError(f"{path}: cannot decode video ({err.reason})") from err
        indices, ranges = inference_clip_indices(stop - first, self.frames_per_clip)
        for i in range(0, len(indices), clips_per_chunk):
            yield self._fetch(path, first, indices[i : i + clips_per_chunk], ranges[i : i + clips_per_chunk])

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        mode: str = "train",
        fps: float | Sequence[float | None] | None = None,
        padding: bool | str = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        if text is None and videos is None:
            raise ValueError("LocVTPProcessor needs `text`, `videos` or both")
        data = {}
        if text is not None:
            tokens = self.tokenizer(
                text,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                return_tensors=return_tensors,
                **kwargs,
            )
            data.update(tokens)
            if getattr(tokens, "is_fast", False) and tokens["input_ids"].ndim == 2:
                data["word_candidate_mask"] = self.word_candidate_mask(tokens)
        if videos is not None:
            data.update(self._process_videos(videos, mode, fps))
        return BatchFeature(data, tensor_type=return_tensors)

    def _process_videos(self, videos, mode: str, fps) -> dict[str, torch.Tensor]:
        if isinstance(videos, (str, os.PathLike)) or (hasattr(videos, "ndim") and videos.ndim == 4):
            videos = [videos]
        fps_list = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        if len(fps_list) != len(videos):
            raise ValueError(f"fps: got {len(fps_list)} values for {len(videos)} videos")
        clips, ranges, rates = [], [], []
        for i, video in enumerate(videos):
            rate = fps_list[i]
            if isinstance(video, (str, os.PathLike)):
                video = self.fetch_clips(video, mode=mode)
            if isinstance(video, PlannedVideo):  # a clip plan already decoded: its frames, its indices
                video, planned = video.frames, video
                rate = rate if rate is not None else planned.fps
            else:
                planned = None
            frames = video if isinstance(video, torch.Tensor) else np.asarray(video)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(
                    f"videos[{i}]: expected frames [num_frames, height, width, 3], got {tuple(frames.shape)}"
                )
            if planned is None:
                indices, frame_ranges = self.sample_clips(int(frames.shape[0]), mode)
            else:
                indices, frame_ranges = planned.clip_indices, planned.clip_frames
            unique, inverse = np.unique(indices, return_inverse=True)  # preprocess each frame once
            pixels = self._frames_to_pixels(
                frames[torch.as_tensor(unique)] if isinstance(frames, torch.Tensor) else frames[unique]
            )
            clips.append(pixels[torch.as_tensor(inverse.reshape(indices.shape))])  # [T, F, 3, H, W]
            ranges.append(torch.as_tensor(frame_ranges))
            rates.append(rate)
        max_clips = max(c.shape[0] for c in clips)
        batch = len(clips)
        pixel_values = clips[0].new_zeros((batch, max_clips, *clips[0].shape[1:]))
        clip_mask = torch.zeros((batch, max_clips), dtype=torch.long)
        clip_frames = torch.zeros((batch, max_clips, 2), dtype=torch.long)
        for i, (c, r) in enumerate(zip(clips, ranges)):
            pixel_values[i, : c.shape[0]] = c
            clip_mask[i, : c.shape[0]] = 1
            clip_frames[i, : c.shape[0]] = r
        out = {"pixel_values": pixel_values, "clip_mask": clip_mask, "clip_frames": clip_frames}
        if all(r is not None and r > 0 for r in rates):
            out["clip_times"] = clip_frames.double() / torch.tensor(rates, dtype=torch.float64)[:, None, None]
        return out

    def _frames_to_pixels(self, frames) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> float pixel values [N, 3, H', W'] with the image processor."""
        return torch.as_tensor(self.image_processor(frames, return_tensors="pt")["pixel_values"])

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "clip_mask", "word_candidate_mask"]


__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "LocVTPProcessor",
    "PlannedVideo",
    "default_image_processor",
    "decode_video_frames",
    "inference_clip_indices",
    "training_clip_indices",
]
