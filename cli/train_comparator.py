"""`vidtempo-train-comparator`: the learned video comparator (TCA_v) on top of a frozen TCA
(the loop: `training/train_comparator.py`)."""

from __future__ import annotations

import json

from ._train_flags import PAIRS_FORMAT, trainer_command

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Train the TCA_v comparator (ViSiL/DnS) on related pairs: ViSiL's triplet loss on the comparator's video
similarities (hardest negative, margin 1) + 0.5 x the similarity regulariser, on the frame embeddings of a
frozen TCA (--tca-model) or on the raw descriptors (--tca-model none).

  vidtempo-train-comparator --descriptors DIR --pairs pairs.json --tca-model tca/model --output cmp
  accelerate launch -m vidtempo.training.train_comparator ...

Writes into --output: model/ (safetensors + code) and metrics.json."""


def _summary(metrics: dict) -> str:
    keys = {"global_step": metrics["global_step"], "first_loss": metrics["losses"][0],
            "last_loss": metrics["losses"][-1], "model_dir": metrics["model_dir"]}  # fmt: skip
    return json.dumps(keys)


build_parser, main = trainer_command(
    "vidtempo-train-comparator",
    DESCRIPTION,
    PAIRS_FORMAT,
    "training.options:ComparatorTrainConfig",
    "training.train_comparator:train_comparator",
    _summary,
)

if __name__ == "__main__":
    raise SystemExit(main())
