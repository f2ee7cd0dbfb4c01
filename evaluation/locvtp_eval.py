"""Evaluate a LocVTP model: text–video retrieval and zero-shot temporal grounding -> one results JSON.

    python -m vidtempo.evaluation.locvtp_eval --model runs/locvtp/model \
        --captions data/captioned/captions.csv --split test \
        --grounding data/captioned/charades_sta_test.txt --output results/locvtp.json

Retrieval pairs come from a captions file (each (video, start, end, caption) row: the segment is the video,
the caption its text) or from an MSR-VTT 1k-A CSV (`--msrvtt-csv` + `--video-dir`). Grounding reads a
Charades-STA file; videos are found through the captions file (video_id -> path) or as
`<video-dir>/<video_id>.<ext>`. Videos are cut into consecutive `frames_per_clip`-frame clips (the
processor's inference mode); `--export-features DIR` also writes one `<video_id>.npz` per video
([num_clips, D] features + clip start/end seconds) for 2D-TAN-style grounding heads. Unreadable videos
are skipped, listed under "failed" in the JSON, and their queries left out (counted).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..modeling.modeling_locvtp import LocVTPModel
from ..processing.atomic_files import write_json_atomic
from ..processing.captions import load_caption_dataset
from ..processing.processing_locvtp import LocVTPProcessor
from ..processing.video_reader import VideoDecodeError, decode_segment
from .grounding import (
    DEFAULT_THRESHOLDS,
    export_clip_features,
    ground_sentence,
    grounding_metrics,
    read_charades_sta,
)
from .text_video_retrieval import TIE_MODES, read_msrvtt_csv, retrieval_metrics

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
            frames, fps = decode_segment(pair["video_path"], pair["start"], pair["end"])
        except (VideoDecodeError, ValueError, OSError) as error:
            failed.append({"video_id": pair["video_id"], "error": f"{type(error).__name__}: {error}"})
            continue
        videos.append(_video_embed(encode_clips(model, processor, frames, fps)[0]))
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


def evaluate_grounding(
    model,
    processor,
    queries: list[dict],
    video_paths: dict[str, str],
    export_dir: str | None = None,
    thresholds=DEFAULT_THRESHOLDS,
    mode: str = "mean",
    progress: bool = True,
) -> dict:
    """Zero-shot sliding-window grounding of Charades-STA queries -> R@{1,5},IoU>m and mIoU."""
    clips, failed = {}, []
    for video_id in tqdm(
        sorted({q["video_id"] for q in queries}), desc="grounding videos", disable=not progress
    ):
        try:
            path = video_paths.get(video_id)
            if path is None:
                raise FileNotFoundError(f"no video file for video_id {video_id!r}")
            frames, fps = decode_segment(path)
            clips[video_id] = encode_clips(model, processor, frames, fps)
        except (VideoDecodeError, ValueError, OSError) as error:
            failed.append({"video_id": video_id, "error": f"{type(error).__name__}: {error}"})
            continue
        if export_dir:
            export_clip_features(export_dir, video_id, *clips[video_id])
    kept = [q for q in queries if q["video_id"] in clips]
    if not kept:
        raise ValueError(f"grounding: no query has a readable video ({len(failed)} videos failed)")
    sentences = encode_sentences(model, processor, [q["sentence"] for q in kept])
    predictions = [
        ground_sentence(*clips[q["video_id"]], sentence, top_n=5, mode=mode)[0]
        for q, sentence in zip(kept, sentences)
    ]
    metrics = grounding_metrics(predictions, [(q["start"], q["end"]) for q in kept], thresholds=thresholds)
    return {
        **metrics,
        "num_queries": len(kept),
        "num_skipped_queries": len(queries) - len(kept),
        "failed": failed,
    }


def _find_video(video_dir: Path, video_id: str) -> str | None:
    for ext in VIDEO_EXTENSIONS:
        if (video_dir / f"{video_id}{ext}").is_file():
            return str(video_dir / f"{video_id}{ext}")
    return None


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    model = LocVTPModel.from_pretrained(args.model).eval()
    processor = LocVTPProcessor.from_pretrained(args.processor or args.model)
    if args.frames_per_clip is not None:
        processor.frames_per_clip = args.frames_per_clip
    progress = not args.no_progress
    results: dict = {"model": str(args.model), "frames_per_clip": processor.frames_per_clip}
    captions = load_caption_dataset(args.captions, split=args.split) if args.captions else None
    video_paths = {}
    if captions is not None:
        video_paths = dict(zip(captions["video_id"], captions["video_path"]))
    if args.msrvtt_csv:
        if not args.video_dir:
            raise ValueError("--msrvtt-csv needs --video-dir")
        pairs = [
            {
                "video_id": r["video_id"],
                "video_path": _find_video(Path(args.video_dir), r["video_id"])
                or str(Path(args.video_dir) / f"{r['video_id']}.mp4"),
                "start": 0.0,
                "end": math.inf,
                "caption": r["sentence"],
            }
            for r in read_msrvtt_csv(args.msrvtt_csv)
        ]
        results["retrieval"] = evaluate_retrieval(model, processor, pairs, progress, args.ties)
    elif captions is not None:
        results["retrieval"] = evaluate_retrieval(model, processor, list(captions), progress, args.ties)
    if args.grounding:
        queries = read_charades_sta(args.grounding)
        if args.video_dir:
            for video_id in {q["video_id"] for q in queries} - set(video_paths):
                found = _find_video(Path(args.video_dir), video_id)
                if found:
                    video_paths[video_id] = found
        results["grounding"] = evaluate_grounding(
            model,
            processor,
            queries,
            video_paths,
            args.export_features,
            tuple(args.thresholds),
            args.score,
            progress,
        )
    if "retrieval" not in results and "grounding" not in results:
        raise ValueError("nothing to evaluate: give --captions, --msrvtt-csv or --grounding")
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-eval-locvtp",
        description="Evaluate LocVTP: text<->video retrieval (R@1/5/10, MdR, MnR) and zero-shot temporal grounding "
        "(R@{1,5} at IoU > thresholds, strictly, after NMS; mIoU), written to one JSON for the model card.",
    )
    parser.add_argument("--model", required=True, help="a saved LocVTPModel folder (with its processor)")
    parser.add_argument("--processor", help="processor folder if not saved with the model")
    parser.add_argument("--captions", help="captions CSV/JSON: retrieval pairs and video paths for grounding")
    parser.add_argument("--split", default=None, help="keep captions rows of this split (e.g. test)")
    parser.add_argument("--msrvtt-csv", help="MSR-VTT 1k-A test CSV (video_id, sentence) for retrieval")
    parser.add_argument("--video-dir", help="folder of <video_id>.<ext> videos (MSR-VTT, Charades-STA)")
    parser.add_argument(
        "--ties",
        choices=list(TIE_MODES),
        default="mean",
        help="retrieval tie rule: mean (expected rank over random tie orders; constant scores "
        "give chance), optimistic (ground truth first among equals, as CLIP4Clip), pessimistic",
    )
    parser.add_argument("--grounding", help="Charades-STA annotation file (video_id start end##sentence)")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=list(DEFAULT_THRESHOLDS),
        help="IoU thresholds (strictly greater); default 0.3 0.5 0.7",
    )
    parser.add_argument(
        "--score",
        choices=["mean", "contrast"],
        default="mean",
        help="window score: mean clip-sentence similarity, or mean inside minus mean outside",
    )
    parser.add_argument("--frames-per-clip", type=int, help="override the processor's clip length")
    parser.add_argument("--export-features", help="also write <video_id>.npz clip features here")
    parser.add_argument("--output", required=True, help="results JSON (written atomically)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frames_per_clip is not None and args.frames_per_clip <= 0:
        parser.error(f"argument --frames-per-clip: expected a positive integer, got {args.frames_per_clip}")
    bad = [t for t in args.thresholds if not 0 <= t < 1]
    if bad:
        parser.error(f"argument --thresholds: IoU thresholds must be in [0, 1), got {bad}")
    try:
        results = run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = write_json_atomic(args.output, results)
    summary = {
        k: {m: v for m, v in results[k].items() if m in ("R@1,IoU=0.5", "mIoU")}
        for k in ("grounding",)
        if k in results
    }
    if "retrieval" in results:
        summary["t2v R@1"] = results["retrieval"]["t2v"]["R@1"]
    print(f"results: {out} {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
