"""`vidtempo-train-locvtp`: LocVTP pre-training on a captions file (the loop: `training/train_locvtp.py`)."""

from __future__ import annotations

from ._train_flags import CAPTIONS_FORMAT, trainer_command

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Pre-train LocVTP (coarse + fine-grained + temporal-aware losses) on a captions file of
(video_path, start, end, caption) rows.

  vidtempo-train-locvtp --config training/configs/locvtp_minilm.yaml --captions train.csv --output runs/l
  accelerate launch -m vidtempo.training.train_locvtp --config my.yaml       (several processes: the
  torchrun --nproc_per_node 2 -m vidtempo.training.train_locvtp ...           losses use the global batch)
  vidtempo-train-locvtp --config my.yaml --resume            # the latest checkpoint in --output

Precedence: defaults < YAML --config < flags. Writes into --output: checkpoints/step_N/, logs/, model/ (model +
processor), metrics.json, failed_rank<N>.jsonl (unreadable videos)."""


def _summary(metrics: dict) -> str:
    losses = metrics["losses"]
    return (
        f"trained {metrics['global_step']} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
        f"{metrics['num_failed']} unreadable video(s) skipped; model in {metrics['model_dir']}"
    )


build_parser, main = trainer_command(
    "vidtempo-train-locvtp",
    DESCRIPTION,
    CAPTIONS_FORMAT,
    "training.options:LocVTPTrainConfig",
    "training.train_locvtp:train",
    _summary,
)

if __name__ == "__main__":
    raise SystemExit(main())
