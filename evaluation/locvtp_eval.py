"""Evaluate a LocVTP model: text–video retrieval and zero-shot temporal grounding -> one results dict
(`evaluate_locvtp`; the command line is `cli/eval_locvtp.py`)::

    vidtempo-eval-locvtp --model runs/locvtp/model \
        --captions data/captioned/captions.csv --split test \
        --grounding data/captioned/charades_sta_test.txt --output results/locvtp.json

(`python -m vidtempo.evaluation.locvtp_eval ...` runs the same command.)

Retrieval pairs come from a captions file (each (video, start, end, caption) row: the segment is the video,
the caption its text) or from an MSR-VTT 1k-A CSV (`--msrvtt-csv` + `--video-dir`). Grounding reads a
Charades-STA file; videos are found through the captions file (video_id -> path) or as
`<video-dir>/<video_id>.<ext>`. Videos are cut into consecutive `frames_per_clip`-frame clips (the
processor's inference mode); `--export-features DIR` also writes one `<video_id>.npz` per video
([num_clips, D] features + clip start/end seconds) for 2D-TAN-style grounding heads. Unreadable videos
are skipped, listed under "failed" in the JSON, and their queries left out (counted).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..modeling.modeling_locvtp import LocVTPModel
from ..processing.captions import load_caption_dataset
from ..processing.processing_locvtp import LocVTPProcessor
from ..processing.tadn_export import uniform_clip_features, write_charades_durations, write_tadn_features
from ..processing.video_reader import VideoDecodeError
from .grounding import (
    DEFAULT_SCORE,
    DEFAULT_THRESHOLDS,
    export_clip_features,
    ground_sentence,
    grounding_metrics,
    read_charades_sta,
    reference_metrics,
)
from .text_video_retrieval import read_msrvtt_csv, retrieval_metrics

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov")


@torch.no_grad()
def encode_clips(
    model: LocVTPModel, processor: LocVTPProcessor, frames: np.ndarray, fps: float, clip_batch: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised clip embeddings [T, D] of consecutive clips of `frames` and their times [T, 2] (s)."""
    inputs = processor(videos=[frames], mode="inference", fps=[fps])
    pixels = inputs["pixel_values"][0].to(model.device, model.dtype)  # [T, F, 3, H, W]
    embeds = torch.cat(
        [
            model.get_clip_features(pixels[i : i + clip_batch][None])[0]
            for i in range(0, len(pixels), clip_batch)
        ]
    )
    times = inputs["clip_times"][0] if "clip_times" in inputs else inputs["clip_frames"][0].double() / fps
    return F.normalize(embeds.float(), dim=-1).cpu().numpy(), times.numpy()


@torch.no_grad()
def encode_video_path(
    model: LocVTPModel,
    processor: LocVTPProcessor,
    path: str,
    start: float = 0.0,
    end: float = math.inf,
    clip_batch: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """`encode_clips` of the segment [start, end) of a video file, decoded `clip_batch` clips at a time (only
    the planned frames, resized while decoding), so memory does not grow with the video's length."""
    embeds, times = [], []
    for planned in processor.iter_inference_clips(path, start, end, clip_batch):
        inputs = processor(videos=[planned], mode="inference")
        pixels = inputs["pixel_values"][0].to(model.device, model.dtype)  # [t, F, 3, H, W]
        embeds.append(model.get_clip_features(pixels[None])[0].float())
        times.append(inputs["clip_frames"][0].double() / planned.fps if planned.fps else None)
    if any(t is None for t in times):
        raise ValueError(f"{path}: no frame rate, cannot give clip times")
    return F.normalize(torch.cat(embeds), dim=-1).cpu().numpy(), torch.cat(times).numpy()


@torch.no_grad()
def encode_sentences(
    model: LocVTPModel, processor: LocVTPProcessor, sentences: list[str], batch_size: int = 64
) -> np.ndarray:
    """L2-normalised sentence embeddings [N, D] (mean of the real words, as in training)."""
    out = []
    for i in range(0, len(sentences), batch_size):
        tokens = processor(text=sentences[i : i + batch_size])
        text = model.get_text_features(
            input_ids=tokens["input_ids"].to(model.device),
            attention_mask=tokens["attention_mask"].to(model.device),
        )
        out.append(text.pooler_output.float().cpu())
    return torch.cat(out).numpy()


def _video_embed(clips: np.ndarray) -> np.ndarray:
    mean = clips.mean(0)
    return mean / max(np.linalg.norm(mean), 1e-12)


def evaluate_retrieval(
    model, processor, pairs: list[dict], progress: bool = True, ties: str = "mean"
) -> dict:
    """pairs: [{"video_id", "video_path", "start", "end", "caption"}] -> metrics of both directions (`ties`:
    the tie rule of `vidtempo.evaluation.text_video_retrieval`, recorded in the result)."""
    videos, captions, failed = [], [], []
    for pair in tqdm(pairs, desc="retrieval videos", disable=not progress):
        try:
            if not Path(pair["video_path"]).is_file():
                raise VideoDecodeError(pair["video_path"], "file not found")
            clips = encode_video_path(model, processor, pair["video_path"], pair["start"], pair["end"])[0]
        except (VideoDecodeError, ValueError, OSError) as error:
            failed.append({"video_id": pair["video_id"], "error": f"{type(error).__name__}: {error}"})
            continue
        videos.append(_video_embed(clips))
        captions.append(pair["caption"])
    if len(videos) < 2:
        raise ValueError(
            f"retrieval needs at least 2 readable videos, got {len(videos)} ({len(failed)} failed)"
        )
    similarity = encode_sentences(model, processor, captions) @ np.stack(videos).T  # [texts, videos]
    return {
        **retrieval_metrics(similarity, ties=ties),
        "ties": ties,
        "num_pairs": len(videos),
        "failed": failed,
    }


def encode_videos(
    model, processor, video_ids: Sequence[str], video_paths: dict[str, str], progress: bool = True
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[dict]]:
    """Clip embeddings and times of each whole video (`encode_clips`) and the videos that failed."""
    clips, failed = {}, []
    for video_id in tqdm(video_ids, desc="grounding videos", disable=not progress):
        try:
            path = video_paths.get(video_id)
            if path is None:
                raise FileNotFoundError(f"no video file for video_id {video_id!r}")
            if not Path(path).is_file():
                raise VideoDecodeError(path, "file not found")
            clips[video_id] = encode_video_path(model, processor, path)
        except (VideoDecodeError, ValueError, OSError) as error:
            failed.append({"video_id": video_id, "error": f"{type(error).__name__}: {error}"})
    return clips, failed


def ground_queries(
    model, processor, queries: list[dict], clips: dict, thresholds, mode: str, length_prior: float
) -> dict[str, float]:
    """R@{1,5},IoU>m and mIoU of `model` on `queries` whose videos' clips are in `clips`."""
    sentences = encode_sentences(model, processor, [q["sentence"] for q in queries])
    predictions = [
        ground_sentence(*clips[q["video_id"]], sentence, top_n=5, mode=mode, length_prior=length_prior)[0]
        for q, sentence in zip(queries, sentences)
    ]
    return grounding_metrics(predictions, [(q["start"], q["end"]) for q in queries], thresholds=thresholds)


def evaluate_grounding(
    model,
    processor,
    queries: list[dict],
    video_paths: dict[str, str],
    export_dir: str | None = None,
    thresholds=DEFAULT_THRESHOLDS,
    mode: str = DEFAULT_SCORE,
    progress: bool = True,
    length_prior: float = 0.0,
    untrained_model=None,
    seed: int = 0,
    export_2dtan: str | os.PathLike | None = None,
    tadn_dataset: str = "charades",
) -> dict:
    """Zero-shot sliding-window grounding of Charades-STA queries -> R@{1,5},IoU>m and mIoU, with the
    reference rows under "reference": the whole video, a random window (`grounding.reference_metrics`,
    seeded) and, when `untrained_model` is given, that model scored the same way."""
    video_ids = sorted({q["video_id"] for q in queries})
    clips, failed = encode_videos(model, processor, video_ids, video_paths, progress)
    if export_dir:
        for video_id, (features, times) in clips.items():
            export_clip_features(export_dir, video_id, features, times)
    if export_2dtan:  # one HDF5 per dataset, uniform clips over each video (processing/tadn_export.py)
        uniform = {v: uniform_clip_features(f, t) for v, (f, t) in clips.items()}
        write_tadn_features(export_2dtan, tadn_dataset, uniform)
        if tadn_dataset == "charades":
            write_charades_durations(
                export_2dtan, {v: float(t[-1, 1]) for v, (_, t) in clips.items()}, "test"
            )
    kept = [q for q in queries if q["video_id"] in clips]
    if not kept:
        raise ValueError(f"grounding: no query has a readable video ({len(failed)} videos failed)")
    metrics = ground_queries(model, processor, kept, clips, thresholds, mode, length_prior)
    gts = [(q["start"], q["end"]) for q in kept]
    reference = reference_metrics(
        [clips[q["video_id"]][1] for q in kept], gts, thresholds=thresholds, seed=seed
    )
    if untrained_model is not None:
        untrained_clips, _ = encode_videos(untrained_model, processor, sorted(clips), video_paths, False)
        reference["untrained_model"] = ground_queries(
            untrained_model, processor, kept, untrained_clips, thresholds, mode, length_prior
        )
    return {
        **metrics,
        "score": mode,
        "length_prior": length_prior,
        "reference": reference,
        "num_queries": len(kept),
        "num_skipped_queries": len(queries) - len(kept),
        "failed": failed,
    }


def _find_video(video_dir: Path, video_id: str) -> str | None:
    for ext in VIDEO_EXTENSIONS:
        if (video_dir / f"{video_id}{ext}").is_file():
            return str(video_dir / f"{video_id}{ext}")
    return None


def retrieval_pairs_from_msrvtt(msrvtt_csv: str | os.PathLike, video_dir: str | os.PathLike) -> list[dict]:
    """Retrieval pairs of an MSR-VTT 1k-A CSV: each video whole, found as `<video_dir>/<video_id>.<ext>`."""
    return [
        {
            "video_id": r["video_id"],
            "video_path": _find_video(Path(video_dir), r["video_id"])
            or str(Path(video_dir) / f"{r['video_id']}.mp4"),
            "start": 0.0,
            "end": math.inf,
            "caption": r["sentence"],
        }
        for r in read_msrvtt_csv(msrvtt_csv)
    ]


def evaluate_locvtp(
    model: str | os.PathLike,
    processor_path: str | os.PathLike | None = None,
    captions: str | os.PathLike | None = None,
    split: str | None = None,
    msrvtt_csv: str | os.PathLike | None = None,
    video_dir: str | os.PathLike | None = None,
    grounding: str | os.PathLike | None = None,
    frames_per_clip: int | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    score: str = DEFAULT_SCORE,
    ties: str = "mean",
    export_features: str | os.PathLike | None = None,
    progress: bool = True,
    seed: int = 0,
    length_prior: float = 0.0,
    untrained_model: str | os.PathLike | None = None,
    export_2dtan: str | os.PathLike | None = None,
    tadn_dataset: str = "charades",
) -> dict:
    """Retrieval (captions file or MSR-VTT CSV) and/or grounding (Charades-STA file) of the saved LocVTP
    model folder `model` (processor from `processor_path` or the model folder) -> one results dict.

    Grounding always reports the reference rows (whole video, random window, untrained model). The
    untrained model is `untrained_model` (a saved folder, e.g. the pre-training starting point) or, by
    default, the same config freshly initialised with `seed`."""
    if not (captions or msrvtt_csv or grounding):
        raise ValueError("nothing to evaluate (no inputs): give captions, an MSR-VTT CSV or a grounding file")
    if msrvtt_csv and not video_dir:
        raise ValueError(f"MSR-VTT CSV ({msrvtt_csv}): needs a video folder")
    torch.manual_seed(seed)
    locvtp = LocVTPModel.from_pretrained(model).eval()
    processor = LocVTPProcessor.from_pretrained(processor_path or model)
    if frames_per_clip is not None:
        processor.frames_per_clip = frames_per_clip
    results: dict = {"model": str(model), "frames_per_clip": processor.frames_per_clip}
    caption_rows = load_caption_dataset(captions, split=split) if captions else None
    video_paths = {}
    if caption_rows is not None:
        video_paths = dict(zip(caption_rows["video_id"], caption_rows["video_path"]))
    if msrvtt_csv:
        pairs = retrieval_pairs_from_msrvtt(msrvtt_csv, video_dir)
        results["retrieval"] = evaluate_retrieval(locvtp, processor, pairs, progress, ties)
    elif caption_rows is not None:
        results["retrieval"] = evaluate_retrieval(locvtp, processor, list(caption_rows), progress, ties)
    if grounding:
        queries = read_charades_sta(grounding)
        if video_dir:
            for video_id in {q["video_id"] for q in queries} - set(video_paths):
                found = _find_video(Path(video_dir), video_id)
                if found:
                    video_paths[video_id] = found
        torch.manual_seed(seed)
        if untrained_model:
            untrained = LocVTPModel.from_pretrained(untrained_model).eval()
        else:
            untrained = LocVTPModel(locvtp.config).eval()
        results["grounding"] = evaluate_grounding(
            locvtp,
            processor,
            queries,
            video_paths,
            export_features,
            tuple(thresholds),
            score,
            progress,
            length_prior=length_prior,
            untrained_model=untrained,
            seed=seed,
            export_2dtan=export_2dtan,
            tadn_dataset=tadn_dataset,
        )
    return results


def summary(results: dict) -> dict:
    """The headline numbers of `evaluate_locvtp`'s results: grounding R@1,IoU=0.5 and mIoU, t2v R@1."""
    out = {
        k: {m: v for m, v in results[k].items() if m in ("R@1,IoU=0.5", "mIoU")}
        for k in ("grounding",)
        if k in results
    }
    for name, row in results.get("grounding", {}).get("reference", {}).items():
        out[f"grounding {name}"] = {m: v for m, v in row.items() if m in ("R@1,IoU=0.5", "mIoU")}
    if "retrieval" in results:
        out["t2v R@1"] = results["retrieval"]["t2v"]["R@1"]
    return out


if __name__ == "__main__":
    from vidtempo.cli.eval_locvtp import main

    raise SystemExit(main())
