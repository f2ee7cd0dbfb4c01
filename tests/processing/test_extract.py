"""`vidtempo-extract`: folder of real videos -> descriptor dataset; bad files recorded and skipped; resume;
fit-pca; two processes with torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ResNetConfig

from vidtempo.cli.extract import main
from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel
from vidtempo.processing import TCAImageProcessor, read_video
from vidtempo.processing.descriptor_store import (
    existing_ids,
    iter_descriptors,
    load_descriptor_dataset,
    read_failures,
    read_info,
    shard_files,
)
from vidtempo.processing.extract import collect_videos
from vidtempo.synthetic.video_writer import write_video

TINY_RESNET = dict(embedding_size=8, hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], layer_type="basic")
# (file, fps, seconds): 1-fps sampling gives ceil(frames / round(fps)) frames
VIDEOS = [("a.mp4", 10, 3.0), ("b.webm", 25, 2.0), ("c.mp4", 29.97, 2.5), ("sub/d.mp4", 30, 4.0)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    rng = np.random.default_rng(0)
    for name, fps, seconds in VIDEOS:
        count = int(round(fps * seconds))
        base = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # smooth content: a few big blocks per video
        frames = np.repeat(np.repeat(base, 8, 0), 8, 1)[None].repeat(count, 0)
        frames = (
            (frames.astype(np.int16) + np.arange(count)[:, None, None, None]).clip(0, 255).astype(np.uint8)
        )
        write_video(root / "videos" / name, frames, fps)
    (root / "videos" / "notavideo.mp4").write_text("plain text")
    write_video(root / "videos" / "tooshort.mp4", np.zeros((4, 48, 64, 3), np.uint8), 10)
    model = FrameDescriptorModel(
        FrameDescriptorConfig(backbone_config=ResNetConfig(**TINY_RESNET), pooling="imac")
    )
    model.eval().save_pretrained(root / "model")
    TCAImageProcessor(shortest_edge=64, crop_size=56).save_pretrained(root / "model")
    return root


def reference_descriptors(workspace: Path, model_dir: Path) -> dict[str, np.ndarray]:
    """Per video, independently of the extraction pipeline: read_video -> processor -> model, one video at a time."""
    model = FrameDescriptorModel.from_pretrained(model_dir).eval()
    processor = TCAImageProcessor.from_pretrained(model_dir)
    out = {}
    for name, _, _ in VIDEOS:
        clip = read_video(workspace / "videos" / name, backend="pyav")
        with torch.no_grad():
            out[Path(name).stem] = model(processor(clip.frames)["pixel_values"]).frame_embeds.numpy()
    return out


def test_collect_videos(workspace, tmp_path):
    items = dict(collect_videos([workspace / "videos"]))
    assert sorted(items) == ["a", "b", "c", "d", "notavideo", "tooshort"]
    assert items["d"].endswith("sub/d.mp4")
    (tmp_path / "x").mkdir()
    write_video(tmp_path / "x" / "a.mp4", np.zeros((10, 16, 16, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="duplicate video id 'a'"):
        collect_videos([workspace / "videos", tmp_path / "x"])


def test_extract_folder_with_bad_files_then_resume(workspace, tmp_path, capsys):
    out = tmp_path / "desc"
    args = [
        str(workspace / "videos"),
        "--out",
        str(out),
        "--model",
        str(workspace / "model"),
        "--batch-size",
        "5",
        "--num-workers",
        "2",
        "--shard-size",
        "2",
        "--no-progress",
        "--seed",
        "1",
    ]
    assert main(args) == 0
    info = read_info(out)
    assert info["dim"] == 48 and info["pooling"] == "imac"
    failures = {row["video_id"]: row["error"] for row in read_failures(out)}
    assert set(failures) == {"notavideo", "tooshort"}
    assert "cannot open" in failures["notavideo"] and "notavideo.mp4" in failures["notavideo"]
    assert "shorter than 1" in failures["tooshort"]

    expected = reference_descriptors(workspace, workspace / "model")
    rows = {vid: (feats, stamps) for vid, feats, stamps in iter_descriptors(out)}
    assert sorted(rows) == ["a", "b", "c", "d"]
    for name, fps, seconds in VIDEOS:
        vid = Path(name).stem
        step = round(fps)
        count = int(round(fps * seconds))
        feats, stamps = rows[vid]
        np.testing.assert_allclose(stamps, np.arange(0, count, step) / fps, rtol=1e-6)
        np.testing.assert_allclose(feats.astype(np.float32), expected[vid], atol=2e-3)  # float16 storage
    dataset = load_descriptor_dataset(out)
    row = dataset.filter(lambda r: r["video_id"] == "d")[0]
    assert row["num_frames"] == 4 and row["path"].endswith("d.mp4") and row["fps"] == pytest.approx(30)

    # resume: finished shards are kept byte-for-byte, done and failed ids are skipped, new videos are added
    args[args.index("--num-workers") + 1] = "0"  # in-process decoding from here on (same code path, faster)
    before = {shard.name: shard.read_bytes() for shard in shard_files(out)}
    write_video(workspace / "videos" / "e.mp4", np.full((20, 48, 64, 3), 77, np.uint8), 10)
    try:
        assert main(args) == 0
    finally:
        os.remove(workspace / "videos" / "e.mp4")
    after = {shard.name: shard.read_bytes() for shard in shard_files(out)}
    assert all(after[name] == data for name, data in before.items())
    assert len(after) == len(before) + 1
    assert sorted(existing_ids(out)) == ["a", "b", "c", "d", "e"]
    assert len(read_failures(out)) == 2  # the bad files were not retried
    assert main(args + ["--retry-failed"]) == 0
    assert len(read_failures(out)) == 4  # retried and failed again, still reported
    # resuming with other settings would mix descriptors: refused, the difference named
    assert main(args + ["--num-frames", "3"]) == 1
    assert "info.json: folder was extracted with fps=1.0, this run uses None" in capsys.readouterr().err
    # ... and so would another model: a copy of the same weights elsewhere is fine (content hash), others not
    import shutil

    copy = tmp_path / "same_model_elsewhere"
    shutil.copytree(workspace / "model", copy)
    args[args.index("--model") + 1] = str(copy)
    assert main(args) == 0
    other = FrameDescriptorModel(
        FrameDescriptorConfig(backbone_config=ResNetConfig(**TINY_RESNET), pooling="imac")
    )
    other.eval().save_pretrained(tmp_path / "other_model")
    TCAImageProcessor(shortest_edge=64, crop_size=56).save_pretrained(tmp_path / "other_model")
    args[args.index("--model") + 1] = str(tmp_path / "other_model")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "descriptors of two models cannot share a folder" in err and "other_model" in err
    assert str((workspace / "model").resolve()) in err  # recorded as an absolute path
    assert main(args + ["--force"]) == 0


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--fps", "0"),
        ("--fps", "-1"),
        ("--num-frames", "0"),
        ("--batch-size", "0"),
        ("--shard-size", "0"),
        ("--num-workers", "-1"),
    ],
)
def test_bad_flag_values_are_refused_before_any_work(workspace, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                str(workspace / "videos"),
                "--out",
                str(tmp_path / "out"),
                "--model",
                str(workspace / "model"),
                flag,
                value,
            ]
        )
    assert exit_info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _fit_pca(workspace, raw, tmp_path, dim: int, *extra: str) -> int:
    """`vidtempo-extract fit-pca RAW --model M --dim DIM --save-model TMP/white_model EXTRA...`."""
    model = str(workspace / "model")
    return main(
        [
            "fit-pca",
            str(raw),
            "--model",
            model,
            "--dim",
            str(dim),
            "--save-model",
            str(tmp_path / "white_model"),
            *extra,
        ]
    )


def test_fit_pca_step_whitens_folder_and_model(workspace, tmp_path):
    raw = tmp_path / "raw"
    common = ["--model", str(workspace / "model"), "--num-workers", "0", "--no-progress"]
    assert main([str(workspace / "videos" / n) for n, _, _ in VIDEOS] + ["--out", str(raw)] + common) == 0
    assert _fit_pca(workspace, raw, tmp_path, 6, "--whiten-to", str(tmp_path / "white"), "--no-progress") == 0
    frames = np.concatenate([f for _, f, _ in iter_descriptors(raw)]).astype(np.float64)
    mean = frames.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(frames, rowvar=False))
    top = vectors[:, ::-1][:, :6]
    projected = (frames - mean) @ top / np.sqrt(np.maximum(values[::-1][:6], 1e-9))
    projected /= np.linalg.norm(projected, axis=1, keepdims=True)
    whitened = np.concatenate([f for _, f, _ in iter_descriptors(tmp_path / "white")]).astype(np.float64)
    assert whitened.shape == (frames.shape[0], 6)
    np.testing.assert_allclose(np.abs(whitened), np.abs(projected), atol=3e-3)  # eigenvector signs are free
    # the whitened model applied to the videos gives the whitened folder (up to float16 storage)
    direct = tmp_path / "direct"
    common[1] = str(tmp_path / "white_model")
    assert main([str(workspace / "videos" / n) for n, _, _ in VIDEOS] + ["--out", str(direct)] + common) == 0
    got = dict((vid, f) for vid, f, _ in iter_descriptors(direct))
    for vid, feats, _ in iter_descriptors(tmp_path / "white"):
        np.testing.assert_allclose(got[vid].astype(np.float32), feats.astype(np.float32), atol=5e-3)
    # the whitened collection grows with its own model
    info = read_info(tmp_path / "white")
    assert info["pca_dim"] == 6 and info["model"] == str((tmp_path / "white_model").resolve())
    new = tmp_path / "new"
    write_video(new / "e.mp4", np.full((20, 48, 64, 3), 77, np.uint8), 10)
    assert main([str(new / "e.mp4"), "--out", str(tmp_path / "white"), *common]) == 0
    assert "e" in existing_ids(tmp_path / "white")


def test_fit_pca_refuses_more_components_than_frames(workspace, tmp_path, capsys):
    raw = tmp_path / "raw"
    common = ["--model", str(workspace / "model"), "--num-workers", "0", "--no-progress"]
    assert main([str(workspace / "videos" / "a.mp4"), "--out", str(raw), *common]) == 0  # 3 frames
    assert _fit_pca(workspace, raw, tmp_path, 3) == 1
    err = capsys.readouterr().err
    assert "3 frames were fitted, so at most 2 PCA components" in err and "--dim 2" in err
    assert not (tmp_path / "white_model").exists()


def test_help_documents_both_steps(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "fit-pca" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit-pca", "--help"])
    assert "--whiten-to" in capsys.readouterr().out


@pytest.mark.slow
def test_two_processes_with_torchrun(workspace, tmp_path, free_port):
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port),
        "-m",
        "vidtempo.processing.extract",
        str(workspace / "videos"),
        "--out",
        str(out),
        "--model",
        str(workspace / "model"),
        "--cpu",
        "--num-workers",
        "0",
        "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    prefixes = {shard.name.split("-")[0] for shard in shard_files(out)}
    assert prefixes == {"p0", "p1"}  # both processes wrote their share
    rows = list(iter_descriptors(out))
    assert sorted(vid for vid, _, _ in rows) == ["a", "b", "c", "d"]  # each video exactly once
    assert {row["video_id"] for row in read_failures(out)} == {"notavideo", "tooshort"}
    expected = reference_descriptors(workspace, workspace / "model")
    for vid, feats, _ in rows:
        np.testing.assert_allclose(feats.astype(np.float32), expected[vid], atol=2e-3)


def test_a_torn_failure_log_line_is_skipped_and_the_next_row_starts_a_new_line(tmp_path):
    from vidtempo.processing.descriptor_store import FAILED_FILE, append_failure

    append_failure(tmp_path, "a", "/v/a.mp4", "cannot open")
    with open(tmp_path / FAILED_FILE, "a") as handle:  # what a job killed mid-append leaves behind
        handle.write('{"video_id": "b", "pa')
    with pytest.warns(UserWarning, match=r"failed.jsonl, line 2: not a JSON object"):
        assert [row["video_id"] for row in read_failures(tmp_path)] == [
            "a"
        ]  # b is not failed: it will be retried
    append_failure(tmp_path, "c", "/v/c.mp4", "too short")
    with pytest.warns(UserWarning, match="line 2"):
        rows = read_failures(tmp_path)
    assert [(row["video_id"], row["error"]) for row in rows] == [("a", "cannot open"), ("c", "too short")]


@pytest.mark.slow
def test_extraction_killed_mid_run_resumes_to_the_same_descriptors(workspace, tmp_path):
    """SIGKILL `vidtempo-extract` once its first shard exists; resuming gives every video once, as a clean run does."""
    import signal
    import time

    videos = tmp_path / "videos"
    rng = np.random.default_rng(1)
    for i in range(40):
        frames = rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8).repeat(20, 0)
        write_video(videos / f"v{i:02d}.mp4", frames, 10)
    (videos / "broken.mp4").write_text("not a video")
    args = [
        str(videos),
        "--model",
        str(workspace / "model"),
        "--num-workers",
        "0",
        "--shard-size",
        "1",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    assert main(args + ["--out", str(tmp_path / "clean")]) == 0

    out = tmp_path / "killed"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(torch.get_num_threads()))
    process = subprocess.Popen(
        [sys.executable, "-m", "vidtempo.processing.extract", *args, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not shard_files(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "extraction ended before it could be killed"
    done_when_killed = existing_ids(out)
    assert 1 <= len(done_when_killed) < 40
    (out / "data" / ".p0-0123456789ab.parquet.tmp").write_bytes(b"PAR1")  # as if killed mid-write

    assert main(args + ["--out", str(out)]) == 0
    clean = {vid: feats for vid, feats, _ in iter_descriptors(tmp_path / "clean")}
    resumed = [(vid, feats) for vid, feats, _ in iter_descriptors(out)]
    assert sorted(vid for vid, _ in resumed) == sorted(clean)  # every video exactly once
    for vid, feats in resumed:
        np.testing.assert_array_equal(feats, clean[vid])
    assert [row["video_id"] for row in read_failures(out)] == ["broken"]
    assert not list(out.rglob(".*tmp*"))  # no temporary shard left behind


@pytest.mark.slow
def test_a_video_that_crashes_its_decoder_is_recorded_and_the_rest_are_extracted(
    workspace, tmp_path, monkeypatch
):
    import signal

    import vidtempo.processing.extract as extract_module

    videos = tmp_path / "videos"
    rng = np.random.default_rng(2)
    for i in range(8):
        write_video(
            videos / f"v{i}.mp4", rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8).repeat(20, 0), 10
        )
    write_video(videos / "v3_segfaults.mp4", np.zeros((20, 48, 64, 3), np.uint8), 10)
    real = extract_module.iter_video_chunks

    def decoder_that_segfaults_on_one_file(path, **kwargs):  # runs in the (forked) worker processes
        if "segfaults" in str(path):
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(path, **kwargs)

    monkeypatch.setattr(extract_module, "iter_video_chunks", decoder_that_segfaults_on_one_file)
    args = [
        str(videos),
        "--model",
        str(workspace / "model"),
        "--shard-size",
        "3",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    assert main([*args, "--num-workers", "2", "--out", str(tmp_path / "out")]) == 0
    failures = read_failures(tmp_path / "out")
    assert [row["video_id"] for row in failures] == ["v3_segfaults"]
    assert "killed the worker process" in failures[0]["error"] and "v3_segfaults.mp4" in failures[0]["error"]
    rows = {vid: feats for vid, feats, _ in iter_descriptors(tmp_path / "out")}
    assert sorted(rows) == [f"v{i}" for i in range(8)]  # every other video, each once

    os.remove(videos / "v3_segfaults.mp4")  # reference: the same videos decoded in this process
    assert main([*args, "--num-workers", "0", "--out", str(tmp_path / "reference")]) == 0
    for vid, feats, _ in iter_descriptors(tmp_path / "reference"):
        np.testing.assert_array_equal(rows[vid], feats)


NUM_SIGNAL_VIDEOS = 200  # enough that a fast, quiet machine is still extracting when the signal comes


def _start_extraction(workspace: Path, tmp_path: Path, num_videos: int = NUM_SIGNAL_VIDEOS):
    import time

    import psutil

    videos = tmp_path / "videos"
    rng = np.random.default_rng(3)
    for i in range(num_videos):
        write_video(
            videos / f"v{i:03d}.mp4", rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8).repeat(30, 0), 10
        )
    out = tmp_path / "out"
    # shards of 64 videos, but a commit at least every 0.3 s: a kill loses at most that much work
    args = [
        str(videos),
        "--model",
        str(workspace / "model"),
        "--num-workers",
        "2",
        "--shard-size",
        "64",
        "--commit-seconds",
        "0.3",
        "--batch-size",
        "4",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "vidtempo.processing.extract", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    workers: list = []
    while process.poll() is None and time.monotonic() < deadline:
        workers = psutil.Process(process.pid).children(recursive=True)
        if len(workers) >= 2 and shard_files(out):
            break
        time.sleep(0.01)
    assert process.poll() is None, "extraction ended before it could be signalled"
    assert len(workers) >= 2 and len(shard_files(out)) >= 1  # committed well before 64 videos were done
    return process, workers, out, args


def _gone(workers, timeout: float = 15.0) -> bool:
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_commit_finished_videos_and_stop_the_workers(workspace, tmp_path, signum):
    import signal

    process, workers, out, args = _start_extraction(workspace, tmp_path)
    process.send_signal(getattr(signal, signum))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + getattr(signal, signum), err
    assert f"interrupted by {signum}" in err and "run the same command again to resume" in err
    assert _gone(workers), "decoder workers outlived the interrupted job"
    committed = existing_ids(out)
    assert f"{len(committed)} videos are committed" in err
    assert 1 <= len(committed) < NUM_SIGNAL_VIDEOS
    assert main(args) == 0  # resume: every video exactly once
    ids = [vid for vid, _, _ in iter_descriptors(out)]
    assert sorted(ids) == [f"v{i:03d}" for i in range(NUM_SIGNAL_VIDEOS)]


@pytest.mark.slow
def test_after_sigkill_no_worker_outlives_its_parent(workspace, tmp_path):
    import signal

    process, workers, out, _ = _start_extraction(workspace, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert _gone(workers), "decoder workers outlived a SIGKILLed parent"


def test_min_duration_accepts_short_videos_and_is_recorded(workspace, tmp_path, capsys):
    """`tooshort.mp4` is 0.4 s: refused by default (the folder says min_duration 1.0), accepted with
    `--min-duration 0.25`, and described exactly as an independent read -> processor -> model pass gives."""
    common = ["--model", str(workspace / "model"), "--num-workers", "0", "--no-progress"]
    short = str(workspace / "videos" / "tooshort.mp4")
    assert main([short, "--output", str(tmp_path / "default"), *common]) == 0
    assert [row["video_id"] for row in read_failures(tmp_path / "default")] == ["tooshort"]
    assert "shorter than 1.0 s" in read_failures(tmp_path / "default")[0]["error"]
    assert read_info(tmp_path / "default")["min_duration"] == 1.0
    assert main([short, "--output", str(tmp_path / "short"), "--min-duration", "0.25", *common]) == 0
    assert read_failures(tmp_path / "short") == []
    assert read_info(tmp_path / "short")["min_duration"] == 0.25
    (row,) = list(iter_descriptors(tmp_path / "short"))
    model = FrameDescriptorModel.from_pretrained(workspace / "model").eval()
    processor = TCAImageProcessor.from_pretrained(workspace / "model")
    clip = read_video(short, backend="pyav", min_duration=0.25)
    with torch.no_grad():
        expected = model(processor(clip.frames)["pixel_values"]).frame_embeds.numpy()
    assert row[0] == "tooshort" and row[1].shape == expected.shape
    np.testing.assert_allclose(row[1].astype(np.float32), expected, atol=2e-3)
    assert "extracted 1 videos" in capsys.readouterr().out.splitlines()[-1]


def test_output_flag_and_its_hidden_out_alias_write_the_same_folder(workspace, tmp_path, capsys):
    common = [str(workspace / "videos" / "a.mp4"), "--model", str(workspace / "model"), "--num-workers", "0"]
    assert main([*common, "--output", str(tmp_path / "new"), "--no-progress"]) == 0
    assert main([*common, "--out", str(tmp_path / "old"), "--no-progress"]) == 0
    new, old = (dict((v, f) for v, f, _ in iter_descriptors(tmp_path / n)) for n in ("new", "old"))
    assert list(new) == list(old) == ["a"]
    np.testing.assert_array_equal(new["a"], old["a"])
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert "--output" in help_text and "--out " not in help_text and "--out," not in help_text


def test_fit_pca_returns_data_and_the_cli_prints_one_summary(workspace, tmp_path, capsys):
    from vidtempo.processing.extract import fit_pca

    raw = tmp_path / "raw"
    videos = [str(workspace / "videos" / n) for n, _, _ in VIDEOS]
    assert main([*videos, "--output", str(raw), "--model", str(workspace / "model"), "--no-progress"]) == 0
    result = fit_pca(str(raw), str(workspace / "model"), 4, str(tmp_path / "m1"), progress=False)
    assert result == {"model": str(tmp_path / "m1"), "descriptors": None, "pca_dim": 4, "feature_dim": 48}
    assert FrameDescriptorConfig.from_pretrained(tmp_path / "m1").pca_dim == 4
    capsys.readouterr()
    args = ["fit-pca", str(raw), "--model", str(workspace / "model"), "--dim", "4"]
    assert (
        main(
            [*args, "--save-model", str(tmp_path / "m2"), "--whiten-to", str(tmp_path / "w"), "--no-progress"]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"fitted a 4-d PCA of 48-d descriptors; saved the whitened model to {tmp_path / 'm2'}, "
        f"descriptors to {tmp_path / 'w'}"
    ]


@pytest.mark.slow
def test_two_nodes_with_node_local_outputs_merge_into_one_store_and_one_index(workspace, tmp_path, free_port):
    """The cluster recipe (docs/search.md): torchrun across 2 "nodes" (2 gloo ranks, one per node, rendezvous
    over TCP), each writing to its own node-local folder; `vidtempo-extract merge` then `vidtempo-index`."""
    from vidtempo.cli.index import index_main
    from vidtempo.search.index import VideoIndex

    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    nodes = []
    for rank in range(2):
        cmd = [str(torchrun), "--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1"]
        cmd += [
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port),
            "-m",
            "vidtempo.processing.extract",
        ]
        cmd += [
            str(workspace / "videos"),
            "--out",
            str(tmp_path / f"node{rank}"),
            "--model",
            str(workspace / "model"),
        ]
        cmd += ["--cpu", "--num-workers", "0", "--no-progress"]
        nodes.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for node in nodes:
        _, err = node.communicate(timeout=300)
        assert node.returncode == 0, err[-3000:]
    parts = [tmp_path / "node0", tmp_path / "node1"]
    assert all(shard_files(part) for part in parts)  # each node extracted its share locally
    assert main(["merge", str(tmp_path / "merged"), *map(str, parts)]) == 0
    rows = list(iter_descriptors(tmp_path / "merged"))
    assert sorted(vid for vid, _, _ in rows) == ["a", "b", "c", "d"]  # each video exactly once
    assert {row["video_id"] for row in read_failures(tmp_path / "merged")} == {"notavideo", "tooshort"}
    expected = reference_descriptors(workspace, workspace / "model")
    for vid, feats, _ in rows:
        np.testing.assert_allclose(feats.astype(np.float32), expected[vid], atol=2e-3)
    assert (
        index_main(
            ["--features", str(tmp_path / "merged"), "--index", str(tmp_path / "idx"), "--no-progress"]
        )
        == 0
    )
    assert sorted(VideoIndex.load(tmp_path / "idx").ids) == ["a", "b", "c", "d"]
    other = tmp_path / "other"  # a part extracted with other settings is refused, the key named
    shutil.copytree(parts[0], other)
    info = json.loads((other / "info.json").read_text())
    (other / "info.json").write_text(json.dumps({**info, "fps": 2.0}))
    assert main(["merge", str(tmp_path / "merged2"), str(parts[1]), str(other)]) == 1
