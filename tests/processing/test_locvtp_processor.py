"""LocVTPProcessor: clip sampling, frame preprocessing, tokenizer, save/load and trust_remote_code."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from isolation import BLOCK_VIDTEMPO
from transformers import AutoImageProcessor, AutoProcessor, DistilBertTokenizerFast

import vidtempo.processing  # noqa: F401  (Auto registration)
from vidtempo.modeling import LocVTPConfig, LocVTPModel
from vidtempo.processing.image_processing_tca import TCAImageProcessor
from vidtempo.processing.processing_locvtp import (
    KINETICS_MEAN,
    KINETICS_STD,
    LocVTPProcessor,
    default_image_processor,
    inference_clip_indices,
    training_clip_indices,
)
from vidtempo.synthetic.video_writer import write_video

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "man",
    "is",
    "cooking",
    "dog",
    "runs",
    "the",
    "in",
    "park",
]


@pytest.fixture
def tokenizer(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    return DistilBertTokenizerFast(vocab=str(vocab))


@pytest.fixture
def processor(tokenizer):
    image_processor = default_image_processor(size=16)
    return LocVTPProcessor(
        image_processor=image_processor, tokenizer=tokenizer, num_clips=3, frames_per_clip=4
    )


def test_training_clips_are_equidistant_by_hand():
    # 100 frames, 3 clips of 4: starts at 0, 48, 96 (last clip ends on the last frame)
    assert training_clip_indices(100, 3, 4).tolist() == [[0, 1, 2, 3], [48, 49, 50, 51], [96, 97, 98, 99]]
    # stride 2: span 7, starts linspace(0, 93, 4) = 0, 31, 62, 93
    idx = training_clip_indices(100, 4, 4, frame_stride=2)
    assert idx[:, 0].tolist() == [0, 31, 62, 93] and idx[1].tolist() == [31, 33, 35, 37]
    # shorter than one clip: every clip starts at 0 and repeats the last frame
    assert training_clip_indices(3, 2, 4).tolist() == [[0, 1, 2, 2], [0, 1, 2, 2]]
    with pytest.raises(ValueError, match="no frames"):
        training_clip_indices(0, 2, 4)


def test_inference_clips_are_consecutive_and_cover_the_video():
    indices, ranges = inference_clip_indices(10, 4)
    assert indices.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
    assert ranges.tolist() == [[0, 4], [4, 8], [8, 10]]
    for n in range(1, 40):
        idx, rng = inference_clip_indices(n, 16)
        covered = sorted({int(i) for row in idx for i in row})
        assert covered == list(range(n)) and rng[-1, 1] == n and len(idx) == -(-n // 16)


def test_default_frame_processing_matches_float64_reference(tokenizer):
    """LocVTP reuses the TCA frame processor with TimeSformer's statistics: checked by hand in float64."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 20, 26, 3), dtype=np.uint8)
    proc = default_image_processor(size=16)
    assert (proc.image_mean, proc.image_std) == (list(KINETICS_MEAN), list(KINETICS_STD))
    assert type(LocVTPProcessor(tokenizer=tokenizer).image_processor) is TCAImageProcessor
    got = proc(frames[:, 2:18, 5:21])["pixel_values"]  # already 16 x 16: no resize, no crop
    assert got.shape == (2, 3, 16, 16) and got.dtype == torch.float32
    ref = np.empty((2, 3, 16, 16))
    for n in range(2):
        for c in range(3):
            for i in range(16):
                for j in range(16):
                    ref[n, c, i, j] = (frames[n, 2 + i, 5 + j, c] / 255.0 - 0.45) / 0.225
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)
    # 20 x 26 -> shorter side 16 (16 x 21), centre crop 16 x 16; a constant frame stays constant
    flat = np.full((1, 20, 26, 3), 200, dtype=np.uint8)
    torch.testing.assert_close(
        proc(flat)["pixel_values"], torch.full((1, 3, 16, 16), (200 / 255 - 0.45) / 0.225)
    )


def test_processor_outputs_and_model_forward(processor, tokenizer):
    rng = np.random.default_rng(1)
    long, short = (
        rng.integers(0, 256, (20, 18, 24, 3), dtype=np.uint8),
        rng.integers(0, 256, (6, 18, 24, 3), dtype=np.uint8),
    )
    out = processor(
        text=["a man is cooking", "the dog runs in the park"],
        videos=[long, short],
        mode="inference",
        fps=[10, 2],
    )
    assert out["pixel_values"].shape == (2, 5, 4, 3, 16, 16)
    assert out["clip_mask"].tolist() == [[1] * 5, [1, 1, 0, 0, 0]]
    torch.testing.assert_close(
        out["clip_times"][0, :, 0], torch.tensor([0.0, 0.4, 0.8, 1.2, 1.6], dtype=torch.float64)
    )
    torch.testing.assert_close(
        out["clip_times"][1, :2], torch.tensor([[0.0, 2.0], [2.0, 3.0]], dtype=torch.float64)
    )
    # clip 1 of the short video holds frames 4, 5, 5, 5 preprocessed
    expected = processor.image_processor(short[[4, 5, 5, 5]])["pixel_values"]
    torch.testing.assert_close(out["pixel_values"][1, 1], expected)
    assert not out["pixel_values"][1, 2:].any()
    assert out["input_ids"][0].tolist()[:6] == [2, 5, 6, 7, 8, 3]  # [CLS] a man is cooking [SEP]
    assert processor.special_token_ids == [0, 2, 3]

    train = processor(text=["a man is cooking"], videos=[long], mode="train")
    assert train["pixel_values"].shape == (1, 3, 4, 3, 16, 16) and "clip_times" not in train
    assert train["clip_frames"][0].tolist() == [[0, 4], [8, 12], [16, 20]]

    config = LocVTPConfig(
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                           image_size=16, patch_size=8, num_frames=4),
        text_config=dict(vocab_size=len(WORDS), dim=16, n_layers=1, n_heads=2, hidden_dim=24),
        projection_dim=8, frames_per_clip=4, special_token_ids=processor.special_token_ids,
    )  # fmt: skip
    model_out = LocVTPModel(config).eval()(**out, return_loss=True)
    assert model_out.word_mask[0].sum() == 4 and model_out.word_mask[1].sum() == 6
    assert torch.isfinite(model_out.loss)
    with pytest.raises(ValueError, match="mode must be 'train' or 'inference'"):
        processor(videos=[long], mode="test")


def test_processor_decodes_video_paths(processor, tmp_path):
    frames = np.zeros((12, 32, 32, 3), dtype=np.uint8)
    frames[:, :, :, 0] = np.arange(12, dtype=np.uint8)[:, None, None] * 20  # red ramp over time
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=6, crf=0)
    out = processor(videos=[str(path)], mode="inference")
    assert out["pixel_values"].shape == (1, 3, 4, 3, 16, 16)
    torch.testing.assert_close(
        out["clip_times"][0], torch.tensor([[0, 4], [4, 8], [8, 12]], dtype=torch.float64) / 6
    )
    # the red channel of the frames follows the ramp (lossy codec: within a few grey levels)
    red = out["pixel_values"][0, :, :, 0].mean(dim=(-1, -2)).flatten() * 0.225 + 0.45
    np.testing.assert_allclose(red.numpy() * 255, np.arange(12) * 20, atol=6)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4: cannot decode video"):
        processor(videos=[str(bad)])


def test_save_load_and_trust_remote_code(processor, tmp_path):
    processor.save_pretrained(tmp_path / "proc")
    assert (tmp_path / "proc" / "processing_locvtp.py").exists()
    local = AutoProcessor.from_pretrained(tmp_path / "proc")
    assert type(local) is LocVTPProcessor and (local.num_clips, local.frames_per_clip) == (3, 4)
    assert type(AutoImageProcessor.from_pretrained(tmp_path / "proc")) is TCAImageProcessor
    video = np.random.default_rng(2).integers(0, 256, (10, 20, 20, 3), dtype=np.uint8)
    expected = processor(text=["a dog"], videos=[video])
    np.save(tmp_path / "video.npy", video)
    torch.save(dict(expected), tmp_path / "expected.pt")
    script = BLOCK_VIDTEMPO + textwrap.dedent(
        f"""
        import numpy as np, torch
        from transformers import AutoProcessor
        proc = AutoProcessor.from_pretrained({str(tmp_path / "proc")!r}, trust_remote_code=True)
        assert type(proc).__module__.startswith("transformers_modules"), type(proc).__module__
        got = proc(text=["a dog"], videos=[np.load({str(tmp_path / "video.npy")!r})])
        expected = torch.load({str(tmp_path / "expected.pt")!r})
        assert set(got) == set(expected), (set(got), set(expected))
        for key in expected:
            torch.testing.assert_close(got[key], expected[key])
        print("REMOTE_OK", type(proc).__name__, type(proc.image_processor).__name__)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE_OK LocVTPProcessor TCAImageProcessor" in result.stdout


def test_jittered_training_clips_stay_in_their_segments_and_vary():
    # 100 frames, 4 clips of 4: start range [0, 96] cut into 4 segments of 24.25 frames
    edges = np.linspace(0, 97, 5)
    plans = set()
    for seed in range(200):
        idx = training_clip_indices(100, 4, 4, generator=torch.Generator().manual_seed(seed))
        starts = idx[:, 0]
        assert ((starts >= np.floor(edges[:-1])) & (starts < edges[1:])).all(), starts
        assert (idx == starts[:, None] + np.arange(4)).all()
        plans.add(tuple(starts.tolist()))
    assert len(plans) > 150  # a new plan almost every draw
    first_clip = [p[0] for p in plans]
    assert min(first_clip) == 0 and max(first_clip) >= 22  # the whole first segment is reachable
    same = training_clip_indices(100, 4, 4, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(
        same, training_clip_indices(100, 4, 4, generator=torch.Generator().manual_seed(3))
    )
    # no generator: the fixed equidistant plan (evaluation)
    assert training_clip_indices(100, 4, 4)[:, 0].tolist() == [0, 32, 64, 96]


def test_fetch_clips_decodes_only_the_plan(processor, tmp_path, monkeypatch):
    from vidtempo.processing import processing_locvtp

    frames = np.zeros((60, 32, 48, 3), dtype=np.uint8)
    frames[..., 0] = (np.arange(60, dtype=np.uint8) * 4)[:, None, None]
    path = tmp_path / "ramp.mp4"
    write_video(path, frames, fps=10, crf=0)
    requested = []
    real = processing_locvtp.read_frames

    def spy(p, indices, short_side=None, backend="auto"):
        requested.append((np.asarray(indices).tolist(), short_side))
        return real(p, indices, short_side, backend)

    monkeypatch.setattr(processing_locvtp, "read_frames", spy)
    planned = processor.fetch_clips(str(path), 1.0, 5.0, mode="train")  # frames 10..49, 3 clips of 4
    assert requested == [([10, 11, 12, 13, 28, 29, 30, 31, 46, 47, 48, 49], 16)]
    assert planned.frames.shape == (12, 16, 24, 3)  # resized while decoding to the shorter side 16
    assert planned.clip_frames.tolist() == [[0, 4], [18, 22], [36, 40]]
    red = planned.frames[planned.clip_indices][..., 0].mean(axis=(-1, -2))
    np.testing.assert_allclose(
        red, np.array([[10, 11, 12, 13], [28, 29, 30, 31], [46, 47, 48, 49]]) * 4, atol=4
    )
    out = processor(videos=[planned], mode="train")
    assert out["pixel_values"].shape == (1, 3, 4, 3, 16, 16)
    torch.testing.assert_close(out["clip_times"][0, 1], torch.tensor([1.8, 2.2], dtype=torch.float64))
    chunks = list(processor.iter_inference_clips(str(path), clips_per_chunk=4))
    assert [len(c.clip_indices) for c in chunks] == [4, 4, 4, 3]  # 60 frames = 15 clips of 4
    assert [r[0] for r in requested[1:]] == [list(range(i, min(i + 16, 60))) for i in range(0, 60, 16)]


def test_word_candidates_are_whole_words_without_punctuation(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join([*WORDS, "jump", "##ing", ".", ",", "2", "##s"]) + "\n")
    processor = LocVTPProcessor(
        tokenizer=DistilBertTokenizerFast(vocab=str(vocab)), num_clips=2, frames_per_clip=2
    )
    out = processor(text=["the dog jumping, 2 dogs.", "a zebra runs"])
    tokens = [processor.tokenizer.convert_ids_to_tokens(row) for row in out["input_ids"].tolist()]
    assert tokens[0] == ["[CLS]", "the", "dog", "jump", "##ing", ",", "2", "dog", "##s", ".", "[SEP]"]
    assert out["word_candidate_mask"][0].tolist() == [0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0]
    assert tokens[1][:5] == ["[CLS]", "a", "[UNK]", "runs", "[SEP]"]
    assert out["word_candidate_mask"][1].tolist() == [0, 1, 1, 1] + [0] * 7  # [UNK] is a word; padding is not
