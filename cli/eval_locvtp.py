"""`vidtempo-eval-locvtp`: evaluate LocVTP (text-video retrieval and zero-shot grounding) into one JSON.

The library is `vidtempo.evaluation.locvtp_eval`; this module parses, prints and chooses the exit code
(`cli/_contract.py`). `python -m vidtempo.evaluation.locvtp_eval` runs this command too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..evaluation.text_video_retrieval import TIE_MODES
from ._contract import UsageError, add_common_flags, positive, run_command

# The grounding defaults of `vidtempo.modeling.grounding_scoring`, restated so that --help does not import torch
# (importing vidtempo.modeling registers the models); tests/evaluation/test_eval_cli.py checks they agree.
SCORE_MODES = ("contrast", "mean")
DEFAULT_SCORE = "contrast"
DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)

DESCRIPTION = (
    "Evaluate LocVTP: text<->video retrieval (R@1/5/10, MdR, MnR) and zero-shot temporal grounding "
    "(R@{1,5} at IoU > thresholds, strictly, after NMS; mIoU), written to one JSON for the model card."
)


def build_parser() -> argparse.ArgumentParser:
    """The `vidtempo-eval-locvtp` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-eval-locvtp", description=DESCRIPTION)
    parser.add_argument("--model", required=True, help="a saved LocVTPModel folder (with its processor)")
    parser.add_argument("--processor", help="processor folder if not saved with the model")
    parser.add_argument(
        "--captions",
        help="captions CSV/JSON (columns video_id, video_path, start, end, caption[, split]): retrieval pairs "
        "and video paths for grounding",
    )
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
        choices=list(SCORE_MODES),
        default=DEFAULT_SCORE,
        help="window score: contrast (mean similarity inside minus outside; the full video scores 0, "
        "on the same scale as every window) or mean (inside only: always a single clip; comparison only)",
    )
    parser.add_argument(
        "--length-prior",
        type=float,
        default=0.0,
        help="add this weight times log(window length / video length) to every window score (default 0)",
    )
    parser.add_argument(
        "--untrained-model",
        help="the untrained reference row's model folder (default: the model's config freshly initialised "
        "with --seed)",
    )
    parser.add_argument("--frames-per-clip", type=positive(int), help="override the processor's clip length")
    parser.add_argument("--export-features", help="also write <video_id>.npz clip features here")
    parser.add_argument(
        "--export-2dtan",
        metavar="DIR",
        help="also write the grounding videos' clip features as the one HDF5 file 2D-TAN reads (uniform clips; "
        "Charades-STA: plus Charades_v1_test.csv durations)",
    )
    parser.add_argument(
        "--2dtan-dataset",
        dest="tadn_dataset",
        choices=["charades", "activitynet", "tacos"],
        default="charades",
        help="the 2D-TAN reader layout of --export-2dtan (default charades)",
    )
    parser.add_argument("--output", required=True, help="results JSON (written atomically)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return add_common_flags(parser)


def check_args(args: argparse.Namespace) -> None:
    """Flag values and combinations refused before any work (`UsageError`)."""
    bad = [t for t in args.thresholds if not 0 <= t < 1]
    if bad:
        raise UsageError(f"argument --thresholds ({bad}): IoU thresholds must be in [0, 1), got {bad}")
    if not (args.captions or args.msrvtt_csv or args.grounding):
        raise UsageError("nothing to evaluate (no inputs): give --captions, --msrvtt-csv or --grounding")
    if args.msrvtt_csv and not args.video_dir:
        raise UsageError(f"--msrvtt-csv ({args.msrvtt_csv}): needs --video-dir")


def _body(args: argparse.Namespace) -> int:
    check_args(args)
    from ..evaluation.locvtp_eval import evaluate_locvtp, summary
    from ..processing.atomic_files import write_json_atomic

    results = evaluate_locvtp(
        args.model,
        args.processor,
        captions=args.captions,
        split=args.split,
        msrvtt_csv=args.msrvtt_csv,
        video_dir=args.video_dir,
        grounding=args.grounding,
        frames_per_clip=args.frames_per_clip,
        thresholds=args.thresholds,
        score=args.score,
        ties=args.ties,
        export_features=args.export_features,
        progress=not args.no_progress,
        seed=args.seed,
        length_prior=args.length_prior,
        untrained_model=args.untrained_model,
        export_2dtan=args.export_2dtan,
        tadn_dataset=args.tadn_dataset,
    )
    out = write_json_atomic(args.output, results)
    print(f"results: {out} {json.dumps(summary(results))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-eval-locvtp`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
