"""EfficientNet-Lite (Tan & Le, ICML 2019; the lite variant of the TensorFlow TPU repository): stem conv ->
seven stages of MBConv blocks (1x1 expansion, depthwise k x k, 1x1 linear projection, residual when the shape is
kept) -> 1x1 head conv -> global average -> linear classifier. ReLU6 everywhere, no squeeze-excitation, and
TensorFlow "SAME" padding (asymmetric on stride-2 layers) as the weights were trained with.

Written for vidtempo; imports only torch, transformers and its sibling configuration file so that it travels
with a checkpoint (trust_remote_code). Converted ImageNet weights: `vidtempo-convert efficientnet-lite0 OUT`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

from .configuration_efficientnet_lite import EfficientNetLiteConfig


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis: output `ceil(size / stride)`, the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "SAME" padding computed from the input size."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1 and k % 2 == 1:  # "SAME" is then symmetric: let the convolution pad (no copy)
            return F.conv2d(x, self.weight, None, 1, (k - 1) // 2, 1, self.groups)
        if k > 1:
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


class ConvBNReLU6(nn.Module):
    """Convolution, batch norm, optionally ReLU6."""

    def __init__(
        self,
        config: EfficientNetLiteConfig,
        c_in: int,
        c_out: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ):
        super().__init__()
        self.convolution = SameConv2d(c_in, c_out, kernel, stride, groups)
        self.normalization = nn.BatchNorm2d(
            c_out, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum
        )
        self.activation = nn.ReLU6() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(x)))


class MBConvBlock(nn.Module):
    """Inverted residual: [1x1 expand, ReLU6] -> depthwise k x k (stride), ReLU6 -> 1x1 linear projection
    (+ input when stride 1 and channels kept)."""

    def __init__(
        self, config: EfficientNetLiteConfig, c_in: int, c_out: int, kernel: int, stride: int, expand: int
    ):
        super().__init__()
        hidden = c_in * expand
        self.expansion = ConvBNReLU6(config, c_in, hidden) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNReLU6(config, hidden, hidden, kernel, stride, groups=hidden)
        self.projection = ConvBNReLU6(config, hidden, c_out, activation=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.projection(self.depthwise(self.expansion(x)))
        return y + x if self.residual else y


@torch.no_grad()
def init_cnn_weights(module: nn.Module) -> bool:
    """He-normal (fan-out) convolutions and identity batch norms (fresh running statistics); True when
    `module` is one of those (shared with the frame descriptor's backbones)."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
        if module.running_mean is not None:
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
            module.num_batches_tracked.zero_()
    else:
        return False
    return True


class EfficientNetLitePreTrainedModel(PreTrainedModel):
    config_class = EfficientNetLiteConfig
    config: EfficientNetLiteConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["MBConvBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if init_cnn_weights(module):
            return
        if isinstance(module, nn.Linear):
            nn.init.uniform_(
                module.weight, -1.0 / math.sqrt(module.in_features), 1.0 / math.sqrt(module.in_features)
            )
            nn.init.zeros_(module.bias)


class EfficientNetLiteModel(EfficientNetLitePreTrainedModel):
    r"""
    EfficientNet-Lite without its classifier: `pixel_values` [N, 3, H, W] -> `last_hidden_state` (the head
    convolution's map, [N, 1280, H/32, W/32]) and `pooler_output` (its spatial mean, [N, 1280]);
    `output_hidden_states=True` adds the maps of the stem, the seven stages and the head (9 tensors).
    """

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        self.stem = ConvBNReLU6(config, 3, config.stem_channels, kernel=3, stride=2)
        self.stages = nn.ModuleList()
        for repeats, kernel, stride, expand, c_in, c_out in config.scaled_stages():
            blocks = [MBConvBlock(config, c_in, c_out, kernel, stride, expand)]
            blocks += [MBConvBlock(config, c_out, c_out, kernel, 1, expand) for _ in range(repeats - 1)]
            self.stages.append(nn.ModuleList(blocks))
        self.head = ConvBNReLU6(config, config.scaled_stages()[-1][5], config.head_channels)
        self.post_init()

    def feature_maps(
        self, pixel_values: torch.Tensor, names: list[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Named feature maps (`stem`, `stage1`...`stage7`, `head`); stops after the last one asked for."""
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape [N, 3, H, W], got {tuple(pixel_values.shape)}")
        order = self.config.stage_names
        wanted = set(order if names is None else names)
        last = max(order.index(n) for n in wanted)
        maps = {}
        x = self.stem(pixel_values)
        if "stem" in wanted:
            maps["stem"] = x
        for i, stage in enumerate(self.stages, start=1):
            if i > last:
                return maps
            for block in stage:
                x = block(x)
            if f"stage{i}" in wanted:
                maps[f"stage{i}"] = x
        if "head" in wanted:
            maps["head"] = self.head(x)
        return maps

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention:
        maps = self.feature_maps(pixel_values)
        last = maps["head"]
        hidden = tuple(maps[n] for n in self.config.stage_names) if output_hidden_states else None
        output = BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last, pooler_output=last.mean(dim=(2, 3)), hidden_states=hidden
        )
        return output if return_dict is not False else output.to_tuple()


class EfficientNetLiteBackbone(EfficientNetLiteModel):
    r"""The feature maps named in `config.out_features` (default stage2, stage3, stage5, head: the last map at
    strides 4, 8, 16 and 32), as `BackboneOutput.feature_maps`. Same parameter names as [`EfficientNetLiteModel`]."""

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BackboneOutput:
        maps = self.feature_maps(pixel_values, self.config.out_features)
        return BackboneOutput(feature_maps=tuple(maps[n] for n in self.config.out_features))


class EfficientNetLiteForImageClassification(EfficientNetLitePreTrainedModel):
    r"""EfficientNet-Lite with its ImageNet classifier: pooled head features -> dropout -> linear -> `logits`
    [N, num_labels]; `labels` give a cross-entropy `loss`."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        self.efficientnet_lite = EfficientNetLiteModel(config)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.classifier = nn.Linear(config.head_channels, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention:
        outputs = self.efficientnet_lite(pixel_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutputWithNoAttention(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states
        )


def convert_efficientnet_pytorch_state_dict(
    state_dict: dict[str, torch.Tensor], config: EfficientNetLiteConfig, prefix: str = "efficientnet_lite."
) -> dict[str, torch.Tensor]:
    """A state dict in the `efficientnet_pytorch` naming (`_conv_stem`, `_blocks.{i}._expand_conv`, `_bn0`,
    `_depthwise_conv`, `_bn1`, `_project_conv`, `_bn2`, `_conv_head`, top-level `_bn1`, `_fc`) -> the names of
    [`EfficientNetLiteForImageClassification`] (base-model keys under `prefix`; `_fc` -> `classifier`).
    Every key must be used: an unknown key or a missing block is an error."""
    block_names = []
    for s, (repeats, *_rest) in enumerate(config.scaled_stages()):
        block_names += [f"stages.{s}.{b}" for b in range(repeats)]
    layer = {
        "_expand_conv": "expansion.convolution",
        "_bn0": "expansion.normalization",
        "_depthwise_conv": "depthwise.convolution",
        "_bn1": "depthwise.normalization",
        "_project_conv": "projection.convolution",
        "_bn2": "projection.normalization",
    }
    top = {
        "_conv_stem": "stem.convolution",
        "_bn0": "stem.normalization",
        "_conv_head": "head.convolution",
        "_bn1": "head.normalization",
    }
    converted = {}
    for key, tensor in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) == 4 and parts[1].isdigit() and parts[2] in layer:
            index = int(parts[1])
            if index >= len(block_names):
                raise ValueError(
                    f"state dict key {key!r}: block {index} does not exist ({len(block_names)} blocks)"
                )
            name = f"{prefix}{block_names[index]}.{layer[parts[2]]}.{parts[3]}"
        elif len(parts) == 2 and parts[0] in top:
            name = f"{prefix}{top[parts[0]]}.{parts[1]}"
        elif len(parts) == 2 and parts[0] == "_fc":
            name = f"classifier.{parts[1]}"
        else:
            raise ValueError(f"state dict key {key!r} is not an efficientnet_pytorch EfficientNet-Lite name")
        converted[name] = tensor
    return converted


__all__ = [
    "EfficientNetLiteBackbone",
    "EfficientNetLiteForImageClassification",
    "EfficientNetLiteModel",
    "EfficientNetLitePreTrainedModel",
    "convert_efficientnet_pytorch_state_dict",
    "same_padding",
]
