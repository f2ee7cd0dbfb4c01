"""`python -m vidtempo.evaluation.locvtp_eval`: retrieval + grounding JSON on the embedded captioned set,
checked against an independent computation (model forward + a naive rank loop), feature export, and bad
videos skipped and reported."""

import json
import math
import re

import numpy as np
import pytest
import torch

from vidtempo.cli.eval_locvtp import main
from vidtempo.evaluation.grounding import load_clip_features, read_charades_sta
from vidtempo.processing.captions import load_caption_dataset
from vidtempo.processing.processing_locvtp import LocVTPProcessor
from vidtempo.processing.tadn_export import uniform_clip_features
from vidtempo.processing.video_reader import decode_segment
from vidtempo.synthetic.captions import generate_captioned_videos
from vidtempo.training.train_locvtp import LocVTPTrainConfig, build_model, build_processor


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = generate_captioned_videos(
        root / "data",
        num_videos=6,
        seed=1,
        size=(32, 32),
        fps=8.0,
        duration=3.0,
        test_fraction=0.5,
        progress=False,
    )
    config = LocVTPTrainConfig.from_yaml(
        __import__("pathlib").Path(__file__).resolve().parents[2] / "training/configs/locvtp_tiny.yaml",
        captions=str(data["captions.csv"]),
        output_dir=str(root / "run"),
    )
    torch.manual_seed(0)
    processor = build_processor(config, load_caption_dataset(data["captions.csv"])["caption"])
    model = build_model(config, processor)
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    return root, data


def test_eval_command_matches_independent_computation(saved, tmp_path):
    root, data = saved
    # one test video is broken: it is reported and its queries left out
    test_rows = list(load_caption_dataset(data["captions.csv"], split="test"))
    broken_id = test_rows[-1]["video_id"]
    captions = tmp_path / "captions.csv"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    text = data["captions.csv"].read_text().replace(test_rows[-1]["video_path"], str(broken))
    captions.write_text(text)
    out = tmp_path / "results.json"
    code = main(
        [
            "--model",
            str(root / "model"),
            "--captions",
            str(captions),
            "--split",
            "test",
            "--grounding",
            str(data["charades_sta_test.txt"]),
            "--export-features",
            str(tmp_path / "feats"),
            "--export-2dtan",
            str(tmp_path / "tadn"),
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    results = json.loads(out.read_text())
    good = [r for r in test_rows if r["video_id"] != broken_id]
    queries = read_charades_sta(data["charades_sta_test.txt"])
    assert results["retrieval"]["num_pairs"] == len(good)
    assert [f["video_id"] for f in results["retrieval"]["failed"]] == [broken_id] * (
        len(test_rows) - len(good)
    )
    assert results["grounding"]["num_queries"] == sum(q["video_id"] != broken_id for q in queries)
    assert results["grounding"]["failed"][0]["video_id"] == broken_id

    # independent: model forward on processor outputs, then a naive rank loop (optimistic ties)
    from vidtempo.modeling import LocVTPModel

    model = LocVTPModel.from_pretrained(root / "model").eval()
    processor = LocVTPProcessor.from_pretrained(root / "model")
    videos, texts = [], []
    with torch.no_grad():
        for row in good:
            frames, fps = decode_segment(row["video_path"], row["start"], row["end"])
            inputs = processor(videos=[frames], text=[row["caption"]], mode="inference", fps=[fps])
            output = model(
                **{k: inputs[k] for k in ("input_ids", "attention_mask", "pixel_values", "clip_mask")}
            )
            videos.append(output.video_embeds[0].double().numpy())
            texts.append(output.text_embeds[0].double().numpy())
    sim = np.stack(texts) @ np.stack(videos).T
    ranks = [sum(sim[i, j] > sim[i, i] for j in range(len(sim))) for i in range(len(sim))]
    assert results["retrieval"]["t2v"]["R@1"] == pytest.approx(100 * np.mean(np.array(ranks) < 1), abs=1e-6)
    assert results["retrieval"]["t2v"]["MnR"] == pytest.approx(np.mean(ranks) + 1, abs=1e-6)

    # exported clip features: consecutive clips of frames_per_clip frames, times in seconds
    video_id = good[0]["video_id"]
    features, times = load_clip_features(tmp_path / "feats" / f"{video_id}.npz")
    frames, fps = decode_segment(good[0]["video_path"])
    fpc = processor.frames_per_clip
    assert features.shape == (math.ceil(len(frames) / fpc), model.config.projection_dim)
    np.testing.assert_allclose(times[:, 0], np.arange(len(features)) * fpc / fps)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    for key in ("R@1,IoU=0.3", "R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "mIoU"):
        assert 0 <= results["grounding"][key] <= 100

    # the reference rows: the whole video scored independently (duration = frames / fps of each video)
    reference = results["grounding"]["reference"]
    assert set(reference) == {"whole_video", "random_window", "untrained_model"}
    kept = [q for q in queries if q["video_id"] != broken_id]
    durations = {}
    for q in kept:
        path = next(r["video_path"] for r in good if r["video_id"] == q["video_id"])
        frames, fps = decode_segment(path)
        durations[q["video_id"]] = len(frames) / fps
    ious = []
    for q in kept:
        whole = (0.0, durations[q["video_id"]])
        inter = max(0.0, min(whole[1], q["end"]) - max(whole[0], q["start"]))
        ious.append(inter / (whole[1] - whole[0] + q["end"] - q["start"] - inter))
    assert reference["whole_video"]["mIoU"] == pytest.approx(100 * np.mean(ious), abs=1e-6)
    assert results["grounding"]["score"] == "contrast"

    # the 2D-TAN file: one HDF5 (Charades-STA layout f[vid] [num_clips, D]) + durations, clips uniform
    import h5py

    with h5py.File(tmp_path / "tadn" / "locvtp_features.hdf5", "r") as f:
        assert sorted(f) == sorted(durations)
        assert f[video_id][:].shape == features.shape
    np.testing.assert_allclose(
        h5py.File(tmp_path / "tadn" / "locvtp_features.hdf5", "r")[video_id][:],
        uniform_clip_features(features, times),
        atol=1e-6,
    )
    assert (tmp_path / "tadn" / "Charades_v1_test.csv").read_text().startswith("id,length\n")


def test_eval_command_reports_missing_inputs(saved, tmp_path, capsys):
    root, _ = saved
    assert main(["--model", str(root / "model"), "--output", str(tmp_path / "r.json")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, values, message",
    [
        ("--frames-per-clip", ["0"], "expected a positive number, got '0'"),
        ("--thresholds", ["0.5", "1.5"], r"must be in \[0, 1\), got \[1.5\]"),
    ],
)
def test_bad_flag_values_are_refused_before_any_work(tmp_path, capsys, flag, values, message):
    argv = [
        "--model",
        str(tmp_path / "no-model"),
        "--output",
        str(tmp_path / "r.json"),
        "--grounding",
        "g.txt",
    ]
    try:
        code = main([*argv, flag, *values])
    except SystemExit as exit_info:  # argparse's own type check
        code = exit_info.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "r.json").exists()
