"""Decoding for LocVTP: a 10 s segment of a 60 s 640x360 video, the old way (every frame of the video at full
resolution, then the segment kept) against the planned reader (`video_reader.decode_segment`: only the
segment's frames, resized while decoding to 224 on the shorter side) and the training clip plan
(`LocVTPProcessor.fetch_clips`: 8 clips of 16 frames). Each arm runs in its own process, so its peak RSS is
its own. Writes docs/bench/decode.md. `--quick`: a 20 s video, 5 s segment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import write_report  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds, start, end = (20, 5.0, 10.0) if args.quick else (60, 20.0, 30.0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        make_video(video, seconds)
        for arm in ARMS:
            out = subprocess.run(
                [sys.executable, "-c", ARM, str(video), str(start), str(end), arm],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            rows.append((arm, json.loads(out.stdout.strip().splitlines()[-1])))
    lines = [
        "## Decoding for LocVTP (`benchmarks/bench_decode.py`)",
        "",
        f"Machine: {platform.machine()} {os.cpu_count()} CPUs, load {open('/proc/loadavg').read().split()[0]}. "
        f"A {end - start:.0f} s segment ([{start:.0f}, {end:.0f}) s) of a {seconds} s 640x360 30 fps H.264 "
        "video; one process per arm (peak RSS includes the interpreter and libraries, 'baseline' is before "
        "decoding).",
        "",
        "| arm | frames returned | time (s) | peak RSS (MiB) | baseline RSS (MiB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arm, r in rows:
        lines.append(
            f"| {arm} | {r['frames']} | {r['seconds']:.2f} | {r['peak_mib']:.0f} | {r['baseline_mib']:.0f} |"
        )
    write_report(ROOT / "docs" / "bench" / "decode.md", lines)


if __name__ == "__main__":
    main()
