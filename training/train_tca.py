"""Train TCA (METHODS.md §1.4) with Accelerate: contrastive loss against a memory bank of distractors.

    python -m vidtempo.training.train_tca --config training/configs/tca_vcdb.yaml
    accelerate launch -m vidtempo.training.train_tca --config my.yaml --batch-size 32
    torchrun --nproc_per_node 2 -m vidtempo.training.train_tca --config my.yaml --cpu
    python -m vidtempo.training.train_tca --config my.yaml --resume            # latest checkpoint
    python -m vidtempo.training.train_tca --config my.yaml --resume out/checkpoints/step_00000500

Precedence: defaults (the paper's hyper-parameters) < YAML `--config` < command-line flags.
Outputs in `output_dir`: `checkpoints/step_N/` (accelerate state + memory bank + `train_state.json`,
written to a temporary folder and renamed; the last `keep_last` kept), `logs/` (tensorboard),
`model/` (`save_pretrained`: safetensors + code, loadable with
`AutoModel.from_pretrained(..., trust_remote_code=True)`), `metrics.json` and `train_state.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from ..evaluation.ap import mean_average_precision
from ..modeling import TCAConfig, TCAModel
from ..processing.atomic_files import write_json_atomic
from ..processing.descriptor_store import existing_ids, read_info
from .config_files import config_from_yaml
from .tca_data import (
    EpochPermutationSampler,
    TCAPairDataset,
    collate_pairs,
    load_training_descriptors,
    pad_batch,
    read_pairs,
    resolve_pairs,
    split_pairs,
)
from .tca_losses import LOSSES, compute_loss, contrastive_similarities
from .tca_memory_bank import MemoryBank, MomentumKeyEncoder

CHECKPOINT_DIR = "checkpoints"
BEST_MODEL_DIR = "best_model"
STATE_FILE = "train_state.json"


@dataclass
class TrainConfig:
    """Everything a TCA training run needs. Defaults are the paper's (METHODS.md §1.4)."""

    descriptors: str = ""  # descriptor folder (processing/descriptor_store.py)
    pairs: str = ""  # vcdb.json, a JSON list of [id_a, id_b], or a CSV with a header and two id columns
    output_dir: str = "tca-output"
    distractors: str | None = None  # id file (JSON list / one per line); default: VCDB `negs` or unpaired ids
    max_distractors: int | None = None  # random subset of the distractor pool (memory)
    model_name_or_path: str | None = None  # start from a saved TCA model instead of random weights
    hidden_size: int | None = None  # default: the descriptor dimension
    num_hidden_layers: int = 1
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    dropout: float = 0.5
    aggregator: str = (
        "transformer"  # transformer | netvlad | lstm | gru (the paper's ablation, METHODS.md §1.2)
    )
    netvlad_clusters: int = 64  # K of the NetVLAD aggregator
    loss: str = "circle"  # circle | infonce | triplet
    circle_margin: float = 0.25
    circle_gamma: float = 256.0
    temperature: float = 0.07
    triplet_margin: float = 1.0
    triplet_mining: str = (
        "hard"  # hard: each anchor's hardest negative (the peers' hard triplets); all: every one
    )
    # triplet loss in-batch (bank_size 0, no momentum): the negatives are encoded with gradient, as in the peers'
    # triplet training (all three videos of a triplet go through the network). Without it the loss can only push
    # the anchor, and the mean over all negatives is lowered by collapsing every video onto one direction.
    triplet_negative_grad: bool = True
    epochs: int = 40
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule still spans `epochs`)
    batch_size: int = 64  # pairs per process and step
    negatives_per_anchor: int = 16
    num_frames: int = 64
    bank_size: int = 4096  # 0: no memory, only this step's negatives (in-batch)
    key_momentum: float = 0.0  # 0: negatives encoded by the current weights; > 0: MoCo key encoder
    in_batch_negatives: bool = False  # also use the other anchors' positives (with gradient) as negatives
    learning_rate: float = 1e-5
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # no | fp16 | bf16
    val_fraction: float = 0.1  # pairs held out (whole groups of related videos) for validation mAP
    val_every: int = 0  # optimizer steps between validations; 0 = at the end of every epoch
    load_best_model_at_end: bool = (
        False  # `model/` = the weights with the best validation mAP (needs validation)
    )
    val_distractors: int = 200  # distractors held out of training and added to the validation database
    eval_batch_size: int = 32
    save_every: int = 500  # optimizer steps between checkpoints; 0 = only at the end
    keep_last: int = 3
    resume: str | None = None  # "latest" or a checkpoint folder
    seed: int = 0
    log_every: int = 10
    report_to: str | None = "tensorboard"  # or "none"
    cpu: bool = False
    progress: bool = True

    def validate(self) -> None:
        if not self.descriptors or not self.pairs:
            raise ValueError(
                "TrainConfig: `descriptors` (a descriptor folder) and `pairs` (a pairs file) are required"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(
                f"TrainConfig.mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}"
            )
        for name in (
            "epochs",
            "batch_size",
            "num_frames",
            "gradient_accumulation_steps",
            "keep_last",
            "eval_batch_size",
            "log_every",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
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


# ----------------------------------------------------------------------------------------------- helpers


def _checkpoints(output_dir: Path) -> list[Path]:
    root = output_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))


def find_checkpoint(output_dir: str | os.PathLike, resume: str) -> Path:
    """`resume` = "latest" (the newest complete checkpoint in output_dir) or a checkpoint folder."""
    if resume == "latest":
        found = _checkpoints(Path(output_dir))
        if not found:
            raise FileNotFoundError(f"--resume latest: no checkpoint in {Path(output_dir) / CHECKPOINT_DIR}")
        return found[-1]
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no {STATE_FILE})")
    return path


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: dict, keep_last: int) -> Path:
    """`save_state` into a temporary folder, add train_state.json, rename (atomic), prune old ones."""
    root = output_dir / CHECKPOINT_DIR
    final = root / f"step_{state['global_step']:08d}"
    temporary = root / f".tmp_step_{state['global_step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / STATE_FILE).write_text(json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        for old in _checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def record_step(
    state: dict, record: dict, progress: tqdm, accelerator: Accelerator, report_to: str | None, log_every: int
) -> None:
    """Append one optimizer step's `record` to the run history, advance the progress bar (showing the loss
    every `log_every` steps) and log it to the trackers as ``train/<key>``."""
    state["history"].append(record)
    progress.update(1)
    if record["step"] % log_every == 0 or record["step"] == 1:
        progress.set_postfix(loss=f"{record['loss']:.4f}")
    if report_to:
        accelerator.log({"train/" + k: v for k, v in record.items() if k != "step"}, step=record["step"])


def save_model_atomically(model: TCAModel, folder: Path) -> None:
    """`save_pretrained` into a temporary sibling folder, then rename it over `folder` (main process only)."""
    temporary = folder.with_name(f".tmp_{folder.name}")
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)


@torch.no_grad()
def encode_videos(model: TCAModel, clips: list[np.ndarray], batch_size: int, device) -> torch.Tensor:
    """Video embeddings [N, H] at full length (no cropping; padding masked), in length-sorted batches."""
    order = sorted(range(len(clips)), key=lambda i: clips[i].shape[0])
    out = torch.empty(len(clips), model.config.hidden_size)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        frames, mask = pad_batch([clips[i] for i in chunk])
        out[chunk] = (
            model(frame_features=frames.to(device), attention_mask=mask.to(device)).video_embeds.float().cpu()
        )
    return out


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


def train(config: TrainConfig) -> dict:
    """Train TCA; returns the metrics (also written to `output_dir/metrics.json`)."""
    config.validate()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report_to = None if config.report_to in (None, "none", "") else config.report_to
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "logs")
        ),
        cpu=config.cpu,
    )
    set_seed(config.seed)

    # data: pairs and distractors that have descriptors, a held-out split, the descriptors themselves
    available = existing_ids(config.descriptors)
    pairs, distractors = resolve_pairs(read_pairs(config.pairs, config.distractors), available)
    split_rng = random.Random(config.seed)
    split_rng.shuffle(distractors)
    if config.max_distractors:
        distractors = distractors[: config.max_distractors]
    train_pairs, val_pairs = split_pairs(pairs, config.val_fraction, config.seed)
    num_val_distractors = min(config.val_distractors, len(distractors) // 2) if val_pairs else 0
    val_distractors, train_distractors = distractors[:num_val_distractors], distractors[num_val_distractors:]
    needed = {v for pair in pairs for v in pair} | set(distractors)
    descriptors = load_training_descriptors(config.descriptors, needed)
    dim = int(read_info(config.descriptors)["dim"])
    if len(train_pairs) < config.batch_size * accelerator.num_processes:
        raise ValueError(
            f"{len(train_pairs)} training pairs are fewer than one global batch "
            f"({config.batch_size} x {accelerator.num_processes} processes); lower batch_size"
        )

    dataset = TCAPairDataset(
        descriptors,
        train_pairs,
        train_distractors,
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
        generator=torch.Generator().manual_seed(config.seed),
    )
    model = _build_model(config, dim)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
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
    loss_kwargs = _loss_kwargs(config)
    negatives_with_grad = (
        config.loss == "triplet"
        and config.triplet_negative_grad
        and config.bank_size == 0
        and key_encoder is None
    )

    def run_validation(step: int) -> float | None:
        """Validation mAP at `step`, recorded in `state`; the best model so far is kept in `best_model/`."""
        if not val_pairs:
            return None
        val_map = validation_map(
            unwrapped, descriptors, val_pairs, val_distractors, config.eval_batch_size, accelerator.device
        )
        state["validation"].append({"step": step, "val_map": val_map})
        best = state.get("best")
        if config.load_best_model_at_end and (best is None or val_map > best["val_map"]):
            state["best"] = {"step": step, "val_map": val_map}
            if accelerator.is_main_process:
                save_model_atomically(unwrapped, output_dir / BEST_MODEL_DIR)
            accelerator.wait_for_everyone()
        return val_map

    state = {"global_step": 0, "batches_done": 0, "history": [], "validation": []}
    if config.resume:
        checkpoint = find_checkpoint(output_dir, config.resume)
        accelerator.load_state(str(checkpoint))
        state = json.loads((checkpoint / STATE_FILE).read_text())
        accelerator.print(f"resumed from {checkpoint} at step {state['global_step']}")
    else:
        state["initial_val_map"] = run_validation(0)
    if report_to:
        hparams = {
            k: v for k, v in dataclasses.asdict(config).items() if isinstance(v, (int, float, str, bool))
        }
        accelerator.init_trackers("tca", config=hparams)

    max_steps = min(total_steps, config.max_steps or total_steps)
    progress = tqdm(
        total=max_steps,
        initial=state["global_step"],
        desc="train TCA",
        disable=not (config.progress and accelerator.is_local_main_process),
    )
    start_epoch, skip = divmod(state["batches_done"], len(loader))
    finished = state["global_step"] >= max_steps
    model.train()
    for epoch in range(start_epoch, config.epochs):
        if finished:
            break
        # Accelerate's loader re-sets its sampler's epoch from its own iteration counter on every pass, and that
        # counter restarts at 0 in a resumed run: set the counter itself (it reaches the sampler and the skip loader)
        loader.set_epoch(epoch)
        dataset.set_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in epoch_loader:
            with accelerator.accumulate(model):
                frames = [batch["anchor"], batch["positive"]]
                masks = [batch["anchor_mask"], batch["positive_mask"]]
                if negatives_with_grad:  # one forward pass with this process's negatives, with gradient
                    frames, masks = frames + [batch["negatives"]], masks + [batch["negatives_mask"]]
                embeds = model(frame_features=torch.cat(frames), attention_mask=torch.cat(masks)).video_embeds
                batch_size = batch["anchor"].shape[0]
                anchor_embeds, positive_embeds = (
                    embeds[:batch_size],
                    embeds[batch_size : 2 * batch_size],
                )  # [B, H]
                if negatives_with_grad:
                    negative_embeds = embeds[2 * batch_size :]  # [B·n, H]
                    bank.enqueue(negative_embeds)  # a detached copy, for the statistics
                else:
                    with torch.no_grad(), accelerator.autocast():
                        encoder = key_encoder if key_encoder is not None else unwrapped
                        keys = encoder(
                            frame_features=batch["negatives"], attention_mask=batch["negatives_mask"]
                        )
                    bank.enqueue(keys.video_embeds)  # [B·n, H] from every process
                    negative_embeds = bank.negatives()
                positive_sim, negative_sim = contrastive_similarities(
                    anchor_embeds, positive_embeds, negative_embeds
                )
                if config.in_batch_negatives:  # [B, N + B - 1]
                    negative_sim = torch.cat(
                        [negative_sim, _other_positives(anchor_embeds, positive_embeds)], 1
                    )
                loss = compute_loss(config.loss, positive_sim, negative_sim, **loss_kwargs)
                accelerator.backward(loss)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            state["batches_done"] += 1
            if not accelerator.sync_gradients:
                continue
            if key_encoder is not None:
                key_encoder.update(unwrapped)
            state["global_step"] += 1
            step = state["global_step"]
            mean_loss = accelerator.reduce(loss.detach().float(), "mean").item()
            record = {
                "step": step,
                "epoch": epoch,
                "loss": mean_loss,
                "lr": scheduler.get_last_lr()[0],
                "pos_sim": positive_sim.detach().mean().item(),
                "neg_sim": negative_sim.detach().mean().item(),
            }
            record_step(state, record, progress, accelerator, report_to, config.log_every)
            end_of_epoch = state["batches_done"] % len(loader) == 0
            if val_pairs and (
                (config.val_every and step % config.val_every == 0)
                or (not config.val_every and end_of_epoch)
                or step == max_steps
            ):
                val_map = run_validation(step)
                progress.write(f"step {step}: val mAP {val_map:.4f}")
                if report_to:
                    accelerator.log({"val/map": val_map}, step=step)
            if config.save_every and step % config.save_every == 0:
                save_checkpoint(accelerator, output_dir, state, config.keep_last)
            if step >= max_steps:
                finished = True
                break
    progress.close()

    # final artefacts
    accelerator.wait_for_everyone()
    metrics = {
        "global_step": state["global_step"],
        "initial_val_map": state.get("initial_val_map"),
        "final_val_map": state["validation"][-1]["val_map"] if state["validation"] else None,
        "validation": state["validation"],
        "losses": [r["loss"] for r in state["history"]],
        "history": state["history"],
        "num_train_pairs": len(train_pairs),
        "num_val_pairs": len(val_pairs),
        "num_train_distractors": len(train_distractors),
        "num_processes": accelerator.num_processes,
        "bank_fingerprint": bank.fingerprint(),
        "bank_filled": bank.num_filled,
        "model_dir": str(output_dir / "model"),
    }
    best = state.get("best") if config.load_best_model_at_end else None
    if best is not None:
        from safetensors.torch import load_file

        unwrapped.load_state_dict(load_file(str(output_dir / BEST_MODEL_DIR / "model.safetensors")))
        accelerator.print(
            f"model/ holds the best validation weights: step {best['step']}, mAP {best['val_map']:.4f}"
        )
    metrics["best_step"] = None if best is None else best["step"]
    metrics["best_val_map"] = None if best is None else best["val_map"]
    (output_dir / f"bank_rank{accelerator.process_index}.sha256").write_text(bank.fingerprint() + "\n")
    unwrapped.save_pretrained(
        output_dir / "model", is_main_process=accelerator.is_main_process, save_function=accelerator.save
    )
    if accelerator.is_main_process:
        write_json_atomic(output_dir / STATE_FILE, {k: v for k, v in state.items() if k != "history"})
        write_json_atomic(output_dir / "metrics.json", metrics | {"config": dataclasses.asdict(config)})
    if report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return metrics


# -------------------------------------------------------------------------------------------------- CLI


def _field_type(f: dataclasses.Field):
    text = str(f.type)
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if text.startswith(name):
            return kind
    return str


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtempo-train-tca",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML file of TrainConfig fields (flags below override it)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(f)
        default_text = f"default: {f.default!r}"
        if f.name == "resume":
            parser.add_argument(
                flag,
                nargs="?",
                const="latest",
                default=None,
                help="resume from the latest checkpoint in output_dir, or from the given folder",
            )
        elif kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=default_text)
        else:
            parser.add_argument(flag, type=kind, default=None, help=default_text)
    return parser


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    config_path = args.pop("config")
    overrides = {k: v for k, v in args.items() if v is not None}
    if config_path:
        return TrainConfig.from_yaml(config_path, **overrides)
    return TrainConfig(**overrides)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        metrics = train(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"vidtempo-train-tca: error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                k: metrics[k]
                for k in ("global_step", "initial_val_map", "final_val_map", "best_step", "model_dir")
            }
        )
    )
    return 0


__all__ = ["TrainConfig", "find_checkpoint", "main", "parse_config", "train", "validation_map"]

if __name__ == "__main__":
    sys.exit(main())
