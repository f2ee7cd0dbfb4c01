"""Configuration of the frame descriptor network (TCA input features, METHODS.md §1.1)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, ResNetConfig

from .configuration_checks import check_choice, check_positive_int
from .configuration_efficientnet_lite import EfficientNetLiteConfig

POOLINGS = ("imac", "l3_irmac")
STAGES = ["stage1", "stage2", "stage3", "stage4"]
BACKBONE_CONFIGS = {"resnet": ResNetConfig, EfficientNetLiteConfig.model_type: EfficientNetLiteConfig}


@strict
class FrameDescriptorConfig(PreTrainedConfig):
    r"""
    Configuration of a [`FrameDescriptorModel`]: a CNN backbone whose feature maps are pooled per map with iMAC
    or L3-iRMAC and concatenated, then optionally PCA-whitened to `pca_dim` dimensions and L2-normalised.
    ResNet (the paper's, through `AutoBackbone`): its four residual stages, 256 + 512 + 1024 + 2048 = 3840-d for
    ResNet-50. EfficientNet-Lite (an ImageNet network available offline): by default the last map at each of the
    strides 4, 8, 16, 32 as for ResNet (stage2, stage3, stage5 and the 1x1 head conv), 24 + 40 + 112 + 1280 =
    1456-d for Lite0 (`EfficientNetLiteConfig.out_features` chooses others).

    Args:
        backbone_config (`dict`, [`ResNetConfig`] or [`EfficientNetLiteConfig`], *optional*): the CNN. Defaults
            to ResNet-50 (`ResNetConfig()`), whose `out_features` is always set to the four stages. A dict is read
            by its `model_type` (`"resnet"` when absent, or `"vidtempo_efficientnet_lite"`).
        pooling (`str`, defaults to `"l3_irmac"`): `"imac"` or `"l3_irmac"` (the paper's best).
        pca_dim (`int`, *optional*): output dimension after PCA whitening (paper: 1024). `None` means no
            whitening: the model returns the raw L2-normalised concatenation (`feature_dim` dims), which is
            what a PCA is fitted on (`fit_pca` / `vidtempo-extract fit-pca`).
        pca_eps (`float`, defaults to 1e-9): floor of the eigenvalues before dividing by their square root.
        norm_eps (`float`, defaults to 1e-6): epsilon of the L2 normalisations.
    """

    model_type = "vidtempo_frame_descriptor"
    sub_configs = {"backbone_config": ResNetConfig}

    backbone_config: dict | ResNetConfig | EfficientNetLiteConfig | None = None
    pooling: str = "l3_irmac"
    pca_dim: int | None = None
    pca_eps: float | int = 1e-9
    norm_eps: float | int = 1e-6

    def __post_init__(self, **kwargs):
        backbone = self.backbone_config
        if backbone is None:
            backbone = ResNetConfig()
        elif isinstance(backbone, dict):
            model_type = backbone.get("model_type", "resnet")
            check_choice(self, "backbone_config model_type", sorted(BACKBONE_CONFIGS), value=model_type)
            backbone = BACKBONE_CONFIGS[model_type](
                **{k: v for k, v in backbone.items() if k != "model_type"}
            )
        if isinstance(backbone, ResNetConfig):
            backbone.out_features = list(STAGES)
        self.backbone_config = backbone
        self.pca_eps = float(self.pca_eps)
        self.norm_eps = float(self.norm_eps)
        super().__post_init__(**kwargs)

    def validate_frame_descriptor(self) -> None:
        """A known pooling, and a positive `pca_dim` (or None) no larger than the pooled dimension."""
        check_choice(self, "pooling", POOLINGS)
        if self.pca_dim is not None:
            check_positive_int(self, "pca_dim")
            if self.pca_dim > self.feature_dim:
                raise ValueError(
                    f"FrameDescriptorConfig.pca_dim ({self.pca_dim}) cannot exceed the pooled dimension "
                    f"{self.feature_dim}"
                )

    @property
    def feature_dim(self) -> int:
        """Dimension of the pooled (un-whitened) descriptor: the sum of the pooled maps' channels."""
        return int(sum(self.backbone_config.hidden_sizes))

    @property
    def output_dim(self) -> int:
        """Dimension of the model's output descriptor."""
        return self.pca_dim if self.pca_dim is not None else self.feature_dim


__all__ = ["FrameDescriptorConfig"]
