"""Train TCA (METHODS.md §1.4) with Accelerate: contrastive loss against a memory bank of distractors.

    vidtempo-train-tca --config training/configs/tca_vcdb.yaml --descriptors DIR --pairs vcdb.json
    accelerate launch -m vidtempo.training.train_tca --config my.yaml --batch-size 32
    torchrun --nproc_per_node 2 -m vidtempo.training.train_tca --config my.yaml --cpu
    python -m vidtempo.training.train_tca --config my.yaml --resume            # latest checkpoint
    python -m vidtempo.training.train_tca --config my.yaml --resume out/checkpoints/step_00000500

Precedence: defaults (the paper's hyper-parameters) < YAML `--config` < command-line flags (`cli/train_tca.py`).
Outputs in `output_dir`: `checkpoints/step_N/` (accelerate state + memory bank + `train_state.json`, see
`training/loop.py`), `logs/` (tensorboard), `model/` (`save_pretrained`: safetensors + code, loadable with
`AutoModel.from_pretrained(..., trust_remote_code=True)`), `metrics.json` and `train_state.json`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from ..evaluation.ap import mean_average_precision
from ..evaluation.embedding import embed_descriptors
from ..modeling import TCAConfig, TCAModel
from ..processing.atomic_files import write_folder_atomically
from ..processing.descriptor_store import existing_ids, read_info
from .loop import (
    STATE_FILE,
    Run,
    batches,
    cap_max_steps,
    find_checkpoint,
    finish_run,
    finish_step,
    mean_over_processes,
    new_state,
    open_run,
    resume_state,
    start_run,
    steps_per_epoch,
)
from .options import TrainConfig
from .tca_data import (
    EpochPermutationSampler,
    TCAPairDataset,
    collate_pairs,
    load_training_descriptors,
    open_training_store,
    read_pairs,
    resolve_pairs,
    split_pairs,
)
from .tca_losses import compute_loss, contrastive_similarities
from .tca_memory_bank import MemoryBank, MomentumKeyEncoder

logger = logging.getLogger(__name__)

BEST_MODEL_DIR = "best_model"


# ----------------------------------------------------------------------------------------------- helpers


def save_model_atomically(model: TCAModel, folder: Path) -> None:
    """`save_pretrained` into a temporary sibling folder, then swap it in (main process only)."""
    write_folder_atomically(folder, model.save_pretrained)


@torch.no_grad()
def encode_videos(model: TCAModel, clips: list[np.ndarray], batch_size: int, device) -> torch.Tensor:
    """Video embeddings [N, H] at full length (no cropping; padding masked), through the evaluation's
    `embed_descriptors` (length-sorted batches of at most `batch_size` x 64 padded frames)."""
    was_training = model.training
    embeddings = embed_descriptors(
        model,
        list(enumerate(clips)),
        keep_frames=False,
        max_frames=max(batch_size, 1) * 64,
        device=device,
        progress=False,
    )
    model.train(was_training)
    return embeddings.video_embeds


def validation_map(
    model: TCAModel,
    descriptors: dict[str, np.ndarray],
    pairs: list[tuple[str, str]],
    distractors: list[str],
    batch_size: int = 32,
    device="cpu",
) -> float:
    """Deterministic mAP: every video of the held-out pairs queries the held-out videos plus the held-out
    distractors (itself excluded); its partners are the positives. Cosine similarity, full length."""
    related: dict[str, set[str]] = {}
    for a, b in pairs:
        related.setdefault(a, set()).add(b)
        related.setdefault(b, set()).add(a)
    queries = sorted(related)
    database = queries + [d for d in distractors if d not in related]
    was_training = model.training
    model.eval()
    embeds = encode_videos(model, [descriptors[v] for v in database], batch_size, device)  # [N, H]
    model.train(was_training)
    sims = (embeds[: len(queries)] @ embeds.T).double().numpy()  # [Q, N]
    per_query = []
    for row, query in enumerate(queries):
        keep = np.arange(len(database)) != row
        relevant = np.array([v in related[query] for v in database])
        per_query.append((sims[row, keep], relevant[keep]))
    return mean_average_precision(per_query)


# ------------------------------------------------------------------------------------------------ training


def _build_model(config: TrainConfig, dim: int) -> TCAModel:
    if config.model_name_or_path:
        model = TCAModel.from_pretrained(config.model_name_or_path)
        if model.config.input_size != dim:
            raise ValueError(
                f"{config.model_name_or_path}: model input_size {model.config.input_size} != descriptor dim {dim}"
            )
        return model
    return TCAModel(
        TCAConfig(
            input_size=dim,
            hidden_size=config.hidden_size or dim,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            hidden_dropout_prob=config.dropout,
            aggregator=config.aggregator,
            netvlad_clusters=config.netvlad_clusters,
        )
    )


def _loss_kwargs(config: TrainConfig) -> dict:
    if config.loss == "circle":
        return {"margin": config.circle_margin, "gamma": config.circle_gamma}
    if config.loss == "infonce":
        return {"temperature": config.temperature}
    return {"margin": config.triplet_margin, "hardest": config.triplet_mining == "hard"}


def _other_positives(anchor_embeds: torch.Tensor, positive_embeds: torch.Tensor) -> torch.Tensor:
    """cos(anchor i, positive j) for j != i: [B, B - 1] (in-batch negatives, with gradient)."""
    sims = anchor_embeds @ positive_embeds.T  # [B, B]
    batch = sims.shape[0]
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=sims.device)
    return sims[off_diagonal].view(batch, batch - 1)


@dataclass
class TCAData:
    """The pairs and distractors of a run: training / held-out split and the descriptors they need."""

    train_pairs: list[tuple[str, str]]
    val_pairs: list[tuple[str, str]]
    train_distractors: list[str]
    val_distractors: list[str]
    descriptors: dict[str, np.ndarray]
    dim: int


def load_data(config: TrainConfig, num_processes: int) -> TCAData:
    """Pairs and distractors that have descriptors, a held-out split, the descriptors themselves. Refuses
    (with the counts) a run with no usable pair or fewer training pairs than one global batch."""
    store = open_training_store(config.descriptors, config.descriptor_cache_mb)  # None: all in RAM
    available = set(store) if store is not None else existing_ids(config.descriptors)
    pair_list = read_pairs(config.pairs, config.distractors)
    pairs, distractors = resolve_pairs(pair_list, available)
    if not pairs:
        raise ValueError(
            f"no usable training pairs: 0 of the {len(pair_list.pairs)} pairs in {config.pairs} have both "
            f"videos in the descriptor folder {config.descriptors} ({len(available)} videos): check that "
            "the pair ids are the folder's video ids"
        )
    split_rng = random.Random(config.seed)
    split_rng.shuffle(distractors)
    if config.max_distractors:
        distractors = distractors[: config.max_distractors]
    train_pairs, val_pairs = split_pairs(pairs, config.val_fraction, config.seed)
    num_val_distractors = min(config.val_distractors, len(distractors) // 2) if val_pairs else 0
    needed = {v for pair in pairs for v in pair} | set(distractors)
    descriptors = store if store is not None else load_training_descriptors(config.descriptors, needed)
    minimum = config.batch_size * num_processes
    if len(train_pairs) < minimum:
        raise ValueError(
            f"{len(train_pairs)} training pairs ({len(pairs)} of the {len(pair_list.pairs)} pairs in "
            f"{config.pairs} have descriptors, {len(val_pairs)} held out for validation) are fewer than the "
            f"minimum, one global batch of {minimum} ({config.batch_size} x {num_processes} processes): "
            "lower batch_size or val_fraction, or add pairs"
        )
    return TCAData(
        train_pairs,
        val_pairs,
        distractors[num_val_distractors:],
        distractors[:num_val_distractors],
        descriptors,
        int(read_info(config.descriptors)["dim"]),
    )


def make_loader(config: TrainConfig, data: TCAData) -> tuple[TCAPairDataset, DataLoader]:
    """The pair dataset and its loader (a fixed permutation per epoch, own generator)."""
    dataset = TCAPairDataset(
        data.descriptors,
        data.train_pairs,
        data.train_distractors,
        config.num_frames,
        config.negatives_per_anchor,
        config.seed,
    )
    sampler = EpochPermutationSampler(len(dataset), config.seed)
    # the loader gets its own generator: creating an iterator then draws from it, not from the global RNG
    # (which drives dropout), so a resumed run's fresh iterator leaves the RNG exactly as an uninterrupted run
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=collate_pairs,
        drop_last=True,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    return dataset, loader


class TCAStep:
    """One training batch's forward pass and loss: the anchors and positives with gradient, the negatives
    from the bank (encoded without gradient, by the model or its momentum copy) or, for in-batch triplets,
    with gradient."""

    def __init__(self, config: TrainConfig, accelerator: Accelerator, model, bank, key_encoder):
        self.config, self.accelerator, self.model, self.bank = config, accelerator, model, bank
        self.key_encoder = key_encoder
        self.unwrapped = accelerator.unwrap_model(model)
        self.loss_kwargs = _loss_kwargs(config)
        self.negatives_with_grad = (
            config.loss == "triplet"
            and config.triplet_negative_grad
            and config.bank_size == 0
            and key_encoder is None
        )

    def __call__(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, positive similarities [B], negative similarities [B, N])."""
        frames = [batch["anchor"], batch["positive"]]
        masks = [batch["anchor_mask"], batch["positive_mask"]]
        if self.negatives_with_grad:  # one forward pass with this process's negatives, with gradient
            frames, masks = frames + [batch["negatives"]], masks + [batch["negatives_mask"]]
        embeds = self.model(frame_features=torch.cat(frames), attention_mask=torch.cat(masks)).video_embeds
        batch_size = batch["anchor"].shape[0]
        anchor_embeds, positive_embeds = embeds[:batch_size], embeds[batch_size : 2 * batch_size]  # [B, H]
        if self.negatives_with_grad:
            negative_embeds = embeds[2 * batch_size :]  # [B·n, H]
            self.bank.enqueue(negative_embeds)  # a detached copy, for the statistics
        else:
            bf16 = torch.autocast(self.accelerator.device.type, torch.bfloat16, enabled=self.config.bf16_keys)
            with torch.no_grad(), self.accelerator.autocast(), bf16:
                encoder = self.key_encoder if self.key_encoder is not None else self.unwrapped
                keys = encoder(frame_features=batch["negatives"], attention_mask=batch["negatives_mask"])
            self.bank.enqueue(keys.video_embeds.float())  # [B·n, H] from every process
            negative_embeds = self.bank.negatives()
        positive_sim, negative_sim = contrastive_similarities(anchor_embeds, positive_embeds, negative_embeds)
        if self.config.in_batch_negatives:  # [B, N + B - 1]
            negative_sim = torch.cat([negative_sim, _other_positives(anchor_embeds, positive_embeds)], 1)
        loss = compute_loss(self.config.loss, positive_sim, negative_sim, **self.loss_kwargs)
        return loss, positive_sim, negative_sim


class Validator:
    """Validation mAP on the held-out pairs, recorded in the state; with `load_best_model_at_end` the best
    weights so far are kept in `best_model/`."""

    def __init__(self, config: TrainConfig, data: TCAData, accelerator: Accelerator, model, output_dir: Path):
        self.config, self.data, self.accelerator, self.model = config, data, accelerator, model
        self.output_dir = output_dir

    def __call__(self, state: dict, step: int) -> float | None:
        if not self.data.val_pairs:
            return None
        val_map = validation_map(
            self.model,
            self.data.descriptors,
            self.data.val_pairs,
            self.data.val_distractors,
            self.config.eval_batch_size,
            self.accelerator.device,
        )
        state["validation"].append({"step": step, "val_map": val_map})
        best = state.get("best")
        if self.config.load_best_model_at_end and (best is None or val_map > best["val_map"]):
            state["best"] = {"step": step, "val_map": val_map}
            if self.accelerator.is_main_process:
                save_model_atomically(self.model, self.output_dir / BEST_MODEL_DIR)
            self.accelerator.wait_for_everyone()
        return val_map

    def due(self, step: int, end_of_epoch: bool, max_steps: int) -> bool:
        every = self.config.val_every
        return bool(self.data.val_pairs) and (
            (every and step % every == 0) or (not every and end_of_epoch) or step == max_steps
        )


def train(config: TrainConfig) -> dict:
    """Train TCA; returns the metrics (also written to `output_dir/metrics.json`)."""
    config.validate()
    accelerator, output_dir = start_run(config)
    data = load_data(config, accelerator.num_processes)
    dataset, loader = make_loader(config, data)
    model = _build_model(config, data.dim)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total_steps, max_steps = cap_max_steps(
        config.max_steps, steps_per_epoch(loader, config.gradient_accumulation_steps), config.epochs
    )
    # stepped by hand once per optimizer step (a prepared scheduler would step once per process)
    scheduler = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, total_steps)
    unwrapped = accelerator.unwrap_model(model)
    bank = MemoryBank(
        config.bank_size,
        unwrapped.config.hidden_size,
        accelerator.device,
        gather_fn=accelerator.gather if accelerator.num_processes > 1 else None,
    )
    key_encoder = MomentumKeyEncoder(unwrapped, config.key_momentum) if config.key_momentum > 0 else None
    accelerator.register_for_checkpointing(scheduler, bank)
    if key_encoder is not None:
        accelerator.register_for_checkpointing(key_encoder)
    step_fn = TCAStep(config, accelerator, model, bank, key_encoder)
    validate = Validator(config, data, accelerator, unwrapped, output_dir)

    state = new_state(config, validation=[])
    if config.resume:
        state = resume_state(accelerator, config, output_dir, state)
    else:
        state["initial_val_map"] = validate(state, 0)
    run = open_run(accelerator, output_dir, config, state, max_steps, "train TCA")
    _train_epochs(run, state, loader, dataset, optimizer, scheduler, step_fn, validate)
    run.progress.close()
    accelerator.wait_for_everyone()
    return _finish(run, state, data, unwrapped, bank)


def _train_epochs(run: Run, state: dict, loader, dataset, optimizer, scheduler, step_fn, validate) -> None:
    """The optimizer steps from the state's position to `run.max_steps`."""
    accelerator, config, model = run.accelerator, run.config, step_fn.model

    def on_epoch(epoch: int) -> None:
        # Accelerate's loader re-sets its sampler's epoch from its own iteration counter on every pass, and
        # that counter restarts at 0 in a resumed run: set the counter itself (it reaches the sampler and the
        # skip loader)
        loader.set_epoch(epoch)
        dataset.set_epoch(epoch)

    def between(step: int) -> None:
        if validate.due(step, state["batches_done"] % len(loader) == 0, run.max_steps):
            val_map = validate(state, step)
            logger.info("step %d: val mAP %.4f", step, val_map)
            if run.report_to:
                accelerator.log({"val/map": val_map}, step=step)

    if state["global_step"] >= run.max_steps:
        return
    model.train()
    for epoch, batch in batches(accelerator, loader, state, config.epochs, on_epoch):
        with accelerator.accumulate(model):
            loss, positive_sim, negative_sim = step_fn(batch)
            accelerator.backward(loss)
            optimizer.step()
            if accelerator.sync_gradients:
                scheduler.step()
            optimizer.zero_grad()
        state["batches_done"] += 1
        if not accelerator.sync_gradients:
            continue
        if step_fn.key_encoder is not None:
            step_fn.key_encoder.update(step_fn.unwrapped)
        state["global_step"] += 1
        record = {
            "step": state["global_step"],
            "epoch": epoch,
            "loss": mean_over_processes(accelerator, loss),
            "lr": scheduler.get_last_lr()[0],
            "pos_sim": positive_sim.detach().mean().item(),
            "neg_sim": negative_sim.detach().mean().item(),
        }
        if finish_step(run, state, record, between):
            break


def _finish(run: Run, state: dict, data: TCAData, unwrapped: TCAModel, bank: MemoryBank) -> dict:
    """The metrics; `model/` = the last (or, with load_best_model_at_end, the best) weights."""
    accelerator, config = run.accelerator, run.config
    fingerprints = (
        gather_object([bank.fingerprint()]) if accelerator.num_processes > 1 else [bank.fingerprint()]
    )
    metrics = {
        "global_step": state["global_step"],
        "initial_val_map": state.get("initial_val_map"),
        "final_val_map": state["validation"][-1]["val_map"] if state["validation"] else None,
        "validation": state["validation"],
        "losses": [r["loss"] for r in state["history"]],
        "history": state["history"],
        "num_train_pairs": len(data.train_pairs),
        "num_val_pairs": len(data.val_pairs),
        "num_train_distractors": len(data.train_distractors),
        "num_processes": accelerator.num_processes,
        "bank_fingerprint": bank.fingerprint(),
        "bank_fingerprints": fingerprints,  # one per process: the same bank everywhere
        "bank_filled": bank.num_filled,
        "model_dir": str(run.output_dir / "model"),
    }
    best = state.get("best") if config.load_best_model_at_end else None
    if best is not None:
        from safetensors.torch import load_file

        unwrapped.load_state_dict(load_file(str(run.output_dir / BEST_MODEL_DIR / "model.safetensors")))
        logger.info(
            "model/ holds the best validation weights: step %d, mAP %.4f", best["step"], best["val_map"]
        )
    metrics["best_step"] = None if best is None else best["step"]
    metrics["best_val_map"] = None if best is None else best["val_map"]
    return finish_run(run, unwrapped, metrics, state)


__all__ = ["STATE_FILE", "TrainConfig", "find_checkpoint", "load_data", "train", "validation_map"]

if __name__ == "__main__":  # `python -m` / `accelerate launch -m vidtempo.training.train_tca`
    from vidtempo.cli.train_tca import main

    raise SystemExit(main())
