"""Published repos answer in plain transformers, in a process that blocks every vidtempo import: each card's
usage snippet runs as written (repo id and video names replaced by local ones), the TCA video pipelines embed an
mp4 and score a near-duplicate pair above an unrelated pair, LocVTP grounding returns moments, and
AutoProcessor + AutoModel reproduce the pipelines' numbers, which equal the library's in this process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from factories import texture_video, tiny_locvtp, tiny_tca_video
from isolation import BLOCK_VIDTEMPO

import vidtempo.processing  # noqa: F401  (registers the processors)
from vidtempo.evaluation.grounding import sliding_windows
from vidtempo.evaluation.locvtp_eval import encode_sentences, encode_video_path
from vidtempo.hub_cards import publish as P
from vidtempo.modeling.grounding_scoring import rank_moments
from vidtempo.synthetic.video_writer import write_video

pytestmark = pytest.mark.slow  # each test starts a fresh interpreter (torch + transformers, ~15 s)


def _usage_snippet(card: str, repo_id: str, folder, videos: dict) -> str:
    """The card's first python block with the repo id and the video names replaced."""
    code = re.search(r"## Usage\n\n```python\n(.*?)```", card, flags=re.S).group(1)
    code = code.replace(f'"{repo_id}"', repr(str(folder)))
    for name, path in videos.items():
        code = code.replace(f'"{name}"', repr(str(path)))
    return code


def _run_isolated(script: str, tmp_path) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": "",
    }
    run = subprocess.run(
        [sys.executable, "-c", BLOCK_VIDTEMPO + script], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    source = texture_video(1, num_frames=30)
    brighter = np.clip(source.astype(int) + 10, 0, 255).astype(np.uint8)  # re-encoded, colour-shifted copy
    return {
        "video.mp4": write_video(root / "a.mp4", source, fps=10),
        "other.mp4": write_video(root / "a_copy.mp4", brighter, fps=10, crf=35),
        "unrelated.mp4": write_video(root / "b.mp4", texture_video(2, num_frames=30), fps=10),
    }


def test_tca_video_repo_embeds_and_compares_videos_without_vidtempo(tmp_path, videos):
    training_videos = [texture_video(seed, num_frames=10) for seed in range(10, 16)]
    model, processor, descriptor, tca = tiny_tca_video(fit_pca_on=training_videos)
    descriptor.save_pretrained(tmp_path / "descriptor_model")  # what extraction + fit-pca leave (the demo's)
    processor.image_processor.save_pretrained(tmp_path / "descriptor_model")
    folder = P.publish_tca_video(
        tca, tmp_path / "descriptor_model", tmp_path / "repo", fps=2.0, model_name="tca-video-tiny",
        base_model="microsoft/resnet-50", results=[{"benchmark": "fivr:synthetic", "metrics": {"DSVR": 0.5}}],
    )  # fmt: skip
    card = (folder / "README.md").read_text()
    assert (
        "pipeline_tag: feature-extraction" in card
        and "ResNet (bottleneck blocks, depths [1, 1, 1, 1]" in card
    )
    assert (
        "base_model: microsoft/resnet-50" in card and "type: synthetic" in card and "not a published" in card
    )
    assert (
        "centre-crops 56 px" in card and "samples 2 frame(s) per second" in card and "ResNet-50" not in card
    )
    snippet = _usage_snippet(card, "<user>/tca-video-tiny", folder, videos)
    script = snippet + textwrap.dedent(
        f"""
        import json
        unrelated = similarity("video.mp4", {str(videos["unrelated.mp4"])!r})
        matrix = similarity("video.mp4", "other.mp4", return_frame_similarity=True)["frame_similarity"]
        features = pipeline("feature-extraction", model={str(folder)!r}, trust_remote_code=True)("video.mp4")
        assert not [m for m in sys.modules if m.split(".")[0] == "vidtempo"]
        json.dump({{
            "pipeline_video": out["video_embeds"].tolist(), "timestamps": out["timestamps"].tolist(),
            "pipeline_frames": out["frame_embeds"].tolist(), "near": scores, "unrelated": unrelated,
            "auto_video": both.video_embeds.tolist(), "auto_cosine": float(cosine),
            "matrix_shape": list(matrix.shape), "features_video": features["video_embeds"].tolist(),
        }}, open("out.json", "w"))
        """
    ).replace('"video.mp4"', repr(str(videos["video.mp4"]))).replace(
        '"other.mp4"', repr(str(videos["other.mp4"]))
    )
    got = _run_isolated(script, tmp_path)

    inputs = processor([str(videos["video.mp4"]), str(videos["other.mp4"])])  # the library, in this process
    with torch.no_grad():
        want = model(pixel_values=inputs["pixel_values"], attention_mask=inputs["attention_mask"])
    np.testing.assert_allclose(got["pipeline_video"], want.video_embeds[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["auto_video"], want.video_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["features_video"], got["pipeline_video"], atol=0)
    np.testing.assert_allclose(got["pipeline_frames"], want.frame_embeds[0].numpy(), atol=1e-5)
    assert got["timestamps"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5] and got["matrix_shape"] == [6, 6]
    assert got["near"]["cosine"] == pytest.approx(got["auto_cosine"], abs=1e-5)
    assert set(got["near"]) == {"cosine", "chamfer", "symmetric_chamfer"}
    for mode in ("cosine", "chamfer", "symmetric_chamfer"):
        assert got["near"][mode] > got["unrelated"][mode], (mode, got["near"], got["unrelated"])


def test_locvtp_repo_grounds_a_sentence_without_vidtempo(tmp_path, videos):
    model, processor = tiny_locvtp(tmp_path)
    saved = tmp_path / "trained"
    model.save_pretrained(saved)
    processor.save_pretrained(saved)
    folder = P.publish_model(
        saved, tmp_path / "repo", model_name="locvtp-tiny"
    )  # keeps processor + tokenizer
    names = set(os.listdir(folder))
    assert {"processor_config.json", "tokenizer.json", "pipeline_locvtp.py", "grounding_scoring.py"} <= names
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: feature-extraction" in card and "vidtempo-eval-locvtp" in card
    snippet = _usage_snippet(card, "<user>/locvtp-tiny", folder, videos)
    script = snippet + textwrap.dedent(
        """
        import json
        tagged = pipeline("feature-extraction", model=FOLDER, trust_remote_code=True)(VIDEO)  # the pipeline_tag
        assert torch.equal(tagged["clip_embeds"], clips["clip_embeds"])
        json.dump({"moments": moments, "clip_times": clips["clip_times"].tolist(),
                   "clip_embeds": clips["clip_embeds"].tolist(), "scores": scores.tolist(),
                   "auto_score": retrieval_score.tolist()}, open("out.json", "w"))
        """
    ).replace("FOLDER", repr(str(folder))).replace("VIDEO", repr(str(videos["video.mp4"])))
    got = _run_isolated(script, tmp_path)

    # the evaluation library's path for a file (planned frames only, resized while decoding), in this process
    embeds, times = encode_video_path(model, processor, str(videos["video.mp4"]))
    sentence = encode_sentences(model, processor, ["a man is cooking"])[0]
    np.testing.assert_allclose(got["clip_embeds"], embeds, atol=1e-5)
    np.testing.assert_allclose(got["clip_times"], times)
    spans, values = rank_moments(embeds @ sentence, times, top_n=5)
    assert 1 <= len(got["moments"]) <= 5
    np.testing.assert_allclose([[m["start"], m["end"]] for m in got["moments"]], spans, atol=1e-6)
    np.testing.assert_allclose([m["score"] for m in got["moments"]], values, atol=1e-5)
    assert [m["score"] for m in got["moments"]] == sorted((m["score"] for m in got["moments"]), reverse=True)
    assert len(sliding_windows(len(times))) == len(times) * (len(times) + 1) // 2
    video = embeds.mean(0) / np.linalg.norm(embeds.mean(0))
    np.testing.assert_allclose(got["scores"], [[float(sentence @ video)]], atol=1e-5)
    np.testing.assert_allclose(got["auto_score"], got["scores"], atol=1e-5)


def test_similarity_pipeline_adds_the_comparator_score_when_the_repo_has_one(tmp_path, videos):
    from transformers import pipeline

    from vidtempo.modeling import repeat_to_min_frames

    # an EfficientNet-Lite descriptor (the demo's default): its backbone config must resolve under remote code
    model, processor, _, _ = tiny_tca_video(comparator=True, lite=True)
    folder = P.publish_model(model, tmp_path / "repo", processor=processor)
    similarity = pipeline("tca-video-similarity", model=str(folder), trust_remote_code=True)
    scores = similarity(str(videos["video.mp4"]), str(videos["unrelated.mp4"]), return_frame_similarity=True)
    inputs = processor([str(videos["video.mp4"]), str(videos["unrelated.mp4"])])
    with torch.no_grad():
        out = model(pixel_values=inputs["pixel_values"], attention_mask=inputs["attention_mask"])
        a, b = (repeat_to_min_frames(out.frame_embeds[i][inputs["attention_mask"][i].bool()]) for i in (0, 1))
        want = model.comparator((a @ b.T)[None], return_dict=True).video_similarity[0]
    assert scores["comparator"] == pytest.approx(float(want), abs=1e-5)
    torch.testing.assert_close(scores["frame_similarity"], a @ b.T, atol=1e-5, rtol=0)
    assert scores["cosine"] == pytest.approx(float(out.video_embeds[0] @ out.video_embeds[1]), abs=1e-5)


def test_an_efficientnet_lite_video_repo_loads_without_vidtempo(tmp_path):
    """The demo's default backbone: its config, built by AutoConfig's copy of the code, must still be recognised
    by the model's copy (the reload check of the demo, at the descriptor level)."""
    from vidtempo.hub_cards.reload_check import embed_without_vidtempo

    model, processor, _, _ = tiny_tca_video(lite=True)
    folder = P.publish_model(model, tmp_path / "repo", processor=processor)
    features = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    with torch.no_grad():
        want = model(frame_features=features[None]).video_embeds[0].numpy()
    np.testing.assert_allclose(embed_without_vidtempo(folder, [features.numpy()])[0], want, atol=1e-6)
