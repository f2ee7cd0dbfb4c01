"""Read sampled frames from video files: decord by default, PyAV as fallback (METHODS.md §1.1 sampling).

Sampling rules:
- `fps=1` (default): the authors' rule, frame 0 and every `round(native_fps / fps)`-th frame, where a file
  reporting more than 144 fps (or no usable rate) is treated as 25 fps.
- `num_frames=N`: N frame indices spread uniformly from the first to the last frame.

Timestamps are `index / effective_fps` seconds. Frames are decoded in chunks of `chunk_size` sampled frames
and an optional `transform` (e.g. resize + crop) is applied per chunk, so a long video is never held in RAM
at full resolution. Every file is first probed with PyAV (container, stream, resolution, duration, first
frame) so bad files raise `VideoDecodeError` before decord (which can crash on some broken files) sees them.
Create readers inside the decoding worker processes; nothing here is shared across processes.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_REPORTED_FPS = 144.0
FALLBACK_FPS = 25.0
BACKENDS = ("auto", "decord", "pyav")


class VideoDecodeError(RuntimeError):
    """A video that cannot be used; `path` and `reason` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class VideoInfo:
    path: str
    fps: float  # as reported by the container
    num_frames: int  # 0 when the container does not say
    width: int
    height: int
    duration: float  # seconds, nan when unknown

    @property
    def effective_fps(self) -> float:
        return effective_fps(self.fps)


@dataclass
class VideoChunk:
    frames: object  # uint8 np.ndarray [n, H, W, 3], or whatever `transform` returned
    indices: np.ndarray  # int64 [n]
    timestamps: np.ndarray  # float32 [n], seconds
    fps: float = float("nan")  # reported frame rate of the file
    backend: str = ""  # "decord" or "pyav"


@dataclass
class VideoClip:
    path: str
    frames: object  # [N, H, W, 3] uint8 (or the concatenated transform outputs)
    indices: np.ndarray  # int64 [N]
    timestamps: np.ndarray  # float32 [N]
    fps: float  # reported frame rate
    backend: str  # "decord" or "pyav"


def effective_fps(fps: float) -> float:
    """The authors' rule: a reported rate above 144 fps (or none) is treated as 25 fps."""
    if fps is None or not math.isfinite(fps) or fps <= 0 or fps > MAX_REPORTED_FPS:
        return FALLBACK_FPS
    return float(fps)


def fps_step(native_fps: float, target_fps: float = 1.0) -> int:
    """Keep every `step`-th frame: `round(effective_fps / target_fps)` (at least 1)."""
    if target_fps <= 0:
        raise ValueError(f"target fps must be positive, got {target_fps}")
    return max(1, int(round(effective_fps(native_fps) / target_fps)))


def uniform_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """`num_frames` indices spread uniformly over [0, total_frames - 1] (first and last frame included)."""
    if total_frames <= 0 or num_frames <= 0:
        raise ValueError(f"need positive frame counts, got total={total_frames}, num_frames={num_frames}")
    return np.rint(np.linspace(0, total_frames - 1, num_frames)).astype(np.int64)


def _open_av(path: str):
    import av

    try:
        return av.open(path)
    except Exception as err:  # av raises many FFmpeg error classes
        raise VideoDecodeError(
            path, f"cannot open as a video (not a video file or corrupt container): {err}"
        ) from err


def probe_video(
    path: str | os.PathLike, max_side: int = 8192, min_side: int = 8, min_duration: float = 1.0
) -> VideoInfo:
    """Check a file with PyAV (exists, has a decodable video stream, sane resolution, at least `min_duration`
    seconds long) and return its `VideoInfo`; raise `VideoDecodeError` otherwise."""
    path = str(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file does not exist")
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    container = _open_av(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream in the file")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if not (min_side <= min(width, height) and max(width, height) <= max_side):
            raise VideoDecodeError(
                path, f"absurd resolution {width}x{height} (each side must be in [{min_side}, {max_side}])"
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else float("nan")
        num_frames = int(stream.frames or 0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        elif num_frames:
            duration = num_frames / effective_fps(fps)
        else:
            duration = float("nan")
        try:
            first = next(container.decode(stream), None)
        except Exception as err:
            raise VideoDecodeError(
                path, f"corrupt video stream, cannot decode the first frame: {err}"
            ) from err
        if first is None:
            raise VideoDecodeError(path, "zero-length or corrupt video stream (no decodable frame)")
    finally:
        container.close()
    if math.isfinite(duration) and duration + 1e-3 < min_duration:
        raise VideoDecodeError(path, f"video is {duration:.3f} s long, shorter than {min_duration} s")
    return VideoInfo(path, fps, num_frames, width, height, duration)


def _count_frames_pyav(path: str) -> int:
    container = _open_av(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)
    finally:
        container.close()


def _chunks_pyav(
    path: str, info: VideoInfo, step: int | None, wanted: np.ndarray | None, chunk_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sequential decode keeping sampled frames only; yields (frames uint8 [n,H,W,3], indices [n])."""
    counts = None if wanted is None else np.bincount(wanted)
    container = _open_av(path)
    frames, indices = [], []
    emitted = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if counts is not None and index >= len(counts):
                break
            repeat = (1 if index % step == 0 else 0) if counts is None else int(counts[index])
            if repeat:
                array = frame.to_ndarray(format="rgb24")
                for _ in range(repeat):
                    frames.append(array)
                    indices.append(index)
                if len(frames) >= chunk_size:
                    yield np.stack(frames), np.asarray(indices, dtype=np.int64)
                    emitted += len(frames)
                    last = (frames[-1], indices[-1])
                    frames, indices = [], []
    except VideoDecodeError:
        raise
    except Exception as err:
        raise VideoDecodeError(
            path, f"decoding failed after {len(indices)} sampled frames (pyav): {err}"
        ) from err
    finally:
        container.close()
    missing = 0 if counts is None else int(counts.sum()) - emitted - len(frames)
    if missing > 0 and (frames or emitted):
        # the container over-reported its frame count: repeat the last decoded frame for missing targets
        last_frame, last_index = (frames[-1], indices[-1]) if frames else last
        frames.extend([last_frame] * missing)
        indices.extend([last_index] * missing)
    if frames:
        yield np.stack(frames), np.asarray(indices, dtype=np.int64)


def _chunks_decord(
    path: str, indices: np.ndarray, chunk_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(indices), chunk_size):
        part = indices[start : start + chunk_size]
        yield _decord_reader(path).get_batch(part.tolist()).asnumpy(), part


_DECORD_CACHE: dict = {}


def _decord_reader(path: str):
    """One decord VideoReader per (process, path); created lazily in the calling process (worker-safe)."""
    key = (os.getpid(), path)
    if key not in _DECORD_CACHE:
        decord = importlib.import_module("decord")  # optional: not a requirement of a saved processor
        _DECORD_CACHE.clear()  # keep at most one open reader per process
        _DECORD_CACHE[key] = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    return _DECORD_CACHE[key]


def decord_available() -> bool:
    try:
        importlib.import_module("decord")
    except Exception:
        return False
    return True


def iter_video_chunks(
    path: str | os.PathLike,
    fps: float | None = 1.0,
    num_frames: int | None = None,
    backend: str = "auto",
    chunk_size: int = 32,
    transform: Callable[[np.ndarray], object] | None = None,
    max_side: int = 8192,
    min_duration: float = 1.0,
) -> Iterator[VideoChunk]:
    """Yield the sampled frames of a video chunk by chunk (see the module docstring for the rules).

    `backend="auto"` uses decord and falls back to PyAV when decord is missing or fails on the file;
    `"decord"`/`"pyav"` force one. `transform(frames uint8 [n, H, W, 3])` is applied to every chunk.
    Raises `VideoDecodeError` for unusable files.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if num_frames is None and fps is None:
        raise ValueError("give fps (e.g. 1.0) or num_frames")
    if num_frames is not None and num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    path = str(path)
    info = probe_video(path, max_side=max_side, min_duration=min_duration)
    used_fps = info.effective_fps
    transform = transform or (lambda frames: frames)

    def emit(frames: np.ndarray, indices: np.ndarray, used_backend: str) -> VideoChunk:
        stamps = (indices / used_fps).astype(np.float32)
        return VideoChunk(transform(frames), indices, stamps, info.fps, used_backend)

    use_decord = backend == "decord" or (backend == "auto" and decord_available())
    if use_decord:
        try:
            total = len(_decord_reader(path))
            if total <= 0:
                raise RuntimeError("decord reports 0 frames")
            if num_frames is not None:
                indices = uniform_indices(total, num_frames)
            else:
                indices = np.arange(0, total, fps_step(info.fps, fps), dtype=np.int64)
            chunks = list(
                _chunks_decord(path, indices[:chunk_size], chunk_size)
            )  # fail early, before yielding
        except Exception as err:
            _DECORD_CACHE.clear()
            if backend == "decord":
                raise VideoDecodeError(path, f"decord cannot read the file: {err}") from err
        else:
            try:
                yield emit(*chunks[0], "decord")
                for frames, part in _chunks_decord(path, indices[chunk_size:], chunk_size):
                    yield emit(frames, part, "decord")
            except VideoDecodeError:
                raise
            except Exception as err:
                raise VideoDecodeError(path, f"decord failed while decoding: {err}") from err
            finally:
                _DECORD_CACHE.clear()
            return
    wanted = None
    if num_frames is not None:
        total = info.num_frames or _count_frames_pyav(path)
        wanted = uniform_indices(total, num_frames)
    step = None if num_frames is not None else fps_step(info.fps, fps)
    produced = 0
    for frames, part in _chunks_pyav(path, info, step, wanted, chunk_size):
        produced += len(part)
        yield emit(frames, part, "pyav")
    if produced == 0:
        raise VideoDecodeError(path, "zero-length or corrupt video stream (no decodable frame)")


def read_all_frames(path: str | os.PathLike, backend: str = "pyav") -> tuple[np.ndarray, float]:
    """Every frame of a video (no sampling, no minimum duration) as uint8 [N, H, W, 3], and the frame rate the
    container reports (0.0 when it gives none). Raises `VideoDecodeError` for unusable files."""
    info = probe_video(path, min_duration=0.0)
    clip = read_video(path, fps=info.effective_fps, backend=backend, min_duration=0.0)  # step 1: every frame
    if len(clip.indices) == 0:
        raise VideoDecodeError(path, "no decodable frame")
    return np.asarray(clip.frames), (float(info.fps) if math.isfinite(info.fps) else 0.0)


def read_video(
    path: str | os.PathLike,
    fps: float | None = 1.0,
    num_frames: int | None = None,
    backend: str = "auto",
    chunk_size: int = 32,
    transform: Callable | None = None,
    max_side: int = 8192,
    min_duration: float = 1.0,
) -> VideoClip:
    """All sampled frames of a video at once (chunked decode; pass a `transform` such as
    `TCAImageProcessor.resize_and_crop` to keep memory bounded on long videos)."""
    chunks = list(
        iter_video_chunks(path, fps, num_frames, backend, chunk_size, transform, max_side, min_duration)
    )
    if not chunks:
        raise VideoDecodeError(path, "no frames sampled")
    first = chunks[0].frames
    if hasattr(first, "dim"):  # torch tensor
        import torch

        frames = torch.cat([c.frames for c in chunks])
    else:
        frames = np.concatenate([c.frames for c in chunks])
    return VideoClip(
        path=str(Path(path)),
        frames=frames,
        indices=np.concatenate([c.indices for c in chunks]),
        timestamps=np.concatenate([c.timestamps for c in chunks]),
        fps=chunks[0].fps,
        backend=chunks[0].backend,
    )


__all__ = [
    "BACKENDS",
    "EVERY_FRAME",
    "VideoChunk",
    "VideoClip",
    "VideoDecodeError",
    "VideoInfo",
    "count_frames",
    "decode_segment",
    "decord_available",
    "effective_fps",
    "fps_step",
    "iter_video_chunks",
    "probe_video",
    "read_all_frames",
    "read_frames",
    "read_video",
    "resized_size",
    "segment_frame_range",
    "uniform_indices",
]


def resized_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to `short_side` (aspect kept, sides even; None: as is)."""
    if short_side is None:
        return width, height
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    scale = short_side / min(width, height)
    even = lambda x: max(2, int(round(x / 2)) * 2)  # noqa: E731  (yuv420p-friendly sizes)
    return (short_side, even(height * scale)) if width <= height else (even(width * scale), short_side)


def count_frames(path: str | os.PathLike, info: VideoInfo | None = None) -> int:
    """Number of frames: the container's count when it gives one, else a packet count (no decoding)."""
    info = info or probe_video(path, min_duration=0.0)
    return info.num_frames or _count_frames_pyav(str(path))


def _frame_index(frame, time_base, start_pts: int, fps: float) -> int | None:
    if frame.pts is None or time_base is None:
        return None
    return int(round(float((frame.pts - start_pts) * time_base) * fps))


def _read_frames_pyav(path: str, wanted: np.ndarray, size: tuple[int, int]) -> dict[int, np.ndarray]:
    """Frames `wanted` (sorted unique) by PyAV: seek to the key frame before the first one, decode up to the
    last one, and convert (resized by the decoder's scaler) only the wanted frames."""
    wanted_set = set(wanted.tolist())
    first, last = int(wanted[0]), int(wanted[-1])
    out: dict[int, np.ndarray] = {}
    for attempt in ("seek", "from_start"):
        container = _open_av(path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate and float(rate) > 0 else FALLBACK_FPS  # the stream's own rate
            start_pts = stream.start_time or 0
            if attempt == "seek" and first > 0 and stream.time_base is not None:
                container.seek(int(start_pts + first / fps / stream.time_base), stream=stream, backward=True)
            counter = 0
            for frame in container.decode(stream):
                index = _frame_index(frame, stream.time_base, start_pts, fps) if attempt == "seek" else None
                if index is None:  # no timestamps: count frames from the start
                    if attempt == "seek":
                        break
                    index = counter
                counter += 1
                if attempt == "seek" and not out and index > first:
                    break  # the seek overshot: decode from the start instead
                if index > last:
                    break
                if index in wanted_set and index not in out:
                    out[index] = frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
        except VideoDecodeError:
            raise
        except Exception as err:
            raise VideoDecodeError(path, f"decoding failed (pyav): {err}") from err
        finally:
            container.close()
        if first in out:
            break
        out = {}
    return out


def read_frames(
    path: str | os.PathLike,
    indices: np.ndarray,
    short_side: int | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, float]:
    """Only the frames `indices` (any order, repeats allowed) of a video, uint8 [len(indices), h, w, 3],
    resized while decoding so that the shorter side is `short_side` (None: full size), and the reported
    frame rate. Memory holds the requested frames only, whatever the video's length: decord fetches them
    with `get_batch` at the target size; PyAV seeks to the key frame before the first one and converts only
    the requested frames. Indices past the last decodable frame repeat it (over-reported frame counts)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = str(path)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(indices) == 0 or indices.min() < 0:
        raise ValueError(f"{path}: need at least one non-negative frame index, got {indices[:8].tolist()}")
    info = probe_video(path, min_duration=0.0)
    size = resized_size(info.width, info.height, short_side)
    unique, inverse = np.unique(indices, return_inverse=True)
    frames = None
    if backend == "decord" or (backend == "auto" and decord_available()):
        try:
            decord = importlib.import_module("decord")
            reader = decord.VideoReader(path, ctx=decord.cpu(0), width=size[0], height=size[1], num_threads=1)
            available = np.minimum(unique, len(reader) - 1)
            frames = reader.get_batch(available.tolist()).asnumpy()
            del reader
        except Exception as err:
            if backend == "decord":
                raise VideoDecodeError(path, f"decord cannot read the file: {err}") from err
    if frames is None:
        decoded = _read_frames_pyav(path, unique, size)
        if not decoded:
            raise VideoDecodeError(path, "zero-length or corrupt video stream (no decodable frame)")
        last = max(decoded)
        frames = np.stack([decoded.get(int(i), decoded[min(int(i), last)]) for i in np.minimum(unique, last)])
    return frames[inverse], float(info.fps)


def segment_frame_range(
    path: str | os.PathLike, start: float = 0.0, end: float = math.inf, info: VideoInfo | None = None
) -> tuple[int, int, float]:
    """(first, stop, fps): the frames whose timestamp `index / effective_fps` lies in [start, end), as the
    half-open index range [first, stop), and the effective frame rate. ValueError when the span is empty."""
    info = info or probe_video(path, min_duration=0.0)
    fps = info.effective_fps
    total = count_frames(path, info)
    first = max(0, math.ceil(start * fps - 1e-6))
    stop = total if math.isinf(end) else min(total, math.ceil(end * fps - 1e-6))
    if stop <= first:
        raise ValueError(f"{path}: no frame in the segment [{start}, {end}) s")
    return first, stop, fps


EVERY_FRAME = 1e9  # a target rate above any native rate: the reader keeps every frame


def decode_segment(
    video_path: str, start: float = 0.0, end: float = math.inf, short_side: int | None = None
) -> tuple[np.ndarray, float]:
    """All frames of `video_path` whose timestamp lies in [start, end), uint8 [N, H, W, 3] (the shorter side
    resized to `short_side` while decoding, if given), and the reported frame rate. Only the segment's frames
    are decoded into memory (`read_frames`). Raises `VideoDecodeError` (unreadable/missing file) or
    `ValueError` (no frame in the span)."""
    if not Path(video_path).is_file():
        raise VideoDecodeError(video_path, "file not found")
    first, stop, _ = segment_frame_range(video_path, start, end)
    return read_frames(video_path, np.arange(first, stop), short_side)
