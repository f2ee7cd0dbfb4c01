"""Frame-descriptor backbones: ResNet-50 (the paper's; random weights, same architecture and cost) vs the
ImageNet EfficientNet-Lite0 of the offline extra, on the same videos in the same run.

Run: ``.venv/bin/python benchmarks/bench_backbones.py [--quick]``; writes ``docs/bench/backbones.md``.

Measurements are interleaved round-robin (matmul reference, ResNet-50, Lite0, decoding) so that load from other
processes on a shared machine hits each alike; the best of the rounds is reported, with the load average before
and after. FLOPs per frame are counted by `torch.utils.flop_counter.FlopCounterMode` (2 x multiply-adds of
convolutions and matmuls), the share of peak against a float32 `torch.matmul` 2048^3 measured in the same rounds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from _timing import conditions_line, matmul_task, measured, write_report  # noqa: E402  (sibling module: scripts run from this folder)
from torch.utils.flop_counter import FlopCounterMode

from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel
from vidtempo.processing import offline_models as om
from vidtempo.processing.extract import extract
from vidtempo.processing.image_processing_tca import TCAImageProcessor
from vidtempo.processing.video_reader import read_video
from vidtempo.synthetic.video_writer import write_video

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "backbones.md"


def make_videos(folder: Path, count: int, seconds: int, fps: int = 30) -> list[Path]:
    """Camera motion over bundled real photos (640x360, 30 fps H.264)."""
    from vidtempo.synthetic.real_media import bundled_photos, camera_motion_video

    photos = [image for _, image in bundled_photos(["chelsea", "coffee", "astronaut", "rocket"])]
    paths = []
    for i in range(count):
        frames = camera_motion_video(
            photos[i % len(photos)], num_frames=seconds * fps, size=(640, 360), window=0.5, seed=i
        )
        paths.append(write_video(folder / f"v{i}.mp4", frames, fps, crf=23))
    return paths


def flops_per_frame(model: torch.nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 224, 224))
    return float(counter.get_total_flops())


def main() -> None:
    """Measure, then write this benchmark's report section. Long because it is one linear procedure on purpose:
    each number is measured right above the sentence of the report that states it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer videos and rounds")
    args = parser.parse_args()
    torch.manual_seed(0)
    num_videos, seconds, rounds, batch = (2, 6, 2, 8) if args.quick else (4, 10, 4, 16)
    load_before = os.getloadavg()
    resnet = FrameDescriptorModel(
        FrameDescriptorConfig(pooling="l3_irmac")
    ).eval()  # ResNet-50, random weights
    lite = om.efficientnet_lite0_descriptor(pooling="l3_irmac")
    processors = {"resnet50": TCAImageProcessor(), "lite0": om.efficientnet_lite_image_processor()}
    models = {"resnet50": resnet, "lite0": lite}
    flops = {name: flops_per_frame(model) for name, model in models.items()}
    pixels = torch.randn(batch, 3, 224, 224)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        paths = make_videos(folder, num_videos, seconds)
        sampled = num_videos * seconds

        def decode():
            for path in paths:
                clip = read_video(path, transform=processors["lite0"].resize_and_crop)
                processors["lite0"].normalize_frames(clip.frames)

        long_matmul, long_flops = matmul_task(flops["resnet50"] * batch)  # as long as a ResNet-50 batch
        tasks = {
            "matmul": lambda: torch.matmul(a, b),
            "same-FLOPs matmul": long_matmul,
            "resnet50": lambda: resnet(pixels),
            "lite0": lambda: lite(pixels),
            "decode": decode,
        }
        with torch.no_grad():
            result = measured(tasks, rounds, "matmul")
            best = result["best"]
            end_to_end = {}
            for _ in range(max(1, rounds // 2)):  # end-to-end extract, same videos, alternating
                for name, model in models.items():
                    out = Path(tmp) / f"out_{name}_{time.monotonic_ns()}"
                    start = time.perf_counter()
                    counts = extract(
                        [folder],
                        out,
                        model=model,
                        processor=processors[name],
                        batch_size=batch,
                        num_workers=0,
                        progress=False,
                        cpu=True,
                    )
                    seconds_taken = time.perf_counter() - start
                    assert counts["frames"] == sampled, counts
                    end_to_end[name] = min(end_to_end.get(name, float("inf")), seconds_taken)
    load_after = os.getloadavg()
    matmul_gflops = 2 * 2048**3 / best["matmul"] / 1e9
    long_gflops = long_flops / best["same-FLOPs matmul"] / 1e9
    decode_per_frame = best["decode"] / sampled
    rows = []
    per_frame = {}
    for name, label in (
        ("resnet50", "ResNet-50 + L3-iRMAC (3840-d)"),
        ("lite0", "EfficientNet-Lite0 + L3-iRMAC (1456-d)"),
    ):
        per_frame[name] = best[name] / batch
        achieved = flops[name] / per_frame[name] / 1e9
        share = decode_per_frame / (decode_per_frame + per_frame[name])
        rows.append(
            (
                label,
                f"{1 / per_frame[name]:.1f}",
                f"{flops[name] / 1e9:.2f}",
                f"{achieved:.1f}",
                f"{achieved / matmul_gflops:.0%}",
                f"{sampled / end_to_end[name]:.1f}",
                f"{share:.0%} / {1 - share:.0%}",
            )
        )
    ratio = per_frame["resnet50"] / per_frame["lite0"]
    e2e_ratio = end_to_end["resnet50"] / end_to_end["lite0"]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Frame-descriptor backbones: ResNet-50 vs EfficientNet-Lite0 (`bench_backbones.py`"
        + (" --quick" if args.quick else "")
        + ")",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after), torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), python {sys.version.split()[0]}; {date}. "
        f"{num_videos} videos x {seconds} s (camera motion over bundled photos, 640x360 30-fps H.264, 1 fps "
        f"sampled = {sampled} frames), batch {batch} at 224x224, best of {rounds} interleaved rounds ("
        + conditions_line(result, "matmul peak")
        + f"; the end-to-end `extract` runs alternate between the two networks, best of {max(1, rounds // 2)}, "
        "with no matmul between them). ResNet-50 "
        "has random weights (same cost as ImageNet weights, which need the Hub); Lite0 has its ImageNet weights.",
        "",
        "| network | CNN frames/s | GFLOP/frame | GFLOP/s | share of matmul peak | end-to-end `extract` frames/s | "
        "decode / CNN time per frame |",
        "|---|---:|---:|---:|---:|---:|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        f"| torch.matmul 2048^3 float32 (peak reference) | | | {matmul_gflops:.1f} | 100% | | |",
        f"| torch.matmul of a ResNet-50 batch's FLOPs (as long as that batch) | | | {long_gflops:.1f} | "
        f"{long_gflops / matmul_gflops:.0%} | | |",
        "",
        f"Speed ratio Lite0 / ResNet-50: {ratio:.2f} per frame for the descriptor network, {e2e_ratio:.2f} end to "
        f"end (decoding included, 0 decode workers), for {flops['lite0'] / flops['resnet50']:.0%} of ResNet-50's "
        f"FLOPs: Lite0's depthwise convolutions reach a much smaller share of the matmul peak than dense ones. "
        f"Against the same-FLOPs matmul (a task as long as the ResNet-50 batch, so a drift of the load hits both "
        f"alike) ResNet-50 runs at {flops['resnet50'] / per_frame['resnet50'] / 1e9 / long_gflops:.0%}. "
        "Decoding (decord, resize + crop) takes the stated share of a frame's time when the two run one after "
        "the other.",
        "",
    ]
    write_report(OUT, lines)


if __name__ == "__main__":
    main()
