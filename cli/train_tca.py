"""`vidtempo-train-tca`: train TCA on related-video pairs (the loop: `training/train_tca.py`)."""

from __future__ import annotations

import json

from ._train_flags import PAIRS_FORMAT, trainer_command

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Train TCA (METHODS.md §1.4): a contrastive loss of anchor-positive pairs against a memory bank of distractors.

  vidtempo-train-tca --config training/configs/tca_vcdb.yaml --descriptors DIR --pairs vcdb.json
  accelerate launch -m vidtempo.training.train_tca --config my.yaml --batch-size 32
  torchrun --nproc_per_node 2 -m vidtempo.training.train_tca --config my.yaml --cpu
  vidtempo-train-tca --config my.yaml --resume                # the latest checkpoint in --output
  vidtempo-train-tca --config my.yaml --resume out/checkpoints/step_00000500

Precedence: defaults (the paper's hyper-parameters) < YAML --config < flags. Writes into --output:
checkpoints/step_N/, logs/ (tensorboard), model/ (safetensors + code), metrics.json, train_state.json.
A --resume whose result-changing settings differ from the checkpoint's is refused, naming them."""


def _summary(metrics: dict) -> str:
    keys = ("global_step", "initial_val_map", "final_val_map", "best_step", "model_dir")
    return json.dumps({k: metrics[k] for k in keys})


build_parser, main = trainer_command(
    "vidtempo-train-tca",
    DESCRIPTION,
    PAIRS_FORMAT,
    "training.options:TrainConfig",
    "training.train_tca:train",
    _summary,
)

if __name__ == "__main__":
    raise SystemExit(main())
