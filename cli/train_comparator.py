"""`vidtempo-train-comparator`: the learned video comparator (TCA_v) on top of a frozen TCA
(the loop: `training/train_comparator.py`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ._contract import run_command
from ._train_flags import PAIRS_FORMAT, build_train_parser, config_from_args, is_main_process

DESCRIPTION = """\
Train the TCA_v comparator (ViSiL/DnS) on related pairs: ViSiL's triplet loss on the comparator's video
similarities (hardest negative, margin 1) + 0.5 x the similarity regulariser, on the frame embeddings of a
frozen TCA (--tca-model) or on the raw descriptors (--tca-model none).

  vidtempo-train-comparator --descriptors DIR --pairs pairs.json --tca-model tca/model --output cmp
  accelerate launch -m vidtempo.training.train_comparator ...

Writes into --output: model/ (safetensors + code) and metrics.json."""


def build_parser():
    from ..training.options import ComparatorTrainConfig

    return build_train_parser(ComparatorTrainConfig, "vidtempo-train-comparator", DESCRIPTION, PAIRS_FORMAT)


def _run(args) -> int:
    from ..training.options import ComparatorTrainConfig

    config = config_from_args(ComparatorTrainConfig, args)
    from ..training.train_comparator import train_comparator

    metrics = train_comparator(config)
    if is_main_process():
        summary = {"global_step": metrics["global_step"], "first_loss": metrics["losses"][0],
                   "last_loss": metrics["losses"][-1], "model_dir": metrics["model_dir"]}  # fmt: skip
        print(json.dumps(summary))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
