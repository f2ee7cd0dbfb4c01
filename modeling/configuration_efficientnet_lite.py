"""Configuration of EfficientNet-Lite (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation, stem and
head not scaled), an ImageNet CNN usable as the frame-descriptor backbone (METHODS.md §1.1)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .configuration_checks import check_positive_int

# (repeats, kernel, stride, expand ratio, input channels, output channels) of the seven MBConv stages of B0/Lite0
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# The last feature map at each of the strides 4, 8, 16, 32 (56, 28, 14, 7 cells at 224 input), as ResNet-50's
# four residual stages are; at stride 32 the 1x1 head convolution (1280 channels, post-ReLU6: the feature the
# classifier reads) rather than stage7 (320 channels, a linear bottleneck). 24 + 40 + 112 + 1280 = 1456 dims.
DEFAULT_OUT_FEATURES = ("stage2", "stage3", "stage5", "head")


def round_filters(filters: int, width_coefficient: float, divisor: int = 8) -> int:
    """Channels scaled by the width multiplier, rounded to a multiple of `divisor` (never more than 10% down)."""
    if not width_coefficient or width_coefficient == 1.0:
        return int(filters)
    scaled = filters * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


@strict
class EfficientNetLiteConfig(PreTrainedConfig):
    r"""
    Configuration of [`EfficientNetLiteModel`] / [`EfficientNetLiteForImageClassification`] /
    [`EfficientNetLiteBackbone`]. Defaults are EfficientNet-Lite0 (224 x 224, 4.65M parameters).

    Args:
        width_coefficient / depth_coefficient (`float`, defaults to 1.0): compound scaling of the MBConv stages
            (the stem, the first and last stage's depth and the head are not scaled in the lite variant).
        stem_channels (`int`, defaults to 32) / head_channels (`int`, defaults to 1280).
        stages (`list`, *optional*): per stage `[repeats, kernel, stride, expand_ratio, in_channels,
            out_channels]`, before scaling; defaults to B0's seven stages.
        num_labels (`int`, defaults to 1000): classifier outputs (ImageNet-1k; the length of a saved `id2label`).
        dropout_rate (`float`, defaults to 0.2): dropout before the classifier.
        batch_norm_eps (`float`, defaults to 1e-3) / batch_norm_momentum (`float`, defaults to 0.01, PyTorch's
            convention): the batch normalisations (TensorFlow's eps and decay 0.99).
        out_features (`list[str]`, *optional*): feature maps the backbone returns, among `stage_names`
            (`stem`, `stage1` ... `stage7`, `head`); defaults to `["stage2", "stage3", "stage5", "head"]`.
    """

    model_type = "vidtempo_efficientnet_lite"
    ARCHITECTURE_KEYS = (
        "width_coefficient",
        "depth_coefficient",
        "stem_channels",
        "head_channels",
        "stages",
        "dropout_rate",
        "batch_norm_eps",
        "batch_norm_momentum",
    )

    width_coefficient: float | int = 1.0
    depth_coefficient: float | int = 1.0
    stem_channels: int = 32
    head_channels: int = 1280
    stages: list | tuple | None = None
    dropout_rate: float | int = 0.2
    batch_norm_eps: float | int = 1e-3
    batch_norm_momentum: float | int = 0.01
    out_features: list[str] | tuple[str, ...] | None = None

    def __post_init__(self, **kwargs):
        self.stages = [list(s) for s in (self.stages if self.stages is not None else LITE0_STAGES)]
        names = self.stage_names
        features = list(self.out_features if self.out_features is not None else DEFAULT_OUT_FEATURES)
        # in network order (unknown names last: the validator names them)
        self.out_features = sorted(features, key=lambda n: names.index(n) if n in names else len(names))
        for name in (
            "width_coefficient",
            "depth_coefficient",
            "dropout_rate",
            "batch_norm_eps",
            "batch_norm_momentum",
        ):
            setattr(self, name, float(getattr(self, name)))
        if self.id2label is None:  # a saved config carries its id2label; num_labels is its length
            kwargs.setdefault("num_labels", 1000)
        super().__post_init__(**kwargs)

    def validate_efficientnet_lite(self) -> None:
        """Stem, head and every stage entry are positive integers (six per stage); `out_features` are distinct
        names among `stage_names`."""
        check_positive_int(self, "stem_channels", "head_channels")
        stages = self.stages
        if not stages or any(
            len(s) != 6 or any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in s)
            for s in stages
        ):
            raise ValueError(
                "EfficientNetLiteConfig.stages must be a non-empty list of [repeats, kernel, stride, expand_ratio, "
                f"in_channels, out_channels] positive integers, got {stages!r}"
            )
        names, features = self.stage_names, self.out_features
        if not features or any(n not in names for n in features) or len(set(features)) != len(features):
            raise ValueError(
                f"EfficientNetLiteConfig.out_features must be distinct names among {names}, got {features!r}"
            )

    @property
    def stage_names(self) -> list[str]:
        return ["stem", *(f"stage{i}" for i in range(1, len(self.stages) + 1)), "head"]

    def scaled_stages(self) -> list[tuple[int, int, int, int, int, int]]:
        """The stages after compound scaling: (repeats, kernel, stride, expand, in, out)."""
        import math

        last = len(self.stages) - 1
        scaled = []
        for i, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(self.stages):
            c_in = self.stem_channels if i == 0 else round_filters(c_in, self.width_coefficient)
            c_out = round_filters(c_out, self.width_coefficient)
            if i not in (0, last):
                repeats = int(math.ceil(self.depth_coefficient * repeats))
            scaled.append((repeats, kernel, stride, expand, c_in, c_out))
        return scaled

    @property
    def channels(self) -> dict[str, int]:
        """Channels of every named feature map."""
        out = {"stem": self.stem_channels, "head": self.head_channels}
        for i, stage in enumerate(self.scaled_stages(), start=1):
            out[f"stage{i}"] = stage[5]
        return out

    @property
    def hidden_sizes(self) -> list[int]:
        """Channels of the `out_features` maps (what the frame descriptor pools and concatenates)."""
        return [self.channels[name] for name in self.out_features]


__all__ = ["DEFAULT_OUT_FEATURES", "EfficientNetLiteConfig", "LITE0_STAGES", "round_filters"]
