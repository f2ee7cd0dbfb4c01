"""Bounded-memory TCA training at VCDB's full size: 100,310 videos with VCDB's real ids (`index` of vcdb.json: the
528 core videos of its 5,612 pairs, the rest distractors), synthetic float16 d = 1024 descriptors with a
realistic length distribution (1 frame per second; VCDB's core videos average ~185 s, its distractors ~73 s:
log-normal lengths with those means, 4 to 1,200 frames), written as one packed store (`PackedWriter`; no parquet
copy, which would double the disk). Trains `train_tca` for a few hundred steps reading descriptors on demand
(`descriptor_cache_mb`), and compares with the in-RAM path on a pool that fits in RAM. Peak RSS is sampled
(process + loader workers). Writes docs/bench/train_store.md.

    .venv/bin/python benchmarks/bench_train_store.py [--quick] [--keep-store]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _timing import write_report  # noqa: E402  (sibling module: scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
VCDB = Path(os.environ.get("VIDTEMPO_BENCHMARKS", "/work/shared/benchmarks")) / "vcdb.json"
DIM = 1024
MEAN_CORE, MEAN_DISTRACTOR, SIGMA = 185.0, 73.0, 0.8


def _lengths(n: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    mu = np.log(mean) - SIGMA**2 / 2  # log-normal with this mean
    return np.clip(np.rint(rng.lognormal(mu, SIGMA, n)), 4, 1200).astype(np.int64)


def build_store(folder: Path, ids: list[str], core: set[str], seed: int = 0) -> dict:
    """Write the packed float16 store of `ids` (core videos get the longer lengths); returns its sizes."""
    from vidtempo.processing.descriptor_store import PackedWriter, packed_path, write_info

    rng = np.random.default_rng(seed)
    is_core = np.array([v in core for v in ids])
    lengths = np.where(is_core, _lengths(len(ids), MEAN_CORE, rng), _lengths(len(ids), MEAN_DISTRACTOR, rng))
    pool = rng.standard_normal((1 << 16, DIM)).astype(np.float16)  # frames are rows of a random pool
    write_info(folder, DIM, model="synthetic (bench_train_store.py)")
    start = time.perf_counter()
    writer = PackedWriter(packed_path(folder), DIM, "float16")
    for video_id, length in zip(ids, lengths):
        first = int(rng.integers(0, len(pool)))
        writer.add(video_id, pool[(first + np.arange(length)) % len(pool)])
    writer.close()
    return {
        "seconds": time.perf_counter() - start,
        "bytes": (packed_path(folder) / "frames.bin").stat().st_size,
        "frames": int(lengths.sum()),
        "mean_core": float(lengths[is_core].mean()) if is_core.any() else 0.0,
        "mean_distractor": float(lengths[~is_core].mean()),
    }


def small_parquet_folder(store: Path, out: Path, ids: list[str]) -> None:
    """The videos `ids` of the packed store as a parquet descriptor folder (for the in-RAM comparison)."""
    from vidtempo.processing.descriptor_store import DescriptorWriter, PackedDescriptors

    packed = PackedDescriptors(store)
    with DescriptorWriter(out, DIM, shard_size=512) as writer:
        for video_id in ids:
            writer.add(video_id, packed[video_id])


class PeakRSS:
    """Samples a process and its children every `period` seconds: `peak` is the largest sum of their RSS,
    `peak_pss` of their PSS (shared pages, e.g. a forked worker's copy of the libraries, counted once),
    `peak_main` the main process's own RSS."""

    def __init__(self, pid: int, period: float = 0.2):
        import psutil

        self.process, self.period, self._stop = psutil.Process(pid), period, threading.Event()
        self.peak = self.peak_pss = self.peak_main = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                info = [p.memory_full_info() for p in procs]
                self.peak = max(self.peak, sum(i.rss for i in info))
                self.peak_pss = max(self.peak_pss, sum(i.pss for i in info))
                self.peak_main = max(self.peak_main, info[0].rss)
            except psutil.Error:
                pass
            time.sleep(self.period)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(spec: dict) -> dict:
    """One training run (in its own process, so that its RSS is its own); returns step times."""
    import torch

    from vidtempo.training import train_tca

    torch.set_num_threads(spec.pop("threads"))
    stamps: list[float] = []
    original = train_tca.TCAStep.__call__

    def timed(self, *args, **kwargs):
        stamps.append(time.perf_counter())
        return original(self, *args, **kwargs)

    train_tca.TCAStep.__call__ = timed
    start = time.perf_counter()
    train_tca.train(train_tca.TrainConfig(**spec))
    steps = np.diff(stamps)[5:]  # data loading included; the first steps warm the loader up
    return {"wall": time.perf_counter() - start, "step_median": float(np.median(steps)), "steps": len(stamps)}


def run_child(spec: dict) -> dict:
    """`child(spec)` in a subprocess, with its peak RSS (process + loader workers)."""
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    with PeakRSS(process.pid) as rss:
        out, _ = process.communicate()
    if process.returncode:
        raise RuntimeError(f"training run failed ({process.returncode}): {spec}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_rss": rss.peak, "peak_pss": rss.peak_pss, "peak_main": rss.peak_main}


def train_spec(folder: Path, out: Path, steps: int, cache_mb: int | None, distractors: int | None) -> dict:
    return dict(
        descriptors=str(folder),
        pairs=str(VCDB),
        output_dir=str(out),
        force=True,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        batch_size=32,
        negatives_per_anchor=16,
        num_frames=64,
        bank_size=4096,
        epochs=100,
        max_steps=steps,
        val_fraction=0.0,
        save_every=0,
        report_to="none",
        progress=False,
        num_workers=1,
        threads=1,
        descriptor_cache_mb=cache_mb,
        max_distractors=distractors,
    )


def main(argv=None) -> None:
    """Build (or reuse) the store, run the three trainings, write the report. Long because the report names
    every setting of the runs next to their figures (one place to read both)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 distractors, 20 / 10 steps")
    parser.add_argument("--steps", type=int, default=None, help="steps of the full-pool run (default 200)")
    parser.add_argument("--compare-steps", type=int, default=None, help="steps of the small-pool runs (60)")
    parser.add_argument("--small-pool", type=int, default=3000, help="distractors of the in-RAM comparison")
    parser.add_argument("--scratch", default=str(ROOT / "outputs" / "bench_train_store"))
    parser.add_argument("--keep-store", action="store_true", help="keep the ~15 GB store for another run")
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds of the small-pool runs (2; --quick: 1)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "train_store.md"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    steps = args.steps or (20 if args.quick else 200)
    compare_steps = args.compare_steps or (10 if args.quick else 60)
    vcdb = json.loads(VCDB.read_text())
    core = {v for pair in vcdb["video_pairs"] for v in pair["videos"]}
    ids = list(dict.fromkeys(vcdb["index"]))  # 100,310 entries, 100,306 distinct ids
    if args.quick:
        ids = [v for v in ids if v in core] + [v for v in ids if v not in core][:10_000]
    scratch = Path(args.scratch)
    full, small = scratch / "full", scratch / "small"
    load_before = os.getloadavg()
    from vidtempo.processing.descriptor_store import packed_path

    if (packed_path(full) / "manifest.json").exists() and len(
        json.loads((packed_path(full) / "ids.json").read_text())
    ) == len(ids):
        built = {
            "seconds": float("nan"),
            "bytes": (packed_path(full) / "frames.bin").stat().st_size,
            "reused": True,
        }
    else:
        shutil.rmtree(full, ignore_errors=True)
        built = build_store(full, ids, core)
    negs = set(vcdb["negs"])
    small_ids = [v for v in ids if v in core] + [v for v in ids if v in negs][: args.small_pool]
    if not (small / "info.json").exists():
        small_parquet_folder(packed_path(full), small, small_ids)
    from vidtempo.processing.descriptor_store import pack_descriptors

    pack_descriptors(small)  # packed before the runs: the first on-demand run would otherwise include it
    runs = {
        "in RAM, small pool": train_spec(small, scratch / "run_ram", compare_steps, None, args.small_pool),
        "on demand, small pool": train_spec(
            small, scratch / "run_small", compare_steps, 256, args.small_pool
        ),
        "on demand, full pool": train_spec(full, scratch / "run_full", steps, 256, None),
    }
    # the two small-pool runs alternate over `rounds` (best step time of each), so a drift of the shared
    # machine's load affects both alike; the full-pool run is the one that needs the bounded memory
    rounds = args.rounds or (1 if args.quick else 2)
    small_rounds: dict[str, list[dict]] = {name: [] for name in list(runs)[:2]}
    for _ in range(rounds):
        for name in small_rounds:
            small_rounds[name].append(run_child(dict(runs[name])))
    results = {name: min(done, key=lambda r: r["step_median"]) for name, done in small_rounds.items()}
    results["on demand, full pool"] = run_child(runs["on demand, full pool"])
    load_after = os.getloadavg()
    total_frames = int(np.load(packed_path(full) / "offsets.npy")[-1])
    lines = [
        "## Bounded-memory TCA training at VCDB size (`benchmarks/bench_train_store.py`)",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after), {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM, "
        f"python {platform.python_version()}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Store: {len(ids):,} videos (VCDB's real ids: {len(core)} core videos of {len(vcdb['video_pairs']):,} pairs, "
        f"the rest distractors), {total_frames:,} frames of d = {DIM} float16 = {built['bytes'] / 2**30:.1f} GiB on disk"
        + (f", written in {built['seconds']:.0f} s" if not built.get("reused") else " (reused)")
        + f"; log-normal lengths, means {MEAN_CORE:.0f} / {MEAN_DISTRACTOR:.0f} frames (core / distractor). "
        "Holding it in RAM (the former only path) would need the whole store: more than this machine has.",
        "",
        "Training: `train_tca`, batch 32 pairs x 16 negatives (544 videos read a step), 64-frame crops, bank 4096, "
        "TCA 1 layer at hidden 64 (small, so that the step measures the data path), 1 loader worker, "
        "1 torch thread, cache 256 MiB per process; step time = median interval between steps (data included). "
        "RSS sums the process and its worker (shared library pages counted twice); PSS counts shared pages once.",
        "",
        "| run | distractor pool | steps | s / step | peak RSS (process + worker) | peak PSS | peak RSS, main process |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    num_negs = len([v for v in ids if v in negs])
    for name, r in results.items():
        pool = min(args.small_pool, num_negs) if "small" in name else num_negs
        lines.append(
            f"| {name} | {pool:,} | {r['steps']} | {r['step_median']:.3f} | {r['peak_rss'] / 2**30:.2f} GiB "
            f"| {r['peak_pss'] / 2**30:.2f} GiB | {r['peak_main'] / 2**30:.2f} GiB |"
        )
    ram, small_od, full_od = (results[k] for k in runs)
    lines += [
        "",
        f"On demand vs in RAM (same pool, {rounds} alternating rounds, best of each; step times per round: "
        + "; ".join(
            f"{name} " + ", ".join(f"{r['step_median']:.3f}" for r in done)
            for name, done in small_rounds.items()
        )
        + f" s): {small_od['step_median'] / ram['step_median']:.2f}x the step time. "
        f"Full pool vs small pool on demand: peak RSS {full_od['peak_rss'] / small_od['peak_rss']:.2f}x for "
        f"{num_negs / args.small_pool:.0f}x the distractors; the full-size run stays under "
        f"{np.ceil(full_od['peak_rss'] / 2**30 * 4) / 4:.2f} GiB.",
        "",
    ]
    write_report(Path(args.out), lines)
    if not args.keep_store:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
