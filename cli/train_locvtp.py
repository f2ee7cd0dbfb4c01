"""`vidtempo-train-locvtp`: LocVTP pre-training on a captions file (the loop: `training/train_locvtp.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from ._contract import run_command
from ._train_flags import CAPTIONS_FORMAT, build_train_parser, config_from_args, is_main_process

DESCRIPTION = """\
Pre-train LocVTP (coarse + fine-grained + temporal-aware losses) on a captions file of
(video_path, start, end, caption) rows.

  vidtempo-train-locvtp --config training/configs/locvtp_minilm.yaml --captions train.csv --output runs/l
  accelerate launch -m vidtempo.training.train_locvtp --config my.yaml       (several processes: the
  torchrun --nproc_per_node 2 -m vidtempo.training.train_locvtp ...           losses use the global batch)
  vidtempo-train-locvtp --config my.yaml --resume            # the latest checkpoint in --output

Precedence: defaults < YAML --config < flags. Writes into --output: checkpoints/step_N/, logs/, model/ (model +
processor), metrics.json, failed_rank<N>.jsonl (unreadable videos)."""


def build_parser():
    from ..training.options import LocVTPTrainConfig

    return build_train_parser(LocVTPTrainConfig, "vidtempo-train-locvtp", DESCRIPTION, CAPTIONS_FORMAT)


def _run(args) -> int:
    from ..training.options import LocVTPTrainConfig

    config = config_from_args(LocVTPTrainConfig, args)
    from ..training.train_locvtp import train

    metrics = train(config)
    if is_main_process():
        losses = metrics["losses"]
        print(
            f"trained {metrics['global_step']} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
            f"{metrics['num_failed']} unreadable video(s) skipped; model in {metrics['model_dir']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
