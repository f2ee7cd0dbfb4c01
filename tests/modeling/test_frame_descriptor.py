"""Frame descriptor network: pooling vs explicit-loop references, PCA vs direct numpy math, save/load,
trust_remote_code, ImageNet-weight loading from a local ResNet folder, and the TCA image processor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoImageProcessor, AutoModel, ResNetConfig, ResNetModel

from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel
from vidtempo.modeling.modeling_frame_descriptor import imac, l3_irmac, rmac_region_params
from vidtempo.processing import TCAImageProcessor
from vidtempo.processing.descriptor_pca import StreamingPCA

# a config's `validate_*` failure (@strict wraps it) or a `__post_init__` ValueError
CONFIG_ERRORS = (ValueError, StrictDataclassError)


TINY_RESNET = dict(embedding_size=8, hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], layer_type="basic")


def tiny_model(pooling="l3_irmac", pca_dim=None) -> FrameDescriptorModel:
    config = FrameDescriptorConfig(
        backbone_config=ResNetConfig(**TINY_RESNET), pooling=pooling, pca_dim=pca_dim
    )
    return FrameDescriptorModel(config).eval()


# ---------------------------------------------------------------- pooling: direct per-stage loop references


def _unit(v):
    return v / max(np.linalg.norm(v), 1e-6)


def imac_reference(fmap: np.ndarray) -> np.ndarray:
    """[C, H, W] float64 -> [C]: explicit loops over locations."""
    c, h, w = fmap.shape
    best = np.full(c, -np.inf)
    for i in range(h):
        for j in range(w):
            best = np.maximum(best, _unit(fmap[:, i, j]))
    return _unit(best)


def l3_irmac_reference(fmap: np.ndarray) -> np.ndarray:
    """[C, H, W] float64 -> [C]: regions of side int(1.5 p) at stride p = int(min(H, W) * 2 / 7), one by one."""
    c, h, w = fmap.shape
    normed = np.stack([[_unit(fmap[:, i, j]) for j in range(w)] for i in range(h)])  # [H, W, C]
    p = max(1, int(min(h, w) * 2 / 7))
    k = max(1, int(1.5 * p))
    total = np.zeros(c)
    for top in range(0, h - k + 1, p):
        for left in range(0, w - k + 1, p):
            region = normed[top : top + k, left : left + k].reshape(-1, c).max(axis=0)
            total += _unit(region)
    return _unit(total)


def test_region_grid_worked_by_hand():
    # ResNet-50 at 224: stage maps 56, 28, 14, 7 -> p = 16, 8, 4, 2; kernel = 24, 12, 6, 3; a 3x3 grid
    assert [rmac_region_params(s, s) for s in (56, 28, 14, 7)] == [(24, 16), (12, 8), (6, 4), (3, 2)]
    for s in (56, 28, 14, 7):
        k, p = rmac_region_params(s, s)
        assert (s - k) // p + 1 == 3


@pytest.mark.parametrize("shape", [(7, 7), (14, 14), (5, 9), (2, 2), (1, 1)])
def test_pooling_matches_loop_reference(shape):
    rng = np.random.default_rng(1)
    fmaps = np.maximum(rng.normal(size=(3, 6, *shape)), 0)  # ReLU-like maps, some all-zero locations
    fmaps[0, :, 0, 0] = 0
    got_imac = imac(torch.from_numpy(fmaps)).numpy()
    got_rmac = l3_irmac(torch.from_numpy(fmaps)).numpy()
    for b in range(3):
        np.testing.assert_allclose(got_imac[b], imac_reference(fmaps[b]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got_rmac[b], l3_irmac_reference(fmaps[b]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("pooling", ["imac", "l3_irmac"])
def test_model_concatenates_stage_poolings(pooling):
    model = tiny_model(pooling)
    pixels = torch.randn(2, 3, 64, 64)
    out = model(pixels)
    assert model.config.feature_dim == 48 and out.frame_embeds.shape == (2, 48)
    maps = model.backbone(pixels).feature_maps
    assert [m.shape[1] for m in maps] == [8, 8, 16, 16]
    reference = imac_reference if pooling == "imac" else l3_irmac_reference
    for b in range(2):
        stages = [reference(m[b].double().detach().numpy()) for m in maps]
        expected = np.concatenate(stages) / 2.0  # four unit vectors concatenated have norm 2
        np.testing.assert_allclose(out.frame_embeds[b].detach().numpy(), expected, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- PCA


def test_streaming_pca_matches_numpy():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(12, 12)) * np.linspace(3, 0.1, 12)
    data = rng.normal(size=(500, 12)) @ mixing + 1000.0  # large offset: the shifted accumulation stays exact
    pca = StreamingPCA(12)
    for start in range(0, 500, 37):
        pca.update(data[start : start + 37].astype(np.float32) if start == 0 else data[start : start + 37])
    data[:37] = data[:37].astype(np.float32)  # what was fed
    fitted = pca.fit(8)
    np.testing.assert_allclose(fitted.mean, data.mean(axis=0), rtol=1e-12)
    cov = np.cov(data, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    np.testing.assert_allclose(fitted.eigenvalues, values[::-1][:8], rtol=1e-8)
    # components equal numpy's eigenvectors and the SVD's right singular vectors up to sign
    _, singular, vt = np.linalg.svd(data - data.mean(axis=0), full_matrices=False)
    for k in range(8):
        assert abs(abs(fitted.components[k] @ vectors[:, -1 - k]) - 1) < 1e-8
        assert abs(abs(fitted.components[k] @ vt[k]) - 1) < 1e-8
    np.testing.assert_allclose(singular[:8] ** 2 / 499, fitted.eigenvalues, rtol=1e-8)
    # whitened training data (before the final L2 norm) has identity covariance
    whitened = (data - fitted.mean) @ fitted.components.T / np.sqrt(fitted.eigenvalues)
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(8), atol=1e-8)
    with pytest.raises(ValueError, match=r"\[N, 12\]"):
        pca.update(np.zeros((3, 5)))


def test_model_whitening_equals_numpy_formula_and_round_trips(tmp_path):
    model = tiny_model(pca_dim=None)
    pixels = torch.randn(40, 3, 32, 32)
    raw = model(pixels).frame_embeds.double().detach().numpy()  # [40, 48]
    accumulator = StreamingPCA(48)
    accumulator.update(raw)
    fitted = accumulator.fit(16)
    model.set_pca(fitted)
    assert model.config.pca_dim == 16 and model.config.output_dim == 16
    got = model(pixels).frame_embeds.detach().numpy()
    expected = (raw - fitted.mean) @ fitted.components.T / np.sqrt(np.maximum(fitted.eigenvalues, 1e-9))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=2e-4)
    np.testing.assert_allclose(fitted.transform(raw), expected, atol=1e-6)

    model.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "m" / "model.safetensors")
    np.testing.assert_allclose(tensors["pca_components"].numpy(), fitted.components, atol=1e-6)
    assert {"pca_mean", "pca_eigenvalues"} <= set(tensors)
    loaded = AutoModel.from_pretrained(tmp_path / "m").eval()
    assert isinstance(loaded, FrameDescriptorModel) and loaded.config.pca_dim == 16
    torch.testing.assert_close(loaded(pixels).frame_embeds, model(pixels).frame_embeds)


def test_config_validation():
    with pytest.raises(CONFIG_ERRORS, match="pooling"):
        FrameDescriptorConfig(pooling="gem")
    with pytest.raises(CONFIG_ERRORS, match="pca_dim"):
        FrameDescriptorConfig(backbone_config=ResNetConfig(**TINY_RESNET), pca_dim=49)
    assert FrameDescriptorConfig().feature_dim == 3840  # ResNet-50: 256 + 512 + 1024 + 2048


def test_backbone_weights_load_from_a_resnet_checkpoint(tmp_path):
    """What `from_backbone_pretrained("microsoft/resnet-50")` does online, offline on a local tiny ResNet."""
    resnet = ResNetModel(ResNetConfig(**TINY_RESNET)).eval()
    resnet.save_pretrained(tmp_path / "resnet")
    model = FrameDescriptorModel.from_backbone_pretrained(str(tmp_path / "resnet"), pooling="imac")
    theirs, ours = resnet.state_dict(), model.backbone.state_dict()
    assert set(ours) == set(theirs) - {name for name in theirs if name.startswith("pooler")}
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name])
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        last_map = resnet(pixels).last_hidden_state[0].double().numpy()
        got = model(pixels).stage_features[3][0].double().numpy()
    np.testing.assert_allclose(got, imac_reference(last_map), atol=1e-5)


# ---------------------------------------------------------------- image processor


def test_image_processor_against_pil_and_hand_formula():
    from PIL import Image

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    processor = TCAImageProcessor()
    crop = processor.resize_and_crop(frame[None])[0].permute(1, 2, 0).numpy()  # [224, 224, 3]
    # short side 48 -> 256: 256 x round(64 * 256 / 48) = 256 x 341; centre crop 224 at (16, 58)
    resized = np.asarray(Image.fromarray(frame).resize((341, 256), Image.BILINEAR), dtype=np.int16)
    reference = resized[16:240, 58:282]
    assert crop.shape == (224, 224, 3)
    assert np.abs(crop.astype(np.int16) - reference).mean() < 1.0
    pixel_values = processor(frame[None])["pixel_values"]
    assert pixel_values.shape == (1, 3, 224, 224)
    expected = (crop[100, 50] / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(pixel_values[0, :, 100, 50].numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        processor(frame[None].astype(np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        processor(frame[..., :2])


def test_image_processor_save_and_auto_load(tmp_path):
    processor = TCAImageProcessor(shortest_edge=128, crop_size=112)
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, TCAImageProcessor) and (loaded.shortest_edge, loaded.crop_size) == (128, 112)


# ---------------------------------------------------------------- trust_remote_code (a fresh interpreter)


@pytest.mark.slow
def test_trust_remote_code_round_trip(tmp_path):
    model = tiny_model(pca_dim=None)
    raw = model(torch.randn(30, 3, 32, 32)).frame_embeds.detach().numpy()
    accumulator = StreamingPCA(48)
    accumulator.update(raw)
    model.set_pca(accumulator.fit(8))
    model.save_pretrained(tmp_path / "ckpt")
    TCAImageProcessor().save_pretrained(tmp_path / "ckpt")
    files = set(os.listdir(tmp_path / "ckpt"))
    assert {
        "modeling_frame_descriptor.py",
        "configuration_frame_descriptor.py",
        "image_processing_tca.py",
    } <= files
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"].endswith("FrameDescriptorModel")
    frames = np.random.default_rng(0).integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    expected = model(TCAImageProcessor()(frames)["pixel_values"]).frame_embeds.detach().numpy()
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, torch
        from transformers import AutoImageProcessor, AutoModel
        ckpt = {str(tmp_path / "ckpt")!r}
        model = AutoModel.from_pretrained(ckpt, trust_remote_code=True).eval()
        processor = AutoImageProcessor.from_pretrained(ckpt, trust_remote_code=True)
        assert not any(name.startswith("vidtempo") for name in sys.modules), "vidtempo was imported"
        frames = np.load({str(tmp_path / "frames.npy")!r})
        with torch.no_grad():
            out = model(processor(frames)["pixel_values"]).frame_embeds
        np.save({str(tmp_path / "out.npy")!r}, out.numpy())
        """
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5)
