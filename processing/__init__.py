"""vidtempo.processing."""

# LocVTP processor: Auto registration (idempotent) + code export on save_pretrained.
from transformers import AutoImageProcessor, AutoProcessor

from ..modeling.configuration_locvtp import LocVTPConfig
from .image_processing_tca import TCAImageProcessor as _FrameProcessor
from .processing_locvtp import LocVTPProcessor

# LocVTP frames go through the TCA frame processor (configured at 224 with Kinetics statistics)
AutoImageProcessor.register(LocVTPConfig, image_processor_classes={"pil": _FrameProcessor}, exist_ok=True)
AutoProcessor.register(LocVTPConfig, LocVTPProcessor, exist_ok=True)
_FrameProcessor.register_for_auto_class("AutoImageProcessor")
LocVTPProcessor.register_for_auto_class("AutoProcessor")

# TCA frame preprocessing + video reading (issue 3).
from ..modeling.configuration_frame_descriptor import FrameDescriptorConfig  # noqa: E402
from .image_processing_tca import TCAImageProcessor  # noqa: E402
from .video_reader import VideoDecodeError, iter_video_chunks, probe_video, read_video  # noqa: E402, F401

AutoImageProcessor.register(
    FrameDescriptorConfig, image_processor_classes={"pil": TCAImageProcessor}, exist_ok=True
)
TCAImageProcessor.register_for_auto_class("AutoImageProcessor")

from ..modeling.configuration_efficientnet_lite import EfficientNetLiteConfig  # noqa: E402

AutoImageProcessor.register(
    EfficientNetLiteConfig, image_processor_classes={"pil": TCAImageProcessor}, exist_ok=True
)

# The composite TCA video model's processor (issue 19): decoding + sampling at the model's fps + frames.
from ..modeling.configuration_tca_video import TCAVideoConfig  # noqa: E402
from .processing_tca_video import TCAVideoProcessor  # noqa: E402

AutoImageProcessor.register(TCAVideoConfig, image_processor_classes={"pil": TCAImageProcessor}, exist_ok=True)
AutoProcessor.register(TCAVideoConfig, TCAVideoProcessor, exist_ok=True)
TCAVideoProcessor.register_for_auto_class("AutoProcessor")
