"""Benchmark TCA training steps at the paper's configuration (batch 64, 16 negatives per anchor, 64 frames,
d = 1024, 1 layer, bank 4096), split into forward (anchor + positive), key encoding of the negatives
(no grad), bank update, loss + backward, and optimizer step. Each timed step alternates with a `torch.matmul`
2048^3 (the machine's peak, the reference) in interleaved rounds (`_timing.measured`); the phase split is that
of the fastest step. Writes docs/bench/train.md.

    .venv/bin/python benchmarks/bench_train.py [--quick] [--device cuda] [--bf16]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import torch
from _timing import conditions_line, measured, square_matmul_task, write_report  # noqa: E402  (sibling module: scripts run from this folder)

from vidtempo.modeling import TCAConfig, TCAModel
from vidtempo.training.tca_losses import circle_loss, contrastive_similarities
from vidtempo.training.tca_memory_bank import MemoryBank


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(batch: int, negatives: int, frames: int, dim: int, steps: int, device: str, bf16: bool) -> dict:
    torch.manual_seed(0)
    model = TCAModel(TCAConfig(input_size=dim, hidden_size=dim, num_hidden_layers=1)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=1e-4)
    bank = MemoryBank(4096, dim, device)
    x = torch.randn(2 * batch, frames, dim, device=device)
    mask = torch.ones(2 * batch, frames, dtype=torch.long, device=device)
    neg = torch.randn(batch * negatives, frames, dim, device=device)
    neg_mask = torch.ones(batch * negatives, frames, dtype=torch.long, device=device)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)
    phases: list[dict[str, float]] = []

    def step() -> None:
        t = [time.perf_counter()]
        with autocast:
            emb = model(frame_features=x, attention_mask=mask).video_embeds
        _sync(device)
        t.append(time.perf_counter())
        with torch.no_grad(), autocast:
            keys = model(frame_features=neg, attention_mask=neg_mask).video_embeds
        _sync(device)
        t.append(time.perf_counter())
        bank.enqueue(keys)
        _sync(device)
        t.append(time.perf_counter())
        a, p = emb.float().chunk(2)
        loss = circle_loss(*contrastive_similarities(a, p, bank.negatives()))
        loss.backward()
        _sync(device)
        t.append(time.perf_counter())
        optimizer.step()
        optimizer.zero_grad()
        _sync(device)
        t.append(time.perf_counter())
        names = ("forward", "key_encode", "bank_update", "loss_backward", "optimizer")
        phases.append({name: stop - start for name, start, stop in zip(names, t[:-1], t[1:], strict=True)})

    if device == "cpu":
        peak_task, peak_flops = square_matmul_task(2048)
    else:
        m = torch.randn(8192, 8192, device=device)
        peak_task, peak_flops = (lambda: (torch.matmul(m, m), _sync(device))), 2.0 * 8192**3
    result = measured({"matmul peak": peak_task, "train step": step}, steps, "matmul peak")
    per_step = min(phases[1:], key=lambda p: sum(p.values()))  # phases[0]: the warm-up step
    total = sum(per_step.values())
    peak = peak_flops / result["best"]["matmul peak"]
    # model FLOPs of one step (matmuls only): per video per layer ~ F·(4·d²·2 + 2·d·ff·2) + attention 2·2·F²·d
    ff = 2 * dim
    per_video = frames * (8 * dim * dim + 4 * dim * ff) + 4 * frames * frames * dim
    flops = per_video * (2 * batch * 3 + batch * negatives)  # forward+backward ≈ 3x forward for 2B videos
    return {
        "per_step": per_step,
        "total": total,
        "steps_per_s": 1 / total,
        "samples_per_s": batch / total,
        "achieved_flops": flops / total,
        "peak_flops": peak,
        "result": result,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 timed rounds instead of 5")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "bench" / "train.md")
    )
    args = parser.parse_args(argv)
    steps = 2 if args.quick else 5
    result = bench(64, 16, 64, 1024, steps, args.device, args.bf16)
    lines = [
        "## TCA training step (benchmarks/bench_train.py)",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"device {args.device}{' bf16' if args.bf16 else ' fp32'}. "
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. {steps} interleaved rounds (a step, then a "
        "matmul 2048^3) after 1 warm-up of each; the table is the fastest step. "
        + conditions_line(result["result"], "matmul peak")
        + ".",
        "",
        "Paper configuration: batch 64 pairs, 16 negatives per anchor (1,024 key videos a step), 64 frames,",
        "d = 1024, 1 layer, 8 heads, ff 2048, bank 4096, circle loss (m 0.25, γ 256), Adam.",
        "",
        "| phase | ms / step | share |",
        "|---|---:|---:|",
    ]
    for name, seconds in result["per_step"].items():
        lines.append(f"| {name} | {1000 * seconds:.1f} | {seconds / result['total']:.1%} |")
    lines += [
        f"| **total** | **{1000 * result['total']:.1f}** | 100% |",
        "",
        f"Steps/s: {result['steps_per_s']:.3f}; samples (anchor–positive pairs)/s: {result['samples_per_s']:.1f}.",
        f"Matmul FLOP rate in the step ≈ {result['achieved_flops'] / 1e9:.1f} GFLOP/s vs "
        f"{result['peak_flops'] / 1e9:.1f} GFLOP/s for a square torch.matmul "
        f"(ratio {result['achieved_flops'] / result['peak_flops']:.2f}).",
        "Key encoding of the 1,024 negatives (no grad) dominates: the bank makes the loss see 4,096",
        "negatives, but each step still encodes 16 new distractors per anchor, as in the paper.",
        "",
    ]
    write_report(Path(args.out), lines)


if __name__ == "__main__":
    main()
