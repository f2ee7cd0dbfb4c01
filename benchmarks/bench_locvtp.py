"""LocVTP training-step cost on this CPU: full ViT-B/16 TimeSformer + DistilBERT-base with random weights.

Run: ``.venv/bin/python benchmarks/bench_locvtp.py [--quick]``; writes ``docs/bench/locvtp.md``.

The paper's step (batch 2 here, 8 clips x 16 frames at 224) is 16 independent TimeSformer passes; a step of
that size does not fit this shared machine's memory without activation checkpointing and would take many
minutes, so the script measures forward + backward of the FULL-SIZE model on a batch of 1 video x 1 clip
(plus 2 clips, to check that the cost grows linearly with the number of clips), counts the FLOPs with
`torch.utils.flop_counter`, and extrapolates to 2 x 8 clips. It also compares the achieved FLOP/s with the
`torch.matmul` peak measured in the same interleaved rounds (`_timing.measured`: a 2048^3 matmul, the 1-clip step
and the 2-clip step alternated, best of each), and the vectorised LocVTP losses with a per-anchor Python loop
(also interleaved with the matmul).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import conditions_line, measured, square_matmul_task, write_report  # noqa: E402  (sibling module: scripts run from this folder)
from torch.utils.flop_counter import FlopCounterMode

from vidtempo.modeling import LocVTPConfig, LocVTPModel

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "locvtp.md"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_batch(config: LocVTPConfig, videos: int, clips: int, frames: int, size: int, words: int = 24):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (videos, words), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(videos, clips, frames, 3, size, size, generator=g),
        "return_loss": True,
    }


def train_step(model: LocVTPModel, batch: dict) -> float:
    model.zero_grad(set_to_none=True)
    out = model(**batch, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    return out.loss.item()


def step_task(model: LocVTPModel, batch: dict, flops: list[float]):
    """A forward + backward task; its first call (the warm-up in `measured`) counts the step's FLOPs into
    `flops`."""

    def run() -> None:
        if flops:
            train_step(model, batch)
            return
        counter = FlopCounterMode(display=False)
        with counter:
            train_step(model, batch)
        flops.append(float(counter.get_total_flops()))

    return run


# --------------------------------------------------------------------------------------------------- losses


def info_nce(anchor, positive, negatives, tau: float, positive_in_denominator: bool):
    """-log(e^{a.p/tau} / sum e^{a.n/tau}) for one anchor, the positive's term in the sum if asked."""
    logits = negatives @ anchor / tau
    if positive_in_denominator:
        logits = torch.cat([(anchor @ positive / tau)[None], logits])
    return torch.logsumexp(logits, 0) - anchor @ positive / tau


def naive_losses(model: LocVTPModel, clips, words, clip_mask, word_mask, delta):
    """The same three losses with a Python loop over every anchor (baseline for the vectorised ones), for the
    default configuration: clip_topk correspondence, cross-modal temporal target, the positive's pooling and
    denominator as the config says."""
    cfg, tau = model.config, model.config.temperature
    batch, num_clips, _ = clips.shape
    negatives = words[word_mask]  # [M, D]
    vbar = F.normalize(torch.stack([clips[b][clip_mask[b]].mean(0) for b in range(batch)]), dim=-1)
    qbar = F.normalize(torch.stack([words[b][word_mask[b]].mean(0) for b in range(batch)]), dim=-1)
    logits = vbar @ qbar.T / tau
    labels = torch.arange(batch)
    coarse = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    fine, temporal = [], []
    for b in range(batch):
        real = words[b][word_mask[b]]
        f_terms, t_terms = [], []
        for t in range(num_clips):
            top = (real @ clips[b, t]).topk(min(cfg.topk_words, len(real))).indices
            positive = real[top].mean(0)
            if cfg.positive_pooling == "normalized_mean":
                positive = F.normalize(positive, dim=0)
            f_terms.append(info_nce(clips[b, t], positive, negatives, tau, cfg.positive_in_denominator))
            d = int(delta[b, t])
            x = torch.cat([clips[b, t + d], torch.tensor([float((d > 0) - (d < 0)), float(abs(d))])])
            z = F.normalize(F.relu(model.warping_head.proj(x)), dim=0)
            t_terms.append(info_nce(z, positive, negatives, tau, cfg.positive_in_denominator))
        fine.append(torch.stack(f_terms).mean())
        temporal.append(torch.stack(t_terms).mean())
    return coarse, torch.stack(fine).mean(), torch.stack(temporal).mean()


def bench_losses(model: LocVTPModel, batch: int, clips: int, words: int) -> dict:
    dim = model.config.projection_dim
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(batch, clips, dim, generator=g), dim=-1).requires_grad_()
    q = F.normalize(torch.randn(batch, words, dim, generator=g), dim=-1).requires_grad_()
    cmask = torch.ones(batch, clips, dtype=torch.bool)
    wmask = torch.ones(batch, words, dtype=torch.bool)
    wmask[:, 0] = wmask[:, -1] = False
    wmask[::2, words // 2 :] = False
    vbar = F.normalize(v.mean(1), dim=-1)
    qbar = F.normalize((q * wmask[..., None]).sum(1) / wmask.sum(1, keepdim=True), dim=-1)

    def ours():
        lc, lf, lt, _, delta = model.compute_losses(
            v, q, cmask, wmask, vbar, qbar, None, torch.Generator().manual_seed(1)
        )
        (0.5 * lc + lf + lt).backward(retain_graph=True)
        return (lc, lf, lt), delta

    (ref_terms, delta) = ours()

    def naive():
        lc, lf, lt = naive_losses(model, v, q, cmask, wmask, delta)
        (0.5 * lc + lf + lt).backward(retain_graph=True)
        return lc, lf, lt

    naive_terms = naive()
    peak_task, _ = square_matmul_task(2048)
    result = measured({"matmul peak": peak_task, "ours": ours, "naive": naive}, 3, "matmul peak")
    diff = max(abs(a.item() - b.item()) for a, b in zip(ref_terms, naive_terms))
    return {
        "ours_s": result["best"]["ours"],
        "naive_s": result["best"]["naive"],
        "max_abs_diff": diff,
        "result": result,
    }


# ----------------------------------------------------------------------------------------------------- main


def main() -> None:
    """Measure, then write this benchmark's report section. Long because it is one linear procedure on purpose:
    each number is measured right above the sentence of the report that states it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="8 frames at 112 px instead of 16 at 224, 1 repeat"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)"
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    frames, size, repeats = (8, 112, 2) if args.quick else (16, 224, 2)  # rounds after a warm-up step
    config = LocVTPConfig(
        vision_config={"num_frames": frames, "image_size": size}, projection_dim=512, frames_per_clip=frames
    )  # ViT-B/16 TimeSformer (12 layers, 768) + DistilBERT-base (6 layers, 768), random weights
    model = LocVTPModel(config).train()
    params = sum(p.numel() for p in model.parameters())
    print(f"params {params / 1e6:.1f} M", flush=True)

    shapes, counted = ((1, 1), (1, 2)), {}
    peak_task, peak_flops = square_matmul_task(2048)
    tasks = {"matmul peak": peak_task}
    for videos, clips in shapes:
        counted[videos, clips] = []
        batch = make_batch(config, videos, clips, frames, size)
        tasks[f"{videos} x {clips}"] = step_task(model, batch, counted[videos, clips])
    result = measured(tasks, repeats, "matmul peak")
    peak = peak_flops / result["best"]["matmul peak"] / 1e9
    rows = [(v, c, result["best"][f"{v} x {c}"], counted[v, c][0]) for v, c in shapes]
    print(rows, flush=True)
    # Clips go through the video tower independently, so the FLOPs grow exactly linearly with the clips (the
    # 1 -> 2 ratio below); the time per clip is taken from the less contended of the two measurements.
    per_clip_s = min(rows[0][2], rows[1][2] / 2)
    per_clip_flops = rows[1][3] / 2
    target_clips = 2 * 8
    step_s, step_flops = target_clips * per_clip_s, target_clips * per_clip_flops
    at_peak_s = step_flops / (peak * 1e9)
    losses = bench_losses(model, batch=64, clips=8, words=24)
    print(losses, flush=True)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## LocVTP training step (`benchmarks/bench_locvtp.py`)",
        "",
        f"Machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} threads, {platform.python_implementation()} {platform.python_version()}; {now}"
        f"{'; --quick' if args.quick else ''}. Shared machine: absolute times are noisy, ratios are the point.",
        "",
        f"Model: TimeSformer ViT-B/16 divided space-time ({frames} frames, {size} px) + DistilBERT-base, D = 512, "
        f"{params / 1e6:.1f} M parameters, random weights, fp32, all three losses, forward + backward "
        f"({repeats} interleaved rounds with a `torch.matmul` 2048^3 fp32, the peak reference, best of each): "
        f"peak {peak:.0f} GFLOP/s in these rounds. " + conditions_line(result, "matmul peak") + ".",
        "",
        "| batch (videos x clips) | step time (s) | TFLOP / step | achieved GFLOP/s | % of matmul peak |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for videos, clips, seconds, flops in rows:
        lines.append(
            f"| {videos} x {clips} (measured) | {seconds:.1f} | {flops / 1e12:.2f} | {flops / seconds / 1e9:.0f} | "
            f"{100 * flops / seconds / 1e9 / peak:.0f}% |"
        )
    lines.append(
        f"| **2 x 8 (extrapolated: 16 x {per_clip_s:.1f} s per clip)** | **{step_s:.0f}** | "
        f"{step_flops / 1e12:.1f} | {step_flops / step_s / 1e9:.0f} | {100 * step_flops / step_s / 1e9 / peak:.0f}% |"
    )
    lines.append(
        f"| 2 x 8 at the matmul peak (lower bound) | {at_peak_s:.0f} | {step_flops / 1e12:.1f} | {peak:.0f} | 100% |"
    )
    lines.append("")
    lines.append(
        f"Linearity: 2 clips cost x{rows[1][2] / rows[0][2]:.2f} the time and x{rows[1][3] / rows[0][3]:.2f} the "
        "FLOPs of 1 clip."
    )
    lines += [
        "",
        f"Peak RSS of the run: {peak_rss_gib():.1f} GiB. A 2 x 8-clip step needs activation checkpointing "
        "(`model.activation_checkpointing_enable()`) on a machine of this size; the paper's batch 256 needs GPUs.",
        "",
        "Losses alone (batch 64 x 8 clips x 24 tokens, D = 512, forward + backward): vectorised "
        f"{losses['ours_s'] * 1e3:.1f} ms vs per-anchor Python loop {losses['naive_s'] * 1e3:.0f} ms "
        f"(x{losses['naive_s'] / losses['ours_s']:.0f}); the two agree to {losses['max_abs_diff']:.1e}. 3 "
        "interleaved rounds with the matmul, best of each; "
        + conditions_line(losses["result"], "matmul peak")
        + ".",
        "",
    ]
    write_report(OUT, lines)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
