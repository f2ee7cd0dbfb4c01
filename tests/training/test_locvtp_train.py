"""LocVTP pre-training: data table, augmentation, decoding collator (bad videos skipped), lr schedule,
a tiny pre-training run on the embedded captioned set (loss falls; resume continues the same run), and the
gather-with-gradient losses under a real two-process `torchrun` against one process on the whole batch."""

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vidtempo.cli.train_locvtp import main
from vidtempo.processing.captions import load_caption_dataset
from vidtempo.processing.video_reader import decode_segment
from vidtempo.synthetic.captions import generate_captioned_videos
from vidtempo.training.locvtp_data import VideoAugment, VideoTextCollator
from vidtempo.training.train_locvtp import (
    LocVTPTrainConfig,
    build_caption_tokenizer,
    build_processor,
    step_decay_factor,
    train,
)

CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "locvtp_tiny.yaml"


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    root = tmp_path_factory.mktemp("captioned")
    return generate_captioned_videos(
        root, num_videos=10, seed=3, size=(32, 32), fps=8.0, duration=4.0, progress=False
    )


def test_caption_table_rows_units_and_errors(tmp_path):
    (tmp_path / "clips").mkdir()
    path = tmp_path / "caps.csv"
    path.write_text(
        "video_path,start,end,caption,split\nclips/a.mp4,2,4,second event,train\n"
        "clips/a.mp4,0,2,first event,train\nclips/b.mp4,,,whole video,test\n"
    )
    rows = load_caption_dataset(path)
    assert rows[0] == {
        "video_id": "a",
        "video_path": str(tmp_path / "clips" / "a.mp4"),
        "start": 2.0,
        "end": 4.0,
        "caption": "second event",
    }
    assert rows[2]["start"] == 0.0 and rows[2]["end"] == math.inf
    assert len(load_caption_dataset(path, split="train")) == 2
    videos = load_caption_dataset(path, unit="video")
    assert sorted(videos["caption"]) == ["first event then second event", "whole video"]
    path.write_text("video_path,start,end,caption\nclips/a.mp4,4,2,backwards\n")
    with pytest.raises(ValueError, match="caps.csv row 1.*start < end"):
        load_caption_dataset(path)
    path.write_text("file,caption\nx.mp4,hello\n")
    with pytest.raises(ValueError, match="no video path"):
        load_caption_dataset(path)


def test_augment_against_reference():
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, (3, 12, 16, 3), dtype=np.uint8))
    identity = {"box": (0, 0, 12, 16), "flip": False, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0}
    assert torch.equal(VideoAugment.apply(frames, identity), frames)
    flipped = VideoAugment.apply(frames, identity | {"flip": True})
    assert torch.equal(flipped, frames.flip(2))
    # brightness alone, float64 reference
    out = VideoAugment.apply(frames, identity | {"brightness": 0.8}).numpy()
    ref = np.clip(np.round(frames.numpy().astype(np.float64) * 0.8), 0, 255)
    assert np.abs(out - ref).max() <= 1
    # a crop resized back: the box's pixels are what is seen (a 6x8 crop doubled by bilinear interpolation)
    crop = VideoAugment.apply(frames, identity | {"box": (2, 4, 6, 8)})
    assert crop.shape == frames.shape
    patch = frames[:, 2:8, 4:12].float()
    assert abs(crop.float().mean() - patch.mean()) < 3
    # one draw per video, reproducible from the generator
    aug = VideoAugment()
    a = aug(frames, torch.Generator().manual_seed(5))
    b = aug(frames, torch.Generator().manual_seed(5))
    c = aug(frames, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_step_decay_schedule():
    # the paper: x0.1 at epochs 100 and 160 of 200
    assert [step_decay_factor(s, 200, [0.5, 0.8], 0.1) for s in (0, 99, 100, 159, 160, 199)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )


def test_collator_skips_bad_videos_and_trims_segments(captioned, tmp_path):
    from vidtempo.processing.processing_locvtp import LocVTPProcessor, default_image_processor

    rows = load_caption_dataset(captioned["captions.csv"], split="train")
    processor = LocVTPProcessor(
        image_processor=default_image_processor(32),
        tokenizer=build_caption_tokenizer(rows["caption"], tmp_path / "tok"),
        num_clips=3,
        frames_per_clip=2,
    )
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    items = [
        dict(rows[0]),
        {**rows[1], "video_id": "gone", "video_path": str(tmp_path / "missing.mp4")},
        {**rows[2], "video_id": "broken", "video_path": str(broken)},
    ]
    batch = VideoTextCollator(processor, VideoAugment(), seed=0)(items)
    assert [f["video_id"] for f in batch["failed"]] == ["gone", "broken"]
    assert batch["video_ids"] == [rows[0]["video_id"]]
    assert batch["pixel_values"].shape == (1, 3, 2, 3, 32, 32)
    # the segment: frames with timestamps in [start, end) only (8 fps)
    frames, fps = decode_segment(rows[0]["video_path"], rows[0]["start"], rows[0]["end"])
    assert fps == pytest.approx(8.0)
    assert len(frames) == round((rows[0]["end"] - rows[0]["start"]) * 8)
    assert VideoTextCollator(processor)([items[1]]) == {"failed": [batch["failed"][0]], "video_ids": []}


def test_collator_jitters_the_clip_plan_per_epoch(captioned, tmp_path):
    # training draws new clip offsets every epoch (the same for the same seed, epoch and row); the
    # fixed equidistant plan is what the processor gives without a generator
    from vidtempo.processing.processing_locvtp import LocVTPProcessor, default_image_processor

    rows = load_caption_dataset(captioned["captions.csv"], split="train")
    processor = LocVTPProcessor(
        image_processor=default_image_processor(32),
        tokenizer=build_caption_tokenizer(rows["caption"], tmp_path / "tok"),
        num_clips=3,
        frames_per_clip=2,
    )
    item = {**rows[0], "__index__": 0}
    collator = VideoTextCollator(processor, seed=0)
    plans = []
    for epoch in range(6):
        collator.set_epoch(epoch)
        plans.append(collator([item])["clip_frames"][0].tolist())
    collator.set_epoch(2)
    assert collator([item])["clip_frames"][0].tolist() == plans[2]
    assert len({tuple(map(tuple, p)) for p in plans}) > 2
    num_frames = len(decode_segment(item["video_path"], item["start"], item["end"])[0])
    fixed = processor.sample_clips(num_frames, "train")[1].tolist()
    assert fixed == processor.fetch_clips(item["video_path"], item["start"], item["end"]).clip_frames.tolist()
    edges = np.linspace(0, num_frames - 2 + 1, 4)
    for plan in plans:
        starts = np.array(plan)[:, 0]
        assert ((starts >= np.floor(edges[:-1])) & (starts < edges[1:])).all()


def _config(captioned, out, **overrides):
    # 7 training videos, batch 4 (drop_last): one step per epoch, lr x0.1 after steps 4 and 6 of 8
    settings = dict(batch_size=4, num_clips=4, epochs=8, progress=False) | overrides
    return LocVTPTrainConfig.from_yaml(
        CONFIG, captions=str(captioned["captions.csv"]), output_dir=str(out), **settings
    )


def test_frames_are_normalised_with_the_vision_checkpoints_statistics(captioned, tmp_path):
    vit = tmp_path / "vit"  # as google/vit-base-patch16-224-in21k: mean = std = 0.5
    vit.mkdir()
    (vit / "preprocessor_config.json").write_text(
        json.dumps(
            {"image_processor_type": "ViTImageProcessor", "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
        )
    )
    config = _config(captioned, tmp_path / "out", vision_model=str(vit))
    processor = build_processor(config, ["a man opens a door"])
    assert (processor.image_processor.image_mean, processor.image_processor.image_std) == (
        [0.5] * 3,
        [0.5] * 3,
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.warns(UserWarning, match="bare: no image_mean/image_std"):
        processor = build_processor(dataclasses.replace(config, vision_model=str(bare)), ["a door"])
    assert processor.image_processor.image_mean == [0.45] * 3  # Kinetics, TimeSformer's own
    paper = LocVTPTrainConfig.from_yaml(CONFIG.with_name("locvtp_vitb16.yaml"))
    assert (paper.vision_model, paper.text_model) == (
        "google/vit-base-patch16-224-in21k",
        "distilbert-base-uncased",
    )


@pytest.mark.slow
def test_tiny_pretraining_loss_falls_and_resume_continues(captioned, tmp_path):
    full = train(_config(captioned, tmp_path / "full", max_steps=8, save_every=4))
    losses = full["losses"]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:2]), losses
    parts = full["history"][-1]
    assert parts["loss"] == pytest.approx(
        0.5 * parts["loss_coarse"] + parts["loss_fine"] + parts["loss_temporal"]
    )
    assert (tmp_path / "full" / "model" / "config.json").is_file()
    assert (tmp_path / "full" / "model" / "processor_config.json").is_file()
    # interrupted after step 4 (a checkpoint), resumed with the CLI: the same steps 5..8
    out = tmp_path / "resumed"
    config = _config(captioned, out, max_steps=4, save_every=4)
    train(config)
    assert [r["lr"] for r in full["history"]] == pytest.approx([1e-3] * 3 + [1e-4] * 2 + [1e-5] * 3)
    os.remove(out / "metrics.json")
    yaml_path = tmp_path / "resume.yaml"
    yaml_path.write_text(yaml.safe_dump(dataclasses.asdict(config) | {"max_steps": None, "save_every": 0}))
    code = main(["--config", str(yaml_path), "--max-steps", "8", "--resume", "latest"])
    assert code == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["global_step"] == 8
    np.testing.assert_allclose(resumed["losses"][4:], losses[4:], rtol=1e-4)


@pytest.mark.slow
def test_resume_in_the_middle_of_an_epoch_continues_the_same_run(captioned, tmp_path):
    # batch 2: 3 steps per epoch, so the step-4 checkpoint falls after the first batch of epoch 2 and the resumed
    # run must skip exactly the batches that epoch already used (same shuffle, same per-step loss randomness)
    common = dict(batch_size=2, epochs=3, save_every=4)
    full = train(_config(captioned, tmp_path / "full", max_steps=7, **common))
    assert full["global_step"] == 7 and full["history"][3]["epoch"] == 1
    out = tmp_path / "part"
    train(_config(captioned, out, max_steps=4, **common))
    resumed = train(_config(captioned, out, max_steps=7, resume="latest", **common))
    assert resumed["global_step"] == 7
    assert [r["epoch"] for r in resumed["history"]] == [r["epoch"] for r in full["history"]]
    np.testing.assert_allclose(resumed["losses"][4:], full["losses"][4:], rtol=1e-5)


WORKER = textwrap.dedent("""
    import json, sys
    from types import SimpleNamespace
    import torch, torch.distributed as dist
    import torch.nn.functional as F
    from vidtempo.modeling import LocVTPConfig, LocVTPModel
    from vidtempo.training.train_locvtp import global_losses

    def batch():  # the whole global batch, identical on every process: 4 videos, 5 clips, 7 word slots
        g = torch.Generator().manual_seed(0)
        clips = F.normalize(torch.randn(4, 5, 8, generator=g, dtype=torch.float64), dim=-1)
        words = F.normalize(torch.randn(4, 7, 8, generator=g, dtype=torch.float64), dim=-1)
        clip_mask = torch.ones(4, 5, dtype=torch.long); clip_mask[1, 3:] = 0
        word_mask = torch.zeros(4, 7, dtype=torch.long)
        for i, n in enumerate((5, 3, 2, 4)):
            word_mask[i, :n] = 1
        return clips, words, clip_mask, word_mask

    def losses(model, clips, words, clip_mask, word_mask):
        clips.requires_grad_(True); words.requires_grad_(True)
        video = F.normalize((clips * clip_mask[..., None]).sum(1) / clip_mask.sum(1, keepdim=True), dim=-1)
        text = F.normalize((words * word_mask[..., None]).sum(1) / word_mask.sum(1, keepdim=True), dim=-1)
        out = SimpleNamespace(clip_embeds=clips, word_embeds=words, word_mask=word_mask, video_embeds=video,
                              text_embeds=text)
        loss, parts = global_losses(model, out, clip_mask, torch.Generator().manual_seed(1))
        loss.backward()
        return loss, clips.grad, words.grad

    torch.manual_seed(0)
    config = LocVTPConfig(vision_config=dict(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, image_size=8, patch_size=4, num_frames=2),
        text_config=dict(vocab_size=30, dim=8, n_layers=1, n_heads=2, hidden_dim=8), projection_dim=8,
        delta_max=2, special_token_ids=[0])
    model = LocVTPModel(config).double()
    clips, words, clip_mask, word_mask = batch()
    if len(sys.argv) > 2:  # reference: one process, the concatenated batch
        loss, gc, gw = losses(model, clips, words, clip_mask, word_mask)
        rows = range(4)
    else:
        dist.init_process_group("gloo")
        rank = dist.get_rank()
        rows = range(2 * rank, 2 * rank + 2)
        width = 7 if rank == 0 else 5  # rank 1 has shorter sentences: the gather pads the word axis
        loss, gc, gw = losses(model, clips[rows].clone(), words[rows, :width].clone(), clip_mask[rows],
                              word_mask[rows, :width])
        gw = F.pad(gw, (0, 0, 0, 7 - width))
    out = {"loss": loss.item(), "rows": list(rows), "clip_grad": gc.tolist(), "word_grad": gw.tolist()}
    tag = sys.argv[2] if len(sys.argv) > 2 else str(dist.get_rank())
    json.dump(out, open(sys.argv[1] + f".{tag}.json", "w"))
""")


@pytest.mark.slow
def test_gather_with_grad_two_processes_matches_single_process(tmp_path, free_port):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    prefix = str(tmp_path / "out")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port), str(script), prefix],
        check=True,
        env=env,
        timeout=300,
        capture_output=True,
    )
    subprocess.run([sys.executable, str(script), prefix, "ref"], check=True, env=env, timeout=300)
    ref = json.loads(Path(prefix + ".ref.json").read_text())
    for rank in (0, 1):
        got = json.loads(Path(prefix + f".{rank}.json").read_text())
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-10)
        rows = got["rows"]
        np.testing.assert_allclose(got["clip_grad"], np.asarray(ref["clip_grad"])[rows], atol=1e-10)
        np.testing.assert_allclose(got["word_grad"], np.asarray(ref["word_grad"])[rows], atol=1e-10)
    # the gradient is not trivially zero: every row's clips receive some
    assert np.abs(np.asarray(ref["clip_grad"])).sum(axis=(1, 2)).min() > 0
