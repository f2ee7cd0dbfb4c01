"""The training loop machinery every trainer shares (TCA, LocVTP, the comparator).

- `start_run`: the output folder (a folder that holds an earlier run is refused unless `force`, which clears
  that run's checkpoints, model and logs), the `Accelerator`, torch's thread count, the seed.
- `resume_state` / `save_checkpoint` / `find_checkpoint`: `checkpoints/step_N/` folders (accelerate state +
  `STATE_FILE`, written to a temporary folder and renamed; the last `keep_last` kept). A resume whose settings
  differ from the checkpoint's in a field outside `options.RESUME_SAFE` is refused, naming the fields.
- `batches`: the epochs' batches from where the state left off (mid-epoch resumes skip the used batches).
- `finish_step`: one optimizer step's record (the loss averaged over processes), progress bar, trackers,
  checkpoint; `finish_run`: the final `model/`, `metrics.json`, trackers closed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from ..processing.atomic_files import replace_folder, write_json_atomic
from .options import RESUME_SAFE

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "train_state.json"
# what a run writes into its folder (cleared by `force`)
RUN_ARTEFACTS = (CHECKPOINT_DIR, "model", "best_model", "logs", "tokenizer", "metrics.json", STATE_FILE)
PATH_FIELDS = (
    "descriptors",
    "pairs",
    "distractors",
    "captions",
    "model_name_or_path",
    "processor",
    "tca_model",
)


# ------------------------------------------------------------------------------------------ run folder


def prepare_output_dir(output_dir: Path, resume: str | None, force: bool, clear: bool = True) -> None:
    """Refuse a folder that holds files unless resuming; with `force` (and `clear`) delete an earlier run's
    artefacts. Every process checks (the same answer everywhere); only the main one clears."""
    if resume or not output_dir.is_dir():
        return
    entries = sorted(p.name for p in output_dir.iterdir())
    if not entries:
        return
    if not force:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(
            f"output folder {output_dir} is not empty ({shown}): pass --resume to continue that run, "
            "--force to delete it and train anew, or choose a new folder"
        )
    if not clear:
        return
    for name in RUN_ARTEFACTS:
        path = output_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for stale in [*output_dir.glob("failed_rank*.jsonl"), *output_dir.glob("bank_rank*.sha256")]:
        stale.unlink()
    logger.warning("--force: deleted the earlier run's checkpoints, model and logs in %s", output_dir)


def default_num_threads(num_workers: int, num_local_processes: int) -> int:
    """Torch threads per process so that processes x (threads + workers) <= cores (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, num_local_processes) - num_workers)


def report_target(config) -> str | None:
    value = getattr(config, "report_to", None)
    return None if value in (None, "none", "") else value


def start_run(config) -> tuple[Accelerator, Path]:
    """Check the output folder, create the `Accelerator`, set torch's threads and the seed (in that order)."""
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=getattr(config, "mixed_precision", "no"),
        gradient_accumulation_steps=getattr(config, "gradient_accumulation_steps", 1),
        log_with=report_target(config),
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "logs")
        ),
        cpu=config.cpu,
    )
    resume, force = getattr(config, "resume", None), getattr(config, "force", False)
    prepare_output_dir(output_dir, resume, force, clear=False)  # every process: the same refusal
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        prepare_output_dir(output_dir, resume, force)
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", accelerator.num_processes))
    threads = config.num_threads or default_num_threads(config.num_workers, local)
    torch.set_num_threads(threads)
    logger.info(
        "%d process(es) x %d torch thread(s), %d loader worker(s)", local, threads, config.num_workers
    )
    set_seed(config.seed)
    return accelerator, output_dir


def cap_max_steps(max_steps: int | None, steps_per_epoch: int, epochs: int) -> tuple[int, int]:
    """(total steps of the schedule, steps this run stops after); says so when --max-steps is capped."""
    total = steps_per_epoch * epochs
    if max_steps is None:
        return total, total
    if max_steps > total:
        logger.warning(
            "--max-steps %d is more than %d epochs x %d steps per epoch: training stops after %d steps",
            max_steps,
            epochs,
            steps_per_epoch,
            total,
        )
    return total, min(total, max_steps)


# ------------------------------------------------------------------------------------------ checkpoints


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
        replace_folder(temporary, final)
        for old in _checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def run_settings(config) -> dict:
    """The config as JSON values, with existing paths made absolute (so a resume from elsewhere compares)."""
    values = json.loads(json.dumps(dataclasses.asdict(config)))
    for name in PATH_FIELDS:
        if values.get(name) and os.path.exists(values[name]):
            values[name] = os.path.abspath(values[name])
    return values


def settings_differences(saved: dict, current: dict) -> list[str]:
    """`field: saved -> current` for every field outside RESUME_SAFE whose value differs."""
    names = sorted((set(saved) | set(current)) - RESUME_SAFE)
    return [f"{n}: {saved.get(n)!r} -> {current.get(n)!r}" for n in names if saved.get(n) != current.get(n)]


def resume_state(accelerator: Accelerator, config, output_dir: Path, state: dict) -> dict:
    """Load the checkpoint `config.resume` names; refuse settings that would change the result."""
    checkpoint = find_checkpoint(output_dir, config.resume)
    saved = json.loads((checkpoint / STATE_FILE).read_text())
    current = run_settings(config)
    if "config" in saved:
        differences = settings_differences(saved["config"], current)
        if differences:
            raise ValueError(
                f"--resume {checkpoint}: the settings differ from the checkpoint's in "
                f"{'; '.join(differences)} (these change the result): use the checkpoint's values, or "
                "train anew with --force or a new --output"
            )
    else:
        logger.warning("%s records no settings (an older checkpoint): they are not compared", checkpoint)
    accelerator.load_state(str(checkpoint))
    logger.info("resumed from %s at step %d", checkpoint, saved["global_step"])
    return saved | {"config": current}


def new_state(config, **extra) -> dict:
    return {"global_step": 0, "batches_done": 0, "history": [], **extra, "config": run_settings(config)}


# ------------------------------------------------------------------------------------------------ steps


@dataclass
class Run:
    """What the step bookkeeping needs of a run."""

    accelerator: Accelerator
    output_dir: Path
    config: object
    max_steps: int
    progress: tqdm
    report_to: str | None


def open_run(
    accelerator: Accelerator, output_dir: Path, config, state: dict, max_steps: int, name: str
) -> Run:
    """Start the trackers (hyper-parameters logged) and the progress bar (main process only)."""
    report_to = report_target(config)
    if report_to:
        hparams = {
            k: v for k, v in dataclasses.asdict(config).items() if isinstance(v, (int, float, str, bool))
        }
        accelerator.init_trackers(name, config=hparams)
    progress = tqdm(
        total=max_steps,
        initial=state["global_step"],
        desc=name,
        disable=not (config.progress and accelerator.is_local_main_process),
    )
    return Run(accelerator, output_dir, config, max_steps, progress, report_to)


def batches(
    accelerator: Accelerator, loader, state: dict, epochs: int, on_epoch: Callable[[int], None]
) -> Iterator[tuple[int, object]]:
    """(epoch, batch) from the state's position on: `on_epoch(epoch)` before each epoch; a resumed epoch
    skips the batches it already used."""
    start_epoch, skip = divmod(state["batches_done"], len(loader))
    for epoch in range(start_epoch, epochs):
        on_epoch(epoch)
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        yield from ((epoch, batch) for batch in epoch_loader)


def mean_over_processes(accelerator: Accelerator, value: torch.Tensor) -> float:
    """The mean of a scalar over every process (the same number on each)."""
    return accelerator.reduce(value.detach().float(), "mean").item()


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


def finish_step(run: Run, state: dict, record: dict, between: Callable[[int], None] | None = None) -> bool:
    """Record an optimizer step, run `between(step)` (validation), checkpoint when due; True at max_steps."""
    config = run.config
    record_step(state, record, run.progress, run.accelerator, run.report_to, config.log_every)
    step = record["step"]
    if between is not None:
        between(step)
    if config.save_every and step % config.save_every == 0:
        save_checkpoint(run.accelerator, run.output_dir, state, config.keep_last)
    return step >= run.max_steps


def steps_per_epoch(loader, gradient_accumulation_steps: int) -> int:
    return max(1, math.ceil(len(loader) / gradient_accumulation_steps))


def finish_run(
    run: Run,
    model,
    metrics: dict,
    state: dict | None = None,
    save_extra: Callable[[Path], None] | None = None,
) -> dict:
    """Save `model/` (safetensors), `save_extra(model_dir)`, `STATE_FILE` (if `state`) and `metrics.json`
    with the config (main process), close the trackers; returns `metrics`."""
    accelerator = run.accelerator
    model_dir = run.output_dir / "model"
    model.save_pretrained(
        model_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save
    )
    if accelerator.is_main_process:
        if save_extra is not None:
            save_extra(model_dir)
        if state is not None:
            write_json_atomic(run.output_dir / STATE_FILE, {k: v for k, v in state.items() if k != "history"})
        write_json_atomic(
            run.output_dir / "metrics.json", metrics | {"config": dataclasses.asdict(run.config)}
        )
    if run.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return metrics


__all__ = [
    "CHECKPOINT_DIR",
    "STATE_FILE",
    "Run",
    "batches",
    "cap_max_steps",
    "default_num_threads",
    "find_checkpoint",
    "finish_run",
    "finish_step",
    "mean_over_processes",
    "new_state",
    "open_run",
    "prepare_output_dir",
    "record_step",
    "resume_state",
    "save_checkpoint",
    "start_run",
    "steps_per_epoch",
]
