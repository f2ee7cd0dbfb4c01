"""Extraction library behind `vidtempo-extract` (`cli/extract.py`): a folder of videos -> a descriptor dataset
(METHODS.md §1.1), and PCA fitting (`fit_pca`).

    vidtempo-extract VIDEOS_OR_DIRS... --output DIR [--model microsoft/resnet-50 | MODEL_DIR] [--pooling l3_irmac]
    vidtempo-extract fit-pca RAW_DIR --model RAW_MODEL_DIR --dim 1024 --save-model WHITENED_MODEL_DIR
                     [--whiten-to WHITENED_DESCRIPTOR_DIR]

Decoding and resize/crop run in worker processes (one decord/PyAV reader per item, created in the worker); a
video whose decoder kills its worker (a segfault) is retried alone once, then recorded as failed, and the job
goes on. The descriptor network runs in the main process on batches of frames packed across videos. Output goes
through `descriptor_store.DescriptorWriter` (one writer per process, distinct shard prefixes). Resumable:
ids in finished shards (and, unless --retry-failed, ids in failed.jsonl) are skipped. Bad files are recorded
in failed.jsonl with the reason and skipped. Several processes (`torchrun --nproc_per_node N -m
vidtempo.processing.extract ...`) split the videos with Accelerate's `split_between_processes`.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .descriptor_store import DescriptorWriter, append_failure, existing_ids, read_failures, read_info
from .image_processing_tca import TCAImageProcessor
from .provenance import model_record, require_local_or_hub
from .video_reader import VideoDecodeError, iter_video_chunks

VIDEO_SUFFIXES = {
    ".mp4",
    ".webm",
    ".avi",
    ".mkv",
    ".mov",
    ".flv",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".3gp",
    ".ts",
}
DEFAULT_MODEL = "microsoft/resnet-50"


def collect_videos(inputs: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """(video_id, path) for files given directly (any suffix) and video files found recursively in folders.
    The id is the file stem; two files with the same stem are an error."""
    items: dict[str, str] = {}
    for entry in inputs:
        entry = Path(entry)
        if entry.is_dir():
            paths = sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif entry.exists() or entry.suffix:  # missing files are reported per item, not fatal
            paths = [entry]
        else:
            raise FileNotFoundError(f"{entry}: no such file or folder")
        for path in paths:
            if path.stem in items and items[path.stem] != str(path):
                raise ValueError(f"duplicate video id {path.stem!r}: {items[path.stem]} and {path}")
            items[path.stem] = str(path)
    return sorted(items.items())


class VideoFramesDataset(Dataset):
    """Item i -> {"video_id", "path", "pixels" uint8 [F, 3, crop, crop], "timestamps", "fps", "error"}.
    Decoding errors are returned (as `error`), never raised, so one bad file cannot stop the job."""

    def __init__(
        self,
        items: Sequence[tuple[str, str]],
        processor: TCAImageProcessor,
        fps: float | None = 1.0,
        num_frames: int | None = None,
        backend: str = "auto",
        min_duration: float = 1.0,
    ):
        self.items = list(items)
        self.processor = processor
        self.fps, self.num_frames, self.backend = fps, num_frames, backend
        self.min_duration = min_duration

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        video_id, path = self.items[index]
        record = {"video_id": video_id, "path": path, "error": None}
        try:
            chunks = list(
                iter_video_chunks(
                    path,
                    fps=self.fps,
                    num_frames=self.num_frames,
                    backend=self.backend,
                    transform=self.processor.resize_and_crop,
                    min_duration=self.min_duration,
                )
            )
            if not chunks:
                raise VideoDecodeError(path, "no frames sampled")
            record["pixels"] = torch.cat([c.frames for c in chunks])
            record["timestamps"] = np.concatenate([c.timestamps for c in chunks])
            record["fps"] = float(chunks[0].fps)
        except VideoDecodeError as err:
            record["error"] = str(err)
        except Exception as err:  # anything else: still report it and carry on
            record["error"] = f"{path}: unexpected {type(err).__name__}: {err}"
        return record


PREFETCH_PER_WORKER = 2  # videos decoded ahead per worker
_worker_dataset: VideoFramesDataset | None = None


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies, so a `kill -9`ed job leaves no
    decoder behind. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _start_decoder(dataset: VideoFramesDataset, parent: int) -> None:
    global _worker_dataset
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_dataset = dataset
    torch.set_num_threads(1)  # the workers share the cores with each other and with the CNN


def _decode(index: int) -> dict:
    return _worker_dataset[index]


def _decoder_pool(dataset: VideoFramesDataset, workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_decoder,
        initargs=(dataset, os.getpid()),
    )


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop at once: cancel queued videos and terminate the workers (used when the job is interrupted)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def decode_isolating_crashes(dataset: VideoFramesDataset, num_workers: int) -> Iterator[dict]:
    """The dataset's items in order, decoded by `num_workers` worker processes (0: in this process).

    A decoder that kills its worker (a segfault in native code, an out-of-memory kill) cannot stop the job: the
    videos that were in flight are decoded again one at a time in a fresh worker, a video that kills that worker
    too comes back as a failed item (`error` set), and a fresh pool goes on with the rest.
    """
    if num_workers <= 0:
        yield from (dataset[i] for i in range(len(dataset)))
        return
    start = 0
    while start < len(dataset):
        window: deque[tuple[int, Future]] = deque()
        crashed = None
        pool = _decoder_pool(dataset, num_workers)
        finished = False
        try:
            submitted = start
            while submitted < len(dataset) or window:
                try:
                    while submitted < len(dataset) and len(window) < num_workers * PREFETCH_PER_WORKER:
                        window.append((submitted, pool.submit(_decode, submitted)))
                        submitted += 1
                    item = window[0][1].result()
                except BrokenProcessPool as error:  # from result(), or from submit() once the pool broke
                    crashed = error
                    break
                window.popleft()
                yield item
            finished = True
        finally:
            if finished or crashed is not None:
                pool.shutdown(wait=True)
            else:  # the consumer stopped early (an interrupt, an error): do not wait for queued videos
                _stop_pool(pool)
        if crashed is None:
            return
        for index, _ in window:  # every video in flight (submitted, not yet yielded), alone in a fresh worker
            with _decoder_pool(dataset, 1) as single:
                try:
                    yield single.submit(_decode, index).result()
                except BrokenProcessPool:
                    video_id, path = dataset.items[index]
                    yield {
                        "video_id": video_id,
                        "path": path,
                        "error": f"{path}: decoding this video killed the worker process (twice)",
                    }
        start = submitted  # every submitted video has now been yielded


def load_descriptor_model(name_or_path: str, pooling: str = "l3_irmac"):
    """A `FrameDescriptorModel` from a saved descriptor-model folder, or built on a ResNet checkpoint
    (`microsoft/resnet-50` on the Hub, or a local ResNet folder) with `pooling` and no PCA."""
    from transformers import AutoConfig

    from ..modeling.configuration_frame_descriptor import FrameDescriptorConfig
    from ..modeling.modeling_frame_descriptor import FrameDescriptorModel

    require_local_or_hub(name_or_path, "descriptor model")
    config = AutoConfig.from_pretrained(name_or_path)
    if config.model_type == FrameDescriptorConfig.model_type:
        return FrameDescriptorModel.from_pretrained(name_or_path).eval()
    if config.model_type == "resnet":
        return FrameDescriptorModel.from_backbone_pretrained(name_or_path, pooling=pooling)
    raise ValueError(
        f"{name_or_path}: expected a {FrameDescriptorConfig.model_type} or resnet checkpoint, "
        f"got model_type {config.model_type!r}"
    )


def check_compatible(out_dir: Path, metadata: dict, force: bool = False) -> None:
    """Refuse to add to a folder written with other settings or another model (the difference is named)."""
    if not (out_dir / "info.json").is_file():
        return
    info = read_info(out_dir)
    for key in ("pooling", "pca_dim", "fps", "num_frames"):
        if key in info and info[key] != metadata[key]:
            raise ValueError(
                f"{out_dir / 'info.json'}: folder was extracted with {key}={info[key]!r}, "
                f"this run uses {metadata[key]!r}; use another --out"
            )
    old, new = info.get("model_sha256"), metadata.get("model_sha256")
    if not force and old and new != old:
        raise ValueError(
            f"{out_dir / 'info.json'}: folder was extracted with model {info.get('model')} (sha256 {old[:12]}…), "
            f"this run uses {metadata['model']} ({'sha256 ' + new[:12] + '…' if new else 'no local weights'}); "
            "descriptors of two models cannot share a folder: use another --out, or --force if the two are the "
            "same model"
        )


def _positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def _check_extract_args(
    fps, num_frames, batch_size, shard_size, commit_seconds, num_workers, min_duration
) -> None:
    if fps is None and num_frames is None:
        raise ValueError("give fps or num_frames")
    _positive("fps", fps, allow_none=True)
    _positive("num_frames", num_frames, allow_none=True)
    _positive("batch_size", batch_size)
    _positive("shard_size", shard_size)
    _positive("commit_seconds", commit_seconds)
    if num_workers < 0:
        raise ValueError(f"num_workers must be 0 or more, got {num_workers!r}")
    if not min_duration >= 0:
        raise ValueError(f"min_duration must be 0 or more seconds, got {min_duration!r}")


def _set_threads(num_threads: int | None) -> None:
    """torch's CNN threads: `num_threads`, or the cores shared out between this node's processes unless
    OMP_NUM_THREADS is set."""
    if num_threads is None and "OMP_NUM_THREADS" not in os.environ:
        num_threads = max(1, (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    if num_threads is not None:
        _positive("num_threads", num_threads)
        torch.set_num_threads(num_threads)


class ExtractionInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT during extraction: finished videos were committed; rerun to resume."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise ExtractionInterrupted(signum)


def load_processor(name_or_path: str) -> TCAImageProcessor:
    if Path(name_or_path, "preprocessor_config.json").is_file():
        return TCAImageProcessor.from_pretrained(name_or_path)
    return TCAImageProcessor()


@torch.no_grad()
def _describe(
    model, processor: TCAImageProcessor, pixels: torch.Tensor, batch_size: int, device
) -> np.ndarray:
    """uint8 [N, 3, h, w] -> descriptors float32 [N, D], `batch_size` frames at a time."""
    outputs = []
    for start in range(0, len(pixels), batch_size):
        batch = processor.normalize_frames(pixels[start : start + batch_size]).to(device)
        outputs.append(model(pixel_values=batch).frame_embeds.float().cpu())
    return torch.cat(outputs).numpy()


def extract(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model_name: str = DEFAULT_MODEL,
    pooling: str = "l3_irmac",
    fps: float | None = 1.0,
    num_frames: int | None = None,
    backend: str = "auto",
    batch_size: int = 64,
    num_workers: int = 2,
    shard_size: int = 64,
    retry_failed: bool = False,
    progress: bool = True,
    cpu: bool = False,
    model=None,
    processor: TCAImageProcessor | None = None,
    commit_seconds: float = 30.0,
    force: bool = False,
    num_threads: int | None = None,
    min_duration: float = 1.0,
) -> dict:
    """Extract descriptors of `inputs` into `out_dir`; returns counts {"done", "failed", "skipped", "frames"}.

    Finished videos are committed at least every `commit_seconds`. SIGTERM or SIGINT commits what is finished,
    stops the decoder workers and raises `ExtractionInterrupted` (a `KeyboardInterrupt`); rerunning resumes.
    `num_threads` (default: the cores shared out between this node's processes) sets torch's CNN threads.
    Videos shorter than `min_duration` seconds are recorded as failed (the value is kept in the folder's info).
    """
    from accelerate import PartialState

    _check_extract_args(fps, num_frames, batch_size, shard_size, commit_seconds, num_workers, min_duration)
    state = PartialState(cpu=cpu)
    _set_threads(num_threads)
    model = model if model is not None else load_descriptor_model(model_name, pooling)
    processor = processor or load_processor(model_name)
    model = model.to(state.device).eval()
    out_dir = Path(out_dir)
    items = collect_videos(inputs)
    done = existing_ids(out_dir) if (out_dir / "data").is_dir() else set()
    if not retry_failed:
        done |= {row["video_id"] for row in read_failures(out_dir)}
    todo = [item for item in items if item[0] not in done]
    counts = {"done": 0, "failed": 0, "skipped": len(items) - len(todo), "frames": 0}
    metadata = {
        **model_record(str(model_name)),
        "pooling": model.config.pooling,
        "pca_dim": model.config.pca_dim,
        "fps": fps,
        "num_frames": num_frames,
        "min_duration": float(min_duration),
    }
    check_compatible(out_dir, metadata, force)  # resuming: refuse to mix descriptors of different settings
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with state.split_between_processes(todo) as mine:
            settings = {
                "fps": fps,
                "num_frames": num_frames,
                "backend": backend,
                "batch_size": batch_size,
                "num_workers": num_workers,
                "shard_size": shard_size,
                "commit_seconds": commit_seconds,
                "progress": progress,
            }
            _extract_items(mine, out_dir, model, processor, state, metadata, counts, settings)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    state.wait_for_everyone()
    return counts


def _describe_and_write(
    pending: list[dict], model, processor, batch_size: int, device, writer, counts
) -> None:
    """Describe the decoded videos of `pending` in frame batches packed across videos, hand them to `writer`."""
    pixels = torch.cat([item["pixels"] for item in pending])
    features = _describe(model, processor, pixels, batch_size, device)
    start = 0
    for item in pending:
        stop = start + len(item["pixels"])
        writer.add(
            item["video_id"],
            features[start:stop],
            path=item["path"],
            fps=item["fps"],
            timestamps=item["timestamps"],
        )
        start = stop
        counts["frames"] += len(item["pixels"])
    counts["done"] += len(pending)


def _extract_items(
    mine, out_dir, model, processor, state, metadata: dict, counts: dict, settings: dict
) -> None:
    """One process's share of `extract`: decode in workers, describe in batches, write shards. `settings` holds
    `extract`'s fps, num_frames, backend, batch_size, num_workers, shard_size, commit_seconds and progress."""
    fps, num_frames, backend = settings["fps"], settings["num_frames"], settings["backend"]
    batch_size, num_workers = settings["batch_size"], settings["num_workers"]
    shard_size, commit_seconds, progress = (
        settings["shard_size"],
        settings["commit_seconds"],
        settings["progress"],
    )
    dataset = VideoFramesDataset(
        mine,
        processor,
        fps=fps,
        num_frames=num_frames,
        backend=backend,
        min_duration=metadata["min_duration"],
    )
    writer = DescriptorWriter(
        out_dir,
        model.config.output_dim,
        shard_size=shard_size,
        prefix=f"p{state.process_index}",
        metadata=metadata,
        commit_seconds=commit_seconds,
    )
    pending: list[dict] = []

    def flush() -> None:
        if pending:
            _describe_and_write(pending, model, processor, batch_size, state.device, writer, counts)
            bar.update(len(pending))
            pending.clear()
            show_rates()

    began = time.perf_counter()

    def show_rates() -> None:
        elapsed = max(time.perf_counter() - began, 1e-9)
        bar.set_postfix(
            videos_s=f"{(counts['done'] + counts['failed']) / elapsed:.2f}",
            frames_s=f"{counts['frames'] / elapsed:.1f}",
            failed=counts["failed"],
        )

    # the bar counts videos that are finished: described and handed to the writer, or failed
    bar = tqdm(
        total=len(dataset),
        unit="video",
        disable=not progress or not state.is_local_main_process,
        desc=f"extract (process {state.process_index})",
    )
    with bar, writer:
        for item in decode_isolating_crashes(dataset, num_workers):
            if item["error"] is not None:
                append_failure(out_dir, item["video_id"], item["path"], item["error"])
                counts["failed"] += 1
                bar.update(1)
                show_rates()
                continue
            pending.append(item)
            if sum(len(p["pixels"]) for p in pending) >= batch_size:
                flush()
        flush()


def fit_pca(
    raw_dir: str,
    model_name: str,
    dim: int,
    save_model: str,
    whiten_to: str | None = None,
    frames_per_video: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fit PCA on raw descriptors, save a whitened descriptor model (+ processor), optionally whiten the folder.
    Returns {"model": save_model, "descriptors": whiten_to, "pca_dim", "feature_dim"}."""
    from .descriptor_pca import fit_pca_on_descriptors, whiten_descriptor_folder

    model = load_descriptor_model(model_name)
    if model.config.pca_dim is not None:
        raise ValueError(f"{model_name}: already has a {model.config.pca_dim}-d PCA; give the raw model")
    pca = fit_pca_on_descriptors(
        raw_dir, dim=dim, frames_per_video=frames_per_video, seed=seed, progress=progress
    )
    model.set_pca(pca)
    model.save_pretrained(save_model)
    load_processor(model_name).save_pretrained(save_model)
    if whiten_to:  # the whitened folder records the whitened model, so extraction with it can add videos
        whiten_descriptor_folder(
            raw_dir,
            whiten_to,
            pca,
            eps=model.config.pca_eps,
            progress=progress,
            metadata={**model_record(save_model), "pca_dim": model.config.pca_dim},
        )
    return {
        "model": str(save_model),
        "descriptors": str(whiten_to) if whiten_to else None,
        "pca_dim": model.config.pca_dim,
        "feature_dim": model.config.feature_dim,
    }


if __name__ == "__main__":  # `python -m vidtempo.processing.extract` / `torchrun ... -m`: the CLI
    from ..cli.extract import main

    sys.exit(main())
