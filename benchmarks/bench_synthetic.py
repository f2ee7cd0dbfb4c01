"""Synthetic benchmark generation speed: vectorised rendering vs a per-pixel loop, rendering vs encoding,
and the end-to-end `make demo`-sized generation (near-duplicate benchmark and captioned set). The render, the
naive loop and the encode alternate over interleaved rounds with a `torch.matmul` 2048^3 (the reference;
`_timing.measured`); the end-to-end wall times have no reference and carry the load average around them.

Run: ``.venv/bin/python benchmarks/bench_synthetic.py [--quick]``; writes ``docs/bench/synthetic.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _timing import conditions_line, load_line, measured, square_matmul_task, write_report  # noqa: E402  (sibling module: scripts run from this folder)

from vidtempo.synthetic.captions import generate_captioned_videos
from vidtempo.synthetic.neardup import build_specs, generate_benchmark, render_video
from vidtempo.synthetic.renderer import render_scene, render_scenes, shape_mask, shape_state
from vidtempo.synthetic.video_writer import write_video

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "synthetic.md"


def naive_render_frame(scene: dict, size, fps: float, k: int) -> np.ndarray:
    """Reference renderer: one frame, one pixel at a time (the loop the vectorised code replaces)."""
    width, height = size
    cam, bg = scene["camera"], scene["background"]
    t = scene["t0"] + k / fps
    rel = t - scene["t0"]
    zoom = cam["zoom"] * (1 + cam["zoom_rate"] * rel)
    colors = np.asarray(bg["colors"], dtype=np.float64)
    frame = np.zeros((height, width, 3))
    states = [shape_state(s, np.array([t], dtype=np.float32)) for s in scene["shapes"]]
    for i in range(height):
        for j in range(width):
            x = cam["pos"][0] + cam["vel"][0] * rel + (j + 0.5 - width / 2) / height / zoom
            y = cam["pos"][1] + cam["vel"][1] * rel + (i + 0.5 - height / 2) / height / zoom
            pixel = colors[0].copy()
            for c in (1, 2):
                w = 0.5 + 0.5 * np.sin(
                    2 * np.pi * (bg["freqs"][c][0] * x + bg["freqs"][c][1] * y) + bg["phases"][c]
                )
                pixel += w * (colors[c] - colors[0]) * 0.5 * c
            pixel *= 0.85 + 0.15 * np.sin(
                2 * np.pi * (bg["freqs"][0][0] * x + bg["freqs"][0][1] * y) + bg["phases"][0]
            )
            for shape, (cx, cy, angle, visible, scale) in zip(scene["shapes"], states):
                if not visible[0]:
                    continue
                dx, dy = x - cx[0], y - cy[0]
                u = np.cos(angle[0]) * dx + np.sin(angle[0]) * dy
                v = -np.sin(angle[0]) * dx + np.cos(angle[0]) * dy
                if shape_mask(shape["kind"], u, v, shape["size"] * scale[0]):
                    stripe = np.sin(2 * np.pi * shape.get("stripes", 0.0) * (u + 0.5 * v)) > 0
                    pixel = np.asarray(
                        shape["color"] if stripe else shape.get("color2", shape["color"]), float
                    )
            frame[i, j] = pixel
    return np.clip(frame, 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    """Measure, then write this benchmark's report section. Long because it is one linear procedure on purpose:
    each number is measured right above the sentence of the report that states it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller end-to-end sizes")
    args = parser.parse_args(argv)
    size, fps, duration = (128, 96), 8.0, 6.0
    spec = build_specs(1, 0, seed=0, size=size, fps=fps, duration=duration)[0][0]
    render_size = tuple(spec["render_size"])
    frames = render_scenes(spec["scenes"], render_size, fps)  # the scenes alone: the naive loop's work
    num_frames = len(frames)
    video_frames = len(render_video(spec, fps))

    scene = spec["scenes"][0]
    vec_frame = render_scene({**scene, "num_frames": 1}, render_size, fps)[0]
    naive_frame = naive_render_frame(scene, render_size, fps, 0)
    max_diff = int(np.abs(vec_frame.astype(int) - naive_frame.astype(int)).max())
    tmp = Path(tempfile.mkdtemp())
    peak_task, peak_flops = square_matmul_task(2048)
    result = measured(
        {
            "matmul peak": peak_task,
            "render": lambda: render_scenes(spec["scenes"], render_size, fps),
            "naive": lambda: naive_render_frame(scene, render_size, fps, 0),
            "encode": lambda: write_video(tmp / "v.mp4", frames, fps, crf=23),
        },
        3,
        "matmul peak",
    )
    render_s, naive_s, encode_s = (result["best"][n] for n in ("render", "naive", "encode"))

    load_before = os.getloadavg()[0]
    families, distractors = (10, 15) if args.quick else (40, 60)
    workers = min(2, os.cpu_count() or 1)
    start = time.perf_counter()
    paths = generate_benchmark(
        tmp / "neardup",
        num_sources=families,
        num_distractors=distractors,
        seed=0,
        size=size,
        fps=fps,
        duration=duration,
        workers=workers,
        progress=False,
    )
    gen_s = time.perf_counter() - start
    info = json.loads(paths.info.read_text())
    disk_mb = sum(p.stat().st_size for p in paths.videos.glob("*.mp4")) / 2**20
    num_cap = 10 if args.quick else 40
    start = time.perf_counter()
    generate_captioned_videos(
        tmp / "captions", num_videos=num_cap, seed=0, size=(112, 112), fps=8.0, duration=6.0, progress=False
    )
    cap_s = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    shutil.rmtree(tmp)

    per_frame_ms = 1000 * render_s / num_frames
    lines = [
        "## Synthetic benchmarks (synthetic/)",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared with other jobs: absolute times are noisy, ratios from one run are what matter), torch "
        f"{torch.__version__}, numpy {np.__version__}. Date (UTC): "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}. "
        f"Command: `.venv/bin/python benchmarks/bench_synthetic.py{' --quick' if args.quick else ''}`.",
        "",
        f"One source video's scenes: {num_frames} frames at {render_size[0]}x{render_size[1]}, {fps:g} fps, "
        f"{len(spec['scenes'])} scenes (`render_scenes`; `render_video` then prepends the channel intro and stamps "
        f"its watermark, {video_frames} frames in all, not timed here). "
        f"3 interleaved rounds (render, naive frame, encode, `torch.matmul` 2048^3 at "
        f"{peak_flops / result['best']['matmul peak'] / 1e9:.1f} GFLOP/s), best of each. "
        + conditions_line(result, "matmul peak")
        + ".",
        "",
        "| step | time | per frame | ratio |",
        "| --- | --- | --- | --- |",
        f"| naive per-pixel loop render (1 frame) | {naive_s * 1000:.0f} ms | {naive_s * 1000:.0f} ms | "
        f"{naive_s * 1000 / per_frame_ms:.0f}x slower than vectorised |",
        f"| vectorised numpy render (`render_scenes`) | {render_s * 1000:.0f} ms | {per_frame_ms:.2f} ms | 1x |",
        f"| H.264 encode (PyAV, crf 23, veryfast) | {encode_s * 1000:.0f} ms | {1000 * encode_s / num_frames:.2f} ms | "
        f"{encode_s / render_s:.2f}x the render time |",
        "",
        f"Vectorised vs naive frame: max abs pixel difference {max_diff} (same formula, float32 vs float64).",
        "",
        "| end to end | videos | wall time | videos/s | disk |",
        "| --- | --- | --- | --- | --- |",
        f"| near-duplicate benchmark ({families} families x 6 + {distractors} distractors, {size[0]}x{size[1]}, "
        f"{duration:g} s, {workers} workers) | {info['num_videos']} | {gen_s:.1f} s | {info['num_videos'] / gen_s:.1f} | "
        f"{disk_mb:.1f} MiB |",
        f"| captioned set (112x112, 6 s, 1 process) | {num_cap} | {cap_s:.1f} s | {num_cap / cap_s:.1f} | |",
        "",
        load_line(load_before, load_after, "one run of each end-to-end generation: absolute wall times")
        + ".",
        "",
    ]
    write_report(OUT, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
