"""Frame descriptor network of TCA (METHODS.md §1.1): ResNet stages 1-4 -> iMAC / L3-iRMAC -> PCA whitening.

Real ImageNet weights: `FrameDescriptorModel.from_backbone_pretrained("microsoft/resnet-50")` (needs the
Hugging Face Hub, or a local folder holding a `ResNetModel`/`ResNetForImageClassification` checkpoint), or,
offline, EfficientNet-Lite0 (`vidtempo-convert efficientnet-lite0 OUT`, `from_efficientnet_lite`).

This file imports only torch, transformers and its sibling configuration file so that it travels with a
checkpoint (trust_remote_code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoBackbone, PreTrainedModel, ResNetBackbone, ResNetConfig
from transformers.utils import ModelOutput

from .configuration_efficientnet_lite import EfficientNetLiteConfig
from .configuration_frame_descriptor import STAGES, FrameDescriptorConfig
from .modeling_efficientnet_lite import (
    EfficientNetLiteBackbone,
    EfficientNetLiteForImageClassification,
    init_cnn_weights,
)

# ----------------------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------------------


def imac(feature_map: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """iMAC of one stage: [B, C, H, W] -> [B, C]. L2-normalise the channel vector at every location, global
    max-pool, L2-normalise."""
    x = F.normalize(feature_map, p=2, dim=1, eps=eps)  # [B, C, H, W]
    x = x.amax(dim=(2, 3))  # [B, C]
    return F.normalize(x, p=2, dim=1, eps=eps)


def rmac_region_params(height: int, width: int) -> tuple[int, int]:
    """(kernel, stride) of the L3-iRMAC region grid: `p = int(min(H, W) * 2 / 7)`, kernel `int(1.5 p)`, stride
    `p` (a 3x3 grid of overlapping regions on square maps; at least 1 on tiny maps)."""
    p = max(1, int(min(height, width) * 2 / 7))
    return max(1, int(1.5 * p)), p


def l3_irmac(feature_map: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L3-iRMAC of one stage: [B, C, H, W] -> [B, C]. Channel L2-norm, region max-pooling on the grid of
    `rmac_region_params`, L2-normalise each region vector, sum the regions, L2-normalise."""
    x = F.normalize(feature_map, p=2, dim=1, eps=eps)  # [B, C, H, W]
    kernel, stride = rmac_region_params(*x.shape[-2:])
    regions = F.max_pool2d(x, kernel_size=kernel, stride=stride)  # [B, C, h, w]
    regions = F.normalize(regions.flatten(2), p=2, dim=1, eps=eps)  # [B, C, R]
    return F.normalize(regions.sum(dim=2), p=2, dim=1, eps=eps)  # [B, C]


POOLING_FUNCTIONS = {"imac": imac, "l3_irmac": l3_irmac}


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------


@dataclass
class FrameDescriptorOutput(ModelOutput):
    """
    Args:
        frame_embeds (`torch.FloatTensor` of shape `(num_frames, output_dim)`): the frame descriptors (PCA-whitened
            and L2-normalised when the model holds a PCA, else the raw pooled descriptor).
        pooled_features (`torch.FloatTensor` of shape `(num_frames, feature_dim)`): the concatenated per-stage
            pooled descriptors, L2-normalised, before whitening.
        stage_features (`tuple(torch.FloatTensor)`): the pooled descriptor of each stage, `(num_frames, C_s)`.
    """

    frame_embeds: torch.FloatTensor | None = None
    pooled_features: torch.FloatTensor | None = None
    stage_features: tuple[torch.FloatTensor, ...] | None = None


class FrameDescriptorPreTrainedModel(PreTrainedModel):
    config_class = FrameDescriptorConfig
    config: FrameDescriptorConfig
    base_model_prefix = "frame_descriptor"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, FrameDescriptorModel) and module.config.pca_dim is not None:
            # identity whitening until a PCA is fitted: first pca_dim axes, unit eigenvalues
            module.pca_mean.zero_()
            module.pca_components.copy_(torch.eye(module.config.pca_dim, module.config.feature_dim))
            module.pca_eigenvalues.fill_(1.0)
        elif not init_cnn_weights(module):
            super()._init_weights(module)


class FrameDescriptorModel(FrameDescriptorPreTrainedModel):
    r"""
    Frame descriptor network: `pixel_values` [N, 3, 224, 224] (ImageNet-normalised, see `TCAImageProcessor`)
    -> ResNet feature maps of stages 1-4 -> per-stage iMAC or L3-iRMAC -> concatenation, L2-normalised
    (`feature_dim`, 3840 for ResNet-50) -> optional PCA whitening held in persistent buffers `pca_mean` [D],
    `pca_components` [K, D], `pca_eigenvalues` [K] (saved in safetensors) -> L2-normalised `frame_embeds` [N, K].

    Build with ImageNet weights: `FrameDescriptorModel.from_backbone_pretrained("microsoft/resnet-50")`;
    attach a fitted PCA with `set_pca` (this sets `config.pca_dim`).
    """

    def __init__(self, config: FrameDescriptorConfig):
        super().__init__(config)
        if isinstance(config.backbone_config, EfficientNetLiteConfig):
            self.backbone = EfficientNetLiteBackbone(config.backbone_config)
        else:
            self.backbone = AutoBackbone.from_config(config.backbone_config)
        self.pooling = POOLING_FUNCTIONS[config.pooling]
        if config.pca_dim is not None:
            self._make_pca_buffers(config.pca_dim, config.feature_dim)
        self.post_init()

    def _make_pca_buffers(self, pca_dim: int, feature_dim: int) -> None:
        self.register_buffer("pca_mean", torch.zeros(feature_dim), persistent=True)
        self.register_buffer("pca_components", torch.zeros(pca_dim, feature_dim), persistent=True)
        self.register_buffer("pca_eigenvalues", torch.ones(pca_dim), persistent=True)

    @classmethod
    def from_backbone_pretrained(
        cls, name_or_path: str, pooling: str = "l3_irmac", pca_dim: int | None = None, **kwargs
    ) -> FrameDescriptorModel:
        """A descriptor model whose backbone loads ImageNet weights from a ResNet checkpoint, e.g.
        `"microsoft/resnet-50"` on the Hub (online) or a local folder. PCA (if `pca_dim`) starts as identity."""
        # ResNetBackbone directly: AutoBackbone.from_pretrained (transformers 5.23) asks the Hub whether the repo
        # exists before anything else, which fails for local folders and offline.
        backbone = ResNetBackbone.from_pretrained(name_or_path, out_features=list(STAGES), **kwargs)
        backbone_config = ResNetConfig(**backbone.config.to_dict())
        config = FrameDescriptorConfig(backbone_config=backbone_config, pooling=pooling, pca_dim=pca_dim)
        model = cls(config)
        model.backbone.load_state_dict(backbone.state_dict(), strict=True)
        return model.eval()

    @classmethod
    def from_efficientnet_lite(
        cls,
        classifier: EfficientNetLiteForImageClassification,
        pooling: str = "l3_irmac",
        out_features: list[str] | None = None,
    ) -> FrameDescriptorModel:
        """A descriptor model on the convolutional part of an EfficientNet-Lite classifier (e.g. the ImageNet
        Lite0 that `vidtempo-convert efficientnet-lite0` converts); `out_features` picks the pooled maps
        (default stage2, stage3, stage5, head). No PCA."""
        source = classifier.config
        backbone_config = EfficientNetLiteConfig(
            **{key: getattr(source, key) for key in EfficientNetLiteConfig.ARCHITECTURE_KEYS},
            out_features=out_features,
            num_labels=0,  # the classifier is not part of a descriptor model
        )
        model = cls(FrameDescriptorConfig(backbone_config=backbone_config, pooling=pooling))
        model.backbone.load_state_dict(classifier.efficientnet_lite.state_dict(), strict=True)
        return model.eval()

    def set_pca(self, pca) -> None:
        """Attach a fitted PCA (`mean` [D], `components` [K, D], `eigenvalues` [K], e.g. a
        `vidtempo.processing.descriptor_pca.PCAWhitening`); sets `config.pca_dim = K`."""
        components = torch.as_tensor(np.asarray(pca.components), dtype=torch.float32)
        if components.ndim != 2 or components.shape[1] != self.config.feature_dim:
            raise ValueError(
                f"set_pca: components must be [K, {self.config.feature_dim}], got {tuple(components.shape)}"
            )
        if self.config.pca_dim != components.shape[0] or not hasattr(self, "pca_mean"):
            self.config.pca_dim = int(components.shape[0])
            self._make_pca_buffers(self.config.pca_dim, self.config.feature_dim)
        device = next(self.parameters()).device
        self.pca_mean.copy_(torch.as_tensor(np.asarray(pca.mean), dtype=torch.float32).to(device))
        self.pca_components.copy_(components.to(device))
        self.pca_eigenvalues.copy_(
            torch.as_tensor(np.asarray(pca.eigenvalues), dtype=torch.float32).to(device)
        )

    def whiten(self, pooled_features: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [N, K]: centre, project on the components, divide by sqrt(max(eigenvalue, pca_eps)), L2-norm."""
        x = (pooled_features - self.pca_mean) @ self.pca_components.T  # [N, K]
        x = x / torch.sqrt(self.pca_eigenvalues.clamp_min(self.config.pca_eps))
        return F.normalize(x, p=2, dim=1, eps=self.config.norm_eps)

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> FrameDescriptorOutput:
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape [N, 3, H, W], got {tuple(pixel_values.shape)}")
        feature_maps = self.backbone(
            pixel_values
        ).feature_maps  # 4 x [N, C_s, H_s, W_s] (ResNet / Lite default)
        stage_features = tuple(self.pooling(fmap, eps=self.config.norm_eps) for fmap in feature_maps)
        # the paper L2-normalises per stage and concatenates; normalising the concatenation too is only a
        # constant factor 1/2 (four unit vectors) and makes the raw descriptor a unit vector.
        pooled = F.normalize(torch.cat(stage_features, dim=1), p=2, dim=1, eps=self.config.norm_eps)  # [N, D]
        embeds = self.whiten(pooled) if self.config.pca_dim is not None else pooled
        return FrameDescriptorOutput(
            frame_embeds=embeds, pooled_features=pooled, stage_features=stage_features
        )


__all__ = [
    "FrameDescriptorModel",
    "FrameDescriptorOutput",
    "FrameDescriptorPreTrainedModel",
    "imac",
    "l3_irmac",
    "rmac_region_params",
]
