"""`vidtempo-extract`: a folder of videos -> a descriptor dataset (METHODS.md §1.1), and `fit-pca`.

    vidtempo-extract VIDEOS_OR_DIRS... --output DIR [--model microsoft/resnet-50 | MODEL_DIR] [--pooling l3_irmac]
    vidtempo-extract fit-pca RAW_DIR --model RAW_MODEL_DIR --dim 1024 --save-model WHITENED_MODEL_DIR
                     [--whiten-to WHITENED_DESCRIPTOR_DIR]

The library is `vidtempo.processing.extract`; this module parses, prints and chooses exit codes
(`cli/_contract.py`): usage errors exit 2, runtime errors are one `error: ...` line and exit 1, SIGTERM/SIGINT
exit 128 + the signal after committing finished videos. torch is imported only after parsing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._contract import UsageError, add_common_flags, positive, run_command

DEFAULT_MODEL = (
    "microsoft/resnet-50"  # = processing.extract.DEFAULT_MODEL (not imported: it would load torch)
)
BACKENDS = ("auto", "decord", "pyav")  # = processing.video_reader.BACKENDS


def _extract_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-extract",
        description="Turn video files (or folders, searched recursively) into a descriptor dataset: 1-fps "
        "frames -> short side 256, centre crop 224 -> ResNet stages 1-4 -> iMAC/L3-iRMAC (-> PCA if the model "
        "has one). Video id = file stem. Resumable; bad files go to OUTPUT/failed.jsonl. "
        "Use `vidtempo-extract fit-pca --help` for the PCA step.",
    )
    parser.add_argument("inputs", nargs="+", help="video files and/or folders")
    parser.add_argument("--output", help="output descriptor folder (created or resumed); required")
    parser.add_argument("--out", dest="output", help=argparse.SUPPRESS)  # the old name, kept as an alias
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="saved descriptor-model folder, or a ResNet checkpoint (default %(default)s, needs "
        "the Hub) used without PCA",
    )
    parser.add_argument(
        "--pooling",
        default="l3_irmac",
        choices=["imac", "l3_irmac"],
        help="pooling when --model is a plain ResNet (default %(default)s)",
    )
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument(
        "--fps", type=positive(float), default=1.0, help="sampling rate (default 1, authors' rule)"
    )
    sampling.add_argument(
        "--num-frames", type=positive(int), default=None, help="sample N frames uniformly instead of --fps"
    )
    sampling.add_argument(
        "--min-duration",
        type=positive(float, allow_zero=True),
        default=1.0,
        help="shortest video accepted, in seconds (default %(default)s; shorter ones go to failed.jsonl; "
        "recorded in the folder's info.json)",
    )
    sampling.add_argument(
        "--backend", default="auto", choices=BACKENDS, help="decoder (auto: decord, else PyAV)"
    )
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=positive(int), default=64, help="frames per CNN batch")
    run.add_argument(
        "--num-workers",
        type=positive(int, allow_zero=True),
        default=2,
        help="decoding worker processes per process (0: decode in the main process, where a decoder crash ends "
        "the job)",
    )
    run.add_argument(
        "--shard-size",
        type=positive(int),
        default=64,
        help="at most this many videos per parquet shard (default %(default)s)",
    )
    run.add_argument(
        "--commit-seconds",
        type=positive(float),
        default=30.0,
        help="commit finished videos at least this often, so a kill loses at most this much work "
        "(default %(default)s)",
    )
    run.add_argument(
        "--num-threads",
        type=positive(int),
        default=None,
        help="torch threads for the CNN (default: the cores shared out between this node's processes, unless "
        "OMP_NUM_THREADS is set)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="add to a folder extracted with a different model file (same settings required)",
    )
    run.add_argument("--retry-failed", action="store_true", help="retry videos listed in failed.jsonl")
    run.add_argument("--cpu", action="store_true", help="run on CPU even if an accelerator is present")
    run.add_argument("--seed", type=int, default=0, help="random seed")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return add_common_flags(parser)


def _fit_pca_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-extract fit-pca",
        description="Fit PCA whitening (streaming covariance, float64) on a raw descriptor folder written with a "
        "PCA-free model, save a new descriptor model holding the PCA buffers, and optionally whiten the folder.",
    )
    parser.add_argument("raw_dir", help="descriptor folder of raw (un-whitened) descriptors")
    parser.add_argument(
        "--model", required=True, help="the raw descriptor model (folder or ResNet checkpoint)"
    )
    parser.add_argument(
        "--dim",
        type=positive(int),
        default=1024,
        help="PCA output dimension (default %(default)s); must be below the number of frames fitted",
    )
    parser.add_argument("--save-model", required=True, help="folder for the whitened descriptor model")
    parser.add_argument("--whiten-to", default=None, help="also write whitened descriptors to this folder")
    parser.add_argument(
        "--frames-per-video",
        type=positive(int),
        default=None,
        help="random frames per video used for fitting (authors' code: 10; default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the frame sampling")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return add_common_flags(parser)


def _run_extract(args: argparse.Namespace) -> int:
    if args.output is None:  # checked here, not by argparse, so that the hidden `--out` alias counts
        raise UsageError("the following arguments are required: --output")
    import numpy as np
    import torch

    from ..processing.descriptor_store import existing_ids
    from ..processing.extract import ExtractionInterrupted, extract

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    try:
        counts = extract(
            args.inputs,
            args.output,
            model_name=args.model,
            pooling=args.pooling,
            fps=None if args.num_frames else args.fps,
            num_frames=args.num_frames,
            min_duration=args.min_duration,
            backend=args.backend,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            shard_size=args.shard_size,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
            cpu=args.cpu,
            commit_seconds=args.commit_seconds,
            force=args.force,
            num_threads=args.num_threads,
        )
    except ExtractionInterrupted as interrupt:
        done = len(existing_ids(args.output)) if (Path(args.output) / "data").is_dir() else 0
        print(
            f"interrupted by {interrupt}: {done} videos are committed in {args.output}; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 128 + interrupt.signum
    print(
        f"[process {os.environ.get('RANK', 0)}] extracted {counts['done']} videos ({counts['frames']} frames), "
        f"{counts['failed']} failed, {counts['skipped']} skipped -> {args.output}"
    )
    return 0


def _run_fit_pca(args: argparse.Namespace) -> int:
    from ..processing.extract import fit_pca

    result = fit_pca(
        args.raw_dir,
        args.model,
        args.dim,
        args.save_model,
        args.whiten_to,
        args.frames_per_video,
        args.seed,
        progress=not args.no_progress,
    )
    print(
        f"fitted a {result['pca_dim']}-d PCA of {result['feature_dim']}-d descriptors; saved the whitened model to "
        f"{result['model']}" + (f", descriptors to {result['descriptors']}" if result["descriptors"] else "")
    )
    return 0


def _merge_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-extract merge",
        description="Merge descriptor folders extracted on several machines (node-local --output folders) into "
        "one folder: shards copied, settings checked, failed.jsonl kept for videos no part extracted.",
    )
    parser.add_argument("output", help="the merged descriptor folder (created, or extended)")
    parser.add_argument("parts", nargs="+", help="descriptor folders to merge")
    return add_common_flags(parser)


def _run_merge(args: argparse.Namespace) -> int:
    from ..processing.descriptor_store import merge_descriptor_folders

    result = merge_descriptor_folders(args.output, args.parts)
    print(
        f"{args.output}: {result['videos']} videos after copying {result['shards']} shards from {len(args.parts)} "
        f"folders ({result['duplicates']} in several parts, {result['failed']} failed rows kept)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-extract [fit-pca | merge] ...`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fit-pca":
        return run_command(_fit_pca_parser(), _run_fit_pca, argv[1:])
    if argv and argv[0] == "merge":
        return run_command(_merge_parser(), _run_merge, argv[1:])
    return run_command(_extract_parser(), _run_extract, argv)


if __name__ == "__main__":
    raise SystemExit(main())
