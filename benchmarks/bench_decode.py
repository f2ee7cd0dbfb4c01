"""Decoding for LocVTP: a 10 s segment of a 60 s 640x360 video, the old way (every frame of the video at full
resolution, then the segment kept) against the planned reader (`video_reader.decode_segment`: only the
segment's frames, resized while decoding to 224 on the shorter side) and the training clip plan
(`LocVTPProcessor.fetch_clips`: 8 clips of 16 frames). Each arm runs in its own process, so its peak RSS is
its own. The arms (the full decode is the naive baseline) alternate over interleaved rounds with a `torch.matmul`
2048^3 (the reference whose spread flags a disturbed run; `_timing.measured`); each arm's time is the best
round of the decode inside its process. Writes docs/bench/decode.md. `--quick`: a 20 s video, 5 s segment.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import conditions_line, measured, square_matmul_task, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ARM = r"""
import json, resource, sys, time
import numpy as np
from vidtempo.processing import video_reader
path, start, end, arm = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if arm == "full decode, then keep the segment":
    clip = video_reader.read_video(path, fps=video_reader.EVERY_FRAME, min_duration=0.0, backend="pyav")
    keep = (clip.timestamps >= start) & (clip.timestamps < end)
    n = int(keep.sum())
elif arm == "decode_segment (planned, 224 short side)":
    n = len(video_reader.decode_segment(path, start, end, short_side=224)[0])
else:
    from vidtempo.processing.processing_locvtp import training_clip_indices
    first, stop, _ = video_reader.segment_frame_range(path, start, end)
    plan = training_clip_indices(stop - first, 8, 16)
    n = len(video_reader.read_frames(path, first + np.unique(plan), short_side=224)[0])
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "baseline_mib": before / 1024, "frames": n}))
"""

ARMS = (
    "full decode, then keep the segment",
    "decode_segment (planned, 224 short side)",
    "training plan, 8 x 16 frames (planned, 224 short side)",
)


def make_video(path: Path, seconds: int, fps: int = 30) -> None:
    """A 640x360 H.264 video with moving content, written chunk by chunk (bounded memory)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        x = np.arange(640)[None, :]
        y = np.arange(360)[:, None]
        for t in range(seconds * fps):
            frame = np.zeros((360, 640, 3), dtype=np.uint8)
            frame[..., 0] = (x + 4 * t) % 256
            frame[..., 1] = (y * 2 + t) % 256
            frame[..., 2] = ((x // 40 + y // 40 + t // 15) % 2) * 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def run_arm(video: Path, start: float, end: float, arm: str, records: list[dict]):
    """A task running `arm` in a fresh process; each call appends the process's JSON record to `records`."""

    def run() -> None:
        out = subprocess.run(
            [sys.executable, "-c", ARM, str(video), str(start), str(end), arm],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        records.append(json.loads(out.stdout.strip().splitlines()[-1]))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds, start, end = (20, 5.0, 10.0) if args.quick else (60, 20.0, 30.0)
    rounds = 2
    records: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    peak_task, peak_flops = square_matmul_task(2048)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        make_video(video, seconds)
        tasks = {"matmul peak": peak_task}
        tasks.update({arm: run_arm(video, start, end, arm, records[arm]) for arm in ARMS})
        result = measured(tasks, rounds, "matmul peak")
    rows = []
    for arm in ARMS:
        timed = records[arm][1:]  # [0]: the warm-up call
        best = min(timed, key=lambda r: r["seconds"])
        rows.append((arm, {**best, "peak_mib": max(r["peak_mib"] for r in timed)}))
    baseline = rows[0][1]["seconds"]
    lines = [
        "## Decoding for LocVTP (`benchmarks/bench_decode.py`" + (" --quick" if args.quick else "") + ")",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared); "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"A {end - start:.0f} s segment ([{start:.0f}, {end:.0f}) s) of a {seconds} s 640x360 30 fps H.264 "
        "video; one process per arm and call (peak RSS includes the interpreter and libraries, 'baseline' is "
        f"before decoding). {rounds} interleaved rounds (the three arms and a `torch.matmul` 2048^3, "
        f"{peak_flops / result['best']['matmul peak'] / 1e9:.1f} GFLOP/s at best), best of each. "
        + conditions_line(result, "matmul peak")
        + ".",
        "",
        "| arm | frames returned | time (s) | vs full decode | peak RSS (MiB) | baseline RSS (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arm, r in rows:
        lines.append(
            f"| {arm} | {r['frames']} | {r['seconds']:.2f} | {baseline / r['seconds']:.1f}x faster | "
            f"{r['peak_mib']:.0f} | {r['baseline_mib']:.0f} |"
        )
    write_report(ROOT / "docs" / "bench" / "decode.md", [*lines, ""])


if __name__ == "__main__":
    main()
