"""Frame-descriptor extraction: decode + preprocess (decord vs PyAV), the ResNet-50 descriptor network, and the
end-to-end `extract` pipeline on this CPU.

Run: ``.venv/bin/python benchmarks/bench_extract.py [--quick]``; writes ``docs/bench/extract.md``.

Videos are synthetic real H.264 files (640x360, 30 fps, moving smooth texture) written with `write_video`.
The network is `FrameDescriptorModel` with ResNet-50 shapes and random weights (the cost does not depend on
the weights), 224x224 inputs, L3-iRMAC pooling. "Naive" decoding converts every decoded frame to RGB and
subsamples afterwards; ours converts only the sampled (1 fps) frames. The matmul line is the float32 GEMM rate
of this CPU (torch.matmul 2048^3), against which the CNN's achieved FLOP rate is compared; it alternates with the
decoders, the CNN and the PCA update over interleaved rounds (`_timing.measured`, the matmul is the reference).
The end-to-end `extract` runs and the PCA fit have no reference: one run each, with the load average around them.
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

import numpy as np
import torch
from _timing import conditions_line, load_line, matmul_task, measured, square_matmul_task, write_report  # noqa: E402  (sibling module: scripts run from this folder)

from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel
from vidtempo.processing.descriptor_pca import StreamingPCA
from vidtempo.processing.extract import extract
from vidtempo.processing.image_processing_tca import TCAImageProcessor
from vidtempo.processing.video_reader import read_video
from vidtempo.synthetic.video_writer import write_video

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "extract.md"
RESNET50_GFLOP = 2 * 4.11  # multiply-adds of ResNet-50 at 224x224 (4.11 G) x 2


def make_videos(folder: Path, count: int, seconds: int, fps: int = 30, size=(360, 640)) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(count):
        phases = rng.uniform(0, 2 * np.pi, 3)
        frames = np.empty((seconds * fps, height, width, 3), np.uint8)
        for t in range(len(frames)):
            for c in range(3):
                frames[t, :, :, c] = 127 + 120 * np.sin(xs / (17 + 5 * c) + ys / 23 + t / 7 + phases[c])
        paths.append(write_video(folder / f"v{i}.mp4", frames, fps, crf=23))
    return paths


def naive_pyav(path: Path, step: int, processor: TCAImageProcessor) -> None:
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    processor.normalize_frames(processor.resize_and_crop(np.stack(frames[::step])))


def main() -> None:
    """Measure, then write this benchmark's report section. Long because it is one linear procedure on purpose:
    each number is measured right above the sentence of the report that states it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller videos and fewer repeats")
    args = parser.parse_args()
    torch.manual_seed(0)
    num_videos, seconds, repeats, batch = (2, 8, 1, 8) if args.quick else (3, 12, 2, 16)
    processor = TCAImageProcessor()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        paths = make_videos(folder, num_videos, seconds)
        sampled = sum(len(range(0, seconds * 30, 30)) for _ in paths)

        def decode(backend):
            def run():
                for path in paths:
                    clip = read_video(path, backend=backend, transform=processor.resize_and_crop)
                    processor.normalize_frames(clip.frames)

            return run

        model = FrameDescriptorModel(FrameDescriptorConfig(pooling="l3_irmac")).eval()
        pixels = torch.randn(batch, 3, 224, 224)
        pca_batch = np.random.default_rng(0).normal(size=(1024, 3840)).astype(np.float32)
        accumulator = StreamingPCA(3840)
        peak_task, peak_flops = square_matmul_task(2048)
        cnn_matmul, cnn_matmul_flops = matmul_task(RESNET50_GFLOP * 1e9 * batch)  # as long as the CNN batch
        with torch.no_grad():
            result = measured(
                {
                    "matmul": peak_task,
                    "cnn matmul": cnn_matmul,
                    "decord": decode("decord"),
                    "pyav": decode("pyav"),
                    "naive": lambda: [naive_pyav(p, 30, processor) for p in paths],
                    "full": lambda: model(pixels),
                    "backbone": lambda: model.backbone(pixels),
                    "pca": lambda: accumulator.update(pca_batch),
                },
                repeats + 1,
                "matmul",
            )
        decode_times = result["best"]
        naive = decode_times["naive"]
        cnn, backbone_only = decode_times["full"] / batch, decode_times["backbone"] / batch
        matmul_gflops = peak_flops / decode_times["matmul"] / 1e9
        long_matmul_gflops = cnn_matmul_flops / decode_times["cnn matmul"] / 1e9
        cnn_gflops = RESNET50_GFLOP / cnn
        pca_update = decode_times["pca"] / len(pca_batch)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        accumulator.fit(1024)
        pca_fit = time.perf_counter() - start

        model_dir = Path(tmp) / "model"
        model.save_pretrained(model_dir)
        end_to_end = {}
        for workers in (0, 2):
            out = Path(tmp) / f"out{workers}"
            start = time.perf_counter()
            counts = extract(
                [folder],
                out,
                model_name=str(model_dir),
                batch_size=batch,
                num_workers=workers,
                progress=False,
                model=model,
                processor=processor,
            )
            end_to_end[workers] = (time.perf_counter() - start, counts["frames"])
            assert counts["frames"] == sampled, counts
        load_after = os.getloadavg()[0]

    source_frames = num_videos * seconds * 30
    decode_per_frame = decode_times["decord"] / sampled
    share = decode_per_frame / (decode_per_frame + cnn)
    rows.append(
        (
            "decode + preprocess, decord (1 fps of 30-fps 640x360 H.264)",
            f"{sampled / decode_times['decord']:.1f}",
            f"{source_frames / decode_times['decord']:.0f} source frames/s",
        )
    )
    rows.append(
        (
            "decode + preprocess, PyAV",
            f"{sampled / decode_times['pyav']:.1f}",
            f"{source_frames / decode_times['pyav']:.0f} source frames/s; "
            f"decord/PyAV = {decode_times['pyav'] / decode_times['decord']:.2f}x",
        )
    )
    rows.append(
        (
            "naive PyAV (RGB-convert every frame, subsample, preprocess)",
            f"{sampled / naive:.1f}",
            f"naive / ours (PyAV) time = {naive / decode_times['pyav']:.2f}",
        )
    )
    rows.append(
        (
            f"descriptor network ResNet-50 + L3-iRMAC, batch {batch}",
            f"{1 / cnn:.2f}",
            f"{cnn_gflops:.1f} GFLOP/s = {cnn_gflops / matmul_gflops:.0%} of matmul peak, "
            f"{cnn_gflops / long_matmul_gflops:.0%} of the same-FLOPs matmul ({long_matmul_gflops:.1f} GFLOP/s); "
            f"pooling = {1 - backbone_only / cnn:.1%} of it (noisy)",
        )
    )
    rows.append(("torch.matmul 2048^3 float32 (peak reference)", "", f"{matmul_gflops:.1f} GFLOP/s"))
    rows.append(
        (
            "StreamingPCA.update, 3840-d, float64, batches of 1024",
            f"{1 / pca_update:.0f}",
            f"1M descriptors: {1e6 * pca_update / 60:.1f} min, memory 3840^2 x 8 B = 118 MB; "
            f"eigh + top-1024: {pca_fit:.1f} s",
        )
    )
    for workers, (seconds_taken, frames) in end_to_end.items():
        rows.append(
            (
                f"end-to-end `extract`, {workers} decode workers",
                f"{frames / seconds_taken:.2f}",
                f"{num_videos / seconds_taken:.3f} videos/s",
            )
        )
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Frame-descriptor extraction (`bench_extract.py`" + (" --quick" if args.quick else "") + ")",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared), torch {torch.__version__} ({torch.get_num_threads()} threads), python "
        f"{sys.version.split()[0]}; {date}. {num_videos} videos x {seconds} s; {repeats + 1} interleaved rounds of the decoders, the CNN, the "
        "PCA update and the matmul, best of each. " + conditions_line(result, "matmul peak") + ".",
        "",
        "| stage | sampled frames/s | notes |",
        "|---|---:|---|",
        *[f"| {name} | {rate} | {note} |" for name, rate, note in rows],
        "",
        f"Share of time per frame (decord decode+preprocess vs CNN, measured separately): decoding "
        f"{share:.1%}, CNN {1 - share:.1%}. On this CPU the ResNet-50 dominates; decoding in worker "
        "processes overlaps with it when cores are free. A decoder crash (segfault) costs one retry, not the job.",
        "",
        load_line(load_before, load_after, "the PCA fit and the end-to-end `extract` rows are one run each")
        + ".",
        "",
    ]
    write_report(OUT, lines)


if __name__ == "__main__":
    main()
