"""The composite TCA video model: pixel frames -> frame descriptors (CNN, iMAC / L3-iRMAC, PCA whitening) -> TCA
-> frame and video embeddings, plus the optional TCA_v comparator. One published repo is a complete video model.

It stays usable at the descriptor level: `model(frame_features=...)` runs TCA alone on precomputed whitened
descriptors (FIVR-scale jobs extract once), and `model.tca` / `model.descriptor` are the plain sub-models.

This file imports only torch, transformers and its siblings so that it travels with a checkpoint
(trust_remote_code).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_frame_descriptor import FrameDescriptorConfig
from .configuration_tca_video import TCAVideoConfig
from .modeling_frame_descriptor import FrameDescriptorModel
from .modeling_tca import TCAModel
from .modeling_tca_comparator import TCAComparatorModel


@dataclass
class TCAVideoOutput(ModelOutput):
    """
    Outputs of [`TCAVideoModel`].

    Args:
        video_embeds (`torch.FloatTensor` of shape `(batch_size, hidden_size)`): L2-normalised video embeddings.
        frame_embeds (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`): L2-normalised frame
            embeddings, zero at padding (None for a NetVLAD aggregator).
        attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`): 1 = frame, 0 = padding.
        frame_descriptors (`torch.FloatTensor` of shape `(batch_size, num_frames, input_size)`): TCA's input,
            the whitened descriptors (zero at padding).
    """

    video_embeds: torch.FloatTensor | None = None
    frame_embeds: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None
    frame_descriptors: torch.FloatTensor | None = None


class TCAVideoPreTrainedModel(PreTrainedModel):
    config_class = TCAVideoConfig
    config: TCAVideoConfig
    base_model_prefix = "tca_video"
    main_input_name = "pixel_values"
    input_modalities = ("video",)
    _no_split_modules = ["TCAEncoderLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # every parameter lives in a sub-model, whose own _init_weights transformers dispatches to
        return None


class TCAVideoModel(TCAVideoPreTrainedModel):
    r"""
    TCA from pixels: `pixel_values` [B, F, 3, H, W] (`TCAVideoProcessor` output) with `attention_mask` [B, F]
    -> `FrameDescriptorModel` on the valid frames (chunks of `descriptor_batch_size`) -> whitened descriptors
    [B, F, input_size] -> `TCAModel` -> `video_embeds` [B, H], `frame_embeds` [B, F, H]. Or `frame_features`
    [B, F, input_size] (already whitened descriptors): TCA alone.
    """

    def __init__(self, config: TCAVideoConfig):
        super().__init__(config)
        # Rebuilt from its dict so that the sub-configs are this file's sibling classes: under trust_remote_code the
        # config may come from another copy of the code (AutoConfig's module), and the descriptor model picks its
        # backbone by class (an EfficientNet-Lite config of another copy would not be recognised).
        # (kept apart from `config`, whose strict field accepts only its own copy's class)
        self.descriptor = FrameDescriptorModel(
            FrameDescriptorConfig.from_dict(config.descriptor_config.to_dict())
        )
        self.tca = TCAModel(config.tca_config)
        self.comparator = (
            TCAComparatorModel(config.comparator_config) if config.comparator_config is not None else None
        )
        self.post_init()

    @classmethod
    def from_descriptor_and_tca(
        cls,
        descriptor: FrameDescriptorModel,
        tca: TCAModel,
        comparator: TCAComparatorModel | None = None,
        fps: float = 1.0,
        max_frames: int | None = None,
    ) -> "TCAVideoModel":
        """Compose trained sub-models (weights copied): the descriptor model must hold its PCA whitening."""
        if descriptor.config.pca_dim is None:
            raise ValueError(
                "from_descriptor_and_tca: the descriptor model has no PCA whitening (pca_dim=None); attach the "
                "fitted PCA with set_pca first (TCA was trained on whitened descriptors)"
            )
        config = TCAVideoConfig(
            descriptor_config=descriptor.config.to_dict(),
            tca_config=tca.config.to_dict(),
            comparator_config=comparator.config.to_dict() if comparator is not None else None,
            fps=fps,
            max_frames=max_frames,
        )
        model = cls(config)
        model.descriptor.load_state_dict(descriptor.state_dict(), strict=True)
        model.tca.load_state_dict(tca.state_dict(), strict=True)
        if comparator is not None:
            model.comparator.load_state_dict(comparator.state_dict(), strict=True)
        return model.eval()

    def get_frame_descriptors(
        self,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        descriptor_batch_size: int = 64,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, F, 3, H, W] (+ mask [B, F]) -> (whitened descriptors [B, F, input_size], zero at padding; mask)."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values[None]
        if pixel_values.dim() != 5 or pixel_values.shape[2] != 3:
            raise ValueError(
                f"TCAVideoModel: pixel_values must have shape [batch, frames, 3, H, W], got "
                f"{tuple(pixel_values.shape)}"
            )
        batch, frames = pixel_values.shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, frames, dtype=torch.long, device=pixel_values.device)
        elif tuple(attention_mask.shape) != (batch, frames):
            raise ValueError(
                f"TCAVideoModel: attention_mask must have shape {(batch, frames)}, got {tuple(attention_mask.shape)}"
            )
        valid = attention_mask.bool()
        pixels = pixel_values[valid]  # [N, 3, H, W], the real frames only
        chunks = [
            self.descriptor(pixels[i : i + descriptor_batch_size]).frame_embeds
            for i in range(0, pixels.shape[0], descriptor_batch_size)
        ]
        descriptors = pixel_values.new_zeros(batch, frames, self.config.descriptor_config.output_dim)
        if chunks:
            descriptors[valid] = torch.cat(chunks)
        return descriptors, attention_mask

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        frame_features: torch.Tensor | None = None,
        descriptor_batch_size: int = 64,
        **kwargs,
    ) -> TCAVideoOutput:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`): frames
                normalised by the processor (a single video [num_frames, 3, H, W] is a batch of one).
            attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*): 1 = frame.
            frame_features (`torch.FloatTensor` of shape `(batch_size, num_frames, input_size)`, *optional*):
                whitened descriptors instead of pixels: TCA alone.
        """
        if (pixel_values is None) == (frame_features is None):
            raise ValueError("TCAVideoModel.forward needs exactly one of `pixel_values` or `frame_features`")
        if pixel_values is not None:
            frame_features, attention_mask = self.get_frame_descriptors(
                pixel_values, attention_mask, descriptor_batch_size
            )
        out = self.tca(frame_features, attention_mask=attention_mask, **kwargs)
        if attention_mask is None:
            attention_mask = torch.ones(
                frame_features.shape[:2], dtype=torch.long, device=frame_features.device
            )
        return TCAVideoOutput(
            video_embeds=out.video_embeds,
            frame_embeds=out.frame_embeds,
            attention_mask=attention_mask,
            frame_descriptors=frame_features,
        )


__all__ = ["TCAVideoModel", "TCAVideoOutput", "TCAVideoPreTrainedModel"]
