"""Configuration of the composite TCA video model: frame descriptor CNN (+ PCA whitening) -> TCA (+ comparator)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_frame_descriptor import FrameDescriptorConfig
from .configuration_tca import TCAConfig
from .modeling_tca_comparator import TCAComparatorConfig


@strict
class TCAVideoConfig(PreTrainedConfig):
    r"""
    Configuration of a [`TCAVideoModel`]: a video model from pixels, composed the CLIP way of sub-configs.

    Args:
        descriptor_config (`dict` or [`FrameDescriptorConfig`], *optional*): the frame descriptor CNN, its pooling
            and its PCA whitening (`pca_dim` must equal `tca_config.input_size`).
        tca_config (`dict` or [`TCAConfig`], *optional*): the temporal aggregator.
        comparator_config (`dict` or [`TCAComparatorConfig`], *optional*): the TCA_v comparator; `None` = none.
        fps (`float`, defaults to 1.0): frames sampled per second of video (the paper's 1 fps).
        max_frames (`int`, *optional*): keep at most this many sampled frames per video (uniformly spread).
    """

    model_type = "tca_video"
    sub_configs_defaults = {
        "descriptor_config": FrameDescriptorConfig,
        "tca_config": TCAConfig,
        "comparator_config": SubConfigSpec(TCAComparatorConfig, optional=True),
    }

    descriptor_config: dict | FrameDescriptorConfig | None = None
    tca_config: dict | TCAConfig | None = None
    comparator_config: dict | TCAComparatorConfig | None = None
    fps: float | int = 1.0
    max_frames: int | None = None

    def __post_init__(self, **kwargs):
        self.fps = float(self.fps)
        super().__post_init__(**kwargs)

    def validate_tca_video(self) -> None:
        """The descriptor's output dimension is TCA's input; a positive frame rate and frame cap."""
        if self.descriptor_config.output_dim != self.tca_config.input_size:
            raise ValueError(
                f"TCAVideoConfig: the descriptor model outputs {self.descriptor_config.output_dim}-d descriptors "
                f"(pca_dim={self.descriptor_config.pca_dim}) but tca_config.input_size is "
                f"{self.tca_config.input_size}"
            )
        if not self.fps > 0:
            raise ValueError(f"TCAVideoConfig.fps must be positive, got {self.fps!r}")
        if self.max_frames is not None and (isinstance(self.max_frames, bool) or self.max_frames <= 0):
            raise ValueError(
                f"TCAVideoConfig.max_frames must be a positive int or None, got {self.max_frames!r}"
            )


__all__ = ["TCAVideoConfig"]
