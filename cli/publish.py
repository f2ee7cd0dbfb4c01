"""`vidtempo-publish`: write a Hub-ready folder from a saved vidtempo model, optionally upload it.

The library is `vidtempo.hub_cards.publish`; this module parses, prints and chooses the exit code
(`cli/_contract.py`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from ._contract import add_common_flags, run_command

DESCRIPTION = (
    "Write a Hub-ready folder from a saved vidtempo model: model.safetensors, config.json with "
    "auto_map, the model code (loads with AutoModel.from_pretrained(..., trust_remote_code=True) "
    "without vidtempo), processor files and a model card whose model-index holds the metrics of "
    "the evaluation JSON(s) written by vidtempo-eval. --push-to-hub uploads it."
)


def build_parser() -> argparse.ArgumentParser:
    """The `vidtempo-publish` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-publish", description=DESCRIPTION)
    parser.add_argument("model", help="saved model folder (save_pretrained output, e.g. the training output)")
    parser.add_argument("output_dir", help="folder to write (replaced if it exists)")
    parser.add_argument(
        "--results",
        nargs="*",
        default=[],
        help="evaluation JSON files: {'benchmark', 'similarity', 'metrics': {name: value}} or lists",
    )
    parser.add_argument("--processor", help="folder with the saved processor / image processor files")
    parser.add_argument("--model-name", help="title of the card (default vidtempo-<model_type>)")
    parser.add_argument(
        "--license", default="apache-2.0", help="license id for the card (default apache-2.0)"
    )
    parser.add_argument("--dataset", action="append", default=[], help="training dataset id (repeatable)")
    parser.add_argument(
        "--base-model", help="Hub id of the checkpoint the run started from (the card's base_model)"
    )
    parser.add_argument("--tag", action="append", default=[], help="extra tag (repeatable)")
    parser.add_argument(
        "--training", help="JSON file (dict of hyper-parameters) or markdown file for the training section"
    )
    parser.add_argument(
        "--push-to-hub", metavar="REPO", help="upload the folder to this model repo (needs network)"
    )
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument(
        "--seed", type=int, default=0, help="unused: publishing is deterministic (kept for uniformity)"
    )
    return add_common_flags(parser)


def _body(args: argparse.Namespace) -> int:
    from ..hub_cards.publish import publish_model, read_training

    folder = publish_model(
        args.model,
        args.output_dir,
        args.results,
        args.processor,
        args.model_name,
        args.license,
        args.dataset,
        args.tag,
        read_training(args.training),
        args.push_to_hub,
        args.private,
        base_model=args.base_model,
    )
    print(f"wrote {folder} ({', '.join(sorted(os.listdir(folder)))})")
    if args.push_to_hub:
        print(f"pushed {folder} to {args.push_to_hub}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-publish`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
