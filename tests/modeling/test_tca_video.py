"""The composite TCA video model and its processor: the numbers equal the step-by-step library path
(image processor -> descriptor CNN -> numpy PCA whitening -> TCA), the descriptor level stays usable, and bad
compositions are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import texture_video, tiny_tca_video
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoModel, AutoProcessor

import vidtempo.processing  # noqa: F401  (registers the processor)
from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel, TCAVideoConfig, TCAVideoModel
from vidtempo.processing.descriptor_pca import PCAWhitening
from vidtempo.processing.image_processing_tca import TCAImageProcessor
from vidtempo.processing.video_reader import read_video
from vidtempo.synthetic.video_writer import write_video


def _step_by_step(descriptor, tca, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One video's (video_embeds [H], frame_embeds [F, H]) through the separate library pieces."""
    pixels = TCAImageProcessor(shortest_edge=64, crop_size=56)(frames)["pixel_values"]
    with torch.no_grad():
        pooled = descriptor(pixels).pooled_features.numpy()
    pca = PCAWhitening(
        mean=descriptor.pca_mean.double().numpy(),
        components=descriptor.pca_components.double().numpy(),
        eigenvalues=descriptor.pca_eigenvalues.double().numpy(),
    )
    whitened = torch.from_numpy(pca.transform(pooled))[None]
    with torch.no_grad():
        out = tca(whitened)
    return out.video_embeds[0], out.frame_embeds[0]


def test_padded_batch_from_frames_equals_the_step_by_step_path():
    model, processor, descriptor, tca = tiny_tca_video()
    long, short = texture_video(1, num_frames=40), texture_video(2, num_frames=15)
    inputs = processor([long, short], video_fps=10.0)  # 2 fps of 10 fps frames: every 5th frame
    assert inputs["attention_mask"].sum(1).tolist() == [8, 3]
    assert inputs["timestamps"][0, :3].tolist() == [0.0, 0.5, 1.0] and inputs["timestamps"][1, 3] == -1
    with torch.no_grad():
        out = model(pixel_values=inputs["pixel_values"], attention_mask=inputs["attention_mask"])
    assert out.video_embeds.shape == (2, 16) and out.frame_embeds.shape == (2, 8, 16)
    for row, frames in enumerate((long, short)):
        video, frame = _step_by_step(descriptor, tca, frames[::5])
        n = frame.shape[0]
        torch.testing.assert_close(out.video_embeds[row], video, atol=2e-5, rtol=0)
        torch.testing.assert_close(out.frame_embeds[row, :n], frame, atol=2e-5, rtol=0)
        assert torch.count_nonzero(out.frame_embeds[row, n:]) == 0


def test_a_video_file_is_decoded_and_sampled_at_the_config_fps(tmp_path):
    model, processor, _, _ = tiny_tca_video()
    path = write_video(tmp_path / "v.mp4", texture_video(3, num_frames=30), fps=10)
    inputs = processor(str(path))
    assert inputs["timestamps"][0].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    decoded = read_video(path, fps=2.0, min_duration=0.0).frames  # the project reader, 1 frame per 0.5 s
    expected = TCAImageProcessor(shortest_edge=64, crop_size=56)(decoded)["pixel_values"]
    torch.testing.assert_close(inputs["pixel_values"][0], expected)


def test_descriptor_level_runs_tca_alone():
    model, _, _, tca = tiny_tca_video()
    features = torch.nn.functional.normalize(torch.randn(2, 7, 16), dim=-1)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        got, want = model(frame_features=features, attention_mask=mask), tca(features, attention_mask=mask)
    torch.testing.assert_close(got.video_embeds, want.video_embeds)
    torch.testing.assert_close(got.frame_embeds, want.frame_embeds)


def test_bad_compositions_and_inputs_are_refused_by_name():
    _, _, descriptor, tca = tiny_tca_video()
    raw = FrameDescriptorModel(FrameDescriptorConfig(backbone_config=descriptor.config.backbone_config))
    with pytest.raises(ValueError, match="no PCA whitening"):
        TCAVideoModel.from_descriptor_and_tca(raw, tca)
    with pytest.raises(StrictDataclassClassValidationError, match="tca_config.input_size"):
        TCAVideoConfig(descriptor_config=descriptor.config.to_dict(), tca_config={"input_size": 24})
    model = TCAVideoModel.from_descriptor_and_tca(descriptor, tca)
    with pytest.raises(ValueError, match="exactly one of"):
        model()
    with pytest.raises(ValueError, match=r"pixel_values must have shape \[batch, frames, 3, H, W\]"):
        model(pixel_values=torch.zeros(1, 2, 4, 8, 8))


def test_save_and_auto_load_round_trip(tmp_path):
    model, processor, _, _ = tiny_tca_video(comparator=True)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.safetensors" in names and not [n for n in names if n.endswith((".bin", ".pt"))]
    loaded = AutoModel.from_pretrained(tmp_path / "m", trust_remote_code=True).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path / "m", trust_remote_code=True)
    assert loaded_processor.fps == 2.0 and loaded.comparator is not None
    frames = texture_video(4)
    inputs = loaded_processor(frames)
    assert inputs["pixel_values"].shape[1] == 30  # frames without their rate are taken as already sampled
    with torch.no_grad():
        a = model(**{k: v for k, v in processor(frames).items() if k != "timestamps"})
        b = loaded(**{k: v for k, v in inputs.items() if k != "timestamps"})
    torch.testing.assert_close(a.video_embeds, b.video_embeds, atol=0, rtol=0)
    for name, tensor in model.comparator.state_dict().items():
        torch.testing.assert_close(loaded.comparator.state_dict()[name], tensor, atol=0, rtol=0)
