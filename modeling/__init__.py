"""Models of vidtempo, registered with the transformers Auto classes on import."""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from .configuration_efficientnet_lite import EfficientNetLiteConfig
from .configuration_frame_descriptor import FrameDescriptorConfig
from .configuration_locvtp import LocVTPConfig
from .configuration_tca import TCAConfig
from .configuration_tca_video import TCAVideoConfig
from .modeling_efficientnet_lite import (
    EfficientNetLiteBackbone,
    EfficientNetLiteForImageClassification,
    EfficientNetLiteModel,
)
from .modeling_frame_descriptor import FrameDescriptorModel, FrameDescriptorOutput
from .modeling_locvtp import LocVTPModel, LocVTPOutput, LocVTPPreTrainedModel
from .modeling_tca import (
    TCAModel,
    TCAOutput,
    TCAPreTrainedModel,
    chamfer_similarity,
    cosine_similarity,
    symmetric_chamfer_similarity,
)
from .modeling_tca_comparator import (
    TCAComparatorConfig,
    TCAComparatorModel,
    TCAComparatorOutput,
    repeat_to_min_frames,
)
from .modeling_tca_video import TCAVideoModel, TCAVideoOutput


def _register(config_class, model_class) -> None:
    """Register with the Auto classes (idempotent) and mark both for code export on `save_pretrained`."""
    try:
        AutoConfig.register(config_class.model_type, config_class)
    except ValueError:  # already registered (module re-imported)
        pass
    try:
        AutoModel.register(config_class, model_class)
    except ValueError:
        pass
    config_class.register_for_auto_class()
    model_class.register_for_auto_class("AutoModel")


_register(TCAConfig, TCAModel)
_register(LocVTPConfig, LocVTPModel)
_register(FrameDescriptorConfig, FrameDescriptorModel)
_register(EfficientNetLiteConfig, EfficientNetLiteModel)
try:
    AutoModelForImageClassification.register(EfficientNetLiteConfig, EfficientNetLiteForImageClassification)
except ValueError:
    pass
EfficientNetLiteForImageClassification.register_for_auto_class("AutoModelForImageClassification")
_register(TCAComparatorConfig, TCAComparatorModel)
_register(TCAVideoConfig, TCAVideoModel)

__all__ = [
    "EfficientNetLiteBackbone",
    "EfficientNetLiteConfig",
    "EfficientNetLiteForImageClassification",
    "EfficientNetLiteModel",
    "FrameDescriptorConfig",
    "FrameDescriptorModel",
    "FrameDescriptorOutput",
    "LocVTPConfig",
    "LocVTPModel",
    "LocVTPOutput",
    "LocVTPPreTrainedModel",
    "TCAComparatorConfig",
    "TCAComparatorModel",
    "TCAComparatorOutput",
    "TCAConfig",
    "TCAModel",
    "TCAOutput",
    "TCAPreTrainedModel",
    "TCAVideoConfig",
    "TCAVideoModel",
    "TCAVideoOutput",
    "chamfer_similarity",
    "cosine_similarity",
    "repeat_to_min_frames",
    "symmetric_chamfer_similarity",
]
