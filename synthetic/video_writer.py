"""Write frames to a real encoded video file with PyAV (test fixtures, synthetic benchmarks)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidtempo.processing.atomic_files import write_atomically

_CODEC_FOR_SUFFIX = {".mp4": "libx264", ".mkv": "libx264", ".webm": "libvpx", ".avi": "mpeg4"}
# the container format of each suffix (the temporary file of an atomic write has none)
_FORMAT_FOR_SUFFIX = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov"}


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    codec: str | None = None,
    crf: int | None = None,
    bit_rate: int | None = None,
) -> Path:
    """Encode `frames` (uint8 [T, H, W, 3], RGB; H and W even) to `path` at `fps`.

    The codec follows the suffix (`.mp4` -> H.264, `.webm` -> VP8, `.avi` -> MPEG-4) unless given.
    `crf` (H.264 quality, 0-51) or `bit_rate` (bits/s) set the compression. The file is written to a
    temporary name and renamed, so an interrupted run never leaves a truncated video behind.

    H.264 is encoded with x264's macroblock tree off (`mbtree=0`): with it on, the same frames gave up to 9
    different files in 64 encodes here (even single-threaded), which made seeded benchmarks vary run to run.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_video({path}): frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    if frames.shape[0] == 0:
        raise ValueError(f"write_video({path}): no frames")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(
            f"write_video({path}): height and width must be even for yuv420p, got {height}x{width}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or _CODEC_FOR_SUFFIX.get(path.suffix.lower(), "libx264")
    rate = Fraction(fps).limit_denominator(1001)
    container_format = _FORMAT_FOR_SUFFIX.get(path.suffix.lower())
    if container_format is None:
        raise ValueError(f"write_video({path}): expected one of the suffixes {sorted(_FORMAT_FOR_SUFFIX)}")

    def encode(temporary: Path) -> None:
        with av.open(str(temporary), mode="w", format=container_format) as container:
            _encode(container, frames, codec, rate, width, height, crf, bit_rate)

    return write_atomically(path, encode)


def _encode(
    container, frames: np.ndarray, codec: str, rate: Fraction, width: int, height: int, crf, bit_rate
):
    """Encode `frames` as one yuv420p stream of `container` (deterministic x264 settings)."""
    import av

    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    options = {}
    if crf is not None:
        options["crf"] = str(crf)
    if codec == "libx264":
        options["preset"] = "veryfast"
        options["x264-params"] = "mbtree=0"  # the mb-tree lookahead is not deterministic (see above)
    stream.options = options
    if bit_rate is not None:
        stream.bit_rate = int(bit_rate)
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


__all__ = ["write_video"]
