"""Train the TCA_v comparator (ViSiL/DnS `VideoComperator`) on related pairs, on top of a frozen TCA.

    vidtempo-train-comparator --descriptors DIR --pairs pairs.json --tca-model tca/model \\
        --output comparator-out
    accelerate launch -m vidtempo.training.train_comparator ...

Each step takes anchor-positive pairs and `negatives_per_anchor` random distractors per anchor (cropped to
`num_frames` as in TCA training), embeds their frames with the frozen TCA (or uses the raw descriptors with
`--tca-model none`), builds the frame-to-frame similarity matrices anchor x positive and anchor x negative,
and scores them with the comparator. The TCA paper specifies no loss for TCA_v, so this is ViSiL's:
the triplet loss on the comparator's video similarities (each anchor's hardest negative, margin 1 as in the
peers' code) + 0.5 x the similarity regularisation of the raw maps (`training.tca_losses.comparator_loss`).
Clips shorter than 4 frames are repeated to 4 (DnS's rule). Outputs in `output_dir`: `model/`
(`save_pretrained`, loadable with `AutoModel.from_pretrained(..., trust_remote_code=True)`) and `metrics.json`.
"""

from __future__ import annotations

import dataclasses
import random

import torch
from torch.utils.data import DataLoader

from ..modeling import TCAComparatorConfig, TCAComparatorModel, TCAModel
from ..processing.atomic_files import write_json_atomic
from ..processing.descriptor_store import existing_ids
from .loop import cap_max_steps, mean_over_processes, start_run
from .options import MIN_FRAMES, ComparatorTrainConfig
from .tca_data import TCAPairDataset, collate_pairs, load_training_descriptors, read_pairs, resolve_pairs
from .tca_losses import comparator_loss


def _repeat_short(frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips [V, L, H] with fewer than 4 valid frames are concatenated with themselves (DnS) -> [V, L', H]."""
    lengths = mask.sum(dim=1)
    if int(lengths.min()) >= MIN_FRAMES:
        return frames, mask
    width = max(frames.shape[1], 2 * MIN_FRAMES)
    out = frames.new_zeros(frames.shape[0], width, frames.shape[2])
    out_mask = torch.zeros(frames.shape[0], width, dtype=mask.dtype, device=mask.device)
    for i, n in enumerate(lengths.tolist()):
        clip = frames[i, :n]
        while clip.shape[0] < MIN_FRAMES:
            clip = torch.cat([clip, clip])
        out[i, : clip.shape[0]] = clip
        out_mask[i, : clip.shape[0]] = 1
    return out, out_mask


@torch.no_grad()
def frozen_frames(tca: TCAModel | None, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Frame embeddings [V, L, H] of the frozen TCA (zero at padding), or the descriptors themselves."""
    if tca is None:
        return frames.float() * mask[..., None].to(torch.float32)
    return tca(
        frame_features=frames.to(next(tca.parameters()).dtype), attention_mask=mask
    ).frame_embeds.float()


def comparator_step(
    comparator: torch.nn.Module, tca: TCAModel | None, batch: dict, config: ComparatorTrainConfig
) -> tuple[torch.Tensor, dict]:
    """Loss of one batch of `collate_pairs` output, and its statistics."""
    batch_size = batch["anchor"].shape[0]
    anchor, a_mask = _repeat_short(
        frozen_frames(tca, batch["anchor"], batch["anchor_mask"]), batch["anchor_mask"]
    )
    positive, p_mask = _repeat_short(
        frozen_frames(tca, batch["positive"], batch["positive_mask"]), batch["positive_mask"]
    )
    negatives, n_mask = _repeat_short(
        frozen_frames(tca, batch["negatives"], batch["negatives_mask"]), batch["negatives_mask"]
    )
    per_anchor = negatives.shape[0] // batch_size
    anchor_rep = anchor.repeat_interleave(per_anchor, dim=0)  # [B·n, L, H]
    positive_sims = anchor @ positive.transpose(1, 2)  # [B, La, Lp]
    negative_sims = anchor_rep @ negatives.transpose(1, 2)  # [B·n, La, Ln]
    a_len, p_len, n_len = a_mask.sum(1), p_mask.sum(1), n_mask.sum(1)
    pos = comparator(positive_sims, query_lengths=a_len, database_lengths=p_len, return_dict=True)
    neg = comparator(
        negative_sims,
        query_lengths=a_len.repeat_interleave(per_anchor),
        database_lengths=n_len,
        return_dict=True,
    )
    rows, cols = (
        max(pos.raw_similarity_map.shape[1], neg.raw_similarity_map.shape[1]),
        max(pos.raw_similarity_map.shape[2], neg.raw_similarity_map.shape[2]),
    )

    def grow(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, cols - t.shape[2], 0, rows - t.shape[1]))

    raw = torch.cat([grow(pos.raw_similarity_map), grow(neg.raw_similarity_map)])
    masks = torch.cat([grow(pos.map_mask), grow(neg.map_mask)])
    positive_sim, negative_sim = pos.video_similarity, neg.video_similarity.view(batch_size, per_anchor)
    loss = comparator_loss(
        positive_sim, negative_sim, raw, masks, config.margin, config.regularization_weight, config.hardest
    )
    return loss, {"pos_sim": positive_sim.mean().item(), "neg_sim": negative_sim.mean().item()}


def train_comparator(config: ComparatorTrainConfig) -> dict:
    """Train; returns the metrics (also in `output_dir/metrics.json`) with the per-step `losses`."""
    config.validate()
    accelerator, output_dir = start_run(config)
    pair_list = read_pairs(config.pairs)
    pairs, distractors = resolve_pairs(pair_list, existing_ids(config.descriptors))
    if len(pairs) < config.batch_size:
        raise ValueError(
            f"{len(pairs)} usable pairs ({len(pair_list.pairs)} in {config.pairs}, {len(pairs)} with both videos "
            f"in the descriptor folder {config.descriptors}) are fewer than the minimum, one batch of "
            f"{config.batch_size}"
        )
    random.Random(config.seed).shuffle(distractors)
    descriptors = load_training_descriptors(
        config.descriptors, {v for pair in pairs for v in pair} | set(distractors)
    )
    dataset = TCAPairDataset(
        descriptors, pairs, distractors, config.num_frames, config.negatives_per_anchor, config.seed
    )
    loader = DataLoader(
        dataset, batch_size=config.batch_size, shuffle=True, collate_fn=collate_pairs, drop_last=True,
        num_workers=config.num_workers, generator=torch.Generator().manual_seed(config.seed),
    )  # fmt: skip
    tca = None
    if str(config.tca_model).lower() != "none":
        tca = TCAModel.from_pretrained(config.tca_model).to(accelerator.device).eval()
        tca.requires_grad_(False)  # frozen
    if config.init_from_dns:
        from safetensors.torch import load_file

        comparator = TCAComparatorModel.from_dns_state_dict(load_file(config.init_from_dns))
    else:
        comparator = TCAComparatorModel(TCAComparatorConfig())
    optimizer = torch.optim.Adam(
        comparator.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    comparator, optimizer, loader = accelerator.prepare(comparator, optimizer, loader)
    comparator.train()
    history = []
    step = 0
    _, max_steps = cap_max_steps(config.max_steps, len(loader), config.epochs)
    for epoch in range(config.epochs):
        dataset.set_epoch(epoch)
        for batch in loader:
            loss, stats = comparator_step(comparator, tca, batch, config)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            history.append(
                {"step": step, "epoch": epoch, "loss": mean_over_processes(accelerator, loss)} | stats
            )
            if step >= max_steps:
                break
        if step >= max_steps:
            break
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(comparator)
    unwrapped.save_pretrained(output_dir / "model", is_main_process=accelerator.is_main_process,
                              save_function=accelerator.save)  # fmt: skip
    metrics = {"global_step": step, "losses": [r["loss"] for r in history], "history": history,
               "model_dir": str(output_dir / "model"), "config": dataclasses.asdict(config)}  # fmt: skip
    if accelerator.is_main_process:
        write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics


__all__ = ["ComparatorTrainConfig", "comparator_step", "train_comparator"]

if __name__ == "__main__":  # `python -m` / `accelerate launch -m vidtempo.training.train_comparator`
    from vidtempo.cli.train_comparator import main

    raise SystemExit(main())
