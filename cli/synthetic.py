"""The embedded synthetic benchmarks' commands: `python -m vidtempo.synthetic.neardup` (the near-duplicate
benchmark) and `python -m vidtempo.synthetic.captions` (the captioned-video set for LocVTP).

The library is `vidtempo.synthetic`; this module parses, prints and chooses the exit code (`cli/_contract.py`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from ._contract import add_common_flags, positive, run_command

NEARDUP_DESCRIPTION = (
    "Render the synthetic near-duplicate benchmark: per family a query, ND (transformed copies), "
    "DS (shared scenes), CS (other viewpoint) and IS (same incident) relatives, plus distractors; "
    "FIVR-schema annotation (held-out families, version 'synthetic') and VCDB-like training pairs. "
    "Videos: 6 per family (with 2 ND) + distractors. Rerunning with the same arguments resumes."
)

CAPTIONS_DESCRIPTION = (
    "Render the synthetic captioned-video set for LocVTP: videos with 2-3 timed events, captions "
    "with start/end seconds (captions.csv, train.csv, test.csv) and Charades-STA-style grounding "
    "files (charades_sta_{train,test}.txt). Rerunning with the same arguments reuses the output."
)


def _size(text: str) -> tuple[int, int]:
    """argparse type of `--size`: ``WIDTHxHEIGHT`` -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 128x96, got {text!r}") from None
    return width, height


def _video_flags(parser: argparse.ArgumentParser, size: tuple[int, int], duration_help: str):
    """The rendering flags both generators share (`--size`, `--fps`, `--duration`, `--seed`, `--no-progress`)
    and the common ones."""
    parser.add_argument(
        "--size", type=_size, default=size, help=f"WIDTHxHEIGHT, even; default {size[0]}x{size[1]}"
    )
    parser.add_argument("--fps", type=positive(float), default=8.0, help="frame rate; default 8")
    parser.add_argument("--duration", type=positive(float), default=6.0, help=f"{duration_help}; default 6")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same videos)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return add_common_flags(parser)


def neardup_parser() -> argparse.ArgumentParser:
    """The parser of `python -m vidtempo.synthetic.neardup`."""
    parser = argparse.ArgumentParser(
        prog="python -m vidtempo.synthetic.neardup", description=NEARDUP_DESCRIPTION
    )
    parser.add_argument("out_dir", help="output folder")
    parser.add_argument(
        "--num-sources", type=positive(int), default=40, help="families (incidents); default 40"
    )
    parser.add_argument(
        "--num-distractors",
        type=positive(int, allow_zero=True),
        default=60,
        help="unrelated videos; default 60",
    )
    parser.add_argument(
        "--nd-per-source", type=positive(int), default=2, help="near-duplicates per family; default 2"
    )
    parser.add_argument(
        "--train-fraction", type=float, default=0.6, help="families used for training; default 0.6"
    )
    parser.add_argument(
        "--num-channels",
        type=positive(int, allow_zero=True),
        default=8,
        help="uploader channels (intro bumper + watermark per channel; 0 = none); default 8",
    )
    parser.add_argument(
        "--workers", type=positive(int), default=max(1, (os.cpu_count() or 1)), help="processes"
    )
    return _video_flags(parser, (128, 96), "source video length in seconds")


def _neardup(args: argparse.Namespace) -> int:
    from ..synthetic.neardup import generate_benchmark

    paths = generate_benchmark(
        args.out_dir,
        args.num_sources,
        args.num_distractors,
        args.seed,
        args.size,
        args.fps,
        args.duration,
        args.nd_per_source,
        args.train_fraction,
        args.num_channels,
        args.workers,
        progress=not args.no_progress,
    )
    info = json.loads(paths.info.read_text())
    print(f"{info['num_videos']} videos ({info['num_failed']} failed) in {paths.videos}")
    print(
        f"annotation: {paths.annotation} (version 'synthetic' = held-out)\ntraining pairs: {paths.train_pairs}"
    )
    return 0


def captions_parser() -> argparse.ArgumentParser:
    """The parser of `python -m vidtempo.synthetic.captions`."""
    parser = argparse.ArgumentParser(
        prog="python -m vidtempo.synthetic.captions", description=CAPTIONS_DESCRIPTION
    )
    parser.add_argument("out_dir", help="output folder")
    parser.add_argument("--num-videos", type=positive(int), default=40, help="videos; default 40")
    parser.add_argument(
        "--test-fraction", type=float, default=0.3, help="videos held out for test; default 0.3"
    )
    return _video_flags(parser, (112, 112), "seconds per video")


def _captions(args: argparse.Namespace) -> int:
    from ..synthetic.captions import generate_captioned_videos

    paths = generate_captioned_videos(
        args.out_dir,
        args.num_videos,
        args.seed,
        args.size,
        args.fps,
        args.duration,
        args.test_fraction,
        progress=not args.no_progress,
    )
    print(f"captions: {paths['captions.csv']}\ngrounding: {paths['charades_sta_test.txt']}")
    return 0


def neardup_main(argv: Sequence[str] | None = None) -> int:
    """`python -m vidtempo.synthetic.neardup`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(neardup_parser(), _neardup, argv)


def captions_main(argv: Sequence[str] | None = None) -> int:
    """`python -m vidtempo.synthetic.captions`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(captions_parser(), _captions, argv)
