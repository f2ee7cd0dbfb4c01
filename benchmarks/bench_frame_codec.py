"""What the compact frame stores cost in accuracy: held-out FIVR-protocol mAP of TCA_f (chamfer), TCA_sym and the
cascade when the frame embeddings go through the index's frame codecs (float16; int8 with one float32 scale per
frame: `encode_int8` / `decode_int8`, the functions `VideoIndex` stores and reads with) against float32, on the
embedded benchmark's trained models. Each difference (codec - float32) gets a paired bootstrap interval
(queries resampled within each benchmark seed, `cli/ablation.py`). Also the bytes per frame of each codec.

Needs finished `make demo-paper` runs (default `outputs/paper/b*/train-main-t*`):

    .venv/bin/python benchmarks/bench_frame_codec.py [--runs 'outputs/paper/b*/train-main-t*']

Writes docs/bench/frame_codec.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
from _timing import write_report  # noqa: E402  (sibling module)

from vidtempo.cli.ablation import paired_bootstrap_difference
from vidtempo.evaluation.embedding import VideoEmbeddings
from vidtempo.evaluation.tca_eval import embed_folder, evaluate_embeddings
from vidtempo.processing.descriptor_store import decode_int8, encode_int8

ROOT = Path(__file__).resolve().parents[1]
SIMILARITIES = {"TCA_f (chamfer)": "chamfer", "TCA_sym": "symmetric_chamfer", "cascade (top 20)": "cascade"}
TASKS = ("DSVR", "CSVR", "ISVR")


def round_trip(frames: torch.Tensor, codec: str) -> torch.Tensor:
    """`frames` as the frame store gives them back: unchanged (float32), float16, or int8 with a scale."""
    if codec == "float32":
        return frames
    if codec == "float16":
        return frames.half().float()
    codes, scales = encode_int8(frames.numpy())
    return torch.from_numpy(decode_int8(codes, scales))


def codec_bytes(codec: str, dim: int) -> int:
    """Disk bytes per frame."""
    return {"float32": 4 * dim, "float16": 2 * dim, "int8": dim + 4}[codec]


def evaluate_run(run: Path) -> tuple[dict, int]:
    """{codec: {row: {task: {query: AP}}}} of one trained run, and the frame dimension."""
    from transformers import AutoModel

    bench = run.parent
    annotation = bench / "benchmark" / "annotation.json"
    heldout = json.loads(annotation.read_text())["versions"]["synthetic"]
    ids = list(dict.fromkeys(heldout["queries"] + heldout["database"]))
    model = AutoModel.from_pretrained(run / "model").eval()
    embedded = embed_folder(model, bench / "descriptors", ids=ids, progress=False)
    out = {}
    for codec in ("float32", "float16", "int8"):
        stored = VideoEmbeddings(
            embedded.ids, embedded.video_embeds, [round_trip(f, codec) for f in embedded.frame_embeds]
        )
        out[codec] = {
            row: evaluate_embeddings(
                stored, "fivr", similarity, annotation=annotation, version="synthetic", cascade_depth=20
            )["per_query"]
            for row, similarity in SIMILARITIES.items()
        }
    return out, embedded.frame_embeds[0].shape[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default="outputs/paper/b*/train-main-t*", help="glob of finished runs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "frame_codec.md"))
    args = parser.parse_args(argv)
    runs = sorted(p for p in ROOT.glob(args.runs) if (p / "model" / "model.safetensors").is_file())
    if not runs:
        raise SystemExit(f"no finished runs match {args.runs!r}: run `make demo-paper` first")
    results, dims = {}, set()
    for run in runs:
        results[run], dim = evaluate_run(run)
        dims.add(dim)
    groups = [run.parent.name for run in runs]
    lines = [
        "## Frame-store codecs: what int8 and float16 cost in held-out mAP (`benchmarks/bench_frame_codec.py`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. Runs: {len(runs)} trained main-arm models of "
        f"`make demo-paper` ({', '.join(f'{r.parent.name}/{r.name}' for r in runs)}), frame dim {sorted(dims)}; "
        "held-out FIVR-protocol mAP, d = codec - float32 with its 95% paired bootstrap interval (queries "
        "resampled within each benchmark seed).",
        "",
        "| codec | bytes / frame | row | " + " | ".join(f"{t} d [95%]" for t in TASKS) + " |",
        "| --- | ---: | --- | " + " | ".join("---" for _ in TASKS) + " |",
    ]
    dim = max(dims)
    for codec in ("float16", "int8"):
        for row in SIMILARITIES:
            cells = []
            for task in TASKS:
                d, low, high = paired_bootstrap_difference(
                    [results[r][codec][row][task] for r in runs],
                    [results[r]["float32"][row][task] for r in runs],
                    groups,
                )
                cells.append(f"{d:+.4f} [{low:+.4f}, {high:+.4f}]")
            lines.append(f"| {codec} | {codec_bytes(codec, dim):,} | {row} | " + " | ".join(cells) + " |")
    base = {
        row: np.mean([np.mean(list(results[r]["float32"][row]["DSVR"].values())) for r in runs])
        for row in SIMILARITIES
    }
    lines += [
        "",
        "float32 DSVR mAP (mean over runs): "
        + ", ".join(f"{row} {v:.4f}" for row, v in base.items())
        + f"; float32 takes {codec_bytes('float32', dim):,} bytes a frame.",
        "",
    ]
    write_report(Path(args.out), lines)


if __name__ == "__main__":
    main()
